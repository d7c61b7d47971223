/**
 * The losses HAFED is trained with (ACMIL's, with unit weights): slide cross-entropy, mean
 * branch cross-entropy and the similarity ("diversity") loss between branch attention maps.
 * Each is a pure function returning a new scalar owned by the caller.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { COSINE_EPS, crossEntropy } from '../core/ops.js';
import { ShapeError, ValueError, fmtShape } from '../core/errors.js';
import type { HafedLosses, HafedOutput } from './types.js';

function checkLabel(label: number, numClasses: number, where: string): void {
  if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
    throw new ValueError(`Error in ${where}: expected a label in [0, ${numClasses}), but got ${label}. Fix the slide's label or numClasses.`);
  }
}

/**
 * Cross-entropy of the slide logits against the slide label: `-log softmax(logits)[y]`.
 *
 * **Input shape:** `logits` [1, C]. **Output:** scalar.
 * @param label the slide's class in [0, C).
 * @returns a new scalar owned by the caller.
 * @example
 * ```ts
 * slideLoss(tf.tensor2d([[0, 0]]), 1); // ln 2 = 0.6931
 * ```
 * @category HAFED
 */
export function slideLoss(logits: tf.Tensor2D, label: number): tf.Scalar {
  if (logits.rank !== 2 || logits.shape[0] !== 1) {
    throw new ShapeError(`Error in slideLoss: expected logits [1, C], but got ${fmtShape(logits.shape)}.`);
  }
  checkLabel(label, logits.shape[1], 'slideLoss');
  return crossEntropy(logits, [label]);
}

/**
 * Mean cross-entropy of the M branch heads against the slide label (each branch is asked to
 * classify the slide from its own pooling): `(1/M) sum_m -log softmax(branchLogits_m)[y]`.
 * This equals PyTorch's `CrossEntropyLoss(sub_preds, y.repeat(M))` of the reference.
 *
 * **Input shape:** `branchLogits` [M, C]. **Output:** scalar.
 * @returns a new scalar owned by the caller.
 * @example
 * ```ts
 * // branch 0: -log(1/2); branch 1: logits [ln 3, 0] -> p(0) = 3/4, -log(3/4)
 * branchLoss(tf.tensor2d([[0, 0], [Math.log(3), 0]]), 0); // (0.6931 + 0.2877) / 2 = 0.4904
 * ```
 * @category HAFED
 */
export function branchLoss(branchLogits: tf.Tensor2D, label: number): tf.Scalar {
  if (branchLogits.rank !== 2) {
    throw new ShapeError(`Error in branchLoss: expected branch logits [M, C], but got ${fmtShape(branchLogits.shape)}.`);
  }
  checkLabel(label, branchLogits.shape[1], 'branchLoss');
  return crossEntropy(branchLogits, new Array<number>(branchLogits.shape[0]).fill(label));
}

/**
 * ACMIL's similarity loss: the mean pairwise cosine similarity between the M branches'
 * attention maps, averaged over any leading axes (one bag per leading index):
 * `L = mean_b (2 / (M (M - 1))) sum_{i<j} cos(A[b, i, :], A[b, j, :])`, with
 * `cos(u, v) = u.v / (max(|u|, 1e-8) max(|v|, 1e-8))`. Minimising it pushes the branches to
 * attend to different instances. It is 0 when M = 1.
 *
 * Computed in O(M n) per bag as `sum_{i<j} <a_i, a_j> = (|sum_i a_i|^2 - sum_i |a_i|^2) / 2`
 * on the unit-normalised rows `a_i`.
 *
 * This is the intended (ACMIL) form; the reference HAFED script indexes the patch axis
 * instead (docs/implementation-details.md, "Similarity loss").
 *
 * **Input shape:** `attention` [M, n] or [..., M, n] (softmaxed weights, as ACMIL).
 * **Output:** scalar.
 * @returns a new scalar owned by the caller.
 * @example
 * ```ts
 * // rows (1,0), (0,1), (1,1)/2: cosines 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2 / 3
 * similarityLoss(tf.tensor2d([[1, 0], [0, 1], [0.5, 0.5]])); // 0.4714
 * ```
 * @category HAFED
 */
export function similarityLoss(attention: tf.Tensor): tf.Scalar {
  if (attention.rank < 2) {
    throw new ShapeError(`Error in similarityLoss: expected attention [..., M, n], but got ${fmtShape(attention.shape)}.`);
  }
  const m = attention.shape[attention.rank - 2];
  const n = attention.shape[attention.rank - 1];
  if (m < 2) return tf.scalar(0);
  return tf.tidy(() => {
    const a = tf.reshape(attention, [-1, m, n]); // [B, M, n]
    const norms = tf.maximum(tf.sqrt(tf.sum(tf.square(a), 2, true)), COSINE_EPS); // [B, M, 1]
    const unit = tf.div(a, norms);
    const total = tf.sum(tf.square(tf.sum(unit, 1)), 1); // |sum_i a_i|^2, [B]
    const diag = tf.sum(tf.square(unit), [1, 2]); // sum_i |a_i|^2, [B]
    const pairSum = tf.mul(tf.sub(total, diag), 0.5); // sum_{i<j} cos, [B]
    return tf.div(tf.mean(pairSum), (m * (m - 1)) / 2) as tf.Scalar;
  });
}

/**
 * The HAFED training loss of one slide (docs/reference-code.md §2.4, with the intended similarity
 * loss): `total = slide + branch + similarity1 + similarity2`, all weights 1; the branch term
 * is used only when M2 > 1, as in the reference and ACMIL.
 *
 * @param output a {@link HafedOutput} (training-mode forward pass).
 * @param label the slide's class.
 * @returns named scalars, each a new tensor owned by the caller.
 * @example
 * ```ts
 * const out = hafed.forward(u, { training: true, rng });
 * const { total } = hafedLoss(out, 1);
 * ```
 * @category HAFED
 */
export function hafedLoss(output: HafedOutput, label: number): HafedLosses {
  return tf.tidy(() => {
    const slide = slideLoss(output.logits, label);
    const branch = output.branchLogits.shape[0] > 1 ? branchLoss(output.branchLogits, label) : tf.scalar(0);
    const similarity1 = output.attention1 ? similarityLoss(output.attention1) : tf.scalar(0);
    const similarity2 = similarityLoss(output.attention);
    const total = tf.addN([slide, branch, similarity1, similarity2]) as tf.Scalar;
    return { total, slide, branch, similarity1, similarity2 };
  }) as HafedLosses;
}

/**
 * The losses as one namespace object: `losses.slideLoss`, `losses.branchLoss`,
 * `losses.similarityLoss`, `losses.hafedLoss`.
 * @category HAFED
 */
export const losses = Object.freeze({ slideLoss, branchLoss, similarityLoss, hafedLoss });
