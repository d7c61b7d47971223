/**
 * Types of the targeted state update (TSU): the state it works on, the network f_S it calls,
 * the row changes it returns, and the configs of the update and of its trainer.
 *
 * @packageDocumentation
 */
import type { tf } from '../core/tf.js';

/**
 * The state S_t of one slide as the TSU sees it, held in plain typed arrays (row-major).
 *
 * `values` is S_t [N, d]; `norms` caches `||S_t(i)||` (kept in step with `values` by
 * {@link applyStateUpdate}); `visited` marks the rows chosen so far (they hold their V);
 * `rewritten` marks the rows already rewritten by f_S (with `rewriteOnce` they are never
 * rewritten again). Create one with {@link createTsuState}.
 * @category TSU
 */
export interface TsuState {
  /** N, the number of rows (low-resolution patches). */
  readonly numRows: number;
  /** d, the feature width. */
  readonly dim: number;
  /** S_t, row-major [N * d]. */
  readonly values: Float32Array;
  /** `||S_t(i)||` of every row, [N] (float64). */
  readonly norms: Float64Array;
  /** 1 for every row chosen so far, [N]. */
  readonly visited: Uint8Array;
  /** 1 for every row rewritten by f_S so far (the reference's "covered" patches), [N]. */
  readonly rewritten: Uint8Array;
}

/**
 * A network that maps `[V(a), S(a), S(i)]` (3d) to a new state row (d): f_S. {@link StateMlp}
 * is the reference's; any object with this shape works (a trained tfjs model wrapped in a
 * function, for example).
 * @category TSU
 */
export interface StateUpdateNet {
  /** d, the width of a state row. The input width is 3d. */
  readonly dim: number;
  /**
   * Applies f_S to a batch of rows.
   *
   * **Input shape:** `x` [n, 3d], each row `[V(a), S(a), S(i)]`. **Output shape:** [n, d].
   * @returns a new tensor owned by the caller.
   */
  apply(x: tf.Tensor2D): tf.Tensor2D;
  /**
   * Optional, for inference: f_S on rows that share their first 2d inputs,
   * `apply([shared, rows_i])` for every i, computed with the shared part's product done once.
   *
   * **Input shapes:** `shared` [1, 2d] (`[V(a), S(a)]`), `rows` [n, d] (the S(i)).
   * **Output shape:** [n, d]. No gradient reaches the weights through this path.
   * @returns a new tensor owned by the caller.
   */
  applyShared?(shared: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D;
}

/** Which rows a step rewrites with f_S. @category TSU */
export type StateUpdateMode = 'tsu' | 'global' | 'none';

/**
 * Options of one state update.
 * @category TSU
 */
export interface TsuConfig {
  /** Cosine threshold τ in (0, 1]: rows with `|cos(S_i, S_a)| >= tau` are similar. */
  tau: number;
  /**
   * When true (the reference training env), a row is rewritten by f_S at most once per
   * episode; when false (the reference's with-feature-extraction inference env), any row
   * not yet chosen may be rewritten again.
   */
  rewriteOnce: boolean;
}

/**
 * What one state update changes, without the state itself (row-sparse).
 * @category TSU
 */
export interface StateUpdateResult {
  /** Every row whose value changes: the chosen row a first, then the rewritten set C ascending. */
  rows: Int32Array;
  /** The new values of `rows`, same order, row-major [|rows| * d]. */
  values: Float32Array;
  /** The rewritten set C (ascending; excludes a). */
  similarSet: Int32Array;
}

/**
 * Construction arguments of {@link StateMlp}.
 * @category TSU
 */
export interface StateMlpArgs {
  /** d, the width of a state row (input 3d, output d). Default 384. */
  dim?: number;
  /** Hidden width. Default 2d (768 for d = 384, `modules/fglobal_mlp.py`). */
  hiddenDim?: number;
  /** LayerNorm epsilon. Default 1e-5 (PyTorch `nn.LayerNorm`). */
  layerNormEps?: number;
  /** Seed of the initial weights (PyTorch's default `nn.Linear` init). Default 0. */
  seed?: number;
}

/**
 * Hyper-parameters of {@link trainTsu}.
 * @category TSU
 */
export interface TrainTsuConfig {
  /** Peak learning rate of the half-cosine schedule. */
  learningRate: number;
  /** Final learning rate of the schedule. */
  minLr: number;
  /** Decoupled weight decay of AdamW. */
  weightDecay: number;
  /** Number of epochs (one random anchor per training slide and epoch). */
  epochs: number;
  /** Linear warm-up epochs. */
  warmupEpochs: number;
  /** Cosine threshold τ of the similar set (computed on Z during training). */
  tau: number;
  /** Seed of anchors, shuffles and the initial weights. */
  seed: number;
  /** Fixed random anchors per validation slide (drawn once from the seed). */
  valAnchorsPerSlide: number;
  /** Validate every this many epochs (and always after the last). */
  evalEvery: number;
  /** Memory budget, in MiB, for keeping Z and V of the slides between epochs. */
  cacheLimitMb: number;
  /** Write the resumable `'last'` checkpoint every this many epochs (and after the last). */
  checkpointEvery: number;
}

/** One line of the training history. @category TSU */
export interface TsuEpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** Mean training MSE of the epoch (one anchor per slide). */
  trainMse: number;
  /** Validation MSE (NaN on epochs without validation). */
  valMse: number;
  /** Learning rate at the end of the epoch. */
  learningRate: number;
}
