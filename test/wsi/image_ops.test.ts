import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.js';
import { connectedComponents, dilate, erode, integralImage, medianBlur, morphClose, rectSum, rgbToSaturation, threshold } from '../../src/wsi/image_ops.js';

function randomImage(w: number, h: number, seed: number, max = 256): Uint8Array {
  const rng = createRng(seed);
  return Uint8Array.from({ length: w * h }, () => rng.int(max));
}

/** Brute-force median with replicated borders. */
function bruteMedian(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  const r = k >> 1;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v: number[] = [];
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          const yy = Math.min(h - 1, Math.max(0, y + dy));
          const xx = Math.min(w - 1, Math.max(0, x + dx));
          v.push(src[yy * w + xx]);
        }
      }
      v.sort((a, b) => a - b);
      out[y * w + x] = v[(k * k) >> 1];
    }
  }
  return out;
}

/** Brute-force dilation / erosion with a k x k square anchored at k >> 1; outside ignored. */
function bruteMorph(src: Uint8Array, w: number, h: number, k: number, op: 'max' | 'min'): Uint8Array {
  const a = k >> 1;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = op === 'max' ? 0 : 1;
      for (let j = 0; j < k; j++) {
        for (let i = 0; i < k; i++) {
          const xx = x + i - a;
          const yy = y + j - a;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
          v = op === 'max' ? Math.max(v, src[yy * w + xx]) : Math.min(v, src[yy * w + xx]);
        }
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

/** Counts components with a flood fill. */
function bruteCount(src: Uint8Array, w: number, h: number, conn: 4 | 8, value: number): number[] {
  const seen = new Uint8Array(w * h);
  const areas: number[] = [];
  const nb = conn === 4 ? [[1, 0], [-1, 0], [0, 1], [0, -1]] : [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]];
  for (let i = 0; i < w * h; i++) {
    if (seen[i] || src[i] !== value) continue;
    let area = 0;
    const stack = [i];
    seen[i] = 1;
    while (stack.length) {
      const p = stack.pop() as number;
      area++;
      const x = p % w;
      const y = (p - x) / w;
      for (const [dx, dy] of nb) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        const q = yy * w + xx;
        if (!seen[q] && src[q] === value) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    areas.push(area);
  }
  return areas;
}

describe('rgbToSaturation', () => {
  it('matches OpenCV S = round(255 (max - min) / max)', () => {
    // (200,100,50): 255 * 150 / 200 = 191.25 -> 191; (0,0,0): 0; grey: 0; (255,0,0): 255; (10,9,9): 25.5 -> 26
    const s = rgbToSaturation(Uint8Array.from([200, 100, 50, 0, 0, 0, 77, 77, 77, 255, 0, 0, 10, 9, 9]));
    expect(Array.from(s)).toEqual([191, 0, 0, 255, 26]);
  });
});

describe('medianBlur', () => {
  it.each([1, 3, 5, 7])('equals a brute-force median with replicated borders (k = %i)', (k) => {
    const src = randomImage(23, 17, k);
    expect(Array.from(medianBlur(src, 23, 17, k))).toEqual(Array.from(bruteMedian(src, 23, 17, k)));
  });

  it('works on images narrower than the window', () => {
    const src = randomImage(2, 3, 9);
    expect(Array.from(medianBlur(src, 2, 3, 7))).toEqual(Array.from(bruteMedian(src, 2, 3, 7)));
  });

  it('rejects even kernels', () => {
    expect(() => medianBlur(new Uint8Array(4), 2, 2, 4)).toThrow(/odd positive integer, but got 4/);
  });
});

describe('morphology', () => {
  it.each([2, 3, 4, 5])('dilate and erode equal brute force with OpenCV anchors (k = %i)', (k) => {
    const src = randomImage(19, 13, 100 + k, 2).map((v) => v & (randomImage(19, 13, 200 + k, 2)[0] | 1));
    expect(Array.from(dilate(src, 19, 13, k))).toEqual(Array.from(bruteMorph(src, 19, 13, k, 'max')));
    expect(Array.from(erode(src, 19, 13, k))).toEqual(Array.from(bruteMorph(src, 19, 13, k, 'min')));
  });

  it('closing never removes foreground', () => {
    for (const k of [2, 3, 4, 5]) {
      const src = randomImage(17, 11, 40 + k, 2);
      const c = morphClose(src, 17, 11, k);
      for (let i = 0; i < src.length; i++) if (src[i]) expect(c[i]).toBe(1);
    }
  });

  it('closing fills a gap narrower than the kernel', () => {
    // 1 x 9 row: 1 1 1 0 0 1 1 1 1 -> a 2-pixel gap closes with k = 4, not with k = 2
    const row = Uint8Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1]);
    expect(Array.from(morphClose(row, 9, 1, 4))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(morphClose(row, 9, 1, 3))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(morphClose(row, 9, 1, 2))).toEqual(Array.from(row));
    expect(Array.from(threshold(Uint8Array.from([7, 8, 9]), 8))).toEqual([0, 0, 1]);
  });
});

describe('connectedComponents', () => {
  it('separates diagonal neighbours with 4-connectivity and joins them with 8', () => {
    // 1 0
    // 0 1
    const m = Uint8Array.from([1, 0, 0, 1]);
    expect(connectedComponents(m, 2, 2, 4).count).toBe(2);
    const c8 = connectedComponents(m, 2, 2, 8);
    expect(c8.count).toBe(1);
    expect(c8.areas).toEqual([2]);
    expect(c8.boxes).toEqual([[0, 0, 1, 1]]);
  });

  it('finds enclosed background with its first pixel and border flags', () => {
    // 5 x 5 ring of ones around a single zero at (2, 2)
    const m = new Uint8Array(25);
    for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) m[y * 5 + x] = 1;
    m[12] = 0;
    const bg = connectedComponents(m, 5, 5, 4, 0);
    expect(bg.count).toBe(2);
    expect(bg.areas).toEqual([16, 1]);
    expect(bg.touchesBorder).toEqual([true, false]);
    expect(bg.first[1]).toBe(12);
  });

  it.each([4, 8] as const)('agrees with a flood fill on random masks (%i-connected)', (conn) => {
    for (let seed = 0; seed < 5; seed++) {
      const m = randomImage(31, 29, seed, 2);
      for (const value of [0, 1]) {
        const c = connectedComponents(m, 31, 29, conn, value);
        expect(c.areas).toEqual(bruteCount(m, 31, 29, conn, value));
        // labels agree with areas
        const counts = new Array(c.count).fill(0);
        for (const l of c.labels) if (l) counts[l - 1]++;
        expect(counts).toEqual(c.areas);
      }
    }
  });
});

describe('integralImage', () => {
  it('sums rectangles, clipped to the image', () => {
    const m = randomImage(7, 5, 3, 2);
    const I = integralImage(m, 7, 5);
    const direct = (x0: number, y0: number, x1: number, y1: number) => {
      let s = 0;
      for (let y = Math.max(0, y0); y < Math.min(5, y1); y++) for (let x = Math.max(0, x0); x < Math.min(7, x1); x++) s += m[y * 7 + x];
      return s;
    };
    for (const [a, b, c, d] of [
      [0, 0, 7, 5],
      [1, 2, 4, 5],
      [-3, -1, 2, 9],
      [6, 4, 10, 10],
      [3, 3, 3, 4],
    ]) {
      expect(rectSum(I, 7, 5, a, b, c, d)).toBe(direct(a, b, c, d));
    }
  });
});
