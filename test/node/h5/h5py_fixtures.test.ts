// Reads files written by h5py (test/fixtures/make_h5_fixtures.py): the reference code's layout
// with float16 `feat` and int64 `label` attributes, and CLAM's chunked per-slide files.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { disposeBag, roundToFloat16 } from '../../../src/core/index.js';
import { ClamFeatureDataset, H5FeatureDataset, readLabelCsv, readSplitFile } from '../../../src/node/index.js';
import { expectNoLeak, tempDirs } from '../../helpers.js';

/** A fresh temporary directory, removed after the file's tests. */
const tempDir = tempDirs();


const dir = new URL('../../fixtures/h5/', import.meta.url).pathname;
const SLIDES = [
  { id: 'normal_001', label: 0, n: 4 },
  { id: 'tumor_002', label: 1, n: 5 },
  { id: 'test_003', label: 1, n: 3 },
];
const D = 8;
const K = 4;

/** The fixture formulas, rounded as numpy does: float64 -> float32 -> float16. */
function expectedZ(s: number, n: number): Float32Array {
  const v: number[] = [];
  for (let i = 0; i < n; i++) for (let e = 0; e < D; e++) v.push(Math.fround(0.37 * (s + 1) * i - 0.11 * e + 0.001 * s));
  return roundToFloat16(v);
}
function expectedU(s: number, n: number): Float32Array {
  const v: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < K; j++) for (let e = 0; e < D; e++) v.push(Math.fround(0.5 * i - 0.25 * j + 0.03125 * e - s));
  return roundToFloat16(v);
}

describe('h5py-written reference files', () => {
  it('reads float16 Z and U, float32 V, int64 coords and BigInt labels exactly', async () => {
    const ds = await H5FeatureDataset.open({ lrH5: dir + 'reference_lr.h5', hrH5: dir + 'reference_hr.h5', vH5: dir + 'reference_v.h5' });
    try {
      // h5py lists groups in name order.
      expect(ds.ids).toEqual(['normal_001', 'test_003', 'tumor_002']);
      expect(ds.labels).toEqual([0, 1, 1]);
      expect(ds.dim).toBe(D);
      expect(ds.k).toBe(K);
      expect(ds.parts).toEqual(['lowRes', 'highRes', 'aggregated', 'coords']);
      await expectNoLeak(async () => {
        for (const [s, { id, label, n }] of SLIDES.entries()) {
          expect(ds.numPatches(id)).toBe(n);
          const bag = await ds.load(id);
          expect(bag.label).toBe(label);
          expect(bag.lowRes!.shape).toEqual([n, D]);
          expect(bag.highRes!.shape).toEqual([n, K, D]);
          expect(bag.lowRes!.dataSync()).toEqual(expectedZ(s, n));
          expect(bag.highRes!.dataSync()).toEqual(expectedU(s, n));
          const v: number[] = [];
          for (let i = 0; i < n; i++) for (let e = 0; e < D; e++) v.push(Math.fround(0.01 * (i + 1) * (e - 3) + s));
          expect(Array.from(bag.aggregated!.dataSync())).toEqual(v);
          // coords = (i * 2048, (i % 2) * 2048)
          expect(Array.from(bag.coords!)).toEqual(Array.from({ length: n }, (_, i) => [i * 2048, (i % 2) * 2048]).flat());
          disposeBag(bag);
        }
      });
      // Slide normal_001, row 1, column 0: 0.37 = 2^-2 * 1.48; mantissa 0.48 * 1024 = 491.52 rounds
      // to 492, so the half is 0x35ec = 2^-2 * (1 + 492/1024) = 0.3701171875.
      const bag = await ds.load('normal_001', ['lowRes']);
      expect(bag.lowRes!.dataSync()[D]).toBe(0.3701171875);
      expect(bag.highRes).toBeUndefined();
      disposeBag(bag);
    } finally {
      ds.close();
    }
  });

  it('reads the reference split JSON (file extensions stripped)', () => {
    const tmp = tempDir('sasha-split-');
    const path = join(tmp, 'split_1.json');
    writeFileSync(path, JSON.stringify({ train_names: ['normal_001.tif', 'tumor_002.tif'], val_names: [], test_names: ['test_003'] }));
    expect(readSplitFile(path, { ids: ['normal_001', 'tumor_002', 'test_003'] })).toEqual({
      train: ['normal_001', 'tumor_002'],
      val: [],
      test: ['test_003'],
    });
    // CLAM's splits_0.csv: a pandas frame with an index column and ragged train/val/test columns.
    const csv = join(tmp, 'splits_0.csv');
    writeFileSync(csv, ',train,val,test\n0,normal_001,tumor_002,test_003\n1,slide_x,,\n');
    expect(readSplitFile(csv)).toEqual({ train: ['normal_001', 'slide_x'], val: ['tumor_002'], test: ['test_003'] });
  });
});

describe('CLAM per-slide feature files', () => {
  it('reads features and coords from h5_files/<id>.h5, labels from a CSV', async () => {
    const tmp = tempDir('sasha-clam-');
    const csv = join(tmp, 'labels.csv');
    writeFileSync(csv, 'case_id,slide_id,label\np1,normal_001,normal_tissue\np2,tumor_002,tumor_tissue\np3,test_003.tif,tumor_tissue\n');
    const labels = readLabelCsv(csv, { labelMap: { normal_tissue: 0, tumor_tissue: 1 } });
    expect([...labels.entries()]).toEqual([
      ['normal_001', 0],
      ['tumor_002', 1],
      ['test_003', 1],
    ]);
    const ds = await ClamFeatureDataset.open(dir + 'clam', { labels });
    expect(ds.ids).toEqual(['normal_001', 'test_003', 'tumor_002']);
    expect(ds.labels).toEqual([0, 1, 1]);
    expect(ds.dim).toBe(6);
    expect(ds.parts).toEqual(['lowRes', 'coords']);
    await expectNoLeak(async () => {
      for (const [s, { id, n }] of SLIDES.entries()) {
        const bag = await ds.load(id);
        const want: number[] = [];
        for (let i = 0; i < n; i++) for (let e = 0; e < 6; e++) want.push(i * 0.5 + e * 0.125 - s);
        expect(Array.from(bag.lowRes!.dataSync())).toEqual(want);
        expect(Array.from(bag.coords!)).toEqual(Array.from({ length: n }, (_, i) => [i * 2048, (i % 2) * 2048]).flat());
        disposeBag(bag);
      }
    });
    await expect(ds.load('normal_001', ['highRes'])).rejects.toThrow(/low-res features and coords only, not highRes/);
    expect(() => readLabelCsv(csv)).toThrow(/label 'normal_tissue' is not a class index and not in labelMap/);
  });

  it('tells reference-layout files and CLAM files apart', async () => {
    await expect(H5FeatureDataset.open(dir + 'clam/h5_files/normal_001.h5')).rejects.toThrow(/holds no slide groups.*use ClamFeatureDataset/);
    await expect(H5FeatureDataset.open({ lrH5: dir + 'reference_hr.h5' })).rejects.toThrow(
      /reference_hr\.h5', slide 'normal_001': expected 'feat' of rank 2 \(N, d\).*looks like a high-res file/,
    );
  });
});
