import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, disposeBag, roundToFloat16, tf, type SlideBag } from '../../../src/core/index.js';
import { H5FeatureDataset, readSplitFile, writeFeatureFiles, writeSyntheticCohortFiles, type SyntheticCohortFiles } from '../../../src/node/index.js';
import { expectNoLeak, tempDirs } from '../../helpers.js';
import { H5Writer } from '../../../src/node/h5/h5_writer.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS, SyntheticDataset, type SyntheticCohort } from '../../../src/wsi/synthetic/features.js';

/** A fresh temporary directory, removed after the file's tests. */
const tempDir = tempDirs();


const tiny = SYNTHETIC_PRESETS.tiny;

/** Exact element-wise equality of two arrays (much faster than toEqual on large typed arrays). */
function expectSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) expect.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('synthetic cohort written and read back', () => {
  let dir: string;
  let cohort: SyntheticCohort;
  let files: SyntheticCohortFiles;

  beforeAll(async () => {
    dir = tempDir('sasha-h5-');
    cohort = generateSyntheticCohort(tiny);
    files = await writeSyntheticCohortFiles(dir, cohort);
  });
  afterAll(() => cohort.bags.forEach(disposeBag));

  it('writes lr.h5, hr.h5 and split.json, and nothing else', () => {
    expect(readdirSync(dir).sort()).toEqual(['hr.h5', 'lr.h5', 'split.json']);
    const split = JSON.parse(readFileSync(files.split, 'utf8'));
    expect(split).toEqual({ train_names: cohort.split.train, val_names: cohort.split.val, test_names: cohort.split.test });
  });

  it('gives back the float16-rounded tensors exactly, labels, coords and the split', async () => {
    const ds = await H5FeatureDataset.open(files);
    try {
      expect([...ds.ids].sort()).toEqual(cohort.bags.map((b) => b.id).sort());
      expect(ds.dim).toBe(16);
      expect(ds.k).toBe(16);
      expect(readSplitFile(files.split, ds)).toEqual(cohort.split);
      await expectNoLeak(async () => {
        for (const orig of cohort.bags) {
          const bag = await ds.load(orig.id);
          expect(bag.label).toBe(orig.label);
          expect(ds.labels[ds.ids.indexOf(orig.id)]).toBe(orig.label);
          expect(bag.lowRes!.shape).toEqual(orig.lowRes!.shape);
          expect(bag.highRes!.shape).toEqual(orig.highRes!.shape);
          expectSameValues(bag.lowRes!.dataSync(), roundToFloat16(orig.lowRes!.dataSync()), `${orig.id} lowRes`);
          expectSameValues(bag.highRes!.dataSync(), roundToFloat16(orig.highRes!.dataSync()), `${orig.id} highRes`);
          expect(bag.coords).toEqual(orig.coords);
          disposeBag(bag);
        }
      });
    } finally {
      ds.close();
    }
  });

  it('writes high-res sub-patch coords (N, k, 2) readable by the raw reader', async () => {
    const { openH5, readRaw, bytesToInt32 } = await import('../../../src/node/h5/h5file.js');
    const f = await openH5(files.hrH5);
    try {
      const bag = cohort.bags[0];
      const raw = await readRaw(f, `${bag.id}/coords`);
      expect(raw.shape).toEqual([bag.lowRes!.shape[0], 16, 2]);
      const c = bytesToInt32(raw.bytes, raw.type, 'hr coords');
      // Patch 0, sub-patch j = 4 * xi + yi = 4 * 2 + 3 = 11 sits at (x0 + 2 * 512, y0 + 3 * 512).
      expect([c[11 * 2], c[11 * 2 + 1]]).toEqual([bag.coords![0] + 1024, bag.coords![1] + 1536]);
    } finally {
      f.close();
    }
  });

  it('writes the same bytes from the lazy dataset as from the in-memory cohort', async () => {
    const lazyDir = tempDir('sasha-h5-lazy-');
    const lazy = await writeSyntheticCohortFiles(lazyDir, new SyntheticDataset(tiny));
    const a = await H5FeatureDataset.open(files);
    const b = await H5FeatureDataset.open(lazy);
    try {
      expect(b.ids).toEqual(a.ids);
      for (const id of a.ids.slice(0, 4)) {
        const x = await a.load(id);
        const y = await b.load(id);
        expectSameValues(y.highRes!.dataSync(), x.highRes!.dataSync(), `${id} highRes`);
        disposeBag(x);
        disposeBag(y);
      }
      expect(readFileSync(lazy.split, 'utf8')).toBe(readFileSync(files.split, 'utf8'));
    } finally {
      a.close();
      b.close();
    }
  });

  it('round-trips V as float32 and float32 feat when asked', async () => {
    const d2 = tempDir('sasha-h5-v-');
    const bags: SlideBag[] = [0, 1].map((s) => ({
      id: `s${s}`,
      label: s,
      lowRes: tf.tensor2d([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [3, 2]),
      aggregated: tf.tensor2d([1 / 3, 2, 3, 4, 5, -1e-7], [3, 2]),
    }));
    try {
      await writeFeatureFiles({ lrH5: join(d2, 'lr32.h5'), vH5: join(d2, 'v.h5') }, bags, { dtype: 'float32' });
      const ds = await H5FeatureDataset.open({ lrH5: join(d2, 'lr32.h5'), vH5: join(d2, 'v.h5') });
      expect(ds.parts).toEqual(['lowRes', 'aggregated']);
      const bag = await ds.load('s1');
      expect(bag.lowRes!.dataSync()).toEqual(bags[1].lowRes!.dataSync());
      expect(bag.aggregated!.dataSync()).toEqual(bags[1].aggregated!.dataSync());
      expect(bag.label).toBe(1);
      disposeBag(bag);
      ds.close();
    } finally {
      bags.forEach(disposeBag);
    }
  });

  it('reads a dataset opened from the low-res file alone', async () => {
    const ds = await H5FeatureDataset.open(files.lrH5);
    expect(ds.parts).toEqual(['lowRes', 'coords']);
    await expect(ds.load(ds.ids[0], ['highRes'])).rejects.toThrow(/has no highRes features.*Pass the high-res file/);
    ds.close();
  });
});

describe('bad input gets a clear DataError', () => {
  let dir: string;
  let cohort: SyntheticCohort;
  let files: SyntheticCohortFiles;

  beforeAll(async () => {
    dir = tempDir('sasha-h5-bad-');
    cohort = generateSyntheticCohort({ ...tiny, numSlides: 4 });
    files = await writeSyntheticCohortFiles(dir, cohort);
  });
  afterAll(() => cohort.bags.forEach(disposeBag));

  it('a missing file', async () => {
    await expect(H5FeatureDataset.open({ lrH5: join(dir, 'nope.h5') })).rejects.toThrow(
      /Cannot find the low-res feature file \(--lr-h5\) '.*nope\.h5'\. Check the path\./,
    );
  });

  it('a file that is not HDF5', async () => {
    const path = join(dir, 'features.pt');
    writeFileSync(path, 'PK\u0003\u0004 not an hdf5 file at all');
    const err = await H5FeatureDataset.open({ lrH5: path }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(/features\.pt' is not an HDF5 file \(no HDF5 signature\)\. Pass the \.h5 file/);
  });

  it('a float16 file truncated on disk', async () => {
    const path = join(dir, 'hr_cut.h5');
    copyFileSync(files.hrH5, path);
    const size = statSync(path).size;
    truncateSync(path, Math.floor(size * 0.7));
    const err = await H5FeatureDataset.open({ lrH5: files.lrH5, hrH5: path }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(
      new RegExp(`hr_cut\\.h5' is truncated: ${Math.floor(size * 0.7)} bytes on disk, but its header says ${size}\\..*copy the file again or re-run the feature extraction`),
    );
  });

  it('a missing slide group in the high-res file', async () => {
    const path = join(dir, 'hr_missing.h5');
    const three = cohort.bags.slice(0, 3);
    await writeFeatureFiles({ lrH5: join(dir, 'lr_three.h5'), hrH5: path }, three);
    const err = await H5FeatureDataset.open({ lrH5: files.lrH5, hrH5: path }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    const missing = cohort.bags[3].id;
    expect(err.message).toMatch(
      new RegExp(`hr_missing\\.h5' has no group for slide '${missing}', which the low-res file has\\. Extract this slide's features into the high-res feature file`),
    );
  });

  it('a dataset of the wrong rank (files swapped)', async () => {
    const err = await H5FeatureDataset.open({ lrH5: files.lrH5, hrH5: files.lrH5 }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(
      new RegExp(`lr\\.h5', slide '${cohort.bags[0].id}': expected 'feat' of rank 3 \\(N, k, d\\) in the high-res file, but got shape \\[\\d+, 16\\]\\. This looks like a low-res file`),
    );
  });

  it('a split naming a slide that is not in the file', async () => {
    const ds = await H5FeatureDataset.open(files);
    const path = join(dir, 'split_bad.json');
    writeFileSync(path, JSON.stringify({ train_names: [cohort.bags[0].id, 'tumor_999.tif'], val_names: [], test_names: [] }));
    expect(() => readSplitFile(path, ds)).toThrow(DataError);
    expect(() => readSplitFile(path, ds)).toThrow(/train list names slides that are not in '.*lr\.h5': tumor_999\. Extract features for them, or remove them from the split/);
    await expect(ds.load('tumor_999')).rejects.toThrow(/Slide 'tumor_999' is not in '.*lr\.h5'.*Check the slide id or the split file/);
    expect(() => readSplitFile(join(dir, 'none.json'))).toThrow(/Cannot find the split file/);
    ds.close();
  });

  it('NaN features name the file, the slide and the fix', async () => {
    const path = join(dir, 'nan.h5');
    const bag: SlideBag = { id: 'bad_slide', label: 0, lowRes: tf.tensor2d([1, NaN, 3, 4], [2, 2]) };
    await writeFeatureFiles({ lrH5: path }, [bag]);
    disposeBag(bag);
    const ds = await H5FeatureDataset.open(path);
    await expect(ds.load('bad_slide')).rejects.toThrow(/nan\.h5', slide 'bad_slide': features contain NaN at flat index 1\. Re-extract/);
    ds.close();
  });

  it('a failed write leaves no file behind, not even a temporary one', async () => {
    const out = tempDir('sasha-h5-atomic-');
    // The second slide has no high-res features: the write fails after the first slide.
    const bags: SlideBag[] = [
      { ...cohort.bags[0] },
      { id: 'no_hr', label: 0, lowRes: cohort.bags[1].lowRes },
    ];
    await expect(writeFeatureFiles({ lrH5: join(out, 'lr.h5'), hrH5: join(out, 'hr.h5') }, bags)).rejects.toThrow(
      /Slide 'no_hr' has no high-res features to write/,
    );
    expect(readdirSync(out)).toEqual([]);
    // An existing file is only replaced by a complete one.
    writeFileSync(join(out, 'lr.h5'), 'old');
    await expect(writeFeatureFiles({ lrH5: join(out, 'lr.h5'), hrH5: join(out, 'hr.h5') }, bags)).rejects.toThrow(DataError);
    expect(readFileSync(join(out, 'lr.h5'), 'utf8')).toBe('old');
    expect(readdirSync(out)).toEqual(['lr.h5']);
  });
});

describe('H5Writer float16 datasets', () => {
  it('stores halves exactly, odd element counts included, and rejects bad shapes', async () => {
    const dir = tempDir('sasha-h5w-');
    const path = join(dir, 'half.h5');
    const w = await H5Writer.create(path);
    // 0, -0, 1, 65504, smallest subnormal, infinity, and a rounding case (1 + 2^-11 -> 1).
    const values = [0, -0, 1, 65504, 2 ** -24, Infinity, 1 + 2 ** -11];
    w.writeFloat16('a/feat', values, [7]);
    w.writeFloat16('b/feat', new Float32Array(3 * 3 * 5).map((_, i) => i / 7), [3, 3, 5]);
    expect(() => w.writeFloat16('c', [1, 2, 3], [2, 2])).toThrow(/shape \[2, 2\] needs 4 values, but got 3/);
    expect(() => w.writeFloat16('e', [1, 70000], [2])).toThrow(/value 70000 at flat index 1 is beyond the float16 range \(65504\)\. Write with dtype 'float32'/);
    await w.commit();
    expect(existsSync(path)).toBe(true);
    const { openH5, readRaw } = await import('../../../src/node/h5/h5file.js');
    const f = await openH5(path);
    const raw = await readRaw(f, 'a/feat');
    expect(raw.type).toBe('float16');
    expect(Array.from(new Uint16Array(raw.bytes.buffer))).toEqual([0x0000, 0x8000, 0x3c00, 0x7bff, 0x0001, 0x7c00, 0x3c00]);
    const rows = await readRaw(f, 'b/feat', { start: 1, count: 2 });
    expect(rows.shape).toEqual([2, 3, 5]);
    const { bytesToFloat32 } = await import('../../../src/node/h5/h5file.js');
    expect(bytesToFloat32(rows.bytes, rows.type)).toEqual(roundToFloat16(new Float32Array(30).map((_, i) => (i + 15) / 7)));
    f.close();
    expect(() => w.writeFloat16('d', [1], [1])).toThrow(/already committed or aborted/);
  });

  const hasH5py = (() => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import h5py'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(hasH5py)('writes files that h5py reads as float16 with the same bits (runs where h5py is installed)', async () => {
    const dir = tempDir('sasha-h5py-');
    const cohort = generateSyntheticCohort({ ...tiny, numSlides: 3 });
    try {
      const files = await writeSyntheticCohortFiles(dir, cohort);
      const script = [
        'import h5py, json, sys, numpy as np',
        `f = h5py.File(${JSON.stringify(files.hrH5)}, "r")`,
        'out = {}',
        'for k in f.keys():',
        '    d = f[k]["feat"]',
        '    out[k] = [str(d.dtype), list(d.shape), int(f[k].attrs["label"]), d[()].view(np.uint16).ravel()[:50].tolist()]',
        'print(json.dumps(out))',
      ].join('\n');
      const got = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' }));
      for (const bag of cohort.bags) {
        const [dtype, shape, label, bits] = got[bag.id];
        expect(dtype).toBe('float16');
        expect(shape).toEqual(bag.highRes!.shape);
        expect(label).toBe(bag.label);
        const { encodeFloat16 } = await import('../../../src/core/index.js');
        expect(bits).toEqual(Array.from(encodeFloat16(bag.highRes!.dataSync().slice(0, 50))));
      }
    } finally {
      cohort.bags.forEach(disposeBag);
    }
  });
});
