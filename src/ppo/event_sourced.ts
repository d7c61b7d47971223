/**
 * The event-sourced PPO update: actor and critic run once per distinct row version of the
 * episodes, not once per (step, row).
 *
 * Why it is exact: the actor's logit of a row and the critic's attention logit `c` and
 * projection `s = x . w_value` of a row depend on that row alone. So for the versions X [R, d]
 * we compute `l = actor(X)`, `c`, `s` (each [R]); then, per step t, gather them by
 * `ver[t, i]` (the version row i holds at step t), mask the rows chosen before t, and take
 * `log pi(a_t | S_t) = logSoftmax(l[ver[t]])[a_t]` and
 * `V(S_t) = sum_i softmax(c[ver[t]])_i s[ver[t, i]] + b_value` (the value head is linear, so
 * pooling the scalars `s` equals projecting the pooled state).
 *
 * How it runs (time O(R d h + T N); memory O(R d) for the version table plus one chunk):
 * 1. the networks' per-version outputs l, c, s, without a gradient tape, in passes of versions;
 * 2. the per-step part, chunk by chunk of steps: its loss and, by autodiff, the loss's
 *    gradient with respect to l, c, s and b_value, summed over chunks;
 * 3. the vector-Jacobian products of the networks: the gradient of `sum(l(X) dl)` for the
 *    actor and of `sum(c(X) dc) + sum(s(X) ds) + b_value db` for the critic, which equal the
 *    gradients of the losses by the chain rule; again in passes of versions, summed.
 *
 * @see docs/implementation-details.md P21
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { gatherRows } from '../core/ops.js';
import type { ActorCritic } from './actor_critic.js';
import { DEFAULT_PPO_CONFIG, type PpoConfig } from './defaults.js';
import { actorLossTerms, criticLoss, entropyFromLogProbs, maskedLogSoftmax, type PpoLossResult } from './ppo_loss.js';
import type { RolloutBatch, StepChunk, VersionTable } from './rollout_buffer.js';

/** Per-sample outputs of a policy on a batch of steps. @category PPO */
export interface PolicyEvaluation {
  /** log pi(a_t | S_t) under the masked distribution, [B]. */
  logProbs: Float32Array;
  /** Entropy of the masked distribution at each step, [B]. */
  entropies: Float32Array;
  /** V(S_t), [B]. */
  values: Float32Array;
}

/** Options of the event-sourced computations. @category PPO */
export interface EventSourcedOptions {
  /**
   * Bound on every large temporary: at most this many (step, row) scalars per chunk of steps,
   * and at most `chunkElements / hiddenDim` row versions per pass of the networks (default
   * `DEFAULT_PPO_CONFIG.chunkElements`, 2^17).
   */
  chunkElements?: number;
}

/** Tensors of one chunk of steps. */
interface ChunkTensors {
  versions: tf.Tensor1D; // int32 [tc * N]
  mask: tf.Tensor2D; // bool [tc, N]
  actionIndex: tf.Tensor1D; // int32 [tc]
  length: number;
  numPatches: number;
}

function chunkTensors(chunk: StepChunk): ChunkTensors {
  return {
    versions: tf.tensor1d(chunk.versions, 'int32'),
    mask: tf.tensor2d(chunk.mask, [chunk.length, chunk.numPatches], 'bool'),
    actionIndex: tf.tensor1d(chunk.actionIndex, 'int32'),
    length: chunk.length,
    numPatches: chunk.numPatches,
  };
}

function disposeChunk(t: ChunkTensors): void {
  tf.dispose([t.versions, t.mask, t.actionIndex]);
}

/**
 * Per-step log-probabilities, entropies and values of a chunk from the per-version outputs.
 *
 * **Input shape:** `l`, `c`, `s` [R]; `b` scalar. **Output shape:** three tensors [tc].
 */
function chunkQuantities(
  l: tf.Tensor1D,
  c: tf.Tensor1D,
  s: tf.Tensor1D,
  b: tf.Scalar,
  ch: ChunkTensors,
): { logProbs: tf.Tensor1D; entropies: tf.Tensor1D; values: tf.Tensor1D } {
  return tf.tidy(() => {
    const shape: [number, number] = [ch.length, ch.numPatches];
    // Actor: gather each step's logits by version, mask the chosen rows
    const logits = tf.reshape(gatherRows(l, ch.versions), shape); // [tc, N]
    const logp = maskedLogSoftmax(logits, ch.mask); // [tc, N]
    const entropies = entropyFromLogProbs(logp) as tf.Tensor1D; // [tc]
    const logProbs = gatherRows(tf.reshape(logp, [-1]) as tf.Tensor1D, ch.actionIndex); // [tc]
    // Critic: attention pooling of the per-row projections
    const alpha = tf.softmax(tf.reshape(gatherRows(c, ch.versions), shape)); // [tc, N]
    const proj = tf.reshape(gatherRows(s, ch.versions), shape); // [tc, N]
    const values = tf.add(tf.sum(tf.mul(alpha, proj), 1), b) as tf.Tensor1D; // [tc]
    return { logProbs, entropies, values };
  });
}

/** Row ranges [start, end) of the version table, at most `rows` versions each. */
function rowRanges(table: VersionTable, rows: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < table.numVersions; start += rows) out.push([start, Math.min(start + rows, table.numVersions)]);
  return out;
}

/** The versions [start, end) as a tensor [end - start, d] (a copy; owned by the caller). */
function versionRows(table: VersionTable, [start, end]: [number, number]): tf.Tensor2D {
  const d = table.dim;
  return tf.tensor2d(table.values.slice(start * d, end * d), [end - start, d]);
}

function rowsPerPass(model: ActorCritic, chunkElements: number): number {
  return Math.max(1, Math.floor(chunkElements / model.config.hiddenDim));
}

/**
 * The networks' per-version outputs, without a tape, in passes of at most `rows` versions:
 * actor logits l, critic attention logits c and projections s (each [R]), and the value bias b.
 */
function rowOutputs(model: ActorCritic, table: VersionTable, rows: number): [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Scalar] {
  const ls: tf.Tensor1D[] = [];
  const cs: tf.Tensor1D[] = [];
  const ss: tf.Tensor1D[] = [];
  for (const range of rowRanges(table, rows)) {
    tf.tidy(() => {
      const X = versionRows(table, range);
      const { attentionLogits, projections } = model.criticRowTerms(X);
      ls.push(tf.keep(model.actorLogits(X)));
      cs.push(tf.keep(attentionLogits));
      ss.push(tf.keep(projections));
    });
  }
  const cat = (xs: tf.Tensor1D[]) => {
    const out = xs.length === 1 ? xs[0] : (tf.concat(xs) as tf.Tensor1D);
    if (xs.length > 1) tf.dispose(xs);
    return out;
  };
  return [cat(ls), cat(cs), cat(ss), tf.tidy(() => tf.reshape(model.valueBias, []) as tf.Scalar)];
}

/** Sums gradient maps into `acc` (disposing the addends). */
function accumulateGrads(acc: tf.NamedTensorMap, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = { ...acc };
  for (const [k, g] of Object.entries(grads)) {
    out[k] = acc[k] ? tf.add(acc[k], g) : g;
    if (acc[k]) {
      acc[k].dispose();
      g.dispose();
    }
  }
  return out;
}

/**
 * Evaluates the policy on every step of a table without gradients, event-sourced: the
 * masked log-probability of the recorded action, the entropy and the critic's value.
 *
 * @returns typed arrays over the B samples, in episode order.
 * @example
 * ```ts
 * const { values } = evaluateEventSourced(model, buffer.versionTable()); // V_old for GAE
 * ```
 * @category PPO
 */
export function evaluateEventSourced(model: ActorCritic, table: VersionTable, options: EventSourcedOptions = {}): PolicyEvaluation {
  const B = table.numSamples;
  const out: PolicyEvaluation = { logProbs: new Float32Array(B), entropies: new Float32Array(B), values: new Float32Array(B) };
  const chunkElements = options.chunkElements ?? DEFAULT_PPO_CONFIG.chunkElements;
  const [l, c, s, b] = rowOutputs(model, table, rowsPerPass(model, chunkElements));
  try {
    for (const chunk of table.stepChunks(chunkElements)) {
      const ch = chunkTensors(chunk);
      const q = chunkQuantities(l, c, s, b, ch);
      out.logProbs.set(q.logProbs.dataSync(), chunk.sampleStart);
      out.entropies.set(q.entropies.dataSync(), chunk.sampleStart);
      out.values.set(q.values.dataSync(), chunk.sampleStart);
      tf.dispose([q.logProbs, q.entropies, q.values]);
      disposeChunk(ch);
    }
  } finally {
    tf.dispose([l, c, s, b]);
  }
  return out;
}

/**
 * The PPO losses of one epoch on a batch and their gradients, event-sourced (see the module
 * doc). Equal to the dense computation (the networks run on every row at every step) up to
 * float rounding, at O(R d) instead of O(T N d) memory. Parameters are not changed.
 *
 * @param batch from {@link buildRolloutBatch}.
 * @returns loss values and gradients (the gradient tensors belong to the caller).
 * @example
 * ```ts
 * const r = eventSourcedPpoLoss(model, batch, config);
 * const { grads } = clipByGlobalNorm(r.actorGrads, config.maxGradNorm);
 * ```
 * @category PPO
 */
export function eventSourcedPpoLoss(
  model: ActorCritic,
  batch: RolloutBatch,
  config: Pick<PpoConfig, 'clipCoef' | 'entCoef' | 'clipValueLoss'>,
  options: EventSourcedOptions = {},
): PpoLossResult {
  const { table } = batch;
  const B = table.numSamples;
  const chunkElements = options.chunkElements ?? DEFAULT_PPO_CONFIG.chunkElements;
  const rows = rowsPerPass(model, chunkElements);
  // 1. The networks once per row version (no tape)
  const [l, c, s, b] = rowOutputs(model, table, rows);
  let dl = tf.zerosLike(l);
  let dc = tf.zerosLike(c);
  let ds = tf.zerosLike(s);
  let db = tf.zerosLike(b);
  const names = ['actorLoss', 'valueLoss', 'policyLoss', 'entropy', 'oldApproxKl', 'approxKl', 'clipFraction'] as const;
  const sums: Record<(typeof names)[number], tf.Scalar> = Object.fromEntries(names.map((n) => [n, tf.scalar(0)])) as never;
  try {
    // 2. The per-step part, chunk by chunk: losses and their gradient w.r.t. l, c, s, b
    for (const chunk of table.stepChunks(chunkElements)) {
      const ch = chunkTensors(chunk);
      const slice = (a: Float32Array) => tf.tensor1d(a.slice(chunk.sampleStart, chunk.sampleStart + chunk.length));
      const oldLogProbs = slice(batch.oldLogProbs);
      const advantages = slice(batch.advantages);
      const returns = slice(batch.returns);
      const oldValues = slice(batch.oldValues);
      let terms: Record<(typeof names)[number], tf.Scalar> | null = null;
      const grads = tf.grads((lv: tf.Tensor, cv: tf.Tensor, sv: tf.Tensor, bv: tf.Tensor) => {
        const q = chunkQuantities(lv as tf.Tensor1D, cv as tf.Tensor1D, sv as tf.Tensor1D, bv as tf.Scalar, ch);
        const actor = actorLossTerms(q.logProbs, q.entropies, oldLogProbs, advantages, B, config);
        const value = criticLoss(q.values, oldValues, returns, B, config);
        terms = {
          actorLoss: tf.keep(actor.loss),
          valueLoss: tf.keep(value),
          policyLoss: tf.keep(actor.policyLoss),
          entropy: tf.keep(actor.entropy),
          oldApproxKl: tf.keep(actor.oldApproxKl),
          approxKl: tf.keep(actor.approxKl),
          clipFraction: tf.keep(actor.clipFraction),
        };
        return tf.add(actor.loss, value) as tf.Scalar;
      })([l, c, s, b]);
      const acc = <T extends tf.Tensor>(prev: T, g: tf.Tensor): T => {
        const next = tf.add(prev, g) as T;
        prev.dispose();
        return next;
      };
      dl = acc(dl, grads[0]);
      dc = acc(dc, grads[1]);
      ds = acc(ds, grads[2]);
      db = acc(db, grads[3]);
      tf.dispose(grads);
      const t = terms as unknown as Record<(typeof names)[number], tf.Scalar>;
      for (const n of names) {
        sums[n] = acc(sums[n], t[n]);
        t[n].dispose();
      }
      tf.dispose([oldLogProbs, advantages, returns, oldValues]);
      disposeChunk(ch);
    }
    // 3. Vector-Jacobian products into the networks (one more forward pass, with a tape), in
    //    passes of versions: the gradients of sum(l(X) dl) and sum(c(X) dc) + sum(s(X) ds) + b db
    let actorGrads: tf.NamedTensorMap = {};
    let criticGrads: tf.NamedTensorMap = {};
    for (const range of rowRanges(table, rows)) {
      const X = versionRows(table, range);
      const [start, end] = range;
      const part = (v: tf.Tensor1D) => tf.slice(v, [start], [end - start]);
      const dlc = part(dl as tf.Tensor1D);
      const dcc = part(dc as tf.Tensor1D);
      const dsc = part(ds as tf.Tensor1D);
      const actor = tf.variableGrads(() => tf.sum(tf.mul(model.actorLogits(X), dlc)) as tf.Scalar, model.actorVariables);
      const critic = tf.variableGrads(() => {
        const { attentionLogits, projections } = model.criticRowTerms(X);
        const terms = [tf.sum(tf.mul(attentionLogits, dcc)), tf.sum(tf.mul(projections, dsc))];
        // the value bias enters once, with the first pass (later passes give it no gradient)
        if (start === 0) terms.push(tf.sum(tf.mul(model.valueBias, db)));
        return tf.addN(terms) as tf.Scalar;
      }, model.criticVariables);
      actorGrads = accumulateGrads(actorGrads, actor.grads);
      criticGrads = accumulateGrads(criticGrads, critic.grads);
      tf.dispose([actor.value, critic.value, X, dlc, dcc, dsc]);
    }
    const read = (n: (typeof names)[number]) => sums[n].dataSync()[0];
    return {
      actorLoss: read('actorLoss'),
      valueLoss: read('valueLoss'),
      policyLoss: read('policyLoss'),
      entropy: read('entropy'),
      oldApproxKl: read('oldApproxKl'),
      approxKl: read('approxKl'),
      clipFraction: read('clipFraction'),
      actorGrads,
      criticGrads,
    };
  } finally {
    tf.dispose([l, c, s, b, dl, dc, ds, db, ...Object.values(sums)]);
  }
}
