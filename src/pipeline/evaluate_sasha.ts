/**
 * Evaluating SASHA on a set of slides: run a zoom policy with the budget f on every slide's
 * environment (visited patches masked), classify the final state, and compute the metrics.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ValueError } from '../core/errors.js';
import { disposeBag, type SlideDataset } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { classificationMetrics, type ClassificationMetrics } from '../eval/metrics.js';
import { WsiEnv, type StateClassifier, type WsiEnvConfig } from '../mdp/index.js';
import {
  ActorCriticPolicy,
  GreedyAttentionPolicy,
  RandomPolicy,
  TopAttentionPolicy,
  playEpisode,
  type ActorCritic,
  type SelectOptions,
  type ZoomPolicy,
} from '../ppo/index.js';
import type { StateUpdateNet } from '../tsu/types.js';

/** The policies the CLI and the benchmark name. @category Pipeline */
export const POLICY_NAMES = Object.freeze(['learned', 'random', 'top-attention', 'greedy-attention'] as const);

/** A policy by name. @category Pipeline */
export type PolicyName = (typeof POLICY_NAMES)[number];

/**
 * Builds a {@link ZoomPolicy} by name: `'learned'` needs `model` (the trained actor-critic),
 * the attention baselines need `classifier` (HAFED stage 2).
 * @category Pipeline
 */
export function makePolicy(name: PolicyName, deps: { model?: ActorCritic; classifier?: StateClassifier; seed?: number }): ZoomPolicy {
  switch (name) {
    case 'learned':
      if (!deps.model) throw new ValueError("Expected a trained policy for --policy learned; train one with 'sasha train policy'.");
      return new ActorCriticPolicy(deps.model, { seed: deps.seed });
    case 'random':
      return new RandomPolicy({ seed: deps.seed });
    case 'top-attention':
    case 'greedy-attention':
      if (!deps.classifier) throw new ValueError(`Expected a classifier for the '${name}' policy.`);
      return name === 'top-attention' ? new TopAttentionPolicy(deps.classifier) : new GreedyAttentionPolicy(deps.classifier);
    default:
      throw new ValueError(`Expected a policy in ${POLICY_NAMES.join(', ')}, but got '${String(name)}'.`);
  }
}

/** Options of {@link evaluateSasha}. @category Pipeline */
export interface EvaluateSashaOptions {
  /** The frozen slide classifier (HAFED stage 2). */
  classifier: StateClassifier;
  /** The frozen f_S (null: no targeted update). */
  fS: StateUpdateNet | null;
  /** The zoom policy. */
  policy: ZoomPolicy;
  /** Slides with `lowRes` and `aggregated` (see {@link withAggregated}) and labels. */
  dataset: SlideDataset;
  /** The slides to evaluate (default: all of `dataset`). */
  ids?: readonly string[];
  /** Environment settings: budget f, tau, rewriteOnce, update. */
  env?: Partial<WsiEnvConfig>;
  /** Action selection (default argmax). */
  select?: SelectOptions;
  /** Seed of the environments' resets. */
  seed?: number;
  /** Keep the classifier's attention over the patches of each final state (`SashaSlideResult.attention`). */
  keepAttention?: boolean;
  /** Progress events (`task: 'eval'`, one per slide). */
  onProgress?: ProgressCallback;
}

/** One slide's result. @category Pipeline */
export interface SashaSlideResult {
  id: string;
  label: number;
  /** Class probabilities on the final state S_T. */
  probs: number[];
  /** `-log probs[label]`. */
  crossEntropy: number;
  /** The patches zoomed into, in order. */
  actions: number[];
  /**
   * With `keepAttention`: the classifier's attention over the N patches of the final state
   * (stage-2 weights averaged over the branches; they sum to 1).
   */
  attention?: number[];
}

/** What {@link evaluateSasha} returns. @category Pipeline */
export interface SashaEvaluation {
  metrics: ClassificationMetrics;
  /** Mean cross-entropy of the final states. */
  meanCrossEntropy: number;
  slides: SashaSlideResult[];
  /** Wall-clock seconds of the episodes (loading included). */
  seconds: number;
}

/**
 * Runs `policy` on every slide (one episode of T = ceil(f N) steps, chosen patches masked, as
 * the reference's test-time code and our validation do), and scores the final states.
 * @returns metrics over the slides, the mean final cross-entropy and per-slide results.
 * @example
 * ```ts
 * const ev = await evaluateSasha({ classifier: hafed, fS, policy, dataset: withV, ids: split.test, env: { budget: 0.2 } });
 * ev.metrics.accuracy;
 * ```
 * @category Pipeline
 */
export async function evaluateSasha(options: EvaluateSashaOptions): Promise<SashaEvaluation> {
  const { classifier, fS, policy, dataset, env, select, seed = 0, keepAttention = false, onProgress } = options;
  const ids = options.ids ?? dataset.ids;
  if (ids.length === 0) throw new ValueError('Expected at least one slide to evaluate, but the list is empty.');
  const t0 = performance.now();
  const slides: SashaSlideResult[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const bag = await dataset.load(id, ['lowRes', 'aggregated']);
    try {
      if (bag.label === undefined) throw new DataError(`Slide '${id}' has no label; evaluation needs labelled slides.`);
      if (!bag.lowRes || !bag.aggregated) throw new DataError(`Slide '${id}' lacks Z or V; evaluation needs both.`);
      const wsiEnv = new WsiEnv({ classifier, fS, lowRes: bag.lowRes, aggregated: bag.aggregated, label: bag.label, config: env });
      try {
        const { actions, last } = playEpisode(wsiEnv, policy, { ...select, seed: seed + i });
        const result: SashaSlideResult = { id, label: bag.label, probs: Array.from(last.info.probs), crossEntropy: last.info.crossEntropy, actions };
        if (keepAttention) result.attention = Array.from(wsiEnv.attention());
        slides.push(result);
      } finally {
        wsiEnv.close();
      }
    } finally {
      disposeBag(bag);
    }
    onProgress?.({ task: 'eval', done: i + 1, total: ids.length });
  }
  return summarizeEvaluation(slides, t0);
}

/**
 * A {@link SashaEvaluation} of per-slide results: the metrics, the mean final cross-entropy and
 * the time since `t0` (a `performance.now()` value, ms).
 * @example
 * ```ts
 * const ev = summarizeEvaluation(slides, performance.now());
 * ev.metrics.accuracy;
 * ```
 * @category Pipeline
 */
export function summarizeEvaluation(slides: SashaSlideResult[], t0: number): SashaEvaluation {
  const metrics = classificationMetrics(
    slides.map((s) => s.label),
    slides.map((s) => s.probs),
  );
  const meanCrossEntropy = slides.reduce((a, s) => a + s.crossEntropy, 0) / slides.length;
  return { metrics, meanCrossEntropy, slides, seconds: (performance.now() - t0) / 1000 };
}

/**
 * The reference's model-selection criterion for the policy (lower is better):
 * `(2 - AUC - F1) + mean final CE`. An undefined AUC or F1 (one class only) counts as 0.
 * @see docs/reference-code.md §6.2 (model selection)
 * @category Pipeline
 */
export function policySelectionScore(ev: Pick<SashaEvaluation, 'metrics' | 'meanCrossEntropy'>): number {
  const auc = Number.isFinite(ev.metrics.auc) ? ev.metrics.auc : 0;
  const f1 = Number.isFinite(ev.metrics.f1) ? ev.metrics.f1 : 0;
  return 2 - auc - f1 + ev.meanCrossEntropy;
}

/** Mean over the branches of a stage-2 attention tensor `[M, N]` (or `[N]`), as a plain array. */
function meanOverBranches(attention: tf.Tensor): number[] {
  const a = attention.dataSync();
  const n = attention.shape[attention.shape.length - 1];
  const m = a.length / n;
  const out = new Array<number>(n).fill(0);
  for (let b = 0; b < m; b++) for (let i = 0; i < n; i++) out[i] += a[b * n + i] / m;
  return out;
}

/**
 * HAFED on every patch's high-resolution features (the 100% budget): `classify(V)`.
 * @category Pipeline
 */
export async function evaluateFullResolution(options: {
  classifier: StateClassifier & { classify(v: tf.Tensor2D): { logits: tf.Tensor; probs: tf.Tensor; attention: tf.Tensor } };
  dataset: SlideDataset;
  ids?: readonly string[];
  /** Keep the attention over the N patches of V (`SashaSlideResult.attention`). */
  keepAttention?: boolean;
  onProgress?: ProgressCallback;
}): Promise<SashaEvaluation> {
  const { classifier, dataset, keepAttention = false, onProgress } = options;
  const ids = options.ids ?? dataset.ids;
  const t0 = performance.now();
  const slides: SashaSlideResult[] = [];
  for (let i = 0; i < ids.length; i++) {
    const bag = await dataset.load(ids[i], ['aggregated']);
    try {
      if (bag.label === undefined || !bag.aggregated) throw new DataError(`Slide '${ids[i]}' lacks a label or V.`);
      const out = classifier.classify(bag.aggregated);
      const probs = Array.from(out.probs.dataSync());
      const attention = keepAttention ? meanOverBranches(out.attention) : undefined;
      tf.dispose([out.logits, out.probs, out.attention]);
      slides.push({ id: ids[i], label: bag.label, probs, crossEntropy: -Math.log(Math.max(probs[bag.label], 1e-30)), actions: [], ...(attention ? { attention } : {}) });
    } finally {
      disposeBag(bag);
    }
    onProgress?.({ task: 'eval', done: i + 1, total: ids.length });
  }
  return summarizeEvaluation(slides, t0);
}
