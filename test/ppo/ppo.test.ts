import { describe, expect, it } from 'vitest';
import { AdamW, ShapeError, StateError, tf } from '../../src/core/index.js';
import {
  ActorCritic,
  ActorCriticPolicy,
  MemoryLogger,
  PPO,
  PPO_METRICS,
  RandomPolicy,
  checkpointCallback,
  earlyStopOnReward,
  evalCallback,
  playEpisode,
  resolvePpoConfig,
  runPpoUpdate,
  type ZoomPolicy,
} from '../../src/ppo/index.js';
import { expectAllclose } from '../helpers.js';
import { recordEpisodes } from './episodes.js';
import { FakeZoomEnv, type FakeEnvOptions } from './fake_env.js';

function memoryHandler() {
  let saved: tf.io.ModelArtifacts | null = null;
  let saves = 0;
  return {
    get saves() {
      return saves;
    },
    save: async (a: tf.io.ModelArtifacts) => {
      saved = a;
      saves += 1;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } };
    },
    load: async () => saved as tf.io.ModelArtifacts,
  };
}

/** Fraction of episodes in which the policy zoomed into the key patch. */
function successRate(envOptions: FakeEnvOptions, policy: ZoomPolicy, episodes: number, seed0: number): number {
  const env = new FakeZoomEnv(envOptions);
  let wins = 0;
  for (let e = 0; e < episodes; e++) {
    const { last } = playEpisode(env, policy, { seed: seed0 + e, mode: 'argmax' });
    if (last.info.success) wins += 1;
  }
  return wins / episodes;
}

function snapshot(model: ActorCritic): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(model.getWeights()).map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]));
}

const tiny: FakeEnvOptions = { numPatches: 10, dim: 6, budget: 2, rewrites: [0, 2], marker: 2 };
const fastConfig = { actorLearningRate: 3e-3, criticLearningRate: 3e-3, numEpisodesPerUpdate: 8, entCoef: 0.001, seed: 1 };

describe('PPO', () => {
  it('learns to zoom into the one patch that holds the answer (>= 0.9 where random is ~0.2)', async () => {
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 16, seed: 3 }, env: new FakeZoomEnv({ ...tiny, seed: 1 }), config: fastConfig });
    const random = successRate(tiny, new RandomPolicy({ seed: 5 }), 300, 10_000);
    const before = successRate(tiny, ppo.policy, 200, 10_000);
    await ppo.learn({ totalUpdates: 40 });
    const after = successRate(tiny, ppo.policy, 200, 10_000);
    // chance with 2 of 10 patches: 0.2
    expect(random).toBeGreaterThan(0.12);
    expect(random).toBeLessThan(0.28);
    expect(before).toBeLessThan(0.5);
    expect(after).toBeGreaterThanOrEqual(0.9);
    ppo.dispose();
  });
});

describe('PPO with several slides per update', () => {
  it('collects every environment the provider gives, stops at null, and learns with minibatches and the scaled critic', async () => {
    const envs = [1, 2, 3].map((seed) => new FakeZoomEnv({ ...tiny, seed }));
    const calls: [number, number][] = [];
    const ppo = new PPO({
      policy: { dim: 6, hiddenDim: 16, seed: 3 },
      env: (update, index) => {
        calls.push([update, index]);
        // three slides per update, except every other update, which has two
        return index === 2 && update % 2 === 1 ? null : envs[index];
      },
      config: { ...fastConfig, numEpisodesPerUpdate: 4, numEnvsPerUpdate: 3, numMinibatches: 2, rewardScale: 'budget', criticTimeScale: true },
    });
    await ppo.learn({ totalUpdates: 2 });
    expect(calls).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
    // (3 + 2) slides x 4 episodes x T = 2 steps
    expect(ppo.numTimesteps).toBe(40);
    await ppo.learn({ totalUpdates: 18 });
    expect(successRate(tiny, ppo.policy, 200, 10_000)).toBeGreaterThanOrEqual(0.9);
    ppo.dispose();
  });
});

describe('PPO training state', () => {
  it('holds no more tensors after more updates (no growth)', async () => {
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 }, env: new FakeZoomEnv({ ...tiny, seed: 2 }), config: { ...fastConfig, numEpisodesPerUpdate: 2 } });
    await ppo.learn({ totalUpdates: 1 }); // creates the optimisers' moments
    const before = tf.memory().numTensors;
    await ppo.learn({ totalUpdates: 3 });
    expect(tf.memory().numTensors).toBe(before);
    // the dense mode holds none either
    const dense = new PPO({ policy: ppo.model, env: new FakeZoomEnv({ ...tiny, seed: 3 }), config: { ...fastConfig, numEpisodesPerUpdate: 2, updateMode: 'dense' } });
    await dense.learn({ totalUpdates: 1 });
    const mid = tf.memory().numTensors;
    await dense.learn({ totalUpdates: 2 });
    expect(tf.memory().numTensors).toBe(mid);
    dense.dispose();
    ppo.dispose();
  });

  it('logs CleanRL metric names and counts steps and updates', async () => {
    const logger = new MemoryLogger();
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 }, env: new FakeZoomEnv(tiny), config: { numEpisodesPerUpdate: 2 }, logger });
    const events: number[] = [];
    await ppo.learn({ totalTimesteps: 9, onProgress: (e) => events.push(e.done) });
    // 2 episodes x 2 steps = 4 steps per update: 3 updates reach 9 steps
    expect(ppo.numUpdates).toBe(3);
    expect(ppo.numTimesteps).toBe(12);
    expect(events).toEqual([4, 8, 9]);
    for (const key of Object.values(PPO_METRICS)) expect(logger.values(key).length, key).toBe(3);
    expect(logger.history.get(PPO_METRICS.policyLoss)?.map((v) => v.step)).toEqual([4, 8, 12]);
    expect(logger.latest(PPO_METRICS.epochs)).toBe(4);
    expect(logger.latest(PPO_METRICS.learningRate)).toBe(1e-5);
    // the return of an episode is the sum of its rewards: each reward is ln 0.5 or ln 0.95
    const ret = logger.latest(PPO_METRICS.episodicReturn) as number;
    expect(ret).toBeGreaterThanOrEqual(2 * Math.log(0.5) - 1e-9);
    expect(ret).toBeLessThanOrEqual(2 * Math.log(0.95) + 1e-9);
    ppo.dispose();
  });

  it('save / load: same predictions, counters and optimiser state; resumes identically', async () => {
    const mk = () => new FakeZoomEnv({ ...tiny, seed: 4 });
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8, seed: 2 }, env: mk(), config: { ...fastConfig, numEpisodesPerUpdate: 2 } });
    await ppo.learn({ totalUpdates: 2 });
    const h = memoryHandler();
    await ppo.save(h);
    const back = await PPO.load(h, { env: mk(), dim: 6 });
    expect(back.numUpdates).toBe(2);
    expect(back.numTimesteps).toBe(ppo.numTimesteps);
    expect(back.config).toEqual(ppo.config);
    expect(back.actorOptimizer.iterations).toBe(ppo.actorOptimizer.iterations);
    const { observation } = mk().reset({ seed: 8 });
    expect(back.predict(observation)).toEqual(ppo.predict(observation));
    // one more update from the same rollout gives the same weights: the AdamW moments were restored
    const table = recordEpisodes(tiny, new RandomPolicy({ seed: 1 }), 2, 3).buffer.versionTable();
    await runPpoUpdate({ model: ppo.model, actorOptimizer: ppo.actorOptimizer, criticOptimizer: ppo.criticOptimizer, table, config: ppo.config });
    await runPpoUpdate({ model: back.model, actorOptimizer: back.actorOptimizer, criticOptimizer: back.criticOptimizer, table, config: back.config });
    const a = snapshot(ppo.model);
    const b = snapshot(back.model);
    for (const k of Object.keys(a)) expectAllclose(b[k], a[k], { rtol: 1e-6, atol: 1e-9 });
    // a policy saved for d = 6 refuses data of another width
    await expect(PPO.load(h, { dim: 384 })).rejects.toThrow(ShapeError);
    const other = new PPO({ policy: back.model, env: new FakeZoomEnv({ ...tiny, dim: 5 }) });
    await expect(other.learn({ totalUpdates: 1 })).rejects.toThrow(/d = 5.*built for d = 6/);
    expect(() => back.predict({ ...observation, dim: 3, state: new Float32Array(30) })).toThrow(ShapeError);
    other.dispose();
    back.dispose();
    ppo.dispose();
  });

  it('a non-finite reward is a clear error and leaves the training state untouched', async () => {
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 }, env: new FakeZoomEnv({ ...tiny, badRewardAt: 1 }), config: { numEpisodesPerUpdate: 2 } });
    const before = snapshot(ppo.model);
    await expect(ppo.learn({ totalUpdates: 1 })).rejects.toThrow(/finite reward.*step 1 returned NaN/);
    expect(ppo.numUpdates).toBe(0);
    expect(ppo.numTimesteps).toBe(0);
    expect(ppo.actorOptimizer.iterations).toBe(0);
    const after = snapshot(ppo.model);
    for (const k of Object.keys(before)) expect(after[k]).toEqual(before[k]);
    ppo.dispose();
  });

  it('an update that fails part-way is rolled back: weights and optimiser state as before', async () => {
    const model = new ActorCritic({ dim: 6, hiddenDim: 8 });
    const table = recordEpisodes(tiny, new ActorCriticPolicy(model), 2, 1).buffer.versionTable();
    const config = resolvePpoConfig({ actorLearningRate: 1e-2, criticLearningRate: 1e-2 });
    const actorOptimizer = new AdamW({ learningRate: 1e-2 });
    // the critic's optimiser fails at its third step, after two actor and two critic steps
    class FailingAdamW extends AdamW {
      override applyGradients(g: Parameters<AdamW['applyGradients']>[0]): void {
        if (this.iterations === 2) throw new StateError('disk full');
        super.applyGradients(g);
      }
    }
    const criticOptimizer = new FailingAdamW({ learningRate: 1e-2 });
    const before = snapshot(model);
    await expect(runPpoUpdate({ model, actorOptimizer, criticOptimizer, table, config })).rejects.toThrow('disk full');
    const after = snapshot(model);
    for (const k of Object.keys(before)) expect(after[k]).toEqual(before[k]);
    expect(actorOptimizer.iterations).toBe(0);
    expect(criticOptimizer.iterations).toBe(0);
    // with the optimiser now working, the update runs its 4 epochs
    const ok = new AdamW({ learningRate: 1e-2 });
    const { metrics } = await runPpoUpdate({ model, actorOptimizer, criticOptimizer: ok, table, config });
    expect(metrics.epochs).toBe(4);
    [actorOptimizer, criticOptimizer, ok].forEach((o) => o.dispose());
    model.dispose();
  });

  it('features that overflow the networks: a clear error, the update rolled back', async () => {
    const env = new FakeZoomEnv({ ...tiny, marker: 1e38 });
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 }, env });
    const before = snapshot(ppo.model);
    await expect(ppo.learn({ totalUpdates: 1 })).rejects.toThrow(/non-finite value.*rolled back/);
    expect(ppo.numUpdates).toBe(0);
    const after = snapshot(ppo.model);
    for (const k of Object.keys(before)) expect(after[k]).toEqual(before[k]);
    ppo.dispose();
  });
});

describe('PPO API', () => {
  it('callbacks: onStep false stops without an update, checkpoints, early stop and model selection', async () => {
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 }, env: new FakeZoomEnv(tiny), config: { numEpisodesPerUpdate: 2 } });
    let steps = 0;
    await ppo.learn({ totalUpdates: 5, callbacks: { onStep: () => ++steps < 3 } });
    expect(steps).toBe(3);
    expect(ppo.numUpdates).toBe(0);
    expect(ppo.numTimesteps).toBe(3);

    const h = memoryHandler();
    const calls: string[] = [];
    const scores = [3, 1, 2, 0.5];
    const selection = evalCallback({ evalFreq: 1, evaluate: () => scores[calls.filter((c) => c === 'update').length - 1], onNewBest: (_, s) => void calls.push(`best ${s}`) });
    await ppo.learn({
      totalUpdates: 4,
      callbacks: [
        { onTrainingStart: () => void calls.push('start'), onUpdateEnd: () => void calls.push('update'), onTrainingEnd: () => void calls.push('end') },
        checkpointCallback({ saveFreq: 2, save: (p) => p.save(h) }),
        selection,
      ],
    });
    expect(calls).toEqual(['start', 'update', 'best 3', 'update', 'best 1', 'update', 'update', 'best 0.5', 'end']);
    expect(selection.bestScore).toBe(0.5);
    expect(selection.bestUpdate).toBe(4);
    expect(h.saves).toBe(2);

    // every return is at most 2 ln 0.95 < -0.1, so a threshold of -10 stops after the first window
    await ppo.learn({ totalUpdates: 10, callbacks: earlyStopOnReward({ threshold: -10, window: 4 }) });
    expect(ppo.numUpdates).toBe(6);
    ppo.dispose();
  });

  it('predict: argmax by default, sampling on request, masked rows never chosen', () => {
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8, seed: 9 }, config: { seed: 3 } });
    const env = new FakeZoomEnv(tiny);
    const { observation } = env.reset({ seed: 2 });
    const logits = tf.tidy(() => ppo.model.actorLogits(tf.tensor2d(observation.state, [10, 6])).dataSync());
    const best = logits.indexOf(Math.max(...logits));
    expect(ppo.predict(observation).action).toBe(best);
    const masked = { ...observation, actionMask: observation.actionMask.map((m, i) => (i === best ? 0 : m)) };
    const picks = new Set(Array.from({ length: 200 }, () => ppo.predict(masked, { deterministic: false }).action));
    expect(picks.has(best)).toBe(false);
    expect(picks.size).toBeGreaterThan(3);
    ppo.dispose();
  });

  it('rejects bad configs and calls with messages that name the fix', async () => {
    expect(() => resolvePpoConfig({ gamma: 2 })).toThrow(/gamma to be a finite number in \[0, 1\], but got 2/);
    expect(() => resolvePpoConfig({ clipCoeff: 0.2 } as never)).toThrow(/Did you mean 'clipCoef'/);
    expect(() => resolvePpoConfig({ updateMode: 'sparse' as never })).toThrow(/'event-sourced', "dense"|"event-sourced", "dense"/);
    expect(() => resolvePpoConfig({ targetKl: -1 })).toThrow(/targetKl/);
    const ppo = new PPO({ policy: { dim: 6, hiddenDim: 8 } });
    await expect(ppo.learn({ totalUpdates: 1 })).rejects.toThrow(/No environment/);
    await expect(ppo.learn({})).rejects.toThrow(/exactly one of totalTimesteps and totalUpdates/);
    await expect(ppo.learn({ totalUpdates: 0.5 })).rejects.toThrow(/positive integer/);
    ppo.dispose();
    expect(() => ppo.predict(new FakeZoomEnv(tiny).reset().observation)).toThrow(/disposed/);
    expect(() => new PPO({ policy: { dim: 6 }, config: { entCoef: -1 } })).toThrow(/entCoef/);
  });
});
