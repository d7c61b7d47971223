/**
 * The event-sourced PPO update: actor and critic run once per distinct row version of the
 * episodes, not once per (step, row).
 *
 * Why it is exact: the actor's logit of a row and the critic's attention logit `c` and
 * projection `s = x . w_value` of a row depend on that row alone. So for the versions X [R, d]
 * we compute `l = actor(X)`, `c`, `s` (each [R]); then, per step t, with `v_t(i)` the version
 * row i holds at step t and the rows chosen before t masked,
 * `log pi(a_t | S_t) = logSoftmax(l[v_t])[a_t]` and
 * `V(S_t) = sum_i softmax(c[v_t])_i s[v_t(i)] + b_value` (the value head is linear, so pooling
 * the scalars `s` equals projecting the pooled state).
 *
 * How it runs (time O(R d h + R log N + B); memory O(R (d + h))):
 * 1. the networks' per-version outputs l, c, s, in passes of versions, under the gradient tape
 *    (their activations, [R, h] per network, are kept for the backward pass);
 * 2. the per-step part ({@link stepQuantities}): the per-step log-probabilities, entropies and
 *    pooled projections from l, c, s, kept up to date between steps in O(log N) per changed row,
 *    then the losses over the B samples;
 * 3. one backward pass: the per-step part's exact gradient with respect to l, c, s in
 *    O(R + B), then through the networks.
 *
 * @see docs/implementation-details.md P21
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import type { ActorCritic } from './actor_critic.js';
import { DEFAULT_PPO_CONFIG, type PpoConfig } from './defaults.js';
import { actorLossTerms, criticLoss, type PpoLossResult } from './ppo_loss.js';
import type { RolloutBatch, VersionTable } from './rollout_buffer.js';
import { stepQuantities, stepStatistics } from './step_statistics.js';

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
   * Bound on the networks' temporaries: at most `chunkElements / hiddenDim` row versions per
   * pass of the networks (default `DEFAULT_PPO_CONFIG.chunkElements`, 2^17).
   */
  chunkElements?: number;
  /**
   * `rho_t` of every sample ([B], from `valueScales`): the critic's values are then
   * `rho_t (sum_i alpha_i s_i + b)`. Absent or null: factor 1.
   */
  valueScales?: Float32Array | null;
  /**
   * The table's row versions as tensors (from {@link VersionRows}), to reuse over the epochs of
   * an update; made and freed per call when absent or made for another table.
   */
  rows?: VersionRows;
}

/** Row ranges [start, end) of the version table, at most `rows` versions each. */
function rowRanges(table: VersionTable, rows: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < table.numVersions; start += rows) out.push([start, Math.min(start + rows, table.numVersions)]);
  return out;
}

function rowsPerPass(model: ActorCritic, chunkElements: number): number {
  return Math.max(1, Math.floor(chunkElements / model.config.hiddenDim));
}

/**
 * The row versions of a table as tensors, in passes of the networks, each with its transpose
 * (which the networks' weight gradients need): made once per update and reused by its epochs.
 * The caller frees them with {@link VersionRows.dispose}.
 * @example
 * ```ts
 * const rows = new VersionRows(table, model);
 * try { for (let e = 0; e < 4; e++) eventSourcedPpoLoss(model, batch, config, { rows }); } finally { rows.dispose(); }
 * ```
 * @category PPO
 */
export class VersionRows {
  /** The table the rows belong to. */
  readonly table: VersionTable;
  /** The passes: rows [n, d] and their transposes [d, n]. */
  readonly passes: readonly { x: tf.Tensor2D; xT: tf.Tensor2D }[];

  constructor(table: VersionTable, model: ActorCritic, options: { chunkElements?: number } = {}) {
    this.table = table;
    const d = table.dim;
    const rows = rowsPerPass(model, options.chunkElements ?? DEFAULT_PPO_CONFIG.chunkElements);
    this.passes = rowRanges(table, rows).map(([start, end]) => {
      const x = tf.tensor2d(table.values.slice(start * d, end * d), [end - start, d]);
      return { x, xT: tf.transpose(x) as tf.Tensor2D };
    });
  }

  /** Frees the tensors. */
  dispose(): void {
    for (const p of this.passes) tf.dispose([p.x, p.xT]);
  }
}

/** The rows of `options` when they belong to `table`, else new ones (`owned`: the caller frees them). */
function rowsFor(model: ActorCritic, table: VersionTable, options: EventSourcedOptions): { rows: VersionRows; owned: boolean } {
  if (options.rows && options.rows.table === table) return { rows: options.rows, owned: false };
  return { rows: new VersionRows(table, model, options), owned: true };
}

/**
 * The networks' per-version outputs, without a tape, pass by pass: actor logits l, critic
 * attention logits c and projections s (each [R]), and the value bias b.
 */
function rowOutputs(model: ActorCritic, rows: VersionRows): [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Scalar] {
  const ls: tf.Tensor1D[] = [];
  const cs: tf.Tensor1D[] = [];
  const ss: tf.Tensor1D[] = [];
  for (const { x } of rows.passes) {
    tf.tidy(() => {
      const { attentionLogits, projections } = model.criticRowTerms(x);
      ls.push(tf.keep(model.actorLogits(x)));
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
  const { rows, owned } = rowsFor(model, table, options);
  let outputs: [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Scalar];
  try {
    outputs = rowOutputs(model, rows);
  } finally {
    if (owned) rows.dispose();
  }
  const [l, c, s, b] = outputs;
  try {
    const q = stepStatistics(table, l.dataSync(), c.dataSync(), s.dataSync());
    const bias = b.dataSync()[0];
    return {
      logProbs: Float32Array.from(q.logProbs),
      entropies: Float32Array.from(q.entropies),
      values: Float32Array.from(q.pooled, (p, i) => (p + bias) * (options.valueScales ? options.valueScales[i] : 1)),
    };
  } finally {
    tf.dispose([l, c, s, b]);
  }
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
  const names = ['actorLoss', 'valueLoss', 'policyLoss', 'entropy', 'oldApproxKl', 'approxKl', 'clipFraction'] as const;
  let terms: Record<(typeof names)[number], tf.Scalar> | null = null;
  // The version rows (and their transposes) stay alive until the gradients are computed: the
  // networks' weight gradients read them; they are data and get none.
  const { rows, owned } = rowsFor(model, table, options);
  const oldLogProbs = tf.tensor1d(batch.oldLogProbs);
  const advantages = tf.tensor1d(batch.advantages);
  const returns = tf.tensor1d(batch.returns);
  const oldValues = tf.tensor1d(batch.oldValues);
  const scales = options.valueScales ? tf.tensor1d(options.valueScales) : null;
  const actorNames = new Set(model.actorVariables.map((v) => v.name));
  try {
    // One tape over the networks (once per version, in passes) and the per-step part; the
    // networks' activations are kept for their backward pass, not recomputed.
    const { value, grads } = tf.variableGrads(() => {
      const ls: tf.Tensor1D[] = [];
      const cs: tf.Tensor1D[] = [];
      const ss: tf.Tensor1D[] = [];
      for (const { x, xT } of rows.passes) {
        ls.push(model.actorLogits(x, xT));
        const { attentionLogits, projections } = model.criticRowTerms(x, xT);
        cs.push(attentionLogits);
        ss.push(projections);
      }
      const cat = (xs: tf.Tensor1D[]) => (xs.length === 1 ? xs[0] : (tf.concat(xs) as tf.Tensor1D));
      const q = stepQuantities(table, cat(ls), cat(cs), cat(ss));
      const pooled = tf.add(q.pooled, tf.reshape(model.valueBias, [])) as tf.Tensor1D;
      const values = scales ? (tf.mul(pooled, scales) as tf.Tensor1D) : pooled;
      const actor = actorLossTerms(q.logProbs, q.entropies, oldLogProbs, advantages, B, config);
      const value = criticLoss(values, oldValues, returns, B, config);
      terms = {
        actorLoss: tf.keep(actor.loss),
        valueLoss: tf.keep(value),
        policyLoss: tf.keep(actor.policyLoss),
        entropy: tf.keep(actor.entropy),
        oldApproxKl: tf.keep(actor.oldApproxKl),
        approxKl: tf.keep(actor.approxKl),
        clipFraction: tf.keep(actor.clipFraction),
      };
      // actor loss and critic loss share no variable: each network's gradient is its loss's
      return tf.add(actor.loss, value) as tf.Scalar;
    }, [...model.actorVariables, ...model.criticVariables]);
    value.dispose();
    const actorGrads: tf.NamedTensorMap = {};
    const criticGrads: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) (actorNames.has(name) ? actorGrads : criticGrads)[name] = g;
    const t = terms as unknown as Record<(typeof names)[number], tf.Scalar>;
    const read = (n: (typeof names)[number]) => t[n].dataSync()[0];
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
    if (owned) rows.dispose();
    tf.dispose([oldLogProbs, advantages, returns, oldValues, ...(scales ? [scales] : [])]);
    if (terms) tf.dispose(Object.values(terms as Record<string, tf.Scalar>));
  }
}
