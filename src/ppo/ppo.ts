/**
 * The PPO trainer of the zoom policy: Stable-Baselines3's shape outside
 * (`new PPO({ policy, env, config })`, `learn`, `predict`, `save`, `PPO.load`), CleanRL's order
 * inside (collect rollouts, GAE, update epochs with clipped surrogate, value loss, entropy
 * bonus and global-norm clipping).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ShapeError, StateError, ValueError, assert } from '../core/errors.js';
import { AdamW, clipByGlobalNorm } from '../core/optim.js';
import type { ProgressCallback } from '../core/progress.js';
import { createRng, type Rng } from '../core/random.js';
import { ActorCritic, checkDim } from './actor_critic.js';
import { CallbackList, type CallbackContext, type TrainerCallback } from './callbacks.js';
import { resolvePpoConfig, type ActorCriticConfig, type PpoConfig } from './defaults.js';
import { densePpoLoss, evaluateDense } from './dense_reference.js';
import { VersionRows, evaluateEventSourced, eventSourcedPpoLoss } from './event_sourced.js';
import { PPO_METRICS, type Logger } from './logger.js';
import { ActorCriticPolicy, selectFromLogits } from './policies.js';
import { RolloutBuffer, buildRolloutBatch, sliceRolloutBatch, slideGroups, valueScales, type RolloutBatch, type VersionTable } from './rollout_buffer.js';
import { decodeArtifacts, encodeArtifacts, loadArtifacts, saveArtifacts, type ArtifactFormat, type IOTarget } from '../core/io.js';
import { optimizerTensors, restoreOptimizer } from '../core/checkpoint.js';
import { pickPrefixed } from '../core/io.js';
import type { ActionChoice, SelectOptions, ZoomEnv, ZoomEnvProvider, ZoomObservation, ZoomTeacher } from './types.js';

type NamedTensor = { name: string; tensor: tf.Tensor };

/** Format tag of a saved {@link PPO}. */
export const PPO_FORMAT = 'sasha-wsi/ppo';

/** Layout 2 names the optimiser state as every checkpoint does (`optimizer/actor/<weight>/m`); 1 is release 0.1's. */
const PPO_ARTIFACT: ArtifactFormat = { format: PPO_FORMAT, version: 2, what: 'PPO trainer', writtenBy: 'PPO.save or `sasha train policy`' };

/** Metrics of one update. @category PPO */
export interface UpdateMetrics {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  oldApproxKl: number;
  approxKl: number;
  /** Mean over the epochs run. */
  clipFraction: number;
  explainedVariance: number;
  actorGradNorm: number;
  criticGradNorm: number;
  /** Epochs run (fewer than `updateEpochs` when `targetKl` stopped the update). */
  epochs: number;
}

/** Arguments of {@link runPpoUpdate}. @category PPO */
export interface PpoUpdateArgs {
  model: ActorCritic;
  actorOptimizer: tf.Optimizer;
  criticOptimizer: tf.Optimizer;
  /** The finished episodes of the update. */
  table: VersionTable;
  config: Readonly<PpoConfig>;
  /** Random numbers for the minibatch order (default: a generator seeded with `config.seed`). */
  rng?: Rng;
  /**
   * `'imitation'`: the episodes hold a teacher's actions, and the actor's step is behaviour
   * cloning: every advantage is 1 and the ratio is not clipped, so the surrogate's gradient at
   * ratio 1 is `-mean grad log pi(a*_t | S_t)`, the gradient of the cross-entropy to the
   * teacher's choices (the critic trains on the returns as in PPO). Default `'ppo'`.
   */
  mode?: 'ppo' | 'imitation';
}

interface Snapshot {
  weights: tf.NamedTensorMap;
  optimizers: { opt: tf.Optimizer; weights: NamedTensor[] }[];
}

async function takeSnapshot(model: ActorCritic, optimizers: tf.Optimizer[]): Promise<Snapshot> {
  const weights: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(model.getWeights())) weights[k] = tf.clone(v);
  const opts = [];
  for (const opt of optimizers) {
    const ws = await opt.getWeights();
    // the first entry is a fresh iteration counter; the others are live moment variables
    opts.push({ opt, weights: ws.map((w, i) => ({ name: w.name, tensor: i === 0 ? w.tensor : tf.clone(w.tensor) })) });
  }
  return { weights, optimizers: opts };
}

async function restoreSnapshot(model: ActorCritic, snap: Snapshot): Promise<void> {
  model.setWeights(snap.weights);
  for (const { opt, weights } of snap.optimizers) await opt.setWeights(weights);
}

function disposeSnapshot(snap: Snapshot): void {
  tf.dispose(Object.values(snap.weights));
  for (const { weights } of snap.optimizers) tf.dispose(weights.map((w) => w.tensor));
}

/**
 * One PPO update on a set of finished episodes: the old values (critic before the update), GAE
 * and returns, advantage normalisation over the whole batch, then `updateEpochs` epochs. An
 * epoch splits the update's slides (in a random order) into `numMinibatches` groups (one group,
 * the full batch, by default) and, per group, computes the actor's and the critic's loss and
 * gradients, clips each network's gradients to `maxGradNorm` separately, and steps each
 * network's optimiser.
 *
 * All or nothing: gradients of both networks are checked before either is applied, and if
 * anything fails (a non-finite loss or gradient) the weights and optimiser states are restored
 * to what they were before the update and the error is rethrown.
 *
 * @returns the batch (advantages, returns) and the update's metrics.
 * @see docs/reference-code.md §6.2; CleanRL ppo.py lines 215-293.
 * @category PPO
 */
export async function runPpoUpdate(args: PpoUpdateArgs): Promise<{ batch: RolloutBatch; metrics: UpdateMetrics }> {
  const { model, actorOptimizer, criticOptimizer, table, config } = args;
  if (table.dim !== model.inputDim) {
    throw new ShapeError(
      `Expected episodes recorded with rows of width ${model.inputDim} (the policy's input), but they have ${table.dim}. Record them through PPO or ActorCritic.rowInputs.`,
    );
  }
  const eventSourced = config.updateMode === 'event-sourced';
  // the version rows as tensors once for the whole update (all its epochs)
  const rows = eventSourced ? new VersionRows(table, model, { chunkElements: config.chunkElements }) : null;
  const options = { chunkElements: config.chunkElements, valueScales: valueScales(table, config), ...(rows ? { rows } : {}) };
  const snapshot = await takeSnapshot(model, [actorOptimizer, criticOptimizer]);
  try {
    // Old values, GAE, returns, normalised advantages
    const old = eventSourced ? evaluateEventSourced(model, table, options) : evaluateDense(model, table, options.valueScales);
    const imitation = args.mode === 'imitation';
    const batch = buildRolloutBatch(table, old.values, config);
    if (imitation) {
      batch.advantages.fill(1);
      batch.oldLogProbs.set(old.logProbs);
    }
    const lossConfig = imitation ? { ...config, clipCoef: Infinity } : config;
    const metrics: UpdateMetrics = {
      policyLoss: NaN,
      valueLoss: NaN,
      entropy: NaN,
      oldApproxKl: NaN,
      approxKl: NaN,
      clipFraction: 0,
      explainedVariance: batch.explainedVariance,
      actorGradNorm: NaN,
      criticGradNorm: NaN,
      epochs: 0,
    };
    let clipFractionSum = 0;
    let steps = 0;
    const groups = slideGroups(table);
    const numMinibatches = Math.min(config.numMinibatches, groups.length);
    const rng = args.rng ?? createRng(config.seed);
    epochs: for (let epoch = 0; epoch < config.updateEpochs; epoch++) {
      // Minibatches: the slides in a random order, split into numMinibatches groups
      const order = numMinibatches > 1 ? rng.shuffle(groups.map((_, i) => i)) : groups.map((_, i) => i);
      for (let m = 0; m < numMinibatches; m++) {
        const picked = order.filter((_, i) => i % numMinibatches === m).sort((a, b) => a - b);
        const mb = numMinibatches > 1 ? sliceRolloutBatch(batch, picked.flatMap((g) => groups[g])) : batch;
        const mbOptions = mb === batch ? options : { ...options, valueScales: valueScales(mb.table, config) };
        const r = eventSourced ? eventSourcedPpoLoss(model, mb, lossConfig, mbOptions) : densePpoLoss(model, mb, lossConfig, mbOptions.valueScales);
        // Global gradient clipping, per network (the reference clips actor and critic separately)
        const actor = clipByGlobalNorm(r.actorGrads, config.maxGradNorm);
        const critic = clipByGlobalNorm(r.criticGrads, config.maxGradNorm);
        tf.dispose([...Object.values(r.actorGrads), ...Object.values(r.criticGrads)]);
        const finite = [r.actorLoss, r.valueLoss, actor.globalNorm, critic.globalNorm].every(Number.isFinite);
        if (!finite) {
          tf.dispose([...Object.values(actor.grads), ...Object.values(critic.grads)]);
          throw new DataError(
            `PPO update produced a non-finite value at epoch ${epoch} (actor loss ${r.actorLoss}, value loss ${r.valueLoss}, gradient norms ${actor.globalNorm} / ${critic.globalNorm}); the update was rolled back. Check the rewards and features for NaN or huge values.`,
          );
        }
        actorOptimizer.applyGradients(actor.grads);
        criticOptimizer.applyGradients(critic.grads);
        tf.dispose([...Object.values(actor.grads), ...Object.values(critic.grads)]);
        Object.assign(metrics, {
          policyLoss: r.policyLoss,
          valueLoss: r.valueLoss,
          entropy: r.entropy,
          oldApproxKl: r.oldApproxKl,
          approxKl: r.approxKl,
          actorGradNorm: actor.globalNorm,
          criticGradNorm: critic.globalNorm,
          epochs: epoch + 1,
        });
        clipFractionSum += r.clipFraction;
        steps += 1;
        if (config.targetKl !== null && r.approxKl > config.targetKl) break epochs;
      }
    }
    metrics.clipFraction = clipFractionSum / steps;
    return { batch, metrics };
  } catch (err) {
    await restoreSnapshot(model, snapshot);
    throw err;
  } finally {
    disposeSnapshot(snapshot);
    rows?.dispose();
  }
}

/** Options of the {@link PPO} constructor. @category PPO */
export interface PpoOptions {
  /**
   * The networks to train (the caller keeps ownership), or their config (then the trainer
   * creates and owns them). `dim` must be the features' d.
   */
  policy: ActorCritic | Partial<ActorCriticConfig>;
  /** The environment, or a provider called once per update (e.g. one slide per update). */
  env?: ZoomEnv | ZoomEnvProvider;
  /** PPO settings over {@link DEFAULT_PPO_CONFIG}. */
  config?: Partial<PpoConfig>;
  /** Where metrics go (nothing is logged without one). */
  logger?: Logger;
}

/** Options of {@link PPO.learn}; exactly one of `totalTimesteps` and `totalUpdates`. @category PPO */
export interface LearnOptions {
  /** Train until this many more environment steps were taken (whole updates). */
  totalTimesteps?: number;
  /** Train for this many more updates. */
  totalUpdates?: number;
  /** Hooks (SB3 style). */
  callbacks?: TrainerCallback | readonly TrainerCallback[];
  /** Progress events (`task: 'train policy'`, one per update). */
  onProgress?: ProgressCallback;
  /**
   * With `annealLr`: the part [start, end) of the whole run that this call covers, so that a
   * caller that calls `learn` once per epoch anneals over all epochs (the learning rate goes
   * from `(1 - start) lr` to `(1 - end) lr` in this call). Default [0, 1): this call is the run.
   */
  annealSpan?: readonly [number, number];
}

/** Options of {@link PPO.load} and {@link PPO.fromArtifacts}. @category PPO */
export interface PpoLoadOptions {
  env?: ZoomEnv | ZoomEnvProvider;
  logger?: Logger;
  /** Overrides of the saved config. */
  config?: Partial<PpoConfig>;
  /** The features' d (checked against the saved policy's). */
  dim?: number;
}

/** Options of {@link PPO.predict}. @category PPO */
export interface PredictOptions extends SelectOptions {
  /** Argmax (default true) or sampling; ignored when `mode` is given. */
  deterministic?: boolean;
}

/**
 * Proximal Policy Optimisation with GAE for the SASHA zoom policy.
 *
 * Each update collects `numEpisodesPerUpdate` episodes on the update's environment (the
 * reference: two sequential episodes on one slide), sampling actions from the masked actor;
 * then {@link runPpoUpdate} trains actor and critic with separate AdamW optimisers. The update
 * is event-sourced by default (docs/implementation-details.md P21).
 *
 * @example
 * ```ts
 * const ppo = new PPO({ policy: { dim: 384 }, env: (u) => envForSlide(trainIds[u % trainIds.length]) });
 * await ppo.learn({ totalUpdates: 15 * trainIds.length });
 * const { action } = ppo.predict(observation); // argmax over the allowed patches
 * await ppo.save(handler);
 * const again = await PPO.load(handler);
 * ```
 * @see docs/reference-code.md §6; CleanRL ppo.py; SB3 ppo/ppo.py
 * @category PPO
 */
export class PPO {
  /** The resolved config. */
  readonly config: Readonly<PpoConfig>;
  /** The actor and critic. */
  readonly model: ActorCritic;
  /** The learned policy used for rollouts (incremental scoring). */
  readonly policy: ActorCriticPolicy;
  /** AdamW of the actor. */
  readonly actorOptimizer: AdamW;
  /** AdamW of the critic. */
  readonly criticOptimizer: AdamW;
  /** Where metrics go. */
  logger?: Logger;
  /** Environment steps taken so far. */
  numTimesteps = 0;
  /** Updates completed so far. */
  numUpdates = 0;
  /** The `metadata` of the checkpoint this trainer was loaded from (null otherwise). */
  metadata: Record<string, unknown> | null = null;
  private env?: ZoomEnv | ZoomEnvProvider;
  private ownsModel: boolean;
  private rng: Rng;
  private disposed = false;

  constructor(options: PpoOptions) {
    assert(options && options.policy, () => 'Expected options.policy: an ActorCritic or its config (with dim = the features\' d).');
    this.config = resolvePpoConfig(options.config);
    this.ownsModel = !(options.policy instanceof ActorCritic);
    this.model = options.policy instanceof ActorCritic ? options.policy : new ActorCritic(options.policy);
    assert(!this.model.isDisposed, () => 'The given ActorCritic was disposed.', StateError);
    this.rng = createRng(this.config.seed);
    this.policy = new ActorCriticPolicy(this.model, { seed: this.config.seed });
    const opt = (lr: number) =>
      new AdamW({
        learningRate: lr,
        weightDecay: this.config.weightDecay,
        beta1: this.config.adamBeta1,
        beta2: this.config.adamBeta2,
        epsilon: this.config.adamEpsilon,
      });
    this.actorOptimizer = opt(this.config.actorLearningRate);
    this.criticOptimizer = opt(this.config.criticLearningRate);
    this.env = options.env;
    this.logger = options.logger;
  }

  /**
   * Restarts the trainer's random generator (action sampling, environment reset seeds) from
   * `seed`. A training loop that reseeds at every epoch resumes from a checkpoint exactly.
   */
  setSeed(seed: number): void {
    this.rng = createRng(seed);
  }

  /** Sets the environment (or provider) used by {@link PPO.learn}. */
  setEnv(env: ZoomEnv | ZoomEnvProvider): void {
    this.env = env;
  }

  /**
   * Trains: repeatedly collects rollouts and updates, until `totalTimesteps` more steps or
   * `totalUpdates` more updates. A rollout that fails (a non-finite reward, a bad action) throws
   * before any parameter changes.
   * @returns this trainer.
   */
  async learn(options: LearnOptions = {}): Promise<this> {
    return this.train(options, null);
  }

  /**
   * Warm start by imitation: like {@link PPO.learn}, but every episode follows `teacher` and each
   * update is behaviour cloning of the teacher's actions (see {@link runPpoUpdate} mode
   * `'imitation'`; the critic learns the teacher's returns). Then {@link PPO.learn} continues
   * from the imitating policy.
   * @example
   * ```ts
   * // a label-aware teacher in training: zoom where the classifier's cross-entropy drops most
   * await ppo.imitate({ teacher: (env) => argmin((env as WsiEnv).zoomLookahead()), totalUpdates: 96 });
   * await ppo.learn({ totalUpdates: 960 });
   * ```
   * @returns this trainer.
   */
  async imitate(options: LearnOptions & { teacher: ZoomTeacher }): Promise<this> {
    if (typeof options?.teacher !== 'function') throw new ValueError('Expected options.teacher: (env, observation) => action.');
    return this.train(options, options.teacher);
  }

  private async train(options: LearnOptions, teacher: ZoomTeacher | null): Promise<this> {
    this.checkAlive();
    const { totalTimesteps, totalUpdates } = options;
    if ((totalTimesteps === undefined) === (totalUpdates === undefined)) {
      throw new ValueError('Expected exactly one of totalTimesteps and totalUpdates in learn().');
    }
    const limit = (totalTimesteps ?? totalUpdates) as number;
    if (!(Number.isInteger(limit) && limit >= 1)) {
      throw new ValueError(`Expected ${totalTimesteps !== undefined ? 'totalTimesteps' : 'totalUpdates'} to be a positive integer, but got ${limit}.`);
    }
    if (!this.env) throw new StateError('No environment: pass env to the PPO constructor or call setEnv() before learn().');
    const callbacks = new CallbackList(options.callbacks === undefined ? [] : Array.isArray(options.callbacks) ? options.callbacks : [options.callbacks as TrainerCallback]);
    const ctx = (): CallbackContext => ({ ppo: this, numTimesteps: this.numTimesteps, numUpdates: this.numUpdates });
    const startSteps = this.numTimesteps;
    let updates = 0;
    const progress = () => (totalUpdates !== undefined ? updates / totalUpdates : (this.numTimesteps - startSteps) / limit);
    await callbacks.onTrainingStart(ctx());
    while (progress() < 1) {
      const t0 = performance.now();
      if (this.config.annealLr) {
        const [a, b] = options.annealSpan ?? [0, 1];
        const frac = 1 - (a + (b - a) * progress());
        this.actorOptimizer.learningRate = frac * this.config.actorLearningRate;
        this.criticOptimizer.learningRate = frac * this.config.criticLearningRate;
      }
      const envs = await this.updateEnvs();
      await callbacks.onRolloutStart(ctx());
      const rollout = await this.collectRollouts(envs, callbacks, teacher);
      await callbacks.onRolloutEnd(ctx());
      if (rollout.stopped) {
        this.numTimesteps += rollout.steps;
        break;
      }
      const { metrics } = await runPpoUpdate({
        model: this.model,
        actorOptimizer: this.actorOptimizer,
        criticOptimizer: this.criticOptimizer,
        table: rollout.buffer.versionTable(),
        config: this.config,
        rng: this.rng,
        mode: teacher ? 'imitation' : 'ppo',
      });
      this.numTimesteps += rollout.steps;
      this.numUpdates += 1;
      updates += 1;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const logged: Record<string, number> = {
        [PPO_METRICS.policyLoss]: metrics.policyLoss,
        [PPO_METRICS.valueLoss]: metrics.valueLoss,
        [PPO_METRICS.entropy]: metrics.entropy,
        [PPO_METRICS.oldApproxKl]: metrics.oldApproxKl,
        [PPO_METRICS.approxKl]: metrics.approxKl,
        [PPO_METRICS.clipFraction]: metrics.clipFraction,
        [PPO_METRICS.explainedVariance]: metrics.explainedVariance,
        [PPO_METRICS.episodicReturn]: mean(rollout.returns),
        [PPO_METRICS.episodicLength]: mean(rollout.lengths),
        [PPO_METRICS.finalReward]: mean(rollout.finalRewards),
        [PPO_METRICS.learningRate]: this.actorOptimizer.learningRate,
        [PPO_METRICS.sps]: rollout.steps / ((performance.now() - t0) / 1000),
        [PPO_METRICS.actorGradNorm]: metrics.actorGradNorm,
        [PPO_METRICS.criticGradNorm]: metrics.criticGradNorm,
        [PPO_METRICS.epochs]: metrics.epochs,
      };
      if (this.logger) {
        for (const [k, v] of Object.entries(logged)) this.logger.record(k, v);
        this.logger.dump(this.numTimesteps);
      }
      options.onProgress?.({
        task: 'train policy',
        done: totalUpdates !== undefined ? updates : Math.min(this.numTimesteps - startSteps, limit),
        total: limit,
        info: { return: Number(mean(rollout.returns).toFixed(4)), kl: Number(metrics.approxKl.toExponential(2)) },
      });
      const go = await callbacks.onUpdateEnd({ ...ctx(), metrics: logged, episodeReturns: rollout.returns });
      if (go === false) break;
    }
    await callbacks.onTrainingEnd(ctx());
    return this;
  }

  /**
   * Collects the episodes of one update with the sampling policy.
   * @internal
   */
  private async collectRollouts(
    envs: readonly ZoomEnv[],
    callbacks: CallbackList,
    teacher: ZoomTeacher | null,
  ): Promise<{ buffer: RolloutBuffer; returns: number[]; lengths: number[]; finalRewards: number[]; steps: number; stopped: boolean }> {
    const buffer = new RolloutBuffer();
    const returns: number[] = [];
    const lengths: number[] = [];
    const finalRewards: number[] = [];
    let steps = 0;
    for (const env of envs) for (let e = 0; e < this.config.numEpisodesPerUpdate; e++) {
      let { observation } = env.reset({ seed: this.rng.seedInt() });
      checkDim(this.model.config.dim, observation.dim);
      this.policy.startEpisode(observation);
      // the buffer keeps the rows the networks read (the state, or state and classifier scores)
      buffer.startEpisode({ ...observation, dim: this.model.inputDim, state: this.model.rowInputs(observation) });
      let ret = 0;
      for (let t = 0; ; t++) {
        if (t >= observation.numPatches) {
          throw new StateError(`The environment did not end its episode after ${t} steps on ${observation.numPatches} patches.`);
        }
        const actionMask = observation.actionMask.slice(); // the view is invalidated by step()
        const choice = teacher ? this.teacherChoice(teacher, env, observation) : this.policy.selectAction(observation, { mode: 'sample', rng: this.rng });
        const result = env.step(choice.action);
        const reward = this.config.rewardScale === 'budget' ? result.reward / observation.budget : result.reward;
        const changes = { changedRows: result.info.changedRows, changedValues: this.model.changedInputs(result.info) };
        buffer.recordStep({ actionMask, action: choice.action, logProb: choice.logProb, reward, changes });
        this.policy.observeStep(result.info);
        steps += 1;
        ret += result.reward;
        const go = await callbacks.onStep({
          ppo: this,
          numTimesteps: this.numTimesteps + steps,
          numUpdates: this.numUpdates,
          action: choice.action,
          reward: result.reward,
          terminated: result.terminated,
          truncated: result.truncated,
        });
        if (go === false) return { buffer, returns, lengths, finalRewards, steps, stopped: true };
        if (result.terminated || result.truncated) {
          // bootstrap value if truncated (not for a terminal state: the budget is spent)
          const bootstrapValue = result.truncated && !result.terminated ? this.stateValue(result.observation) : 0;
          buffer.finishEpisode({ terminated: result.terminated, truncated: result.truncated && !result.terminated, bootstrapValue });
          returns.push(ret);
          lengths.push(t + 1);
          finalRewards.push(result.reward);
          break;
        }
        observation = result.observation;
      }
    }
    return { buffer, returns, lengths, finalRewards, steps, stopped: false };
  }

  /** The teacher's action, with its log-probability under the current policy. */
  private teacherChoice(teacher: ZoomTeacher, env: ZoomEnv, observation: ZoomObservation): ActionChoice {
    const action = teacher(env, observation);
    if (!(Number.isInteger(action) && action >= 0 && action < observation.numPatches && observation.actionMask[action])) {
      throw new ValueError(`Expected the teacher to choose an allowed patch, but it chose ${action}.`);
    }
    // No log-probability is needed: an imitation update evaluates the old policy's log-probabilities
    // itself (runPpoUpdate, mode 'imitation'), so the policy is not scored while the teacher acts.
    return { action, logProb: 0 };
  }

  /** The environments of the next update: the single env, or the provider's (index 0, 1, ...). */
  private async updateEnvs(): Promise<ZoomEnv[]> {
    const source = this.env as ZoomEnv | ZoomEnvProvider;
    if (typeof source !== 'function') return [source];
    const envs: ZoomEnv[] = [];
    for (let i = 0; i < this.config.numEnvsPerUpdate; i++) {
      const env = await source(this.numUpdates, i);
      if (env === null || env === undefined) {
        if (i === 0) throw new StateError(`The environment provider returned no environment for update ${this.numUpdates}.`);
        break;
      }
      envs.push(env);
    }
    return envs;
  }

  /**
   * The action for one observation (stateless: scores all N rows). Deterministic (argmax) by
   * default; `{ deterministic: false }` samples; `mode: 'topK' | 'topP'` as the reference's
   * evaluation options.
   * @throws ShapeError when the observation's d differs from the policy's.
   */
  predict(observation: ZoomObservation, options: PredictOptions = {}): ActionChoice {
    this.checkAlive();
    checkDim(this.model.config.dim, observation.dim);
    const { deterministic = true, ...select } = options;
    const N = observation.numPatches;
    const rows = this.model.rowInputs(observation);
    const scored = tf.tidy(() => this.model.actorLogits(tf.tensor2d(rows, [N, this.model.inputDim])));
    const logits = scored.dataSync() as Float32Array;
    scored.dispose();
    return selectFromLogits(logits, observation.actionMask, {
      ...select,
      mode: select.mode ?? (deterministic ? 'argmax' : 'sample'),
      rng: select.rng ?? this.rng,
    });
  }

  /** The critic's value of an observation's state. */
  stateValue(observation: ZoomObservation): number {
    checkDim(this.model.config.dim, observation.dim);
    const rows = this.model.rowInputs(observation);
    const { budget: T, t } = observation;
    const rho = this.config.criticTimeScale ? (T - t) / (this.config.rewardScale === 'budget' ? T : 1) : 1;
    return rho * tf.tidy(() => this.model.value(tf.tensor2d(rows, [observation.numPatches, this.model.inputDim])).dataSync()[0]);
  }

  /**
   * Config, counters, actor and critic and (by default) both optimisers' states as one
   * `tf.io` artifact, so that training can resume from it.
   * @param options.metadata JSON kept with the checkpoint (a training loop's own progress);
   *   {@link PPO.fromArtifacts} returns it as {@link PPO.metadata}.
   */
  async toArtifacts(options: { includeOptimizer?: boolean; metadata?: Record<string, unknown> } = {}): Promise<tf.io.ModelArtifacts> {
    this.checkAlive();
    const includeOptimizer = options.includeOptimizer ?? true;
    const weights = this.model.getWeights() as Record<string, tf.Variable>;
    const tensors: tf.NamedTensorMap = {};
    for (const [k, v] of Object.entries(weights)) tensors[`policy/${k}`] = v;
    const states = includeOptimizer
      ? [await optimizerTensors(this.actorOptimizer, weights, 'actor'), await optimizerTensors(this.criticOptimizer, weights, 'critic')]
      : [];
    try {
      for (const o of states) Object.assign(tensors, o.tensors);
      return await encodeArtifacts(
        PPO_ARTIFACT,
        {
          config: { ...this.config },
          actorCritic: { ...this.model.config },
          numTimesteps: this.numTimesteps,
          numUpdates: this.numUpdates,
          hasOptimizer: includeOptimizer,
          learningRates: { actor: this.actorOptimizer.learningRate, critic: this.criticOptimizer.learningRate },
          metadata: options.metadata ?? null,
        },
        tensors,
      );
    } finally {
      for (const o of states) o.dispose();
    }
  }

  /**
   * Saves what {@link PPO.toArtifacts} gives through a `tf.io` handler (or registered URL), in
   * one `save` call.
   */
  async save(target: IOTarget, options: { includeOptimizer?: boolean; metadata?: Record<string, unknown> } = {}): Promise<tf.io.SaveResult> {
    return saveArtifacts(target, await this.toArtifacts(options));
  }

  /**
   * Rebuilds a trainer from {@link PPO.toArtifacts} (a new object; it does not update one in
   * place). The trainer owns the loaded networks.
   * @param options.dim the features' d: a policy saved for another d is an error.
   * @param options.config overrides of the saved config (e.g. a new `seed`).
   * @throws ShapeError when the saved d differs from `options.dim`; DataError on an artifact
   *   that is not a saved PPO.
   */
  static async fromArtifacts(artifacts: tf.io.ModelArtifacts, options: PpoLoadOptions = {}): Promise<PPO> {
    const { description, version, tensors } = decodeArtifacts(artifacts, PPO_ARTIFACT);
    if (version === 1) upgradeOptimizerNames(description, tensors);
    let model: ActorCritic | null = null;
    try {
      const acConfig = description.actorCritic as ActorCriticConfig;
      checkDim(acConfig.dim, options.dim);
      model = new ActorCritic(acConfig);
      model.setWeights(pickPrefixed(tensors, 'policy/'));
      const ppo = new PPO({
        policy: model,
        env: options.env,
        logger: options.logger,
        config: { ...(description.config as Partial<PpoConfig>), ...options.config },
      });
      ppo.ownsModel = true;
      ppo.numTimesteps = Number(description.numTimesteps ?? 0);
      ppo.numUpdates = Number(description.numUpdates ?? 0);
      ppo.metadata = (description.metadata as Record<string, unknown> | null) ?? null;
      if (description.hasOptimizer) {
        const weights = model.getWeights() as Record<string, tf.Variable>;
        await restoreOptimizer(ppo.actorOptimizer, tensors, weights, 'actor');
        await restoreOptimizer(ppo.criticOptimizer, tensors, weights, 'critic');
      }
      const lrs = description.learningRates as { actor: number; critic: number } | undefined;
      if (lrs && !options.config) {
        ppo.actorOptimizer.learningRate = lrs.actor;
        ppo.criticOptimizer.learningRate = lrs.critic;
      }
      return ppo;
    } catch (err) {
      model?.dispose();
      throw err;
    } finally {
      tf.dispose(tensors);
    }
  }

  /**
   * Rebuilds a trainer from what {@link PPO.save} wrote (see {@link PPO.fromArtifacts}).
   */
  static async load(target: IOTarget, options: PpoLoadOptions = {}): Promise<PPO> {
    return PPO.fromArtifacts(await loadArtifacts(target), options);
  }

  /** Frees the optimisers' state and, when the trainer created them, the networks. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.actorOptimizer.dispose();
    this.criticOptimizer.dispose();
    this.policy.dispose();
    if (this.ownsModel) this.model.dispose();
  }

  private checkAlive(): void {
    assert(!this.disposed, () => 'This PPO trainer was disposed; load or create a new one.', StateError);
  }
}

/**
 * Renames the optimiser state of a layout-1 artifact (release 0.1: `.../adamw_m`, step counts
 * in the description) to the names of every checkpoint (`.../m`, `optimizer/<group>/iterations`).
 */
function upgradeOptimizerNames(description: Record<string, unknown>, tensors: tf.NamedTensorMap): void {
  const iterations = description.optimizerIterations as Record<string, number> | null | undefined;
  description.hasOptimizer = Boolean(iterations);
  if (!iterations) return;
  for (const key of Object.keys(tensors)) {
    const m = /^(optimizer\/(?:actor|critic)\/.*)\/adamw_([mv])$/.exec(key);
    if (m) {
      tensors[`${m[1]}/${m[2]}`] = tensors[key];
      delete tensors[key];
    }
  }
  for (const group of ['actor', 'critic']) tensors[`optimizer/${group}/iterations`] = tf.scalar(iterations[group] ?? 0, 'int32');
}
