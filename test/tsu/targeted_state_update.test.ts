import { describe, expect, it } from 'vitest';
import { DataError, ShapeError, ValueError, tf } from '../../src/core/index.js';
import {
  StateMlp,
  applyStateUpdate,
  cloneTsuState,
  computeStateUpdate,
  createTsuState,
  globalStateUpdate,
  resolveTsuConfig,
  rowChangesToState,
  similarSet,
  targetedStateUpdate,
  type StateUpdateNet,
} from '../../src/tsu/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** f([v, sa, si]) = 1 v + 10 sa + 100 si: every input block leaves its own trace. */
function tracingNet(dim: number): StateUpdateNet {
  return {
    dim,
    apply: (x) =>
      tf.tidy(() => {
        const v = tf.slice(x, [0, 0], [-1, dim]);
        const sa = tf.slice(x, [0, dim], [-1, dim]);
        const si = tf.slice(x, [0, 2 * dim], [-1, dim]);
        return tf.addN([v, tf.mul(sa, 10), tf.mul(si, 100)]) as tf.Tensor2D;
      }),
  };
}

/** f([v, sa, si]) = 2 si: keeps the direction of each row, so rewritten rows stay similar. */
function doublingNet(dim: number): StateUpdateNet {
  return { dim, apply: (x) => tf.tidy(() => tf.mul(tf.slice(x, [0, 2 * dim], [-1, dim]), 2) as tf.Tensor2D) };
}

// A hand-made 5-row state, d = 2. Cosines with row 0 = [1, 0]:
//   row 1 [0.99, 0.1]: 0.99 / sqrt(0.9801 + 0.01) = 0.99 / 0.994987 = 0.99499  (>= 0.95: similar)
//   row 2 [0, 1]:      0
//   row 3 [-2, 0]:     -1 -> |cos| = 1                                    (similar, anti-aligned)
//   row 4 [0.7, 0.7]:  0.7 / 0.98995 = 0.70711
const S0 = [1, 0, 0.99, 0.1, 0, 1, -2, 0, 0.7, 0.7];

describe('targetedStateUpdate', () => {
  it('gives the hand-computed state on a 5-row example', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    const { state: s1, similarSet: c, rows, values } = targetedStateUpdate(s0, 0, [3, 4], tracingNet(2), { tau: 0.95 });
    // C = {1, 3}; f = V(a) + 10 S(a) + 100 S(i), with V(a) = [3, 4], S(a) = [1, 0]:
    //   row 1: [3, 4] + [10, 0] + [99, 10]  = [112, 14]
    //   row 3: [3, 4] + [10, 0] + [-200, 0] = [-187, 4]
    //   row 0 <- V(a) = [3, 4]; rows 2 and 4 unchanged.
    expect(Array.from(c)).toEqual([1, 3]);
    expect(Array.from(rows)).toEqual([0, 1, 3]);
    expectAllclose(values, [3, 4, 112, 14, -187, 4]);
    expectAllclose(s1.values, [3, 4, 112, 14, 0, 1, -187, 4, 0.7, 0.7]);
    expect(Array.from(s1.visited)).toEqual([1, 0, 0, 0, 0]);
    expect(Array.from(s1.rewritten)).toEqual([0, 1, 0, 1, 0]);
    // norms follow the values: ||[112, 14]|| = 112.8717
    expectAllclose(Array.from(s1.norms), [5, 112.8716, 1, 187.0428, 0.98995], { rtol: 1e-5 });
    // pure: the input state is untouched
    expectAllclose(s0.values, S0);
    expect(Array.from(s0.visited)).toEqual([0, 0, 0, 0, 0]);
  });

  it('uses |cos| >= tau with the threshold included', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    // tau = 0.7 keeps row 4 (cos 0.70711); tau = 0.99499 keeps row 1 only if tau <= 0.994987
    expect(Array.from(similarSet(s0, 0, { tau: 0.7 }))).toEqual([1, 3, 4]);
    expect(Array.from(similarSet(s0, 0, { tau: 0.995 }))).toEqual([3]);
    expect(Array.from(similarSet(s0, 0, { tau: 1 }))).toEqual([3]);
    // from row 2 = [0, 1]: row 4 has cos 0.7071, row 1 has 0.1 / 0.994987 = 0.1005
    expect(Array.from(similarSet(s0, 2, { tau: 0.7 }))).toEqual([4]);
  });

  it('rewrites a row at most once with rewriteOnce, and again without it (reference §5.3)', () => {
    // rows 0, 1, 2 point along x; rows 3, 4 along y.
    const z = new Float32Array([1, 0, 1, 0.01, 1, 0.02, 0, 1, 0.01, 1]);
    const net = doublingNet(2);
    for (const rewriteOnce of [true, false]) {
      const s0 = createTsuState(z, 2);
      // step 1, a = 0, V(0) = [1, 0.005]: C = {1, 2} (cos 0.99995 and 0.9998), both doubled
      const s1 = targetedStateUpdate(s0, 0, [1, 0.005], net, { tau: 0.95, rewriteOnce }).state;
      expectAllclose(s1.values, [1, 0.005, 2, 0.02, 2, 0.04, 0, 1, 0.01, 1]);
      // step 2, a = 1 (a rewritten row may still be chosen), V(1) = [7, 0]:
      //   row 0 is visited: never rewritten, keeps V(0) although similar;
      //   row 2 was rewritten at step 1: skipped with rewriteOnce, doubled again without.
      const step2 = targetedStateUpdate(s1, 1, [7, 0], net, { tau: 0.95, rewriteOnce });
      if (rewriteOnce) {
        expect(Array.from(step2.similarSet)).toEqual([]);
        expectAllclose(step2.state.values, [1, 0.005, 7, 0, 2, 0.04, 0, 1, 0.01, 1]);
      } else {
        expect(Array.from(step2.similarSet)).toEqual([2]);
        expectAllclose(step2.state.values, [1, 0.005, 7, 0, 4, 0.08, 0, 1, 0.01, 1]);
      }
      expect(Array.from(step2.state.visited)).toEqual([1, 1, 0, 0, 0]);
      // step 3, a = 3: row 4 (cos 0.99995) is rewritten; visited rows 0 and 1 keep their V
      const step3 = targetedStateUpdate(step2.state, 3, [0, 5], net, { tau: 0.95, rewriteOnce });
      expect(Array.from(step3.similarSet)).toEqual([4]);
      expectAllclose(step3.state.values.subarray(0, 4), [1, 0.005, 7, 0]);
      expectAllclose(step3.state.values.subarray(6), [0, 5, 0.02, 2]);
    }
  });

  it('feeds f_S the rows in the order [V(a), S(a), S(i)] and matches StateMlp on the explicit input', () => {
    const d = 4;
    const fS = new StateMlp({ dim: d, hiddenDim: 6, seed: 3 });
    // rows 1 and 2 are near row 0; row 3 is not
    const z = new Float32Array([1, 2, 3, 4, 1.1, 2, 3, 4, 1, 2.1, 3, 4, -4, 3, -2, 1]);
    const v = [0.5, -0.5, 0.25, 2];
    const s0 = createTsuState(z, d);
    const out = targetedStateUpdate(s0, 0, v, fS, { tau: 0.95 });
    expect(Array.from(out.similarSet)).toEqual([1, 2]);
    const x = tf.tensor2d([
      [...v, ...z.subarray(0, 4), ...z.subarray(4, 8)],
      [...v, ...z.subarray(0, 4), ...z.subarray(8, 12)],
    ]);
    const expected = fS.apply(x);
    expectAllclose(out.values.subarray(d), expected, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([x, expected]);
    fS.dispose();
  });

  it('creates no lasting tensor (f_S keeps its split first-layer kernel until disposed)', async () => {
    const fS = new StateMlp({ dim: 2, hiddenDim: 4 });
    const s0 = createTsuState(new Float32Array(S0), 2);
    const before = tf.memory().numTensors;
    targetedStateUpdate(s0, 0, [1, 1], fS); // the first update cuts the kernel in two blocks
    expect(tf.memory().numTensors).toBe(before + 2);
    await expectNoLeak(() => {
      for (let a = 0; a < 5; a++) targetedStateUpdate(s0, a, [1, 1], fS);
    });
    fS.dispose();
    expect(tf.memory().numTensors).toBe(before - 6); // its 6 variables and the 2 blocks
  });

  it('rejects bad input with clear errors', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    const net = tracingNet(2);
    const s1 = targetedStateUpdate(s0, 0, [3, 4], net).state;
    expect(() => targetedStateUpdate(s1, 0, [3, 4], net)).toThrow(ValueError);
    expect(() => targetedStateUpdate(s1, 0, [3, 4], net)).toThrow(/row 0 was already visited.*action mask/);
    expect(() => targetedStateUpdate(s0, 5, [3, 4], net)).toThrow(/integer in \[0, 5\), but got 5/);
    expect(() => targetedStateUpdate(s0, -1, [3, 4], net)).toThrow(ValueError);
    expect(() => targetedStateUpdate(s0, 1.5, [3, 4], net)).toThrow(ValueError);
    expect(() => targetedStateUpdate(s0, 1, [3, 4, 5], net)).toThrow(ShapeError);
    expect(() => targetedStateUpdate(s0, 1, [3, 4, 5], net)).toThrow(/width d = 2, but got 3 values/);
    expect(() => targetedStateUpdate(s0, 1, [3, NaN], net)).toThrow(DataError);
    for (const tau of [0, -0.5, 1.01, NaN]) {
      expect(() => targetedStateUpdate(s0, 1, [3, 4], net, { tau })).toThrow(/TsuConfig.tau to be a finite number in \(0, 1\]/);
    }
    expect(() => resolveTsuConfig({ tua: 0.9 } as never)).toThrow(/Did you mean 'tau'/);
    expect(() => targetedStateUpdate(s0, 0, [3, 4], tracingNet(3))).toThrow(/f_S of width d = 2/);
    expect(() => computeStateUpdate(s0, 0, [3, 4], null, { update: 'tsu' })).toThrow(/needs f_S/);
    expect(() => createTsuState(new Float32Array([1, 2, 3]), 2)).toThrow(ShapeError);
    expect(() => createTsuState(new Float32Array([1, NaN]), 2)).toThrow(DataError);
    expect(() => createTsuState(new Float32Array([1, 2, 3, Infinity]), 2)).toThrow(/row 1 holds Infinity/);
  });
});

describe('globalStateUpdate', () => {
  it('rewrites every unvisited row but a, whatever its cosine', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    const net = tracingNet(2);
    const s1 = targetedStateUpdate(s0, 2, [9, 9], net).state; // C = {4}? cos([0,1],[0.7,0.7]) = 0.707 < 0.95: C = {}
    expectAllclose(s1.values, [1, 0, 0.99, 0.1, 9, 9, -2, 0, 0.7, 0.7]);
    const { state: s2, similarSet: c } = globalStateUpdate(s1, 0, [3, 4], net);
    // every unvisited row except a = 0: {1, 3, 4}; row 2 (visited) keeps V(2) = [9, 9]
    expect(Array.from(c)).toEqual([1, 3, 4]);
    // row 4: [3, 4] + [10, 0] + [70, 70] = [83, 74]
    expectAllclose(s2.values, [3, 4, 112, 14, 9, 9, -187, 4, 83, 74]);
  });
});

describe('state helpers', () => {
  it('rowChangesToState replays the changes of several steps', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    const net = tracingNet(2);
    const steps = [];
    let s = s0;
    for (const [a, v] of [[0, [3, 4]], [2, [1, 1]], [4, [0, 2]]] as const) {
      const out = targetedStateUpdate(s, a, v, net);
      steps.push(out);
      s = out.state;
    }
    expectAllclose(rowChangesToState(s0.values, 2, steps), s.values);
  });

  it('applyStateUpdate in place equals the pure step', () => {
    const s0 = createTsuState(new Float32Array(S0), 2);
    const net = tracingNet(2);
    const pure = targetedStateUpdate(s0, 0, [3, 4], net);
    const inPlace = cloneTsuState(s0);
    applyStateUpdate(inPlace, 0, computeStateUpdate(inPlace, 0, [3, 4], net));
    expect(inPlace).toEqual(pure.state);
  });
});
