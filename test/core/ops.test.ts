import { describe, expect, it } from 'vitest';
import { cosineToRow, crossEntropy, gatherRows, gelu, layerNorm, linear, maskedSoftmax, matMul, pairwiseCosine, rowNorms, tf, DataError, ShapeError, ValueError } from '../../src/core/index.js';
import { expectAllclose, expectNoLeak, finiteDiff, onBackend } from '../helpers.js';
import { fastTanh, setMatMulGradMode, assertFinite } from '../../src/core/ops.js';

const A = [
  [1, 2, 3],
  [4, 5, 6],
];
const B = [
  [1, 0],
  [0, 1],
  [2, -1],
];

describe('matMul', () => {
  it('multiplies by hand', () => {
    // [1 2 3]·B = [1+6, 2-3] = [7, -1]; [4 5 6]·B = [4+12, 5-6] = [16, -1]
    expectAllclose(matMul(tf.tensor2d(A), tf.tensor2d(B)), [7, -1, 16, -1]);
  });

  it('explicit-transpose gradient equals the built-in one and the hand gradient', () => {
    const a = tf.tensor2d(A);
    const b = tf.tensor2d(B);
    const grads = (mode: 'explicit' | 'builtin') => {
      const prev = setMatMulGradMode(mode);
      try {
        return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matMul(x as tf.Tensor2D, y as tf.Tensor2D))))([a, b]);
      } finally {
        setMatMulGradMode(prev);
      }
    };
    const [ea, eb] = grads('explicit');
    const [ba, bb] = grads('builtin');
    expectAllclose(ea, ba);
    expectAllclose(eb, bb);
    // d/dA sum((AB)^2) = 2 (AB) B^T. AB = [[7,-1],[16,-1]].
    // row 0: 2*[7*1 + -1*0, 7*0 + -1*1, 7*2 + -1*-1] = 2*[7, -1, 15] = [14, -2, 30]
    // row 1: 2*[16, -1, 33] = [32, -2, 66]
    expectAllclose(ea, [14, -2, 30, 32, -2, 66]);
  });

  it('rejects mismatched shapes', () => {
    expect(() => matMul(tf.ones([2, 3]) as tf.Tensor2D, tf.ones([2, 3]) as tf.Tensor2D)).toThrow(ShapeError);
  });
});

describe('linear', () => {
  it('handles rank-3 inputs and the bias', () => {
    const x = tf.tensor3d([[[1, 2]], [[3, 4]]]); // [2, 1, 2]
    const w = tf.tensor2d([[1, 1, 0], [0, 1, 1]]); // [2, 3]
    const y = linear(x, w, tf.tensor1d([0.5, 0, -1]));
    expect(y.shape).toEqual([2, 1, 3]);
    // [1,2]W = [1, 3, 2] + b = [1.5, 3, 1]; [3,4]W = [3, 7, 4] + b = [3.5, 7, 3]
    expectAllclose(y, [1.5, 3, 1, 3.5, 7, 3]);
  });

  it('gradient of the kernel matches finite differences', () => {
    const xv = [0.3, -1.2, 0.7, 2.0, 0.1, -0.4];
    const w0 = [0.5, -0.25, 1.5, 0.75];
    const loss = (w: tf.Tensor) => tf.sum(tf.sin(linear(tf.tensor2d(xv, [3, 2]), tf.reshape(w, [2, 2]))));
    const g = tf.grad(loss)(tf.tensor1d(w0));
    const fd = finiteDiff((w) => loss(tf.tensor1d(Array.from(w))).dataSync()[0], w0);
    expectAllclose(g, fd, { rtol: 1e-3, atol: 1e-4 });
  });
});

describe('gatherRows', () => {
  it('gathers and sums the gradient of duplicate indices', () => {
    const x = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    expectAllclose(gatherRows(x, [2, 0, 2]), [5, 6, 1, 2, 5, 6]);
    // d/dx sum(gather(x,[2,0,2]) * w), w rows [1,2],[3,4],[5,6]
    // row 0 gets w1 = [3,4]; row 2 gets w0 + w2 = [6, 8]; row 1 gets 0.
    const w = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, [2, 0, 2]), w)))(x);
    expectAllclose(g, [3, 4, 0, 0, 6, 8]);
  });

  it('rejects float indices', () => {
    expect(() => gatherRows(tf.ones([2, 2]), tf.tensor1d([0, 1]))).toThrow(ValueError);
  });
});

describe('cosine ops', () => {
  it('cosineToRow by hand, including a zero row', () => {
    const s = tf.tensor2d([[1, 0], [0, 2], [-1, 0], [1, 1], [0, 0]]);
    // q = [3, 0]: cos = [1, 0, -1, 1/sqrt(2), 0 / (1e-8 * 3) = 0]
    expectAllclose(cosineToRow(s, tf.tensor1d([3, 0])), [1, 0, -1, Math.SQRT1_2, 0]);
  });

  it('rowNorms and pairwiseCosine by hand', () => {
    expectAllclose(rowNorms(tf.tensor2d([[3, 4], [0, 0], [1, 1]])), [5, 0, Math.SQRT2]);
    const c = pairwiseCosine(tf.tensor2d([[1, 0], [1, 1]]), tf.tensor2d([[0, 1], [2, 0], [-1, -1]]));
    // [1,0]: [0, 1, -1/sqrt2]; [1,1]: [1/sqrt2, 1/sqrt2, -1]
    expectAllclose(c, [0, 1, -Math.SQRT1_2, Math.SQRT1_2, Math.SQRT1_2, -1]);
  });
});

describe('maskedSoftmax', () => {
  it('gives masked instances zero weight', () => {
    expectAllclose(maskedSoftmax(tf.tensor1d([0, 0, 5]), tf.tensor1d([1, 1, 0])), [0.5, 0.5, 0]);
    // [K=2, N=3] with a per-instance mask [N]
    const p = maskedSoftmax(tf.tensor2d([[0, Math.log(3), 9], [1, 1, 1]]), tf.tensor1d([1, 1, 0], 'bool' as never));
    expectAllclose(p, [0.25, 0.75, 0, 0.5, 0.5, 0]);
  });

  it('without a mask equals tf.softmax', () => {
    const l = tf.tensor2d([[0.1, -2, 3]]);
    expectAllclose(maskedSoftmax(l), tf.softmax(l));
  });
});

describe('activations and normalisation', () => {
  it('fastTanh equals tanh', () => {
    const x = tf.linspace(-6, 6, 49);
    expectAllclose(fastTanh(x), tf.tanh(x), { rtol: 1e-5, atol: 2e-6 });
  });

  it('gelu by hand (erf form)', () => {
    // gelu(1) = 0.5 (1 + erf(1/sqrt2)) = 0.841344746; gelu(-1) = -0.158655254; gelu(0) = 0
    expectAllclose(gelu(tf.tensor1d([1, -1, 0, 3])), [0.841344746, -0.158655254, 0, 2.995950], { rtol: 1e-5, atol: 1e-6 });
  });

  it('layerNorm by hand', () => {
    // row [1,2,3]: mean 2, var 2/3; (x-2)/sqrt(2/3 + 1e-5) = [-1.2247357, 0, 1.2247357]
    const y = layerNorm(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([1, 2, 1]), tf.tensor1d([0, 1, 0]));
    const s = 1 / Math.sqrt(2 / 3 + 1e-5);
    expectAllclose(y, [-s, 1, s]);
  });

  it('crossEntropy by hand and label checks', () => {
    expectAllclose(crossEntropy(tf.tensor2d([[0, 0]]), [1]), Math.LN2);
    // logits [2, 0], label 0: -log(e^2 / (e^2 + 1)) = log(1 + e^-2) = 0.126928
    // logits [0, 1], label 0: log(1 + e) = 1.313262; mean = 0.720095
    expectAllclose(crossEntropy(tf.tensor2d([[2, 0], [0, 1]]), [0, 0]), (Math.log1p(Math.exp(-2)) + Math.log1p(Math.E)) / 2);
    expect(() => crossEntropy(tf.tensor2d([[0, 0]]), [2])).toThrow(/label to be an integer in \[0, 2\)/);
  });

  it('assertFinite names the bad element', () => {
    expect(() => assertFinite([1, NaN], 'features')).toThrow(DataError);
    expect(() => assertFinite([1, 2], 'features')).not.toThrow();
  });
});

describe('memory', () => {
  it('no op leaks tensors', async () => {
    const x = tf.randomNormal([6, 4]) as tf.Tensor2D;
    const w = tf.randomNormal([4, 3]) as tf.Tensor2D;
    const q = tf.ones([4]) as tf.Tensor1D;
    await expectNoLeak(() => {
      tf.dispose([
        matMul(x, w),
        linear(x, w),
        gatherRows(x, [1, 2]),
        cosineToRow(x, q),
        maskedSoftmax(x),
        gelu(x),
        layerNorm(x),
        fastTanh(x),
      ]);
      tf.dispose(tf.grad((t: tf.Tensor) => tf.sum(gatherRows(linear(t as tf.Tensor2D, w), [0, 0])))(x));
    });
  });
});

describe('parity wasm vs cpu', () => {
  it('every op gives the same numbers (1e-5 relative)', async () => {
    const rand = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 97.13 + i * 1.7) * 2);
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor2d(rand(40 * 16, 1), [40, 16]);
        const w = tf.tensor2d(rand(16 * 8, 2), [16, 8]);
        const b = tf.tensor1d(rand(8, 3));
        const q = tf.tensor1d(rand(16, 4));
        const outs: tf.Tensor[] = [
          linear(x, w, b),
          gatherRows(x, [3, 3, 7, 0]),
          cosineToRow(x, q),
          pairwiseCosine(x, tf.slice(x, [0, 0], [5, 16])),
          maskedSoftmax(tf.transpose(linear(x, w)), tf.tensor1d(rand(40, 5).map((v) => (v > 0 ? 1 : 0)))),
          gelu(x),
          layerNorm(x),
          fastTanh(x),
          crossEntropy(linear(x, tf.slice(w, [0, 0], [16, 2])), rand(40, 6).map((v) => (v > 0 ? 1 : 0))),
          ...tf.grads((ww: tf.Tensor, xx: tf.Tensor) =>
            tf.sum(tf.mul(fastTanh(linear(gatherRows(xx, [1, 2, 2, 5]), ww as tf.Tensor2D)), 0.3)),
          )([w, x]),
        ];
        return outs.map((t) => Array.from(t.dataSync()));
      });
    const onCpu = await onBackend('cpu', run);
    const onWasm = await onBackend('wasm', run);
    expect(onCpu.length).toBe(onWasm.length);
    onCpu.forEach((c, i) => expectAllclose(onWasm[i], c, { rtol: 1e-5, atol: 1e-5 }));
  });
});
