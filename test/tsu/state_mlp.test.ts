import { describe, expect, it } from 'vitest';
import { DataError, ShapeError, StateError, ValueError, tf } from '../../src/core/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** float64 reference of LayerNorm(W2 gelu(W1 x + b1) + b2), weights as row-major [in, out]. */
function referenceForward(m: StateMlp, x: number[][]): number[][] {
  const w = Object.fromEntries(Object.entries(m.getWeights()).map(([k, t]) => [k, Array.from(t.dataSync())]));
  const erf = (z: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse; integrate the series instead (|z| small here)
    let sum = 0;
    let term = z;
    for (let n = 0; n < 60; n++) {
      sum += term / (2 * n + 1);
      term *= (-z * z) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const gelu = (z: number) => 0.5 * z * (1 + erf(z / Math.SQRT2));
  const { dim: d, hiddenDim: h, inputDim: din, layerNormEps: eps } = m;
  return x.map((row) => {
    const hid = Array.from({ length: h }, (_, j) => {
      let s = w['fc1/bias'][j];
      for (let i = 0; i < din; i++) s += row[i] * w['fc1/kernel'][i * h + j];
      return gelu(s);
    });
    const y = Array.from({ length: d }, (_, j) => {
      let s = w['fc2/bias'][j];
      for (let i = 0; i < h; i++) s += hid[i] * w['fc2/kernel'][i * d + j];
      return s;
    });
    const mean = y.reduce((a, b) => a + b, 0) / d;
    const variance = y.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
    return y.map((v, j) => ((v - mean) / Math.sqrt(variance + eps)) * w['layer_norm/gamma'][j] + w['layer_norm/beta'][j]);
  });
}

describe('StateMlp', () => {
  it('has the reference sizes: 1152 -> 768 -> 384, 1,181,568 parameters for d = 384', () => {
    const m = new StateMlp({ dim: 384 });
    expect(m.inputDim).toBe(1152);
    expect(m.hiddenDim).toBe(768);
    // 1152*768 + 768 + 768*384 + 384 + 2*384 = 884736 + 768 + 294912 + 384 + 768
    expect(m.numParams).toBe(1_181_568);
    expect(m.layerNormEps).toBe(1e-5);
    const y = m.apply(tf.zeros([2, 1152]));
    expect(y.shape).toEqual([2, 384]);
    tf.dispose(y);
    m.dispose();
  });

  it('initialises kernels and biases in U(-1/sqrt(fan_in), 1/sqrt(fan_in)), LayerNorm at (1, 0)', () => {
    const m = new StateMlp({ dim: 8, seed: 1 });
    const w = m.getWeights();
    const maxAbs = (t: tf.Tensor) => Math.max(...Array.from(t.dataSync()).map(Math.abs));
    expect(maxAbs(w['fc1/kernel'])).toBeLessThanOrEqual(1 / Math.sqrt(24));
    expect(maxAbs(w['fc1/kernel'])).toBeGreaterThan(0.9 / Math.sqrt(24));
    expect(maxAbs(w['fc2/bias'])).toBeLessThanOrEqual(1 / Math.sqrt(16));
    expect(Array.from(w['layer_norm/gamma'].dataSync())).toEqual(new Array(8).fill(1));
    expect(Array.from(w['layer_norm/beta'].dataSync())).toEqual(new Array(8).fill(0));
    m.dispose();
  });

  it('matches a float64 forward (exact GELU, LayerNorm eps 1e-5)', () => {
    const m = new StateMlp({ dim: 3, hiddenDim: 5, seed: 7 });
    const x = [
      [0.3, -1.2, 0.5, 2, 0.1, -0.4, 1, 1, -1],
      [1, 0, 0, 0, 1, 0, 0, 0, 1],
    ];
    const xt = tf.tensor2d(x);
    const y = m.apply(xt);
    expectAllclose(y, referenceForward(m, x), { rtol: 1e-4, atol: 1e-5 });
    tf.dispose([xt, y]);
    m.dispose();
  });

  it('is deterministic per seed', () => {
    const a = new StateMlp({ dim: 4, seed: 5 });
    const b = new StateMlp({ dim: 4, seed: 5 });
    const c = new StateMlp({ dim: 4, seed: 6 });
    expectAllclose(a.getWeights()['fc1/kernel'], b.getWeights()['fc1/kernel'], { rtol: 0, atol: 0 });
    expect(Array.from(a.getWeights()['fc1/kernel'].dataSync())).not.toEqual(Array.from(c.getWeights()['fc1/kernel'].dataSync()));
    [a, b, c].forEach((m) => m.dispose());
  });

  it('round-trips through tf.io artifacts and a save handler', async () => {
    const m = new StateMlp({ dim: 4, hiddenDim: 6, seed: 2, layerNormEps: 1e-6 });
    let saved: tf.io.ModelArtifacts | undefined;
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        saved = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await StateMlp.load(tf.io.fromMemory(saved!));
    expect(loaded.getConfig()).toEqual({ dim: 4, hiddenDim: 6, layerNormEps: 1e-6 });
    const x = tf.randomNormal([3, 12], 0, 1, 'float32', 1) as tf.Tensor2D;
    const y1 = m.apply(x);
    const y2 = loaded.apply(x);
    expectAllclose(y2, y1, { rtol: 0, atol: 0 });
    tf.dispose([x, y1, y2]);
    expect(() => StateMlp.fromArtifacts({ ...saved!, format: 'other' })).toThrow(DataError);
    await expect(m.save('nowhere://x')).rejects.toThrow(/No tf.io handler can save 'nowhere:\/\/x'/);
    await expect(StateMlp.load('nowhere://x')).rejects.toThrow(/No tf.io handler can load/);
    m.dispose();
    loaded.dispose();
  });

  it('loads a PyTorch FGlobal state dict (Linear weights transposed)', () => {
    const m = new StateMlp({ dim: 1, hiddenDim: 2 });
    // fc1.weight (h=2, 3d=3) = [[1, 2, 3], [4, 5, 6]] -> kernel [3, 2] = [[1, 4], [2, 5], [3, 6]]
    m.setTorchStateDict({
      'fc1.weight': { data: [1, 2, 3, 4, 5, 6], shape: [2, 3] },
      'fc1.bias': { data: [0, 0], shape: [2] },
      'fc2.weight': { data: [1, -1], shape: [1, 2] },
      'fc2.bias': { data: [0.5], shape: [1] },
      'layer_norm.weight': { data: [2], shape: [1] },
      'layer_norm.bias': { data: [3], shape: [1] },
    });
    expect(Array.from(m.getWeights()['fc1/kernel'].dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
    // d = 1: LayerNorm of a single value is 0, so the output is beta = 3
    const y = m.apply(tf.tensor2d([[1, 1, 1]]));
    expectAllclose(y, [3]);
    y.dispose();
    expect(() => m.setTorchStateDict({})).toThrow(/lacks fc1.weight/);
    m.dispose();
  });

  it('rejects bad shapes and use after dispose; frees everything', async () => {
    await expectNoLeak(() => {
      const m = new StateMlp({ dim: 2 });
      const x = tf.zeros([1, 5]) as tf.Tensor2D;
      expect(() => m.apply(x)).toThrow(ShapeError);
      expect(() => m.apply(x)).toThrow(/expected x \[n, 6\]/);
      expect(() => m.setWeights({ 'fc1/kernel': x })).toThrow(/shape \[6, 4\]/);
      expect(() => m.setWeights({ nope: x })).toThrow(ValueError);
      x.dispose();
      m.dispose();
      const x6 = tf.zeros([1, 6]) as tf.Tensor2D;
      expect(() => m.apply(x6)).toThrow(StateError);
      x6.dispose();
    });
    expect(() => new StateMlp({ dim: 0 })).toThrow(/positive integer/);
  });

  it('applyShared equals apply on [shared, rows_i] rows, and recuts its kernel after an assignment', () => {
    const fS = new StateMlp({ dim: 5, hiddenDim: 7, seed: 3 });
    const shared = tf.randomNormal([1, 10], 0, 1, 'float32', 1) as tf.Tensor2D;
    const rows = tf.randomNormal([4, 5], 0, 1, 'float32', 2) as tf.Tensor2D;
    const full = tf.concat([tf.tile(shared, [4, 1]), rows], 1) as tf.Tensor2D;
    const a = fS.apply(full);
    const b = fS.applyShared(shared, rows);
    expectAllclose(b, a, { rtol: 1e-5, atol: 1e-6 });
    // a new kernel value (as a training step assigns) is picked up
    const k = fS.getWeights()['fc1/kernel'] as tf.Variable;
    k.assign(tf.mul(k, 0.5));
    const c = fS.apply(full);
    const e = fS.applyShared(shared, rows);
    expectAllclose(e, c, { rtol: 1e-5, atol: 1e-6 });
    expect(() => fS.applyShared(rows, rows)).toThrow(/expected shared \[1, 10\]/);
    tf.dispose([shared, rows, full, a, b, c, e]);
    fS.dispose();
  });
});
