/**
 * The scoring network of gated attention, `s = W_w (tanh(x W_V + b_V) * sigmoid(x W_U + b_U)) + b_w`,
 * as one op with a hand-written gradient, shared by HAFED and the zoom policy. Compared with
 * differentiating the composed ops it skips the gradient of the input when the input is data
 * (HAFED stage 1 reads the features U, the policy reads the state), keeps two activations
 * instead of about ten intermediates for the backward pass, and replaces the dozen elementwise
 * backward ops of `tanh`, `sigmoid`, the product, the concatenation and the split by a few.
 * The gradient equals the composed ops' (tested).
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { fastTanh, linear } from './ops.js';
import { ValueError } from './errors.js';

/** How the attention scores are differentiated. */
export type AttentionGradMode = 'fused' | 'autodiff';

let gradMode: AttentionGradMode = 'fused';

/**
 * Chooses how the attention layers are differentiated: `'fused'` (the hand-written gradient
 * of {@link gatedScores}; default) or `'autodiff'` (tfjs differentiates the composed ops, whose
 * matrix products follow `setMatMulGradMode`). Benchmarks switch it to compare both.
 * @returns the previous mode.
 * @category Utils
 */
export function setAttentionGradMode(mode: AttentionGradMode): AttentionGradMode {
  if (mode !== 'fused' && mode !== 'autodiff') {
    throw new ValueError(`Expected mode to be one of 'fused', 'autodiff', but got '${String(mode)}'.`);
  }
  const prev = gradMode;
  gradMode = mode;
  return prev;
}

/**
 * The current mode of {@link setAttentionGradMode}.
 * @category HAFED
 */
export function getAttentionGradMode(): AttentionGradMode {
  return gradMode;
}

/** The weights of the scoring network (kernels `(in, out)`). */
export interface ScoreWeights {
  kernelV: tf.Tensor; // [d, D]
  biasV: tf.Tensor; // [D]
  kernelU?: tf.Tensor; // [d, D], gated only
  biasU?: tf.Tensor; // [D]
  kernelW: tf.Tensor; // [D, M]
  biasW: tf.Tensor; // [M]
}

/** The composed ops, differentiated by tfjs. */
function autodiffScores(x: tf.Tensor2D, w: ScoreWeights): tf.Tensor2D {
  return tf.tidy(() => {
    let hidden: tf.Tensor2D;
    if (w.kernelU && w.biasU) {
      const h = linear(x, tf.concat([w.kernelV, w.kernelU], 1), tf.concat([w.biasV, w.biasU]));
      const [hv, hu] = tf.split(h, 2, 1);
      hidden = tf.mul(fastTanh(hv), tf.sigmoid(hu)); // [R, D]
    } else {
      hidden = fastTanh(linear(x, w.kernelV, w.biasV)); // [R, D]
    }
    return linear(hidden, w.kernelW, w.biasW); // [R, M]
  });
}

/**
 * Attention scores of every row, `[R, d] -> [R, M]`:
 * `s = W_w (tanh(x W_V + b_V) * sigmoid(x W_U + b_U)) + b_w` (gated), or
 * `s = W_w tanh(x W_V + b_V) + b_w` (without `kernelU`). HAFED's multi-branch attention
 * (M branches) and the actor and critic of the zoom policy (M = 1) all score rows with it.
 *
 * The gradient is written by hand. The forward keeps only the activations `t = tanh(.)` and
 * `s = sigmoid(.)` ([R, D] each, and x when its gradient is needed); backward, with `g = t s`
 * and `dg = ds W_w^T`:
 * `dW_w = g^T ds`, `db_w = sum_rows ds`, `dh_V = dg s (1 - t^2)`, `dh_U = dg t s (1 - s)`,
 * `dW_V = x^T dh_V`, `dW_U = x^T dh_U`, `db_V`, `db_U` their column sums, and
 * `dx = dh_V W_V^T + dh_U W_U^T`. It equals the gradient of the composed ops (tested against
 * them and against finite differences).
 *
 * @param x the rows, [R, d].
 * @param w the weights (kernels `[in, out]`).
 * @param inputGrad whether a gradient with respect to `x` is needed (false when `x` is data:
 *   the gradient pass then skips the `[R, 2D] x [2D, d]` product, and `x` must stay alive
 *   until the gradient is computed).
 * @param xT optional `x` transposed, [d, R], when the caller has it (with `inputGrad` false: the
 *   kernel gradients then use it instead of transposing `x`; it stays owned by the caller and
 *   must stay alive until the gradient is computed).
 * @returns a new tensor owned by the caller, [R, M].
 * @example
 * ```ts
 * const scores = gatedScores(rows, { kernelV, biasV, kernelU, biasU, kernelW, biasW }, false); // [R, M]
 * ```
 * @category Utils
 */
export function gatedScores(x: tf.Tensor2D, w: ScoreWeights, inputGrad = true, xT?: tf.Tensor2D): tf.Tensor2D {
  if (gradMode === 'autodiff') return autodiffScores(x, w);
  const gated = Boolean(w.kernelU && w.biasU);
  const weights = gated ? [w.kernelV, w.biasV, w.kernelU!, w.biasU!, w.kernelW, w.biasW] : [w.kernelV, w.biasV, w.kernelW, w.biasW];
  const inputs = inputGrad ? [x, ...weights] : weights;
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = inputGrad ? (args[0] as tf.Tensor2D) : x;
    // Two products instead of one on concatenated kernels: splitting a [R, 2D] result along its
    // columns is a slow strided copy on wasm.
    // (the biases ride in the products: no separate pass over [R, D])
    const t = fastTanh(tf.fused.matMul({ a: xs, b: w.kernelV as tf.Tensor2D, bias: w.biasV })) as tf.Tensor2D; // [R, D]
    const s = gated ? (tf.sigmoid(tf.fused.matMul({ a: xs, b: w.kernelU as tf.Tensor2D, bias: w.biasU })) as tf.Tensor2D) : null; // [R, D]
    const g = s ? tf.mul(t, s) : t; // [R, D]
    const value = tf.fused.matMul({ a: g as tf.Tensor2D, b: w.kernelW as tf.Tensor2D, bias: w.biasW }) as tf.Tensor2D; // [R, M]
    // the engine runs this in a tidy: only the value and the saved tensors survive
    const kept = s ? [t, s] : [t];
    save(inputGrad ? [xs, ...kept] : kept);
    return {
      value,
      gradFunc: (ds: tf.Tensor2D, saved: tf.Tensor[]) => {
        // One [R, D] temporary at a time where possible: the backward pass bounds peak memory.
        const sx = inputGrad ? (saved[0] as tf.Tensor2D) : x;
        const st = saved[inputGrad ? 1 : 0] as tf.Tensor2D;
        const ss = s ? (saved[inputGrad ? 2 : 1] as tf.Tensor2D) : null;
        // Output layer: dW_w = g^T ds as (ds^T g)^T and column sums as a row of ones times the
        // columns, so that no [R, .] operand is transposed (a slow strided copy on wasm).
        const R = st.shape[0];
        const M = ds.shape[1];
        const ones = tf.ones([1, R]) as tf.Tensor2D;
        const colSums = (m: tf.Tensor2D): tf.Tensor => tf.reshape(tf.matMul(ones, m), [m.shape[1]]);
        const dkW = tf.tidy(() => {
          const dsT = (M === 1 ? tf.reshape(ds, [1, R]) : tf.transpose(ds)) as tf.Tensor2D; // [M, R]
          return tf.transpose(tf.matMul(dsT, (ss ? tf.mul(st, ss) : st) as tf.Tensor2D)); // [D, M]
        });
        const dbW = colSums(ds); // [M]
        const dg = M === 1 ? tf.mul(ds, tf.reshape(w.kernelW, [1, -1])) : tf.matMul(ds, tf.transpose(w.kernelW) as tf.Tensor2D); // [R, D]
        // Gates: d tanh = 1 - t^2; d sigmoid = s (1 - s); g = t s.
        const dhv = tf.tidy(() => {
          const dTanh = tf.mul(dg, tf.sub(1, tf.square(st)));
          return (ss ? tf.mul(dTanh, ss) : dTanh) as tf.Tensor2D;
        }); // [R, D]
        const dhu = ss ? tf.tidy(() => tf.mul(tf.mul(dg, st), tf.mul(ss, tf.sub(1, ss))) as tf.Tensor2D) : null; // [R, D]
        dg.dispose();
        // Kernel gradients x^T dh: with x narrower than dh, compute (dh^T x)^T so that the
        // operand packed is x (once, reused for both kernels); otherwise pack dh.
        const d = sx.shape[1];
        const D = dhv.shape[1];
        const given = !inputGrad && xT !== undefined;
        const sxT = given ? (xT as tf.Tensor2D) : d < D ? null : (tf.transpose(sx) as tf.Tensor2D);
        const kernelGrad = (dh: tf.Tensor2D): tf.Tensor =>
          sxT ? tf.matMul(sxT, dh) : tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(dh) as tf.Tensor2D, sx)));
        const grads: tf.Tensor[] = [];
        if (inputGrad) {
          grads.push(
            tf.tidy(() => {
              const dx = tf.matMul(dhv, tf.transpose(w.kernelV) as tf.Tensor2D); // [R, d]
              return dhu ? tf.add(dx, tf.matMul(dhu, tf.transpose(w.kernelU!) as tf.Tensor2D)) : dx;
            }),
          );
        }
        grads.push(kernelGrad(dhv), colSums(dhv));
        if (dhu) grads.push(kernelGrad(dhu), colSums(dhu));
        grads.push(dkW, dbW);
        tf.dispose([dhv, ones, ...(dhu ? [dhu] : []), ...(sxT && !given ? [sxT] : [])]);
        return grads;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...ts: tf.Tensor[]) => tf.Tensor2D;
  return op(...inputs);
}
