/**
 * Generalised advantage estimation and advantage normalisation, as pure functions on numbers.
 *
 * @packageDocumentation
 */
import { ShapeError, ValueError } from '../core/errors.js';

/** Input of {@link computeGae}: one episode (or one piece of one). @category PPO */
export interface GaeInput {
  /** r_t for t = 0..T-1. */
  rewards: ArrayLike<number>;
  /** V(S_t) for t = 0..T-1, from the critic that collected the rollout. */
  values: ArrayLike<number>;
  /**
   * V(S_T) after the last step: 0 when the episode terminated (the budget is spent, the
   * reference's "bootstrap 0 at the end"), the critic's value when it was truncated.
   */
  bootstrapValue?: number;
  /** Discount factor gamma in [0, 1]. */
  gamma: number;
  /** GAE lambda in [0, 1]. */
  gaeLambda: number;
}

/** Output of {@link computeGae}. @category PPO */
export interface GaeOutput {
  /** A_t, [T]. */
  advantages: Float64Array;
  /** The critic targets `R_t = A_t + V(S_t)`, [T]. */
  returns: Float64Array;
}

/**
 * Generalised advantage estimation (Schulman et al., 2016) over one episode, backwards in time:
 * `delta_t = r_t + gamma V_{t+1} - V_t` with `V_T = bootstrapValue`, and
 * `A_t = delta_t + gamma lambda A_{t+1}`, i.e. `A_t = sum_l (gamma lambda)^l delta_{t+l}`.
 * The returns (critic targets) are `A_t + V_t` (the reference since commit b6ef98e; CleanRL).
 *
 * No step inside the given arrays is terminal: pass one episode at a time.
 *
 * @returns new arrays owned by the caller.
 * @example
 * ```ts
 * computeGae({ rewards: [1, 1], values: [0, 0], gamma: 1, gaeLambda: 1 });
 * // advantages [2, 1], returns [2, 1]
 * ```
 * @see docs/reference-code.md §6.2 step 3; CleanRL ppo.py lines 222-231.
 * @category PPO
 */
export function computeGae(input: GaeInput): GaeOutput {
  const { rewards, values, bootstrapValue = 0, gamma, gaeLambda } = input;
  const T = rewards.length;
  if (values.length !== T) {
    throw new ShapeError(`Error in computeGae: expected ${T} values (one per reward), but got ${values.length}.`);
  }
  if (!(gamma >= 0 && gamma <= 1)) throw new ValueError(`Expected gamma to be in [0, 1], but got ${gamma}.`);
  if (!(gaeLambda >= 0 && gaeLambda <= 1)) throw new ValueError(`Expected gaeLambda to be in [0, 1], but got ${gaeLambda}.`);
  if (!Number.isFinite(bootstrapValue)) throw new ValueError(`Expected bootstrapValue to be finite, but got ${bootstrapValue}.`);
  const advantages = new Float64Array(T);
  const returns = new Float64Array(T);
  let lastGaeLam = 0;
  for (let t = T - 1; t >= 0; t--) {
    // bootstrap value if not done: only the last step looks past the given arrays
    const nextValues = t === T - 1 ? bootstrapValue : values[t + 1];
    const delta = rewards[t] + gamma * nextValues - values[t];
    lastGaeLam = delta + gamma * gaeLambda * lastGaeLam;
    advantages[t] = lastGaeLam;
    returns[t] = lastGaeLam + values[t];
  }
  return { advantages, returns };
}

/**
 * Normalises advantages over a batch: `(A - mean) / (std + 1e-8)` with the unbiased standard
 * deviation (PyTorch's `Tensor.std`, as the reference and CleanRL use; `tf.moments` gives the
 * population variance instead). A batch of one sample is only centred (its std is undefined).
 *
 * @returns a new array owned by the caller.
 * @example
 * ```ts
 * normalizeAdvantages([1, 3]); // mean 2, unbiased std sqrt(2): [-0.7071, 0.7071]
 * ```
 * @see docs/reference-code.md §6.2 step 5
 * @category PPO
 */
export function normalizeAdvantages(advantages: ArrayLike<number>, eps = 1e-8): Float64Array {
  const n = advantages.length;
  const out = new Float64Array(n);
  if (n === 0) return out;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += advantages[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (advantages[i] - mean) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  for (let i = 0; i < n; i++) out[i] = (advantages[i] - mean) / (std + eps);
  return out;
}

/**
 * Fraction of the variance of the targets the predictions explain:
 * `1 - Var[y - yPred] / Var[y]` (population variances, as CleanRL); NaN when `Var[y] = 0`.
 * 1 is perfect, 0 is no better than a constant, negative is worse.
 *
 * @example
 * ```ts
 * explainedVariance([1, 2, 3], [1, 2, 3]); // 1
 * ```
 * @category PPO
 */
export function explainedVariance(yPred: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = y.length;
  if (yPred.length !== n) throw new ShapeError(`Error in explainedVariance: expected ${n} predictions, but got ${yPred.length}.`);
  if (n === 0) return Number.NaN;
  const variance = (f: (i: number) => number): number => {
    let m = 0;
    for (let i = 0; i < n; i++) m += f(i);
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (f(i) - m) ** 2;
    return v / n;
  };
  const varY = variance((i) => y[i]);
  return varY === 0 ? Number.NaN : 1 - variance((i) => y[i] - yPred[i]) / varY;
}
