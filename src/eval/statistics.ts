/**
 * Statistics for comparing models on a cohort: the percentile bootstrap interval of any
 * statistic, McNemar's exact test on paired correctness, a paired stratified bootstrap of the
 * AUC difference, and the two-sided Mann-Whitney U test. Plain arrays in, plain numbers out
 * (no tensors), seeded so a seed reproduces every interval.
 *
 * @packageDocumentation
 */
import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/random.js';
import { argmax, binaryAuc, rocAuc, type ProbabilityRows } from './metrics.js';
import { averageRanks } from './ranks.js';

// ---------------------------------------------------------------------------------------------
// Small numeric helpers

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Quantile of sorted values, linear interpolation between order statistics (NumPy's default). */
function sortedQuantile(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new ValueError(`Expected level to be in (0, 1), e.g. 0.95, but got ${level}.`);
}

function checkResamples(resamples: number): void {
  if (!(Number.isInteger(resamples) && resamples >= 1)) {
    throw new ValueError(`Expected resamples to be a positive integer, e.g. 10000, but got ${resamples}.`);
  }
}

function checkFinite(name: string, xs: ArrayLike<number>): void {
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) throw new ValueError(`Expected ${name}[${i}] to be a finite number, but got ${xs[i]}.`);
  }
}

/**
 * Complementary error function `erfc(x) = 1 - erf(x)` in float64, accurate to about 1e-15:
 * the Maclaurin series `erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))` for
 * `|x| < 3`, and the continued fraction
 * `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` beyond.
 */
function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0; // exp(-x^2) underflows
  // modified Lentz evaluation of the continued fraction with partial numerators k/2
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/**
 * Upper tail of the standard normal, `P(Z > z) = erfc(z / sqrt(2)) / 2`, accurate far into
 * the tail (no `1 - cdf` cancellation).
 *
 * @example
 * ```ts
 * normalSurvival(1.959963984540054); // 0.025
 * ```
 * @category Statistics
 */
export function normalSurvival(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

// ---------------------------------------------------------------------------------------------
// Bootstrap interval

/** Options of {@link bootstrapInterval}. */
export interface BootstrapOptions {
  /** Coverage of the interval. Default 0.95. */
  level?: number;
  /** Number of bootstrap resamples B. Default 10000. */
  resamples?: number;
  /** Seed of the resampling; equal seeds give equal intervals. Default 0. */
  seed?: number;
  /** The statistic of a sample. Default: the mean. */
  statistic?: (xs: number[]) => number;
}

/** A point estimate and its interval. */
export interface Interval {
  /** The statistic of the whole sample. */
  estimate: number;
  /** Lower end, the `(1 - level) / 2` quantile of the bootstrap distribution. */
  low: number;
  /** Upper end, the `(1 + level) / 2` quantile of the bootstrap distribution. */
  high: number;
}

/**
 * Percentile bootstrap interval (Efron): draw B resamples of size n with replacement, compute
 * the statistic `s*_b` on each, and return the `(1 - level)/2` and `(1 + level)/2` quantiles
 * of `{s*_b}` (linear interpolation between order statistics), with the statistic of the
 * whole sample as the estimate. Typical use: the mean of a metric over seeds or slides.
 *
 * @param values the sample, [n] (n >= 1, finite).
 * @example
 * ```ts
 * // accuracy of 5 cohort seeds
 * const { estimate, low, high } = bootstrapInterval([0.81, 0.84, 0.79, 0.86, 0.83], { seed: 1 });
 * // estimate 0.826; [low, high] brackets it, about [0.804, 0.846]
 * ```
 * @category Statistics
 */
export function bootstrapInterval(values: readonly number[], options: BootstrapOptions = {}): Interval {
  const { level = 0.95, resamples = 10000, seed = 0, statistic = mean } = options;
  checkLevel(level);
  checkResamples(resamples);
  const n = values.length;
  if (n === 0) throw new ValueError('Expected at least one value to bootstrap, but got none.');
  checkFinite('values', values);
  const rng = new Rng(seed);
  const stats = new Array<number>(resamples);
  const sample = new Array<number>(n);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) sample[i] = values[rng.int(n)];
    stats[b] = statistic(sample.slice());
  }
  stats.sort((a, b) => a - b);
  return {
    estimate: statistic(values.slice()),
    low: sortedQuantile(stats, (1 - level) / 2),
    high: sortedQuantile(stats, (1 + level) / 2),
  };
}

// ---------------------------------------------------------------------------------------------
// McNemar

/** Result of {@link mcnemarExact}. */
export interface McNemarResult {
  /** Samples model A got right and model B got wrong. */
  aOnly: number;
  /** Samples model B got right and model A got wrong. */
  bOnly: number;
  /** Two-sided exact p-value of "A and B are equally accurate". */
  pValue: number;
}

function toCorrect(name: string, xs: ArrayLike<boolean | number>, i: number): boolean {
  const v = xs[i];
  if (v === true || v === 1) return true;
  if (v === false || v === 0) return false;
  throw new ValueError(`Expected ${name}[${i}] to be true/false or 1/0, but got ${String(v)}.`);
}

/**
 * Lower tail of Binomial(n, 1/2): `P(X <= k) = 2^-n sum_{i<=k} C(n, i)`, summed in log space
 * so that n in the thousands neither overflows nor underflows.
 */
function binomialHalfCdf(k: number, n: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (n <= 1000) {
    // C(n, i) <= C(1000, 500) ~ 2.7e299 fits a float64; small cases come out exact
    let c = 1;
    let s = 1;
    for (let i = 1; i <= k; i++) {
      c = (c * (n - i + 1)) / i;
      s += c;
    }
    return s / 2 ** n;
  }
  // log C(n, i) built incrementally: C(n, i) = C(n, i-1) (n - i + 1) / i
  let logC = 0;
  const logs: number[] = [0];
  for (let i = 1; i <= k; i++) {
    logC += Math.log(n - i + 1) - Math.log(i);
    logs.push(logC);
  }
  const top = logs[logs.length - 1]; // the largest term for k <= n/2
  let s = 0;
  for (const l of logs) s += Math.exp(l - top);
  return Math.exp(top + Math.log(s) - n * Math.LN2);
}

/**
 * McNemar's exact test on paired correctness: of the `n = aOnly + bOnly` discordant samples
 * (one model right, the other wrong), under the null each is A's with probability 1/2, so
 * `p = min(1, 2 P(X <= min(aOnly, bOnly)))` with `X ~ Binomial(n, 1/2)` (the two-sided exact
 * binomial test, as `scipy.stats.binomtest(aOnly, n).pvalue`). Concordant samples carry no
 * information; with no discordant sample the p-value is 1.
 *
 * @param correctA whether model A classified sample i right, [n] (boolean or 1/0).
 * @param correctB the same for model B on the same samples, [n].
 * @example
 * ```ts
 * // A alone right on 1 slide, B alone on 5: p = 2 (C(6,0) + C(6,1)) / 2^6 = 0.21875
 * mcnemarExact([1, 0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1, 1]); // { aOnly: 1, bOnly: 5, pValue: 0.21875 }
 * ```
 * @category Statistics
 */
export function mcnemarExact(correctA: ArrayLike<boolean | number>, correctB: ArrayLike<boolean | number>): McNemarResult {
  if (correctA.length !== correctB.length) {
    throw new ShapeError(`Error in mcnemarExact: expected paired results on the same samples, but got ${correctA.length} and ${correctB.length}.`);
  }
  let aOnly = 0;
  let bOnly = 0;
  for (let i = 0; i < correctA.length; i++) {
    const a = toCorrect('correctA', correctA, i);
    const b = toCorrect('correctB', correctB, i);
    if (a && !b) aOnly++;
    else if (b && !a) bOnly++;
  }
  const n = aOnly + bOnly;
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(Math.min(aOnly, bOnly), n));
  return { aOnly, bOnly, pValue };
}

// ---------------------------------------------------------------------------------------------
// Paired bootstrap of the AUC

/** Options of {@link pairedBootstrapAuc}. */
export interface PairedBootstrapAucOptions {
  /** Number of bootstrap resamples B. Default 10000. */
  resamples?: number;
  /** Seed of the resampling. Default 0. */
  seed?: number;
  /** Coverage of the interval of the difference. Default 0.95. */
  level?: number;
}

/** Result of {@link pairedBootstrapAuc}. */
export interface PairedAucComparison {
  /** AUC of model A on the whole cohort. */
  aucA: number;
  /** AUC of model B on the whole cohort. */
  aucB: number;
  /** `aucA - aucB`. */
  difference: number;
  /** Lower end of the percentile interval of the difference. */
  low: number;
  /** Upper end of the percentile interval of the difference. */
  high: number;
  /** Two-sided bootstrap p-value of "the AUCs are equal". */
  pValue: number;
}

/** Scores of class 1 `[n]` (a binary AUC), or class probabilities `[n, C]` (the macro one-vs-rest AUC of `rocAuc`). */
export type Scores = ArrayLike<number> | ProbabilityRows;

function aucOf(labels: ArrayLike<number>, scores: Scores): number {
  return typeof scores[0] === 'number' ? binaryAuc(labels, scores as ArrayLike<number>) : rocAuc(labels, scores as ProbabilityRows);
}

/** One one-vs-rest AUC problem, sorted once: slides by score, with the tie groups marked. */
interface RankedProblem {
  order: number[];
  /** `groupEnd[t]`: one past the last position of the tie group starting at position t. */
  groupEnd: number[];
  positive: boolean[];
}

function rankProblem(scores: readonly number[], positive: boolean[]): RankedProblem {
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new ValueError(`Expected finite scores, but slide ${i} has ${scores[i]}.`);
  }
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const groupEnd = new Array<number>(order.length);
  for (let t = 0; t < order.length; ) {
    let e = t + 1;
    while (e < order.length && scores[order[e]] === scores[order[t]]) e++;
    groupEnd[t] = e;
    t = e;
  }
  return { order, groupEnd, positive };
}

/**
 * AUC of a resample given as a multiplicity per slide (`weights[i]` copies of slide i):
 * `sum_{pos p, neg q} w_p w_q H(s_p - s_q) / (W+ W-)`, H(0) = 1/2, in one sweep of the sorted
 * slides (the same value as {@link binaryAuc} on the expanded resample).
 */
function weightedAuc(problem: RankedProblem, weights: readonly number[]): number {
  const { order, groupEnd, positive } = problem;
  let negBelow = 0;
  let posTotal = 0;
  let wins = 0;
  for (let t = 0; t < order.length; t = groupEnd[t]) {
    let pos = 0;
    let neg = 0;
    for (let k = t; k < groupEnd[t]; k++) {
      const i = order[k];
      if (positive[i]) pos += weights[i];
      else neg += weights[i];
    }
    wins += pos * (negBelow + neg / 2);
    negBelow += neg;
    posTotal += pos;
  }
  return wins / (posTotal * negBelow);
}

/** The one-vs-rest problems whose mean is {@link aucOf}: one for binary scores, C for C > 2 classes. */
function aucProblems(labels: ArrayLike<number>, scores: Scores, classes: number[]): RankedProblem[] {
  const n = labels.length;
  if (typeof scores[0] === 'number') {
    const s = Array.from(scores as ArrayLike<number>);
    return [rankProblem(s, Array.from({ length: n }, (_, i) => labels[i] === 1))];
  }
  const rows = scores as ProbabilityRows;
  const c = rows[0].length;
  const column = (k: number) => Array.from({ length: n }, (_, i) => rows[i][k]);
  if (c === 2) return [rankProblem(column(1), Array.from({ length: n }, (_, i) => labels[i] === 1))];
  return classes.map((k) => rankProblem(column(k), Array.from({ length: n }, (_, i) => labels[i] === k)));
}

function meanWeightedAuc(problems: readonly RankedProblem[], weights: readonly number[]): number {
  let s = 0;
  for (const p of problems) s += weightedAuc(p, weights);
  return s / problems.length;
}

/**
 * Paired, label-stratified bootstrap comparison of two models' AUCs on the same slides. Each
 * resample draws, for every class c, `n_c` slides with replacement from the slides of class
 * c (so every resample holds every class and both AUCs are defined), and computes
 * `d*_b = AUC_A* - AUC_B*` on the same drawn slides (the pairing). The interval is the
 * percentile interval of `{d*_b}`; the two-sided p-value is
 * `p = min(1, 2 min(1 + #{d*_b <= 0}, 1 + #{d*_b >= 0}) / (B + 1))`
 * (the +1 keeps a finite B from reporting p = 0; identical models give p = 1).
 *
 * @param labels true classes, [n]; at least two classes present.
 * @param probsA model A's scores: P(class 1) per slide, [n], or class probabilities `[n][C]`
 *   (then the AUC is {@link rocAuc}'s: binary on class 1 for C = 2, macro one-vs-rest above).
 * @param probsB model B's scores, same form as `probsA`.
 * @example
 * ```ts
 * const r = pairedBootstrapAuc(labels, sashaP1, randomPolicyP1, { seed: 1 });
 * // r.difference = aucA - aucB, [r.low, r.high] its 95 % interval, r.pValue
 * ```
 * @category Statistics
 */
export function pairedBootstrapAuc(
  labels: ArrayLike<number>,
  probsA: Scores,
  probsB: Scores,
  options: PairedBootstrapAucOptions = {},
): PairedAucComparison {
  const { resamples = 10000, seed = 0, level = 0.95 } = options;
  checkLevel(level);
  checkResamples(resamples);
  const n = labels.length;
  if (probsA.length !== n || probsB.length !== n) {
    throw new ShapeError(`Error in pairedBootstrapAuc: expected one score per label (${n}), but got ${probsA.length} for A and ${probsB.length} for B.`);
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0)) throw new ValueError(`Expected labels[${i}] to be an integer class >= 0, but got ${y}.`);
    const list = byClass.get(y) ?? [];
    list.push(i);
    byClass.set(y, list);
  }
  if (byClass.size < 2) {
    throw new ValueError(`Error in pairedBootstrapAuc: the AUC needs slides of at least two classes, but every label is ${labels[0]}.`);
  }
  const aucA = aucOf(labels, probsA);
  const aucB = aucOf(labels, probsB);
  if (!Number.isFinite(aucA) || !Number.isFinite(aucB)) {
    throw new ValueError(`Error in pairedBootstrapAuc: the AUC is undefined on these labels (A ${aucA}, B ${aucB}).`);
  }
  const strata = [...byClass.values()];
  const classes = [...byClass.keys()].sort((p, q) => p - q);
  const problemsA = aucProblems(labels, probsA, classes);
  const problemsB = aucProblems(labels, probsB, classes);
  const rng = new Rng(seed);
  const diffs = new Array<number>(resamples);
  const weights = new Array<number>(n);
  for (let b = 0; b < resamples; b++) {
    weights.fill(0);
    for (const members of strata) {
      for (let j = 0; j < members.length; j++) weights[members[rng.int(members.length)]]++;
    }
    diffs[b] = meanWeightedAuc(problemsA, weights) - meanWeightedAuc(problemsB, weights);
  }
  let atMost = 0;
  let atLeast = 0;
  for (const d of diffs) {
    if (d <= 0) atMost++;
    if (d >= 0) atLeast++;
  }
  diffs.sort((a, b) => a - b);
  return {
    aucA,
    aucB,
    difference: aucA - aucB,
    low: sortedQuantile(diffs, (1 - level) / 2),
    high: sortedQuantile(diffs, (1 + level) / 2),
    pValue: Math.min(1, (2 * Math.min(1 + atMost, 1 + atLeast)) / (resamples + 1)),
  };
}

// ---------------------------------------------------------------------------------------------
// Mann-Whitney U

/** Result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  /** `U_x = R_x - n_x (n_x + 1) / 2`: the number of pairs (x_i, y_j) with x_i > y_j, ties one half. */
  u: number;
  /** Two-sided p-value of "x and y come from the same distribution". */
  pValue: number;
  /** `'exact'` (no ties, a sample of at most 8 values) or `'asymptotic'` (normal, tie and continuity corrected). */
  method: 'exact' | 'asymptotic';
}

/** Largest sample size for which {@link mannWhitneyU} computes the exact distribution. */
const EXACT_MAX_SIZE = 20000;

/**
 * Exact lower tail `P(U' <= L)` of the null distribution of U for samples of m and n values
 * without ties. The counts of U over all `C(m + n, m)` orderings are the coefficients of the
 * Gaussian binomial `[m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)`, built one
 * factor at a time in exact integers (every partial product `[n + i choose i]_q` is a
 * polynomial), truncated at degree L. Cost O(m^2 n) additions.
 */
function exactLowerTail(m: number, n: number, L: number): number {
  if (L < 0) return 0;
  let c: bigint[] = [1n];
  for (let i = 1; i <= m; i++) {
    const size = Math.min(L, i * n) + 1;
    const next = new Array<bigint>(size).fill(0n);
    for (let u = 0; u < size; u++) {
      // multiply by (1 - q^(n+i)) ...
      let p = u < c.length ? c[u] : 0n;
      const back = u - (n + i);
      if (back >= 0 && back < c.length) p -= c[back];
      // ... and divide by (1 - q^i): r[u] = p[u] + r[u - i]
      next[u] = u >= i ? p + next[u - i] : p;
    }
    c = next;
  }
  let tail = 0n;
  for (const v of c) tail += v;
  let total = 1n; // C(m + n, m)
  for (let i = 1; i <= m; i++) total = (total * BigInt(n + i)) / BigInt(i);
  return Number(tail) / Number(total);
}

/**
 * Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of whether `x` and `y` come from the same
 * distribution. With average ranks `R` over the pooled sample,
 * `U_x = R_x - n_x (n_x + 1) / 2` and `U = max(U_x, n_x n_y - U_x)`.
 * - exact (no ties, `min(n_x, n_y) <= 8` and `max(n_x, n_y) <= 20000`): `p = min(1, 2 P(U' >= U))`
 *   under the exact null distribution of U' (all orderings equally likely);
 * - asymptotic otherwise: `mu = n_x n_y / 2`,
 *   `sigma^2 = n_x n_y / 12 ((n + 1) - sum_t (t^3 - t) / (n (n - 1)))` over tie groups t,
 *   `z = (U - mu - 1/2) / sigma` (continuity correction), `p = min(1, 2 P(Z > z))`.
 * This is the rule of `scipy.stats.mannwhitneyu(x, y, method='auto')` (SciPy >= 1.7), which
 * has no cap on the larger sample.
 *
 * @param x first sample, [n_x] (n_x >= 1, finite), e.g. tumour fraction of zoomed patches.
 * @param y second sample, [n_y] (n_y >= 1, finite), e.g. that of the patches not zoomed.
 * @example
 * ```ts
 * // every x below every y: U_x = 0, P(U' <= 0) = 1 / C(6, 3) = 1/20 -> p = 0.1
 * mannWhitneyU([1, 2, 3], [4, 5, 6]); // { u: 0, pValue: 0.1, method: 'exact' }
 * ```
 * @category Statistics
 */
export function mannWhitneyU(x: ArrayLike<number>, y: ArrayLike<number>): MannWhitneyResult {
  const nx = x.length;
  const ny = y.length;
  if (nx === 0 || ny === 0) {
    throw new ValueError(`Error in mannWhitneyU: expected two non-empty samples, but got sizes ${nx} and ${ny}.`);
  }
  checkFinite('x', x);
  checkFinite('y', y);
  const n = nx + ny;
  const pooled = Array.from({ length: n }, (_, i) => (i < nx ? x[i] : y[i - nx]));
  const { ranks, tieTerm } = averageRanks(pooled);
  let rankSumX = 0;
  for (let i = 0; i < nx; i++) rankSumX += ranks[i];
  const u = rankSumX - (nx * (nx + 1)) / 2;
  const big = Math.max(u, nx * ny - u);
  if (tieTerm === 0 && Math.min(nx, ny) <= 8 && Math.max(nx, ny) <= EXACT_MAX_SIZE) {
    // the null distribution is symmetric about nx ny / 2: P(U' >= big) = P(U' <= nx ny - big)
    const tail = exactLowerTail(Math.min(nx, ny), Math.max(nx, ny), nx * ny - big);
    return { u, pValue: Math.min(1, 2 * tail), method: 'exact' };
  }
  const mu = (nx * ny) / 2;
  const variance = ((nx * ny) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) return { u, pValue: 1, method: 'asymptotic' }; // every value tied
  const z = (big - mu - 0.5) / Math.sqrt(variance);
  return { u, pValue: Math.min(1, 2 * normalSurvival(z)), method: 'asymptotic' };
}

// ---------------------------------------------------------------------------------------------
// Two models on the same slides

/** Result of {@link comparePredictions}. */
export interface PairedComparison {
  /** Accuracy of model A and of model B (argmax of the probabilities). */
  accuracyA: number;
  accuracyB: number;
  /** McNemar's exact test on per-slide correctness. */
  mcnemar: McNemarResult;
  /** The paired, label-stratified bootstrap of the AUC difference. */
  auc: PairedAucComparison;
}

/**
 * Compares two models' predictions on the same slides: accuracy of each, McNemar's exact test
 * on which slides each gets right ({@link mcnemarExact}), and the paired bootstrap of the AUC
 * difference ({@link pairedBootstrapAuc}). The predicted class is the argmax of each row.
 *
 * @param labels true classes, [n].
 * @param probsA model A's class probabilities, `[n][C]`.
 * @param probsB model B's, same slides in the same order.
 * @example
 * ```ts
 * const c = comparePredictions(labels, sasha.map((s) => s.probs), random.map((s) => s.probs), { seed: 1 });
 * c.mcnemar.pValue; c.auc.difference; c.auc.pValue;
 * ```
 * @category Statistics
 */
export function comparePredictions(
  labels: ArrayLike<number>,
  probsA: ProbabilityRows,
  probsB: ProbabilityRows,
  options: PairedBootstrapAucOptions = {},
): PairedComparison {
  if (probsA.length !== labels.length || probsB.length !== labels.length) {
    throw new ShapeError(`Error in comparePredictions: expected one probability row per label (${labels.length}), but got ${probsA.length} and ${probsB.length}.`);
  }
  const right = (rows: ProbabilityRows) => Array.from({ length: labels.length }, (_, i) => argmax(rows[i]) === labels[i]);
  const a = right(probsA);
  const b = right(probsB);
  const mean = (xs: boolean[]) => xs.filter(Boolean).length / Math.max(1, xs.length);
  return { accuracyA: mean(a), accuracyB: mean(b), mcnemar: mcnemarExact(a, b), auc: pairedBootstrapAuc(labels, probsA, probsB, options) };
}
