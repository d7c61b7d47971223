import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.js';
import { CosineIndex, applyStateUpdate, computeStateUpdate, createTsuState, similarSet, type StateUpdateNet } from '../../src/tsu/index.js';
import { clusteredFeatures } from '../mdp/stand_in_classifier.js';
import { tf } from '../../src/core/index.js';

describe('CosineIndex', () => {
  it.each([true, false])('finds exactly the similar set of similarSet, for many states, taus and widths (buckets %s)', (buckets) => {
    const rng = createRng(0);
    for (const d of [3, 8, 33, 96, 384]) {
      const n = 150;
      const f = clusteredFeatures(n, d, d, { clusterSize: 6, sigmaLo: 0.02, sigmaHi: 0.4 });
      // a common direction (as in real features), a zero row, a row below the norm floor, an anti-aligned copy
      for (let i = 0; i < n * d; i++) f.z[i] += 1.5;
      f.z.fill(0, 5 * d, 6 * d);
      for (let j = 0; j < d; j++) f.z[7 * d + j] = 1e-9 * f.z[8 * d + j];
      for (let j = 0; j < d; j++) f.z[9 * d + j] = -f.z[10 * d + j];
      const state = createTsuState(f.z, d);
      const index = new CosineIndex(state, { buckets });
      for (let k = 0; k < 60; k++) {
        const a = rng.int(n);
        if (state.visited[a]) continue;
        for (const tau of [0.3, 0.8, 0.95, 0.999, 1]) {
          for (const rewriteOnce of [true, false]) {
            const expected = Array.from(similarSet(state, a, { tau, rewriteOnce }));
            expect(Array.from(index.similar(state, a, tau, rewriteOnce)), `d ${d} a ${a} tau ${tau}`).toEqual(expected);
          }
        }
        // change a few rows and keep the index in step, as the environment does
        if (k % 3 === 0) {
          const net: StateUpdateNet = { dim: d, apply: (x) => tf.tidy(() => tf.slice(x, [0, 0], [-1, d]) as tf.Tensor2D) };
          const v = Float32Array.from({ length: d }, () => rng.normal());
          const change = computeStateUpdate(state, a, v, net, { tau: 0.8 }, index);
          applyStateUpdate(state, a, change);
          index.updateRows(state, change.rows);
        }
      }
    }
  });

  it.each([false, true])('stays exact when many rows change at once and when rows take their values from a table (as a tensor %s)', (asTensor) => {
    const d = 64;
    const n = 300;
    const f = clusteredFeatures(n, d, 9, { clusterSize: 10, sigmaLo: 0.02, sigmaHi: 0.2 });
    const state = createTsuState(f.z, d);
    const index = new CosineIndex(state, { buckets: true });
    if (asTensor) {
      const v = tf.tensor2d(f.v, [n, d]);
      index.setTable(v);
      v.dispose();
    } else {
      index.setTable(f.v);
    }
    const rng = createRng(4);
    for (let k = 0; k < 20; k++) {
      // 30 rows take values near other rows (a batch update), 3 rows take their table value
      const rows = rng.sample(n, 30);
      for (const i of rows) {
        const src = rng.int(n);
        for (let j = 0; j < d; j++) state.values[i * d + j] = f.z[src * d + j] + 0.01 * rng.normal();
        let s = 0;
        for (let j = 0; j < d; j++) s += state.values[i * d + j] ** 2;
        state.norms[i] = Math.sqrt(s);
      }
      index.updateRows(state, rows);
      for (const i of rng.sample(n, 3)) {
        state.values.set(f.v.subarray(i * d, i * d + d), i * d);
        let s = 0;
        for (let j = 0; j < d; j++) s += state.values[i * d + j] ** 2;
        state.norms[i] = Math.sqrt(s);
        index.useTableRow(i);
      }
      for (let q = 0; q < 10; q++) {
        const a = rng.int(n);
        expect(Array.from(index.similar(state, a, 0.9, false))).toEqual(Array.from(similarSet(state, a, { tau: 0.9, rewriteOnce: false })));
      }
    }
  });

  it.each([true, false])('stays exact over whole episodes under rewriteOnce, and after returning to a saved index (buckets %s)', (buckets) => {
    // clustered rows, as patch features have: the buckets then skip most of the slide
    const d = 48;
    const n = 900;
    const f = clusteredFeatures(n, d, 21, { clusterSize: 30, sigmaLo: 0.01, sigmaHi: 0.1 });
    const net: StateUpdateNet = { dim: d, apply: (x) => tf.tidy(() => tf.mul(tf.slice(x, [0, 0], [-1, d]), 0.5) as tf.Tensor2D) };
    const rng = createRng(7);
    const fresh = createTsuState(f.z, d);
    const index0 = new CosineIndex(fresh, { buckets });
    const index = index0.clone();
    let checked = 0;
    let nonEmpty = 0;
    for (const tau of [0.95, 0.8]) {
      for (let episode = 0; episode < 3; episode++) {
        const state = createTsuState(f.z, d);
        index.copyFrom(index0);
        let saved: { state: ReturnType<typeof createTsuState>; index: CosineIndex } | null = null;
        for (let t = 0; t < 90; t++) {
          let a = rng.int(n);
          while (state.visited[a]) a = rng.int(n);
          const expected = Array.from(similarSet(state, a, { tau, rewriteOnce: true }));
          expect(Array.from(index.similar(state, a, tau, true)), `tau ${tau} episode ${episode} step ${t}`).toEqual(expected);
          checked++;
          if (expected.length > 0) nonEmpty++;
          const v = Float32Array.from({ length: d }, () => rng.normal());
          const change = computeStateUpdate(state, a, v, net, { tau, rewriteOnce: true }, index);
          applyStateUpdate(state, a, change);
          index.updateRows(state, change.rows);
          if (t === 30) saved = { state: { ...state, values: state.values.slice(), norms: state.norms.slice(), visited: state.visited.slice(), rewritten: state.rewritten.slice() }, index: index.clone() };
        }
        // back to the state of step 30: the index restored from its copy answers for that state
        if (saved) {
          index.copyFrom(saved.index);
          for (let q = 0; q < 20; q++) {
            let a = rng.int(n);
            while (saved.state.visited[a]) a = rng.int(n);
            expect(Array.from(index.similar(saved.state, a, tau, true))).toEqual(Array.from(similarSet(saved.state, a, { tau, rewriteOnce: true })));
          }
        }
      }
    }
    // the similar sets were not trivially empty
    expect(checked).toBe(540);
    expect(nonEmpty).toBeGreaterThan(100);
  });
});
