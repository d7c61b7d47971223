import { beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../../src/core/index.js';
import { loadMnistDigits } from '../../../src/node/digit_slides.js';
import { CELL_GLASS, CELL_MIMIC, CELL_NORMAL, CELL_TUMOUR, DEFAULT_DIGIT_SLIDE_CONFIG, DEFAULT_DIGIT_STAIN, DIGIT_SLIDE_PRESETS, DigitSlideCohort, digitTruthAt, downsampleRgb, partitionDigitBank, renderDigitPatch, renderDigitSlide, resolveDigitSlideConfig, scaleDigitBank, type DigitBank, type DigitCell } from '../../../src/wsi/synthetic/digit_slide.js';

let mnist: DigitBank;
let cohort: DigitSlideCohort;
beforeAll(async () => {
  mnist = await loadMnistDigits();
  cohort = new DigitSlideCohort(mnist, { ...DIGIT_SLIDE_PRESETS.tiny, numSlides: 12 });
});

describe('digit banks', () => {
  it('loads the 10 000 MNIST digits as bytes', () => {
    expect(mnist.size).toBe(28);
    expect(mnist.labels.length).toBe(10000);
    expect(mnist.images.length).toBe(10000 * 784);
    // every class present; the package holds about 1000 of each
    for (let d = 0; d < 10; d++) expect(mnist.labels.filter((l) => l === d).length).toBeGreaterThan(800);
  });

  it('area-resamples images: 4 x 4 -> 2 x 2 gives the means of the 2 x 2 blocks', () => {
    // block means: (0+10+40+50)/4 = 25, (20+30+60+70)/4 = 45, (80+90+120+130)/4 = 105, (100+110+140+150)/4 = 125
    const bank: DigitBank = { size: 4, images: Uint8Array.from({ length: 16 }, (_, i) => 10 * (Math.floor(i / 4) * 4 + (i % 4))), labels: Uint8Array.from([3]) };
    expect(Array.from(scaleDigitBank(bank, 2).images)).toEqual([25, 45, 105, 125]);
    // 28 -> 16 keeps the total ink up to rounding: mean ink is invariant under area resampling
    const small = scaleDigitBank(mnist, 16);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 784; i++) a += mnist.images[i];
    for (let i = 0; i < 256; i++) b += small.images[i];
    expect(b / 256).toBeCloseTo(a / 784, 0);
  });

  it('partitions each class into disjoint encoder / train-slide / test-slide pools', () => {
    const p = partitionDigitBank(mnist, 3);
    const all = [...p.encoder, ...p.trainSlides, ...p.testSlides];
    expect(new Set(all).size).toBe(10000);
    for (let d = 0; d < 10; d++) {
      const n = mnist.labels.filter((l) => l === d).length;
      const count = (pool: Int32Array) => Array.from(pool).filter((i) => mnist.labels[i] === d).length;
      expect(count(p.encoder)).toBe(Math.round(n / 2));
      expect(Math.abs(count(p.trainSlides) - count(p.testSlides))).toBeLessThanOrEqual(1);
    }
    // the pools depend on poolSeed only
    expect(Array.from(partitionDigitBank(mnist, 3).encoder)).toEqual(Array.from(p.encoder));
    expect(Array.from(partitionDigitBank(mnist, 4).encoder)).not.toEqual(Array.from(p.encoder));
  });
});

describe('DigitSlideConfig', () => {
  it('rejects geometry and digits that cannot work, naming the fix', () => {
    expect(() => resolveDigitSlideConfig({ digitSize: 24, jitter: 6 })).toThrow(/cellSize >= digitSize \+ 2 \* jitter = 36, but got 32/);
    expect(() => resolveDigitSlideConfig({ normalDigits: [1, 9] })).toThrow(/normalDigits.*other than the tumour \(9\) and mimic \(4\)/);
    expect(() => resolveDigitSlideConfig({ mimicDigit: 9 })).toThrow(ValueError);
    expect(() => resolveDigitSlideConfig({ splitFractions: [0.5, 0.5, 0.5] })).toThrow(/summing to 1/);
    expect(resolveDigitSlideConfig({}).ratio).toBe(4);
  });
});

describe('DigitSlideCohort', () => {
  it('labels a slide positive iff it holds tumour cells, and keeps lesions a minority of each patch', () => {
    const k = 16;
    for (let i = 0; i < cohort.size; i++) {
      const s = cohort.slide(i);
      expect(s.tumourCells > 0, s.id).toBe(s.label === 1);
      let t = 0;
      let m = 0;
      const perPatch = new Map<number, number>();
      for (let q = 0; q < s.cellKind.length; q++) {
        const kind = s.cellKind[q];
        if (kind === CELL_TUMOUR) {
          t++;
          expect(s.cellDigit[q]).toBe(9);
        } else if (kind === CELL_MIMIC) {
          m++;
          expect(s.cellDigit[q]).toBe(4);
        } else if (kind === CELL_NORMAL) expect([0, 1, 2, 3, 5, 6, 7, 8]).toContain(s.cellDigit[q]);
        else expect(s.cellDigit[q]).toBe(-1);
        if (kind === CELL_TUMOUR || kind === CELL_MIMIC) {
          const p = Math.floor(Math.floor(q / s.cols) / 4) * (s.cols / 4) + Math.floor((q % s.cols) / 4);
          perPatch.set(p, (perPatch.get(p) ?? 0) + 1);
        }
      }
      expect([t, m]).toEqual([s.tumourCells, s.mimicCells]);
      for (const v of perPatch.values()) expect(v).toBeLessThanOrEqual(Math.floor((k - 1) / 2));
      expect(s.width).toBe(s.cols * 32);
    }
  });

  it('draws each slide from its subset pool and never from the encoder pool', () => {
    const enc = new Set(cohort.pools.encoder);
    const test = new Set(cohort.pools.testSlides);
    const looks = { train: new Set([...cohort.lookalikes.train.tumour, ...cohort.lookalikes.train.mimic]), test: new Set([...cohort.lookalikes.test.tumour, ...cohort.lookalikes.test.mimic]) };
    let checked = 0;
    for (let i = 0; i < cohort.size; i++) {
      const s = cohort.slide(i);
      for (let q = 0; q < s.cellImage.length; q++) {
        const img = s.cellImage[q];
        if (img < 0) continue;
        expect(enc.has(img)).toBe(false);
        expect(test.has(img)).toBe(s.subset === 'test');
        expect(mnist.labels[img]).toBe(s.cellDigit[q]);
        if (s.cellKind[q] === CELL_TUMOUR || s.cellKind[q] === CELL_MIMIC) expect(looks[s.subset === 'test' ? 'test' : 'train'].has(img)).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('is deterministic given the seed, and the split is stratified', () => {
    const again = new DigitSlideCohort(mnist, { ...DIGIT_SLIDE_PRESETS.tiny, numSlides: 12 });
    const a = cohort.slide(5);
    const b = again.slide(5);
    expect(Array.from(b.cellImage)).toEqual(Array.from(a.cellImage));
    expect(Array.from(b.cellShift)).toEqual(Array.from(a.cellShift));
    const other = new DigitSlideCohort(mnist, { ...DIGIT_SLIDE_PRESETS.tiny, numSlides: 12, seed: 1 });
    expect(Array.from(other.slide(5).cellImage)).not.toEqual(Array.from(a.cellImage));
    // 12 slides, 40% positive = 5; split 0.5 / 0.25 / 0.25 per class
    expect(cohort.labels.filter((l) => l === 1).length).toBe(5);
    const sp = cohort.split;
    expect(sp.train.length + sp.val.length + sp.test.length).toBe(12);
    for (const part of [sp.val, sp.test]) expect(part.some((id) => cohort.labels[cohort.ids.indexOf(id)] === 1)).toBe(true);
  });

  it('paints digits in ink on stroma, glass elsewhere, where the layout says', () => {
    const s = cohort.slide(cohort.labels.indexOf(1));
    const im = renderDigitSlide(s, cohort.bank);
    expect(im.width * im.height * 3).toBe(im.data.length);
    const cellMean = (q: number) => {
      const cx = (q % s.cols) * 32;
      const cy = Math.floor(q / s.cols) * 32;
      const m = [0, 0, 0];
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) m[c] += im.data[((cy + y) * im.width + cx + x) * 3 + c] / 1024;
      return m;
    };
    const q = { glass: s.cellKind.indexOf(CELL_GLASS), normal: s.cellKind.indexOf(CELL_NORMAL), tumour: s.cellKind.indexOf(CELL_TUMOUR) };
    const g = cellMean(q.glass);
    expect(Math.abs(g[0] - 243) + Math.abs(g[1] - 241) + Math.abs(g[2] - 245)).toBeLessThan(6);
    // lesion stroma is darker than normal stroma in green (188 vs 112 before ink)
    expect(cellMean(q.tumour)[1]).toBeLessThan(cellMean(q.normal)[1] - 40);
    // inside a tumour cell, pixels with full ink are darker than pixels with none
    const cx = (q.tumour % s.cols) * 32;
    const cy = Math.floor(q.tumour / s.cols) * 32;
    const S = cohort.bank.size;
    const off = (32 - S) / 2;
    const [dx, dy] = [s.cellShift[2 * q.tumour], s.cellShift[2 * q.tumour + 1]];
    let inked = 0;
    let bare = 0;
    let ni = 0;
    let nb = 0;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const a = cohort.bank.images[s.cellImage[q.tumour] * S * S + y * S + x];
        const px = im.data[((cy + off + dy + y) * im.width + cx + off + dx + x) * 3 + 1];
        if (a > 200) {
          inked += px;
          ni++;
        } else if (a === 0) {
          bare += px;
          nb++;
        }
      }
    }
    expect(ni).toBeGreaterThan(5);
    expect(inked / ni).toBeLessThan(bare / nb - 50);
  });

  it('reports sub-patch truth: one cell per high-res sub-patch, counts per low-res patch', () => {
    const s = cohort.slide(cohort.labels.indexOf(1));
    const coords: number[] = [];
    for (let q = 0; q < s.cellKind.length; q++) coords.push((q % s.cols) * 32, Math.floor(q / s.cols) * 32);
    const t = digitTruthAt(s, coords, 32);
    for (let q = 0; q < s.cellKind.length; q++) {
      expect(t.tumour[q]).toBe(s.cellKind[q] === CELL_TUMOUR ? 1 : 0);
      expect(t.digit[q]).toBe(s.cellDigit[q]);
    }
    // one 128-pixel patch at the origin of the tumour's patch row: counts add up
    const all = digitTruthAt(s, [0, 0, s.width - 128, s.height - 128], Math.max(s.width, s.height));
    expect(all.tumour[0]).toBe(s.tumourCells);
    expect(all.mimic[0]).toBe(s.mimicCells);
  });
});

describe('what zooming shows', () => {
  /** Low- and high-res views of one lesion cell of `image`, centred in a patch of normal cells. */
  function views(image: number, kind: number, shift: [number, number]): { low: Float64Array; high: Float64Array } {
    const normal = cohort.slide(0).cellImage.find((v) => v >= 0)!;
    const cells: DigitCell[] = Array.from({ length: 16 }, () => ({ kind: CELL_NORMAL, image: normal, dx: 0, dy: 0 }));
    cells[5] = { kind, image, dx: shift[0], dy: shift[1] }; // xi = 1, yi = 1
    const { high, low } = renderDigitPatch(cohort.bank, cells, { cellSize: 32, ratio: 4, stain: DEFAULT_DIGIT_STAIN, seed: 9 });
    // the lesion cell: pixels [32, 64)^2 at high res, [8, 16)^2 at low res (green channel)
    const crop = (im: { width: number; data: Uint8Array }, x0: number, s: number) => {
      const out = new Float64Array(s * s);
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) out[y * s + x] = im.data[((x0 + y) * im.width + x0 + x) * 3 + 1] / 255;
      return out;
    };
    return { low: crop(low, 8, 8), high: crop(high, 32, 32) };
  }

  /** Pearson correlation of `a` with `t` shifted by (sx, sy) (overlap only). */
  function corrShift(a: Float64Array, t: Float64Array, side: number, sx: number, sy: number): number {
    let n = 0;
    let sa = 0;
    let st = 0;
    let saa = 0;
    let stt = 0;
    let sat = 0;
    for (let y = 0; y < side; y++) {
      const ty = y - sy;
      if (ty < 0 || ty >= side) continue;
      for (let x = 0; x < side; x++) {
        const tx = x - sx;
        if (tx < 0 || tx >= side) continue;
        const u = a[y * side + x];
        const v = t[ty * side + tx];
        n++;
        sa += u;
        st += v;
        saa += u * u;
        stt += v * v;
        sat += u * v;
      }
    }
    const cov = sat / n - (sa / n) * (st / n);
    const va = saa / n - (sa / n) ** 2;
    const vt = stt / n - (st / n) ** 2;
    return cov / Math.sqrt(Math.max(va * vt, 1e-12));
  }

  /**
   * Held-out accuracy of template matching: the class whose mean view (train pool, digits
   * centred) correlates best with the view over all shifts up to `maxShift` pixels.
   */
  function templateAccuracy(train: { x: Float64Array; y: number }[], test: { x: Float64Array; y: number }[], side: number, maxShift: number): number {
    const templates = [0, 1].map((cls) => {
      const members = train.filter((s) => s.y === cls);
      const t = new Float64Array(side * side);
      for (const m of members) for (let i = 0; i < t.length; i++) t[i] += m.x[i] / members.length;
      return t;
    });
    let ok = 0;
    for (const { x, y } of test) {
      const score = templates.map((t) => {
        let best = -Infinity;
        for (let sy = -maxShift; sy <= maxShift; sy++) for (let sx = -maxShift; sx <= maxShift; sx++) best = Math.max(best, corrShift(x, t, side, sx, sy));
        return best;
      });
      if ((score[1] > score[0] ? 1 : 0) === y) ok++;
    }
    return ok / test.length;
  }

  it('tumour and mimic cells differ at high resolution and hardly at low resolution', () => {
    const j = DEFAULT_DIGIT_SLIDE_CONFIG.jitter;
    const sample = (pool: 'train' | 'test', seed: number, jittered: boolean) => {
      const out: { low: { x: Float64Array; y: number }[]; high: { x: Float64Array; y: number }[] } = { low: [], high: [] };
      let r = seed;
      const shift = (): [number, number] => {
        r = (r * 1103515245 + 12345) >>> 0;
        return jittered ? [(r % (2 * j + 1)) - j, ((r >>> 8) % (2 * j + 1)) - j] : [0, 0];
      };
      const L = cohort.lookalikes[pool];
      for (const [list, kind, y] of [
        [L.tumour, CELL_TUMOUR, 1],
        [L.mimic, CELL_MIMIC, 0],
      ] as const) {
        for (const img of Array.from(list).slice(0, 50)) {
          const v = views(img, kind, shift());
          out.low.push({ x: v.low, y });
          out.high.push({ x: v.high, y });
        }
      }
      return out;
    };
    const train = sample('train', 1, false);
    const test = sample('test', 2, true);
    // the same classifier at both levels: template matching over the digit's possible shifts
    const highAcc = templateAccuracy(train.high, test.high, 32, j);
    const lowAcc = templateAccuracy(train.low, test.low, 8, Math.ceil(j / 4));
    // measured on 100 unseen cells (50 + 50): 0.82 at high resolution, 0.49 (chance) at low
    // resolution; the trained encoder does far better at high resolution (bench/digit_encoder.ts)
    expect(highAcc).toBeGreaterThan(0.75);
    expect(lowAcc).toBeLessThan(0.62);
    expect(highAcc - lowAcc).toBeGreaterThan(0.2);
    // box-averaging a painted patch by r gives the low-res view exactly (what a 2x pyramid does twice)
    const normal = cohort.slide(0).cellImage.find((v) => v >= 0)!;
    const p = renderDigitPatch(cohort.bank, Array.from({ length: 16 }, () => ({ kind: CELL_NORMAL, image: normal, dx: 0, dy: 0 })), {
      cellSize: 32,
      ratio: 4,
      stain: DEFAULT_DIGIT_STAIN,
      seed: 1,
    });
    expect(Array.from(downsampleRgb(p.high, 4).data)).toEqual(Array.from(p.low.data));
  });
});
