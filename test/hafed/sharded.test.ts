import { describe, expect, it } from 'vitest';
import { AdamW, createRng, tf } from '../../src/core/index.js';
import {
  Hafed,
  SubPatchShard,
  hafedTrainStep,
  hafedTrainStepSharded,
  predictHafedSharded,
  type HafedConfig,
  type ShardForwardTask,
  type SubPatchWorkers,
} from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** Shards run on this thread (the contract of a worker pool, without threads). */
class InThreadShards implements SubPatchWorkers {
  readonly shards: SubPatchShard[];
  tasks: ShardForwardTask[] = [];
  constructor(readonly size: number) {
    this.shards = Array.from({ length: size }, () => new SubPatchShard());
  }
  async forward(shard: number, task: ShardForwardTask) {
    this.tasks.push(task);
    return this.shards[shard].forward(task);
  }
  async backward(shard: number, dFeatures: Float32Array, dAttention: Float32Array) {
    return this.shards[shard].backward(dFeatures, dAttention);
  }
}

const D = 12;
const K = 5;

function slide(n: number, seed: number): tf.Tensor3D {
  return tf.randomNormal([n, K, D], 0, 1, 'float32', seed) as tf.Tensor3D;
}

describe('sharded HAFED', () => {
  for (const [name, config] of [
    ['reference settings (M1 = 1, M2 = 5, STKIM)', { numBranches2: 5, maskTopK1: 4, maskTopK2: 6, maskDrop: 0.5 }],
    ['two stage-1 branches (similarity loss on stage 1)', { numBranches1: 2, numBranches2: 3, maskTopK1: 3, maskTopK2: 4, maskDrop: 0.4 }],
  ] as [string, Partial<HafedConfig>][]) {
    it(`a training step equals the one-thread step: ${name}`, async () => {
      const base: Partial<HafedConfig> = { dim: D, k: K, attentionDim: 8, seed: 3, ...config };
      const one = new Hafed(base);
      const many = new Hafed(base);
      const optOne = new AdamW({ learningRate: 1e-2, weightDecay: 1e-3 });
      const optMany = new AdamW({ learningRate: 1e-2, weightDecay: 1e-3 });
      const pool = new InThreadShards(2); // three shards with this thread's
      const u = slide(23, 7);
      for (let step = 0; step < 3; step++) {
        const a = hafedTrainStep(one, optOne, u, step % 2, createRng(step + 1));
        const b = await hafedTrainStepSharded(many, optMany, u, step % 2, createRng(step + 1), pool);
        expect(b.loss).toBeCloseTo(a.loss, 5);
        expect(b.slideLoss).toBeCloseTo(a.slideLoss, 5);
        expect(b.similarityLoss).toBeCloseTo(a.similarityLoss, 5);
        expect(b.pred).toBe(a.pred);
      }
      // the shards saw their own patches: 8 + 8 of 23 (the calling thread took the first 7)
      expect(pool.tasks.slice(0, 2).map((t) => t.shape[0])).toEqual([8, 8]);
      expect(pool.tasks[0].ranks).not.toBeNull();
      const wa = one.getWeights();
      const wb = many.getWeights();
      // (the biases of the attention scores before a softmax have a zero gradient: AdamW turns
      // its float noise into steps of up to lr, so they are left out)
      for (const key of Object.keys(wa)) if (!key.endsWith('attention/biasW')) expectAllclose(wb[key], wa[key], { rtol: 1e-4, atol: 1e-6 });
      // inference over shards
      const pa = one.predict(u);
      const pb = await predictHafedSharded(many, u, pool);
      expectAllclose(pb.probs, pa.probs, { rtol: 1e-5, atol: 1e-6 });
      tf.dispose([...Object.values(wa), ...Object.values(wb), pa.logits, pa.probs, pa.attention, pb.logits, pb.probs, pb.attention, u]);
      for (const m of [one, many]) m.dispose();
      optOne.dispose();
      optMany.dispose();
    });
  }

  it('holds no tensor after a step (the optimiser state aside) and refuses a model without stage 1', async () => {
    const model = new Hafed({ dim: D, k: K, attentionDim: 8, seed: 1, numBranches2: 2, maskTopK1: 3, maskTopK2: 3, maskDrop: 0.5 });
    const opt = new AdamW({ learningRate: 1e-3 });
    const pool = new InThreadShards(1);
    const u = slide(9, 2);
    await hafedTrainStepSharded(model, opt, u, 1, createRng(1), pool); // creates the optimiser state
    await expectNoLeak(() => hafedTrainStepSharded(model, opt, u, 0, createRng(2), pool));
    const lowRes = new Hafed({ dim: D, input: 'lowRes' });
    await expect(hafedTrainStepSharded(lowRes, opt, u, 0, createRng(2), pool)).rejects.toThrow(/no stage 1/);
    tf.dispose(u);
    model.dispose();
    lowRes.dispose();
    opt.dispose();
  });
});
