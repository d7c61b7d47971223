import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, tf } from '../../src/core/index.js';
import { extractFeatures, functionEncoder, planFromTiling, tileSlide } from '../../src/wsi/index.js';
import { loadMnistDigits, readDigitTruth, writeDigitCohort, type DigitCohortFiles } from '../../src/node/digit_slides.js';
import { openSlide } from '../../src/node/open_slide.js';
import { tempDir } from '../wsi/fixtures.js';
import { CELL_GLASS, CELL_NORMAL, CELL_TUMOUR, DIGIT_SLIDE_PRESETS, DigitSlideCohort, digitTruthAt, renderDigitSlide, type DigitBank, type DigitSlide } from '../../src/wsi/synthetic/digit_slide.js';

const tmp = tempDir('sasha-digits-');
const config = { ...DIGIT_SLIDE_PRESETS.tiny, numSlides: 8 };
let bank: DigitBank;
let files: DigitCohortFiles;
let positive: number;
beforeAll(async () => {
  bank = await loadMnistDigits();
  // only the slides the tests read: a positive one and a negative one
  const cohort = new DigitSlideCohort(bank, config);
  positive = cohort.labels.indexOf(1);
  files = await writeDigitCohort(tmp.path('cohort'), cohort, {}, { indices: [positive, cohort.labels.indexOf(0)] });
});
afterAll(() => tmp.cleanup());

/** Mean RGB of a square of an RGB buffer. */
function meanRgb(rgb: Uint8Array, width: number, x0: number, y0: number, size: number): number[] {
  const m = [0, 0, 0];
  for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) for (let c = 0; c < 3; c++) m[c] += rgb[(y * width + x) * 3 + c] / (size * size);
  return m;
}

describe('writeDigitCohort', () => {
  it('writes slides, truth, labels and a split in the reference layout', () => {
    expect(files.written).toBe(2);
    const labels = readFileSync(files.labels, 'utf8').trim().split('\n');
    expect(labels[0]).toBe('slide_id,label');
    expect(labels.length).toBe(9);
    const split = JSON.parse(readFileSync(files.split, 'utf8')) as Record<string, string[]>;
    expect(split.train_names.length + split.val_names.length + split.test_names.length).toBe(8);
    const manifest = JSON.parse(readFileSync(files.manifest, 'utf8')) as { config: { ratio: number }; pools: { encoder: number } };
    expect(manifest.config.ratio).toBe(4);
    let half = 0;
    for (let d = 0; d < 10; d++) half += Math.round(bank.labels.filter((l) => l === d).length / 2);
    expect(manifest.pools.encoder).toBe(half);
  });

  it('resumes (keeps existing slides) and refuses a directory made with another config', async () => {
    const again = await writeDigitCohort(tmp.path('cohort'), files.cohort, {}, { indices: [positive] });
    expect(again.written).toBe(0);
    const other = writeDigitCohort(tmp.path('cohort'), bank, { ...config, seed: 5 }, { indices: [] });
    await expect(other).rejects.toThrow(DataError);
    await expect(other).rejects.toThrow(/another config/);
    await expect(writeDigitCohort(tmp.path('other'), files.cohort, { seed: 1 })).rejects.toThrow(/either a digit bank and a config/);
  });

  it('round-trips the ground truth', () => {
    const id = files.cohort.ids[positive];
    const t = readDigitTruth(join(tmp.path('cohort'), 'truth', `${id}.json`));
    const s = files.cohort.slide(positive);
    expect(Array.from(t.cellKind)).toEqual(Array.from(s.cellKind));
    expect(Array.from(t.cellImage)).toEqual(Array.from(s.cellImage));
    expect(t.stain).toEqual(s.stain);
    expect(() => readDigitTruth(tmp.path('missing.json'))).toThrow(/Cannot find/);
  });
});

describe('a digit slide on disk', () => {
  let slide: DigitSlide;
  beforeAll(() => {
    slide = readDigitTruth(join(tmp.path('cohort'), 'truth', `${files.cohort.ids[positive]}.json`));
  });

  it('is a readable 2x pyramid whose level 0 holds the painted pixels (within JPEG error)', async () => {
    const src = await openSlide(files.slides[0]);
    try {
      expect(src.levels[0].width).toBe(slide.width);
      expect(src.levels[0].height).toBe(slide.height);
      expect(src.levels.length).toBeGreaterThanOrEqual(3);
      expect(src.levels[2].downsample).toBe(4);
      expect(src.mpp).toBeCloseTo(0.5, 4);
      const painted = renderDigitSlide(slide, files.cohort.bank);
      const read = await src.readRegion(0, 0, 0, slide.width, slide.height);
      let err = 0;
      for (let i = 0; i < read.length; i++) err += Math.abs(read[i] - painted.data[i]);
      expect(err / read.length).toBeLessThan(4); // JPEG quality 90
    } finally {
      await src.close();
    }
  });

  it('has its tumour cells where the truth says: lesion stroma at level 0 and at level 2', async () => {
    const src = await openSlide(files.slides[0]);
    try {
      // classify each cell by its mean green value at level 0: glass ~241, stroma ~180, lesion ~105
      const full = await src.readRegion(0, 0, 0, slide.width, slide.height);
      const lv2 = await src.readRegion(2, 0, 0, slide.width / 4, slide.height / 4);
      let agree = 0;
      let agree2 = 0;
      for (let q = 0; q < slide.cellKind.length; q++) {
        const cx = q % slide.cols;
        const cy = Math.floor(q / slide.cols);
        const g = meanRgb(full, slide.width, cx * 32, cy * 32, 32)[1];
        const g2 = meanRgb(lv2, slide.width / 4, cx * 8, cy * 8, 8)[1];
        const kind = slide.cellKind[q];
        const expected = kind === CELL_GLASS ? 'glass' : kind === CELL_NORMAL ? 'normal' : 'lesion';
        const cls = (v: number) => (v > 225 ? 'glass' : v > 145 ? 'normal' : 'lesion');
        if (cls(g) === expected) agree++;
        if (cls(g2) === expected) agree2++;
      }
      expect(agree).toBe(slide.cellKind.length);
      expect(agree2 / slide.cellKind.length).toBeGreaterThan(0.99);
      // and the tumour cells hold their digit: ink (dark green) where the digit image has ink
      const S = slide.digitSize;
      const off = (slide.cellSize - S) / 2;
      const q = slide.cellKind.indexOf(CELL_TUMOUR);
      const img = slide.cellImage[q];
      const x0 = (q % slide.cols) * 32 + off + slide.cellShift[2 * q];
      const y0 = Math.floor(q / slide.cols) * 32 + off + slide.cellShift[2 * q + 1];
      const a: number[] = [];
      const b: number[] = [];
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) {
          a.push(files.cohort.bank.images[img * S * S + y * S + x]);
          b.push(full[((y0 + y) * slide.width + x0 + x) * 3 + 1]);
        }
      }
      const mean = (v: number[]) => v.reduce((s, t) => s + t, 0) / v.length;
      const ma = mean(a);
      const mb = mean(b);
      let cov = 0;
      let va = 0;
      let vb = 0;
      for (let i = 0; i < a.length; i++) {
        cov += (a[i] - ma) * (b[i] - mb);
        va += (a[i] - ma) ** 2;
        vb += (b[i] - mb) ** 2;
      }
      expect(cov / Math.sqrt(va * vb)).toBeLessThan(-0.9); // ink darkens green: strong negative correlation
    } finally {
      await src.close();
    }
  });

  it('extracts Z [N, d] and U [N, 16, d] whose sub-patches are the truth cells', async () => {
    const src = await openSlide(files.slides[0]);
    try {
      const tiling = await tileSlide(src, {
        lowRes: { level: 2 },
        highRes: { level: 0 },
        grid: { patchSize: 32 },
        tissue: { aT: 0.5, aH: 0.5 },
      });
      const n = tiling.grid.count;
      expect(tiling.subPatches!.k).toBe(16);
      // every all-tissue patch of the layout is kept (fourPt), and some border ones
      expect(n).toBeGreaterThanOrEqual(slide.fullPatches);
      expect(n).toBeLessThanOrEqual(slide.tissuePatches);
      // "encoder": the mean colour of a patch, d = 3 (raw [0, 255] values)
      const encoder = functionEncoder((x) => tf.mean(x, [1, 2]) as tf.Tensor2D, { dim: 3, inputSize: 32, normalization: 'none' });
      const f = await extractFeatures(src, planFromTiling(tiling), encoder, { config: { batchSize: 64 } });
      expect([f.n, f.k, f.dim]).toEqual([n, 16, 3]);
      expect(f.lowRes.length).toBe(n * 3);
      expect(f.highRes!.length).toBe(n * 16 * 3);
      // each sub-patch is exactly one cell; its mean green tells lesion cells from the rest
      const truth = digitTruthAt(slide, f.highResCoords!, 32);
      let lesionOk = 0;
      let lesion = 0;
      for (let j = 0; j < n * 16; j++) {
        expect(truth.tissue[j]).toBeLessThanOrEqual(1);
        const isLesion = truth.tumour[j] + truth.mimic[j] > 0;
        if (isLesion) lesion++;
        if ((f.highRes![j * 3 + 1] < 145) === isLesion) lesionOk++;
      }
      expect(lesion).toBe(slide.tumourCells + slide.mimicCells);
      expect(lesionOk).toBe(n * 16);
      // Z is the low-res patch: its mean colour is the mean of its 16 cells' (2x pyramid means)
      for (let i = 0; i < n; i++) {
        let g = 0;
        for (let j = 0; j < 16; j++) g += f.highRes![(i * 16 + j) * 3 + 1] / 16;
        expect(Math.abs(f.lowRes[i * 3 + 1] - g)).toBeLessThan(3);
      }
      // the positive slide's tumour sits in low-res patches that the truth counts
      const perPatch = digitTruthAt(slide, f.coords, 128);
      expect(perPatch.tumour.reduce((s2, v) => s2 + v, 0)).toBe(slide.tumourCells);
      expect(slide.tumourCells).toBeGreaterThan(0);
      encoder.dispose();
    } finally {
      await src.close();
    }
  });
});
