/**
 * Running a HAFED model over a cohort: per-slide predictions and the classification metrics.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { predictHafedSharded, type SubPatchWorkers } from './sharded.js';
import { DataError, ShapeError, fmtShape } from '../core/errors.js';
import { assertFinite } from '../core/ops.js';
import { disposeBag, validateBag, type SlideBag, type SlideDataset, type SlidePart } from '../core/data.js';
import type { ProgressCallback } from '../core/progress.js';
import { classificationMetrics, argmax, type ClassificationMetrics } from '../eval/metrics.js';
import type { Hafed } from './hafed.js';

/** One slide's prediction. */
export interface SlidePrediction {
  /** Slide id. */
  id: string;
  /** True class, or -1 when unknown. */
  label: number;
  /** Predicted class (argmax of `probs`). */
  pred: number;
  /** Class probabilities, length C. */
  probs: number[];
}

/** Options of {@link predictHafed} and {@link evaluateHafed}. */
export interface EvaluateHafedOptions {
  /** Progress events (`task: 'eval hafed'`, one unit per slide). */
  onProgress?: ProgressCallback;
  /** Task name shown in progress events. Default `'eval hafed'`. */
  task?: string;
  /**
   * Worker threads for stage 1 (in Node, `createHafedWorkerPool` of `sasha-wsi/node`): each
   * slide's patches are split over this thread and the workers. Same predictions up to float
   * rounding.
   */
  workers?: SubPatchWorkers;
}

/** The part of a slide a model reads. */
export function hafedInputPart(model: Hafed): SlidePart {
  return model.config.input === 'highRes' ? 'highRes' : 'lowRes';
}

/**
 * Checks a dataset against a model before any slide is read: the features it needs exist and
 * have the model's d (and k), and every known label is a class of the model.
 * @param requireLabels also reject slides without a label (-1).
 * @throws DataError or ShapeError naming the fix.
 * @category HAFED
 */
export function checkDatasetForHafed(model: Hafed, dataset: SlideDataset, what: string, requireLabels: boolean): void {
  const part = hafedInputPart(model);
  if (dataset.ids.length === 0) throw new DataError(`The ${what} set is empty; give it at least one slide.`);
  if (!dataset.parts.includes(part)) {
    throw new DataError(
      `The ${what} set has no ${part} features, but this model reads ${part} (input '${model.config.input}'). ` +
        (part === 'highRes' ? "Give high-res features (U), or train with input 'lowRes'." : 'Give low-res features (Z).'),
    );
  }
  if (dataset.dim !== model.dim) {
    throw new ShapeError(
      `The ${what} set has features of width d = ${dataset.dim}, but the model expects d = ${model.dim}. ` +
        'Use features from the encoder the model was built for, or build the model with this dim.',
    );
  }
  if (part === 'highRes' && dataset.k !== undefined && dataset.k !== model.k) {
    throw new ShapeError(
      `The ${what} set has k = ${dataset.k} sub-patches per patch, but the model expects k = ${model.k}. ` +
        'Extract high-res features with the level ratio the model was built for, or build the model with this k.',
    );
  }
  dataset.ids.forEach((id, i) => {
    const y = dataset.labels[i];
    if (y === -1 && !requireLabels) return;
    if (!Number.isInteger(y) || y < 0 || y >= model.numClasses) {
      throw new DataError(
        y === -1
          ? `Slide '${id}' of the ${what} set has no label; every ${what} slide needs one.`
          : `Slide '${id}' of the ${what} set has label ${y}, outside the model's classes [0, ${model.numClasses}). ` +
            'Fix the label, or set numClasses to cover it.',
      );
    }
  });
}

/**
 * Loads one slide's model input and checks it (rank, d, k, N > 0, finite values, label).
 * @returns the bag (caller disposes it with `disposeBag`) and its input tensor.
 * @internal
 */
export async function loadHafedInput(
  model: Hafed,
  dataset: SlideDataset,
  id: string,
  requireLabel: boolean,
): Promise<{ bag: SlideBag; x: tf.Tensor }> {
  const part = hafedInputPart(model);
  const bag = await dataset.load(id, [part]);
  try {
    validateBag(bag, {
      dim: model.dim,
      k: part === 'highRes' ? model.k : undefined,
      numClasses: model.numClasses,
      require: [part],
      checkFinite: false,
    });
    const x = bag[part] as tf.Tensor;
    if (part === 'lowRes' && x.rank !== 2) throw new ShapeError(`Slide '${id}': expected lowRes [N, d], but got ${fmtShape(x.shape)}.`);
    // One device reduction instead of reading the features back: NaN or +-inf make the sum non-finite.
    const total = tf.tidy(() => tf.sum(x));
    const ok = Number.isFinite(total.dataSync()[0]);
    total.dispose();
    if (!ok) assertFinite(x, `the ${part} features of slide '${id}'`);
    if (requireLabel && bag.label === undefined) throw new DataError(`Slide '${id}' has no label; training and evaluation need one.`);
    return { bag, x };
  } catch (e) {
    disposeBag(bag);
    throw e;
  }
}

/**
 * Predicts every slide of `dataset` with `model` (evaluation mode), one slide at a time.
 * @returns one {@link SlidePrediction} per slide, in `dataset.ids` order.
 * @example
 * ```ts
 * const preds = await predictHafed(hafed, testSet);
 * // [{ id: 'test_001', label: 1, pred: 1, probs: [0.03, 0.97] }, ...]
 * ```
 * @category HAFED
 */
export async function predictHafed(model: Hafed, dataset: SlideDataset, options: EvaluateHafedOptions = {}): Promise<SlidePrediction[]> {
  checkDatasetForHafed(model, dataset, 'evaluation', false);
  const task = options.task ?? 'eval hafed';
  const out: SlidePrediction[] = [];
  for (let i = 0; i < dataset.ids.length; i++) {
    const id = dataset.ids[i];
    const { bag, x } = await loadHafedInput(model, dataset, id, false);
    try {
      const p = options.workers && model.aggregator ? await predictHafedSharded(model, x as tf.Tensor3D, options.workers) : model.predict(x);
      const probs = Array.from(p.probs.dataSync());
      tf.dispose([p.logits, p.probs, p.attention]);
      out.push({ id, label: bag.label ?? -1, pred: argmax(probs), probs });
    } finally {
      disposeBag(bag);
    }
    options.onProgress?.({ task, done: i + 1, total: dataset.ids.length });
  }
  return out;
}

/**
 * Predicts every slide and computes the {@link ClassificationMetrics} (accuracy, balanced
 * accuracy, AUC, F1, ECE, confusion matrix). Every slide needs a label.
 * @returns the metrics and the per-slide predictions.
 * @example
 * ```ts
 * const { metrics } = await evaluateHafed(hafed, testSet);
 * console.log(metrics.accuracy, metrics.auc);
 * ```
 * @category HAFED
 */
export async function evaluateHafed(
  model: Hafed,
  dataset: SlideDataset,
  options: EvaluateHafedOptions = {},
): Promise<{ metrics: ClassificationMetrics; predictions: SlidePrediction[] }> {
  checkDatasetForHafed(model, dataset, 'evaluation', true);
  const predictions = await predictHafed(model, dataset, options);
  const metrics = classificationMetrics(
    predictions.map((p) => p.label),
    predictions.map((p) => p.probs),
  );
  return { metrics, predictions };
}
