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
 * How it runs (memory O(R d h + chunk N), time O(R d h + T N)):
 * 1. the networks' per-version outputs l, c, s, without a gradient tape;
 * 2. the per-step part, chunk by chunk of steps: its loss and, by autodiff, the loss's
 *    gradient with respect to l, c, s and b_value, summed over chunks;
 * 3. the vector-Jacobian products of the networks: the gradient of `sum(l(X) dl)` for the
 *    actor and of `sum(c(X) dc) + sum(s(X) ds) + b_value db` for the critic, which equal the
 *    gradients of the losses by the chain rule.
 *
 * @see DESIGN.md §5
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, fmtShape } from '../core/errors.js';
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
  /** Largest number of (step, row) scalars per chunk (default `DEFAULT_PPO_CONFIG.chunkElements`, 2^18). */
  chunkElements?: number;
  /**
   * The table's versions as a tensor [R, d], when the caller keeps one across epochs (not
   * disposed here). Built from `table.values` otherwise.
   */
  versions?: tf.Tensor2D;
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

function versionsTensor(table: VersionTable, given?: tf.Tensor2D): tf.Tensor2D {
  if (given) {
    if (given.rank !== 2 || given.shape[0] !== table.numVersions || given.shape[1] !== table.dim) {
      throw new ShapeError(
        `Expected versions of shape [${table.numVersions}, ${table.dim}], but got ${fmtShape(given.shape)}.`,
      );
    }
    return given;
  }
  return tf.tensor2d(table.values, [table.numVersions, table.dim]);
}

function rowOutputs(model: ActorCritic, X: tf.Tensor2D): [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Scalar] {
  return tf.tidy(() => {
    const { attentionLogits, projections } = model.criticRowTerms(X);
    return [model.actorLogits(X), attentionLogits, projections, tf.reshape(model.valueBias, []) as tf.Scalar];
  });
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
  const X = versionsTensor(table, options.versions);
  const [l, c, s, b] = rowOutputs(model, X);
  try {
    for (const chunk of table.stepChunks(options.chunkElements ?? DEFAULT_PPO_CONFIG.chunkElements)) {
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
    if (X !== options.versions) X.dispose();
  }
  return out;
}

/**
 * The PPO losses of one epoch on a batch and their gradients, event-sourced (see the module
 * doc). Equal to {@link densePpoLoss} up to float rounding, at O(R d) instead of O(T N d)
 * memory. Parameters are not changed.
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
  const X = versionsTensor(table, options.versions);
  // 1. The networks once per row version (no tape)
  const [l, c, s, b] = rowOutputs(model, X);
  let dl = tf.zerosLike(l);
  let dc = tf.zerosLike(c);
  let ds = tf.zerosLike(s);
  let db = tf.zerosLike(b);
  const names = ['actorLoss', 'valueLoss', 'policyLoss', 'entropy', 'oldApproxKl', 'approxKl', 'clipFraction'] as const;
  const sums: Record<(typeof names)[number], tf.Scalar> = Object.fromEntries(names.map((n) => [n, tf.scalar(0)])) as never;
  try {
    // 2. The per-step part, chunk by chunk: losses and their gradient w.r.t. l, c, s, b
    for (const chunk of table.stepChunks(options.chunkElements ?? DEFAULT_PPO_CONFIG.chunkElements)) {
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
    // 3. Vector-Jacobian products into the networks (one more forward pass, with a tape)
    const actor = tf.variableGrads(() => tf.sum(tf.mul(model.actorLogits(X), dl)) as tf.Scalar, model.actorVariables);
    const critic = tf.variableGrads(() => {
      const { attentionLogits, projections } = model.criticRowTerms(X);
      return tf.addN([tf.sum(tf.mul(attentionLogits, dc)), tf.sum(tf.mul(projections, ds)), tf.sum(tf.mul(model.valueBias, db))]) as tf.Scalar;
    }, model.criticVariables);
    tf.dispose([actor.value, critic.value]);
    const read = (n: (typeof names)[number]) => sums[n].dataSync()[0];
    return {
      actorLoss: read('actorLoss'),
      valueLoss: read('valueLoss'),
      policyLoss: read('policyLoss'),
      entropy: read('entropy'),
      oldApproxKl: read('oldApproxKl'),
      approxKl: read('approxKl'),
      clipFraction: read('clipFraction'),
      actorGrads: actor.grads,
      criticGrads: critic.grads,
    };
  } finally {
    tf.dispose([l, c, s, b, dl, dc, ds, db, ...Object.values(sums)]);
    if (X !== options.versions) X.dispose();
  }
}
