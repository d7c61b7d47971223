/**
 * The policy stage of SASHA: PPO over the training slides with HAFED and f_S frozen, one
 * update per slide per epoch, validation and model selection after every epoch, resumable.
 *
 * @packageDocumentation
 */
import { DataError, ValueError } from '../core/errors.js';
import { disposeBag, type SlideBag, type SlideDataset } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { checkResume, epochRng, type CheckpointStore, type TrainingCheckpointState } from '../core/checkpoint.js';
import { WsiEnv, resolveWsiEnvConfig, type StateClassifier, type WsiEnvConfig } from '../mdp/index.js';
import {
  ActorCritic,
  ActorCriticPolicy,
  PPO,
  type ActorCriticConfig,
  type Logger,
  type PpoConfig,
  type LearnOptions,
  type TrainerCallback,
  type ZoomTeacher,
} from '../ppo/index.js';
import type { StateUpdateNet } from '../tsu/types.js';
import { evaluateSasha, policySelectionScore } from './evaluate_sasha.js';

/** One epoch of {@link trainPolicy}. @category Pipeline */
export interface PolicyEpochLog {
  /** 0-based epoch (imitation epochs first). */
  epoch: number;
  /** Whether the epoch imitated a teacher or ran PPO. */
  phase: 'imitation' | 'ppo';
  /** Mean return of the epoch's training episodes. */
  meanReturn: number;
  /** Mean final reward (-CE of the final state) of the training episodes. */
  meanFinalReward: number;
  /** Validation (greedy episodes, visited patches masked), when there are validation slides. */
  val?: { accuracy: number; auc: number; f1: number; meanCrossEntropy: number; score: number };
  /** Seconds of the epoch (training and validation). */
  seconds: number;
}

/** Options of {@link trainPolicy}. @category Pipeline */
export interface TrainPolicyOptions {
  /** The frozen slide classifier (HAFED stage 2; its `dim` is d). */
  classifier: StateClassifier;
  /** The frozen f_S (null: no targeted update). */
  fS: StateUpdateNet | null;
  /** Slides with `lowRes` and `aggregated` (V), labelled. */
  dataset: SlideDataset;
  /** Training and validation slide ids. */
  split: { readonly train: readonly string[]; readonly val: readonly string[] };
  /** Environment settings (budget f, tau, rewriteOnce, update). */
  env?: Partial<WsiEnvConfig>;
  /** The recipe the other settings override: `'default'` (the library's) or `'reference'`. */
  recipe?: PolicyRecipeName;
  /** PPO settings (over the recipe's). */
  ppo?: Partial<PpoConfig>;
  /** Settings of a new actor-critic (over the recipe's; d and M are the classifier's). */
  policy?: Partial<Omit<ActorCriticConfig, 'dim' | 'numScores'>>;
  /** The networks read the classifier's attention logits besides the state (default: the recipe's). */
  observeAttention?: boolean;
  /** Passes of PPO over the training slides (the reference: 15 on CAMELYON16, 25 on TCGA). */
  epochs?: number;
  /**
   * A warm start by imitation before PPO: `epochs` passes over the training slides in which the
   * episodes follow `teacher` and the policy is trained to choose as it does
   * ({@link PPO.imitate}). Teachers: `'lookahead'` (label-aware, training only: zoom where the
   * classifier's cross-entropy drops most, {@link WsiEnv.zoomLookahead}), `'greedy-attention'`
   * (the classifier's highest attention on the current state), or a function.
   */
  imitation?: { teacher: PolicyTeacher; epochs: number };
  /** Seed of the slide order, the environments and the PPO sampling. Default 5. */
  seed?: number;
  /** Where `'last'` (resumable PPO state) and `'best'` (the selected actor-critic) go. */
  checkpoint?: CheckpointStore;
  /** Continue from the `'last'` checkpoint when there is one. */
  resume?: boolean;
  /** Progress: `'train policy'` (one unit per slide update) and `'val policy'`. */
  onProgress?: ProgressCallback;
  /** After every epoch; return false to stop. */
  onEpochEnd?: (log: PolicyEpochLog) => boolean | void | Promise<boolean | void>;
  /** PPO callbacks and logger. */
  callbacks?: TrainerCallback[];
  logger?: Logger;
}

/** What {@link trainPolicy} returns. @category Pipeline */
export interface TrainPolicyResult {
  /** The selected actor-critic (the best validation epoch; the last without validation). Owned by the caller. */
  model: ActorCritic;
  history: PolicyEpochLog[];
  /** The selected epoch (-1 when no epoch ran). */
  bestEpoch: number;
  /** Its selection score `(2 - AUC - F1) + CE` (NaN without validation). */
  bestScore: number;
}

/** The progress kept in the `'last'` checkpoint (the PPO trainer's metadata). */
interface PolicyProgress {
  history: PolicyEpochLog[];
  bestEpoch: number;
  bestScore: number;
}

/** Reads the metadata of a checkpoint of release 0.1 (`{ epoch, history, bestEpoch, bestScore, seed }`). */
function policyState(metadata: Record<string, unknown> | null): TrainingCheckpointState<PolicyProgress> {
  if (metadata && typeof metadata.epochsDone === 'number') return metadata as unknown as TrainingCheckpointState<PolicyProgress>;
  if (!metadata || typeof metadata.epoch !== 'number') {
    throw new DataError("The policy checkpoint 'last' has no training progress; remove it to start afresh.");
  }
  return {
    // release 0.1 trained PPO alone on the state rows: no imitation, no attention input
    resume: { seed: metadata.seed, imitation: { teacher: 'lookahead', epochs: 0 }, observeAttention: false },
    epochsDone: metadata.epoch + 1,
    progress: { history: metadata.history as PolicyEpochLog[], bestEpoch: Number(metadata.bestEpoch), bestScore: Number(metadata.bestScore ?? NaN) },
  };
}

/** A teacher of {@link TrainPolicyOptions.imitation}. @category Pipeline */
export type PolicyTeacher = 'lookahead' | 'greedy-attention' | ZoomTeacher;

/** The teacher function of a {@link PolicyTeacher}. @category Pipeline */
export function teacherFunction(teacher: PolicyTeacher): ZoomTeacher {
  if (typeof teacher === 'function') return teacher;
  const best = (scores: ArrayLike<number>, mask: Uint8Array, sign: number) => {
    let a = -1;
    for (let i = 0; i < scores.length; i++) if (mask[i] && (a < 0 || sign * scores[i] > sign * scores[a])) a = i;
    return a;
  };
  if (teacher === 'lookahead') return (env, obs) => best((env as WsiEnv).zoomLookahead(), obs.actionMask, -1);
  if (teacher === 'greedy-attention') return (env, obs) => best((env as WsiEnv).attention(), obs.actionMask, 1);
  throw new ValueError(`Expected the teacher to be 'lookahead', 'greedy-attention' or a function, but got '${String(teacher)}'.`);
}

/**
 * How the policy is trained: every setting of {@link trainPolicy} that is not the data. A recipe
 * is the base; the options of a call override it field by field.
 * @category Pipeline
 */
export interface PolicyRecipe {
  /** PPO epochs (passes over the training slides). */
  epochs: number;
  /** Imitation epochs before PPO, and the teacher (0 epochs: none). */
  imitation: { teacher: PolicyTeacher; epochs: number };
  /** PPO settings over {@link DEFAULT_PPO_CONFIG}. */
  ppo: Readonly<Partial<PpoConfig>>;
  /** Actor-critic settings (d and M come from the classifier). */
  policy: Readonly<Partial<Omit<ActorCriticConfig, 'dim' | 'numScores'>>>;
  /** The networks read the classifier's attention logits of every row besides the state. */
  observeAttention: boolean;
}

/**
 * The reference's recipe (CAMELYON16 column): 15 PPO epochs, one slide per update with two
 * episodes, lr 1e-5, the state alone as observation. `--preset reference` on the CLI.
 * @see docs/reference-code.md (RL training)
 * @category Pipeline
 */
export const REFERENCE_POLICY_RECIPE: Readonly<PolicyRecipe> = Object.freeze({
  epochs: 15,
  imitation: Object.freeze({ teacher: 'lookahead' as PolicyTeacher, epochs: 0 }),
  ppo: Object.freeze({}),
  policy: Object.freeze({}),
  observeAttention: false,
});

/**
 * The library's default recipe (see docs/implementation-details.md, "the policy recipe", for
 * what each setting changes and its measured effect).
 * @category Pipeline
 */
export const DEFAULT_POLICY_RECIPE: Readonly<PolicyRecipe> = Object.freeze({
  epochs: 15,
  imitation: Object.freeze({ teacher: 'lookahead' as PolicyTeacher, epochs: 0 }),
  ppo: Object.freeze({
    actorLearningRate: 1e-3,
    criticLearningRate: 1e-3,
    annealLr: true,
    numEnvsPerUpdate: 8,
    numMinibatches: 2,
    rewardScale: 'budget' as const,
    criticTimeScale: true,
  }),
  policy: Object.freeze({ attentionPrior: 1 }),
  observeAttention: true,
});

/** The recipes by name. @category Pipeline */
export const POLICY_RECIPES = Object.freeze({ default: DEFAULT_POLICY_RECIPE, reference: REFERENCE_POLICY_RECIPE });

/** A recipe's name. @category Pipeline */
export type PolicyRecipeName = keyof typeof POLICY_RECIPES;

/** Default number of PPO epochs of the policy (the default recipe's). */
export const DEFAULT_POLICY_EPOCHS = DEFAULT_POLICY_RECIPE.epochs;

/**
 * Trains the zoom policy with a recipe ({@link DEFAULT_POLICY_RECIPE} unless `recipe` says
 * otherwise): for every epoch, the training slides in a seeded random order, one PPO update per
 * `numEnvsPerUpdate` slides (8 in the default recipe; 1 in the reference's step 6,
 * `recipe: 'reference'`), two episodes of T = ceil(f N) steps on each; imitation epochs first
 * when `imitation.epochs > 0` (none by default). After every epoch, greedy episodes on the
 * validation slides with visited patches masked, and the epoch minimising
 * `(2 - AUC - F1) + mean final CE` is kept.
 *
 * With `checkpoint`, the full PPO state (networks, optimisers, counters, history) is written
 * as `'last'` after every epoch and the selected actor-critic as `'best'`; `resume: true`
 * continues from `'last'`.
 *
 * @returns the selected actor-critic (owned by the caller) and the history.
 * @example
 * ```ts
 * const { model, bestEpoch } = await trainPolicy({ classifier: hafed, fS, dataset: withV, split, env: { budget: 0.2 } });
 * ```
 * @see docs/reference-code.md §6.2
 * @category Pipeline
 */
export async function trainPolicy(options: TrainPolicyOptions): Promise<TrainPolicyResult> {
  const { classifier, fS, dataset, split, checkpoint, onProgress, onEpochEnd } = options;
  const recipeName = options.recipe ?? 'default';
  const recipe = POLICY_RECIPES[recipeName];
  if (!recipe) throw new ValueError(`Expected recipe to be one of ${Object.keys(POLICY_RECIPES).join(', ')}, but got '${String(recipeName)}'.`);
  const ppoEpochs = options.epochs ?? recipe.epochs;
  const imitation = options.imitation ?? recipe.imitation;
  const imitationEpochs = imitation.epochs;
  const teacher = imitationEpochs > 0 ? teacherFunction(imitation.teacher) : null;
  const observeAttention = options.observeAttention ?? recipe.observeAttention;
  const policyConfig = { ...recipe.policy, ...options.policy, dim: classifier.dim, numScores: observeAttention ? classifier.numBranches : 0 };
  const epochs = imitationEpochs + ppoEpochs;
  if (!(Number.isInteger(imitationEpochs) && imitationEpochs >= 0)) {
    throw new ValueError(`Expected imitation.epochs to be a non-negative integer, but got ${imitationEpochs}.`);
  }
  if (epochs === 0) throw new ValueError('Expected at least one epoch of PPO or of imitation, but both counts are 0.');
  const seed = options.seed ?? 5;
  if (!(Number.isInteger(ppoEpochs) && ppoEpochs >= 0)) throw new ValueError(`Expected epochs to be a non-negative integer, but got ${ppoEpochs}.`);
  if (split.train.length === 0) throw new ValueError('Expected at least one training slide for the policy, but the split has none.');
  const envConfig = resolveWsiEnvConfig(options.env);
  if (dataset.dim !== classifier.dim) {
    throw new DataError(`Expected features of width d = ${classifier.dim} (the classifier's), but the dataset has d = ${dataset.dim}.`);
  }
  if (envConfig.update !== 'none' && !fS) throw new ValueError("Expected f_S for the targeted update; pass fS or set env.update to 'none'.");

  let ppo: PPO | null = null;
  let progress: PolicyProgress = { history: [], bestEpoch: -1, bestScore: Number.NaN };
  let epochsDone = 0;
  const resumeKey = {
    seed,
    env: { ...envConfig },
    recipe: recipeName,
    imitation: { teacher: typeof imitation.teacher === 'function' ? 'function' : imitation.teacher, epochs: imitationEpochs },
    observeAttention,
    policy: options.policy ?? {},
    ppo: options.ppo ?? {},
    trainIds: [...split.train],
  };
  let best: ActorCritic | null = null;
  if (options.resume && checkpoint) {
    const last = await checkpoint.load('last');
    if (last) {
      ppo = await PPO.fromArtifacts(last, { dim: classifier.dim, logger: options.logger });
      try {
        const state = policyState(ppo.metadata);
        checkResume('policy', state, { resume: resumeKey, epochs });
        progress = state.progress;
        epochsDone = state.epochsDone;
        const bestArtifacts = await checkpoint.load('best');
        if (bestArtifacts) best = ActorCritic.fromArtifacts(bestArtifacts, { dim: classifier.dim });
      } catch (e) {
        ppo.dispose();
        throw e;
      }
    }
  }
  if (!ppo) {
    ppo = new PPO({ policy: policyConfig, config: { seed, ...recipe.ppo, ...options.ppo }, logger: options.logger });
  }

  // The environments of an update: the next numEnvsPerUpdate slides in the epoch's order.
  const perUpdate = ppo.config.numEnvsPerUpdate;
  let order: string[] = [];
  let current: { env: WsiEnv; bag: SlideBag }[] = [];
  let epochStartUpdates = 0;
  const release = () => {
    for (const { env, bag } of current) {
      env.close();
      disposeBag(bag);
    }
    current = [];
  };
  ppo.setEnv(async (update: number, index: number) => {
    if (index === 0) release();
    const position = (update - epochStartUpdates) * perUpdate + index;
    if (index > 0 && position >= order.length) return null;
    const id = order[position % order.length];
    const bag = await dataset.load(id, ['lowRes', 'aggregated']);
    if (bag.label === undefined || !bag.lowRes || !bag.aggregated) {
      disposeBag(bag);
      throw new DataError(`Slide '${id}' needs a label, Z and V for policy training.`);
    }
    const env = new WsiEnv({ classifier, fS, lowRes: bag.lowRes, aggregated: bag.aggregated, label: bag.label, config: envConfig });
    current.push({ env, bag });
    return env;
  });
  const updatesPerEpoch = Math.ceil(split.train.length / perUpdate);

  try {
    for (let epoch = epochsDone; epoch < epochs; epoch++) {
      const t0 = performance.now();
      // the epoch's randomness depends on (seed, epoch) only, so a resumed run equals an uninterrupted one
      const rng = epochRng(seed, epoch);
      order = rng.shuffle([...split.train]);
      ppo.setSeed(rng.seedInt());
      epochStartUpdates = ppo.numUpdates;
      const returns: number[] = [];
      const finals: number[] = [];
      let updates = 0;
      const imitating = teacher !== null && epoch < imitationEpochs;
      const ppoEpoch = epoch - imitationEpochs;
      const learnOptions: LearnOptions = {
        annealSpan: [Math.max(0, ppoEpoch) / Math.max(1, ppoEpochs), Math.max(0, ppoEpoch + 1) / Math.max(1, ppoEpochs)],
        totalUpdates: updatesPerEpoch,
        callbacks: [
          ...(options.callbacks ?? []),
          {
            onUpdateEnd: (ctx) => {
              returns.push(...ctx.episodeReturns);
              finals.push(ctx.metrics['charts/final_reward']);
              updates += 1;
              onProgress?.({ task: 'train policy', done: epoch * updatesPerEpoch + updates, total: epochs * updatesPerEpoch, info: { epoch: epoch + 1 } });
            },
          },
        ],
      };
      if (imitating) await ppo.imitate({ ...learnOptions, teacher: teacher as ZoomTeacher });
      else await ppo.learn(learnOptions);
      release();
      const log: PolicyEpochLog = {
        epoch,
        phase: imitating ? 'imitation' : 'ppo',
        meanReturn: returns.reduce((a, b) => a + b, 0) / Math.max(1, returns.length),
        meanFinalReward: finals.reduce((a, b) => a + b, 0) / Math.max(1, finals.length),
        seconds: 0,
      };
      let improved = false;
      if (split.val.length > 0) {
        const ev = await evaluateSasha({
          classifier,
          fS,
          policy: new ActorCriticPolicy(ppo.model),
          dataset,
          ids: split.val,
          env: envConfig,
          seed: seed + 1000,
          onProgress: onProgress ? (e) => onProgress({ ...e, task: 'val policy' }) : undefined,
        });
        const score = policySelectionScore(ev);
        log.val = { accuracy: ev.metrics.accuracy, auc: ev.metrics.auc, f1: ev.metrics.f1, meanCrossEntropy: ev.meanCrossEntropy, score };
        improved = Number.isNaN(progress.bestScore) || score < progress.bestScore;
        if (improved) progress = { ...progress, bestEpoch: epoch, bestScore: score };
      } else {
        improved = true;
        progress = { ...progress, bestEpoch: epoch };
      }
      if (improved) {
        best?.dispose();
        best = ActorCritic.fromArtifacts(await ppo.model.toArtifacts());
        if (checkpoint) await checkpoint.save('best', await best.toArtifacts());
      }
      log.seconds = (performance.now() - t0) / 1000;
      progress = { ...progress, history: [...progress.history, log] };
      if (checkpoint) {
        const state: TrainingCheckpointState<PolicyProgress> = { resume: resumeKey, epochsDone: epoch + 1, progress };
        await checkpoint.save('last', await ppo.toArtifacts({ metadata: state as unknown as Record<string, unknown> }));
      }
      if ((await onEpochEnd?.(log)) === false) break;
    }
    const model = best ?? ActorCritic.fromArtifacts(await ppo.model.toArtifacts());
    best = null;
    return { model, history: progress.history, bestEpoch: progress.bestEpoch, bestScore: progress.bestScore };
  } finally {
    release();
    best?.dispose();
    ppo.dispose();
  }
}
