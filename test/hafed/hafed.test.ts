import { describe, expect, it } from 'vitest';
import { createRng, tf, DataError, ShapeError, StateError, ValueError } from '../../src/core/index.js';
import { Hafed, hafedLoss, type HafedConfig } from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak, onBackend } from '../helpers.js';
import { refHafed, toMat, type AttentionWeights, type HafedWeights } from './reference.js';

const TINY: Partial<HafedConfig> = { dim: 5, k: 3, numClasses: 2, numBranches1: 2, numBranches2: 3, attentionDim: 4, seed: 7 };

function randomU(seed: number, n: number, k: number, d: number): number[][][] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => Array.from({ length: k }, () => Array.from({ length: d }, () => rng.normal())));
}

/** Reads the model's weights (or flat overrides) into the reference's structure. */
function refWeights(model: Hafed, flat?: Record<string, ArrayLike<number>>): HafedWeights {
  const w = model.weightMap();
  const get = (name: string) => (flat ? flat[name] : w[name].dataSync());
  const mat = (name: string) => toMat(get(name), w[name].shape[0], w[name].shape[1] as number);
  const vec = (name: string) => Array.from(get(name));
  const att = (p: string): AttentionWeights => ({
    kernelV: mat(`${p}/attention/kernelV`),
    biasV: vec(`${p}/attention/biasV`),
    kernelU: mat(`${p}/attention/kernelU`),
    biasU: vec(`${p}/attention/biasU`),
    kernelW: mat(`${p}/attention/kernelW`),
    biasW: vec(`${p}/attention/biasW`),
  });
  const [m, d, c] = w['stage2/branchKernel'].shape;
  const bk = get('stage2/branchKernel');
  return {
    stage1: att('stage1'),
    stage2: att('stage2'),
    branchKernel: Array.from({ length: m }, (_, i) => toMat(Array.from(bk).slice(i * d * c, (i + 1) * d * c), d, c)),
    branchBias: mat('stage2/branchBias'),
    slideKernel: mat('stage2/slideKernel'),
    slideBias: vec('stage2/slideBias'),
  };
}

describe('Hafed', () => {
  it('has the reference parameter counts (202,514 for CAMELYON16, 198,918 for TCGA)', () => {
    // docs/reference-code.md §2.5
    const c16 = new Hafed();
    expect(c16.countParams()).toBe(202514);
    expect([c16.dim, c16.k, c16.numClasses, c16.numBranches]).toEqual([384, 16, 2, 5]);
    expect(Object.isFrozen(c16.config)).toBe(true);
    const tcga = new Hafed({ numBranches2: 1, maskDrop: 0.4 });
    expect(tcga.countParams()).toBe(198918);
    c16.dispose();
    tcga.dispose();
  });

  it('matches a float64 reference of the whole forward pass and loss', () => {
    const model = new Hafed(TINY);
    const us = randomU(1, 4, 3, 5);
    const u = tf.tensor3d(us);
    const out = model.forward(u);
    const ref = refHafed(us, refWeights(model), 1);
    expect(out.features.shape).toEqual([4, 5]);
    expect(out.attention1!.shape).toEqual([4, 2, 3]);
    expect(out.attention.shape).toEqual([3, 4]);
    expect(out.branchLogits.shape).toEqual([3, 2]);
    expect(out.logits.shape).toEqual([1, 2]);
    expectAllclose(out.features, ref.v.flat(), { rtol: 1e-4, atol: 1e-5 });
    expectAllclose(out.attention1!, ref.att1.flat(2), { rtol: 1e-4, atol: 1e-6 });
    expectAllclose(out.attention, ref.att2.flat(), { rtol: 1e-4, atol: 1e-6 });
    expectAllclose(out.branchLogits, ref.branchLogits.flat(), { rtol: 1e-4, atol: 1e-5 });
    expectAllclose(out.logits, ref.logits, { rtol: 1e-4, atol: 1e-5 });
    const l = hafedLoss(out, 1);
    expectAllclose(l.slide, ref.slide, { rtol: 1e-4 });
    expectAllclose(l.branch, ref.branch, { rtol: 1e-4 });
    expectAllclose(l.similarity1, ref.sim1, { rtol: 1e-4 });
    expectAllclose(l.similarity2, ref.sim2, { rtol: 1e-4 });
    expectAllclose(l.total, ref.total, { rtol: 1e-4 });
    model.dispose();
  });

  it('gradients of the whole loss match float64 finite differences on a tiny bag', () => {
    const model = new Hafed(TINY);
    const us = randomU(2, 4, 3, 5);
    const u = tf.tensor3d(us);
    const label = 0;
    const vars = model.weightMap();
    const names = Object.keys(vars);
    const { grads, value } = tf.variableGrads(() => hafedLoss(model.forward(u), label).total, Object.values(vars));
    const base: Record<string, Float64Array> = {};
    for (const n of names) base[n] = Float64Array.from(vars[n].dataSync());
    expectAllclose(value, refHafed(us, refWeights(model, base), label).total, { rtol: 1e-4 });
    const eps = 1e-6;
    let checked = 0;
    for (const n of names) {
      const g = grads[vars[n].name].dataSync();
      const fd = new Float64Array(base[n].length);
      for (let i = 0; i < base[n].length; i++) {
        const keep = base[n][i];
        base[n][i] = keep + eps;
        const up = refHafed(us, refWeights(model, base), label).total;
        base[n][i] = keep - eps;
        const down = refHafed(us, refWeights(model, base), label).total;
        base[n][i] = keep;
        fd[i] = (up - down) / (2 * eps);
      }
      expectAllclose(g, fd, { rtol: 2e-3, atol: 2e-5 });
      checked += fd.length;
    }
    expect(checked).toBe(model.countParams());
    model.dispose();
  });

  it('satisfies classify(x).logits == stage2HeadLogits(sum_i abar_i x_i) to 1e-5', () => {
    const model = new Hafed({ ...TINY, dim: 8, numBranches2: 5, attentionDim: 6 });
    const x = tf.randomNormal([11, 8], 0, 1, 'float32', 3) as tf.Tensor2D;
    const { logits, probs, attention } = model.classify(x);
    const rows = model.stage2RowLogits(x); // [11, 5]
    expect(rows.shape).toEqual([11, 5]);
    const abar = tf.mean(tf.softmax(tf.transpose(rows)), 0, true) as tf.Tensor2D; // [1, 11]
    const pooled = tf.matMul(abar, x) as tf.Tensor2D; // [1, 8]
    const viaHead = model.stage2HeadLogits(pooled);
    expectAllclose(viaHead, logits, { rtol: 1e-5, atol: 1e-5 });
    expectAllclose(tf.softmax(tf.transpose(rows)), attention, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(probs, tf.softmax(logits), { rtol: 1e-6 });
    // rows scored alone equal the rows scored with the others
    expectAllclose(model.stage2RowLogits(tf.slice(x, [4, 0], [1, 8]) as tf.Tensor2D), tf.slice(rows, [4, 0], [1, 5]), { rtol: 1e-5, atol: 1e-6 });
    // several pooled vectors at once: one slide's logits per row
    const many = model.stage2HeadLogits(tf.concat([tf.slice(x, [0, 0], [1, 8]), pooled, tf.slice(x, [1, 0], [1, 8])]) as tf.Tensor2D);
    expect(many.shape).toEqual([3, 2]);
    expectAllclose(tf.slice(many, [1, 0], [1, 2]), logits, { rtol: 1e-5, atol: 1e-5 });
    expectAllclose(tf.slice(many, [0, 0], [1, 2]), model.stage2HeadLogits(tf.slice(x, [0, 0], [1, 8]) as tf.Tensor2D), { rtol: 1e-6, atol: 1e-6 });
    model.dispose();
  });

  it('aggregates one patch as it aggregates it among others, in evaluation mode', () => {
    const model = new Hafed(TINY);
    const u = tf.randomNormal([6, 3, 5], 0, 1, 'float32', 4) as tf.Tensor3D;
    const v = model.aggregate(u);
    const one = model.aggregate(tf.slice(u, [2, 0, 0], [1, 3, 5]) as tf.Tensor3D);
    expect(one.shape).toEqual([1, 5]);
    expectAllclose(one, tf.slice(v, [2, 0], [1, 5]), { rtol: 1e-5, atol: 1e-6 });
    // predict = classify(aggregate(u))
    expectAllclose(model.predict(u).logits, model.classify(v).logits, { rtol: 1e-6 });
    model.dispose();
  });

  it('training mode masks, evaluation mode does not', () => {
    const model = new Hafed({ ...TINY, k: 16, maskTopK1: 10, maskTopK2: 20, maskDrop: 0.24 });
    const u = tf.randomNormal([30, 16, 5], 0, 1, 'float32', 5) as tf.Tensor3D;
    const train = model.forward(u, { training: true, rng: createRng(1) });
    const zeros = (t: tf.Tensor) => Array.from(t.dataSync()).filter((z) => z === 0).length;
    // stage 1: int(10 * 0.24) = 2 per (patch, branch): 30 * 2 * 2; stage 2: int(20 * 0.24) = 4 per branch: 3 * 4
    expect(zeros(train.attention1!)).toBe(120);
    expect(zeros(train.attention)).toBe(12);
    const evalOut = model.forward(u);
    expect(zeros(evalOut.attention1!)).toBe(0);
    expect(zeros(evalOut.attention)).toBe(0);
    model.dispose();
  });

  it("reads Z directly with input 'lowRes' and has no stage 1", () => {
    const model = new Hafed({ ...TINY, input: 'lowRes' });
    const z = tf.randomNormal([7, 5]) as tf.Tensor2D;
    const out = model.forward(z);
    expect(out.attention1).toBeUndefined();
    expectAllclose(out.features, z);
    expectAllclose(model.predict(z).logits, out.logits, { rtol: 1e-6 });
    expect(Object.keys(model.weightMap()).every((n) => n.startsWith('stage2/'))).toBe(true);
    expect(() => model.aggregate(tf.ones([2, 3, 5]) as tf.Tensor3D)).toThrow(StateError);
    model.dispose();
  });

  it('rejects inputs of the wrong d, k or N with errors that name the fix', () => {
    const model = new Hafed(TINY);
    expect(() => model.aggregate(tf.ones([2, 4, 5]) as tf.Tensor3D)).toThrow(/shape \[N, 3, 5\].*got \[2, 4, 5\].*k = 3/);
    expect(() => model.aggregate(tf.ones([2, 3, 6]) as tf.Tensor3D)).toThrow(ShapeError);
    expect(() => model.aggregate(tf.ones([0, 3, 5]) as tf.Tensor3D)).toThrow(/N >= 1/);
    expect(() => model.classify(tf.ones([4, 6]) as tf.Tensor2D)).toThrow(/width d = 5/);
    expect(() => model.stage2HeadLogits(tf.ones([2, 6]) as tf.Tensor2D)).toThrow(ShapeError);
    expect(() => model.stage2HeadLogits(tf.ones([0, 5]) as tf.Tensor2D)).toThrow(ShapeError);
    expect(() => new Hafed({ numBranches2: 0 })).toThrow(/numBranches2/);
    expect(() => new Hafed({ input: 'zoom' as 'lowRes' })).toThrow(ValueError);
    expect(() => new Hafed({ nToken: 5 } as Partial<HafedConfig>)).toThrow(/Unknown key 'nToken'/);
    model.dispose();
    expect(() => model.classify(tf.ones([4, 5]) as tf.Tensor2D)).toThrow(StateError);
  });

  it('saves and loads through tf.io handlers (config included)', async () => {
    const model = new Hafed({ ...TINY, maskDrop: 0.4 });
    const u = tf.randomNormal([5, 3, 5], 0, 1, 'float32', 6) as tf.Tensor3D;
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await Hafed.load(tf.io.fromMemory(saved!));
    expect(loaded.config).toEqual(model.config);
    expectAllclose(loaded.predict(u).logits, model.predict(u).logits, { rtol: 1e-6 });
    // a different seed gives different weights, so equality above comes from the weights
    const other = new Hafed({ ...TINY, seed: 8 });
    expect(Array.from(other.predict(u).logits.dataSync())).not.toEqual(Array.from(model.predict(u).logits.dataSync()));
    await expect(Hafed.load(tf.io.fromMemory({ ...saved!, modelTopology: { format: 'other' } }))).rejects.toThrow(/Expected a saved HAFED model/);
    const { specs, data } = await tf.io.encodeWeights({ only: tf.ones([2]) });
    await expect(Hafed.load(tf.io.fromMemory({ ...saved!, weightSpecs: specs, weightData: data }))).rejects.toThrow(DataError);
    await expect(Hafed.load('nowhere://x')).rejects.toThrow(/No tf.io handler/);
    model.dispose();
    loaded.dispose();
    other.dispose();
  });

  it('leaks no tensors over forward, loss and prediction loops', async () => {
    const model = new Hafed(TINY);
    const u = tf.randomNormal([5, 3, 5]) as tf.Tensor3D;
    const rng = createRng(2);
    const rows = tf.ones([2, 5]) as tf.Tensor2D;
    await expectNoLeak(() => {
      for (let i = 0; i < 3; i++) {
        const out = model.forward(u, { training: true, rng });
        const l = hafedLoss(out, 1);
        tf.dispose([...Object.values(l), out.logits, out.branchLogits, out.attention, out.attention1!, out.features]);
        const p = model.predict(u);
        tf.dispose([p.logits, p.probs, p.attention]);
        tf.dispose(model.stage2RowLogits(rows));
      }
    });
    model.dispose();
  });

  it('gives the same loss and gradients on the wasm and cpu backends', async () => {
    const us = randomU(5, 6, 3, 5);
    const run = () => {
      const model = new Hafed(TINY);
      const vars = model.weightMap();
      const u = tf.tensor3d(us);
      const { value, grads } = tf.variableGrads(() => hafedLoss(model.forward(u, { training: true, rng: createRng(4) }), 1).total, Object.values(vars));
      const out = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, Array.from(grads[v.name].dataSync())])) };
      tf.dispose([value, u, ...Object.values(grads)]);
      model.dispose();
      return out;
    };
    const wasm = await onBackend('wasm', run);
    const cpu = await onBackend('cpu', run);
    expect(cpu.loss).toBeCloseTo(wasm.loss, 5);
    for (const n of Object.keys(wasm.grads)) expectAllclose(cpu.grads[n], wasm.grads[n], { rtol: 1e-4, atol: 1e-6 });
  });

  it('frees every tensor it created on dispose', () => {
    const before = tf.memory().numTensors;
    const model = new Hafed(TINY);
    expect(tf.memory().numTensors).toBe(before + model.trainableVariables().length);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
