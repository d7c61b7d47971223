import { describe, expect, it } from 'vitest';
import { ShapeError, createRng, tf } from '../../src/core/index.js';
import { IncrementalAttentionPool, RowScoreCache } from '../../src/mdp/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** float64 dense pooling: (1/M) sum_m sum_i softmax_i(L[:, m]) S_i. */
function densePool(logits: Float32Array, values: Float32Array, n: number, d: number, m: number): Float64Array {
  const out = new Float64Array(d);
  for (let b = 0; b < m; b++) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, logits[i * m + b]);
    let z = 0;
    for (let i = 0; i < n; i++) z += Math.exp(logits[i * m + b] - max);
    for (let i = 0; i < n; i++) {
      const w = Math.exp(logits[i * m + b] - max) / z / m;
      for (let j = 0; j < d; j++) out[j] += w * values[i * d + j];
    }
  }
  return out;
}

describe('IncrementalAttentionPool', () => {
  it('pools by hand on a 3-row example', () => {
    // one branch, logits [0, 0, ln 2]: softmax = [1/4, 1/4, 1/2]; S = [[4], [8], [2]] -> 1 + 2 + 1 = 4
    const pool = new IncrementalAttentionPool(3, 1, 1);
    const logits = new Float32Array([0, 0, Math.LN2]);
    const values = new Float32Array([4, 8, 2]);
    pool.attach(logits, values);
    expectAllclose(pool.pooled(), [4], { rtol: 1e-6 });
    // row 1 becomes [0] with logit ln 2: softmax = [1/5, 2/5, 2/5] -> 0.8 + 0 + 0.8 = 1.6
    const oldLogits = logits.slice(1, 2);
    const oldValues = values.slice(1, 2);
    logits[1] = Math.LN2;
    values[1] = 0;
    pool.update([1], oldLogits, oldValues);
    expectAllclose(pool.pooled(), [1.6], { rtol: 1e-6 });
    expectAllclose(pool.attention(), [0.2, 0.4, 0.4], { rtol: 1e-6 });
  });

  it('follows random row changes, including logits that jump by hundreds, to float64 precision', () => {
    const n = 50;
    const d = 6;
    const m = 3;
    const rng = createRng(0);
    const logits = Float32Array.from({ length: n * m }, () => rng.normal());
    const values = Float32Array.from({ length: n * d }, () => rng.normal());
    const pool = new IncrementalAttentionPool(n, d, m);
    pool.attach(logits, values);
    for (let step = 0; step < 300; step++) {
      const rows = rng.sample(n, 1 + rng.int(5));
      const oldLogits = new Float32Array(rows.length * m);
      const oldValues = new Float32Array(rows.length * d);
      rows.forEach((i, r) => {
        oldLogits.set(logits.subarray(i * m, i * m + m), r * m);
        oldValues.set(values.subarray(i * d, i * d + d), r * d);
        for (let b = 0; b < m; b++) {
          // now and then a logit far above (or far below) the others: the row dominates, then leaves
          const jump = step % 37 === 0 ? 300 : step % 41 === 0 ? -300 : 0;
          logits[i * m + b] = rng.normal() * 3 + jump;
        }
        for (let j = 0; j < d; j++) values[i * d + j] = rng.normal();
      });
      pool.update(rows, oldLogits, oldValues);
      expectAllclose(pool.pooled(), densePool(logits, values, n, d, m), { rtol: 1e-6, atol: 1e-7 });
    }
    // the rows with logit +300 were replaced later: cancellation forced full passes
    expect(pool.fullRecomputes).toBeGreaterThan(0);
  });

  it('restores a snapshot', () => {
    const logits = new Float32Array([0, 1, 2, 3]);
    const values = new Float32Array([1, 2, 3, 4]);
    const pool = new IncrementalAttentionPool(4, 1, 1);
    pool.attach(logits, values);
    const snap = pool.snapshot();
    const before = pool.pooled().slice();
    logits[0] = 5;
    pool.update([0], new Float32Array([0]), new Float32Array([1]));
    expect(pool.pooled()[0]).not.toBeCloseTo(before[0], 3);
    logits[0] = 0;
    pool.restore(snap);
    expectAllclose(pool.pooled(), before, { rtol: 0, atol: 0 });
  });
});

describe('RowScoreCache', () => {
  it('scores all rows, re-scores changed rows, and leaks nothing', async () => {
    const w = tf.tensor2d([[1, 0, 2], [0, 1, -1]]); // d = 2 -> K = 3
    const scorer = (x: tf.Tensor2D) => tf.matMul(x, w) as tf.Tensor2D;
    const cache = new RowScoreCache(scorer, 3, 2);
    await expectNoLeak(() => {
      cache.scoreAll(new Float32Array([1, 2, 3, 4, 5, 6]), 2); // two batches
      // [1,2] -> [1, 2, 0]; [3,4] -> [3, 4, 2]; [5,6] -> [5, 6, 4]
      expect(Array.from(cache.scores)).toEqual([1, 2, 0, 3, 4, 2, 5, 6, 4]);
      cache.write([1], cache.score(new Float32Array([0, 1]), 1)); // [0,1] -> [0, 1, -1]
      expect(Array.from(cache.scores)).toEqual([1, 2, 0, 0, 1, -1, 5, 6, 4]);
      expect(() => cache.score(new Float32Array(3), 1)).toThrow(ShapeError);
    });
    w.dispose();
  });
});
