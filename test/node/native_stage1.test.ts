import { describe, expect, it } from 'vitest';
import { createRng, tf } from '../../src/core/index.js';
import { SubPatchShard, type ShardForwardTask } from '../../src/hafed/index.js';
import { stkimMaskFromRanks } from '../../src/hafed/multi_branch_attention.js';
import { createNativeStage1, stkimAdditiveMask } from '../../src/node/index.js';
import { MASK_LOGIT } from '../../src/core/ops.js';
import { expectSameAsOneThread } from './sharded_parity.js';

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
      await expectSameAsOneThread(native);
    } finally {
      await native.close();
    }
  });

  it('refuses a bad thread count', async () => {
    await expect(createNativeStage1({ threads: 0 })).rejects.toThrow(/positive integer/);
  });
});
