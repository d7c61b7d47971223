/**
 * One model at several budgets: HAFED on every high-res patch at budget 1, SASHA with a zoom
 * policy below it, with accuracy, AUC, F1, the calibration error and the reliability bins per
 * budget, and the plot of accuracy and ECE against the budget.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';
import type { SlideDataset } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { reliabilityBins, type ReliabilityBin } from '../eval/metrics.js';
import { lineChartSvg } from '../eval/plots.js';
import type { WsiEnvConfig } from '../mdp/index.js';
import type { ZoomPolicy } from '../ppo/index.js';
import type { StateUpdateNet } from '../tsu/types.js';
import { evaluateFullResolution, evaluateSasha, type SashaEvaluation } from './evaluate_sasha.js';

/** The policy to run at a budget, and the budget it was trained for when it differs. @category Pipeline */
export interface SweepPolicy {
  policy: ZoomPolicy;
  /** The budget the policy was trained for (the nearest trained one, say), for the record. */
  trainedFor?: number;
}

/** Options of {@link evaluateBudgetSweep}. @category Pipeline */
export interface BudgetSweepOptions {
  /** HAFED (stage 2 for the episodes, `classify` at budget 1). */
  classifier: Parameters<typeof evaluateFullResolution>[0]['classifier'];
  /** The frozen f_S. */
  fS: StateUpdateNet | null;
  /** Slides with Z, V and labels ({@link withAggregated}). */
  dataset: SlideDataset;
  /** The slides to evaluate. */
  ids: readonly string[];
  /** Budgets in (0, 1]; 1 means HAFED on every high-res patch. */
  budgets: readonly number[];
  /** The policy for a budget below 1. */
  policyFor(budget: number): SweepPolicy | ZoomPolicy | Promise<SweepPolicy | ZoomPolicy>;
  /** Environment settings other than the budget (tau, update, rewriteOnce). */
  env?: Partial<Omit<WsiEnvConfig, 'budget'>>;
  /** Seed of the environments. */
  seed?: number;
  /** Confidence bins of the reliability diagrams and the ECE. Default 15. */
  bins?: number;
  onProgress?: ProgressCallback;
}

/** One budget of a sweep. @category Pipeline */
export interface BudgetSweepRow {
  budget: number;
  /** The budget the policy was trained for, when it differs from `budget`. */
  policyTrainedFor?: number;
  evaluation: SashaEvaluation;
  reliability: ReliabilityBin[];
}

/**
 * Evaluates one model at every budget of `budgets` (sorted ascending): {@link evaluateFullResolution}
 * at 1, {@link evaluateSasha} with `policyFor(budget)` below, on the same slides.
 *
 * @returns one row per budget with the evaluation and its reliability bins.
 * @example
 * ```ts
 * const rows = await evaluateBudgetSweep({
 *   classifier: hafed, fS, dataset: withV, ids: split.test, budgets: [0.1, 0.2, 1],
 *   policyFor: (f) => new ActorCriticPolicy(policies.get(f)!),
 * });
 * writeFileSync('sweep.svg', budgetSweepSvg(rows));
 * ```
 * @category Pipeline
 */
export async function evaluateBudgetSweep(options: BudgetSweepOptions): Promise<BudgetSweepRow[]> {
  const { classifier, fS, dataset, ids, env, seed = 0, bins = 15, onProgress } = options;
  const budgets = [...new Set(options.budgets)].sort((a, b) => a - b);
  if (budgets.length === 0) throw new ValueError('Expected at least one budget to evaluate, but got none.');
  const bad = budgets.find((b) => !(b > 0 && b <= 1));
  if (bad !== undefined) throw new ValueError(`Expected budgets in (0, 1], but got ${bad}.`);
  const rows: BudgetSweepRow[] = [];
  for (const budget of budgets) {
    const progress: ProgressCallback | undefined = onProgress ? (e) => onProgress({ ...e, task: `f = ${budget}` }) : undefined;
    let evaluation: SashaEvaluation;
    let trainedFor: number | undefined;
    if (budget >= 1) {
      evaluation = await evaluateFullResolution({ classifier, dataset, ids, onProgress: progress });
    } else {
      const p = await options.policyFor(budget);
      const policy = 'policy' in p ? p.policy : p;
      trainedFor = 'policy' in p ? p.trainedFor : undefined;
      evaluation = await evaluateSasha({ classifier, fS, policy, dataset, ids, env: { ...env, budget }, seed, onProgress: progress });
    }
    const reliability = reliabilityBins(
      evaluation.slides.map((s) => s.label),
      evaluation.slides.map((s) => s.probs),
      bins,
    );
    rows.push({ budget, ...(trainedFor !== undefined && trainedFor !== budget ? { policyTrainedFor: trainedFor } : {}), evaluation, reliability });
  }
  return rows;
}

/**
 * The plot of accuracy and ECE against the budget (log x axis) as SVG text.
 * @param rows the sweep, or `{ budget, accuracy, ece }` points.
 * @example
 * ```ts
 * const svg = budgetSweepSvg([{ budget: 0.1, accuracy: 0.86, ece: 0.08 }, { budget: 1, accuracy: 0.97, ece: 0.03 }]);
 * ```
 * @category Pipeline
 */
export function budgetSweepSvg(rows: readonly (BudgetSweepRow | { budget: number; accuracy: number; ece: number })[], title?: string): string {
  const pts = rows.map((r) => ('evaluation' in r ? { budget: r.budget, accuracy: r.evaluation.metrics.accuracy, ece: r.evaluation.metrics.ece } : r));
  const n = rows.length && 'evaluation' in rows[0] ? (rows[0] as BudgetSweepRow).evaluation.metrics.n : undefined;
  const x = pts.map((p) => p.budget);
  return lineChartSvg({
    title: title ?? `Accuracy and calibration against the budget${n !== undefined ? ` (${n} slides)` : ''}`,
    xLabel: 'budget f (fraction of patches zoomed into; 1 = HAFED on all)',
    yLabel: 'accuracy / ECE',
    xScale: 'log',
    series: [
      { name: 'accuracy', x, y: pts.map((p) => p.accuracy) },
      { name: 'ECE (15 bins)', x, y: pts.map((p) => p.ece), dashed: true },
    ],
  });
}
