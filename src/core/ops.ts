/**
 * Tensor ops every model of the library is built from. They run on any tfjs backend and avoid
 * the slow or missing paths of the wasm backend:
 * - {@link matMul} / {@link linear}: on wasm the gradient transposes explicitly and then runs a
 *   plain matMul (wasm's `transposeA/transposeB` path is about 10x slower than the plain one);
 * - {@link gatherRows}: on wasm the gradient is a `scatterND` (wasm has no `UnsortedSegmentSum`,
 *   the kernel behind the built-in gather gradient);
 * - {@link rowNorms}: `sqrt(sum(square(x)))`, 8x faster than `tf.norm` on wasm;
 * - {@link maskedSoftmax}: softmax over the instance (last) axis with a mask.
 *
 * Every op returns new tensors owned by the caller and frees its intermediates.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { DataError, ShapeError, ValueError, fmtShape } from './errors.js';

/** How {@link matMul} computes its gradient. */
export type MatMulGradMode = 'auto' | 'explicit' | 'builtin';

let matMulGradMode: MatMulGradMode = 'auto';

/**
 * Chooses the gradient of {@link matMul}: `'explicit'` (transpose, then a plain matMul),
 * `'builtin'` (tfjs's own, which uses transposed matMuls), or `'auto'` (explicit on wasm,
 * built-in elsewhere; the default). Benchmarks switch it to compare both.
 * @returns the previous mode.
 * @category Utils
 */
export function setMatMulGradMode(mode: MatMulGradMode): MatMulGradMode {
  if (!['auto', 'explicit', 'builtin'].includes(mode)) {
    throw new ValueError(`Expected mode to be one of 'auto', 'explicit', 'builtin', but got '${mode}'.`);
  }
  const prev = matMulGradMode;
  matMulGradMode = mode;
  return prev;
}

function useExplicitGrad(): boolean {
  return matMulGradMode === 'explicit' || (matMulGradMode === 'auto' && tf.getBackend() === 'wasm');
}

const explicitMatMul = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved;
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb) as tf.Tensor2D), tf.matMul(tf.transpose(sa) as tf.Tensor2D, dy as tf.Tensor2D)];
    },
  };
  // customGrad's typing wants a variadic function; the two-argument form is what we call.
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Matrix product `a · b` of two rank-2 tensors, with a wasm-friendly gradient
 * (chosen per backend; see decision D1). Forward values are identical to `tf.matMul`.
 *
 * **Input shape:** `a` [m, k], `b` [k, n]. **Output shape:** [m, n].
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])); // [[11]]
 * ```
 * @category Utils
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new ShapeError(`Error in matMul: expected [m, k] x [k, n], but got ${fmtShape(a.shape)} x ${fmtShape(b.shape)}.`);
  }
  return useExplicitGrad() ? explicitMatMul(a, b) : tf.matMul(a, b);
}

/**
 * Dense layer op `y = x · W + b` over the last axis of `x`, for any rank of `x`.
 *
 * **Input shape:** `x` [..., in], `kernel` [in, out], `bias` [out] (optional).
 * **Output shape:** [..., out].
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * linear(tf.ones([2, 3, 4]), tf.ones([4, 5]), tf.zeros([5])).shape; // [2, 3, 5]
 * ```
 * @category Utils
 */
export function linear<T extends tf.Tensor>(x: T, kernel: tf.Tensor, bias?: tf.Tensor): T {
  const inDim = kernel.shape[0] as number;
  if (kernel.rank !== 2 || x.shape[x.rank - 1] !== inDim) {
    throw new ShapeError(
      `Error in linear: expected x [..., ${inDim}] and kernel [in, out], but got x ${fmtShape(x.shape)} and kernel ${fmtShape(kernel.shape)}.`,
    );
  }
  return tf.tidy(() => {
    const outDim = kernel.shape[1] as number;
    const flat = x.rank === 2 ? (x as unknown as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
    let y: tf.Tensor = matMul(flat, kernel as tf.Tensor2D);
    if (bias) y = tf.add(y, bias);
    return (x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim])) as T;
  });
}

const scatterGather = tf.customGrad(((x: tf.Tensor, idx: tf.Tensor, save: tf.GradSaveFunc) => {
  save([idx]);
  const shape = x.shape;
  return {
    value: tf.gather(x, idx),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sidx] = saved;
      return [tf.scatterND(tf.reshape(sidx, [-1, 1]), dy, shape), tf.zeros(sidx.shape)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, idx: tf.Tensor1D) => tf.Tensor;

/**
 * Gathers rows `x[indices]` along axis 0, with a gradient that works on every backend
 * (duplicate indices accumulate their gradients).
 *
 * **Input shape:** `x` [N, ...], `indices` int32 [K] (a tensor or an array).
 * **Output shape:** [K, ...].
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * gatherRows(tf.tensor2d([[1, 2], [3, 4]]), [1, 1]); // [[3, 4], [3, 4]]
 * ```
 * @category Utils
 */
export function gatherRows<T extends tf.Tensor>(x: T, indices: tf.Tensor1D | ArrayLike<number>): T {
  return tf.tidy(() => {
    const idx = indices instanceof tf.Tensor ? indices : tf.tensor1d(Array.from(indices), 'int32');
    if (idx.dtype !== 'int32') throw new ValueError(`Expected indices to be int32, but got ${idx.dtype}.`);
    return (tf.getBackend() === 'wasm' ? scatterGather(x, idx) : tf.gather(x, idx)) as T;
  });
}

/**
 * Euclidean norm of every row: `||x_i|| = sqrt(sum_j x_ij^2)`.
 *
 * **Input shape:** [N, d]. **Output shape:** [N].
 * @returns a new tensor owned by the caller.
 * @category Utils
 */
export function rowNorms(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(x), 1)) as tf.Tensor1D);
}

/** Norm floor of the cosine similarity, as in PyTorch's `cosine_similarity` (eps 1e-8). */
export const COSINE_EPS = 1e-8;

/**
 * Cosine similarity of every row of `x` with the vector `q`:
 * `cos_i = <x_i, q> / (max(||x_i||, eps) * max(||q||, eps))`, eps = 1e-8.
 *
 * **Input shape:** `x` [N, d], `q` [d] or [1, d]. **Output shape:** [N].
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * cosineToRow(tf.tensor2d([[1, 0], [0, 2], [-1, 0]]), tf.tensor1d([3, 0])); // [1, 0, -1]
 * ```
 * @category Utils
 */
export function cosineToRow(x: tf.Tensor2D, q: tf.Tensor1D | tf.Tensor2D): tf.Tensor1D {
  const d = x.shape[1];
  if (q.size !== d) {
    throw new ShapeError(`Error in cosineToRow: expected q of size ${d}, but got ${fmtShape(q.shape)}.`);
  }
  return tf.tidy(() => {
    const qc = tf.reshape(q, [d, 1]) as tf.Tensor2D;
    const dots = tf.reshape(matMul(x, qc), [-1]);
    const xn = tf.maximum(rowNorms(x), COSINE_EPS);
    const qn = tf.maximum(tf.sqrt(tf.sum(tf.square(qc))), COSINE_EPS);
    return tf.div(dots, tf.mul(xn, qn)) as tf.Tensor1D;
  });
}

/**
 * Cosine similarity between every pair of rows of `a` and `b`: `C_ij = cos(a_i, b_j)`.
 *
 * **Input shape:** `a` [M, d], `b` [K, d]. **Output shape:** [M, K].
 * @returns a new tensor owned by the caller.
 * @category Utils
 */
export function pairwiseCosine(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.shape[1] !== b.shape[1]) {
    throw new ShapeError(`Error in pairwiseCosine: expected equal widths, but got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  }
  return tf.tidy(() => {
    const an = tf.div(a, tf.reshape(tf.maximum(rowNorms(a), COSINE_EPS), [-1, 1])) as tf.Tensor2D;
    const bn = tf.div(b, tf.reshape(tf.maximum(rowNorms(b), COSINE_EPS), [-1, 1])) as tf.Tensor2D;
    return matMul(an, tf.transpose(bn) as tf.Tensor2D);
  });
}

/** Logit given to masked instances before a softmax (PyTorch references use -1e9 or -inf). */
export const MASK_LOGIT = -1e9;

/**
 * Softmax over the last axis (the instances), with masked instances given zero weight:
 * `p_i = exp(l_i) / sum_{j in mask} exp(l_j)` for i in the mask, 0 elsewhere. Masked logits
 * are replaced by -1e9, so gradients stay finite.
 *
 * **Input shape:** `logits` [..., N]; `mask` (optional) bool or 0/1 of shape [N] or the
 * shape of `logits`, true/1 = keep. **Output shape:** as `logits`.
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * maskedSoftmax(tf.tensor1d([0, 0, 5]), tf.tensor1d([1, 1, 0])); // [0.5, 0.5, 0]
 * ```
 * @category Utils
 */
export function maskedSoftmax<T extends tf.Tensor>(logits: T, mask?: tf.Tensor): T {
  return tf.tidy(() => {
    if (!mask) return tf.softmax(logits) as T;
    const keep = mask.dtype === 'bool' ? mask : tf.greater(mask, 0);
    const masked = tf.where(tf.broadcastTo(keep, logits.shape), logits, tf.fill(logits.shape, MASK_LOGIT));
    return tf.softmax(masked) as T;
  });
}

/**
 * `tanh(x) = 2 sigmoid(2x) - 1`, the same function as `tf.tanh` (to float rounding) but about
 * 15x faster on wasm, where `tf.tanh` has no SIMD kernel.
 * @returns a new tensor owned by the caller.
 * @category Utils
 */
export function fastTanh<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) as T);
}

/**
 * Exact (erf-based) GELU, PyTorch's default: `gelu(x) = 0.5 x (1 + erf(x / sqrt(2)))`.
 * @returns a new tensor owned by the caller.
 * @category Utils
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
}

/**
 * Layer normalisation over the last axis:
 * `y = (x - mean) / sqrt(var + eps) * gamma + beta` (population variance, as PyTorch).
 *
 * **Input shape:** `x` [..., d], `gamma`, `beta` [d]. **Output shape:** as `x`.
 * @param eps default 1e-5 (PyTorch `nn.LayerNorm`).
 * @returns a new tensor owned by the caller.
 * @category Utils
 */
export function layerNorm<T extends tf.Tensor>(x: T, gamma?: tf.Tensor, beta?: tf.Tensor, eps = 1e-5): T {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    let y: tf.Tensor = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y as T;
  });
}

/**
 * Mean cross-entropy of logits against integer labels:
 * `CE = -(1/B) sum_b log softmax(logits_b)[y_b]` (PyTorch `CrossEntropyLoss`, mean reduction).
 *
 * **Input shape:** `logits` [B, C]; `labels` int32 [B] (tensor or array). **Output:** scalar.
 * @returns a new scalar owned by the caller.
 * @example
 * ```ts
 * crossEntropy(tf.tensor2d([[0, 0]]), [1]); // ln 2 = 0.6931
 * ```
 * @category Utils
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D | ArrayLike<number>): tf.Scalar {
  const [b, c] = logits.shape;
  const n = labels instanceof tf.Tensor ? labels.size : labels.length;
  if (n !== b) throw new ShapeError(`Error in crossEntropy: expected ${b} labels for logits ${fmtShape(logits.shape)}, but got ${n}.`);
  if (!(labels instanceof tf.Tensor)) {
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= c) {
        throw new ValueError(`Expected every label to be an integer in [0, ${c}), but got ${y}. Check the labels of your slides.`);
      }
    }
  }
  return tf.tidy(() => {
    const y = labels instanceof tf.Tensor ? tf.cast(labels, 'int32') : tf.tensor1d(Array.from(labels), 'int32');
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(y as tf.Tensor1D, c), logp), 1))) as tf.Scalar;
  });
}

/**
 * Checks that every value of `x` is finite; throws naming `what` and the
 * first bad position otherwise (a {@link DataError}). Reads the tensor back (one sync).
 * @category Utils
 */
export function assertFinite(x: tf.Tensor | ArrayLike<number>, what: string): void {
  const data = x instanceof tf.Tensor ? x.dataSync() : x;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new DataError(`Expected ${what} to be finite, but element ${i} is ${data[i]}. Remove or re-extract the bad features.`);
    }
  }
}
