import { describe, expect, it } from 'vitest';
import { ShapeError, tf } from '../../src/core/index.js';
import { MemoryCheckpointStore } from '../../src/core/index.js';
import { ActorCriticPolicy, RandomPolicy } from '../../src/ppo/index.js';
import {
  SashaModel,
  evaluateFullResolution,
  evaluateSasha,
  makePolicy,
  policySelectionScore,
  trainPolicy,
  trainSasha,
  withAggregated,
} from '../../src/pipeline/index.js';
import { expectAllclose } from '../helpers.js';
import { SYNTHETIC_PRESETS, SyntheticDataset } from '../../src/wsi/synthetic/features.js';

const dataset = new SyntheticDataset({ ...SYNTHETIC_PRESETS.tiny, seed: 3 });
const split = dataset.split;
const quick = {
  hafedTrain: { epochs: 2 },
  tsu: { epochs: 3 },
  policyEpochs: 2,
  env: { budget: 0.2 },
  ppo: { actorLearningRate: 1e-3, criticLearningRate: 1e-3 },
  actorCritic: { hiddenDim: 16 },
};

describe('trainSasha on the tiny synthetic cohort', () => {
  it('trains HAFED, f_S and the policy, evaluates every policy, resumes from the store, holds no tensors', async () => {
    const before = tf.memory().numTensors;
    const store = new MemoryCheckpointStore();
    const stages: string[] = [];
    const { model, withV, hafed, tsu, policy } = await trainSasha({ dataset, split, config: quick, store, seed: 2, onStageEnd: (s) => void stages.push(s) });
    expect(stages).toEqual(['hafed', 'tsu', 'policy']);
    expect(model.hafed && model.fS && model.policy).toBeTruthy();
    expect((hafed as { history: unknown[] }).history.length).toBe(2);
    expect((tsu as { history: unknown[] }).history.length).toBe(3);
    // the default recipe: policyEpochs of PPO, no imitation
    expect((policy as { history: { phase: string }[] }).history.map((h) => h.phase)).toEqual(['ppo', 'ppo']);
    expect(store.names().sort()).toEqual(
      ['checkpoints/hafed/best', 'checkpoints/hafed/last', 'checkpoints/policy/best', 'checkpoints/policy/last', 'checkpoints/tsu/best', 'checkpoints/tsu/last', 'hafed', 'policy', 'tsu'].sort(),
    );
    // every policy runs on the test slides at f = 0.2 and gives a complete evaluation
    const classifier = model.hafed!;
    for (const name of ['learned', 'random', 'top-attention', 'greedy-attention'] as const) {
      const ev = await evaluateSasha({ classifier, fS: model.fS, policy: makePolicy(name, { model: model.policy!, classifier }), dataset: withV, ids: split.test, env: model.env });
      expect(ev.metrics.n).toBe(split.test.length);
      for (const s of ev.slides) {
        const n = dataset.slide(s.id).n;
        expect(s.actions.length).toBe(Math.ceil(0.2 * n - 1e-9 * 0.2 * n));
        expect(new Set(s.actions).size).toBe(s.actions.length);
      }
      expect(Number.isFinite(policySelectionScore(ev))).toBe(true);
    }
    // budget 1: HAFED on V equals an episode that visits every patch
    const full = await evaluateFullResolution({ classifier, dataset: withV, ids: split.test });
    const all = await evaluateSasha({ classifier, fS: model.fS, policy: new RandomPolicy(), dataset: withV, ids: split.test, env: { ...model.env, budget: 1 } });
    full.slides.forEach((s, i) => expectAllclose(all.slides[i].probs, s.probs, { rtol: 1e-4, atol: 1e-5 }));
    // resume: every stage is found and loaded, the weights are the stored ones
    const again = await trainSasha({ dataset, split, config: quick, store, seed: 2, resume: true });
    expect(again.hafed).toEqual({ loaded: true });
    expect(again.tsu).toEqual({ loaded: true });
    expect(again.policy).toEqual({ loaded: true });
    // the default recipe's policy reads each row's state and the classifier's attention logits (inputDim wide)
    const x = tf.randomNormal([5, model.policy!.inputDim], 0, 1, 'float32', 1) as tf.Tensor2D;
    tf.tidy(() => expectAllclose(again.model.policy!.actorLogits(x), model.policy!.actorLogits(x), { rtol: 0, atol: 0 }));
    x.dispose();
    again.model.dispose();
    model.dispose();
    // trainSasha leaves nothing behind once its bundle is disposed (the cached V are typed arrays)
    expect(tf.memory().numTensors).toBe(before);
    expect(withV.cachedSlides).toBeGreaterThan(0);
  });
});

describe('pipeline pieces', () => {
  it('withAggregated: V = HAFED stage 1 on U, computed once', async () => {
    const { Hafed } = await import('../../src/hafed/index.js');
    const hafed = new Hafed({ dim: dataset.dim, k: dataset.k, seed: 1 });
    const withV = withAggregated(dataset, hafed);
    const id = dataset.ids[0];
    const a = await withV.load(id, ['aggregated']);
    const b = await dataset.load(id, ['highRes']);
    const v = hafed.aggregate(b.highRes!);
    expectAllclose(a.aggregated!, v, { rtol: 1e-6, atol: 1e-7 });
    expect(withV.cachedSlides).toBe(1);
    const c = await withV.load(id, ['lowRes', 'aggregated']);
    expectAllclose(c.aggregated!, v, { rtol: 0, atol: 0 });
    expect(c.highRes).toBeUndefined();
    expect(c.label).toBe(dataset.labels[0]);
    tf.dispose([a.aggregated!, b.highRes!, v, c.aggregated!, c.lowRes!]);
    hafed.dispose();
  });

  it('policy stage: an interrupted run resumes from its last checkpoint', async () => {
    const { Hafed } = await import('../../src/hafed/index.js');
    const { StateMlp } = await import('../../src/tsu/index.js');
    const hafed = new Hafed({ dim: dataset.dim, k: dataset.k, seed: 1 });
    const fS = new StateMlp({ dim: dataset.dim, seed: 2 });
    const withV = withAggregated(dataset, hafed);
    const imitation = { teacher: 'lookahead' as const, epochs: 3 };
    const common = { classifier: hafed, fS, dataset: withV, split, env: { budget: 0.2 }, policy: { hiddenDim: 8 }, imitation, seed: 4 };
    const store = new MemoryCheckpointStore();
    // one epoch, "interrupted" by onEpochEnd, then resumed to the end: 3 of imitation, then 3 of PPO
    const first = await trainPolicy({ ...common, epochs: 3, checkpoint: store, onEpochEnd: () => false });
    expect(first.history.length).toBe(1);
    const resumed = await trainPolicy({ ...common, epochs: 3, checkpoint: store, resume: true });
    expect(resumed.history.map((h) => h.phase)).toEqual(['imitation', 'imitation', 'imitation', 'ppo', 'ppo', 'ppo']);
    expect(resumed.history[0]).toEqual(first.history[0]);
    // the same three epochs without interruption give the same history (the RNG depends on seed and epoch)
    const straight = await trainPolicy({ ...common, epochs: 3 });
    expect(straight.history.map((h) => h.val?.score)).toEqual(resumed.history.map((h) => h.val?.score));
    for (const r of [first, resumed, straight]) r.model.dispose();
    hafed.dispose();
    fS.dispose();
  });

  it('SashaModel: save and load through a store; a model for another d is refused', async () => {
    const { Hafed } = await import('../../src/hafed/index.js');
    const { StateMlp } = await import('../../src/tsu/index.js');
    const { ActorCritic } = await import('../../src/ppo/index.js');
    const m = new SashaModel({
      hafed: new Hafed({ dim: 16, k: 4, seed: 1 }),
      fS: new StateMlp({ dim: 16, seed: 2 }),
      policy: new ActorCritic({ dim: 16, hiddenDim: 8 }),
      env: { budget: 0.1, tau: 0.9 },
      extra: { note: 'x' },
    });
    const store = new MemoryCheckpointStore();
    await m.save(store);
    const back = await SashaModel.load(store, { dim: 16, k: 4 });
    expect(back.env.budget).toBe(0.1);
    expect(back.env.tau).toBe(0.9);
    expect(back.extra).toEqual({ note: 'x' });
    const x = tf.randomNormal([3, 16], 0, 1, 'float32', 2) as tf.Tensor2D;
    expectAllclose(back.policy!.actorLogits(x), m.policy!.actorLogits(x), { rtol: 0, atol: 0 });
    await expect(SashaModel.load(store, { dim: 384 })).rejects.toThrow(ShapeError);
    await expect(SashaModel.load(store, { k: 16 })).rejects.toThrow(/k = 16.*k = 4/);
    await expect(SashaModel.load(new MemoryCheckpointStore())).rejects.toThrow(/No SASHA model/);
    x.dispose();
    m.dispose();
    back.dispose();
  });

  it('the selection score is (2 - AUC - F1) + CE', () => {
    // AUC 0.75, F1 0.5, CE 0.4 -> 2 - 1.25 + 0.4 = 1.15; a NaN AUC counts 0
    const m = { accuracy: 0, balancedAccuracy: 0, auc: 0.75, perClassAuc: [0.75, 0.75], f1: 0.5, ece: 0, n: 4, confusion: [] };
    expect(policySelectionScore({ metrics: m, meanCrossEntropy: 0.4 })).toBeCloseTo(1.15, 12);
    expect(policySelectionScore({ metrics: { ...m, auc: NaN }, meanCrossEntropy: 0.4 })).toBeCloseTo(1.9, 12);
    expect(() => makePolicy('learned', {})).toThrow(/sasha train policy/);
    expect(makePolicy('random', {}).name).toBe('random');
    expect(new ActorCriticPolicy(null as never).name).toBe('learned');
  });
});
