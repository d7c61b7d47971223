import { describe, expect, it } from 'vitest';
import { AdamW, clipByGlobalNorm, halfCosineLr, tf, ValueError } from '../../src/core/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

describe('AdamW', () => {
  it('two steps with a constant gradient, by hand', () => {
    // loss = 0.5 * sum(p) -> g = 0.5 everywhere. lr 0.1, wd 0.1.
    // step 1: p *= 1 - 0.01 -> [0.99, -1.98]; m = 0.05, v = 2.5e-4; mhat = 0.5, vhat = 0.25;
    //         update = 0.5 / (0.5 + 1e-8) ~ 1 -> p = [0.89, -2.08]
    // step 2: p *= 0.99 -> [0.8811, -2.0592]; mhat = 0.095 / 0.19 = 0.5; vhat = 0.25 -> p = [0.7811, -2.1592]
    const p = tf.variable(tf.tensor1d([1, -2]), true, 'adamw_hand_p');
    const opt = new AdamW({ learningRate: 0.1, weightDecay: 0.1 });
    for (let i = 0; i < 2; i++) opt.minimize(() => tf.mul(tf.sum(p), 0.5) as tf.Scalar, false, [p]);
    expectAllclose(p, [0.7811, -2.1592], { rtol: 1e-6, atol: 1e-6 });
    expect(opt.iterations).toBe(2);
    opt.dispose();
    p.dispose();
  });

  it('matches a float64 reference on a quadratic, with a changing learning rate', () => {
    const p0 = [0.3, -1.5, 2.0];
    const target = [1, 0, -1];
    const p = tf.variable(tf.tensor1d(p0), true, 'adamw_quad_p');
    const t = tf.tensor1d(target);
    const cfg = { learningRate: 0.05, weightDecay: 0.02, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 };
    const opt = new AdamW(cfg);
    // float64 reference of torch.optim.AdamW
    const ref = Float64Array.from(p0);
    const m = new Float64Array(3);
    const v = new Float64Array(3);
    for (let step = 1; step <= 5; step++) {
      const lr = cfg.learningRate / step;
      opt.learningRate = lr;
      opt.minimize(() => tf.sum(tf.square(tf.sub(p, t))) as tf.Scalar, false, [p]);
      for (let i = 0; i < 3; i++) {
        const g = 2 * (ref[i] - target[i]);
        ref[i] *= 1 - lr * cfg.weightDecay;
        m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g * g;
        const mh = m[i] / (1 - cfg.beta1 ** step);
        const vh = v[i] / (1 - cfg.beta2 ** step);
        ref[i] -= (lr * mh) / (Math.sqrt(vh) + cfg.epsilon);
      }
    }
    expectAllclose(p, ref, { rtol: 1e-5, atol: 1e-6 });
    opt.dispose();
    p.dispose();
    t.dispose();
  });

  it('state round-trips through getWeights / setWeights', async () => {
    const p = tf.variable(tf.tensor1d([1, 2]), true, 'adamw_rt_p');
    const q = tf.variable(tf.tensor1d([1, 2]), true, 'adamw_rt_q');
    const a = new AdamW({ learningRate: 0.1 });
    const b = new AdamW({ learningRate: 0.1 });
    const f = (x: tf.Variable) => () => tf.sum(tf.square(tf.mul(x, tf.tensor1d([1, 3])))) as tf.Scalar;
    a.minimize(f(p), false, [p]);
    b.minimize(f(q), false, [q]);
    // Copy a's state, renamed for q, into a fresh optimiser; both must then step identically.
    const weights = (await b.getWeights()).map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
    const c = new AdamW({ learningRate: 0.1 });
    await c.setWeights(weights);
    expect(c.iterations).toBe(1);
    a.minimize(f(p), false, [p]);
    c.minimize(f(q), false, [q]);
    expectAllclose(q, p);
    tf.dispose(weights.map((w) => w.tensor));
    [a, b, c].forEach((o) => o.dispose());
    p.dispose();
    q.dispose();
  });

  it('does not leak and rejects bad config', async () => {
    const p = tf.variable(tf.tensor1d([1, 2]), true, 'adamw_leak_p');
    const opt = new AdamW();
    opt.minimize(() => tf.sum(tf.square(p)) as tf.Scalar, false, [p]);
    await expectNoLeak(() => {
      for (let i = 0; i < 5; i++) opt.minimize(() => tf.sum(tf.square(p)) as tf.Scalar, false, [p]);
    });
    opt.dispose();
    p.dispose();
    expect(() => new AdamW({ beta1: 1 })).toThrow(/beta1/);
    expect(() => new AdamW({ learningrate: 1 } as never)).toThrow(/Did you mean 'learningRate'/);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) when above, and leaves small gradients alone', () => {
    // global norm = sqrt(3^2 + 4^2 + 0^2) = 5
    const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor1d([0]) };
    const { grads: c, globalNorm } = clipByGlobalNorm(grads, 1);
    expect(globalNorm).toBeCloseTo(5, 6);
    const s = 1 / (5 + 1e-6);
    expectAllclose(c.a, [3 * s, 4 * s]);
    expectAllclose(c.b, [0]);
    const { grads: same } = clipByGlobalNorm(grads, 10);
    expectAllclose(same.a, [3, 4]);
    // two tensors: norm = sqrt(1 + 4 + 4) = 3; maxNorm 1.5 -> scale 1.5 / 3.000001
    const { grads: two, globalNorm: n2 } = clipByGlobalNorm({ x: tf.tensor1d([1, 2]), y: tf.tensor2d([[2]]) }, 1.5);
    expect(n2).toBeCloseTo(3, 6);
    expectAllclose(two.y, [2 * (1.5 / 3.000001)]);
    expect(() => clipByGlobalNorm(grads, 0)).toThrow(ValueError);
  });
});

describe('halfCosineLr', () => {
  it('follows the half cosine and the warm-up', () => {
    const s = { lr: 1e-3, epochs: 50 };
    expect(halfCosineLr(0, s)).toBeCloseTo(1e-3, 12);
    expect(halfCosineLr(25, s)).toBeCloseTo(5e-4, 12);
    expect(halfCosineLr(50, s)).toBeCloseTo(0, 12);
    // e = 12.5: 0.5 (1 + cos(pi/4)) = 0.853553
    expect(halfCosineLr(12.5, s)).toBeCloseTo(1e-3 * 0.8535533906, 12);
    expect(halfCosineLr(1, { lr: 1, epochs: 10, warmupEpochs: 2 })).toBeCloseTo(0.5, 12);
    expect(halfCosineLr(6, { lr: 1, epochs: 10, warmupEpochs: 2, minLr: 0.2 })).toBeCloseTo(0.6, 12);
  });
});
