/**
 * The staged training recipe of SASHA: HAFED on the high-resolution features, then V (stage 1
 * of the frozen HAFED), then f_S (the targeted state update), then the zoom policy with PPO,
 * each stage resumable from its checkpoint.
 *
 * @packageDocumentation
 */
import { DataError, ValueError } from '../core/errors.js';
import { subsetDataset, type SlideDataset, type SlideSplit } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { prefixedStore, type CheckpointStore } from '../core/checkpoint.js';
import { Hafed } from '../hafed/hafed.js';
import { trainHafed } from '../hafed/train_hafed.js';
import type { HafedBest, HafedConfig, HafedEpochLog, HafedTrainConfig } from '../hafed/types.js';
import type { WsiEnvConfig } from '../mdp/index.js';
import { ActorCritic, type ActorCriticConfig, type PpoConfig } from '../ppo/index.js';
import { StateMlp, trainTsu, type TrainTsuConfig, type TsuEpochRecord } from '../tsu/index.js';
import { withAggregated, type AggregatedDataset } from './aggregated.js';
import { SashaModel } from './sasha_model.js';
import { POLICY_RECIPES, trainPolicy, type PolicyEpochLog, type PolicyRecipeName } from './train_policy.js';

/** The stages, in order. @category Pipeline */
export const SASHA_STAGES = Object.freeze(['hafed', 'tsu', 'policy'] as const);
/** A stage. @category Pipeline */
export type SashaStage = (typeof SASHA_STAGES)[number];

/** Settings of every stage. @category Pipeline */
export interface TrainSashaConfig {
  /** HAFED model settings (d, k and the classes come from the data). */
  hafed: Partial<Omit<HafedConfig, 'dim' | 'k' | 'numClasses' | 'input'>>;
  /** HAFED training (epochs, lr, ...). */
  hafedTrain: Partial<HafedTrainConfig>;
  /** f_S training (epochs, lr, tau, ...). Its `tau` defaults to `env.tau`. */
  tsu: Partial<TrainTsuConfig>;
  /** Environment of the policy (budget f, tau, rewriteOnce, update). */
  env: Partial<WsiEnvConfig>;
  /** PPO settings. */
  ppo: Partial<PpoConfig>;
  /** Actor-critic sizes (d comes from the data). */
  actorCritic: Partial<Omit<ActorCriticConfig, 'dim'>>;
  /** Passes of PPO over the training slides. */
  policyEpochs: number;
  /** The recipe of the policy stage that `ppo`, `actorCritic` and `policyEpochs` override (default `'default'`). */
  policyRecipe: PolicyRecipeName;
}

/** Options of {@link trainSasha}. @category Pipeline */
export interface TrainSashaOptions {
  /** Slides with `lowRes` (Z), `highRes` (U) and labels. */
  dataset: SlideDataset;
  /** Train / val / test slide ids (test is not used for training). */
  split: SlideSplit;
  /** Settings of the stages (each part over its component's defaults). */
  config?: Partial<TrainSashaConfig>;
  /** Seed of every stage (HAFED init and order, f_S, PPO). Default 5. */
  seed?: number;
  /**
   * Where stage outputs (`'hafed'`, `'tsu'`, `'policy'`) and training checkpoints
   * (`'checkpoints/<stage>/last'`, `'.../best'`) go. In Node, `fileCheckpointStore(dir)` lays them
   * out as the CLI's model directory.
   */
  store?: CheckpointStore;
  /** Skip stages whose output is in `store`, and continue an interrupted stage from its checkpoint. */
  resume?: boolean;
  /** Stop after this stage (default: all three). */
  until?: SashaStage;
  /** Progress events of every stage (`'train hafed'`, `'train tsu'`, `'train policy'`, ...). */
  onProgress?: ProgressCallback;
  /** Called when a stage finished (or was found done) with its summary. */
  onStageEnd?: (stage: SashaStage, summary: Record<string, unknown>) => void | Promise<void>;
  /** Messages for a human (which stage runs, which is skipped). */
  log?: (message: string) => void;
}

/** What {@link trainSasha} returns. @category Pipeline */
export interface TrainSashaResult {
  /** HAFED, f_S and the policy (the parts trained so far); owned by the caller. */
  model: SashaModel;
  /** The dataset with V (stage 1 of the trained HAFED, cached); reuse it to evaluate. */
  withV: AggregatedDataset;
  /** Per-stage summaries (absent for stages not run). */
  hafed?: { best: HafedBest; history: HafedEpochLog[] } | { loaded: true };
  tsu?: { bestEpoch: number; bestValMse: number; identityValMse: number; history: TsuEpochRecord[] } | { loaded: true };
  policy?: { bestEpoch: number; bestScore: number; history: PolicyEpochLog[] } | { loaded: true };
}

/** Number of classes of a split: max label + 1, at least 2. */
function numClassesOf(dataset: SlideDataset, ids: readonly string[]): number {
  const index = new Map(dataset.ids.map((id, i) => [id, i] as const));
  let c = 2;
  for (const id of ids) {
    const i = index.get(id);
    if (i === undefined) throw new DataError(`Slide '${id}' of the split is not in the dataset.`);
    const y = dataset.labels[i];
    if (!(y >= 0)) throw new DataError(`Slide '${id}' has no label; every training and validation slide needs one.`);
    c = Math.max(c, y + 1);
  }
  return c;
}

/**
 * Trains SASHA in stages, as the reference's steps 3-6:
 * 1. **HAFED** on U ({@link trainHafed}: ACMIL losses, STKIM, half-cosine AdamW, selection on
 *    validation F1 + AUC);
 * 2. **V** = stage 1 of the frozen HAFED on every slide's U (computed once, kept in memory);
 * 3. **f_S** ({@link trainTsu}: one random anchor per slide and epoch, MSE to V, selection on
 *    validation MSE);
 * 4. **policy** ({@link trainPolicy}: PPO on the SASHA environment with HAFED and f_S frozen,
 *    selection on `(2 - AUC - F1) + CE` of greedy validation episodes with visited patches masked).
 *
 * With a `store`, every stage's output and checkpoints are written as they finish; with
 * `resume`, finished stages are loaded instead of trained and an interrupted stage continues
 * from its `'last'` checkpoint.
 *
 * @returns the bundle and the dataset with V, both owned by the caller.
 * @example
 * ```ts
 * const ds = new SyntheticDataset(SYNTHETIC_PRESETS.small);
 * const { model, withV } = await trainSasha({ dataset: ds, split: ds.split, config: { env: { budget: 0.2 } } });
 * const ev = await evaluateSasha({ classifier: model.hafed!, fS: model.fS, policy: new ActorCriticPolicy(model.policy!),
 *   dataset: withV, ids: ds.split.test, env: model.env });
 * ```
 * @category Pipeline
 */
export async function trainSasha(options: TrainSashaOptions): Promise<TrainSashaResult> {
  const { dataset, split, store, resume = false, onProgress, onStageEnd, log } = options;
  const seed = options.seed ?? 5;
  const cfg = options.config ?? {};
  const until = options.until ?? 'policy';
  if (!SASHA_STAGES.includes(until)) throw new ValueError(`Expected until to be one of ${SASHA_STAGES.join(', ')}, but got '${String(until)}'.`);
  if (split.train.length === 0) throw new ValueError('Expected training slides in the split, but it lists none.');
  const numClasses = numClassesOf(dataset, [...split.train, ...split.val]);
  const last = SASHA_STAGES.indexOf(until);
  const result: Partial<TrainSashaResult> = {};
  const envConfig = cfg.env ?? {};

  // 1. HAFED
  let hafed: Hafed | null = null;
  const stored = resume && store ? await store.load('hafed') : null;
  if (stored) {
    hafed = Hafed.fromArtifacts(stored);
    log?.('HAFED: found a trained model, skipping the stage.');
    result.hafed = { loaded: true };
  } else {
    if (!dataset.parts.includes('highRes')) throw new DataError('HAFED trains on high-resolution features (U); the dataset has none.');
    log?.(`HAFED: training on ${split.train.length} slides, validating on ${split.val.length}.`);
    const trained = await trainHafed({
      train: subsetDataset(dataset, split.train),
      val: split.val.length ? subsetDataset(dataset, split.val) : undefined,
      model: { ...cfg.hafed, dim: dataset.dim, ...(dataset.k !== undefined ? { k: dataset.k } : {}), numClasses, input: 'highRes', seed },
      config: cfg.hafedTrain,
      seed,
      checkpoint: store ? prefixedStore(store, 'checkpoints/hafed/') : undefined,
      resume,
      onProgress,
    });
    hafed = trained.model;
    if (store) await store.save('hafed', await hafed.toArtifacts());
    result.hafed = { best: trained.best, history: trained.history };
  }
  const model = new SashaModel({ hafed, env: envConfig });
  try {
    await onStageEnd?.('hafed', summarize(result.hafed));
    // 2. V, once per slide
    const withV = withAggregated(dataset, hafed);
    result.withV = withV;
    // 3. f_S
    if (last >= 1) {
      const storedTsu = resume && store ? await store.load('tsu') : null;
      if (storedTsu) {
        model.fS = StateMlp.fromArtifacts(storedTsu);
        log?.('TSU: found a trained f_S, skipping the stage.');
        result.tsu = { loaded: true };
      } else {
        log?.(`TSU: training f_S on ${split.train.length} slides.`);
        const tsu = await trainTsu({
          dataset: withV,
          split,
          config: { seed, tau: model.env.tau, ...cfg.tsu },
          onProgress,
          checkpoint: store ? prefixedStore(store, 'checkpoints/tsu/') : undefined,
          resume,
        });
        model.fS = tsu.model;
        if (store) await store.save('tsu', await tsu.model.toArtifacts());
        result.tsu = { bestEpoch: tsu.bestEpoch, bestValMse: tsu.bestValMse, identityValMse: tsu.identityValMse, history: tsu.history };
      }
      await onStageEnd?.('tsu', summarize(result.tsu));
    }
    // 4. the policy
    if (last >= 2) {
      const storedPolicy = resume && store ? await store.load('policy') : null;
      if (storedPolicy) {
        model.policy = ActorCritic.fromArtifacts(storedPolicy, { dim: dataset.dim });
        log?.('Policy: found a trained policy, skipping the stage.');
        result.policy = { loaded: true };
      } else {
        const recipe = cfg.policyRecipe ?? 'default';
        const epochs = cfg.policyEpochs ?? POLICY_RECIPES[recipe].epochs;
        log?.(`Policy: PPO for ${epochs} epochs over ${split.train.length} slides, budget f = ${model.env.budget}.`);
        const trained = await trainPolicy({
          classifier: hafed,
          fS: model.env.update === 'none' ? null : model.fS,
          dataset: withV,
          split,
          env: model.env,
          recipe,
          ppo: cfg.ppo,
          policy: cfg.actorCritic,
          epochs,
          seed,
          checkpoint: store ? prefixedStore(store, 'checkpoints/policy/') : undefined,
          resume,
          onProgress,
        });
        model.policy = trained.model;
        if (store) await store.save('policy', await trained.model.toArtifacts());
        result.policy = { bestEpoch: trained.bestEpoch, bestScore: trained.bestScore, history: trained.history };
      }
      await onStageEnd?.('policy', summarize(result.policy));
    }
    return { ...result, model, withV } as TrainSashaResult;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function summarize(stage: unknown): Record<string, unknown> {
  if (!stage || typeof stage !== 'object') return {};
  const s = { ...(stage as Record<string, unknown>) };
  delete s.history;
  return s;
}
