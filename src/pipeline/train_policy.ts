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
  type TrainerCallback,
} from '../ppo/index.js';
import type { StateUpdateNet } from '../tsu/types.js';
import { evaluateSasha, policySelectionScore } from './evaluate_sasha.js';

/** One epoch of {@link trainPolicy}. @category Pipeline */
export interface PolicyEpochLog {
  /** 0-based epoch. */
  epoch: number;
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
  /** PPO settings. */
  ppo?: Partial<PpoConfig>;
  /** Sizes of a new actor-critic (d is the classifier's). */
  policy?: Partial<Omit<ActorCriticConfig, 'dim'>>;
  /** Passes over the training slides (the reference: 15 on CAMELYON16, 25 on TCGA). */
  epochs?: number;
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
    resume: { seed: metadata.seed },
    epochsDone: metadata.epoch + 1,
    progress: { history: metadata.history as PolicyEpochLog[], bestEpoch: Number(metadata.bestEpoch), bestScore: Number(metadata.bestScore ?? NaN) },
  };
}

/** Default number of policy epochs: docs/reference-code.md §6.3 (`train_epoch` 15, CAMELYON16). */
export const DEFAULT_POLICY_EPOCHS = 15;

/**
 * Trains the zoom policy as the reference's step 6 does: for every epoch, the training slides
 * in a seeded random order, one PPO update per slide (two episodes of T = ceil(f N) steps on
 * it); after every epoch, greedy episodes on the validation slides with visited patches
 * masked, and the epoch minimising `(2 - AUC - F1) + mean final CE` is kept.
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
  const epochs = options.epochs ?? DEFAULT_POLICY_EPOCHS;
  const seed = options.seed ?? 5;
  if (!(Number.isInteger(epochs) && epochs >= 1)) throw new ValueError(`Expected epochs to be a positive integer, but got ${epochs}.`);
  if (split.train.length === 0) throw new ValueError('Expected at least one training slide for the policy, but the split has none.');
  const envConfig = resolveWsiEnvConfig(options.env);
  if (dataset.dim !== classifier.dim) {
    throw new DataError(`Expected features of width d = ${classifier.dim} (the classifier's), but the dataset has d = ${dataset.dim}.`);
  }
  if (envConfig.update !== 'none' && !fS) throw new ValueError("Expected f_S for the targeted update; pass fS or set env.update to 'none'.");

  let ppo: PPO | null = null;
  let progress: PolicyProgress = { history: [], bestEpoch: -1, bestScore: Number.NaN };
  let epochsDone = 0;
  const resumeKey = { seed, env: { ...envConfig }, policy: options.policy ?? {}, ppo: options.ppo ?? {}, trainIds: [...split.train] };
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
    ppo = new PPO({ policy: { ...options.policy, dim: classifier.dim }, config: { seed, ...options.ppo }, logger: options.logger });
  }

  // One environment per update: the slide of this update in the epoch's order.
  let order: string[] = [];
  let current: { env: WsiEnv; bag: SlideBag } | null = null;
  let epochStartUpdates = 0;
  const release = () => {
    if (current) {
      current.env.close();
      disposeBag(current.bag);
      current = null;
    }
  };
  ppo.setEnv(async (update: number) => {
    release();
    const id = order[(update - epochStartUpdates) % order.length];
    const bag = await dataset.load(id, ['lowRes', 'aggregated']);
    if (bag.label === undefined || !bag.lowRes || !bag.aggregated) {
      disposeBag(bag);
      throw new DataError(`Slide '${id}' needs a label, Z and V for policy training.`);
    }
    const env = new WsiEnv({ classifier, fS, lowRes: bag.lowRes, aggregated: bag.aggregated, label: bag.label, config: envConfig });
    current = { env, bag };
    return env;
  });

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
      await ppo.learn({
        totalUpdates: order.length,
        callbacks: [
          ...(options.callbacks ?? []),
          {
            onUpdateEnd: (ctx) => {
              returns.push(...ctx.episodeReturns);
              finals.push(ctx.metrics['charts/final_reward']);
              updates += 1;
              onProgress?.({ task: 'train policy', done: epoch * order.length + updates, total: epochs * order.length, info: { epoch: epoch + 1 } });
            },
          },
        ],
      });
      release();
      const log: PolicyEpochLog = {
        epoch,
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
