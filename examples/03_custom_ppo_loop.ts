/**
 * Example 3: your own PPO loop, in the shape of CleanRL's `ppo.py`, on `WsiEnv`.
 *
 * The library's `PPO` trainer (and `trainSasha`) does all of this for you, with an update that
 * runs the networks once per distinct state row. When you want to change the algorithm, the
 * parts are there to write the loop yourself: the environment (Gymnasium's reset / step with an
 * action mask), the actor-critic networks, GAE, AdamW and gradient clipping. This loop is the
 * textbook one: it stacks every state of the rollout and differentiates through all of them.
 *
 * 1. `trainSasha({ until: 'tsu' })` trains HAFED and f_S on a synthetic cohort (frozen after).
 * 2. One `WsiEnv` per training slide: state S_0 = Z, each step zooms into one patch, the
 *    reward is -CE of HAFED's stage 2 on the new state.
 * 3. The loop: per iteration one slide, `numEnvs` episodes of T = ceil(f N) steps sampled
 *    from the masked softmax of the actor, GAE (gamma 1, lambda 0.94), then `updateEpochs`
 *    epochs of the clipped surrogate + entropy bonus (actor) and MSE (critic), each network
 *    clipped to a global norm of 0.5 and stepped by its own AdamW. CleanRL's metric names.
 * 4. The trained policy against a random one on the test slides, both at f = 0.2.
 *
 * Run: npx tsx examples/03_custom_ppo_loop.ts
 * (SASHA_EXAMPLE_QUICK=1 runs a smaller cohort and fewer iterations.)
 */
import {
  ActorCritic,
  ActorCriticPolicy,
  AdamW,
  DEFAULT_PPO_CONFIG,
  RandomPolicy,
  WsiEnv,
  clipByGlobalNorm,
  computeGae,
  createRng,
  evaluateSasha,
  initBackend,
  normalizeAdvantages,
  tf,
  trainSasha,
} from 'sasha-wsi';
import { SYNTHETIC_PRESETS, SyntheticDataset } from 'sasha-wsi/synthetic';

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const args = {
  seed: 1,
  budget: 0.2,
  iterations: QUICK ? 8 : 120,
  numEnvs: DEFAULT_PPO_CONFIG.numEpisodesPerUpdate, // 2 episodes per slide, as the reference
  updateEpochs: DEFAULT_PPO_CONFIG.updateEpochs,
  gamma: DEFAULT_PPO_CONFIG.gamma,
  gaeLambda: DEFAULT_PPO_CONFIG.gaeLambda,
  clipCoef: DEFAULT_PPO_CONFIG.clipCoef,
  entCoef: DEFAULT_PPO_CONFIG.entCoef,
  maxGradNorm: DEFAULT_PPO_CONFIG.maxGradNorm,
  learningRate: 1e-4,
};

await initBackend();

// 1. Data, HAFED and f_S.
const dataset = new SyntheticDataset({ ...(QUICK ? SYNTHETIC_PRESETS.tiny : SYNTHETIC_PRESETS.small), seed: args.seed });
const { split } = dataset;
const { model, withV } = await trainSasha({
  dataset,
  split,
  seed: args.seed,
  until: 'tsu',
  config: { hafedTrain: { epochs: QUICK ? 4 : 30, lr: 2e-3 }, tsu: { epochs: QUICK ? 10 : 200 }, env: { budget: args.budget } },
});
const hafed = model.hafed!;
const fS = model.fS!;
console.log(`HAFED and f_S trained on ${split.train.length} slides (d = ${dataset.dim}, k = ${dataset.k})`);

// 2. One environment per training slide.
const envs: WsiEnv[] = [];
for (const id of split.train) {
  const bag = await withV.load(id, ['lowRes', 'aggregated']);
  envs.push(new WsiEnv({ classifier: hafed, fS, lowRes: bag.lowRes!, aggregated: bag.aggregated!, label: bag.label, config: { budget: args.budget } }));
  tf.dispose([bag.lowRes!, bag.aggregated!]); // the environment reads them once and holds no tensors
}

// 3. The agent and its optimisers.
const agent = new ActorCritic({ dim: dataset.dim, seed: args.seed });
const actorOptimizer = new AdamW({ learningRate: args.learningRate, weightDecay: DEFAULT_PPO_CONFIG.weightDecay });
const criticOptimizer = new AdamW({ learningRate: args.learningRate, weightDecay: DEFAULT_PPO_CONFIG.weightDecay });
const rng = createRng(args.seed);

/** Log-probabilities of the masked softmax over patches; masked patches get -1e9. [..., N] */
function maskedLogProbs(logits: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.logSoftmax(tf.where(tf.cast(mask, 'bool'), logits, tf.fill(logits.shape, -1e9)));
}

for (let iteration = 1; iteration <= args.iterations; iteration++) {
  const env = envs[(iteration - 1) % envs.length];
  // --- rollout: numEnvs episodes on this slide ---
  const states: Float32Array[] = [];
  const masks: Uint8Array[] = [];
  const actions: number[] = [];
  const logProbs: number[] = [];
  const advantages: number[] = [];
  const returns: number[] = [];
  const episodicReturns: number[] = [];
  for (let e = 0; e < args.numEnvs; e++) {
    let { observation } = env.reset({ seed: rng.int(1 << 30) });
    const rewards: number[] = [];
    const values: number[] = [];
    for (let done = false; !done; ) {
      const [probs, logProb, value] = tf.tidy(() => {
        const s = tf.tensor2d(observation.state, [observation.numPatches, observation.dim]);
        const lp = maskedLogProbs(agent.actorLogits(s), tf.tensor1d(observation.actionMask, 'int32'));
        return [tf.exp(lp).dataSync() as Float32Array, lp.dataSync() as Float32Array, agent.value(s).dataSync()[0]] as const;
      });
      const action = rng.categorical(probs); // sample from the masked softmax
      states.push(observation.state.slice());
      masks.push(observation.actionMask.slice());
      actions.push(action);
      logProbs.push(logProb[action]);
      values.push(value);
      const step = env.step(action);
      rewards.push(step.reward);
      observation = step.observation;
      done = step.terminated || step.truncated;
    }
    const gae = computeGae({ rewards, values, bootstrapValue: 0, gamma: args.gamma, gaeLambda: args.gaeLambda });
    advantages.push(...gae.advantages);
    returns.push(...gae.returns);
    episodicReturns.push(rewards.reduce((a, b) => a + b, 0));
  }

  // --- update: full batch of the numEnvs * T steps, updateEpochs epochs ---
  const [B, N, D] = [states.length, states[0].length / dataset.dim, dataset.dim];
  const batchStates = tf.tensor3d(concat(states), [B, N, D]);
  const batchMasks = tf.tensor2d(concatU8(masks), [B, N], 'int32');
  const batchActions = tf.oneHot(tf.tensor1d(actions, 'int32'), N);
  const oldLogProbs = tf.tensor1d(logProbs);
  const advantage = tf.tensor1d(Float32Array.from(normalizeAdvantages(advantages)));
  const target = tf.tensor1d(returns);
  let last = { policyLoss: 0, valueLoss: 0, entropy: 0, approxKl: 0, clipFraction: 0 };
  for (let epoch = 0; epoch < args.updateEpochs; epoch++) {
    const stats: Record<string, tf.Tensor> = {};
    const actor = tf.variableGrads(() => {
      const logits = tf.reshape(agent.actorLogits(tf.reshape(batchStates, [B * N, D]) as tf.Tensor2D), [B, N]);
      const lp = maskedLogProbs(logits, batchMasks);
      const newLogProb = tf.sum(tf.mul(lp, batchActions), 1);
      const logRatio = tf.sub(newLogProb, oldLogProbs);
      const ratio = tf.exp(logRatio);
      const pg1 = tf.mul(tf.neg(advantage), ratio);
      const pg2 = tf.mul(tf.neg(advantage), tf.clipByValue(ratio, 1 - args.clipCoef, 1 + args.clipCoef));
      const policyLoss = tf.mean(tf.maximum(pg1, pg2));
      const p = tf.exp(lp);
      // masked actions have p = 0 and a finite log-probability (-1e9), so they add 0 to the sum
      const entropy = tf.mean(tf.neg(tf.sum(tf.mul(p, lp), 1)));
      stats.policyLoss = tf.keep(policyLoss.clone());
      stats.entropy = tf.keep(entropy.clone());
      stats.approxKl = tf.keep(tf.mean(tf.sub(tf.sub(ratio, 1), logRatio))); // CleanRL's approx_kl
      stats.clipFraction = tf.keep(tf.mean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), args.clipCoef), 'float32')));
      return tf.sub(policyLoss, tf.mul(args.entCoef, entropy)) as tf.Scalar;
    }, agent.actorVariables);
    const critic = tf.variableGrads(() => {
      const v = agent.values(batchStates);
      const valueLoss = tf.mean(tf.square(tf.sub(v, target)));
      stats.valueLoss = tf.keep(valueLoss.clone());
      return valueLoss as tf.Scalar;
    }, agent.criticVariables);
    for (const [grads, optimizer] of [
      [actor.grads, actorOptimizer],
      [critic.grads, criticOptimizer],
    ] as const) {
      const clipped = clipByGlobalNorm(grads, args.maxGradNorm);
      optimizer.applyGradients(clipped.grads);
      tf.dispose([...Object.values(grads), ...Object.values(clipped.grads)]);
    }
    tf.dispose([actor.value, critic.value]);
    last = {
      policyLoss: stats.policyLoss.dataSync()[0],
      valueLoss: stats.valueLoss.dataSync()[0],
      entropy: stats.entropy.dataSync()[0],
      approxKl: stats.approxKl.dataSync()[0],
      clipFraction: stats.clipFraction.dataSync()[0],
    };
    tf.dispose(Object.values(stats));
  }
  tf.dispose([batchStates, batchMasks, batchActions, oldLogProbs, advantage, target]);
  if (iteration % Math.max(1, Math.floor(args.iterations / 8)) === 0 || iteration === args.iterations) {
    const mean = episodicReturns.reduce((a, b) => a + b, 0) / episodicReturns.length;
    console.log(
      `iteration ${String(iteration).padStart(3)}: charts/episodic_return ${mean.toFixed(3)}, losses/policy_loss ${last.policyLoss.toFixed(4)}, ` +
        `losses/value_loss ${last.valueLoss.toFixed(4)}, losses/entropy ${last.entropy.toFixed(3)}, losses/approx_kl ${last.approxKl.toFixed(5)}, ` +
        `losses/clipfrac ${last.clipFraction.toFixed(3)}`,
    );
  }
}

// 4. The trained policy against random zooming on the test slides.
const common = { classifier: hafed, fS, dataset: withV, ids: split.test, env: { budget: args.budget } };
const learned = await evaluateSasha({ ...common, policy: new ActorCriticPolicy(agent) });
const random = await evaluateSasha({ ...common, policy: new RandomPolicy({ seed: args.seed }) });
console.log(`test, f = ${args.budget}: learned policy accuracy ${learned.metrics.accuracy.toFixed(3)}, mean CE ${learned.meanCrossEntropy.toFixed(4)}`);
console.log(`test, f = ${args.budget}: random policy  accuracy ${random.metrics.accuracy.toFixed(3)}, mean CE ${random.meanCrossEntropy.toFixed(4)}`);

for (const env of envs) env.close();
agent.dispose();
actorOptimizer.dispose();
criticOptimizer.dispose();
model.dispose();

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function concatU8(parts: Uint8Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
