import { describe, expect, it } from 'vitest';
import { AdamW, InMemoryDataset, createRng, tf } from '../../src/core/index.js';
import { Hafed, SubPatchShard, hafedTrainStep, hafedTrainStepSharded, predictHafedSharded, trainHafed, type ShardForwardTask } from '../../src/hafed/index.js';
import { stkimMaskFromRanks } from '../../src/hafed/multi_branch_attention.js';
import { createNativeStage1, stkimAdditiveMask } from '../../src/node/index.js';
import { MASK_LOGIT } from '../../src/core/ops.js';
import { expectAllclose } from '../helpers.js';

const D = 10;
const K = 4;
const CONFIG = { dim: D, k: K, attentionDim: 6, numBranches2: 3, maskTopK1: 3, maskTopK2: 4, maskDrop: 0.5, seed: 2 };

/** Largest |a - b| over the largest |b| (1 when b is all zeros). */
function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

describe('stkimAdditiveMask', () => {
  it('masks the same entries as stkimMaskFromRanks, ties included', () => {
    const rng = createRng(5);
    const rows = 40;
    const k = 7;
    // rounded values make ties common
    const logits = Float32Array.from({ length: rows * k }, () => Math.round(rng.normal() * 2) / 2);
    const ranks = Int32Array.from({ length: rows * 2 }, () => rng.int(4));
    const keep = stkimMaskFromRanks(tf.tensor2d(logits, [rows, k]), ranks, 4);
    const kept = keep.dataSync();
    keep.dispose();
    const additive = stkimAdditiveMask(logits, k, ranks, 4);
    expect(Array.from(additive, (x) => (x === MASK_LOGIT ? 0 : 1))).toEqual(Array.from(kept));
    expect(() => stkimAdditiveMask(logits, k, Int32Array.from({ length: rows }, () => 4), 4)).toThrow(/ranks in \[0, 4\)/);
  });
});

describe('createNativeStage1', () => {
  it('computes the forward and backward pass of the tfjs stage 1, with STKIM masks', async () => {
    const native = await createNativeStage1();
    const tensors0 = tf.memory().numTensors;
    try {
      expect(native.size).toBe(1);
      expect(native.localShare).toBe(0);
      const rng = createRng(8);
      const [n, k, d, Dh, M] = [12, 6, 16, 8, 2];
      const arr = (len: number, sc = 1) => Float32Array.from({ length: len }, () => rng.normal() * sc);
      const task: ShardForwardTask = {
        u: arr(n * k * d),
        shape: [n, k, d],
        weights: { kernelV: arr(d * Dh, 0.3), biasV: arr(Dh, 0.1), kernelU: arr(d * Dh, 0.3), biasU: arr(Dh, 0.1), kernelW: arr(Dh * M, 0.5), biasW: arr(M, 0.1), dim: d, attentionDim: Dh, numBranches: M },
        ranks: Int32Array.from({ length: n * M * 2 }, () => rng.int(4)),
        maskTopK: 4,
        training: true,
      };
      const local = new SubPatchShard();
      const a = local.forward(task);
      const b = await native.forward(0, task);
      expect(relErr(b.features, a.features)).toBeLessThan(1e-5);
      expect(relErr(b.attention, a.attention)).toBeLessThan(1e-5);
      // the same sub-patches masked (no attention) in both
      expect(Array.from(b.attention, (x) => x === 0)).toEqual(Array.from(a.attention, (x) => x === 0));
      expect(b.attention.filter((x) => x === 0).length).toBeGreaterThan(n * M);
      const dF = arr(n * d);
      const dA = arr(n * M * k);
      const ga = local.backward(dF, dA);
      const gb = await native.backward(0, dF, dA);
      expect(gb.map((g) => g.length)).toEqual(ga.map((g) => g.length));
      // kernels and biases: relative to their own scale; the output bias's gradient sums softmax
      // gradients (exactly 0 per patch), so it is compared to the scale of the kernel's
      for (let i = 0; i < 5; i++) expect(relErr(gb[i], ga[i]), `gradient ${i}`).toBeLessThan(1e-4);
      const kernelScale = Math.max(...ga[4].map(Math.abs));
      for (let j = 0; j < M; j++) expect(Math.abs(gb[5][j] - ga[5][j])).toBeLessThan(1e-4 * kernelScale);
      await expect(native.backward(0, dF, dA)).rejects.toThrow(/forward pass first/);
      await expect(native.forward(1, task)).rejects.toThrow(/one shard/);
    } finally {
      await native.close();
    }
    expect(tf.memory().numTensors).toBe(tensors0);
    await expect(native.forward(0, {} as never)).rejects.toThrow(/closed/);
  });

  it('takes every patch of the sharded HAFED step: steps, predictions and training equal the one-thread ones', async () => {
    const native = await createNativeStage1();
    try {
      const one = new Hafed(CONFIG);
      const two = new Hafed(CONFIG);
      const optOne = new AdamW({ learningRate: 1e-2 });
      const optTwo = new AdamW({ learningRate: 1e-2 });
      const u = tf.randomNormal([15, K, D], 0, 1, 'float32', 3) as tf.Tensor3D;
      let tensors0 = 0;
      for (let step = 0; step < 3; step++) {
        const a = hafedTrainStep(one, optOne, u, 1, createRng(step));
        const b = await hafedTrainStepSharded(two, optTwo, u, 1, createRng(step), native);
        expect(b.loss).toBeCloseTo(a.loss, 5);
        expect(b.similarityLoss).toBeCloseTo(a.similarityLoss, 5);
        // (the optimisers make their moments at the first step)
        if (step === 0) tensors0 = tf.memory().numTensors;
      }
      expect(tf.memory().numTensors).toBe(tensors0);
      const pa = one.predict(u);
      const pb = await predictHafedSharded(two, u, native);
      expectAllclose(pb.probs, pa.probs, { rtol: 1e-5, atol: 1e-6 });
      tf.dispose([u, pa.logits, pa.probs, pa.attention, pb.logits, pb.probs, pb.attention]);
      const bags = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, label: i % 2, highRes: tf.randomNormal([9 + i, K, D], 0, 1, 'float32', 10 + i) as tf.Tensor3D }));
      const train = new InMemoryDataset(bags);
      const plain = await trainHafed({ train, model: CONFIG, config: { epochs: 2 }, seed: 4 });
      const nat = await trainHafed({ train, model: CONFIG, config: { epochs: 2 }, seed: 4, workers: native });
      expect(nat.history.map((h) => h.loss)).toEqual(plain.history.map((h) => expect.closeTo(h.loss, 4)));
      const wa = plain.model.getWeights();
      const wb = nat.model.getWeights();
      for (const key of Object.keys(wa)) if (!key.endsWith('attention/biasW')) expectAllclose(wb[key], wa[key], { rtol: 1e-3, atol: 1e-5 });
      tf.dispose([...Object.values(wa), ...Object.values(wb)]);
      for (const m of [one, two, plain.model, nat.model]) m.dispose();
      train.dispose();
      optOne.dispose();
      optTwo.dispose();
    } finally {
      await native.close();
    }
  });

  it('refuses a bad thread count', async () => {
    await expect(createNativeStage1({ threads: 0 })).rejects.toThrow(/positive integer/);
  });
});
