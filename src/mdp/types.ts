/**
 * Types of the WSI environment: the classifier contract, the config, the observation and
 * the info.
 *
 * @packageDocumentation
 */
import type { tf } from '../core/tf.js';
import type { StateUpdateMode, StateUpdateNet } from '../tsu/types.js';

/**
 * What the environment needs from a slide classifier: HAFED stage 2 split into its
 * row-independent attention logits and its head. `Hafed` satisfies it.
 *
 * The slide logits of a state S [N, d] are
 * `stage2HeadLogits( sum_i abar_i S_i )`, with
 * `abar = mean_m softmax_over_N( stage2RowLogits(S)[:, m] )`.
 * Because the row logits of row i depend on S_i only, the env caches them and re-scores only
 * the rows a step changes.
 * @category MDP
 */
export interface StateClassifier {
  /** d, the feature width. */
  readonly dim: number;
  /** C, the number of classes. */
  readonly numClasses: number;
  /** M, the number of attention branches of stage 2. */
  readonly numBranches: number;
  /**
   * Stage-2 attention logits of each row (before the softmax over N).
   *
   * **Input shape:** `x` [n, d]. **Output shape:** [n, M].
   * @returns a new tensor owned by the caller.
   */
  stage2RowLogits(x: tf.Tensor2D): tf.Tensor2D;
  /**
   * The slide head on pooled embeddings, one per row (a slide's pooled embedding is one row).
   *
   * **Input shape:** `pooled` [n, d]. **Output shape:** [n, C].
   * @returns a new tensor owned by the caller.
   */
  stage2HeadLogits(pooled: tf.Tensor2D): tf.Tensor2D;
  /**
   * Optional: the weights of a linear slide head (`stage2HeadLogits(p) = p kernel + bias`), so
   * that the environment computes the slide logits of every step without a tensor call.
   * @returns copies: `kernel` [d * C] row-major (d rows of C), `bias` [C].
   */
  stage2HeadWeights?(): { kernel: Float32Array; bias: Float32Array };
}

/**
 * Config of {@link WsiEnv}.
 * @category MDP
 */
export interface WsiEnvConfig {
  /** f in (0, 1]: the episode has T = ceil(f N) steps. */
  budget: number;
  /** Cosine threshold τ in (0, 1] of the targeted state update. */
  tau: number;
  /** A row is rewritten by f_S at most once per episode (the reference training env). */
  rewriteOnce: boolean;
  /** `'tsu'` (targeted), `'global'` (every unvisited row; ablation) or `'none'` (only S(a) <- V(a)). */
  update: StateUpdateMode;
}

/**
 * What the agent sees at each step.
 * @category MDP
 */
export interface WsiObservation {
  /** N, the number of low-resolution patches. */
  numPatches: number;
  /** d, the feature width. */
  dim: number;
  /** Steps taken so far in the episode. */
  t: number;
  /** T = ceil(f N), the number of steps of the episode. */
  budget: number;
  /** [N], 1 = the patch may be chosen (not visited yet). A copy owned by the caller. */
  actionMask: Uint8Array;
  /**
   * S_t, row-major [N * d]. A read-only view of the env's state, valid until the next `step`
   * or `reset`: copy it to keep it, never write to it.
   */
  state: Float32Array;
  /** M, the width of {@link WsiObservation.rowScores} (the classifier's attention branches). */
  numScores?: number;
  /**
   * The frozen classifier's stage-2 attention logits of every row of S_t, row-major [N * M]: a
   * read-only view like `state` (`WsiEnv` keeps them cached for its reward).
   */
  rowScores?: Float32Array;
  /**
   * [N], 1 for every row whose state is no longer its low-resolution feature (chosen, or
   * rewritten by the state update). A read-only view like `state`.
   */
  changed?: Uint8Array;
}

/**
 * Diagnostics of a step (and of a reset, where the change fields are empty).
 * @category MDP
 */
export interface WsiInfo {
  /** Steps taken so far. */
  t: number;
  /** The action of this step (-1 at reset). */
  action: number;
  /** [N], 1 = allowed (the same array as `observation.actionMask`). */
  actionMask: Uint8Array;
  /** Every row whose state changed at this step: a first, then C ascending. */
  changedRows: Int32Array;
  /** The new values of `changedRows`, same order, row-major [|changedRows| * d]. */
  changedValues: Float32Array;
  /** The classifier's attention logits of `changedRows`, same order, [|changedRows| * M]. */
  changedScores: Float32Array;
  /** C, the rows rewritten by f_S at this step. */
  similarSet: Int32Array;
  /** Slide logits of the classifier on S_t, [C]. */
  slideLogits: Float32Array;
  /** Their softmax, [C]. */
  probs: Float32Array;
  /** `-log probs[label]` (NaN when the slide has no label). */
  crossEntropy: number;
}

/**
 * Construction options of {@link WsiEnv} (and of the naive reference env).
 * @category MDP
 */
export interface WsiEnvOptions {
  /** The frozen classifier (HAFED stage 2); its `dim` must equal d. */
  classifier: StateClassifier;
  /** The frozen f_S; null for no update (then `update` defaults to `'none'`). */
  fS: StateUpdateNet | null;
  /** Z, the low-resolution features, [N, d] (read once; not disposed). */
  lowRes: tf.Tensor2D;
  /** V, the HAFED stage-1 features, [N, d] (read once; not disposed). Training and validation use it. */
  aggregated?: tf.Tensor2D;
  /** The slide's class; without it every reward is 0 and `crossEntropy` is NaN. */
  label?: number;
  /**
   * Produces V(a) on demand when `step` gets no `v` and there is no cached V (inference: read
   * and encode the k sub-patches of patch a, then HAFED stage 1). Must return [d] values.
   */
  zoom?: (action: number) => ArrayLike<number>;
  /** Config (defaults: {@link DEFAULT_WSI_ENV_CONFIG}). */
  config?: Partial<WsiEnvConfig>;
}
