/**
 * Gated multi-branch attention (ACMIL's MBA, the attention of both HAFED stages) as a
 * tfjs-layers layer, with stochastic top-k instance masking (STKIM) in training.
 *
 * @packageDocumentation
 */
import { tf, tfl } from '../core/tf.js';
import { matMul, MASK_LOGIT } from '../core/ops.js';
import { gatedScores, type ScoreWeights } from '../core/gated_attention.js';
import { Rng, createRng } from '../core/random.js';
import { linearInit } from '../core/init.js';
import { ShapeError, ValueError, fmtShape } from '../core/errors.js';

/** The base arguments of every tfjs-layers layer (`name`, `trainable`, ...). */
export type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Arguments of {@link MultiBranchAttention}. */
export interface MultiBranchAttentionArgs extends BaseLayerArgs {
  /** M: number of attention branches, each with its own attention map. Default 1. */
  numBranches?: number;
  /**
   * D: width of the tanh and sigmoid hidden layers. Default 128 (docs/reference-code.md §2.1:
   * `Attention_Gated(L, D=128, K)`, used with d = 384).
   */
  attentionDim?: number;
  /** Gate the tanh features with a sigmoid branch (`tanh(x W_V) * sigmoid(x W_U)`). Default true. */
  gated?: boolean;
  /**
   * STKIM: the number of highest-scoring instances of each branch among which instances are
   * masked in training (`n_masked_patch`). 0 disables masking. Default 0.
   */
  maskTopK?: number;
  /**
   * STKIM: the fraction of those top instances that is masked, `floor(min(maskTopK, n) * maskDrop)`
   * of them, drawn uniformly per branch at every training call. Default 0.
   */
  maskDrop?: number;
  /** Seed of the weight initialisation and of the STKIM draws (default: a random seed). */
  seed?: number;
}

/** Options of {@link MultiBranchAttention.forward}. */
export interface AttentionForwardOptions {
  /** Training mode: STKIM masking is applied only then. Default false. */
  training?: boolean;
  /**
   * Instance mask, true/1 = keep: shape [n] (shared) or the input's shape without d,
   * `[..., n]`. Masked instances get attention 0 and are never among the STKIM top-k.
   */
  mask?: tf.Tensor;
  /** The generator of the STKIM draws (default: the layer's own, seeded by `seed`). */
  rng?: Rng;
  /** Compute the per-branch pooled features (default true). */
  pool?: boolean;
  /** Whether gradients must flow back into the input (default true; false when it is data). */
  inputGrad?: boolean;
}

/** What {@link MultiBranchAttention.forward} returns; every tensor is owned by the caller. */
export interface MultiBranchAttentionOutput {
  /** Attention logits after masking (masked instances hold -1e9), `[..., M, n]`. */
  logits: tf.Tensor;
  /** Attention weights, a softmax over the n instances of each branch, `[..., M, n]`. */
  attention: tf.Tensor;
  /** Per-branch attention pooling `sum_i a_mi x_i`, `[..., M, d]` (absent when `pool` is false). */
  pooled?: tf.Tensor;
}

let defaultSeedCounter = 0;

/** Swaps the last two axes. */
function swapLastAxes(x: tf.Tensor): tf.Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return tf.transpose(x, perm);
}

/**
 * Attention pooling of instances: `pooled[..., m, :] = sum_i attention[..., m, i] x[..., i, :]`.
 * Rank 2 inputs use one matMul; higher ranks (one bag per leading index, e.g. the k sub-patches
 * of each of N patches) use a broadcast product, which has a cheap gradient on every backend.
 *
 * **Input shape:** `attention` [..., M, n], `x` [..., n, d]. **Output shape:** [..., M, d].
 * @returns a new tensor owned by the caller.
 * @example
 * ```ts
 * attentionPool(tf.tensor2d([[0.25, 0.75]]), tf.tensor2d([[4, 0], [0, 4]])); // [[1, 3]]
 * ```
 * @category HAFED
 */
export function attentionPool(attention: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.rank - 2];
  const d = x.shape[x.rank - 1];
  const m = attention.shape[attention.rank - 2];
  const lead = x.shape.slice(0, -2);
  if (attention.rank !== x.rank || attention.shape[attention.rank - 1] !== n || lead.some((s, i) => s !== attention.shape[i])) {
    throw new ShapeError(
      `Error in attentionPool: expected attention [..., M, n] and x [..., n, d] with equal leading axes, but got ${fmtShape(attention.shape)} and ${fmtShape(x.shape)}.`,
    );
  }
  return tf.tidy(() => {
    if (x.rank === 2) return matMul(attention as tf.Tensor2D, x as tf.Tensor2D);
    const b = lead.reduce((p, q) => p * q, 1);
    const x3 = tf.reshape(x, [b, n, d]);
    let pooled: tf.Tensor;
    if (m === 1) {
      pooled = tf.sum(tf.mul(tf.reshape(attention, [b, n, 1]), x3), 1); // [b, d]
    } else {
      pooled = tf.sum(tf.mul(tf.reshape(attention, [b, m, n, 1]), tf.reshape(x3, [b, 1, n, d])), 2); // [b, M, d]
    }
    return tf.reshape(pooled, [...lead, m, d]);
  });
}

/**
 * Gated multi-branch attention over the instances of a bag (ACMIL `Attention_Gated` with K
 * branches; CLAM `Attn_Net_Gated`):
 * ```
 * s_i = W_w (tanh(W_V x_i + b_V) * sigmoid(W_U x_i + b_U)) + b_w      (M scores per instance)
 * a_m = softmax_i(s_mi)   over the n instances, per branch m
 * pooled_m = sum_i a_mi x_i
 * ```
 * The instance axis is the second to last one: `[n, d]` is one bag, `[B, n, d]` is B bags
 * (HAFED stage 1 passes the N patches' k sub-patches as `[N, k, d]`).
 *
 * In training, stochastic top-k instance masking (STKIM, ACMIL) sets
 * `floor(min(maskTopK, n) * maskDrop)` of the `min(maskTopK, n)` highest logits of each branch,
 * chosen uniformly at random, to -1e9 before the softmax (capped at n - 1 so that one instance
 * always keeps its weight).
 *
 * As a layer (`apply`), the input is `x` or `[x, mask]` and the outputs are
 * `[pooled [..., M, d], attention [..., M, n]]`; {@link MultiBranchAttention.forward} returns
 * the same as a named object, plus the masked logits.
 *
 * **Input shape:** `[..., n, d]`. **Output shape:** `[[..., M, d], [..., M, n]]`.
 *
 * Porting note: PyTorch `Linear` weights are `(out, in)`; the kernels here are `(in, out)`:
 * `kernelV = attention_V.0.weight^T`, `kernelU = attention_U.0.weight^T`,
 * `kernelW = attention_weights.weight^T`.
 *
 * @example
 * ```ts
 * const layer = multiBranchAttention({ numBranches: 3, attentionDim: 16, seed: 1 });
 * const { attention, pooled } = layer.forward(tf.randomNormal([100, 32]));
 * // attention [3, 100] (rows sum to 1), pooled [3, 32]
 * ```
 * @category HAFED
 */
export class MultiBranchAttention extends tfl.layers.Layer {
  /** Name under which the layer is registered for serialization (`tfl.serialization.registerClass`). */
  static className = 'MultiBranchAttention';
  /** M. */
  readonly numBranches: number;
  /** D. */
  readonly attentionDim: number;
  /** Whether the sigmoid gate is used. */
  readonly gated: boolean;
  /** STKIM top-k. */
  readonly maskTopK: number;
  /** STKIM masked fraction of the top-k. */
  readonly maskDrop: number;
  /** Seed of the initialisation and of the default STKIM generator. */
  readonly seed: number;
  private readonly rng: Rng;
  private readonly named = new Map<string, tfl.LayerVariable>();

  constructor(args: MultiBranchAttentionArgs = {}) {
    const { numBranches = 1, attentionDim = 128, gated = true, maskTopK = 0, maskDrop = 0, seed, ...base } = args;
    super(base);
    const posInt = (name: string, v: number, min: number) => {
      if (!(Number.isInteger(v) && v >= min)) {
        throw new ValueError(`Expected ${name} to be an integer >= ${min}, but got ${v}.`);
      }
    };
    posInt('numBranches', numBranches, 1);
    posInt('attentionDim', attentionDim, 1);
    posInt('maskTopK', maskTopK, 0);
    if (!(typeof maskDrop === 'number' && maskDrop >= 0 && maskDrop <= 1)) {
      throw new ValueError(`Expected maskDrop to be a number in [0, 1], but got ${maskDrop}.`);
    }
    if (typeof gated !== 'boolean') throw new ValueError(`Expected gated to be a boolean, but got ${String(gated)}.`);
    if (seed !== undefined && !Number.isFinite(seed)) throw new ValueError(`Expected seed to be a finite number, but got ${seed}.`);
    this.numBranches = numBranches;
    this.attentionDim = attentionDim;
    this.gated = gated;
    this.maskTopK = maskTopK;
    this.maskDrop = maskDrop;
    this.seed = seed ?? (Math.floor(Math.random() * 2 ** 31) + defaultSeedCounter++) % 2 ** 31;
    this.rng = createRng(this.seed);
  }

  /** Creates the weights for inputs of feature width `inputShape[-1]` (PyTorch `Linear` initialisation, seeded). */
  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const d = shape[shape.length - 1];
    if (d == null || !(d > 0)) throw new ShapeError(`Error in MultiBranchAttention: the feature axis must be known, but got input shape ${fmtShape(shape as number[])}.`);
    const D = this.attentionDim;
    const M = this.numBranches;
    const add = (name: string, shape: number[], fanIn: number) => {
      const w = this.addWeight(name, shape, 'float32', tfl.initializers.zeros());
      const init = linearInit(this.rng, shape, fanIn);
      w.write(init);
      init.dispose();
      this.named.set(name, w);
    };
    add('kernelV', [d, D], d);
    add('biasV', [D], d);
    if (this.gated) {
      add('kernelU', [d, D], d);
      add('biasU', [D], d);
    }
    add('kernelW', [D, M], D);
    add('biasW', [M], D);
    this.built = true;
  }

  /** Builds the layer for feature width `d` if it is not built yet; checks `d` otherwise. */
  ensureBuilt(d: number): void {
    if (!this.built) {
      this.build([null, d]);
      return;
    }
    const have = this.named.get('kernelV')!.shape[0];
    if (have !== d) {
      throw new ShapeError(`Error in MultiBranchAttention: the layer was built for features of width ${have}, but got width ${d}.`);
    }
  }

  /** The layer's variables by short name (`kernelV`, `biasV`, `kernelU`, `biasU`, `kernelW`, `biasW`). */
  weightMap(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const [k, v] of this.named) out[k] = v.read() as tf.Variable;
    return out;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape[] {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const lead = shape.slice(0, -2);
    const n = shape[shape.length - 2];
    const d = shape[shape.length - 1];
    return [
      [...lead, this.numBranches, d],
      [...lead, this.numBranches, n],
    ];
  }

  /**
   * The attention logits of every instance before any masking, `s_i` in the formula. They
   * depend on that instance alone.
   *
   * **Input shape:** `[..., n, d]`. **Output shape:** `[..., n, M]`.
   * @param inputGrad whether gradients must flow back into `x` (default true; false when `x`
   *   is data, which saves one matrix product in training).
   * @returns a new tensor owned by the caller.
   */
  rowScores(x: tf.Tensor, inputGrad = true): tf.Tensor {
    if (x.rank < 2) throw new ShapeError(`Error in MultiBranchAttention: expected input [..., n, d], but got ${fmtShape(x.shape)}.`);
    const d = x.shape[x.rank - 1];
    this.ensureBuilt(d);
    return tf.tidy(() => {
      const rows = (x.rank === 2 ? x : tf.reshape(x, [-1, d])) as tf.Tensor2D;
      const s = gatedScores(rows, this.weightMap() as unknown as ScoreWeights, inputGrad); // [R, M]
      return tf.reshape(s, [...x.shape.slice(0, -1), this.numBranches]);
    });
  }

  /**
   * Runs the attention. See the class documentation for the formula.
   *
   * **Input shape:** `x` `[..., n, d]`. **Output shapes:** `logits`, `attention` `[..., M, n]`;
   * `pooled` `[..., M, d]`.
   * @returns named tensors owned by the caller.
   */
  forward(x: tf.Tensor, options: AttentionForwardOptions = {}): MultiBranchAttentionOutput {
    const { training = false, mask, rng = this.rng, pool = true, inputGrad = true } = options;
    if (x.rank < 2) throw new ShapeError(`Error in MultiBranchAttention: expected input [..., n, d], but got ${fmtShape(x.shape)}.`);
    const n = x.shape[x.rank - 2];
    if (n === 0) throw new ShapeError(`Error in MultiBranchAttention: expected at least one instance, but got input ${fmtShape(x.shape)}.`);
    return tf.tidy(() => {
      const raw = swapLastAxes(this.rowScores(x, inputGrad)); // [..., M, n]
      let keep: tf.Tensor | null = mask ? this.instanceKeep(mask, x, raw.shape) : null;
      if (training && this.maskTopK > 0 && this.maskDrop > 0) {
        const stkim = this.stkimKeep(raw, keep, rng);
        if (stkim) keep = keep ? tf.logicalAnd(keep, stkim) : stkim;
      }
      const logits = keep ? tf.where(keep, raw, tf.fill(raw.shape, MASK_LOGIT)) : raw;
      const attention = tf.softmax(logits); // over the n instances
      const out: { logits: tf.Tensor; attention: tf.Tensor; pooled?: tf.Tensor } = { logits, attention };
      if (pool) out.pooled = attentionPool(attention, x);
      return out as tf.TensorContainerObject;
    }) as unknown as MultiBranchAttentionOutput;
  }

  /**
   * The STKIM keep mask of training for attention logits `[..., M, n]` (bool, same shape; false
   * = masked), drawn from `rng` (default: the layer's generator); null when this layer masks
   * nothing (`maskTopK` or `maskDrop` is 0, or the count rounds to 0). {@link MultiBranchAttention.forward}
   * applies the same mask in training.
   * @returns a new tensor owned by the caller, or null.
   */
  stkimMask(logits: tf.Tensor, rng: Rng = this.rng): tf.Tensor | null {
    if (!(this.maskTopK > 0 && this.maskDrop > 0)) return null;
    return this.stkimKeep(logits, null, rng);
  }

  /** Layer API: `inputs` is `x` or `[x, mask]`; returns `[pooled, attention]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor[] {
    return tf.tidy(() => {
      const [x, mask] = Array.isArray(inputs) ? inputs : [inputs, undefined];
      const out = this.forward(x, { training: Boolean(kwargs?.training), mask });
      return [out.pooled!, out.attention];
    });
  }

  /**
   * Frees the weights. A layer used through {@link MultiBranchAttention.forward} only (never
   * `apply`'d in a model) is freed as well, not refused as tfjs-layers does for unused layers.
   */
  override dispose(): ReturnType<InstanceType<typeof tfl.layers.Layer>['dispose']> {
    if (this._refCount === null) this._refCount = 1;
    return super.dispose();
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      numBranches: this.numBranches,
      attentionDim: this.attentionDim,
      gated: this.gated,
      maskTopK: this.maskTopK,
      maskDrop: this.maskDrop,
      seed: this.seed,
    };
    return { ...super.getConfig(), ...config };
  }

  /** Broadcasts an instance mask ([n] or [..., n]) to the logits' shape [..., M, n], as bool. */
  private instanceKeep(mask: tf.Tensor, x: tf.Tensor, logitsShape: number[]): tf.Tensor {
    const n = x.shape[x.rank - 2];
    const instShape = x.shape.slice(0, -1);
    const ok = (mask.rank === 1 && mask.shape[0] === n) || (mask.rank === instShape.length && mask.shape.every((s, i) => s === instShape[i]));
    if (!ok) {
      throw new ShapeError(
        `Error in MultiBranchAttention: expected a mask of shape [${n}] or ${fmtShape(instShape)}, but got ${fmtShape(mask.shape)}.`,
      );
    }
    const keep = mask.dtype === 'bool' ? mask : tf.greater(mask, 0);
    const lead = mask.rank === 1 ? [] : instShape.slice(0, -1);
    return tf.broadcastTo(tf.reshape(keep, [...lead, 1, n]), logitsShape);
  }

  /**
   * STKIM: a keep-mask (bool, shape of `logits`) with `floor(min(maskTopK, n) * maskDrop)`
   * of each row's top-k instances set to false; null when that count is 0.
   */
  private stkimKeep(logits: tf.Tensor, keep: tf.Tensor | null, rng: Rng): tf.Tensor | null {
    const n = logits.shape[logits.rank - 1];
    const ranks = this.stkimRanks(logits.size / n, n, rng);
    return ranks ? this.stkimMaskFromRanks(logits, ranks, keep) : null;
  }

  /**
   * The random part of STKIM for `rows` rows of `n` instances: for each row in order, the
   * `count = floor(min(maskTopK, n) * maskDrop)` ranks (among the row's top `min(maskTopK, n)`
   * logits) whose instances are masked, drawn from `rng`. The draws do not depend on the
   * logits, so they can be made in one place and applied to rows scored elsewhere
   * ({@link MultiBranchAttention.stkimMaskFromRanks}).
   * @returns [rows * count] ranks, or null when nothing is masked.
   */
  stkimRanks(rows: number, n: number, rng: Rng = this.rng): Int32Array | null {
    if (!(this.maskTopK > 0 && this.maskDrop > 0)) return null;
    const topK = Math.min(this.maskTopK, n);
    const count = Math.min(Math.floor(topK * this.maskDrop), n - 1);
    if (count <= 0) return null;
    const out = new Int32Array(rows * count);
    for (let r = 0; r < rows; r++) out.set(rng.sample(topK, count), r * count);
    return out;
  }

  /**
   * The STKIM keep mask (bool, shape of `logits` [..., M, n]) that masks, in every row, the
   * instances at the given ranks of the row's top `min(maskTopK, n)` logits (instances masked
   * by `keep` are never among them).
   * @param ranks from {@link MultiBranchAttention.stkimRanks} for the rows of `logits`.
   * @returns a new tensor owned by the caller.
   */
  stkimMaskFromRanks(logits: tf.Tensor, ranks: Int32Array, keep: tf.Tensor | null = null): tf.Tensor {
    return stkimMaskFromRanks(logits, ranks, Math.min(this.maskTopK, logits.shape[logits.rank - 1]), keep);
  }
}

/**
 * The STKIM keep mask (bool, shape of `logits` [..., n]) that masks, in every row, the
 * instances at the given ranks of the row's top `topK` logits (instances masked by `keep` are
 * never among them). {@link MultiBranchAttention} draws the ranks (`stkimRanks`).
 * @param ranks [rows * count], the ranks of each row in order.
 * @returns a new tensor owned by the caller.
 * @category HAFED
 */
export function stkimMaskFromRanks(logits: tf.Tensor, ranks: Int32Array, topK: number, keep: tf.Tensor | null = null): tf.Tensor {
  const n = logits.shape[logits.rank - 1];
  const rows = logits.size / n;
  const count = ranks.length / rows;
  if (!Number.isInteger(count)) throw new ShapeError(`Expected STKIM ranks for ${rows} rows, but got ${ranks.length} values.`);
  const idx = tf.tidy(() => {
    const ranked = keep ? tf.where(keep, logits, tf.fill(logits.shape, -Infinity)) : logits;
    return tf.topk(ranked, topK).indices;
  });
  const top = idx.dataSync();
  idx.dispose();
  const out = new Uint8Array(rows * n).fill(1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < count; c++) out[r * n + top[r * topK + ranks[r * count + c]]] = 0;
  }
  return tf.tensor(out, logits.shape, 'bool');
}

tf.serialization.registerClass(MultiBranchAttention, 'sasha');

/**
 * Creates a {@link MultiBranchAttention} layer (the factory of the layer, as `tf.layers.dense`).
 * @category HAFED
 */
export function multiBranchAttention(args: MultiBranchAttentionArgs = {}): MultiBranchAttention {
  return new MultiBranchAttention(args);
}
