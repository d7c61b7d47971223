/**
 * HAFED stage 1 as one op: the gated attention scores of the N k sub-patch features, the softmax
 * over each patch's k sub-patches and the attention pooling, with a hand-written gradient for the
 * attention weights (the features U are data and get none).
 *
 * Why one op: stage 1 runs over N k rows (16 000 at N = 1000) and, on the wasm backend, its cost
 * beyond the four matrix products (two forward, two for the kernel gradients) is in passes over
 * those rows. Differentiating the composed ops pools with a broadcast product and a sum over the
 * middle axis (a transpose of U on wasm), adds the biases in separate passes, computes the bias
 * gradients as column sums (a transpose of [N k, D] each) and keeps more intermediates. Here the
 * biases ride in the products, pooling and its gradient are batched products over the k
 * sub-patches, column sums are products with a row of ones, and the backward pass transposes U
 * once for both kernel gradients. Values and gradients equal the composed ops' up to float
 * rounding (tested).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { MASK_LOGIT, fastTanh } from '../core/ops.js';
import { ShapeError, fmtShape } from '../core/errors.js';
import type { ScoreWeights } from '../core/gated_attention.js';

/** What {@link poolSubPatches} returns; tensors owned by the caller. */
export interface SubPatchPooling {
  /** V: one vector per patch, `V_i = sum_j abar_ij U_ij`, [N, d]. */
  features: tf.Tensor2D;
  /** The attention of each branch over each patch's sub-patches, [N, M, k]. */
  attention: tf.Tensor3D;
}

/** Options of {@link poolSubPatches}. */
export interface SubPatchPoolingOptions {
  /**
   * Called once with the attention logits [N, M, k] (before any masking); returns a keep mask
   * (bool, same shape; false = masked to -1e9 before the softmax) or null. HAFED's STKIM draws
   * its mask here in training.
   */
  keep?: (logits: tf.Tensor3D) => tf.Tensor | null;
}


const requireGated = (w: ScoreWeights): void => {
  if (!w.kernelU || !w.biasU) throw new ShapeError('poolSubPatches needs the gated scoring network (kernelU and biasU).');
};

function checkU(u: tf.Tensor3D, w: ScoreWeights): void {
  if (u.rank !== 3 || u.shape[2] !== w.kernelV.shape[0] || u.shape[0] === 0) {
    throw new ShapeError(`Error in poolSubPatches: expected U [N, k, ${w.kernelV.shape[0]}] with N >= 1, but got ${fmtShape(u.shape)}.`);
  }
  requireGated(w);
}

/** What the backward pass of {@link subPatchForward} needs ([N k, D] activations and the attention). */
export interface SubPatchSaved {
  /** tanh(u W_V + b_V), [N k, D]. */
  t: tf.Tensor2D;
  /** sigmoid(u W_U + b_U), [N k, D]. */
  s: tf.Tensor2D;
  /** t * s, [N k, D]. */
  g: tf.Tensor2D;
  /** The attention, [N, M, k]. */
  a: tf.Tensor3D;
}

/**
 * The forward pass of {@link poolSubPatches} without a tape: the features, the attention and
 * what {@link subPatchBackward} needs. Used to run stage 1 over shards of a slide's patches
 * (each shard's backward pass then runs where its forward pass ran).
 *
 * **Input shape:** `u` [N, k, d]. **Output shapes:** features [N, d], attention [N, M, k].
 * @returns new tensors owned by the caller (dispose `saved` after the backward pass).
 * @category HAFED
 */
export function subPatchForward(
  u: tf.Tensor3D,
  w: ScoreWeights,
  options: SubPatchPoolingOptions = {},
): SubPatchPooling & { saved: SubPatchSaved } {
  checkU(u, w);
  return tf.tidy(() => {
    const [n, k, d] = u.shape;
    const m = w.kernelW.shape[1] as number;
    const x = tf.reshape(u, [n * k, d]) as tf.Tensor2D;
    const t = fastTanh(tf.fused.matMul({ a: x, b: w.kernelV as tf.Tensor2D, bias: w.biasV })) as tf.Tensor2D; // [R, D]
    const s = tf.sigmoid(tf.fused.matMul({ a: x, b: w.kernelU as tf.Tensor2D, bias: w.biasU })) as tf.Tensor2D; // [R, D]
    const g = tf.mul(t, s) as tf.Tensor2D; // [R, D]
    const scores = tf.fused.matMul({ a: g, b: w.kernelW as tf.Tensor2D, bias: w.biasW }); // [R, M]
    let logits = (m === 1 ? tf.reshape(scores, [n, 1, k]) : tf.transpose(tf.reshape(scores, [n, k, m]), [0, 2, 1])) as tf.Tensor3D;
    const keep = options.keep ? options.keep(logits) : null;
    if (keep) logits = tf.where(keep, logits, tf.fill(logits.shape, MASK_LOGIT)) as tf.Tensor3D;
    const a = tf.softmax(logits) as tf.Tensor3D; // [N, M, k], over the k sub-patches
    const abar = (m === 1 ? a : tf.mean(a, 1, true)) as tf.Tensor3D; // [N, 1, k]
    // Pooling as a batched product [N, 1, k] x [N, k, d]: on wasm one pass over U, where a
    // broadcast product and a sum over the middle axis transpose U first.
    const features = tf.reshape(tf.matMul(abar, u), [n, d]) as tf.Tensor2D;
    return { features, attention: a, saved: { t, s, g, a } };
  });
}

/**
 * The backward pass of {@link subPatchForward}: the gradients of the six weights
 * (`kernelV, biasV, kernelU, biasU, kernelW, biasW`, in that order) given the gradients of the
 * features [N, d] and of the attention [N, M, k] (null: none).
 * @returns new tensors owned by the caller; `saved` is not disposed.
 * @category HAFED
 */
export function subPatchBackward(u: tf.Tensor3D, w: ScoreWeights, saved: SubPatchSaved, dFeatures: tf.Tensor, dAttention: tf.Tensor | null): tf.Tensor[] {
  return tf.tidy(() => {
    const [n, k, d] = u.shape;
    const m = w.kernelW.shape[1] as number;
    const D = w.kernelV.shape[1] as number;
    const R = n * k;
    const { t, s, g, a } = saved;
    // Pooling: dabar_ij = dV_i . u_ij, a batched product [N, 1, d] x [N, k, d]^T
    const dabar = tf.matMul(tf.reshape(dFeatures, [n, 1, d]) as tf.Tensor3D, u, false, true); // [N, 1, k]
    let da: tf.Tensor = m === 1 ? dabar : tf.tile(tf.div(dabar, m), [1, m, 1]); // [N, M, k]
    if (dAttention) da = tf.add(da, tf.reshape(dAttention, [n, m, k]));
    // Softmax over k: dl = a (da - sum_j a da); masked entries have a = 0
    const dl = tf.mul(a, tf.sub(da, tf.sum(tf.mul(a, da), -1, true)));
    const ds = (m === 1 ? tf.reshape(dl, [R, 1]) : tf.reshape(tf.transpose(dl, [0, 2, 1]), [R, m])) as tf.Tensor2D; // [R, M]
    // Output layer: dW_w = g^T ds as (ds^T g)^T, so that the product packs g, not a transpose
    const dsT = (m === 1 ? tf.reshape(ds, [1, R]) : tf.transpose(ds)) as tf.Tensor2D; // [M, R]
    const dkW = tf.transpose(tf.matMul(dsT, g)); // [D, M]
    const dbW = tf.sum(dsT, 1); // [M]
    const dg = m === 1 ? tf.mul(ds, tf.reshape(w.kernelW, [1, D])) : tf.matMul(ds, tf.transpose(w.kernelW) as tf.Tensor2D); // [R, D]
    // Gates: g = t s with t = tanh(hv), s = sigmoid(hu)
    const dhv = tf.mul(tf.mul(dg, s), tf.sub(1, tf.square(t))) as tf.Tensor2D;
    const dhu = tf.mul(tf.mul(dg, t), tf.mul(s, tf.sub(1, s))) as tf.Tensor2D;
    // Kernels: U^T dh with U^T formed once for both; biases: a row of ones times dh
    const xT = tf.transpose(tf.reshape(u, [R, d])) as tf.Tensor2D; // [d, R]
    const ones = tf.ones([1, R]) as tf.Tensor2D;
    return [
      tf.matMul(xT, dhv),
      tf.reshape(tf.matMul(ones, dhv), [D]),
      tf.matMul(xT, dhu),
      tf.reshape(tf.matMul(ones, dhu), [D]),
      dkW,
      dbW,
    ];
  });
}

/**
 * HAFED stage 1 on one slide: for every patch i and sub-patch j the gated attention scores
 * `s_ij = W_w (tanh(u_ij W_V + b_V) * sigmoid(u_ij W_U + b_U)) + b_w` (M per row), the softmax
 * over the k sub-patches of each branch (after the optional mask), the branch average `abar` and
 * the pooled features `V_i = sum_j abar_ij u_ij`. Differentiable with respect to the weights (the
 * features U are data). The attention output carries a gradient too (for the similarity loss).
 *
 * **Input shape:** `u` [N, k, d]. **Output shapes:** features [N, d], attention [N, M, k].
 * @param w the gated scoring network's weights (`kernelW` [D, M]).
 * @returns new tensors owned by the caller.
 * @example
 * ```ts
 * const { features } = poolSubPatches(u, layer.weightMap() as unknown as ScoreWeights); // [N, d]
 * ```
 * @category HAFED
 */
export function poolSubPatches(u: tf.Tensor3D, w: ScoreWeights, options: SubPatchPoolingOptions = {}): SubPatchPooling {
  checkU(u, w);
  const [n, k, d] = u.shape;
  const m = w.kernelW.shape[1] as number;
  // One output [N, d + M k] holds V and the attention, so that both carry gradients through
  // one custom-gradient op (customGrad takes a single output).
  const op = tf.customGrad(((kV: tf.Tensor, bV: tf.Tensor, kU: tf.Tensor, bU: tf.Tensor, kW: tf.Tensor, bW: tf.Tensor, save: tf.GradSaveFunc) => {
    const weights: ScoreWeights = { kernelV: kV, biasV: bV, kernelU: kU, biasU: bU, kernelW: kW, biasW: bW };
    const f = subPatchForward(u, weights, options);
    save([f.saved.t, f.saved.s, f.saved.g, f.saved.a]);
    return {
      value: tf.concat([f.features, tf.reshape(f.attention, [n, m * k])], 1),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [t, s, g, a] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D];
        const [dv, da] = tf.split(dy, [d, m * k], 1);
        return subPatchBackward(u, weights, { t, s, g, a }, dv, da);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...ws: tf.Tensor[]) => tf.Tensor2D;
  return tf.tidy(() => {
    const out = op(w.kernelV, w.biasV, w.kernelU!, w.biasU!, w.kernelW, w.biasW);
    const [features, attention] = tf.split(out, [d, m * k], 1);
    return { features: features as tf.Tensor2D, attention: tf.reshape(attention, [n, m, k]) as tf.Tensor3D };
  });
}

/**
 * {@link poolSubPatches} without a gradient, for inference: the same values, with no output
 * concatenation and nothing kept for a backward pass.
 * @returns new tensors owned by the caller.
 * @category HAFED
 */
export function poolSubPatchesNoGrad(u: tf.Tensor3D, w: ScoreWeights, options: SubPatchPoolingOptions = {}): SubPatchPooling {
  const { features, attention, saved } = subPatchForward(u, w, options);
  tf.dispose([saved.t, saved.s, saved.g]);
  return { features, attention };
}
