/**
 * Training HAFED on a cohort of slides (docs/reference-code.md §2.3-2.4): one slide per step
 * (B = 1, no padding), AdamW with the half-cosine schedule evaluated at every step, model
 * selection on validation F1 + AUC, resumable checkpoints.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { StateError, ValueError } from '../core/errors.js';
import { AdamW, halfCosineLr } from '../core/optim.js';
import type { Rng } from '../core/random.js';
import { disposeBag, type SlideDataset } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { argmax } from '../eval/metrics.js';
import { resolveHafedTrainConfig } from './defaults.js';
import { Hafed } from './hafed.js';
import { hafedLoss } from './losses.js';
import { checkDatasetForHafed, evaluateHafed, loadHafedInput } from './evaluate.js';
import { hafedTrainStepSharded, type SubPatchWorkers } from './sharded.js';
import {
  decodeTrainingCheckpoint,
  encodeTrainingCheckpoint,
  epochRng,
  type CheckpointStore,
  type TrainingCheckpointState,
} from '../core/checkpoint.js';
import type { ArtifactFormat } from '../core/io.js';
import type { HafedBest, HafedConfig, HafedEpochLog, HafedTrainConfig } from './types.js';

/** The `format` of training checkpoints. */
export const HAFED_CHECKPOINT_FORMAT = 'sasha-hafed-checkpoint';

/** Layout 2 is the training-checkpoint layout of every trainer; 1 is release 0.1's. */
const HAFED_CHECKPOINT: ArtifactFormat = {
  format: HAFED_CHECKPOINT_FORMAT,
  version: 2,
  what: 'HAFED checkpoint',
  writtenBy: 'trainHafed or `sasha train hafed`',
};

/** What {@link HafedTrainCallbacks.onStep} receives after every slide. */
export interface HafedStepInfo {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
  /** Steps done since the start of training (all epochs). */
  globalStep: number;
  /** The slide of this step. */
  slideId: string;
  /** Its total loss. */
  loss: number;
  /** The learning rate used. */
  lr: number;
}

/** Hooks into {@link trainHafed}. Returning `false` from `onStep` or `onEpochEnd` stops training. */
export interface HafedTrainCallbacks {
  /** Before the first step (after a resume, `startEpoch` > 0). */
  onTrainingStart?(info: { model: Hafed; startEpoch: number; config: Readonly<HafedTrainConfig> }): void;
  /** After every slide. */
  onStep?(info: HafedStepInfo): boolean | void;
  /** After every epoch (and its validation and checkpoint). */
  onEpochEnd?(log: HafedEpochLog): boolean | void | Promise<boolean | void>;
  /** After training, with the result. */
  onTrainingEnd?(result: TrainHafedResult): void;
}

/** Options of {@link trainHafed}. */
export interface TrainHafedOptions {
  /**
   * The model to train, or the config of a new one (default: the CAMELYON16 defaults with d and
   * k taken from `train`). Use `{ input: 'lowRes' }` to train stage 2 on Z alone.
   */
  model?: Hafed | Partial<HafedConfig>;
  /** Training slides (each with a label, and `highRes` U or `lowRes` Z per the model's input). */
  train: SlideDataset;
  /** Validation slides for model selection on F1 + AUC; without them the last epoch is returned. */
  val?: SlideDataset;
  /** Overrides of {@link DEFAULT_HAFED_TRAIN_CONFIG}. */
  config?: Partial<HafedTrainConfig>;
  /** Seed of the slide order and STKIM draws (and of a new model's initialisation). Default 5. */
  seed?: number;
  /** Hooks called during training. */
  callbacks?: HafedTrainCallbacks;
  /** Progress events: `task: 'train hafed'`, one unit per slide step; validation as `'val hafed'`. */
  onProgress?: ProgressCallback;
  /** Where to write checkpoints `'last'` (resumable state) and `'best'` (a loadable HAFED). */
  checkpoint?: CheckpointStore;
  /** Continue from the `'last'` checkpoint of `checkpoint` when there is one. Default false. */
  resume?: boolean;
  /**
   * Worker threads for stage 1 (in Node, `createHafedWorkerPool` of `sasha-wsi/node`, or
   * `createNativeStage1` for ONNX Runtime's CPU kernels): every
   * step and every validation splits the slide's patches over this thread and the workers
   * ({@link hafedTrainStepSharded}); the same training up to float rounding. The caller closes
   * the pool.
   */
  workers?: SubPatchWorkers;
}

/** What {@link trainHafed} returns. */
export interface TrainHafedResult {
  /** The trained model, holding the weights of the selected (best) epoch. The caller disposes it. */
  model: Hafed;
  /** One log per epoch (including epochs restored from a checkpoint). */
  history: HafedEpochLog[];
  /** The selected epoch. */
  best: HafedBest;
}

/** The progress saved in a checkpoint. */
interface HafedProgress {
  history: HafedEpochLog[];
  best: HafedBest | null;
}

/** Reads the description of a release-0.1 checkpoint. */
function legacyState(d: Record<string, unknown>): TrainingCheckpointState<HafedProgress> {
  const { epochs: _e, ...train } = (d.train ?? {}) as Record<string, unknown>;
  return {
    resume: { model: d.hafed, train, seed: d.seed, trainIds: d.trainIds },
    epochsDone: Number(d.epoch) + 1,
    progress: { history: d.history as HafedEpochLog[], best: d.best as HafedBest | null },
  };
}

/** NaN-safe selection score `f1 + auc` (an undefined AUC, one class only, counts 0). */
function selectionScore(f1: number, auc: number): number {
  return (Number.isFinite(f1) ? f1 : 0) + (Number.isFinite(auc) ? auc : 0);
}

/** What {@link hafedTrainStep} returns. */
export interface HafedStepResult {
  /** The total loss `slide + branch + similarity`. */
  loss: number;
  /** Slide cross-entropy. */
  slideLoss: number;
  /** Mean branch cross-entropy. */
  branchLoss: number;
  /** Similarity losses of both stages. */
  similarityLoss: number;
  /** The predicted class of the slide (argmax of the slide probabilities, training mode). */
  pred: number;
}

/**
 * One optimisation step of HAFED on one slide, as {@link trainHafed} runs it: the training-mode
 * forward pass (STKIM masking drawn from `rng`), {@link hafedLoss}, the gradients of every
 * trainable variable and one step of `optimizer` (whose learning rate the caller sets). When the
 * loss is not finite no step is taken; the result reports the loss so that the caller can stop.
 *
 * @param x the model's input, U `[N, k, d]` (or Z `[N, d]` for `input: 'lowRes'`); not disposed.
 * @param label the slide's class.
 * @param vars the variables to train (default: all of the model's trainable variables).
 * @returns the loss values and the prediction; no tensor stays alive.
 * @example
 * ```ts
 * const opt = new AdamW({ learningRate: 4.14e-4, weightDecay: 1e-5 });
 * const { loss } = hafedTrainStep(hafed, opt, u, 1, createRng(5));
 * ```
 * @category HAFED
 */
export function hafedTrainStep(
  model: Hafed,
  optimizer: tf.Optimizer,
  x: tf.Tensor,
  label: number,
  rng: Rng,
  vars: tf.Variable[] = model.trainableVariables(),
): HafedStepResult {
  let parts: tf.Tensor | null = null;
  let probs: tf.Tensor | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const out = model.forward(x, { training: true, rng });
    const l = hafedLoss(out, label);
    parts = tf.keep(tf.stack([l.total, l.slide, l.branch, tf.add(l.similarity1, l.similarity2)]));
    probs = tf.keep(tf.softmax(out.logits));
    return l.total;
  }, vars);
  const values = (parts as unknown as tf.Tensor).dataSync();
  const pred = argmax((probs as unknown as tf.Tensor).dataSync());
  tf.dispose([value, parts as unknown as tf.Tensor, probs as unknown as tf.Tensor]);
  if (Number.isFinite(values[0])) optimizer.applyGradients(grads);
  tf.dispose(grads);
  return { loss: values[0], slideLoss: values[1], branchLoss: values[2], similarityLoss: values[3], pred };
}

/**
 * Trains HAFED (both stages jointly on U, or stage 2 on Z with `input: 'lowRes'`) with the
 * reference recipe (CAMELYON16 column of docs/reference-code.md §2.3):
 * - one slide per step in a seeded random order, STKIM masking on, loss
 *   `slide CE + mean branch CE + similarity losses` ({@link hafedLoss});
 * - AdamW (lr 4.14e-4, weight decay 1e-5), the learning rate set at every step from the
 *   half-cosine schedule at fractional epoch `e + i / nSlides`, 50 epochs;
 * - after every epoch, validation; the epoch with the highest `F1 + AUC` is kept (among tied
 *   epochs the one with the lowest validation cross-entropy, or with
 *   `selectionTieBreak: 'earliest'` the earlier one, as the reference), and the returned model
 *   holds its weights;
 * - with `checkpoint`, after every epoch the full state (weights, optimizer, history, best
 *   weights) is written as `'last'` and, when the epoch improved, a loadable HAFED as `'best'`;
 *   `resume: true` continues from `'last'` and reproduces the uninterrupted run exactly.
 *
 * Every slide is checked when loaded (d, k, N > 0, finite values, label in range); a bad
 * slide stops training with an error naming it, before any checkpoint of that epoch is written.
 *
 * @returns the trained model (owned by the caller), the per-epoch history and the selected epoch.
 * @example
 * ```ts
 * const { model, best } = await trainHafed({ train, val, config: { epochs: 50 }, seed: 5,
 *   onProgress: (e) => console.log(e.done, e.total, e.info) });
 * console.log(best.epoch, best.val?.auc);
 * await model.save('file:///models/hafed');
 * ```
 * @category HAFED
 */
export async function trainHafed(options: TrainHafedOptions): Promise<TrainHafedResult> {
  const { train, val, checkpoint, resume = false, onProgress, callbacks = {}, workers } = options;
  if (!train || typeof train.load !== 'function') throw new ValueError('trainHafed needs a training dataset: { train: SlideDataset }.');
  const seed = options.seed ?? 5;
  if (!Number.isFinite(seed)) throw new ValueError(`Expected seed to be a finite number, but got ${seed}.`);
  const tc = resolveHafedTrainConfig(options.config);
  const ownsModel = !(options.model instanceof Hafed);
  const model =
    options.model instanceof Hafed
      ? options.model
      : new Hafed({ dim: train.dim, ...(train.k !== undefined ? { k: train.k } : {}), seed, ...(options.model ?? {}) });
  const optimizer = new AdamW({ learningRate: tc.lr, weightDecay: tc.weightDecay, beta1: tc.beta1, beta2: tc.beta2, epsilon: tc.epsilon });
  let bestWeights: tf.NamedTensorMap | null = null;
  try {
    checkDatasetForHafed(model, train, 'training', true);
    if (val) checkDatasetForHafed(model, val, 'validation', true);

    const vars = model.weightMap();
    const varList = Object.values(vars);
    const nTrain = train.ids.length;
    let history: HafedEpochLog[] = [];
    let best: HafedBest | null = null;
    let startEpoch = 0;
    const { epochs: _epochs, ...trainSettings } = tc;
    const resumeKey = { model: { ...model.config }, train: trainSettings, seed, trainIds: [...train.ids] };

    if (resume && checkpoint) {
      const saved = await checkpoint.load('last');
      if (saved) {
        const ck = decodeTrainingCheckpoint(saved, HAFED_CHECKPOINT, { resume: resumeKey, epochs: tc.epochs }, legacyState);
        try {
          model.setWeights(ck.group('model'));
          await ck.restoreOptimizer(optimizer, vars);
          const bw = ck.group('best');
          if (Object.keys(bw).length > 0) bestWeights = Object.fromEntries(Object.entries(bw).map(([k, v]) => [k, tf.clone(v)]));
        } finally {
          ck.dispose();
        }
        history = ck.state.progress.history;
        best = ck.state.progress.best;
        startEpoch = ck.state.epochsDone;
      }
    }

    callbacks.onTrainingStart?.({ model, startEpoch, config: tc });
    const schedule = { lr: tc.lr, epochs: tc.epochs, minLr: tc.minLr, warmupEpochs: tc.warmupEpochs };
    let stop = false;
    for (let epoch = startEpoch; epoch < tc.epochs && !stop; epoch++) {
      const t0 = Date.now();
      const rng = epochRng(seed, epoch);
      const order = rng.permutation(nTrain);
      let sumLoss = 0;
      let sumSlide = 0;
      let sumBranch = 0;
      let sumSim = 0;
      let correct = 0;
      let lr = tc.lr;
      let steps = 0;
      for (let i = 0; i < nTrain; i++) {
        const id = train.ids[order[i]];
        const { bag, x } = await loadHafedInput(model, train, id, true);
        const label = bag.label as number;
        let values: number[];
        let pred: number;
        try {
          lr = halfCosineLr(epoch + i / nTrain, schedule);
          optimizer.learningRate = lr;
          const r = workers && model.aggregator
            ? await hafedTrainStepSharded(model, optimizer, x as tf.Tensor3D, label, rng, workers)
            : hafedTrainStep(model, optimizer, x, label, rng, varList);
          if (!Number.isFinite(r.loss)) {
            throw new StateError(
              `The loss became ${r.loss} at epoch ${epoch}, slide '${id}'. Lower the learning rate or check the features of this slide.`,
            );
          }
          values = [r.loss, r.slideLoss, r.branchLoss, r.similarityLoss];
          pred = r.pred;
        } finally {
          disposeBag(bag);
        }
        steps++;
        sumLoss += values[0];
        sumSlide += values[1];
        sumBranch += values[2];
        sumSim += values[3];
        if (pred === label) correct++;
        const globalStep = epoch * nTrain + i + 1;
        onProgress?.({
          task: 'train hafed',
          done: globalStep,
          total: tc.epochs * nTrain,
          info: { epoch: epoch + 1, loss: sumLoss / steps, lr },
        });
        if (callbacks.onStep?.({ epoch, step: i, globalStep, slideId: id, loss: values[0], lr }) === false) {
          stop = true;
          break;
        }
      }
      if (stop) break; // a partial epoch is neither validated nor checkpointed

      const log: HafedEpochLog = {
        epoch,
        lr,
        loss: sumLoss / steps,
        slideLoss: sumSlide / steps,
        branchLoss: sumBranch / steps,
        similarityLoss: sumSim / steps,
        trainAccuracy: correct / steps,
        seconds: 0,
      };
      let improved = false;
      const validate = val && ((epoch + 1) % tc.evalEvery === 0 || epoch === tc.epochs - 1);
      if (validate) {
        const { metrics, predictions } = await evaluateHafed(model, val!, { onProgress, task: 'val hafed', workers });
        log.val = metrics;
        log.score = selectionScore(metrics.f1, metrics.auc);
        log.valLoss = predictions.reduce((s, p) => s - Math.log(Math.max(p.probs[p.label], 1e-12)), 0) / predictions.length;
        const tie = best !== null && Math.abs(log.score - best.score) < 1e-12;
        if (
          best === null ||
          (log.score > best.score && !tie) ||
          (tie && tc.selectionTieBreak === 'valLoss' && log.valLoss < (best.valLoss ?? Infinity))
        ) {
          improved = true;
          best = { epoch, score: log.score, val: metrics, valLoss: log.valLoss };
          if (bestWeights) tf.dispose(bestWeights);
          bestWeights = model.getWeights();
        }
      } else if (!val) {
        best = { epoch, score: NaN };
        improved = true;
      }
      log.seconds = (Date.now() - t0) / 1000;
      history.push(log);

      if (checkpoint) {
        if (improved) await checkpoint.save('best', await model.toArtifacts());
        const artifacts = await encodeTrainingCheckpoint<HafedProgress>(HAFED_CHECKPOINT, {
          resume: resumeKey,
          epochsDone: epoch + 1,
          progress: { history, best },
          tensors: { model: vars, best: bestWeights },
          optimizers: { '': { optimizer, variables: vars } },
        });
        await checkpoint.save('last', artifacts);
      }
      if ((await callbacks.onEpochEnd?.(log)) === false) stop = true;
    }

    if (bestWeights) model.setWeights(bestWeights);
    if (best === null) {
      // Stopped before the first epoch ended: the current weights are all there is.
      best = { epoch: -1, score: NaN };
    }
    const result: TrainHafedResult = { model, history, best };
    callbacks.onTrainingEnd?.(result);
    return result;
  } catch (e) {
    if (ownsModel) model.dispose();
    throw e;
  } finally {
    optimizer.dispose();
    if (bestWeights) tf.dispose(bestWeights);
  }
}
