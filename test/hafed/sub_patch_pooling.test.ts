import { describe, expect, it } from 'vitest';
import { MASK_LOGIT, createRng, tf, ShapeError, type ScoreWeights } from '../../src/core/index.js';
import { poolSubPatches, poolSubPatchesNoGrad } from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak, finiteDiff } from '../helpers.js';

const NAMES = ['kernelV', 'biasV', 'kernelU', 'biasU', 'kernelW', 'biasW'] as const;

function weights(d: number, D: number, M: number, seed: number): ScoreWeights {
  const r = (shape: number[], s: number) => tf.randomNormal(shape, 0, 0.5, 'float32', seed + s);
  return { kernelV: r([d, D], 1), biasV: r([D], 2), kernelU: r([d, D], 3), biasU: r([D], 4), kernelW: r([D, M], 5), biasW: r([M], 6) };
}

/** Stage 1 written with plain composed ops (tfjs differentiates them): the reference. */
function composed(u: tf.Tensor3D, w: ScoreWeights, keep: tf.Tensor | null): { features: tf.Tensor2D; attention: tf.Tensor3D } {
  const [n, k, d] = u.shape;
  const m = w.kernelW.shape[1] as number;
  const x = tf.reshape(u, [n * k, d]);
  const t = tf.tanh(tf.add(tf.matMul(x, w.kernelV), w.biasV));
  const s = tf.sigmoid(tf.add(tf.matMul(x, w.kernelU!), w.biasU!));
  const scores = tf.add(tf.matMul(tf.mul(t, s), w.kernelW), w.biasW); // [R, M]
  let logits = tf.transpose(tf.reshape(scores, [n, k, m]), [0, 2, 1]); // [N, M, k]
  if (keep) logits = tf.where(keep, logits, tf.fill(logits.shape, MASK_LOGIT));
  const a = tf.softmax(logits) as tf.Tensor3D;
  const abar = tf.mean(a, 1); // [N, k]
  const features = tf.sum(tf.mul(tf.reshape(abar, [n, k, 1]), u), 1) as tf.Tensor2D;
  return { features, attention: a };
}

/** A loss that uses both outputs, so that both carry gradients. */
function loss(out: { features: tf.Tensor2D; attention: tf.Tensor3D }, probeV: tf.Tensor, probeA: tf.Tensor): tf.Scalar {
  return tf.add(tf.sum(tf.mul(out.features, probeV)), tf.sum(tf.mul(out.attention, probeA))) as tf.Scalar;
}

describe('poolSubPatches', () => {
  for (const [M, masked] of [
    [1, false],
    [1, true],
    [3, true],
  ] as const) {
    it(`equals the composed ops in value and gradient (M = ${M}${masked ? ', with a mask' : ''})`, () => {
      const [n, k, d, D] = [7, 5, 6, 4];
      const u = tf.randomNormal([n, k, d], 0, 1, 'float32', 3) as tf.Tensor3D;
      const w = weights(d, D, M, 10);
      const probeV = tf.randomNormal([n, d], 0, 1, 'float32', 20);
      const probeA = tf.randomNormal([n, M, k], 0, 1, 'float32', 21);
      // a mask dropping about a third of the entries, never a whole row
      const rng = createRng(5);
      const keepValues = new Uint8Array(n * M * k).map((_, i) => (i % k === 0 ? 1 : rng.uniform() < 0.66 ? 1 : 0));
      const keep = masked ? tf.tensor3d(keepValues, [n, M, k], 'bool') : null;
      const ws = NAMES.map((name) => w[name]!);
      const asWeights = (ts: tf.Tensor[]) => Object.fromEntries(NAMES.map((name, i) => [name, ts[i]])) as unknown as ScoreWeights;
      let seen: number[] = [];
      const fused = (...ts: tf.Tensor[]) =>
        loss(poolSubPatches(u, asWeights(ts), { keep: (logits) => ((seen = logits.shape), keep ? tf.clone(keep) : null) }), probeV, probeA);
      const reference = (...ts: tf.Tensor[]) => loss(composed(u, asWeights(ts), keep), probeV, probeA);
      expectAllclose(fused(...ws), reference(...ws), { rtol: 1e-5 });
      expect(seen).toEqual([n, M, k]);
      const gf = tf.grads(fused)(ws);
      const gr = tf.grads(reference)(ws);
      gf.forEach((g, i) => expectAllclose(g, gr[i], { rtol: 1e-4, atol: 1e-5 }));
      // the outputs themselves
      const a = poolSubPatches(u, w, { keep: () => (keep ? tf.clone(keep) : null) });
      const b = composed(u, w, keep);
      const c = poolSubPatchesNoGrad(u, w, { keep: () => (keep ? tf.clone(keep) : null) });
      expectAllclose(a.features, b.features, { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(a.attention, b.attention, { rtol: 1e-5, atol: 1e-7 });
      expectAllclose(c.features, a.features, { rtol: 0, atol: 0 });
      expectAllclose(c.attention, a.attention, { rtol: 0, atol: 0 });
      tf.dispose([u, probeV, probeA, ...ws, ...gf, ...gr, a.features, a.attention, b.features, b.attention, c.features, c.attention]);
      if (keep) keep.dispose();
    });
  }

  it('has the gradient of finite differences (float64 reference of a tiny case)', () => {
    const [n, k, d, D, M] = [3, 4, 3, 2, 2];
    const u = tf.randomNormal([n, k, d], 0, 1, 'float32', 8) as tf.Tensor3D;
    const w = weights(d, D, M, 30);
    const probeV = tf.randomNormal([n, d], 0, 1, 'float32', 31);
    const probeA = tf.randomNormal([n, M, k], 0, 1, 'float32', 32);
    const uv = u.dataSync();
    const pv = probeV.dataSync();
    const pa = probeA.dataSync();
    // the same function in float64 plain JS, of the flat weight vector
    const sizes = NAMES.map((name) => w[name]!.size);
    const flatW = Float64Array.from(NAMES.flatMap((name) => Array.from(w[name]!.dataSync())));
    const f64 = (p: Float64Array): number => {
      let o = 0;
      const take = (size: number) => p.subarray(o, (o += size));
      const [kV, bV, kU, bU, kW, bW] = sizes.map(take);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const logits: number[][] = Array.from({ length: M }, () => []);
        for (let j = 0; j < k; j++) {
          const x = Array.from({ length: d }, (_, c) => uv[(i * k + j) * d + c]);
          const g: number[] = [];
          for (let h = 0; h < D; h++) {
            let hv = bV[h];
            let hu = bU[h];
            for (let c = 0; c < d; c++) {
              hv += x[c] * kV[c * D + h];
              hu += x[c] * kU[c * D + h];
            }
            g.push(Math.tanh(hv) / (1 + Math.exp(-hu)));
          }
          for (let mm = 0; mm < M; mm++) {
            let sc = bW[mm];
            for (let h = 0; h < D; h++) sc += g[h] * kW[h * M + mm];
            logits[mm].push(sc);
          }
        }
        const abar = new Array<number>(k).fill(0);
        for (let mm = 0; mm < M; mm++) {
          const mx = Math.max(...logits[mm]);
          const e = logits[mm].map((l) => Math.exp(l - mx));
          const z = e.reduce((a, b) => a + b, 0);
          e.forEach((ej, j) => {
            const a = ej / z;
            abar[j] += a / M;
            total += a * pa[(i * M + mm) * k + j];
          });
        }
        for (let c = 0; c < d; c++) {
          let v = 0;
          for (let j = 0; j < k; j++) v += abar[j] * uv[(i * k + j) * d + c];
          total += v * pv[i * d + c];
        }
      }
      return total;
    };
    const numeric = finiteDiff(f64, flatW, 1e-5);
    const ws = NAMES.map((name) => w[name]!);
    const asWeights = (ts: tf.Tensor[]) => Object.fromEntries(NAMES.map((name, i) => [name, ts[i]])) as unknown as ScoreWeights;
    const analytic = tf.grads((...ts: tf.Tensor[]) => loss(poolSubPatches(u, asWeights(ts)), probeV, probeA))(ws);
    expectAllclose(analytic.flatMap((g) => Array.from(g.dataSync())), numeric, { rtol: 1e-3, atol: 1e-4 });
    expect(Math.max(...Array.from(numeric).map(Math.abs))).toBeGreaterThan(1e-2); // a gradient worth testing
    tf.dispose([u, probeV, probeA, ...ws, ...analytic]);
  });

  it('holds no tensor after a forward and backward pass, and rejects a wrong shape', async () => {
    const w = weights(6, 4, 1, 40);
    const u = tf.randomNormal([5, 4, 6]) as tf.Tensor3D;
    const ws = NAMES.map((name) => w[name]!);
    await expectNoLeak(() => {
      const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) => {
        const out = poolSubPatches(u, Object.fromEntries(NAMES.map((name, i) => [name, ts[i]])) as unknown as ScoreWeights);
        return tf.sum(out.features) as tf.Scalar;
      })(ws);
      tf.dispose([value, ...grads]);
    });
    expect(() => poolSubPatches(tf.zeros([5, 4, 7]) as tf.Tensor3D, w)).toThrow(ShapeError);
    tf.dispose([u, ...ws]);
  });
});
