import { describe, expect, it } from 'vitest';
import { createRng, ShapeError, tf, ValueError } from '../../src/core/index.js';
import {
  ActorCritic,
  ActorCriticPolicy,
  GreedyAttentionPolicy,
  RandomPolicy,
  TopAttentionPolicy,
  playEpisode,
  selectFromLogits,
  type AttentionScorer,
} from '../../src/ppo/index.js';
import { expectAllclose } from '../helpers.js';
import { FakeZoomEnv } from './fake_env.js';

function frequencies(draw: () => number, n: number, reps: number): number[] {
  const f = new Array(n).fill(0);
  for (let i = 0; i < reps; i++) f[draw()] += 1 / reps;
  return f;
}

describe('selectFromLogits', () => {
  const logits = [0, 2, 1, Math.log(0.5)];
  const mask = Uint8Array.from([1, 0, 1, 1]);

  it('argmax skips masked rows; logProb is from the masked softmax', () => {
    // allowed logits [0, 1, ln 0.5]: exp sum = 1 + e + 0.5; argmax row 2, log p = 1 - ln(1.5 + e)
    const c = selectFromLogits(logits, mask, { mode: 'argmax' });
    expect(c.action).toBe(2);
    expect(c.logProb).toBeCloseTo(1 - Math.log(1.5 + Math.E), 10);
  });

  it('sample draws from the masked softmax and never a masked row', () => {
    const rng = createRng(1);
    const f = frequencies(() => selectFromLogits(logits, mask, { mode: 'sample', rng }).action, 4, 20000);
    const z = 1.5 + Math.E;
    expectAllclose(f, [1 / z, 0, Math.E / z, 0.5 / z], { rtol: 0, atol: 0.015 });
  });

  it('topK samples among the k best allowed rows, renormalised', () => {
    // k = 2 best allowed: rows 2 (e) and 0 (1): p = [1, e] / (1 + e)
    const rng = createRng(2);
    const f = frequencies(() => selectFromLogits(logits, mask, { mode: 'topK', topK: 2, rng }).action, 4, 20000);
    expectAllclose(f, [1 / (1 + Math.E), 0, Math.E / (1 + Math.E), 0], { rtol: 0, atol: 0.015 });
  });

  it('topP takes the smallest best prefix whose probability exceeds p', () => {
    // probabilities [0.5, 0.3, 0.2]: p = 0.3 keeps row 0 only; p = 0.6 keeps rows 0 and 1 (0.625 / 0.375)
    const lg = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
    const all = Uint8Array.from([1, 1, 1]);
    const rng = createRng(3);
    for (let i = 0; i < 500; i++) expect(selectFromLogits(lg, all, { mode: 'topP', topP: 0.3, rng }).action).toBe(0);
    const f = frequencies(() => selectFromLogits(lg, all, { mode: 'topP', topP: 0.6, rng }).action, 3, 20000);
    expectAllclose(f, [0.625, 0.375, 0], { rtol: 0, atol: 0.015 });
  });

  it('rejects an empty mask and bad options', () => {
    expect(() => selectFromLogits([1, 2], Uint8Array.from([0, 0]))).toThrow(/allows none/);
    expect(() => selectFromLogits([1, 2], Uint8Array.from([1]))).toThrow(ShapeError);
    expect(() => selectFromLogits([1, 2], Uint8Array.from([1, 1]), { mode: 'sample' })).toThrow(/rng/);
    expect(() => selectFromLogits([1, 2], Uint8Array.from([1, 1]), { mode: 'topP', topP: 0, rng: createRng(0) })).toThrow(ValueError);
  });
});

describe('ActorCriticPolicy', () => {
  it('incremental scoring equals re-scoring the whole state after every step', () => {
    const model = new ActorCritic({ dim: 5, hiddenDim: 4, seed: 3 });
    const policy = new ActorCriticPolicy(model, { seed: 1 });
    const env = new FakeZoomEnv({ numPatches: 15, dim: 5, budget: 6, rewrites: [2, 5] });
    let { observation } = env.reset({ seed: 4 });
    policy.startEpisode(observation);
    const actions = new Set<number>();
    for (let t = 0; t < 6; t++) {
      const full = tf.tidy(() => model.actorLogits(tf.tensor2d(observation.state, [15, 5])).dataSync());
      expectAllclose(policy.currentLogits() as Float32Array, full, { rtol: 1e-5, atol: 1e-6 });
      const { action } = policy.selectAction(observation, { mode: 'sample' });
      expect(actions.has(action)).toBe(false);
      actions.add(action);
      const res = env.step(action);
      policy.observeStep(res.info);
      observation = res.observation;
    }
    expect(() => policy.startEpisode({ ...observation, dim: 4, state: new Float32Array(60) })).toThrow(/d = 4.*built for d = 5/);
    model.dispose();
  });
});

/** A stand-in for HAFED stage 2: logits [n, 2] = x W with fixed W. */
const scorer: AttentionScorer = {
  stage2RowLogits: (x) => tf.tidy(() => tf.matMul(x, tf.tensor2d([[1, 0.5], [0, -1], [0.3, 0.3]]))),
};

function attentionOf(state: Float32Array, N: number): number[] {
  const L = tf.tidy(() => scorer.stage2RowLogits(tf.tensor2d(state, [N, 3])).arraySync() as number[][]);
  const a = new Array(N).fill(0);
  for (let m = 0; m < 2; m++) {
    const col = L.map((r) => r[m]);
    const mx = Math.max(...col);
    const z = col.reduce((s, v) => s + Math.exp(v - mx), 0);
    col.forEach((v, i) => (a[i] += Math.exp(v - mx) / z / 2));
  }
  return a;
}

describe('baselines', () => {
  it('random: uniform over the allowed patches, each chosen once', () => {
    const env = new FakeZoomEnv({ numPatches: 5, dim: 3, budget: 5 });
    const counts = new Array(5).fill(0);
    const policy = new RandomPolicy({ seed: 7 });
    for (let e = 0; e < 2000; e++) {
      const { actions } = playEpisode(env, policy, { seed: e });
      expect(new Set(actions).size).toBe(5);
      counts[actions[0]] += 1 / 2000;
    }
    expectAllclose(counts, [0.2, 0.2, 0.2, 0.2, 0.2], { rtol: 0, atol: 0.03 });
    const obs = env.reset({ seed: 1 }).observation;
    expect(policy.selectAction(obs).logProb).toBeCloseTo(-Math.log(5), 12);
  });

  it('top-attention: zooms in the order of the attention on S_0', () => {
    const env = new FakeZoomEnv({ numPatches: 8, dim: 3, budget: 4, rewrites: [1, 3] });
    const { observation } = env.reset({ seed: 5 });
    const order = attentionOf(observation.state, 8)
      .map((a, i) => [a, i])
      .sort((p, q) => q[0] - p[0])
      .map((p) => p[1]);
    const { actions } = playEpisode(env, new TopAttentionPolicy(scorer), { seed: 5 });
    expect(actions).toEqual(order.slice(0, 4));
  });

  it('greedy attention: each step takes the best allowed patch of the current state', () => {
    const env = new FakeZoomEnv({ numPatches: 10, dim: 3, budget: 5, rewrites: [2, 4] });
    const policy = new GreedyAttentionPolicy(scorer);
    let { observation } = env.reset({ seed: 9 });
    policy.startEpisode(observation);
    let differsFromStatic = false;
    const static0 = attentionOf(observation.state, 10);
    for (let t = 0; t < 5; t++) {
      const a = attentionOf(observation.state, 10);
      let best = -1;
      for (let i = 0; i < 10; i++) if (observation.actionMask[i] && (best < 0 || a[i] > a[best])) best = i;
      const { action } = policy.selectAction(observation);
      expect(action).toBe(best);
      let staticBest = -1;
      for (let i = 0; i < 10; i++) if (observation.actionMask[i] && (staticBest < 0 || static0[i] > static0[staticBest])) staticBest = i;
      if (staticBest !== best) differsFromStatic = true;
      const res = env.step(action);
      policy.observeStep(res.info);
      observation = res.observation;
    }
    // rewrites change the ranking, so greedy is not the static ranking here
    expect(differsFromStatic).toBe(true);
  });
});
