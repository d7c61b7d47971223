import { describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { ActorCritic, ActorCriticPolicy, RandomPolicy, RolloutBuffer, buildRolloutBatch, evaluateEventSourced, eventSourcedPpoLoss, type PpoLossResult, type RolloutBatch } from '../../src/ppo/index.js';
import { valueScales } from '../../src/ppo/rollout_buffer.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';
import { recordEpisodes } from './episodes.js';
import { densePpoLoss, evaluateDense } from '../../src/ppo/dense_reference.js';

const cfg = { clipCoef: 0.2, entCoef: 0.01, clipValueLoss: false };

/**
 * Relative agreement of two gradient maps of one network: per element
 * |a - b| <= rtol * max|b| over the whole network. (The actor's and the critic-attention's
 * final biases have an exact zero gradient, since a softmax ignores a shared shift; their
 * float noise is checked against the network's scale, not against itself.)
 */
function expectGradsClose(a: tf.NamedTensorMap, b: tf.NamedTensorMap, rtol = 1e-5): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  let scale = 0;
  for (const name of Object.keys(b)) for (const v of b[name].dataSync()) scale = Math.max(scale, Math.abs(v));
  expect(scale).toBeGreaterThan(0);
  for (const name of Object.keys(b)) {
    const x = a[name].dataSync();
    const y = b[name].dataSync();
    for (let i = 0; i < y.length; i++) {
      if (Math.abs(x[i] - y[i]) > rtol * scale) expect.fail(`${name}[${i}]: event-sourced ${x[i]}, dense ${y[i]} (scale ${scale})`);
    }
  }
}

function disposeResult(r: PpoLossResult): void {
  tf.dispose([...Object.values(r.actorGrads), ...Object.values(r.criticGrads)]);
}

/** A batch whose ratios differ from 1 (old log-probs perturbed) so that clipping engages. */
function perturbedBatch(batch: RolloutBatch, seed: number): RolloutBatch {
  let s = seed;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.8;
  return { ...batch, oldLogProbs: batch.oldLogProbs.map((v) => v + noise()) };
}

describe('version table', () => {
  it('replays every state S_t of the episodes exactly, with shared S_0 for the same slide', () => {
    const { buffer, histories } = recordEpisodes({ numPatches: 12, dim: 5, budget: 5, rewrites: [1, 4] }, new RandomPolicy({ seed: 3 }), 3, 7);
    const table = buffer.versionTable();
    for (let e = 0; e < 3; e++) {
      const dense = table.denseStates(e);
      const T = histories[e].length;
      expect(T).toBe(5);
      for (let t = 0; t < T; t++) expectAllclose(dense.subarray(t * 60, (t + 1) * 60), histories[e][t], { rtol: 0, atol: 0 });
      // the mask at step t excludes exactly the actions taken before t
      const masks = table.denseMasks(e);
      const actions = table.episodes[e].actions;
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < 12; i++) expect(masks[t * 12 + i]).toBe(actions.slice(0, t).includes(i) ? 0 : 1);
      }
    }
    // R = N per distinct S_0 + sum |changed| over every step but the last; the fake env draws a new S_0 each reset
    const changed = table.episodes.reduce((s, e) => s + e.numChangedRows - e.changedRows[e.length - 1].length, 0);
    expect(table.numVersions).toBe(3 * 12 + changed);
  });

  it('shares the versions of an S_0 that two episodes of one slide have in common', () => {
    // two 2-step episodes from the same S_0 (same slide): R = N + sum |changed| (last steps
    // excluded) = 6 + 2 + 2, not 2N + ...
    const buffer = new RolloutBuffer();
    const state = Float32Array.from({ length: 6 * 3 }, (_, i) => Math.sin(i));
    for (let e = 0; e < 2; e++) {
      const mask = new Uint8Array(6).fill(1);
      buffer.startEpisode({ numPatches: 6, dim: 3, t: 0, budget: 2, actionMask: mask, state });
      for (let t = 0; t < 2; t++) {
        const m = mask.slice();
        if (t === 1) m[e] = 0;
        const changes = { changedRows: Int32Array.from([e + t, 5]), changedValues: new Float32Array(6).fill(e + 10 * t) };
        buffer.recordStep({ actionMask: m, action: e + t, logProb: -1, reward: -0.5, changes });
      }
      buffer.finishEpisode({ terminated: true, truncated: false });
    }
    expect(buffer.episodes[1].initialState).toBe(buffer.episodes[0].initialState);
    const table = buffer.versionTable();
    expect(table.numVersions).toBe(6 + 2 + 2);
    expect(table.numSamples).toBe(4);
    expect(table.sampleOffsets).toEqual([0, 2]);
    // episode 1, step 1: row 1 holds its first-step version (fill 1), row 5 too; others S_0
    const dense = table.denseStates(1);
    expectAllclose(dense.subarray(18 + 3, 18 + 6), [1, 1, 1], { rtol: 0, atol: 0 });
    expectAllclose(dense.subarray(18 + 15, 18 + 18), [1, 1, 1], { rtol: 0, atol: 0 });
    expectAllclose(dense.subarray(18, 18 + 3), state.subarray(0, 3), { rtol: 0, atol: 0 });
    expect(Array.from(table.denseMasks(1))).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1]);
  });
});

describe('event-sourced update equals the dense computation', () => {
  const cases = [
    { name: 'one episode', env: { numPatches: 9, dim: 6, budget: 4, rewrites: [0, 3] as [number, number] }, episodes: 1, chunk: 1 << 20 },
    { name: 'two episodes, chunks of 2 steps', env: { numPatches: 10, dim: 7, budget: 5, rewrites: [2, 5] as [number, number] }, episodes: 2, chunk: 20 },
    { name: 'three episodes, one step per chunk, value clipping', env: { numPatches: 8, dim: 4, budget: 6, rewrites: [1, 4] as [number, number] }, episodes: 3, chunk: 1, clip: true },
  ];
  for (const c of cases) {
    it(`${c.name}: losses, statistics and gradients to 1e-5`, () => {
      const model = new ActorCritic({ dim: c.env.dim, hiddenDim: 8, seed: 11 });
      const { buffer } = recordEpisodes(c.env, new ActorCriticPolicy(model, { seed: 1 }), c.episodes, 5);
      const table = buffer.versionTable();
      const values = evaluateEventSourced(model, table, { chunkElements: c.chunk }).values;
      const batch = perturbedBatch(buildRolloutBatch(table, values, { gamma: 1, gaeLambda: 0.94, normAdvantage: true }), 42);
      const config = { ...cfg, clipValueLoss: c.clip ?? false };
      const es = eventSourcedPpoLoss(model, batch, config, { chunkElements: c.chunk });
      const dense = densePpoLoss(model, batch, config);
      for (const k of ['actorLoss', 'valueLoss', 'policyLoss', 'entropy', 'oldApproxKl', 'approxKl', 'clipFraction'] as const) {
        expectAllclose(es[k], dense[k], { rtol: 1e-5, atol: 1e-7 });
      }
      // the perturbation makes some ratios leave [0.8, 1.2]
      expect(dense.clipFraction).toBeGreaterThan(0);
      expect(dense.clipFraction).toBeLessThan(1);
      expectGradsClose(es.actorGrads, dense.actorGrads);
      expectGradsClose(es.criticGrads, dense.criticGrads);
      disposeResult(es);
      disposeResult(dense);
      model.dispose();
    });
  }

  it('rows with attention scores, the attention prior and a critic scaled by the remaining steps: losses and gradients to 1e-5', () => {
    // d = 4 state features + M = 2 scores + the changed flag: rows of width 7
    const model = new ActorCritic({ dim: 4, numScores: 2, attentionPrior: 0.7, hiddenDim: 6, seed: 3 });
    expect(model.inputDim).toBe(7);
    const { buffer } = recordEpisodes({ numPatches: 9, dim: 7, budget: 4, rewrites: [1, 3] }, new RandomPolicy({ seed: 4 }), 2, 8);
    const table = buffer.versionTable();
    const scales = valueScales(table, { criticTimeScale: true, rewardScale: 'budget' });
    // rho_t = (T - t) / T with T = 4: 1, 0.75, 0.5, 0.25 for each episode
    expect(Array.from(scales!)).toEqual([1, 0.75, 0.5, 0.25, 1, 0.75, 0.5, 0.25]);
    const esEval = evaluateEventSourced(model, table, { chunkElements: 18, valueScales: scales });
    const denseEval = evaluateDense(model, table, scales);
    expectAllclose(esEval.values, denseEval.values, { rtol: 1e-5, atol: 1e-6 });
    // V(S_0) = rho_0 * (pool, then project) of the first state
    const S0 = tf.tensor2d(table.episodes[0].initialState, [9, 7]);
    const v0 = model.value(S0);
    expectAllclose(esEval.values[0], v0, { rtol: 1e-5, atol: 1e-6 });
    const batch = perturbedBatch(buildRolloutBatch(table, esEval.values, { gamma: 1, gaeLambda: 0.9, normAdvantage: true }), 7);
    const es = eventSourcedPpoLoss(model, batch, cfg, { chunkElements: 18, valueScales: scales });
    const dense = densePpoLoss(model, batch, cfg, scales);
    for (const k of ['actorLoss', 'valueLoss', 'policyLoss', 'entropy'] as const) expectAllclose(es[k], dense[k], { rtol: 1e-5, atol: 1e-7 });
    expect(Object.keys(es.actorGrads).some((k) => k.endsWith('/actor/prior_weight'))).toBe(true);
    expectGradsClose(es.actorGrads, dense.actorGrads);
    expectGradsClose(es.criticGrads, dense.criticGrads);
    tf.dispose([S0, v0]);
    disposeResult(es);
    disposeResult(dense);
    model.dispose();
  });

  it('evaluation: log-probs, entropies and values agree, and old log-probs from the rollout give ratio 1', () => {
    const model = new ActorCritic({ dim: 6, hiddenDim: 8, seed: 2 });
    const { buffer } = recordEpisodes({ numPatches: 11, dim: 6, budget: 4, rewrites: [2, 5] }, new ActorCriticPolicy(model, { seed: 9 }), 2, 3);
    const table = buffer.versionTable();
    const es = evaluateEventSourced(model, table, { chunkElements: 33 });
    const dense = evaluateDense(model, table);
    expectAllclose(es.logProbs, dense.logProbs, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(es.entropies, dense.entropies, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(es.values, dense.values, { rtol: 1e-5, atol: 1e-6 });
    // masked distribution at rollout and at update: the first-epoch ratio is 1
    const rollout = buffer.episodes.flatMap((e) => e.logProbs);
    expectAllclose(es.logProbs, rollout, { rtol: 1e-5, atol: 1e-5 });
    // values by the definition (pool, then project) for the first state
    const S0 = tf.tensor2d(table.episodes[0].initialState, [11, 6]);
    const v0 = model.value(S0);
    expectAllclose(es.values[0], v0, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([S0, v0]);
    model.dispose();
  });

  it('holds no tensors after the loss (gradients aside)', async () => {
    const model = new ActorCritic({ dim: 5, hiddenDim: 4 });
    const { buffer } = recordEpisodes({ numPatches: 7, dim: 5, budget: 3, rewrites: [1, 2] }, new ActorCriticPolicy(model), 2);
    const table = buffer.versionTable();
    const batch = buildRolloutBatch(table, evaluateEventSourced(model, table).values, { gamma: 1, gaeLambda: 0.95, normAdvantage: true });
    await expectNoLeak(() => {
      disposeResult(eventSourcedPpoLoss(model, batch, cfg, { chunkElements: 10 }));
      disposeResult(densePpoLoss(model, batch, cfg));
      evaluateEventSourced(model, table);
    });
    model.dispose();
  });
});
