/**
 * HAFED on several threads: stage 1 (the k sub-patches of each of the N patches, most of the
 * work) split over shards of the patches, each shard's forward and backward pass where its
 * data is; stage 2 on the calling thread. A training step's gradients are the sums of the
 * shards' gradients, so the step equals the one-thread step up to float rounding (the STKIM
 * draws are made in one place, in the one-thread order).
 *
 * This module is browser-safe: it defines the shard computation ({@link SubPatchShard}) and the
 * contract of a pool of shards ({@link SubPatchWorkers}); `sasha-wsi/node` provides a pool of
 * worker threads (`createHafedWorkerPool`).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, StateError, ValueError } from '../core/errors.js';
import type { Rng } from '../core/random.js';
import { argmax } from '../eval/metrics.js';
import type { Hafed, HafedPrediction } from './hafed.js';
import { hafedLoss } from './losses.js';
import type { ScoreWeights } from '../core/gated_attention.js';
import { subPatchBackward, subPatchForward, type SubPatchSaved } from './sub_patch_pooling.js';
import { stkimMaskFromRanks } from './multi_branch_attention.js';
import type { HafedStepResult } from './train_hafed.js';
import type { HafedOutput } from './types.js';

/** The stage-1 weights in {@link ScoreWeights} order, as flat arrays with their shapes. */
export interface ShardWeights {
  kernelV: Float32Array;
  biasV: Float32Array;
  kernelU: Float32Array;
  biasU: Float32Array;
  kernelW: Float32Array;
  biasW: Float32Array;
  /** d. */
  dim: number;
  /** D. */
  attentionDim: number;
  /** M1. */
  numBranches: number;
}

/** A shard's forward task: its patches' U and what masks them. */
export interface ShardForwardTask {
  /** U of the shard's patches, [n * k * d] row-major. */
  u: Float32Array;
  /** n, k, d. */
  shape: [number, number, number];
  weights: ShardWeights;
  /** STKIM ranks of the shard's rows ([n * M1 * count]), or null (no masking). */
  ranks: Int32Array | null;
  /** STKIM's top-k over the k sub-patches (used with `ranks`). */
  maskTopK: number;
  /** Keep what the backward pass needs (training); false for inference. */
  training: boolean;
}

/** What a shard's forward pass returns. */
export interface ShardForwardResult {
  /** V of the shard's patches, [n * d]. */
  features: Float32Array;
  /** Their attention, [n * M1 * k]. */
  attention: Float32Array;
}

/**
 * A pool of stage-1 shards besides the calling thread (worker threads in Node:
 * `createHafedWorkerPool`). Shard s runs one forward pass, then (in training) one backward
 * pass, at a time.
 * @category HAFED
 */
export interface SubPatchWorkers {
  /** Number of shards the pool runs (the calling thread runs one more). */
  readonly size: number;
  /**
   * 0: the pool's shards take every patch and the calling thread none (a pool faster than the
   * calling thread, e.g. `createNativeStage1`). Absent: the calling thread takes an equal share.
   */
  readonly localShare?: 0;
  /** Runs a shard's forward pass. */
  forward(shard: number, task: ShardForwardTask): Promise<ShardForwardResult>;
  /**
   * Runs a shard's backward pass, from the gradients of its features [n * d] and attention
   * [n * M1 * k].
   * @returns the six weight gradients, in {@link ScoreWeights} order.
   */
  backward(shard: number, dFeatures: Float32Array, dAttention: Float32Array): Promise<Float32Array[]>;
}

/**
 * The computation of one shard, on the thread it lives on: a forward pass on its patches (STKIM
 * masks from the ranks drawn elsewhere) and, in training, the backward pass into the stage-1
 * weights. A worker thread holds one; the calling thread uses one for its own shard.
 * @category HAFED
 */
export class SubPatchShard {
  private state: { u: tf.Tensor3D; w: Record<keyof ScoreWeights, tf.Tensor>; saved: SubPatchSaved } | null = null;
  /** The weight sizes of a training forward pass on no patches (its gradients are zeros). */
  private empty: number[] | null = null;

  /** Runs the forward pass of a task (keeping what the backward pass needs in training). */
  forward(task: ShardForwardTask): ShardForwardResult {
    this.release();
    const [n, k, d] = task.shape;
    const { weights: w } = task;
    if (n === 0) {
      if (task.training) this.empty = [w.kernelV.length, w.biasV.length, w.kernelU.length, w.biasU.length, w.kernelW.length, w.biasW.length];
      return { features: new Float32Array(0), attention: new Float32Array(0) };
    }
    if (task.u.length !== n * k * d || w.dim !== d) {
      throw new ShapeError(`Expected a shard of ${n} x ${k} x ${d} values with weights for d = ${d}, but got ${task.u.length} values and d = ${w.dim}.`);
    }
    const D = w.attentionDim;
    const M = w.numBranches;
    const weights = {
      kernelV: tf.tensor2d(w.kernelV, [d, D]),
      biasV: tf.tensor1d(w.biasV),
      kernelU: tf.tensor2d(w.kernelU, [d, D]),
      biasU: tf.tensor1d(w.biasU),
      kernelW: tf.tensor2d(w.kernelW, [D, M]),
      biasW: tf.tensor1d(w.biasW),
    };
    const u = tf.tensor3d(task.u, [n, k, d]);
    const ranks = task.ranks;
    const keep = ranks
      ? (logits: tf.Tensor3D) => stkimMaskFromRanks(logits, ranks, Math.min(task.maskTopK, k))
      : undefined;
    const { features, attention, saved } = subPatchForward(u, weights, { keep });
    const out = { features: features.dataSync() as Float32Array, attention: attention.dataSync() as Float32Array };
    features.dispose();
    if (task.training) {
      this.state = { u, w: weights, saved };
    } else {
      tf.dispose([u, ...Object.values(weights), saved.t, saved.s, saved.g, saved.a]);
    }
    return { features: out.features.slice(), attention: out.attention.slice() };
  }

  /** The backward pass of the last training forward pass; frees what it kept. */
  backward(dFeatures: Float32Array, dAttention: Float32Array): Float32Array[] {
    if (this.empty) {
      const zeros = this.empty.map((len) => new Float32Array(len));
      this.empty = null;
      return zeros;
    }
    if (!this.state) throw new StateError('A shard backward pass needs a training forward pass first.');
    const { u, w, saved } = this.state;
    const [n, k, d] = u.shape;
    const m = saved.a.shape[1];
    const grads = tf.tidy(() => subPatchBackward(u, w as unknown as ScoreWeights, saved, tf.tensor2d(dFeatures, [n, d]), tf.tensor3d(dAttention, [n, m, k])));
    const out = grads.map((g) => (g.dataSync() as Float32Array).slice());
    tf.dispose(grads);
    this.release();
    return out;
  }

  /** Frees what a forward pass kept. */
  release(): void {
    this.empty = null;
    if (!this.state) return;
    const { u, w, saved } = this.state;
    tf.dispose([u, ...Object.values(w), saved.t, saved.s, saved.g, saved.a]);
    this.state = null;
  }
}

function stageOneWeights(model: Hafed): { weights: ShardWeights; vars: tf.Variable[] } {
  const agg = model.aggregator;
  if (!agg) throw new StateError("A model with input 'lowRes' has no stage 1 to share out; train it without workers.");
  const att = agg.attention;
  if (!att.gated) throw new ValueError('Sharded stage 1 needs the gated attention (gated: true).');
  const map = att.weightMap();
  const get = (name: string) => (map[name].dataSync() as Float32Array).slice();
  return {
    weights: {
      kernelV: get('kernelV'),
      biasV: get('biasV'),
      kernelU: get('kernelU'),
      biasU: get('biasU'),
      kernelW: get('kernelW'),
      biasW: get('biasW'),
      dim: model.dim,
      attentionDim: att.attentionDim,
      numBranches: att.numBranches,
    },
    vars: ['kernelV', 'biasV', 'kernelU', 'biasU', 'kernelW', 'biasW'].map((n) => map[n]),
  };
}

/** Patch ranges [start, end) of `shards` shards over n patches, the first for the calling thread. */
function shardRanges(n: number, shards: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < shards; s++) out.push([Math.floor((s * n) / shards), Math.floor(((s + 1) * n) / shards)]);
  return out.filter(([a, b]) => b > a);
}

/** Runs stage 1 over the shards: the calling thread's shard here, the others in the pool. */
async function shardedStageOne(model: Hafed, x: tf.Tensor3D, workers: SubPatchWorkers, rng: Rng | null) {
  const [n, k, d] = x.shape;
  const { weights, vars } = stageOneWeights(model);
  const agg = model.aggregator!;
  const M = agg.attention.numBranches;
  // STKIM draws for every row, in the one-thread order
  const ranks = rng ? agg.attention.stkimRanks(n * M, k, rng) : null;
  const count = ranks ? ranks.length / (n * M) : 0;
  // the calling thread's range first (empty when the pool takes every patch)
  const ranges: [number, number][] = workers.localShare === 0 ? [[0, 0], ...shardRanges(n, workers.size)] : shardRanges(n, workers.size + 1);
  const all = x.dataSync() as Float32Array;
  const task = (s: number): ShardForwardTask => {
    const [a, b] = ranges[s];
    return {
      u: all.slice(a * k * d, b * k * d),
      shape: [b - a, k, d],
      weights,
      ranks: ranks ? ranks.slice(a * M * count, b * M * count) : null,
      maskTopK: agg.attention.maskTopK,
      training: rng !== null,
    };
  };
  const remote = ranges.slice(1).map((_, i) => workers.forward(i, task(i + 1)));
  const local = new SubPatchShard();
  const mine = local.forward(task(0));
  const results = [mine, ...(await Promise.all(remote))];
  const features = new Float32Array(n * d);
  const attention = new Float32Array(n * M * k);
  results.forEach((r, s) => {
    features.set(r.features, ranges[s][0] * d);
    attention.set(r.attention, ranges[s][0] * M * k);
  });
  return { features, attention, ranges, local, vars, M };
}

/**
 * {@link hafedTrainStep} with stage 1 shared out over the calling thread and a pool of shards:
 * the forward pass of stage 1 on every shard at once, stage 2 and the losses here, then the
 * backward pass of stage 1 on every shard at once; the gradients are summed and the optimiser
 * steps once. The STKIM draws come from `rng` in the one-thread order, so the step equals the
 * one-thread step up to float rounding.
 *
 * @param x U [N, k, d]; not disposed.
 * @returns the loss values and the prediction; no tensor stays alive.
 * @example
 * ```ts
 * const pool = await createHafedWorkerPool(1); // sasha-wsi/node: one worker besides this thread
 * const r = await hafedTrainStepSharded(hafed, optimizer, u, label, rng, pool);
 * ```
 * @category HAFED
 */
export async function hafedTrainStepSharded(
  model: Hafed,
  optimizer: tf.Optimizer,
  x: tf.Tensor3D,
  label: number,
  rng: Rng,
  workers: SubPatchWorkers,
): Promise<HafedStepResult> {
  const [n, k, d] = x.shape;
  const s1 = await shardedStageOne(model, x, workers, rng);
  const { ranges, local, vars: stage1Vars, M } = s1;
  const stage2Vars = Object.values(model.classifier.weightMap());
  // Stage 2 and the losses, with V and the stage-1 attention as leaves: their gradients go back to the shards
  const v = tf.tidy(() => tf.variable(tf.tensor2d(s1.features, [n, d]), true));
  const a1 = tf.tidy(() => tf.variable(tf.tensor3d(s1.attention, [n, M, k]), true));
  let parts: tf.Tensor | null = null;
  let probs: tf.Tensor | null = null;
  let grads: tf.NamedTensorMap = {};
  let value: tf.Scalar | null = null;
  try {
    ({ value, grads } = tf.variableGrads(() => {
      const s2 = model.classifier.forward(v, { training: true, rng });
      const out: HafedOutput = { logits: s2.logits, branchLogits: s2.branchLogits, attention: s2.attention, features: v, attention1: a1 };
      const l = hafedLoss(out, label);
      parts = tf.keep(tf.stack([l.total, l.slide, l.branch, tf.add(l.similarity1, l.similarity2)]));
      probs = tf.keep(tf.softmax(s2.logits));
      return l.total;
    }, [...stage2Vars, v, a1]));
    const values = (parts as unknown as tf.Tensor).dataSync();
    const pred = argmax((probs as unknown as tf.Tensor).dataSync());
    const result: HafedStepResult = { loss: values[0], slideLoss: values[1], branchLoss: values[2], similarityLoss: values[3], pred };
    // (a leaf the loss does not use gets no gradient: the similarity loss of one branch is 0)
    const dv = grads[v.name] ? (grads[v.name].dataSync() as Float32Array) : new Float32Array(n * d);
    const da = grads[a1.name] ? (grads[a1.name].dataSync() as Float32Array) : new Float32Array(n * M * k);
    if (!Number.isFinite(result.loss)) {
      local.release();
      // the shards still hold their forward passes: a backward pass with zero gradients frees them
      await Promise.all(ranges.slice(1).map((r, i) => workers.backward(i, new Float32Array((r[1] - r[0]) * d), new Float32Array((r[1] - r[0]) * M * k))));
      return result;
    }
    const slice = (a: Float32Array, [s, e]: [number, number], width: number) => a.slice(s * width, e * width);
    const remote = ranges.slice(1).map((r, i) => workers.backward(i, slice(dv, r, d), slice(da, r, M * k)));
    const sums = local.backward(slice(dv, ranges[0], d), slice(da, ranges[0], M * k)).map((g) => Float64Array.from(g));
    for (const shardGrads of await Promise.all(remote)) shardGrads.forEach((g, j) => g.forEach((x, i) => (sums[j][i] += x)));
    const all: tf.NamedTensorMap = {};
    stage1Vars.forEach((variable, j) => (all[variable.name] = tf.tensor(Float32Array.from(sums[j]), variable.shape)));
    for (const variable of stage2Vars) all[variable.name] = grads[variable.name];
    optimizer.applyGradients(all);
    tf.dispose(stage1Vars.map((variable) => all[variable.name]));
    return result;
  } finally {
    local.release();
    tf.dispose([v, a1, ...(value ? [value] : []), ...Object.values(grads)]);
    if (parts) (parts as tf.Tensor).dispose();
    if (probs) (probs as tf.Tensor).dispose();
  }
}

/**
 * `Hafed.predict` with stage 1 shared out over the calling thread and a pool of shards
 * (evaluation mode).
 * @param x U [N, k, d]; not disposed.
 * @returns `{ logits, probs, attention }`, owned by the caller.
 * @category HAFED
 */
export async function predictHafedSharded(model: Hafed, x: tf.Tensor3D, workers: SubPatchWorkers): Promise<HafedPrediction> {
  const [n, , d] = x.shape;
  const { features, local } = await shardedStageOne(model, x, workers, null);
  local.release();
  const v = tf.tensor2d(features, [n, d]);
  try {
    return model.classify(v);
  } finally {
    v.dispose();
  }
}
