/**
 * HAFED stage 1: the feature aggregator, which pools the k high-resolution sub-patch features
 * of every low-resolution patch into one vector (U [N, k, d] -> V [N, d]).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, fmtShape } from '../core/errors.js';
import type { Rng } from '../core/random.js';
import { MultiBranchAttention, attentionPool } from './multi_branch_attention.js';
import { getAttentionGradMode, type ScoreWeights } from '../core/gated_attention.js';
import { poolSubPatches, poolSubPatchesNoGrad } from './sub_patch_pooling.js';

/** Arguments of {@link FeatureAggregator}. */
export interface FeatureAggregatorArgs {
  /** d: feature width. */
  dim: number;
  /** M1: attention branches (the reference uses 1). Default 1. */
  numBranches?: number;
  /** D: hidden width of the attention. Default 128. */
  attentionDim?: number;
  /** Sigmoid gate. Default true. */
  gated?: boolean;
  /** STKIM top-k over the k sub-patches. Default 0 (off). */
  maskTopK?: number;
  /** STKIM masked fraction. Default 0. */
  maskDrop?: number;
  /** Initialisation seed. */
  seed?: number;
}

/** Options of a forward pass. */
export interface StageForwardOptions {
  /** Training mode (STKIM masking on). Default false. */
  training?: boolean;
  /** Generator of the STKIM draws. */
  rng?: Rng;
}

/** What {@link FeatureAggregator.forward} returns; tensors owned by the caller. */
export interface FeatureAggregatorOutput {
  /** V: one vector per patch, [N, d]. */
  features: tf.Tensor2D;
  /** Attention over each patch's sub-patches, [N, M1, k]. */
  attention: tf.Tensor3D;
}

/**
 * HAFED stage 1 (docs/reference-code.md §2.2 step 1; §3): gated multi-branch attention over the k
 * sub-patches of each patch, softmax over k, mean over the M1 branches, then pooling:
 * `V_i = sum_j abar_ij U_ij`, `abar_i = mean_m softmax_j(s_mij)`.
 *
 * **Input shape:** U `[N, k, d]`. **Output shape:** V `[N, d]`.
 * @example
 * ```ts
 * const agg = new FeatureAggregator({ dim: 384, seed: 1 });
 * const { features } = agg.forward(tf.randomNormal([50, 16, 384]) as tf.Tensor3D); // [50, 384]
 * ```
 * @category HAFED
 */
export class FeatureAggregator {
  /** The stage-1 attention layer. */
  readonly attention: MultiBranchAttention;
  /** d. */
  readonly dim: number;

  constructor(args: FeatureAggregatorArgs) {
    const { dim, ...rest } = args;
    this.dim = dim;
    this.attention = new MultiBranchAttention(rest);
    this.attention.ensureBuilt(dim);
  }

  /**
   * Aggregates U into V.
   * @param u U, `[N, k, d]` (N >= 1).
   * @returns V `[N, d]` and the attention `[N, M1, k]`, owned by the caller.
   */
  forward(u: tf.Tensor3D, options: StageForwardOptions = {}): FeatureAggregatorOutput {
    this.checkU(u);
    const att = this.attention;
    if (att.gated && getAttentionGradMode() === 'fused') {
      const keep = options.training ? (logits: tf.Tensor3D) => att.stkimMask(logits, options.rng) : undefined;
      const { features, attention } = poolSubPatches(u, att.weightMap() as unknown as ScoreWeights, { keep });
      return { features, attention };
    }
    // The composed ops (the reference of the fused op above; tfjs differentiates them)
    return tf.tidy(() => {
      const { attention } = att.forward(u, { training: options.training, rng: options.rng, pool: false, inputGrad: false }); // [N, M1, k]
      const abar = att.numBranches === 1 ? attention : tf.mean(attention, 1, true); // [N, 1, k]
      const v = tf.reshape(attentionPool(abar, u), [u.shape[0], this.dim]) as tf.Tensor2D; // [N, d]
      return { features: v, attention: attention as tf.Tensor3D };
    });
  }

  /**
   * Stage 1 in evaluation mode for inference: the values of `forward(u)` without support for
   * gradients (nothing is kept for a backward pass).
   * @returns V `[N, d]` and the attention `[N, M1, k]`, owned by the caller.
   */
  aggregate(u: tf.Tensor3D): FeatureAggregatorOutput {
    this.checkU(u);
    if (!this.attention.gated) return this.forward(u);
    return poolSubPatchesNoGrad(u, this.attention.weightMap() as unknown as ScoreWeights);
  }

  private checkU(u: tf.Tensor3D): void {
    if (u.rank !== 3 || u.shape[2] !== this.dim) {
      throw new ShapeError(`Error in FeatureAggregator: expected U [N, k, ${this.dim}], but got ${fmtShape(u.shape)}.`);
    }
  }

  /** The variables, by stable name (`attention/kernelV`, ...). */
  weightMap(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(this.attention.weightMap())) out[`attention/${k}`] = v;
    return out;
  }

  /** Frees the weights. */
  dispose(): void {
    this.attention.dispose();
  }
}
