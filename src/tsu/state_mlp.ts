/**
 * f_S, the state-update network of the TSU (the reference's `FGlobal`):
 * `f_S(x) = LayerNorm(W2 · GELU(W1 x + b1) + b2)`, 3d -> 2d -> d (1152 -> 768 -> 384 for
 * d = 384), exact GELU, LayerNorm eps 1e-5 with affine parameters, no residual.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { gelu, layerNorm, linear } from '../core/ops.js';
import { DataError, ShapeError, StateError, ValueError, fmtShape } from '../core/errors.js';
import { createRng } from '../core/random.js';
import { linearInit } from '../core/init.js';
import { decodeArtifacts, encodeArtifacts, loadArtifacts, saveArtifacts, type ArtifactFormat, type IOTarget } from '../core/io.js';
import type { StateMlpArgs, StateUpdateNet } from './types.js';

/** The `format` tag written into saved artifacts. */
export const STATE_MLP_FORMAT = 'sasha-wsi/state-mlp';

const STATE_MLP_ARTIFACT: ArtifactFormat = {
  format: STATE_MLP_FORMAT,
  version: 1,
  what: 'f_S network',
  writtenBy: 'StateMlp.save or `sasha train tsu`',
};

/** Names of the weights, in saved files and in {@link StateMlp.getWeights}. */
const WEIGHT_NAMES: readonly StateMlpWeightName[] = ['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'layer_norm/gamma', 'layer_norm/beta'];
/** Names of the weights of a {@link StateMlp}, as `getWeights` returns them. @category TSU */
export type StateMlpWeightName = 'fc1/kernel' | 'fc1/bias' | 'fc2/kernel' | 'fc2/bias' | 'layer_norm/gamma' | 'layer_norm/beta';

/** PyTorch state-dict keys of `FGlobal` and the matching weight (kernels are transposed). */
const TORCH_KEYS: Record<string, StateMlpWeightName> = {
  'fc1.weight': 'fc1/kernel',
  'fc1.bias': 'fc1/bias',
  'fc2.weight': 'fc2/kernel',
  'fc2.bias': 'fc2/bias',
  'layer_norm.weight': 'layer_norm/gamma',
  'layer_norm.bias': 'layer_norm/beta',
};

let instances = 0;

/**
 * The f_S MLP of the TSU.
 *
 * `f_S([V(a), S(a), S(i)]) = LayerNorm_d( W2 · GELU(W1 x + b1) + b2 )`
 *
 * **Input shape:** [n, 3d], each row `[V(a), S(a), S(i)]` (the reference's order).
 * **Output shape:** [n, d], the new state rows.
 *
 * Weights are tf.Variables (trainable); initialised as PyTorch's `nn.Linear`
 * (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for kernels and biases), LayerNorm gamma 1, beta 0.
 * Free them with {@link StateMlp.dispose}.
 *
 * @example
 * ```ts
 * const fS = new StateMlp({ dim: 384 });     // 1,181,568 parameters
 * const y = fS.apply(tf.zeros([5, 1152]));   // [5, 384], caller disposes
 * ```
 * @see docs/reference-code.md §4.1
 * @category TSU
 */
export class StateMlp implements StateUpdateNet {
  /** Class name written into saved files. */
  static readonly className = 'StateMlp';
  /** d, the state width (input 3d, output d). */
  readonly dim: number;
  /** Hidden width (default 2d). */
  readonly hiddenDim: number;
  /** LayerNorm epsilon. */
  readonly layerNormEps: number;
  private readonly vars: Record<StateMlpWeightName, tf.Variable>;
  /** fc1's kernel split at row 2d (for {@link StateMlp.applyShared}), for the kernel data it was cut from. */
  private split: { dataId: unknown; shared: tf.Tensor2D; own: tf.Tensor2D } | null = null;
  private disposed = false;

  constructor(args: StateMlpArgs = {}) {
    const dim = args.dim ?? 384;
    const hiddenDim = args.hiddenDim ?? 2 * dim;
    const eps = args.layerNormEps ?? 1e-5;
    for (const [k, v] of [['dim', dim], ['hiddenDim', hiddenDim]] as const) {
      if (!(Number.isInteger(v) && v > 0)) throw new ValueError(`Expected StateMlpArgs.${k} to be a positive integer, but got ${v}.`);
    }
    if (!(Number.isFinite(eps) && eps > 0)) throw new ValueError(`Expected StateMlpArgs.layerNormEps to be > 0, but got ${eps}.`);
    this.dim = dim;
    this.hiddenDim = hiddenDim;
    this.layerNormEps = eps;
    const rng = createRng(args.seed ?? 0);
    const prefix = `sasha_state_mlp_${instances++}`;
    const make = (name: StateMlpWeightName, init: tf.Tensor) => {
      const variable = tf.variable(init, true, `${prefix}/${name}`);
      init.dispose();
      return variable;
    };
    const inDim = 3 * dim;
    this.vars = {
      'fc1/kernel': make('fc1/kernel', linearInit(rng, [inDim, hiddenDim], inDim)),
      'fc1/bias': make('fc1/bias', linearInit(rng, [hiddenDim], inDim)),
      'fc2/kernel': make('fc2/kernel', linearInit(rng, [hiddenDim, dim], hiddenDim)),
      'fc2/bias': make('fc2/bias', linearInit(rng, [dim], hiddenDim)),
      'layer_norm/gamma': make('layer_norm/gamma', tf.ones([dim])),
      'layer_norm/beta': make('layer_norm/beta', tf.zeros([dim])),
    };
  }

  /** Input width, 3d. */
  get inputDim(): number {
    return 3 * this.dim;
  }

  /** Number of parameters: `3d h + h + h d + d + 2d` (1,181,568 for d = 384). */
  get numParams(): number {
    return WEIGHT_NAMES.reduce((s, n) => s + this.vars[n].size, 0);
  }

  /**
   * Applies f_S.
   *
   * **Input shape:** `x` [n, 3d]. **Output shape:** [n, d].
   * @returns a new tensor owned by the caller.
   * @throws ShapeError when `x` is not [n, 3d].
   */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    this.checkAlive();
    if (x.rank !== 2 || x.shape[1] !== this.inputDim) {
      throw new ShapeError(
        `Error in StateMlp.apply: expected x [n, ${this.inputDim}] (rows [V(a), S(a), S(i)]), but got ${fmtShape(x.shape)}.`,
      );
    }
    const v = this.vars;
    return tf.tidy(() => {
      const h = gelu(linear(x, v['fc1/kernel'], v['fc1/bias'])); // [n, h]
      const y = linear(h, v['fc2/kernel'], v['fc2/bias']); // [n, d]
      return layerNorm(y, v['layer_norm/gamma'], v['layer_norm/beta'], this.layerNormEps); // [n, d]
    });
  }

  /**
   * f_S on rows whose first 2d inputs are the same, `[shared, rows_i]` for every i (the
   * environment's case: `[V(a), S(a), S(i)]` for the rows i of C). The first layer splits as
   * `W_1 [s, x] = W_1s s + W_1x x`, so the shared part's product runs once instead of once per
   * row: for n rows the first layer costs `(2d + n d) h` multiply-adds instead of `3 n d h`.
   * Equal to {@link StateMlp.apply} up to float rounding; for inference (no gradient reaches the
   * weights through this path).
   *
   * **Input shapes:** `shared` [1, 2d], `rows` [n, d]. **Output shape:** [n, d].
   * @returns a new tensor owned by the caller.
   */
  applyShared(shared: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D {
    this.checkAlive();
    const d = this.dim;
    if (shared.rank !== 2 || shared.shape[0] !== 1 || shared.shape[1] !== 2 * d || rows.rank !== 2 || rows.shape[1] !== d) {
      throw new ShapeError(`Error in StateMlp.applyShared: expected shared [1, ${2 * d}] and rows [n, ${d}], but got ${fmtShape(shared.shape)} and ${fmtShape(rows.shape)}.`);
    }
    const v = this.vars;
    const kernel = v['fc1/kernel'];
    // The blocks are cut once per kernel value (an assignment, e.g. a training step, gives the
    // variable new data, and the blocks are cut again).
    if (!this.split || this.split.dataId !== kernel.dataId) {
      if (this.split) tf.dispose([this.split.shared, this.split.own]);
      const [top, bottom] = tf.split(kernel, [2 * d, d], 0) as tf.Tensor2D[];
      // kept: the blocks outlive a tf.tidy around the caller
      this.split = { dataId: kernel.dataId, shared: tf.keep(top), own: tf.keep(bottom) };
    }
    const { shared: w1s, own: w1x } = this.split;
    return tf.tidy(() => {
      const pre = tf.add(tf.matMul(rows, w1x), tf.add(tf.matMul(shared, w1s), v['fc1/bias'])); // [n, h]
      const y = tf.add(tf.matMul(gelu(pre) as tf.Tensor2D, v['fc2/kernel'] as tf.Tensor2D), v['fc2/bias']); // [n, d]
      return layerNorm(y, v['layer_norm/gamma'], v['layer_norm/beta'], this.layerNormEps) as tf.Tensor2D;
    });
  }

  /** The trainable variables (for an optimiser's `varList`). */
  trainableVariables(): tf.Variable[] {
    this.checkAlive();
    return WEIGHT_NAMES.map((n) => this.vars[n]);
  }

  /**
   * The weights by name (`fc1/kernel` [3d, h], `fc1/bias` [h], `fc2/kernel` [h, d], `fc2/bias`
   * [d], `layer_norm/gamma` [d], `layer_norm/beta` [d]).
   * @returns the model's own variables: do not dispose them.
   */
  getWeights(): Record<StateMlpWeightName, tf.Tensor> {
    this.checkAlive();
    return { ...this.vars };
  }

  /**
   * Copies weights into the model (any subset of the names of {@link StateMlp.getWeights}).
   * The given tensors stay owned by the caller.
   * @throws ValueError for an unknown name; ShapeError for a wrong shape.
   */
  setWeights(weights: Partial<Record<string, tf.Tensor>>): void {
    this.checkAlive();
    for (const [name, t] of Object.entries(weights)) {
      if (!t) continue;
      if (!(WEIGHT_NAMES as readonly string[]).includes(name)) {
        throw new ValueError(`StateMlp has no weight '${name}'. Known weights: ${WEIGHT_NAMES.join(', ')}.`);
      }
      const target = this.vars[name as StateMlpWeightName];
      if (!tf.util.arraysEqual(target.shape, t.shape)) {
        throw new ShapeError(`Expected weight '${name}' of shape ${fmtShape(target.shape)}, but got ${fmtShape(t.shape)}.`);
      }
      tf.tidy(() => target.assign(tf.cast(t, 'float32')));
    }
  }

  /**
   * Loads the weights of a reference PyTorch `FGlobal` checkpoint (keys `fc1.weight` [h, 3d],
   * `fc1.bias`, `fc2.weight` [d, h], `fc2.bias`, `layer_norm.weight`, `layer_norm.bias`);
   * Linear weights are transposed into kernels. Because the input order `[V(a), S(a), S(i)]`
   * is kept, such a checkpoint works unchanged.
   *
   * @param stateDict every key, as flat values (row-major, PyTorch layout) with their shapes.
   * @throws ValueError for a missing or unknown key; ShapeError for a wrong shape.
   */
  setTorchStateDict(stateDict: Record<string, { data: ArrayLike<number>; shape: readonly number[] }>): void {
    this.checkAlive();
    const missing = Object.keys(TORCH_KEYS).filter((k) => !(k in stateDict));
    if (missing.length > 0) throw new ValueError(`The FGlobal state dict lacks ${missing.join(', ')}.`);
    const weights: Record<string, tf.Tensor> = {};
    try {
      for (const [key, { data, shape }] of Object.entries(stateDict)) {
        const name = TORCH_KEYS[key];
        if (!name) throw new ValueError(`Unknown key '${key}' in the FGlobal state dict. Known keys: ${Object.keys(TORCH_KEYS).join(', ')}.`);
        const t = tf.tensor(Float32Array.from(data), [...shape]);
        weights[name] = name.endsWith('kernel') ? tf.tidy(() => tf.transpose(t)) : t;
        if (name.endsWith('kernel')) t.dispose();
      }
      this.setWeights(weights);
    } finally {
      tf.dispose(Object.values(weights));
    }
  }

  /** The JSON-serialisable construction arguments. */
  getConfig(): Required<Omit<StateMlpArgs, 'seed'>> {
    return { dim: this.dim, hiddenDim: this.hiddenDim, layerNormEps: this.layerNormEps };
  }

  /**
   * The model as tf.io artifacts (the config in the description, the weights by name).
   * @returns new buffers owned by the caller; no tensor is created.
   */
  async toArtifacts(): Promise<tf.io.ModelArtifacts> {
    this.checkAlive();
    return encodeArtifacts(STATE_MLP_ARTIFACT, { className: StateMlp.className, config: this.getConfig() }, { ...this.vars });
  }

  /**
   * Saves through a tf.io handler or a URL with a registered router (`file://DIR` in Node after
   * importing `sasha-wsi/node`; `indexeddb://NAME`, `downloads://NAME` in browsers).
   * @example
   * ```ts
   * await fS.save('file:///models/sasha/tsu');
   * ```
   */
  async save(target: IOTarget): Promise<tf.io.SaveResult> {
    return saveArtifacts(target, await this.toArtifacts());
  }

  /**
   * Rebuilds a StateMlp from artifacts written by {@link StateMlp.toArtifacts}.
   * @returns a new model owned by the caller.
   * @throws DataError when the artifacts are not a StateMlp or their weights do not fit.
   */
  static fromArtifacts(artifacts: tf.io.ModelArtifacts): StateMlp {
    const { description, tensors } = decodeArtifacts(artifacts, STATE_MLP_ARTIFACT);
    try {
      const cfg = description.config as Record<string, unknown> | undefined;
      if (!cfg) throw new DataError('The saved f_S has no config; it is incomplete. Save it again.');
      const missing = WEIGHT_NAMES.filter((n) => !(n in tensors));
      if (missing.length > 0) throw new DataError(`The saved f_S lacks the weights ${missing.join(', ')}.`);
      const model = new StateMlp({ dim: Number(cfg.dim), hiddenDim: Number(cfg.hiddenDim), layerNormEps: Number(cfg.layerNormEps) });
      try {
        model.setWeights(tensors);
      } catch (e) {
        model.dispose();
        throw e;
      }
      return model;
    } finally {
      tf.dispose(tensors);
    }
  }

  /**
   * Loads a model saved by {@link StateMlp.save}, from a handler or a URL.
   * @returns a new model owned by the caller.
   */
  static async load(source: IOTarget): Promise<StateMlp> {
    return StateMlp.fromArtifacts(await loadArtifacts(source));
  }

  /** Frees the weights. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const n of WEIGHT_NAMES) this.vars[n].dispose();
    if (this.split) tf.dispose([this.split.shared, this.split.own]);
    this.split = null;
  }

  private checkAlive(): void {
    if (this.disposed) throw new StateError('This StateMlp was disposed; create or load a new one.');
  }
}
