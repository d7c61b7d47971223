/**
 * Classification metrics on plain arrays: accuracy, balanced accuracy, ROC AUC (ties counted
 * one half), F1, expected calibration error and the confusion matrix. They take labels and
 * probabilities as numbers (no tensors), so they run anywhere and never hold GPU memory.
 *
 * Conventions follow the reference code (docs/reference-code.md §8.1): for two classes, AUC is
 * computed on P(class 1) and F1 is the binary F1 of class 1 on the argmax label; for more
 * classes, AUC is the macro one-vs-rest mean and F1 the macro mean.
 *
 * @packageDocumentation
 */
import { ShapeError, ValueError } from '../core/errors.js';
import { averageRanks } from './ranks.js';

/** A matrix of class probabilities, one row per sample: `[n][C]`. */
export type ProbabilityRows = ArrayLike<ArrayLike<number>>;

function checkLabels(name: string, labels: ArrayLike<number>, numClasses?: number): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || (numClasses !== undefined && y >= numClasses)) {
      const range = numClasses !== undefined ? `[0, ${numClasses})` : '[0, inf)';
      throw new ValueError(`Expected ${name}[${i}] to be an integer class in ${range}, but got ${y}.`);
    }
  }
}

function checkSameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) {
    throw new ShapeError(`Error in ${what}: expected as many predictions as labels, but got ${b.length} and ${a.length}.`);
  }
  if (a.length === 0) throw new ValueError(`Error in ${what}: expected at least one sample, but got none.`);
}

/** Index of the largest value (the first one on ties, as `argmax` in PyTorch and NumPy). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

/**
 * Fraction of correct predictions: `mean(yPred == yTrue)`.
 *
 * @param yTrue true class of each sample, [n].
 * @param yPred predicted class of each sample, [n].
 * @example
 * ```ts
 * accuracy([0, 1, 1, 0], [0, 1, 0, 0]); // 0.75
 * ```
 * @category Metrics
 */
export function accuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  checkSameLength(yTrue, yPred, 'accuracy');
  let hit = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hit++;
  return hit / yTrue.length;
}

/**
 * Confusion matrix `M[t][p]` = number of samples of true class t predicted as p.
 *
 * @param numClasses C (default: 1 + the largest label seen).
 * @returns a new `C x C` array of counts (rows: true class, columns: predicted class).
 * @example
 * ```ts
 * confusionMatrix([0, 1, 1, 0], [0, 1, 0, 0]); // [[2, 0], [1, 1]]
 * ```
 * @category Metrics
 */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses?: number): number[][] {
  checkSameLength(yTrue, yPred, 'confusionMatrix');
  let c = numClasses ?? 0;
  if (numClasses === undefined) {
    for (let i = 0; i < yTrue.length; i++) c = Math.max(c, yTrue[i] + 1, yPred[i] + 1);
  }
  checkLabels('yTrue', yTrue, c);
  checkLabels('yPred', yPred, c);
  const m = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]][yPred[i]]++;
  return m;
}

/**
 * Balanced accuracy: the mean recall over the classes present in `yTrue`
 * (`mean_c TP_c / (TP_c + FN_c)`), as scikit-learn's `balanced_accuracy_score`.
 *
 * @example
 * ```ts
 * // class 0: 2 of 2 right; class 1: 1 of 2 right -> (1 + 0.5) / 2
 * balancedAccuracy([0, 1, 1, 0], [0, 1, 0, 0]); // 0.75
 * ```
 * @category Metrics
 */
export function balancedAccuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const m = confusionMatrix(yTrue, yPred);
  let sum = 0;
  let present = 0;
  for (let c = 0; c < m.length; c++) {
    const support = m[c].reduce((a, b) => a + b, 0);
    if (support === 0) continue;
    sum += m[c][c] / support;
    present++;
  }
  return sum / present;
}

/** Options of {@link f1Score}. */
export interface F1Options {
  /**
   * `'binary'`: F1 of `positiveClass` (default when every label is 0 or 1);
   * `'macro'`: unweighted mean of the per-class F1 (default otherwise);
   * `'micro'`: F1 of the pooled counts (equals accuracy for single-label data).
   */
  average?: 'binary' | 'macro' | 'micro';
  /** The positive class for `'binary'`. Default 1. */
  positiveClass?: number;
  /** C; default 1 + the largest label seen. */
  numClasses?: number;
}

/**
 * F1 score `2 TP / (2 TP + FP + FN)`; a class with no true and no predicted sample scores 0
 * (torchmetrics' `zero_division = 0`).
 *
 * @example
 * ```ts
 * // positives: TP = 1 (index 1), FN = 1 (index 2), FP = 0 -> 2 / (2 + 0 + 1)
 * f1Score([0, 1, 1, 0], [0, 1, 0, 0]); // 0.6667
 * ```
 * @category Metrics
 */
export function f1Score(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, options: F1Options = {}): number {
  const m = confusionMatrix(yTrue, yPred, options.numClasses);
  const c = m.length;
  const f1Of = (k: number) => {
    let fp = 0;
    let fn = 0;
    for (let j = 0; j < c; j++) {
      if (j === k) continue;
      fp += m[j][k];
      fn += m[k][j];
    }
    const tp = m[k][k];
    return 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  };
  const average = options.average ?? (c <= 2 ? 'binary' : 'macro');
  if (average === 'binary') {
    const pos = options.positiveClass ?? 1;
    if (!(Number.isInteger(pos) && pos >= 0)) throw new ValueError(`Expected positiveClass to be a class index, but got ${pos}.`);
    return pos < c ? f1Of(pos) : 0;
  }
  if (average === 'micro') {
    let tp = 0;
    for (let k = 0; k < c; k++) tp += m[k][k];
    // Single-label data: every miss is one FP and one FN, so micro-F1 = accuracy.
    return tp / yTrue.length;
  }
  if (average !== 'macro') throw new ValueError(`Expected average to be one of 'binary', 'macro', 'micro', but got '${String(average)}'.`);
  let sum = 0;
  for (let k = 0; k < c; k++) sum += f1Of(k);
  return sum / c;
}

/**
 * Area under the ROC curve of a binary problem: the probability that a random positive is
 * scored above a random negative, ties counted one half (the Mann-Whitney U statistic:
 * `AUC = (R+ - n+ (n+ + 1) / 2) / (n+ n-)` with average ranks for tied scores).
 *
 * @param yTrue labels, 1 = positive, 0 = negative, [n].
 * @param scores score of the positive class (e.g. P(class 1)), [n].
 * @returns the AUC, or `NaN` when `yTrue` holds only one class (AUC is undefined then).
 * @example
 * ```ts
 * // pairs (pos, neg): (0.8,0.1) win, (0.8,0.4) win, (0.4,0.1) win, (0.4,0.4) tie -> 3.5 / 4
 * binaryAuc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4]); // 0.875
 * ```
 * @category Metrics
 */
export function binaryAuc(yTrue: ArrayLike<number>, scores: ArrayLike<number>): number {
  checkSameLength(yTrue, scores, 'binaryAuc');
  const n = yTrue.length;
  for (let i = 0; i < n; i++) {
    if (yTrue[i] !== 0 && yTrue[i] !== 1) throw new ValueError(`Expected binary labels 0 or 1, but got ${yTrue[i]}.`);
    if (!Number.isFinite(scores[i])) throw new ValueError(`Expected finite scores, but got ${scores[i]}.`);
  }
  const { ranks } = averageRanks(scores);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; i++) {
    if (yTrue[i] === 1) {
      nPos++;
      rankSumPos += ranks[i];
    }
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * One-vs-rest ROC AUC of every class: entry c is {@link binaryAuc} of "class c" against the
 * others, scored by P(class c).
 *
 * @param yTrue true classes, [n].
 * @param probs class probabilities, `[n][C]`.
 * @returns `[C]` AUCs; `NaN` for a class absent from `yTrue` (or the only one present).
 * @example
 * ```ts
 * // class 2 is ranked first only on its own sample; class 0 ties with class 1 on sample 1
 * perClassAuc([0, 1, 2], [[0.6, 0.3, 0.1], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7]]); // [1, 1, 1]
 * ```
 * @category Metrics
 */
export function perClassAuc(yTrue: ArrayLike<number>, probs: ProbabilityRows): number[] {
  checkSameLength(yTrue, probs, 'perClassAuc');
  const c = probs[0].length;
  checkLabels('yTrue', yTrue, c);
  return Array.from({ length: c }, (_, k) =>
    binaryAuc(
      Array.from(yTrue, (y) => (y === k ? 1 : 0)),
      Array.from({ length: probs.length }, (_, i) => probs[i][k]),
    ),
  );
}

/**
 * ROC AUC from class probabilities. Two classes: {@link binaryAuc} on P(class 1). More
 * classes: the macro mean of the one-vs-rest AUCs ({@link perClassAuc}) of the classes present
 * in `yTrue` (as torchmetrics `AUROC(task='multiclass', average='macro')` and scikit-learn `ovr`).
 *
 * @param yTrue true classes, [n].
 * @param probs class probabilities, `[n][C]`.
 * @returns the AUC, or `NaN` when fewer than two classes occur in `yTrue`.
 * @example
 * ```ts
 * rocAuc([1, 0], [[0.3, 0.7], [0.9, 0.1]]); // 1
 * ```
 * @category Metrics
 */
export function rocAuc(yTrue: ArrayLike<number>, probs: ProbabilityRows): number {
  checkSameLength(yTrue, probs, 'rocAuc');
  const c = probs[0].length;
  checkLabels('yTrue', yTrue, c);
  if (c === 2) {
    return binaryAuc(
      yTrue,
      Array.from({ length: probs.length }, (_, i) => probs[i][1]),
    );
  }
  const present = perClassAuc(yTrue, probs).filter((a) => !Number.isNaN(a));
  return present.length === 0 ? NaN : present.reduce((a, b) => a + b, 0) / present.length;
}

/** One bin of a reliability diagram. */
export interface ReliabilityBin {
  /** Lower edge of the bin's confidence range (exclusive, except 0 for the first bin). */
  lower: number;
  /** Upper edge (inclusive). */
  upper: number;
  /** Samples whose top-label confidence falls in the bin. */
  count: number;
  /** Fraction of them predicted right (`NaN` for an empty bin). */
  accuracy: number;
  /** Their mean confidence (`NaN` for an empty bin). */
  confidence: number;
}

/**
 * The bins of a reliability diagram of the top-label confidence (Guo et al., 2017): sample i
 * goes to bin b when `b / bins < max_c p_ic <= (b + 1) / bins` (a confidence of 0 to bin 0);
 * each bin reports its count, accuracy and mean confidence. A calibrated model has
 * `accuracy = confidence` in every bin; {@link expectedCalibrationError} is
 * `sum_b (count_b / n) |accuracy_b - confidence_b|`.
 *
 * @param yTrue true classes, [n].
 * @param probs class probabilities, `[n][C]`.
 * @param bins number of equal-width bins (default 15).
 * @example
 * ```ts
 * const b = reliabilityBins([0, 1], [[0.9, 0.1], [0.6, 0.4]], 10);
 * // b[8] = { lower: 0.8, upper: 0.9, count: 1, accuracy: 1, confidence: 0.9 }
 * // b[5] = { lower: 0.5, upper: 0.6, count: 1, accuracy: 0, confidence: 0.6 }
 * ```
 * @category Metrics
 */
export function reliabilityBins(yTrue: ArrayLike<number>, probs: ProbabilityRows, bins = 15): ReliabilityBin[] {
  checkSameLength(yTrue, probs, 'reliabilityBins');
  if (!(Number.isInteger(bins) && bins > 0)) throw new ValueError(`Expected bins to be a positive integer, but got ${bins}.`);
  checkLabels('yTrue', yTrue, probs[0].length);
  const count = new Array<number>(bins).fill(0);
  const correct = new Array<number>(bins).fill(0);
  const confSum = new Array<number>(bins).fill(0);
  for (let i = 0; i < yTrue.length; i++) {
    const row = probs[i];
    const pred = argmax(row);
    const conf = row[pred];
    if (!(conf >= 0 && conf <= 1)) throw new ValueError(`Expected probabilities in [0, 1], but sample ${i} has confidence ${conf}.`);
    // bin b holds (b/bins, (b+1)/bins]; a confidence of exactly 0 goes to bin 0.
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    count[b]++;
    confSum[b] += conf;
    if (pred === yTrue[i]) correct[b]++;
  }
  return count.map((n, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: n,
    accuracy: n === 0 ? NaN : correct[b] / n,
    confidence: n === 0 ? NaN : confSum[b] / n,
  }));
}

/**
 * Expected calibration error of the top-label confidence (Guo et al., 2017):
 * `ECE = sum_b (|B_b| / n) |acc(B_b) - conf(B_b)|`, where sample i goes to bin b when
 * `b / bins < max_c p_ic <= (b + 1) / bins`.
 *
 * @param yTrue true classes, [n].
 * @param probs class probabilities, `[n][C]`.
 * @param bins number of equal-width bins (default 15, as torchmetrics and Guo et al.).
 * @example
 * ```ts
 * // confidences 0.9 (right) and 0.6 (wrong) fall in different bins:
 * // (1/2)|1 - 0.9| + (1/2)|0 - 0.6| = 0.35
 * expectedCalibrationError([0, 1], [[0.9, 0.1], [0.6, 0.4]]); // 0.35
 * ```
 * @category Metrics
 */
export function expectedCalibrationError(yTrue: ArrayLike<number>, probs: ProbabilityRows, bins = 15): number {
  return calibrationErrorOfBins(reliabilityBins(yTrue, probs, bins));
}

/**
 * The expected calibration error of reliability bins: `ECE = sum_b (|B_b| / n) |acc(B_b) - conf(B_b)|`
 * with `n = sum_b |B_b|`. Bins of several sample sets with the same edges can be pooled first
 * (counts summed, accuracy and confidence averaged with the counts as weights): the result is
 * the ECE of the pooled samples.
 *
 * @param bins from {@link reliabilityBins}; empty bins (count 0) are skipped.
 * @example
 * ```ts
 * calibrationErrorOfBins(reliabilityBins([0, 1], [[0.9, 0.1], [0.6, 0.4]])); // 0.35
 * ```
 * @category Metrics
 */
export function calibrationErrorOfBins(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((a, b) => a + b.count, 0);
  let ece = 0;
  for (const b of bins) if (b.count > 0) ece += (b.count / n) * Math.abs(b.accuracy - b.confidence);
  return ece;
}

/** Every metric of a set of slide predictions. */
export interface ClassificationMetrics {
  /** Fraction of correct argmax predictions. */
  accuracy: number;
  /** Mean recall over the classes present. */
  balancedAccuracy: number;
  /** ROC AUC (binary on P(class 1); macro one-vs-rest otherwise); NaN with one class. */
  auc: number;
  /** One-vs-rest AUC of each class, `[C]` ({@link perClassAuc}); NaN for an absent class. */
  perClassAuc: number[];
  /** Binary F1 of class 1 for two classes, macro F1 otherwise. */
  f1: number;
  /** Expected calibration error, 15 bins. */
  ece: number;
  /** Number of samples. */
  n: number;
  /** Confusion matrix, rows true class, columns predicted class. */
  confusion: number[][];
}

/**
 * All the metrics of {@link ClassificationMetrics} from labels and class probabilities; the
 * predicted class is the argmax.
 *
 * @param yTrue true classes, [n].
 * @param probs class probabilities, `[n][C]`.
 * @example
 * ```ts
 * const m = classificationMetrics([0, 1], [[0.8, 0.2], [0.3, 0.7]]);
 * // m.accuracy 1, m.auc 1, m.f1 1, m.n 2
 * ```
 * @category Metrics
 */
export function classificationMetrics(yTrue: ArrayLike<number>, probs: ProbabilityRows): ClassificationMetrics {
  checkSameLength(yTrue, probs, 'classificationMetrics');
  const c = probs[0].length;
  if (c < 2) throw new ShapeError(`Expected probabilities over at least 2 classes, but got rows of length ${c}.`);
  for (let i = 0; i < probs.length; i++) {
    if (probs[i].length !== c) throw new ShapeError(`Expected every probability row to have ${c} entries, but row ${i} has ${probs[i].length}.`);
  }
  checkLabels('yTrue', yTrue, c);
  const yPred = Array.from({ length: probs.length }, (_, i) => argmax(probs[i]));
  return {
    accuracy: accuracy(yTrue, yPred),
    balancedAccuracy: balancedAccuracy(yTrue, yPred),
    auc: rocAuc(yTrue, probs),
    perClassAuc: perClassAuc(yTrue, probs),
    f1: f1Score(yTrue, yPred, { numClasses: c, average: c === 2 ? 'binary' : 'macro' }),
    ece: expectedCalibrationError(yTrue, probs),
    n: yTrue.length,
    confusion: confusionMatrix(yTrue, yPred, c),
  };
}

/** Mean and (population) standard deviation of a list of numbers, for results over seeds. */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) throw new ValueError('Expected at least one value, but got none.');
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std };
}
