import { describe, expect, it } from 'vitest';
import { AdamW, InMemoryDataset, createRng, tf } from '../../src/core/index.js';
import { Hafed, hafedTrainStep, hafedTrainStepSharded, predictHafedSharded, trainHafed } from '../../src/hafed/index.js';
import { createHafedWorkerPool } from '../../src/node/index.js';
import { expectAllclose } from '../helpers.js';

const D = 10;
const K = 4;
const CONFIG = { dim: D, k: K, attentionDim: 6, numBranches2: 3, maskTopK1: 3, maskTopK2: 4, maskDrop: 0.5, seed: 2 };

describe('createHafedWorkerPool', () => {
  it('runs stage 1 in a worker thread: training steps and predictions equal the one-thread ones', async () => {
    const pool = await createHafedWorkerPool(1);
    try {
      expect(pool.size).toBe(1);
      const one = new Hafed(CONFIG);
      const two = new Hafed(CONFIG);
      const optOne = new AdamW({ learningRate: 1e-2 });
      const optTwo = new AdamW({ learningRate: 1e-2 });
      const u = tf.randomNormal([15, K, D], 0, 1, 'float32', 3) as tf.Tensor3D;
      for (let step = 0; step < 2; step++) {
        const a = hafedTrainStep(one, optOne, u, 1, createRng(step));
        const b = await hafedTrainStepSharded(two, optTwo, u, 1, createRng(step), pool);
        expect(b.loss).toBeCloseTo(a.loss, 5);
      }
      const pa = one.predict(u);
      const pb = await predictHafedSharded(two, u, pool);
      expectAllclose(pb.probs, pa.probs, { rtol: 1e-5, atol: 1e-6 });
      tf.dispose([u, pa.logits, pa.probs, pa.attention, pb.logits, pb.probs, pb.attention]);
      // trainHafed with the pool: the same training as without
      const bags = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, label: i % 2, highRes: tf.randomNormal([9 + i, K, D], 0, 1, 'float32', 10 + i) as tf.Tensor3D }));
      const train = new InMemoryDataset(bags);
      const plain = await trainHafed({ train, model: CONFIG, config: { epochs: 2 }, seed: 4 });
      const pooled = await trainHafed({ train, model: CONFIG, config: { epochs: 2 }, seed: 4, workers: pool });
      expect(pooled.history.map((h) => h.loss)).toEqual(plain.history.map((h) => expect.closeTo(h.loss, 4)));
      const wa = plain.model.getWeights();
      const wb = pooled.model.getWeights();
      for (const key of Object.keys(wa)) if (!key.endsWith('attention/biasW')) expectAllclose(wb[key], wa[key], { rtol: 1e-3, atol: 1e-5 });
      tf.dispose([...Object.values(wa), ...Object.values(wb)]);
      for (const m of [one, two, plain.model, pooled.model]) m.dispose();
      train.dispose();
      optOne.dispose();
      optTwo.dispose();
    } finally {
      await pool.close();
    }
    await expect(pool.forward(0, {} as never)).rejects.toThrow(/closed/);
  });

  it('refuses a bad size', async () => {
    await expect(createHafedWorkerPool(0)).rejects.toThrow(/integer >= 1/);
  });
});
