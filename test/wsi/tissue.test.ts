import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TISSUE_CONFIG, InMemorySlideSource, TISSUE_PRESETS, bestLevelForDownsample, segmentTissue, segmentTissueImage, tileSlide } from '../../src/wsi/index.js';
import { DataError, ValueError } from '../../src/core/index.js';
import { openSlide } from '../../src/node/open_slide.js';
import { writeSyntheticSlide } from '../../src/node/synthetic_slide.js';
import { iou, paintRect, solidImage, tempDir } from './fixtures.js';
import { generateSyntheticSlideImage, syntheticTruthMask } from '../../src/wsi/synthetic/slide_image.js';

const PINK: [number, number, number] = [230, 160, 200];
const GLASS: [number, number, number] = [244, 242, 246];

/** 200 x 150 glass with tissue A (100 x 80, three holes), a 5 x 5 speck and a 20 x 20 square. */
function drawing() {
  const im = solidImage(200, 150, GLASS);
  paintRect(im, 10, 10, 110, 90, PINK); // A: 8000 px
  paintRect(im, 40, 30, 70, 60, GLASS); // hole H1: 900 px
  paintRect(im, 20, 20, 26, 26, GLASS); // hole H2: 36 px
  paintRect(im, 90, 70, 92, 72, GLASS); // hole H3: 4 px
  paintRect(im, 150, 120, 155, 125, PINK); // speck: 25 px
  paintRect(im, 150, 20, 170, 40, PINK); // C: 400 px
  return im;
}
// No blur, no closing, areas in pixels (refPatchSize 1 at downsample 1): the filters alone.
const EXACT = { mthresh: 1, close: 0, refPatchSize: 1, aT: 100, aH: 10 };

describe('segmentTissueImage (area filters)', () => {
  it('keeps regions above aT and holes above aH, filling the small ones', () => {
    const im = drawing();
    const seg = segmentTissueImage(im.data, 200, 150, { x: 1, y: 1 }, EXACT);
    expect(seg.regions).toHaveLength(2); // the speck (25 <= 100) is dropped
    const [a, c] = seg.regions;
    expect(a.box).toEqual({ x: 10, y: 10, width: 100, height: 80 });
    expect(a.holes.map((h) => h.area)).toEqual([900, 36]); // H3 (4 <= 10) is filled
    expect(a.area).toBe(8000 - 900 - 36);
    expect(c.area).toBe(400);
    const at = (x: number, y: number) => seg.mask[y * 200 + x];
    expect(at(50, 40)).toBe(0); // in H1
    expect(seg.holeMask[40 * 200 + 50]).toBe(1);
    expect(seg.regionMap[40 * 200 + 50]).toBe(1); // inside A's outline
    expect(at(22, 22)).toBe(0); // in H2
    expect(at(90, 70)).toBe(1); // H3 filled
    expect(at(152, 122)).toBe(0); // speck removed
    expect(seg.tissueFraction).toBeCloseTo((8000 - 936 + 400) / 30000, 12);
  });

  it('keeps at most maxNHoles holes, the largest first', () => {
    const seg = segmentTissueImage(drawing().data, 200, 150, { x: 1, y: 1 }, { ...EXACT, maxNHoles: 1 });
    expect(seg.regions[0].holes.map((h) => h.area)).toEqual([900]);
    expect(seg.mask[22 * 200 + 22]).toBe(1);
  });

  it('measures aT and aH in reference patches of refPatchSize^2 level-0 pixels', () => {
    const im = drawing();
    // refPatchSize 4 at downsample 1: one unit is 16 px, so aT 100 -> 1600 px drops C (400 px)
    expect(segmentTissueImage(im.data, 200, 150, { x: 1, y: 1 }, { ...EXACT, refPatchSize: 4 }).regions).toHaveLength(1);
    // the same at downsample 4 x 4: 16 / 16 = 1 px per unit again, C is kept
    expect(segmentTissueImage(im.data, 200, 150, { x: 4, y: 4 }, { ...EXACT, refPatchSize: 4 }).regions).toHaveLength(2);
  });

  it('blurs and closes with CLAM defaults: a 2-pixel crack in tissue disappears', () => {
    const im = solidImage(60, 40, GLASS);
    paintRect(im, 5, 5, 55, 35, PINK);
    paintRect(im, 29, 5, 31, 35, GLASS); // crack splitting the tissue in two
    const split = segmentTissueImage(im.data, 60, 40, { x: 1, y: 1 }, { ...EXACT, aT: 1 });
    expect(split.regions).toHaveLength(2);
    const joined = segmentTissueImage(im.data, 60, 40, { x: 1, y: 1 }, { mthresh: 7, close: 4, refPatchSize: 1, aT: 1, aH: 1 });
    expect(joined.regions).toHaveLength(1);
  });

  it('rejects an even median kernel and unknown keys', () => {
    expect(() => segmentTissueImage(new Uint8Array(12), 2, 2, { x: 1, y: 1 }, { mthresh: 4 })).toThrow(/mthresh to be odd/);
    expect(() => segmentTissueImage(new Uint8Array(12), 2, 2, { x: 1, y: 1 }, { athresh: 3 } as never)).toThrow(/Unknown key 'athresh'/);
  });
});

describe('segmentTissue on slides', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const seeds = [0, 1, 2];
  const files: string[] = [];
  beforeAll(async () => {
    for (const seed of seeds) files.push((await writeSyntheticSlide(tmp.path(`s${seed}.tif`), { seed })).path);
  });

  it('segments at the level closest to 64x and reaches IoU >= 0.9 against the ground truth', async () => {
    for (const seed of seeds) {
      const slide = await openSlide(files[seed]);
      // CLAM defaults except the area filters: these slides hold far less than 100 reference patches of tissue.
      const seg = await segmentTissue(slide, { aT: 1, aH: 1 });
      expect(seg.level).toBe(bestLevelForDownsample(slide.levels, 64));
      expect(seg.level).toBe(3); // 2048 x 1536 with 2x levels: 1, 2, 4, 8
      const truth = syntheticTruthMask(generateSyntheticSlideImage({ seed }), 'tissue', 8, { width: seg.width, height: seg.height });
      const score = iou(seg.mask, truth);
      expect(score, `seed ${seed}`).toBeGreaterThanOrEqual(0.9);
      await slide.close();
    }
  });

  it('finds no tissue on blank glass, and tiling names the slide', async () => {
    const blank = InMemorySlideSource.fromImage(solidImage(512, 512, GLASS), { name: 'blank_slide.tif', levels: 4 });
    const seg = await segmentTissue(blank);
    expect(seg.regions).toHaveLength(0);
    expect(seg.tissueFraction).toBe(0);
    await expect(tileSlide(blank, { lowRes: { level: 1 } })).rejects.toThrow(DataError);
    await expect(tileSlide(blank, { lowRes: { level: 1 } })).rejects.toThrow(/No tissue found in slide 'blank_slide.tif'/);
  });

  it('refuses segmentation levels above maxPixels', async () => {
    const src = InMemorySlideSource.fromImage(solidImage(64, 64, PINK), { name: 'big.tif', levels: 1 });
    await expect(segmentTissue(src, { maxPixels: 1000 })).rejects.toThrow(ValueError);
    await expect(segmentTissue(src, { maxPixels: 1000 })).rejects.toThrow(/'big.tif'.*64 x 64 pixels, more than maxPixels = 1000/);
  });

  it('documents CLAM defaults and presets', () => {
    expect(DEFAULT_TISSUE_CONFIG).toMatchObject({ sthresh: 8, mthresh: 7, close: 4, aT: 100, aH: 16, maxNHoles: 8, segDownsample: 64 });
    expect(TISSUE_PRESETS.tcga).toMatchObject({ aT: 16, aH: 4 });
  });
});
