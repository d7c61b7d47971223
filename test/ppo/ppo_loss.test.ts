import { describe, expect, it } from 'vitest';
import { clipByGlobalNorm, tf } from '../../src/core/index.js';
import { actorLossTerms, criticLoss } from '../../src/ppo/ppo_loss.js';
import {
  ActorCritic,
  ActorCriticPolicy,
  buildRolloutBatch,
  evaluateEventSourced,
  eventSourcedPpoLoss,
  resolvePpoConfig,
  runPpoUpdate,
} from '../../src/ppo/index.js';
import { expectAllclose } from '../helpers.js';
import { recordEpisodes } from './episodes.js';

describe('PPO losses by hand', () => {
  // old p = [0.4, 0.4], new p = [0.5, 0.44] -> ratio r = [1.25, 1.1]; A = [1, -2]; eps 0.2
  // sample 0: max(-1 * 1.25, -1 * 1.2) = -1.2 (clipped); sample 1: max(2 * 1.1, 2 * 1.1) = 2.2
  // policy loss (-1.2 + 2.2) / 2 = 0.5; entropy mean (1 + 0.5) / 2 = 0.75; loss 0.5 - 0.01 * 0.75 = 0.4925
  // log r = [0.2231436, 0.0953102]: old_approx_kl = -0.1592269; approx_kl = (0.0268564 + 0.0046898) / 2 = 0.0157731
  // clipfrac: |r - 1| = [0.25, 0.1] > 0.2 -> 0.5
  const newLp = [Math.log(0.5), Math.log(0.44)];
  const oldLp = [Math.log(0.4), Math.log(0.4)];
  it('actor terms', () => {
    const t = actorLossTerms(tf.tensor1d(newLp), tf.tensor1d([1, 0.5]), tf.tensor1d(oldLp), tf.tensor1d([1, -2]), 2, { clipCoef: 0.2, entCoef: 0.01 });
    expectAllclose(t.policyLoss, 0.5);
    expectAllclose(t.entropy, 0.75);
    expectAllclose(t.loss, 0.4925);
    expectAllclose(t.oldApproxKl, -0.1592269);
    expectAllclose(t.approxKl, 0.0157731, { rtol: 1e-4 });
    expectAllclose(t.clipFraction, 0.5);
    tf.dispose(Object.values(t));
  });

  it('actor gradient: zero on the clipped sample, -A r / B on the other', () => {
    // d/dlogp_1 of max(-A r, -A clip(r)) with r unclipped = -A r = 2.2, divided by B = 2 -> 1.1
    const g = tf.grad((lp: tf.Tensor) =>
      actorLossTerms(lp as tf.Tensor1D, tf.tensor1d([1, 0.5]), tf.tensor1d(oldLp), tf.tensor1d([1, -2]), 2, { clipCoef: 0.2, entCoef: 0 }).loss,
    )(tf.tensor1d(newLp));
    expectAllclose(g, [0, 1.1]);
  });

  it('chunks sum to the batch mean (terms are sums divided by the batch size)', () => {
    const half = actorLossTerms(tf.tensor1d([newLp[0]]), tf.tensor1d([1]), tf.tensor1d([oldLp[0]]), tf.tensor1d([1]), 2, { clipCoef: 0.2, entCoef: 0.01 });
    const other = actorLossTerms(tf.tensor1d([newLp[1]]), tf.tensor1d([0.5]), tf.tensor1d([oldLp[1]]), tf.tensor1d([-2]), 2, { clipCoef: 0.2, entCoef: 0.01 });
    expectAllclose(tf.add(half.loss, other.loss), 0.4925);
  });

  it('critic loss: MSE, and CleanRL clipping on request', () => {
    // V = [1, -1], R = [0.5, 0]: MSE = (0.25 + 1) / 2 = 0.625
    expectAllclose(criticLoss(tf.tensor1d([1, -1]), tf.tensor1d([0.8, -0.5]), tf.tensor1d([0.5, 0]), 2, { clipCoef: 0.2, clipValueLoss: false }), 0.625);
    // V_clip = [0.8 + 0.2, -0.5 - 0.2] = [1, -0.7]: clipped errors [0.25, 0.49]; max with [0.25, 1] -> [0.25, 1]; 0.5 * 0.625
    expectAllclose(criticLoss(tf.tensor1d([1, -1]), tf.tensor1d([0.8, -0.5]), tf.tensor1d([0.5, 0]), 2, { clipCoef: 0.2, clipValueLoss: true }), 0.3125);
  });
});

describe('gradient clipping in the update', () => {
  it('clip-by-global-norm by hand: actor and critic separately', () => {
    // actor norm sqrt(3^2 + 4^2) = 5 -> scale 0.5 / (5 + 1e-6); critic norm 10 -> scale 0.5 / (10 + 1e-6)
    const a = clipByGlobalNorm({ w: tf.tensor1d([3, 4]) }, 0.5);
    const c = clipByGlobalNorm({ v: tf.tensor1d([6, 8]) }, 0.5);
    expect(a.globalNorm).toBeCloseTo(5, 6);
    expect(c.globalNorm).toBeCloseTo(10, 6);
    expectAllclose(a.grads.w, [0.3, 0.4], { rtol: 1e-6 });
    expectAllclose(c.grads.v, [0.3, 0.4], { rtol: 1e-6 });
    // jointly the norm would be sqrt(125) = 11.18 and both would scale by 0.0447: not what the reference does
  });

  it('runPpoUpdate steps each network with its own clipped gradient (SGD with lr 1 makes the step visible)', async () => {
    const model = new ActorCritic({ dim: 5, hiddenDim: 6, seed: 4 });
    const { buffer } = recordEpisodes({ numPatches: 9, dim: 5, budget: 3, rewrites: [1, 3] }, new ActorCriticPolicy(model, { seed: 2 }), 2, 9);
    const table = buffer.versionTable();
    const config = resolvePpoConfig({ updateEpochs: 1, maxGradNorm: 0.05 });
    // expected: the gradients before the update, each network clipped to 0.05 on its own
    const batch = buildRolloutBatch(table, evaluateEventSourced(model, table).values, config);
    const r = eventSourcedPpoLoss(model, batch, config);
    const expected: Record<string, Float32Array> = {};
    for (const grads of [r.actorGrads, r.criticGrads]) {
      let sq = 0;
      for (const g of Object.values(grads)) for (const v of g.dataSync()) sq += v * v;
      const norm = Math.sqrt(sq);
      expect(norm).toBeGreaterThan(0.05);
      for (const [name, g] of Object.entries(grads)) {
        const w = (tf.engine().registeredVariables[name] as tf.Variable).dataSync() as Float32Array;
        expected[name] = w.map((x, i) => x - g.dataSync()[i] * (0.05 / (norm + 1e-6)));
      }
    }
    tf.dispose([...Object.values(r.actorGrads), ...Object.values(r.criticGrads)]);
    const opts = [tf.train.sgd(1), tf.train.sgd(1)];
    await runPpoUpdate({ model, actorOptimizer: opts[0], criticOptimizer: opts[1], table, config });
    for (const [name, w] of Object.entries(expected)) expectAllclose(tf.engine().registeredVariables[name], w, { rtol: 1e-5, atol: 1e-7 });
    opts.forEach((o) => o.dispose());
    model.dispose();
  });
});
