/**
 * HAFED stage 2: the slide classifier (ACMIL-style multi-branch attention MIL over the N
 * patch vectors, V [N, d] -> slide logits).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { linear } from '../core/ops.js';
import { ShapeError, fmtShape } from '../core/errors.js';
import { createRng, type Rng } from '../core/random.js';
import { linearInit } from '../core/init.js';
import { MultiBranchAttention } from './multi_branch_attention.js';
import type { StageForwardOptions } from './feature_aggregator.js';

/** Arguments of {@link SlideClassifier}. */
export interface SlideClassifierArgs {
  /** d: feature width. */
  dim: number;
  /** C: number of classes. */
  numClasses: number;
  /** M2: attention branches, each with a classifier head. Default 1. */
  numBranches?: number;
  /** D: hidden width of the attention. Default 128. */
  attentionDim?: number;
  /** Sigmoid gate. Default true. */
  gated?: boolean;
  /** STKIM top-k over the N patches. Default 0 (off). */
  maskTopK?: number;
  /** STKIM masked fraction. Default 0. */
  maskDrop?: number;
  /** Initialisation seed. */
  seed?: number;
}

/** What {@link SlideClassifier.forward} returns; tensors owned by the caller. */
export interface SlideClassifierOutput {
  /** Slide logits of the slide head on the branch-averaged pooling, [1, C]. */
  logits: tf.Tensor2D;
  /** Logits of each branch head on its own pooling, [M, C]. */
  branchLogits: tf.Tensor2D;
  /** Attention of each branch, softmax over the N patches, [M, N]. */
  attention: tf.Tensor2D;
}

let variableCounter = 0;

/** A trainable variable with a unique engine name and PyTorch `Linear` initial values. */
function linearVariable(name: string, shape: number[], fanIn: number, rng: Rng): tf.Variable {
  const init = linearInit(rng, shape, fanIn);
  const v = tf.variable(init, true, `sasha_slide_classifier_${variableCounter++}/${name}`);
  init.dispose();
  return v;
}

/**
 * HAFED stage 2 (docs/reference-code.md §2.2 step 2): gated attention with M branches over the N
 * patch vectors; each branch m pools `z_m = sum_i a_mi v_i` and has its own head
 * `branchLogits_m = z_m W_m + b_m` (trained only); the slide prediction comes from a separate
 * head on the branch-averaged pooling: `logits = (mean_m z_m) W_s + b_s`
 * (= `(sum_i abar_i v_i) W_s + b_s` with `abar = mean_m a_m`).
 *
 * **Input shape:** V `[N, d]`. **Output shapes:** logits `[1, C]`, branch logits `[M, C]`,
 * attention `[M, N]`.
 *
 * Porting note: `branchKernel[m] = classifier.m.fc.weight^T`, `slideKernel =
 * Slide_classifier.fc.weight^T`.
 * @example
 * ```ts
 * const clf = new SlideClassifier({ dim: 384, numClasses: 2, numBranches: 5, seed: 1 });
 * const { logits, attention } = clf.forward(tf.randomNormal([200, 384]) as tf.Tensor2D);
 * // logits [1, 2], attention [5, 200]
 * ```
 * @category HAFED
 */
export class SlideClassifier {
  /** The stage-2 attention layer. */
  readonly attention: MultiBranchAttention;
  /** d. */
  readonly dim: number;
  /** C. */
  readonly numClasses: number;
  /** M. */
  readonly numBranches: number;
  private readonly branchKernel: tf.Variable; // [M, d, C]
  private readonly branchBias: tf.Variable; // [M, C]
  private readonly slideKernel: tf.Variable; // [d, C]
  private readonly slideBias: tf.Variable; // [C]

  constructor(args: SlideClassifierArgs) {
    const { dim, numClasses, numBranches = 1, seed, ...rest } = args;
    this.dim = dim;
    this.numClasses = numClasses;
    this.numBranches = numBranches;
    const rng = createRng(seed ?? Math.floor(Math.random() * 2 ** 31));
    this.attention = new MultiBranchAttention({ ...rest, numBranches, seed: rng.seedInt() });
    this.attention.ensureBuilt(dim);
    this.branchKernel = linearVariable('branchKernel', [numBranches, dim, numClasses], dim, rng);
    this.branchBias = linearVariable('branchBias', [numBranches, numClasses], dim, rng);
    this.slideKernel = linearVariable('slideKernel', [dim, numClasses], dim, rng);
    this.slideBias = linearVariable('slideBias', [numClasses], dim, rng);
  }

  private checkInput(x: tf.Tensor, what: string, rows?: number): void {
    if (x.rank !== 2 || x.shape[1] !== this.dim || (rows !== undefined && x.shape[0] !== rows) || x.shape[0] === 0) {
      const want = `[${rows ?? (what === 'V' ? 'N' : 'n')}, ${this.dim}]`;
      throw new ShapeError(`Error in SlideClassifier: expected ${what} ${want}${rows === undefined ? ' with at least one row' : ''}, but got ${fmtShape(x.shape)}.`);
    }
  }

  /**
   * Classifies one slide.
   * @param v the patch vectors V (or Z, or the SASHA state), `[N, d]`, N >= 1.
   * @returns named tensors owned by the caller.
   */
  forward(v: tf.Tensor2D, options: StageForwardOptions = {}): SlideClassifierOutput {
    this.checkInput(v, 'V');
    return tf.tidy(() => {
      const { attention, pooled } = this.attention.forward(v, { training: options.training, rng: options.rng }); // [M, N], [M, d]
      const m = this.numBranches;
      const branchLogits = tf.add(
        tf.sum(tf.mul(tf.reshape(pooled!, [m, this.dim, 1]), this.branchKernel), 1),
        this.branchBias,
      ) as tf.Tensor2D; // [M, C]
      const bag = m === 1 ? pooled! : tf.mean(pooled!, 0, true); // [1, d] = abar @ V
      const logits = this.headLogits(bag as tf.Tensor2D); // [1, C]
      return { logits, branchLogits, attention: attention as tf.Tensor2D };
    });
  }

  /**
   * The attention logits of each row, before the softmax over rows: row i's logits depend on
   * row i alone, so a caller may cache them and re-score only rows that change.
   *
   * **Input shape:** `[n, d]`. **Output shape:** `[n, M]`.
   * @returns a new tensor owned by the caller.
   */
  rowLogits(x: tf.Tensor2D): tf.Tensor2D {
    this.checkInput(x, 'rows');
    return this.attention.rowScores(x) as tf.Tensor2D;
  }

  /**
   * The slide head on a pooled vector: `pooled W_s + b_s`.
   *
   * **Input shape:** `[1, d]`. **Output shape:** `[1, C]`.
   * @returns a new tensor owned by the caller.
   */
  headLogits(pooled: tf.Tensor2D): tf.Tensor2D {
    this.checkInput(pooled, 'pooled');
    return linear(pooled, this.slideKernel, this.slideBias);
  }

  /**
   * Copies of the slide head's weights: `kernel` [d * C] row-major, `bias` [C]
   * (`headLogits(p) = p kernel + bias`).
   */
  headWeights(): { kernel: Float32Array; bias: Float32Array } {
    return { kernel: (this.slideKernel.dataSync() as Float32Array).slice(), bias: (this.slideBias.dataSync() as Float32Array).slice() };
  }

  /** The variables, by stable name (`attention/kernelV`, ..., `slideKernel`). */
  weightMap(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(this.attention.weightMap())) out[`attention/${k}`] = v;
    out.branchKernel = this.branchKernel;
    out.branchBias = this.branchBias;
    out.slideKernel = this.slideKernel;
    out.slideBias = this.slideBias;
    return out;
  }

  /** Frees the weights. */
  dispose(): void {
    this.attention.dispose();
    for (const v of [this.branchKernel, this.branchBias, this.slideKernel, this.slideBias]) v.dispose();
  }
}
