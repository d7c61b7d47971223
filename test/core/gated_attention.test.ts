import { describe, expect, it } from 'vitest';
import { tf, ValueError } from '../../src/core/index.js';
import { gatedScores, type ScoreWeights } from '../../src/core/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';
import { setAttentionGradMode } from '../../src/core/gated_attention.js';

function weights(gated: boolean, d: number, D: number, M: number, seed: number): ScoreWeights {
  const r = (shape: number[], s: number) => tf.randomNormal(shape, 0, 0.5, 'float32', seed + s);
  return {
    kernelV: r([d, D], 1),
    biasV: r([D], 2),
    ...(gated ? { kernelU: r([d, D], 3), biasU: r([D], 4) } : {}),
    kernelW: r([D, M], 5),
    biasW: r([M], 6),
  };
}

/** Gradients of sum(scores * probe) with respect to x and every weight, in one mode. */
function grads(mode: 'fused' | 'autodiff', x: tf.Tensor2D, w: ScoreWeights, inputGrad: boolean) {
  const prev = setAttentionGradMode(mode);
  try {
    const names = Object.keys(w) as (keyof ScoreWeights)[];
    const probe = tf.randomNormal([x.shape[0], w.kernelW.shape[1] as number], 0, 1, 'float32', 99);
    const f = (...ts: tf.Tensor[]) => {
      const xs = inputGrad ? (ts[0] as tf.Tensor2D) : x;
      const ws = Object.fromEntries(names.map((n, i) => [n, ts[i + (inputGrad ? 1 : 0)]])) as unknown as ScoreWeights;
      return tf.sum(tf.mul(gatedScores(xs, ws, inputGrad), probe));
    };
    const args = [...(inputGrad ? [x] : []), ...names.map((n) => w[n]!)];
    const value = f(...args);
    return { value, grads: tf.grads(f)(args) };
  } finally {
    setAttentionGradMode(prev);
  }
}

describe('gatedScores', () => {
  for (const [gated, M, inputGrad] of [
    [true, 1, false],
    [true, 3, true],
    [false, 2, true],
    [false, 1, false],
  ] as const) {
    it(`the fused gradient equals tfjs autodiff (gated ${gated}, M = ${M}, input gradient ${inputGrad})`, () => {
      const x = tf.randomNormal([37, 6], 0, 1, 'float32', 7) as tf.Tensor2D;
      const w = weights(gated, 6, 5, M, 11);
      const fused = grads('fused', x, w, inputGrad);
      const auto = grads('autodiff', x, w, inputGrad);
      expectAllclose(fused.value, auto.value, { rtol: 1e-5, atol: 1e-5 });
      expect(fused.grads).toHaveLength(auto.grads.length);
      fused.grads.forEach((g, i) => {
        expect(g.shape).toEqual(auto.grads[i].shape);
        expectAllclose(g, auto.grads[i], { rtol: 1e-4, atol: 1e-5 });
      });
    });
  }

  it('uses a given transpose of the rows for the kernel gradients (the same gradients), and leaves it alive', () => {
    const x = tf.randomNormal([29, 6], 0, 1, 'float32', 3) as tf.Tensor2D;
    const xT = tf.transpose(x) as tf.Tensor2D;
    const w = weights(true, 6, 9, 1, 21);
    const names = Object.keys(w) as (keyof ScoreWeights)[];
    const probe = tf.randomNormal([29, 1], 0, 1, 'float32', 5);
    const loss = (given?: tf.Tensor2D) => (...ts: tf.Tensor[]) =>
      tf.sum(tf.mul(gatedScores(x, Object.fromEntries(names.map((n, i) => [n, ts[i]])) as unknown as ScoreWeights, false, given), probe));
    const ws = names.map((n) => w[n]!);
    const a = tf.grads(loss())(ws);
    const b = tf.grads(loss(xT))(ws);
    a.forEach((g, i) => expectAllclose(b[i], g, { rtol: 1e-6, atol: 1e-7 }));
    expect(xT.isDisposed).toBe(false);
    tf.dispose([x, xT, probe, ...ws, ...a, ...b]);
  });

  it('computes the formula by hand on one row', () => {
    // x = [1, 2]; V = [[1], [0]] -> tanh(1); U = [[0], [1]] -> sigmoid(2); W = [[2]], b = 0.5
    const w: ScoreWeights = {
      kernelV: tf.tensor2d([[1], [0]]),
      biasV: tf.tensor1d([0]),
      kernelU: tf.tensor2d([[0], [1]]),
      biasU: tf.tensor1d([0]),
      kernelW: tf.tensor2d([[2]]),
      biasW: tf.tensor1d([0.5]),
    };
    const expected = 2 * Math.tanh(1) * (1 / (1 + Math.exp(-2))) + 0.5;
    expectAllclose(gatedScores(tf.tensor2d([[1, 2]]), w), [expected], { rtol: 1e-5 });
  });

  it('leaks nothing in a gradient loop and rejects unknown modes', async () => {
    const x = tf.randomNormal([9, 4]) as tf.Tensor2D;
    const w = weights(true, 4, 3, 2, 5);
    const vars = Object.values(w).map((t) => tf.variable(t as tf.Tensor));
    const [kV, bV, kU, bU, kW, bW] = vars;
    await expectNoLeak(() => {
      for (let i = 0; i < 3; i++) {
        const { value, grads: g } = tf.variableGrads(
          () => tf.sum(gatedScores(x, { kernelV: kV, biasV: bV, kernelU: kU, biasU: bU, kernelW: kW, biasW: bW }, false)),
          vars,
        );
        tf.dispose([value, ...Object.values(g)]);
      }
    });
    expect(() => setAttentionGradMode('fast' as 'fused')).toThrow(ValueError);
  });
});
