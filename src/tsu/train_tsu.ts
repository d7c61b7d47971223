/**
 * Training of f_S as the reference does it (`step5_tsu_training.py`): for every training slide
 * and epoch, a random anchor a; its similar set C on the low-resolution features Z (a
 * included); inputs `[V(a), Z(a), Z(i)]`, target V(i), MSE; one AdamW step per slide; the
 * half-cosine learning rate per iteration; the weights with the lowest validation MSE kept.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { checkNumber, resolveConfig } from '../core/config.js';
import { DataError, ShapeError, ValueError, fmtShape } from '../core/errors.js';
import { AdamW, halfCosineLr } from '../core/optim.js';
import { createRng } from '../core/random.js';
import { disposeBag, type SlideDataset, type SlidePart } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import {
  decodeTrainingCheckpoint,
  encodeTrainingCheckpoint,
  epochRng,
  type CheckpointStore,
  type TrainingCheckpointState,
} from '../core/checkpoint.js';
import type { ArtifactFormat } from '../core/io.js';
import { DEFAULT_TRAIN_TSU_CONFIG } from './defaults.js';
import { StateMlp } from './state_mlp.js';
import { checkTau, rowNorm, similarRows } from './targeted_state_update.js';
import type { TrainTsuConfig, TsuEpochRecord, TsuState } from './types.js';

/** Stage 1 of HAFED (a `Hafed` fits): V = aggregate(U). */
export interface HighResAggregator {
  /**
   * **Input shape:** U [N, k, d]. **Output shape:** V [N, d].
   * @returns a new tensor owned by the caller.
   */
  aggregate(u: tf.Tensor3D): tf.Tensor2D;
}

/** Inputs of {@link trainTsu}. @category TSU */
export interface TrainTsuOptions {
  /** Slides with low-resolution features Z and either cached V (`aggregated`) or U with `aggregator`. */
  dataset: SlideDataset;
  /** Training and validation slide ids (for example from {@link parseSplit}). */
  split: { readonly train: readonly string[]; readonly val: readonly string[] };
  /** A model to train in place (default: a new {@link StateMlp} of width `dataset.dim`, seeded by `config.seed`). */
  model?: StateMlp;
  /** Computes V from U when the dataset has no cached V (a trained `Hafed`). */
  aggregator?: HighResAggregator;
  /** Hyper-parameters (defaults: {@link DEFAULT_TRAIN_TSU_CONFIG}). */
  config?: Partial<TrainTsuConfig>;
  /** Progress events, one per epoch (task `'train tsu'`). */
  onProgress?: ProgressCallback;
  /** Called after every epoch; return `false` to stop early. */
  onEpoch?: (record: TsuEpochRecord) => void | boolean;
  /** Called whenever the validation MSE improves, with the model holding the new best weights. */
  onBest?: (model: StateMlp, record: TsuEpochRecord) => void | Promise<void>;
  /**
   * Where to write checkpoints: `'best'` (a loadable {@link StateMlp}) at every improvement, and
   * `'last'` (weights, AdamW state, best weights, history) every `checkpointEvery` epochs.
   */
  checkpoint?: CheckpointStore;
  /** Continue from the `'last'` checkpoint when there is one; the run then equals an uninterrupted one. */
  resume?: boolean;
}

/** What {@link trainTsu} returns. @category TSU */
export interface TrainTsuResult {
  /** The model holding the best weights (the `model` passed in, or a new one owned by the caller). */
  model: StateMlp;
  /** One record per epoch run. */
  history: TsuEpochRecord[];
  /** Epoch of the best validation MSE (the last epoch when there is no validation set). */
  bestEpoch: number;
  /** The best validation MSE (NaN without validation slides). */
  bestValMse: number;
  /**
   * Validation MSE of the identity map `V(i) ≈ Z(i)` on the same validation samples: the
   * baseline f_S must beat.
   */
  identityValMse: number;
  /** The resolved config. */
  config: Readonly<TrainTsuConfig>;
}

/**
 * Resolves a partial {@link TrainTsuConfig} against {@link DEFAULT_TRAIN_TSU_CONFIG}.
 * @category TSU
 */
export function resolveTrainTsuConfig(partial?: Partial<TrainTsuConfig> | null): Readonly<TrainTsuConfig> {
  const name = 'TrainTsuConfig';
  return resolveConfig(name, DEFAULT_TRAIN_TSU_CONFIG, partial, (c) => {
    checkNumber(name, c, 'learningRate', { min: 0, minExclusive: true });
    checkNumber(name, c, 'minLr', { min: 0 });
    checkNumber(name, c, 'weightDecay', { min: 0 });
    checkNumber(name, c, 'epochs', { min: 1, integer: true });
    checkNumber(name, c, 'warmupEpochs', { min: 0 });
    checkTau(name, c.tau);
    checkNumber(name, c, 'seed', {});
    checkNumber(name, c, 'valAnchorsPerSlide', { min: 1, integer: true });
    checkNumber(name, c, 'evalEvery', { min: 1, integer: true });
    checkNumber(name, c, 'cacheLimitMb', { min: 0 });
    checkNumber(name, c, 'checkpointEvery', { min: 1, integer: true });
  });
}

/** Z, V and the norms of Z of one slide. */
interface SlideFeatures {
  n: number;
  z: Float32Array;
  v: Float32Array;
  norms: Float64Array;
}

/** One training or validation sample: inputs `[V(a), Z(a), Z(i)]` and targets V(i) for i in C. */
interface Sample {
  x: Float32Array;
  y: Float32Array;
  rows: number;
  /** Sum of squared differences between Z(i) and V(i) over C (the identity map's error). */
  identitySse: number;
}

/**
 * Trains f_S.
 *
 * Per epoch, for each training slide (shuffled): `a ~ U{0..N-1}`;
 * `C = {i : |cos(Z(i), Z(a))| >= tau}` (a included); one AdamW step on
 * `MSE(f_S([V(a), Z(a), Z(C)]), V(C))` (mean over |C| x d) at the half-cosine learning rate of
 * the fractional epoch. Validation uses `valAnchorsPerSlide` anchors per slide, fixed at the
 * start, and keeps the weights of the lowest validation MSE.
 *
 * @returns the best model, the history and the identity baseline. Every tensor made during
 *   training is freed; a model created here is owned by the caller.
 * @throws DataError when slides lack Z or V (and no aggregator is given), or widths differ.
 * @example
 * ```ts
 * const { model, bestValMse, identityValMse } = await trainTsu({
 *   dataset, split, config: { epochs: 200 },
 *   onProgress: (e) => console.log(e.done, e.info),
 * });
 * ```
 * @see docs/reference-code.md §4.2
 * @category TSU
 */
export async function trainTsu(options: TrainTsuOptions): Promise<TrainTsuResult> {
  const { dataset, split, aggregator, onProgress, onEpoch, onBest, checkpoint, resume = false } = options;
  const config = resolveTrainTsuConfig(options.config);
  if (!split || split.train.length === 0) {
    throw new ValueError('Expected at least one training slide in split.train, but got none.');
  }
  const d = dataset.dim;
  const model = options.model ?? new StateMlp({ dim: d, seed: config.seed });
  const ownModel = options.model === undefined;
  if (model.dim !== d) {
    if (ownModel) model.dispose();
    throw new ShapeError(`Expected f_S of width d = ${d} (the dataset's), but the model has dim ${model.dim}.`);
  }
  const parts = featureParts(dataset, aggregator);
  const cache = new Map<string, SlideFeatures>();
  let cachedBytes = 0;
  const limit = config.cacheLimitMb * 2 ** 20;
  const features = async (id: string): Promise<SlideFeatures> => {
    const hit = cache.get(id);
    if (hit) return hit;
    const f = await loadFeatures(dataset, id, parts, aggregator);
    const bytes = f.z.byteLength + f.v.byteLength + f.norms.byteLength;
    if (cachedBytes + bytes <= limit) {
      cache.set(id, f);
      cachedBytes += bytes;
    }
    return f;
  };

  // Validation anchors are fixed once (as fractions of N, so no slide is read here).
  const anchorRng = createRng(config.seed);
  const valAnchors = split.val.map((id) => ({
    id,
    anchors: Array.from({ length: config.valAnchorsPerSlide }, () => anchorRng.next()),
  }));

  const opt = new AdamW({ learningRate: config.learningRate, weightDecay: config.weightDecay });
  const vars = model.trainableVariables();
  const names = Object.keys(model.getWeights());
  const variables = Object.fromEntries(names.map((n, i) => [n, vars[i]]));
  const { epochs: _epochs, ...trainSettings } = config;
  const resumeKey = { model: model.getConfig(), train: trainSettings, trainIds: [...split.train] };
  const history: TsuEpochRecord[] = [];
  let best: tf.Tensor[] | null = null;
  let bestValMse = Infinity;
  let bestEpoch = 0;
  let identityValMse = NaN;
  let startEpoch = 0;
  const schedule = { lr: config.learningRate, epochs: config.epochs, minLr: config.minLr, warmupEpochs: config.warmupEpochs };
  const validate = async (): Promise<{ mse: number; identity: number }> => {
    let sum = 0;
    let idSum = 0;
    let count = 0;
    for (const { id, anchors } of valAnchors) {
      const f = await features(id);
      for (const u of anchors) {
        const s = buildSample(f, Math.min(f.n - 1, Math.floor(u * f.n)), d, config.tau);
        const mse = tf.tidy(() => {
          const pred = model.apply(tf.tensor2d(s.x, [s.rows, 3 * d]));
          return tf.mean(tf.squaredDifference(pred, tf.tensor2d(s.y, [s.rows, d])));
        });
        sum += mse.dataSync()[0];
        mse.dispose();
        idSum += s.identitySse / (s.rows * d);
        count++;
      }
    }
    return { mse: count > 0 ? sum / count : NaN, identity: count > 0 ? idSum / count : NaN };
  };

  try {
    if (resume && checkpoint) {
      const saved = await checkpoint.load('last');
      if (saved) {
        const ck = decodeTrainingCheckpoint(saved, TSU_CHECKPOINT, { resume: resumeKey, epochs: config.epochs }, legacyState);
        try {
          const modelWeights = ck.group('model');
          if (names.some((n) => !modelWeights[n])) throw new DataError('The TSU checkpoint lacks model weights; it is incomplete.');
          model.setWeights(modelWeights);
          await ck.restoreOptimizer(opt, variables);
          const bw = ck.group('best');
          best = ck.state.progress.hasBest ? names.map((n) => tf.clone(bw[n])) : null;
        } finally {
          ck.dispose();
        }
        const p = ck.state.progress;
        history.push(...p.history);
        bestValMse = p.bestValMse ?? Infinity;
        bestEpoch = p.bestEpoch;
        identityValMse = p.identityValMse ?? NaN;
        startEpoch = ck.state.epochsDone;
      }
    }
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      // Slide order and anchors depend on (seed, epoch) only, so a resumed run repeats them.
      const rng = epochRng(config.seed, epoch);
      const order = rng.permutation(split.train.length);
      let trainSum = 0;
      for (let k = 0; k < order.length; k++) {
        const f = await features(split.train[order[k]]);
        const s = buildSample(f, rng.int(f.n), d, config.tau);
        opt.learningRate = halfCosineLr(epoch + k / order.length, schedule);
        const loss = tf.tidy(() => {
          const x = tf.tensor2d(s.x, [s.rows, 3 * d]);
          const y = tf.tensor2d(s.y, [s.rows, d]);
          return opt.minimize(() => tf.mean(tf.squaredDifference(model.apply(x), y)) as tf.Scalar, true, vars) as tf.Scalar;
        });
        trainSum += loss.dataSync()[0];
        loss.dispose();
      }
      const lastEpoch = epoch === config.epochs - 1;
      let valMse = NaN;
      if (valAnchors.length > 0 && ((epoch + 1) % config.evalEvery === 0 || lastEpoch)) {
        const v = await validate();
        valMse = v.mse;
        identityValMse = v.identity;
      }
      const record: TsuEpochRecord = {
        epoch: epoch + 1,
        trainMse: trainSum / order.length,
        valMse,
        learningRate: opt.learningRate,
      };
      history.push(record);
      if (Number.isFinite(valMse) && valMse < bestValMse) {
        bestValMse = valMse;
        bestEpoch = record.epoch;
        if (best) tf.dispose(best);
        best = vars.map((v) => tf.clone(v));
        if (checkpoint) await checkpoint.save('best', await model.toArtifacts());
        if (onBest) await onBest(model, record);
      }
      if (checkpoint && ((epoch + 1) % config.checkpointEvery === 0 || lastEpoch)) {
        const progress: TsuProgress = {
          history,
          bestEpoch,
          bestValMse: Number.isFinite(bestValMse) ? bestValMse : null,
          identityValMse: Number.isFinite(identityValMse) ? identityValMse : null,
          hasBest: best !== null,
        };
        const bestMap = best ? Object.fromEntries(names.map((n, i) => [n, best![i]])) : null;
        const artifacts = await encodeTrainingCheckpoint(TSU_CHECKPOINT, {
          resume: resumeKey,
          epochsDone: history.length,
          progress,
          tensors: { model: variables, best: bestMap },
          optimizers: { '': { optimizer: opt, variables } },
        });
        await checkpoint.save('last', artifacts);
      }
      onProgress?.({
        task: 'train tsu',
        done: record.epoch,
        total: config.epochs,
        info: { trainMse: round(record.trainMse), valMse: round(valMse), bestValMse: round(bestValMse) },
      });
      if (onEpoch?.(record) === false) break;
    }
    if (best) {
      model.setWeights(Object.fromEntries(names.map((n, i) => [n, best![i]])));
    } else {
      bestEpoch = history.length;
      bestValMse = NaN;
    }
  } catch (e) {
    if (ownModel) model.dispose();
    throw e;
  } finally {
    if (best) tf.dispose(best);
    opt.dispose();
  }
  return { model, history, bestEpoch, bestValMse, identityValMse, config };
}

/** The `format` of trainTsu's resumable checkpoints. */
export const TSU_CHECKPOINT_FORMAT = 'sasha-tsu-checkpoint';

/** Layout 2 is the training-checkpoint layout of every trainer; 1 is release 0.1's. */
const TSU_CHECKPOINT: ArtifactFormat = {
  format: TSU_CHECKPOINT_FORMAT,
  version: 2,
  what: 'TSU checkpoint',
  writtenBy: 'trainTsu or `sasha train tsu`',
};

/** The progress saved in a checkpoint. */
interface TsuProgress {
  history: TsuEpochRecord[];
  bestEpoch: number;
  bestValMse: number | null;
  identityValMse: number | null;
  hasBest: boolean;
}

/** Reads the description of a release-0.1 checkpoint. */
function legacyState(d: Record<string, unknown>): TrainingCheckpointState<TsuProgress> {
  const { epochs: _e, ...train } = (d.config ?? {}) as Record<string, unknown>;
  return {
    resume: { model: d.model, train, trainIds: d.trainIds },
    epochsDone: Number(d.epochsDone),
    progress: {
      history: d.history as TsuEpochRecord[],
      bestEpoch: Number(d.bestEpoch),
      bestValMse: d.bestValMse as number | null,
      identityValMse: d.identityValMse as number | null,
      hasBest: Boolean(d.hasBest),
    },
  };
}

/** Which parts to load: Z and V, or Z and U (V computed by the aggregator). */
function featureParts(dataset: SlideDataset, aggregator?: HighResAggregator): SlidePart[] {
  if (!dataset.parts.includes('lowRes')) {
    throw new DataError('trainTsu needs the low-resolution features Z (lowRes) of every slide, but the dataset has none.');
  }
  if (dataset.parts.includes('aggregated')) return ['lowRes', 'aggregated'];
  if (aggregator && dataset.parts.includes('highRes')) return ['lowRes', 'highRes'];
  throw new DataError(
    'trainTsu needs V = HAFED stage 1 of the high-resolution features: give a dataset with cached V (aggregated), ' +
      'or one with highRes features together with `aggregator` (a trained Hafed).',
  );
}

async function loadFeatures(
  dataset: SlideDataset,
  id: string,
  parts: SlidePart[],
  aggregator?: HighResAggregator,
): Promise<SlideFeatures> {
  const bag = await dataset.load(id, parts);
  try {
    const z = bag.lowRes;
    if (!z) throw new DataError(`Slide '${id}' has no low-resolution features.`);
    let vT = bag.aggregated;
    let made: tf.Tensor2D | undefined;
    if (!vT) {
      if (!bag.highRes || !aggregator) throw new DataError(`Slide '${id}' has neither V nor U.`);
      made = tf.tidy(() => aggregator.aggregate(bag.highRes!));
      vT = made;
    }
    try {
      if (!tf.util.arraysEqual(z.shape, vT.shape)) {
        throw new DataError(`Slide '${id}': Z ${fmtShape(z.shape)} and V ${fmtShape(vT.shape)} must have the same shape [N, d].`);
      }
      const n = z.shape[0];
      const d = z.shape[1];
      const zv = new Float32Array(z.dataSync());
      const vv = new Float32Array(vT.dataSync());
      for (const [what, arr] of [['Z', zv], ['V', vv]] as const) {
        for (let i = 0; i < arr.length; i++) {
          if (!Number.isFinite(arr[i])) throw new DataError(`Slide '${id}': ${what} holds ${arr[i]} in row ${Math.floor(i / d)}.`);
        }
      }
      const norms = new Float64Array(n);
      for (let i = 0; i < n; i++) norms[i] = rowNorm(zv, i * d, d);
      return { n, z: zv, v: vv, norms };
    } finally {
      made?.dispose();
    }
  } finally {
    disposeBag(bag);
  }
}

/** The sample of anchor a: C on Z (a included), inputs `[V(a), Z(a), Z(i)]`, targets V(i). */
function buildSample(f: SlideFeatures, a: number, d: number, tau: number): Sample {
  const state: TsuState = {
    numRows: f.n,
    dim: d,
    values: f.z,
    norms: f.norms,
    visited: new Uint8Array(f.n),
    rewritten: new Uint8Array(f.n),
  };
  const others = similarRows(state, a, tau, false);
  const set = Int32Array.from([a, ...others]).sort();
  const rows = set.length;
  const x = new Float32Array(rows * 3 * d);
  const y = new Float32Array(rows * d);
  const va = f.v.subarray(a * d, a * d + d);
  const za = f.z.subarray(a * d, a * d + d);
  let identitySse = 0;
  for (let r = 0; r < rows; r++) {
    const i = set[r];
    const zi = f.z.subarray(i * d, i * d + d);
    const vi = f.v.subarray(i * d, i * d + d);
    x.set(va, r * 3 * d);
    x.set(za, r * 3 * d + d);
    x.set(zi, r * 3 * d + 2 * d);
    y.set(vi, r * d);
    for (let j = 0; j < d; j++) identitySse += (zi[j] - vi[j]) ** 2;
  }
  return { x, y, rows, identitySse };
}

function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(4)) : x;
}
