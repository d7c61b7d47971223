/**
 * The check that a pool of stage-1 shards (`SubPatchWorkers`) changes nothing but where the work
 * runs: sharded training steps, predictions and `trainHafed` with the pool equal the one-thread
 * ones up to float rounding, and the steps leave no tensor behind.
 */
import { expect } from 'vitest';
import { AdamW, InMemoryDataset, createRng, tf } from '../../src/core/index.js';
import { Hafed, hafedTrainStep, hafedTrainStepSharded, predictHafedSharded, trainHafed, type SubPatchWorkers } from '../../src/hafed/index.js';
import { expectAllclose } from '../helpers.js';

const D = 10;
const K = 4;
/** A small HAFED with STKIM masking in both stages. */
export const PARITY_CONFIG = { dim: D, k: K, attentionDim: 6, numBranches2: 3, maskTopK1: 3, maskTopK2: 4, maskDrop: 0.5, seed: 2 };

export async function expectSameAsOneThread(pool: SubPatchWorkers): Promise<void> {
  const one = new Hafed(PARITY_CONFIG);
  const two = new Hafed(PARITY_CONFIG);
  const optOne = new AdamW({ learningRate: 1e-2 });
  const optTwo = new AdamW({ learningRate: 1e-2 });
  const u = tf.randomNormal([15, K, D], 0, 1, 'float32', 3) as tf.Tensor3D;
  let tensors0 = 0;
  for (let step = 0; step < 3; step++) {
    const a = hafedTrainStep(one, optOne, u, 1, createRng(step));
    const b = await hafedTrainStepSharded(two, optTwo, u, 1, createRng(step), pool);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(b.similarityLoss).toBeCloseTo(a.similarityLoss, 5);
    // (the optimisers make their moments at the first step)
    if (step === 0) tensors0 = tf.memory().numTensors;
  }
  expect(tf.memory().numTensors).toBe(tensors0);
  const pa = one.predict(u);
  const pb = await predictHafedSharded(two, u, pool);
  expectAllclose(pb.probs, pa.probs, { rtol: 1e-5, atol: 1e-6 });
  tf.dispose([u, pa.logits, pa.probs, pa.attention, pb.logits, pb.probs, pb.attention]);
  // trainHafed with the pool: the same training as without
  const bags = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, label: i % 2, highRes: tf.randomNormal([9 + i, K, D], 0, 1, 'float32', 10 + i) as tf.Tensor3D }));
  const train = new InMemoryDataset(bags);
  const plain = await trainHafed({ train, model: PARITY_CONFIG, config: { epochs: 2 }, seed: 4 });
  const pooled = await trainHafed({ train, model: PARITY_CONFIG, config: { epochs: 2 }, seed: 4, workers: pool });
  expect(pooled.history.map((h) => h.loss)).toEqual(plain.history.map((h) => expect.closeTo(h.loss, 4)));
  const wa = plain.model.getWeights();
  const wb = pooled.model.getWeights();
  for (const key of Object.keys(wa)) if (!key.endsWith('attention/biasW')) expectAllclose(wb[key], wa[key], { rtol: 1e-3, atol: 1e-5 });
  tf.dispose([...Object.values(wa), ...Object.values(wb)]);
  for (const m of [one, two, plain.model, pooled.model]) m.dispose();
  train.dispose();
  optOne.dispose();
  optTwo.dispose();
}
