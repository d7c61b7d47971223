import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { WsiEnv, type WsiEnvOptions } from '../../src/mdp/index.js';
import { ActorCritic, ActorCriticPolicy, GreedyAttentionPolicy, PPO, RolloutBuffer, TopAttentionPolicy, buildRolloutBatch, evaluateEventSourced, eventSourcedPpoLoss, playEpisode, type ZoomEnv } from '../../src/ppo/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { expectAllclose } from '../helpers.js';
import { GatedAttentionClassifier, clusteredFeatures } from '../mdp/stand_in_classifier.js';
import { densePpoLoss } from '../../src/ppo/dense_reference.js';

// PPO on the real environment: a stand-in HAFED stage 2, a random f_S, clustered features so
// that the targeted update rewrites rows (|C| > 0).
describe('PPO on WsiEnv', () => {
  const n = 40;
  const d = 8;
  let classifier: GatedAttentionClassifier;
  let fS: StateMlp;
  let z: tf.Tensor2D;
  let v: tf.Tensor2D;
  beforeAll(() => {
    classifier = new GatedAttentionClassifier({ dim: d, numBranches: 3, seed: 1 });
    fS = new StateMlp({ dim: d, seed: 2 });
    const f = clusteredFeatures(n, d, 3, { clusterSize: 6, sigmaLo: 0.02, sigmaHi: 0.08 });
    z = tf.tensor2d(f.z, [n, d]);
    v = tf.tensor2d(f.v, [n, d]);
  });
  afterAll(() => {
    classifier.dispose();
    fS.dispose();
    tf.dispose([z, v]);
  });
  const options = (): WsiEnvOptions => ({ classifier, fS, lowRes: z, aggregated: v, label: 1, config: { budget: 0.2, tau: 0.9, rewriteOnce: false } });

  it('the episode log replays every state the env showed, and the event-sourced loss equals the dense one', () => {
    const env: ZoomEnv = new WsiEnv(options());
    const model = new ActorCritic({ dim: d, hiddenDim: 8, seed: 5 });
    const policy = new ActorCriticPolicy(model, { seed: 6 });
    const buffer = new RolloutBuffer();
    const seen: Float32Array[][] = [];
    let rewritten = 0;
    for (let e = 0; e < 2; e++) {
      let { observation } = env.reset({ seed: e });
      policy.startEpisode(observation);
      buffer.startEpisode(observation);
      const states: Float32Array[] = [];
      for (;;) {
        states.push(observation.state.slice());
        const mask = observation.actionMask.slice();
        const choice = policy.selectAction(observation, { mode: 'sample' });
        const r = env.step(choice.action);
        rewritten += r.info.changedRows.length - 1;
        buffer.recordStep({ actionMask: mask, action: choice.action, logProb: choice.logProb, reward: r.reward, changes: r.info });
        policy.observeStep(r.info);
        if (r.terminated) break;
        observation = r.observation;
      }
      buffer.finishEpisode({ terminated: true, truncated: false });
      seen.push(states);
    }
    expect(rewritten).toBeGreaterThan(0);
    const table = buffer.versionTable();
    for (let e = 0; e < 2; e++) {
      const dense = table.denseStates(e);
      seen[e].forEach((s, t) => expectAllclose(dense.subarray(t * n * d, (t + 1) * n * d), s, { rtol: 0, atol: 0 }));
    }
    const old = evaluateEventSourced(model, table);
    // the rollout's log-probs (incremental scoring) equal the update's: ratio 1 at the first epoch
    expectAllclose(old.logProbs, buffer.episodes.flatMap((ep) => ep.logProbs), { rtol: 1e-5, atol: 1e-5 });
    const batch = buildRolloutBatch(table, old.values, { gamma: 1, gaeLambda: 0.94, normAdvantage: true });
    const cfg = { clipCoef: 0.2, entCoef: 0.001, clipValueLoss: false };
    const es = eventSourcedPpoLoss(model, batch, cfg);
    const dn = densePpoLoss(model, batch, cfg);
    expectAllclose(es.actorLoss, dn.actorLoss, { rtol: 1e-5, atol: 1e-7 });
    expectAllclose(es.valueLoss, dn.valueLoss, { rtol: 1e-5, atol: 1e-7 });
    for (const name of Object.keys(dn.criticGrads)) expectAllclose(es.criticGrads[name], dn.criticGrads[name], { rtol: 1e-4, atol: 1e-6 });
    tf.dispose([...Object.values(es.actorGrads), ...Object.values(es.criticGrads), ...Object.values(dn.actorGrads), ...Object.values(dn.criticGrads)]);
    model.dispose();
    (env as WsiEnv).close();
  });

  it('trains without tensor growth, and the baselines run with the classifier as scorer', async () => {
    const env = new WsiEnv(options());
    const ppo = new PPO({ policy: { dim: d, hiddenDim: 8 }, env });
    await ppo.learn({ totalUpdates: 1 });
    const before = tf.memory().numTensors;
    await ppo.learn({ totalUpdates: 2 });
    expect(tf.memory().numTensors).toBe(before);
    const T = env.budget;
    for (const policy of [ppo.policy, new TopAttentionPolicy(classifier), new GreedyAttentionPolicy(classifier)]) {
      const { actions, last } = playEpisode(env, policy, { seed: 1 });
      expect(actions.length).toBe(T);
      expect(new Set(actions).size).toBe(T);
      expect(Number.isFinite(last.info.crossEntropy)).toBe(true);
    }
    // top-attention takes the T patches of highest attention on S_0 = Z
    env.reset();
    const a0 = env.attention();
    const top = Array.from(a0.keys()).sort((i, j) => a0[j] - a0[i]).slice(0, T);
    expect(playEpisode(env, new TopAttentionPolicy(classifier)).actions).toEqual(top);
    ppo.dispose();
    env.close();
  });
});
