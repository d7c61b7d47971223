import { describe, expect, it } from 'vitest';
import {
  checkSplit,
  DataError,
  disposeBag,
  InMemoryDataset,
  parseSplit,
  ShapeError,
  subsetDataset,
  tf,
  validateBag,
  ValueError,
} from '../../src/core/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

describe('splits', () => {
  it('reads the reference layout and strips extensions', () => {
    const s = parseSplit('{"train_names":["normal_001.tif","tumor_002"],"val_names":["a"],"test_names":["test_001"]}');
    expect(s).toEqual({ train: ['normal_001', 'tumor_002'], val: ['a'], test: ['test_001'] });
    expect(parseSplit({ train: ['x'] })).toEqual({ train: ['x'], val: [], test: [] });
  });

  it('rejects bad splits with a clear message', () => {
    expect(() => parseSplit('{oops')).toThrow(DataError);
    expect(() => parseSplit({})).toThrow(/lists no slide/);
    expect(() => parseSplit({ train_names: 'a' })).toThrow(/list of slide ids/);
    expect(() => checkSplit({ train: ['a'], val: ['zz'], test: [] }, { ids: ['a'] }, 'lr.h5')).toThrow(
      /val list names slides that are not in lr\.h5: zz\. Extract features for them, or remove them from the split/,
    );
  });
});

describe('bags and datasets', () => {
  const bag = (id: string, n: number, label = 0) => ({
    id,
    label,
    lowRes: tf.ones([n, 4]) as tf.Tensor2D,
    highRes: tf.ones([n, 3, 4]) as tf.Tensor3D,
    coords: new Int32Array(2 * n),
  });

  it('validateBag names the slide and the problem', () => {
    const b = bag('s1', 2, 1);
    expect(() => validateBag(b, { dim: 5 })).toThrow(/slide 's1': expected lowRes features of width d = 5/);
    expect(() => validateBag(b, { k: 16 })).toThrow(/expected k = 16 sub-patches/);
    expect(() => validateBag(b, { numClasses: 1 })).toThrow(ValueError);
    expect(() => validateBag({ id: 'e', lowRes: tf.zeros([0, 4]) as tf.Tensor2D })).toThrow(/empty bag/);
    expect(() => validateBag({ id: 'n', lowRes: tf.tensor2d([[1, NaN]]) })).toThrow(/contain NaN at flat index 1/);
    expect(() => validateBag({ id: 'r', lowRes: tf.ones([2, 3, 4]) as never })).toThrow(ShapeError);
    expect(() => validateBag({ id: 'm', lowRes: tf.ones([2, 4]) as tf.Tensor2D }, { require: ['highRes'] })).toThrow(/no highRes/);
    expect(() => validateBag(b, { dim: 4, k: 3, numClasses: 2, require: ['lowRes', 'highRes'] })).not.toThrow();
    disposeBag(b);
  });

  it('InMemoryDataset loads clones, subsets and does not leak', async () => {
    const ds = new InMemoryDataset([bag('a', 2, 0), bag('b', 3, 1)]);
    expect(ds.ids).toEqual(['a', 'b']);
    expect(ds.labels).toEqual([0, 1]);
    expect(ds.dim).toBe(4);
    expect(ds.k).toBe(3);
    await expectNoLeak(async () => {
      const b = await ds.load('b', ['lowRes']);
      expect(b.highRes).toBeUndefined();
      expectAllclose(b.lowRes!, new Array(12).fill(1));
      disposeBag(b);
    });
    const sub = subsetDataset(ds, ['b']);
    expect(sub.labels).toEqual([1]);
    await expect(sub.load('a')).rejects.toThrow(/not in this subset/);
    await expect(ds.load('zz')).rejects.toThrow(DataError);
    expect(() => subsetDataset(ds, ['q'])).toThrow(/'q' is not in the dataset/);
    expect(() => new InMemoryDataset([bag('a', 1), bag('a', 1)])).toThrow(/appears twice/);
    ds.dispose();
  });
});
