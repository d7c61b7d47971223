import { describe, expect, it } from 'vitest';
import {
  InMemorySlideSource,
  levelRatio,
  levelsFromSizes,
  patchGrid,
  segmentTissueImage,
  subPatchCoords,
  tileSlide,
} from '../../src/wsi/index.js';
import { paintRect, solidImage } from './fixtures.js';

const PINK: [number, number, number] = [230, 160, 200];
const GLASS: [number, number, number] = [244, 242, 246];
const EXACT = { mthresh: 1, close: 0, refPatchSize: 8, aT: 10, aH: 10 };

// A 512 x 384 slide with 2x levels; the segmentation is drawn at its level 3 (64 x 48, ds 8).
const LEVELS = levelsFromSizes([
  [512, 384],
  [256, 192],
  [128, 96],
  [64, 48],
]);

/** Tissue over mask [16, 44) x [8, 32) = level-0 [128, 352) x [64, 256); optional hole at mask [24, 32) x [16, 24). */
function segmentation(hole: boolean) {
  const im = solidImage(64, 48, GLASS);
  paintRect(im, 16, 8, 44, 32, PINK);
  if (hole) paintRect(im, 24, 16, 32, 24, GLASS);
  return segmentTissueImage(im.data, 64, 48, { x: 8, y: 8 }, EXACT, 3);
}

const pairs = (c: Int32Array) => Array.from({ length: c.length / 2 }, (_, i) => `${c[2 * i]},${c[2 * i + 1]}`);

describe('patchGrid', () => {
  // Patches of 32 px at level 1 cover 64 level-0 px. Columns x = 128, 192, 256 lie inside; x = 320 has
  // its centre at 352 (mask 44, outside) but its left points at 336 (mask 42, inside). Rows y = 64, 128, 192.
  it('applies the four-point rule (any point in tissue)', () => {
    const g = patchGrid(LEVELS, 1, segmentation(false), { patchSize: 32 });
    expect(g.patchSizeLevel0).toBe(64);
    expect(g.count).toBe(12);
    expect(pairs(g.coords).slice(0, 4)).toEqual(['128,64', '192,64', '256,64', '320,64']); // row by row
  });

  it('applies the hard four-point and centre rules', () => {
    expect(patchGrid(LEVELS, 1, segmentation(false), { patchSize: 32, rule: 'fourPtHard' }).count).toBe(9);
    expect(patchGrid(LEVELS, 1, segmentation(false), { patchSize: 32, rule: 'center' }).count).toBe(9);
  });

  it('applies the tissue-fraction rule', () => {
    // column 320 covers mask [40, 48): 4 of 8 columns are tissue -> fraction 0.5
    expect(patchGrid(LEVELS, 1, segmentation(false), { patchSize: 32, rule: 'tissueFraction', minTissueFraction: 0.5 }).count).toBe(12);
    expect(patchGrid(LEVELS, 1, segmentation(false), { patchSize: 32, rule: 'tissueFraction', minTissueFraction: 0.6 }).count).toBe(9);
  });

  it('drops patches whose centre lies in a kept hole', () => {
    const seg = segmentation(true);
    expect(seg.regions[0].holes).toHaveLength(1);
    const g = patchGrid(LEVELS, 1, seg, { patchSize: 32 });
    expect(g.count).toBe(11); // patch (192, 128) has its centre (224, 160) = mask (28, 20) in the hole
    expect(pairs(g.coords)).not.toContain('192,128');
  });

  it('keeps patches past the slide edge only with padding', () => {
    const im = solidImage(64, 48, GLASS);
    paintRect(im, 52, 8, 64, 32, PINK); // level-0 x in [416, 512)
    const seg = segmentTissueImage(im.data, 64, 48, { x: 8, y: 8 }, EXACT, 3);
    // 48-px patches at level 1 cover 96 level-0 px; the column at x = 480 runs past 512
    const padded = patchGrid(LEVELS, 1, seg, { patchSize: 48 });
    const unpadded = patchGrid(LEVELS, 1, seg, { patchSize: 48, usePadding: false });
    expect(pairs(padded.coords).filter((p) => p.startsWith('480,')).length).toBeGreaterThan(0);
    expect(pairs(unpadded.coords).filter((p) => p.startsWith('480,'))).toEqual([]);
    expect(unpadded.count).toBeGreaterThan(0);
  });

  it('rejects a level the slide does not have', () => {
    expect(() => patchGrid(LEVELS, 4, segmentation(false))).toThrow(/level to be in \[0, 3\], but got 4/);
  });
});

describe('sub-patches', () => {
  const levels = levelsFromSizes([
    [8192, 8192],
    [4096, 4096],
    [2048, 2048],
    [1024, 1024],
  ]); // downsamples 1, 2, 4, 8

  it('gives k = 16 exact sub-patch corners for r = 4 (CAMELYON16: low-res level 3, high-res level 1)', () => {
    const s = subPatchCoords(Int32Array.from([2048, 0]), levels, 3, 1, 256);
    expect([s.ratio, s.k, s.level]).toEqual([4, 16, 1]);
    // sub-patch j = 4 xi + yi at (2048 + 512 xi, 512 yi), read at level 1 (512 level-0 px each)
    const want: number[] = [];
    for (let xi = 0; xi < 4; xi++) for (let yi = 0; yi < 4; yi++) want.push(2048 + 512 * xi, 512 * yi);
    expect(Array.from(s.coords)).toEqual(want);
  });

  it('gives k = 4 exact sub-patch corners for r = 2, for every patch', () => {
    const s = subPatchCoords(Int32Array.from([0, 0, 2048, 4096]), levels, 3, 2, 256);
    expect([s.ratio, s.k]).toEqual([2, 4]);
    // step 256 * 4 = 1024 level-0 px
    expect(Array.from(s.coords)).toEqual([0, 0, 0, 1024, 1024, 0, 1024, 1024, 2048, 4096, 2048, 5120, 3072, 4096, 3072, 5120]);
  });

  it.each([
    [3, 1],
    [3, 2],
    [2, 0],
    [3, 0],
  ])('tiles the low-res patch exactly (lr %i, hr %i)', (lr, hr) => {
    const p = 64;
    const s = subPatchCoords(Int32Array.from([512, 1024]), levels, lr, hr, p);
    const side0 = p * levels[lr].downsample; // low-res patch in level-0 px
    const sub0 = p * levels[hr].downsample;
    const cover = new Uint8Array(side0 * side0);
    for (let j = 0; j < s.k; j++) {
      const x = s.coords[2 * j] - 512;
      const y = s.coords[2 * j + 1] - 1024;
      for (let yy = y; yy < y + sub0; yy++) for (let xx = x; xx < x + sub0; xx++) cover[yy * side0 + xx]++;
    }
    expect(cover.every((v) => v === 1)).toBe(true); // no gap, no overlap
  });

  it('checks the level ratio', () => {
    expect(levelRatio(levels, 2, 2)).toBe(1);
    expect(() => levelRatio(levels, 1, 3)).toThrow(/hrLevel \(3\) to be a higher resolution/);
    const odd = levelsFromSizes([
      [900, 900],
      [300, 300],
      [200, 200],
    ]); // downsamples 1, 3, 4.5
    expect(() => levelRatio(odd, 2, 1)).toThrow(/ratio between lrLevel 2 and hrLevel 1 to be an integer, but got 1.500/);
  });
});

describe('tileSlide', () => {
  it('chooses levels by mpp and returns the grid and sub-patches', async () => {
    const im = solidImage(512, 384, GLASS);
    paintRect(im, 128, 64, 352, 256, PINK);
    const src = InMemorySlideSource.fromImage(im, { mpp: 0.5, levels: 4, name: 'mpp.tif' });
    const t = await tileSlide(src, {
      tissue: { ...EXACT, segLevel: 3 },
      lowRes: { mpp: 1 }, // level 1
      highRes: { magnification: 20 }, // 0.5 µm: level 0
      grid: { patchSize: 32 },
    });
    expect(t.grid.level).toBe(1);
    expect(t.subPatches?.level).toBe(0);
    expect(t.subPatches?.k).toBe(4);
    expect(t.grid.count).toBe(12);
    expect(t.subPatches?.coords.length).toBe(12 * 4 * 2);
  });
});
