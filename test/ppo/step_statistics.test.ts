import { describe, expect, it } from 'vitest';
import { createRng, tf, DataError } from '../../src/core/index.js';
import { RandomPolicy, RolloutBuffer, type VersionTable } from '../../src/ppo/index.js';
import { stepQuantities, stepStatistics, stepStatisticsGrad } from '../../src/ppo/step_statistics.js';
import { expectAllclose, expectNoLeak, finiteDiff } from '../helpers.js';
import { recordEpisodes } from './episodes.js';

/** Per-step quantities by their definition, in float64, one step at a time over all N rows. */
function dense(table: VersionTable, l: ArrayLike<number>, c: ArrayLike<number>, s: ArrayLike<number>) {
  const B = table.numSamples;
  const logProbs = new Float64Array(B);
  const entropies = new Float64Array(B);
  const pooled = new Float64Array(B);
  for (const chunk of table.stepChunks(1)) {
    const N = chunk.numPatches;
    const t = chunk.sampleStart;
    let mx = -Infinity;
    for (let i = 0; i < N; i++) if (chunk.mask[i]) mx = Math.max(mx, l[chunk.versions[i]]);
    let z = 0;
    for (let i = 0; i < N; i++) if (chunk.mask[i]) z += Math.exp(l[chunk.versions[i]] - mx);
    let h = 0;
    for (let i = 0; i < N; i++) {
      if (!chunk.mask[i]) continue;
      const lp = l[chunk.versions[i]] - mx - Math.log(z);
      h -= Math.exp(lp) * lp;
    }
    const a = chunk.actionIndex[0];
    logProbs[t] = l[chunk.versions[a]] - mx - Math.log(z);
    entropies[t] = h;
    let mc = -Infinity;
    for (let i = 0; i < N; i++) mc = Math.max(mc, c[chunk.versions[i]]);
    let zc = 0;
    let p = 0;
    for (let i = 0; i < N; i++) {
      const w = Math.exp(c[chunk.versions[i]] - mc);
      zc += w;
      p += w * s[chunk.versions[i]];
    }
    pooled[t] = p / zc;
  }
  return { logProbs, entropies, pooled };
}

/**
 * Episodes where rows change several times, masks flip back and forth (not only the chosen
 * rows), and two episodes share S_0; logits spread over tens of nats.
 */
function awkwardTable(): VersionTable {
  const rng = createRng(3);
  const N = 9;
  const d = 2;
  const state = Float32Array.from({ length: N * d }, () => rng.normal());
  const buffer = new RolloutBuffer();
  for (let e = 0; e < 2; e++) {
    const mask = new Uint8Array(N).fill(1);
    mask[8] = 0; // starts masked
    buffer.startEpisode({ numPatches: N, dim: d, t: 0, budget: 6, actionMask: mask, state });
    for (let t = 0; t < 6; t++) {
      const m = mask.slice();
      if (t === 2) m[8] = 1; // unmasked later
      if (t === 3) m[7] = 0; // masked without being chosen
      if (t === 5) m[7] = 1; // and back
      const allowed = Array.from({ length: N }, (_, i) => i).filter((i) => m[i]);
      const action = allowed[rng.int(allowed.length)];
      const rows = Int32Array.from(new Set([action, 0, (t + e) % N])); // row 0 changes at every step
      const values = Float32Array.from({ length: rows.length * d }, () => rng.normal());
      buffer.recordStep({ actionMask: m, action, logProb: -1, reward: 0, changes: { changedRows: rows, changedValues: values } });
      m[action] = 0;
      mask.set(m);
    }
    buffer.finishEpisode({ terminated: true, truncated: false });
  }
  return buffer.versionTable();
}

function outputs(R: number, seed: number, spread: number) {
  const rng = createRng(seed);
  return {
    l: Float32Array.from({ length: R }, () => spread * rng.normal()),
    c: Float32Array.from({ length: R }, () => spread * rng.normal()),
    s: Float32Array.from({ length: R }, () => rng.normal()),
  };
}

describe('stepStatistics', () => {
  it('equals the per-step softmax over all rows (masks flipping both ways, rows changed often, shared S_0)', () => {
    const table = awkwardTable();
    expect(table.episodes[1].initialState).toBe(table.episodes[0].initialState);
    for (const spread of [0.5, 5, 15]) {
      const { l, c, s } = outputs(table.numVersions, 7, spread);
      const fast = stepStatistics(table, l, c, s);
      const ref = dense(table, l, c, s);
      expectAllclose(fast.logProbs, ref.logProbs, { rtol: 1e-10, atol: 1e-10 });
      expectAllclose(fast.entropies, ref.entropies, { rtol: 1e-9, atol: 1e-10 });
      expectAllclose(fast.pooled, ref.pooled, { rtol: 1e-10, atol: 1e-10 });
    }
  });

  it('has the gradient of finite differences of the per-step definition', () => {
    const table = awkwardTable();
    const R = table.numVersions;
    const { l, c, s } = outputs(R, 9, 2);
    const B = table.numSamples;
    const rng = createRng(4);
    const g = [0, 1, 2].map(() => Float64Array.from({ length: B }, () => rng.normal()));
    // f(l, c, s) = sum_t g0 log pi + g1 H + g2 P, by the definition
    const f = (x: Float64Array) => {
      const q = dense(table, x.subarray(0, R), x.subarray(R, 2 * R), x.subarray(2 * R));
      let total = 0;
      for (let t = 0; t < B; t++) total += g[0][t] * q.logProbs[t] + g[1][t] * q.entropies[t] + g[2][t] * q.pooled[t];
      return total;
    };
    const x0 = Float64Array.from([...l, ...c, ...s]);
    const numeric = finiteDiff(f, x0, 1e-5);
    const values = stepStatistics(table, l, c, s);
    const { dl, dc, ds } = stepStatisticsGrad(table, l, c, s, values, g[0], g[1], g[2]);
    expectAllclose([...dl, ...dc, ...ds], numeric, { rtol: 1e-4, atol: 1e-5 });
    expect(Math.max(...Array.from(numeric, Math.abs))).toBeGreaterThan(0.1);
  });

  it('is a differentiable tensor op (stepQuantities) that holds no tensor', async () => {
    const { buffer } = recordEpisodes({ numPatches: 10, dim: 3, budget: 4, rewrites: [1, 3] }, new RandomPolicy({ seed: 2 }), 2, 5);
    const table = buffer.versionTable();
    const { l, c, s } = outputs(table.numVersions, 11, 1);
    const lt = tf.tensor1d(l);
    const ct = tf.tensor1d(c);
    const st = tf.tensor1d(s);
    const probe = tf.randomNormal([3, table.numSamples], 0, 1, 'float32', 5);
    const loss = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => {
      const q = stepQuantities(table, a as tf.Tensor1D, b as tf.Tensor1D, d as tf.Tensor1D);
      return tf.sum(tf.mul(tf.stack([q.logProbs, q.entropies, q.pooled]), probe)) as tf.Scalar;
    };
    await expectNoLeak(() => {
      const grads = tf.grads(loss)([lt, ct, st]);
      const p = probe.arraySync() as number[][];
      const values = stepStatistics(table, l, c, s);
      const ref = stepStatisticsGrad(table, l, c, s, values, p[0], p[1], p[2]);
      expectAllclose(grads[0], ref.dl, { rtol: 1e-6, atol: 1e-7 });
      expectAllclose(grads[1], ref.dc, { rtol: 1e-6, atol: 1e-7 });
      expectAllclose(grads[2], ref.ds, { rtol: 1e-6, atol: 1e-7 });
      tf.dispose(grads);
    });
    tf.dispose([lt, ct, st, probe]);
  });

  it('refuses outputs of the wrong length, non-finite outputs and a softmax that underflows', () => {
    const table = awkwardTable();
    const R = table.numVersions;
    const { l, c, s } = outputs(R, 1, 1);
    expect(() => stepStatistics(table, l.slice(1), c, s)).toThrow(/one value per row version/);
    const bad = l.slice();
    bad[3] = NaN;
    expect(() => stepStatistics(table, bad, c, s)).toThrow(DataError);
    // one version far above all others, never allowed at the first step: exp underflows there
    const far = l.slice();
    far[R - 1] = 5000;
    expect(() => stepStatistics(table, far, c, s)).toThrow(/underflows/);
  });
});
