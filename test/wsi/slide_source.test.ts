import { describe, expect, it } from 'vitest';
import { InMemorySlideSource, bestLevelForDownsample, levelMpp, levelsFromSizes, resolveLevel, toLevelCoord } from '../../src/wsi/index.js';
import { ValueError } from '../../src/core/index.js';
import { blitRgb, halveRgb } from '../../src/wsi/slide_source.js';

describe('levels', () => {
  it('computes downsamples as the mean of the x and y ratios', () => {
    const l = levelsFromSizes([
      [1000, 800],
      [500, 400],
      [251, 200],
    ]);
    expect(l.map((v) => v.downsample)).toEqual([1, 2, (1000 / 251 + 4) / 2]);
  });

  it('picks the best level for a downsample as OpenSlide does', () => {
    const l = levelsFromSizes([
      [4096, 4096],
      [1024, 1024],
      [256, 256],
    ]); // downsamples 1, 4, 16
    expect(bestLevelForDownsample(l, 64)).toBe(2);
    expect(bestLevelForDownsample(l, 15.9)).toBe(1);
    expect(bestLevelForDownsample(l, 16)).toBe(2);
    expect(bestLevelForDownsample(l, 0.5)).toBe(0);
    // rounding in stored downsamples is absorbed: 4.002 still counts as 4
    const l2 = levelsFromSizes([
      [4002, 4002],
      [1000, 1000],
    ]);
    expect(bestLevelForDownsample(l2, 4)).toBe(1);
  });

  it('maps level-0 coordinates to a level, rounding values within 1e-6 of an integer', () => {
    expect(toLevelCoord(1024, 4)).toBe(256);
    expect(toLevelCoord(1023, 4)).toBe(255);
    expect(toLevelCoord(4096, 3.9999999999)).toBe(1024);
    expect(toLevelCoord(-1, 2)).toBe(-1);
  });

  it('resolves levels by index, mpp and magnification', () => {
    const src = InMemorySlideSource.fromImage({ width: 64, height: 32, data: new Uint8Array(64 * 32 * 3) }, { mpp: 0.25, levels: 4 });
    expect(src.levels.map((l) => l.downsample)).toEqual([1, 2, 4, 8]);
    expect(levelMpp(src, 2)).toBe(1);
    expect(resolveLevel(src, { level: 3 })).toBe(3);
    expect(resolveLevel(src, { mpp: 0.5 })).toBe(1);
    expect(resolveLevel(src, { mpp: 0.9 })).toBe(2); // |log(1/0.9)| < |log(0.5/0.9)|
    expect(resolveLevel(src, { magnification: 10 })).toBe(2); // 10x = 1 µm/px
    expect(() => resolveLevel(src, { mpp: 8 })).toThrow(/no level near 8 µm\/px \(its levels have 0.25, 0.5, 1, 2 µm\/px\)/);
    expect(() => resolveLevel(src, { level: 4 })).toThrow(ValueError);
    expect(() => resolveLevel(src, { level: 1, mpp: 0.5 })).toThrow(/exactly one/);
    const noMpp = InMemorySlideSource.fromImage({ width: 8, height: 8, data: new Uint8Array(192) }, { name: 'x.tif' });
    expect(() => resolveLevel(noMpp, { mpp: 1 })).toThrow(/'x.tif' does not record its pixel size/);
  });

  it('names the slide and suggests a pyramid when a one-level slide is asked for another level', () => {
    const one = new InMemorySlideSource([{ width: 4, height: 4, data: new Uint8Array(48) }], { name: 'flat.tif' });
    expect(() => resolveLevel(one, { level: 2 })).toThrow(/slide 'flat.tif'.*single level.*vips tiffsave/s);
  });
});

describe('InMemorySlideSource', () => {
  // 4 x 2 image; red channel = x + 10 y, green = 2 x, blue = 100
  const im = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3) };
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) im.data.set([x + 10 * y, 2 * x, 100], (y * 4 + x) * 3);

  it('builds a 2x box-averaged pyramid', () => {
    const h = halveRgb(im);
    expect([h.width, h.height]).toEqual([2, 1]);
    // pixel 0: red (0 + 1 + 10 + 11 + 2) >> 2 = 6, green (0 + 2 + 0 + 2 + 2) >> 2 = 1
    // pixel 1: red (2 + 3 + 12 + 13 + 2) >> 2 = 8, green (4 + 6 + 4 + 6 + 2) >> 2 = 5
    expect(Array.from(h.data)).toEqual([6, 1, 100, 8, 5, 100]);
  });

  it('reads regions at level-0 coordinates and fills the outside with background', async () => {
    const src = InMemorySlideSource.fromImage(im, { levels: 2, background: 7 });
    expect(src.levels).toHaveLength(2);
    const r = await src.readRegion(0, 2, 1, 3, 1); // x 2..4, y 1: (12,4,100) (13,6,100) outside
    expect(Array.from(r)).toEqual([12, 4, 100, 13, 6, 100, 7, 7, 7]);
    const r1 = await src.readRegion(1, 2, 0, 2, 2); // level 1, x0 = 2 -> x = 1
    expect(Array.from(r1)).toEqual([8, 5, 100, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
    const left = await src.readRegion(0, -1, 0, 2, 1);
    expect(Array.from(left)).toEqual([7, 7, 7, 0, 0, 100]);
    await expect(src.readRegion(0, 0, 0, 0, 1)).rejects.toThrow(/positive integers/);
    await expect(src.readRegion(2, 0, 0, 1, 1)).rejects.toThrow(/integer in \[0, 1\]/);
  });

  it('rejects levels of the wrong byte length', () => {
    expect(() => new InMemorySlideSource([{ width: 2, height: 2, data: new Uint8Array(11) }])).toThrow(/2 x 2 x 3 = 12 bytes, but got 11/);
  });
});

describe('blitRgb', () => {
  it('copies grey and RGBA sources into RGB', () => {
    const dst = new Uint8Array(2 * 1 * 3);
    blitRgb(Uint8Array.from([9, 8]), 2, 1, 1, 0, 0, dst, 2, 1, 0, 0);
    expect(Array.from(dst)).toEqual([9, 9, 9, 8, 8, 8]);
    blitRgb(Uint8Array.from([1, 2, 3, 255]), 1, 1, 4, 1, 0, dst, 2, 1, 0, 0);
    expect(Array.from(dst)).toEqual([9, 9, 9, 1, 2, 3]);
  });
});
