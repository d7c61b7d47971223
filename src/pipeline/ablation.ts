/**
 * The paper's ablation study as one function: SASHA and its ablated variants trained as the
 * paper trains them, evaluated on the same test slides, and compared with SASHA slide by slide.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';
import { subsetDataset, type SlideDataset, type SlideSplit } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { comparePredictions, type PairedComparison } from '../eval/statistics.js';
import { prefixedStore, type CheckpointStore } from '../core/checkpoint.js';
import { evaluateHafed } from '../hafed/evaluate.js';
import { trainHafed } from '../hafed/train_hafed.js';
import { ActorCriticPolicy, RandomPolicy, TopAttentionPolicy, type ZoomPolicy } from '../ppo/index.js';
import { evaluateSasha, summarizeEvaluation, type SashaEvaluation, type SashaSlideResult } from './evaluate_sasha.js';
import { trainPolicy } from './train_policy.js';
import { trainSasha, type TrainSashaConfig } from './train_sasha.js';

/** The rows of the ablation table, in the order printed. @category Pipeline */
export const ABLATION_ROWS = Object.freeze(['default', 'single-branch', 'global-update', 'random', 'top-attention', 'z-only'] as const);

/** One row of the ablation table. @category Pipeline */
export type AblationRowName = (typeof ABLATION_ROWS)[number];

/**
 * What each row is and how it is obtained (the same words in the CLI, the library and the docs).
 * @category Pipeline
 */
export const ABLATION_DESCRIPTIONS: Readonly<Record<AblationRowName, string>> = Object.freeze({
  default: 'SASHA: learned policy, targeted update (f_S), HAFED with its M2 branches',
  'single-branch': 'HAFED with one stage-2 branch (M2 = 1), then f_S and the policy trained on it: the whole recipe',
  'global-update': 'a policy trained under the global update (every row not visited rewritten by f_S), evaluated with it',
  random: "SASHA's HAFED and f_S, patches zoomed into at random",
  'top-attention': "SASHA's HAFED and f_S, the patches of highest HAFED attention on Z zoomed into",
  'z-only': 'no zoom: HAFED stage 2 trained and evaluated on the low-res features Z alone',
});

/** Options of {@link runAblation}. @category Pipeline */
export interface RunAblationOptions {
  /** Slides with Z, U and labels. */
  dataset: SlideDataset;
  /** Train / val / test ids; the rows are evaluated on `test`. */
  split: SlideSplit;
  /** Budget f of every zooming row. */
  budget: number;
  /** Settings of every stage (as {@link trainSasha}); each variant changes one thing only. */
  config?: Partial<TrainSashaConfig>;
  /** Seed of every training stage and of the random policy. Default 5. */
  seed?: number;
  /** The rows to produce (default: all, in {@link ABLATION_ROWS} order; `default` is always run). */
  rows?: readonly AblationRowName[];
  /** Where each variant's stages and checkpoints go (`default/`, `single-branch/`, ...). */
  store?: CheckpointStore;
  /** Skip what `store` holds and continue interrupted stages. */
  resume?: boolean;
  /** Resamples of the paired AUC bootstrap. Default 10000. */
  resamples?: number;
  onProgress?: ProgressCallback;
  log?: (message: string) => void;
}

/** One evaluated row. @category Pipeline */
export interface AblationRow {
  name: AblationRowName;
  description: string;
  /** Metrics and per-slide results on the test slides. */
  evaluation: SashaEvaluation;
  /** SASHA (`default`, model A) against this row (model B) on the same slides; absent for `default`. */
  vsDefault?: PairedComparison;
}

/** What {@link runAblation} returns. @category Pipeline */
export interface AblationResult {
  budget: number;
  rows: AblationRow[];
}

/**
 * Trains and evaluates SASHA and its ablations on one cohort:
 * - `default`: {@link trainSasha} (HAFED, f_S, policy at `budget`);
 * - `single-branch`: {@link trainSasha} again with `hafed.numBranches2 = 1` (HAFED, f_S and
 *   policy all retrained; skipped with the default's results when M2 is already 1);
 * - `global-update`: a policy trained with {@link trainPolicy} under `update: 'global'` on the
 *   default's HAFED and f_S, evaluated under the global update;
 * - `random`, `top-attention`: the default's HAFED and f_S with a baseline policy;
 * - `z-only`: HAFED stage 2 trained on Z alone ({@link trainHafed} with `input: 'lowRes'`).
 * Every row is evaluated on `split.test` and compared with `default` by
 * {@link comparePredictions} (McNemar on correctness, paired bootstrap of the AUC).
 *
 * @returns the rows; they hold plain arrays only (the models are disposed).
 * @example
 * ```ts
 * const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS.small, seed: 1 });
 * const { rows } = await runAblation({ dataset: ds, split: ds.split, budget: 0.2, config: { policyEpochs: 10 } });
 * for (const r of rows) console.log(r.name, r.evaluation.metrics.accuracy, r.vsDefault?.mcnemar.pValue);
 * ```
 * @category Pipeline
 */
export async function runAblation(options: RunAblationOptions): Promise<AblationResult> {
  const { dataset, split, budget, store, resume = false, onProgress, log } = options;
  const seed = options.seed ?? 5;
  const config = options.config ?? {};
  const wanted = new Set<AblationRowName>(['default', ...(options.rows ?? ABLATION_ROWS)]);
  for (const r of wanted) if (!ABLATION_ROWS.includes(r)) throw new ValueError(`Expected ablation rows among ${ABLATION_ROWS.join(', ')}, but got '${String(r)}'.`);
  if (!(budget > 0 && budget < 1)) throw new ValueError(`Expected the ablation budget f in (0, 1), but got ${budget}.`);
  const ids = split.test;
  if (ids.length === 0) throw new ValueError('Expected test slides in the split for the ablation, but it lists none.');
  const env = { ...config.env, budget };
  const sub = (name: string) => (store ? prefixedStore(store, `${name}/`) : undefined);
  const evaluations = new Map<AblationRowName, SashaEvaluation>();

  log?.('Ablation: default (SASHA).');
  const main = await trainSasha({ dataset, split, seed, config: { ...config, env }, store: sub('default'), resume, onProgress, log });
  const numClasses = main.model.hafed!.numClasses;
  try {
    const { hafed, fS } = main.model;
    const episodes = (policy: ZoomPolicy, update: 'tsu' | 'global' = 'tsu') =>
      evaluateSasha({ classifier: hafed!, fS, policy, dataset: main.withV, ids, env: { ...main.model.env, update }, seed });
    evaluations.set('default', await episodes(new ActorCriticPolicy(main.model.policy!)));
    if (wanted.has('random')) evaluations.set('random', await episodes(new RandomPolicy({ seed })));
    if (wanted.has('top-attention')) evaluations.set('top-attention', await episodes(new TopAttentionPolicy(hafed!)));
    if (wanted.has('global-update')) {
      log?.('Ablation: policy trained under the global update.');
      const g = await trainPolicy({
        classifier: hafed!,
        fS,
        dataset: main.withV,
        split,
        env: { ...main.model.env, update: 'global' },
        ppo: config.ppo,
        policy: config.actorCritic,
        epochs: config.policyEpochs,
        seed,
        checkpoint: sub('global-update'),
        resume,
        onProgress,
      });
      try {
        evaluations.set('global-update', await episodes(new ActorCriticPolicy(g.model), 'global'));
      } finally {
        g.model.dispose();
      }
    }
  } finally {
    main.model.dispose();
    main.withV.clearCache();
  }

  if (wanted.has('single-branch')) {
    if ((config.hafed?.numBranches2 ?? 5) === 1) {
      log?.('Ablation: HAFED already has one branch; the single-branch row is the default.');
      evaluations.set('single-branch', evaluations.get('default')!);
    } else {
      log?.('Ablation: single attention branch (M2 = 1), the whole recipe.');
      const single = await trainSasha({
        dataset,
        split,
        seed,
        config: { ...config, env, hafed: { ...config.hafed, numBranches2: 1 } },
        store: sub('single-branch'),
        resume,
        onProgress,
        log,
      });
      try {
        evaluations.set(
          'single-branch',
          await evaluateSasha({
            classifier: single.model.hafed!,
            fS: single.model.fS,
            policy: new ActorCriticPolicy(single.model.policy!),
            dataset: single.withV,
            ids,
            env: single.model.env,
            seed,
          }),
        );
      } finally {
        single.model.dispose();
        single.withV.clearCache();
      }
    }
  }

  if (wanted.has('z-only')) {
    log?.('Ablation: HAFED stage 2 on Z alone (no zoom).');
    const t0 = performance.now();
    const z = await trainHafed({
      train: subsetDataset(dataset, split.train),
      val: split.val.length ? subsetDataset(dataset, split.val) : undefined,
      model: { ...config.hafed, dim: dataset.dim, input: 'lowRes', seed, numClasses },
      config: config.hafedTrain,
      seed,
      checkpoint: sub('z-only'),
      resume,
      onProgress,
    });
    try {
      const { predictions } = await evaluateHafed(z.model, subsetDataset(dataset, ids));
      const slides: SashaSlideResult[] = predictions.map((p) => ({
        id: p.id,
        label: p.label,
        probs: p.probs,
        crossEntropy: -Math.log(Math.max(p.probs[p.label], 1e-30)),
        actions: [],
      }));
      evaluations.set('z-only', summarizeEvaluation(slides, t0));
    } finally {
      z.model.dispose();
    }
  }

  const base = evaluations.get('default')!;
  const labels = base.slides.map((s) => s.label);
  const rows: AblationRow[] = [];
  for (const name of ABLATION_ROWS) {
    const ev = evaluations.get(name);
    if (!ev) continue;
    rows.push({
      name,
      description: ABLATION_DESCRIPTIONS[name],
      evaluation: ev,
      ...(name === 'default'
        ? {}
        : {
            vsDefault: comparePredictions(
              labels,
              base.slides.map((s) => s.probs),
              alignTo(base.slides, ev.slides).map((s) => s.probs),
              { seed, resamples: options.resamples },
            ),
          }),
    });
  }
  return { budget, rows };
}

/** `slides` in the order of `reference` (same ids). */
export function alignTo(reference: readonly SashaSlideResult[], slides: readonly SashaSlideResult[]): SashaSlideResult[] {
  const byId = new Map(slides.map((s) => [s.id, s] as const));
  return reference.map((r) => {
    const s = byId.get(r.id);
    if (!s) throw new ValueError(`Expected every row of the comparison on the same slides, but slide '${r.id}' is missing from one.`);
    return s;
  });
}
