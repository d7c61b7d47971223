/**
 * The PPO losses of a set of samples, given the new log-probabilities, entropies and values.
 * Shared by the event-sourced update and the dense reference, which differ only in how they
 * obtain those per-sample quantities.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { MASK_LOGIT } from '../core/ops.js';
import type { PpoConfig } from './defaults.js';

/** The actor's loss terms of a set of samples, each a scalar summed over them and divided by B. */
export interface ActorLossTerms {
  /** `policyLoss - entCoef * entropy`: what the actor minimises. */
  loss: tf.Scalar;
  /** The clipped surrogate `mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))`. */
  policyLoss: tf.Scalar;
  /** Mean entropy of the masked distributions. */
  entropy: tf.Scalar;
  /** `mean(-log r)` (CleanRL `old_approx_kl`). */
  oldApproxKl: tf.Scalar;
  /** `mean((r - 1) - log r)` (CleanRL `approx_kl`, http://joschu.net/blog/kl-approx.html). */
  approxKl: tf.Scalar;
  /** `mean(|r - 1| > eps)` (CleanRL `clipfrac`). */
  clipFraction: tf.Scalar;
}

/**
 * The actor's loss over a chunk of samples, each term a sum over the chunk divided by
 * `totalSamples`, so that summing chunks gives the batch mean:
 * `r = exp(logp_new - logp_old)`, `L = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps))) - c_ent mean(H)`.
 *
 * **Input shape:** every tensor [b].
 * @returns scalars owned by the caller.
 * @see docs/reference-code.md §6.2 step 6; CleanRL ppo.py lines 244-272.
 * @internal
 */
export function actorLossTerms(
  newLogProbs: tf.Tensor1D,
  entropies: tf.Tensor1D,
  oldLogProbs: tf.Tensor1D,
  advantages: tf.Tensor1D,
  totalSamples: number,
  config: Pick<PpoConfig, 'clipCoef' | 'entCoef'>,
): ActorLossTerms {
  return tf.tidy(() => {
    const { clipCoef, entCoef } = config;
    const mean = (x: tf.Tensor) => tf.div(tf.sum(x), totalSamples) as tf.Scalar;
    const logRatio = tf.sub(newLogProbs, oldLogProbs);
    const ratio = tf.exp(logRatio);
    // Policy loss
    const pgLoss1 = tf.mul(tf.neg(advantages), ratio);
    const pgLoss2 = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipCoef, 1 + clipCoef));
    const policyLoss = mean(tf.maximum(pgLoss1, pgLoss2));
    // Entropy bonus
    const entropy = mean(entropies);
    const loss = tf.sub(policyLoss, tf.mul(entropy, entCoef)) as tf.Scalar;
    // Diagnostics (no gradient needed, cheap)
    const oldApproxKl = mean(tf.neg(logRatio));
    const approxKl = mean(tf.sub(tf.sub(ratio, 1), logRatio));
    const clipFraction = mean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), clipCoef), 'float32'));
    return { loss, policyLoss, entropy, oldApproxKl, approxKl, clipFraction };
  });
}

/**
 * The critic's loss over a chunk of samples (a sum divided by `totalSamples`):
 * `mean((V_new - R)^2)` as the reference, or with `clipValueLoss` CleanRL's
 * `0.5 mean(max((V_new - R)^2, (V_clip - R)^2))`, `V_clip = V_old + clip(V_new - V_old, -eps, eps)`.
 *
 * **Input shape:** every tensor [b].
 * @returns a scalar owned by the caller.
 * @internal
 */
export function criticLoss(
  newValues: tf.Tensor1D,
  oldValues: tf.Tensor1D,
  returns: tf.Tensor1D,
  totalSamples: number,
  config: Pick<PpoConfig, 'clipCoef' | 'clipValueLoss'>,
): tf.Scalar {
  return tf.tidy(() => {
    // Value loss
    const unclipped = tf.square(tf.sub(newValues, returns));
    if (!config.clipValueLoss) return tf.div(tf.sum(unclipped), totalSamples) as tf.Scalar;
    const clipped = tf.add(oldValues, tf.clipByValue(tf.sub(newValues, oldValues), -config.clipCoef, config.clipCoef));
    const clippedLoss = tf.square(tf.sub(clipped, returns));
    return tf.div(tf.mul(tf.sum(tf.maximum(unclipped, clippedLoss)), 0.5), totalSamples) as tf.Scalar;
  });
}

/**
 * Log-probabilities of the masked categorical distribution over the last axis:
 * `log p_i = l_i - log sum_{j allowed} exp(l_j)` for allowed i; disallowed entries get a logit
 * of -1e9 (probability exactly 0, finite gradients).
 *
 * **Input shape:** `logits` [..., N], `mask` bool of the same shape (true = allowed).
 * @returns a new tensor owned by the caller.
 * @internal
 */
export function maskedLogSoftmax<T extends tf.Tensor>(logits: T, mask: tf.Tensor): T {
  return tf.tidy(() => tf.logSoftmax(tf.where(mask, logits, tf.fill(logits.shape, MASK_LOGIT))) as T);
}

/**
 * Entropy of categorical distributions given their log-probabilities over the last axis:
 * `H = -sum_i p_i log p_i`. Masked entries (p = 0) contribute 0.
 *
 * **Input shape:** [..., N]. **Output shape:** [...].
 * @returns a new tensor owned by the caller.
 * @internal
 */
export function entropyFromLogProbs(logProbs: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), -1)));
}

/**
 * Loss values and gradients of one PPO epoch on a batch, as the event-sourced update and the
 * dense reference return them.
 * @category PPO
 */
export interface PpoLossResult {
  /** The actor's loss `policyLoss - entCoef * entropy`. */
  actorLoss: number;
  /** The critic's loss. */
  valueLoss: number;
  /** The clipped surrogate. */
  policyLoss: number;
  /** Mean entropy. */
  entropy: number;
  /** CleanRL `old_approx_kl`. */
  oldApproxKl: number;
  /** CleanRL `approx_kl`. */
  approxKl: number;
  /** CleanRL `clipfrac`. */
  clipFraction: number;
  /** Gradients of the actor loss by variable name (new tensors, owned by the caller). */
  actorGrads: tf.NamedTensorMap;
  /** Gradients of the critic loss by variable name (new tensors, owned by the caller). */
  criticGrads: tf.NamedTensorMap;
}
