/**
 * HAFED: the hierarchical attention-based feature distillation model of SASHA, stage 1 (the
 * feature aggregator) followed by stage 2 (the slide classifier), with save and load through
 * `tf.io` handlers.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ShapeError, StateError, fmtShape } from '../core/errors.js';
import { createRng } from '../core/random.js';
import { decodeArtifacts, encodeArtifacts, loadArtifacts, saveArtifacts, type ArtifactFormat, type IOTarget } from '../core/io.js';
import { resolveHafedConfig } from './defaults.js';
import { FeatureAggregator, type StageForwardOptions } from './feature_aggregator.js';
import { SlideClassifier } from './slide_classifier.js';
import type { HafedConfig, HafedOutput } from './types.js';

/** The `format` field of saved HAFED artifacts. */
export const HAFED_FORMAT = 'sasha-hafed';
/** Version of the saved layout; loading a newer one is an error. */
export const HAFED_FORMAT_VERSION = 1;

const HAFED_ARTIFACT: ArtifactFormat = {
  format: HAFED_FORMAT,
  version: HAFED_FORMAT_VERSION,
  what: 'HAFED model',
  writtenBy: 'Hafed.save or `sasha train hafed`',
};

/** What {@link Hafed.classify} returns; tensors owned by the caller. */
export interface HafedPrediction {
  /** Slide logits, [1, C]. */
  logits: tf.Tensor2D;
  /** Slide class probabilities `softmax(logits)`, [1, C]. */
  probs: tf.Tensor2D;
  /** Stage-2 attention of each branch over the N rows, [M, N]. */
  attention: tf.Tensor2D;
}

/**
 * HAFED (docs/reference-code.md §2). Stage 1 aggregates each patch's k high-resolution sub-patch
 * features into one vector; stage 2 classifies the slide from the N vectors with ACMIL-style
 * multi-branch attention. The prediction is `softmax` of the slide head on the
 * branch-averaged attention pooling.
 *
 * With `input: 'lowRes'` the model has no stage 1 and classifies Z [N, d] directly (the
 * low-resolution-only baseline).
 *
 * The methods used by the environment and inference ({@link Hafed.aggregate},
 * {@link Hafed.classify}, {@link Hafed.stage2RowLogits}, {@link Hafed.stage2HeadLogits}) run in
 * evaluation mode (no masking) and return tensors the caller owns. They satisfy
 * `classify(x).logits == stage2HeadLogits(sum_i abar_i x_i)` with
 * `abar = mean_m softmax_over_rows(stage2RowLogits(x)[:, m])`.
 *
 * @example
 * ```ts
 * const hafed = new Hafed({ dim: 384, k: 16 });           // CAMELYON16 defaults otherwise
 * const v = hafed.aggregate(u);                            // U [N, 16, 384] -> V [N, 384]
 * const { probs, attention } = hafed.classify(v);          // [1, 2], [5, N]
 * await hafed.save('file:///models/hafed');                // Node, after importing sasha-wsi/node
 * const again = await Hafed.load('file:///models/hafed');
 * ```
 * @category HAFED
 */
export class Hafed {
  /** The resolved, frozen config. */
  readonly config: Readonly<HafedConfig>;
  /** d: feature width. */
  readonly dim: number;
  /** k: sub-patches per patch (checked on stage-1 input). */
  readonly k: number;
  /** C: number of classes. */
  readonly numClasses: number;
  /** M2: stage-2 branches. */
  readonly numBranches: number;
  /** Stage 1; null for `input: 'lowRes'`. */
  readonly aggregator: FeatureAggregator | null;
  /** Stage 2. */
  readonly classifier: SlideClassifier;
  private disposed = false;

  /** @param config overrides of {@link DEFAULT_HAFED_CONFIG}. */
  constructor(config: Partial<HafedConfig> = {}) {
    this.config = resolveHafedConfig(config);
    const c = this.config;
    this.dim = c.dim;
    this.k = c.k;
    this.numClasses = c.numClasses;
    this.numBranches = c.numBranches2;
    const rng = createRng(c.seed);
    const seed1 = rng.seedInt();
    const seed2 = rng.seedInt();
    this.aggregator =
      c.input === 'highRes'
        ? new FeatureAggregator({
            dim: c.dim,
            numBranches: c.numBranches1,
            attentionDim: c.attentionDim,
            gated: c.gated,
            maskTopK: c.maskTopK1,
            maskDrop: c.maskDrop,
            seed: seed1,
          })
        : null;
    this.classifier = new SlideClassifier({
      dim: c.dim,
      numClasses: c.numClasses,
      numBranches: c.numBranches2,
      attentionDim: c.attentionDim,
      gated: c.gated,
      maskTopK: c.maskTopK2,
      maskDrop: c.maskDrop,
      seed: seed2,
    });
  }

  private alive(): void {
    if (this.disposed) throw new StateError('This HAFED model was disposed; load or create a new one.');
  }

  private checkU(u: tf.Tensor): void {
    if (u.rank !== 3 || u.shape[1] !== this.k || u.shape[2] !== this.dim || u.shape[0] === 0) {
      throw new ShapeError(
        `Expected high-res features U of shape [N, ${this.k}, ${this.dim}] with N >= 1, but got ${fmtShape(u.shape)}. ` +
          `This model was trained with k = ${this.k} sub-patches of width d = ${this.dim}; use features extracted the same way.`,
      );
    }
  }

  private checkRows(x: tf.Tensor, what: string): void {
    if (x.rank !== 2 || x.shape[1] !== this.dim || x.shape[0] === 0) {
      throw new ShapeError(
        `Expected ${what} of shape [N, ${this.dim}] with N >= 1, but got ${fmtShape(x.shape)}. ` +
          `This model was trained on features of width d = ${this.dim}.`,
      );
    }
  }

  private stage1(): FeatureAggregator {
    if (!this.aggregator) {
      throw new StateError("This model reads low-resolution features (input 'lowRes') and has no stage 1; pass Z [N, d] to classify().");
    }
    return this.aggregator;
  }

  /**
   * Stage 1 in evaluation mode: `U [N, k, d] -> V [N, d]`. At inference it runs on one patch's
   * sub-patches (`[1, k, d]`).
   * @returns V, owned by the caller.
   */
  aggregate(u: tf.Tensor3D): tf.Tensor2D {
    this.alive();
    const agg = this.stage1();
    this.checkU(u);
    const { features, attention } = agg.aggregate(u);
    attention.dispose();
    return features;
  }

  /**
   * Stage 2 in evaluation mode: slide logits, probabilities and attention of `v` (V, Z or a
   * SASHA state), `[N, d]`.
   * @returns `{ logits [1, C], probs [1, C], attention [M, N] }`, owned by the caller.
   */
  classify(v: tf.Tensor2D): HafedPrediction {
    this.alive();
    this.checkRows(v, 'V');
    return tf.tidy(() => {
      const { logits, attention } = this.classifier.forward(v);
      return { logits, probs: tf.softmax(logits) as tf.Tensor2D, attention };
    }) as HafedPrediction;
  }

  /**
   * The stage-2 attention logits of each row (before the softmax over rows), `[n, d] -> [n, M]`.
   * Row i's logits depend only on row i.
   * @returns a new tensor owned by the caller.
   */
  stage2RowLogits(x: tf.Tensor2D): tf.Tensor2D {
    this.alive();
    this.checkRows(x, 'rows');
    return this.classifier.rowLogits(x);
  }

  /**
   * The stage-2 slide head on pooled vectors, one per row, `[n, d] -> [n, C]`.
   * @returns a new tensor owned by the caller.
   */
  stage2HeadLogits(pooled: tf.Tensor2D): tf.Tensor2D {
    this.alive();
    if (pooled.rank !== 2 || pooled.shape[0] < 1 || pooled.shape[1] !== this.dim) {
      throw new ShapeError(`Expected pooled vectors of shape [n, ${this.dim}], but got ${fmtShape(pooled.shape)}.`);
    }
    return this.classifier.headLogits(pooled);
  }

  /**
   * The stage-2 slide head's weights, `stage2HeadLogits(p) = p kernel + bias` (the environment
   * uses them to compute a step's slide logits without a tensor call).
   * @returns copies: `kernel` [d * C] row-major, `bias` [C].
   */
  stage2HeadWeights(): { kernel: Float32Array; bias: Float32Array } {
    this.alive();
    return this.classifier.headWeights();
  }

  /**
   * The full forward pass on one slide's input: U `[N, k, d]` (input `'highRes'`) or Z
   * `[N, d]` (input `'lowRes'`). STKIM masking is on when `training` is true.
   * @returns a {@link HafedOutput} of tensors owned by the caller.
   */
  forward(x: tf.Tensor, options: StageForwardOptions = {}): HafedOutput {
    this.alive();
    if (this.config.input === 'highRes') this.checkU(x);
    else this.checkRows(x, 'low-res features Z');
    return tf.tidy(() => {
      let features: tf.Tensor2D;
      let attention1: tf.Tensor3D | undefined;
      if (this.aggregator) {
        const s1 = this.aggregator.forward(x as tf.Tensor3D, options);
        features = s1.features;
        attention1 = s1.attention;
      } else {
        features = tf.clone(x) as tf.Tensor2D;
      }
      const s2 = this.classifier.forward(features, options);
      const out: HafedOutput = { logits: s2.logits, branchLogits: s2.branchLogits, attention: s2.attention, features };
      if (attention1) out.attention1 = attention1;
      return out as unknown as tf.TensorContainerObject;
    }) as unknown as HafedOutput;
  }

  /**
   * Evaluation-mode prediction from the model's input (U for `'highRes'`, Z for `'lowRes'`).
   * @returns `{ logits, probs, attention }`, owned by the caller.
   */
  predict(x: tf.Tensor): HafedPrediction {
    this.alive();
    if (!this.aggregator) return this.classify(x as tf.Tensor2D);
    const v = this.aggregate(x as tf.Tensor3D);
    try {
      return this.classify(v);
    } finally {
      v.dispose();
    }
  }

  /** Every variable by stable name (`stage1/attention/kernelV`, `stage2/slideKernel`, ...). */
  weightMap(): Record<string, tf.Variable> {
    this.alive();
    const out: Record<string, tf.Variable> = {};
    if (this.aggregator) for (const [k, v] of Object.entries(this.aggregator.weightMap())) out[`stage1/${k}`] = v;
    for (const [k, v] of Object.entries(this.classifier.weightMap())) out[`stage2/${k}`] = v;
    return out;
  }

  /** The trainable variables, in a fixed order. */
  trainableVariables(): tf.Variable[] {
    return Object.values(this.weightMap());
  }

  /** Number of trainable scalars. */
  countParams(): number {
    return this.trainableVariables().reduce((s, v) => s + v.size, 0);
  }

  /**
   * Copies of the weights by stable name.
   * @returns new tensors owned by the caller.
   */
  getWeights(): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const [k, v] of Object.entries(this.weightMap())) out[k] = tf.clone(v);
    return out;
  }

  /**
   * Sets every weight from `weights` (by stable name; the tensors are copied, not kept).
   * @throws DataError when a weight is missing, unknown or of the wrong shape.
   */
  setWeights(weights: tf.NamedTensorMap): void {
    const mine = this.weightMap();
    for (const name of Object.keys(weights)) {
      if (!(name in mine)) {
        throw new DataError(`Unknown HAFED weight '${name}'. Known weights: ${Object.keys(mine).join(', ')}.`);
      }
    }
    for (const [name, variable] of Object.entries(mine)) {
      const w = weights[name];
      if (!w) throw new DataError(`The saved HAFED weights lack '${name}'; the file is incomplete or from another model.`);
      if (w.shape.length !== variable.shape.length || w.shape.some((s, i) => s !== variable.shape[i])) {
        throw new DataError(`HAFED weight '${name}' has shape ${fmtShape(w.shape)}, but the model expects ${fmtShape(variable.shape)}.`);
      }
    }
    tf.tidy(() => {
      for (const [name, variable] of Object.entries(mine)) variable.assign(tf.cast(weights[name], 'float32'));
    });
  }

  /** The model as `tf.io` artifacts: the config in `modelTopology`, the weights by stable name. */
  async toArtifacts(): Promise<tf.io.ModelArtifacts> {
    this.alive();
    return encodeArtifacts(HAFED_ARTIFACT, { config: { ...this.config } }, this.weightMap());
  }

  /**
   * Builds a model from artifacts written by {@link Hafed.toArtifacts} or {@link Hafed.save}.
   * @throws DataError when the artifacts are not a HAFED model or are incomplete.
   */
  static fromArtifacts(artifacts: tf.io.ModelArtifacts): Hafed {
    const { description, tensors } = decodeArtifacts(artifacts, HAFED_ARTIFACT);
    try {
      const model = new Hafed((description.config ?? {}) as Partial<HafedConfig>);
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
   * Saves the model (config and weights) through a `tf.io` handler or URL.
   * @param target a handler, or a URL with a registered router (`file://DIR` in Node after
   *   importing `sasha-wsi/node`; `indexeddb://NAME`, `downloads://NAME` in browsers).
   */
  async save(target: IOTarget): Promise<tf.io.SaveResult> {
    return saveArtifacts(target, await this.toArtifacts());
  }

  /**
   * Loads a model saved by {@link Hafed.save}. It re-creates the model from its saved config.
   * @param source a handler or a URL (see {@link Hafed.save}).
   */
  static async load(source: IOTarget): Promise<Hafed> {
    return Hafed.fromArtifacts(await loadArtifacts(source));
  }

  /** Frees every weight. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.aggregator?.dispose();
    this.classifier.dispose();
    this.disposed = true;
  }
}
