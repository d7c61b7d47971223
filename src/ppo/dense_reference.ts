/**
 * The dense PPO computation, as the reference code runs it: every state S_t of the rollout is
 * materialised ([B, N, d]) and both networks run on all of them. Memory O(B N d): it is here to
 * check the event-sourced update (tests) and to measure what that update saves (bench), not
 * for training.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { gatherRows } from '../core/ops.js';
import type { ActorCritic } from './actor_critic.js';
import type { PpoConfig } from './defaults.js';
import type { PolicyEvaluation } from './event_sourced.js';
import { actorLossTerms, criticLoss, entropyFromLogProbs, maskedLogSoftmax, type PpoLossResult } from './ppo_loss.js';
import type { RolloutBatch, VersionTable } from './rollout_buffer.js';

/** Dense tensors of one episode. */
interface DenseEpisode {
  states: tf.Tensor3D; // [T, N, d]
  mask: tf.Tensor2D; // bool [T, N]
  actionIndex: tf.Tensor1D; // int32 [T], t * N + a_t
}

function denseEpisode(table: VersionTable, e: number): DenseEpisode {
  const ep = table.episodes[e];
  const T = ep.length;
  const N = ep.numPatches;
  return {
    states: tf.tensor3d(table.denseStates(e), [T, N, table.dim]),
    mask: tf.tensor2d(table.denseMasks(e), [T, N], 'bool'),
    actionIndex: tf.tensor1d(
      ep.actions.map((a, t) => t * N + a),
      'int32',
    ),
  };
}

function disposeEpisode(e: DenseEpisode): void {
  tf.dispose([e.states, e.mask, e.actionIndex]);
}

/** The critic's values of an episode's states, times `rho_t` when given. [T]; owned by the caller. */
function scaledValues(model: ActorCritic, e: DenseEpisode, valueScales: Float32Array | null | undefined, offset: number): tf.Tensor1D {
  const T = e.states.shape[0];
  if (!valueScales) return model.values(e.states);
  return tf.tidy(() => tf.mul(model.values(e.states), tf.tensor1d(valueScales.slice(offset, offset + T))) as tf.Tensor1D);
}

/** Per-step masked log-probabilities of the actions and entropies of one episode, [T] each. */
function actorQuantities(model: ActorCritic, e: DenseEpisode): { logProbs: tf.Tensor1D; entropies: tf.Tensor1D } {
  return tf.tidy(() => {
    const [T, N, d] = e.states.shape;
    const logits = tf.reshape(model.actorLogits(tf.reshape(e.states, [T * N, d]) as tf.Tensor2D), [T, N]); // [T, N]
    const logp = maskedLogSoftmax(logits, e.mask); // [T, N]
    return {
      logProbs: gatherRows(tf.reshape(logp, [-1]) as tf.Tensor1D, e.actionIndex),
      entropies: entropyFromLogProbs(logp) as tf.Tensor1D,
    };
  });
}

/**
 * Evaluates the policy on every step of a table without gradients, densely (every S_t of an
 * episode stacked). Same outputs as {@link evaluateEventSourced}.
 * @category PPO
 */
export function evaluateDense(model: ActorCritic, table: VersionTable, valueScales?: Float32Array | null): PolicyEvaluation {
  const B = table.numSamples;
  const out: PolicyEvaluation = { logProbs: new Float32Array(B), entropies: new Float32Array(B), values: new Float32Array(B) };
  for (let e = 0; e < table.episodes.length; e++) {
    const ep = denseEpisode(table, e);
    const off = table.sampleOffsets[e];
    tf.tidy(() => {
      const { logProbs, entropies } = actorQuantities(model, ep);
      out.logProbs.set(logProbs.dataSync(), off);
      out.entropies.set(entropies.dataSync(), off);
      out.values.set(scaledValues(model, ep, valueScales, off).dataSync(), off);
    });
    disposeEpisode(ep);
  }
  return out;
}

/**
 * The PPO losses of one epoch on a batch and their gradients, computed densely as the
 * reference does: every state S_t of an episode stacked ([T, N, d]), the actor run on every
 * (step, row), the critic pooling every state, one backward pass per network. Episodes are
 * processed one after the other and their gradients summed (the loss is a sum over samples),
 * which halves the peak memory of stacking both episodes at once. Parameters are not changed.
 *
 * @returns loss values and gradients (the gradient tensors belong to the caller).
 * @category PPO
 */
export function densePpoLoss(
  model: ActorCritic,
  batch: RolloutBatch,
  config: Pick<PpoConfig, 'clipCoef' | 'entCoef' | 'clipValueLoss'>,
  valueScales?: Float32Array | null,
): PpoLossResult {
  const { table } = batch;
  const B = table.numSamples;
  const sums = { actorLoss: 0, valueLoss: 0, policyLoss: 0, entropy: 0, oldApproxKl: 0, approxKl: 0, clipFraction: 0 };
  let actorGrads: tf.NamedTensorMap = {};
  let criticGrads: tf.NamedTensorMap = {};
  const accumulate = (acc: tf.NamedTensorMap, grads: tf.NamedTensorMap): tf.NamedTensorMap => {
    const out: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(grads)) out[k] = acc[k] ? tf.add(acc[k], g) : tf.clone(g);
    tf.dispose([...Object.values(acc), ...Object.values(grads)]);
    return out;
  };
  for (let e = 0; e < table.episodes.length; e++) {
    const T = table.episodes[e].length;
    const off = table.sampleOffsets[e];
    const slice = (a: Float32Array) => tf.tensor1d(a.slice(off, off + T));
    const oldLogProbs = slice(batch.oldLogProbs);
    const advantages = slice(batch.advantages);
    const returns = slice(batch.returns);
    const oldValues = slice(batch.oldValues);
    const ep = denseEpisode(table, e);
    try {
      // Actor: one backward pass over every (step, row) of the episode
      const kept: tf.Scalar[] = [];
      const actor = tf.variableGrads(() => {
        const q = actorQuantities(model, ep);
        const terms = actorLossTerms(q.logProbs, q.entropies, oldLogProbs, advantages, B, config);
        kept.push(...[terms.policyLoss, terms.entropy, terms.oldApproxKl, terms.approxKl, terms.clipFraction].map((t) => tf.keep(t)));
        return terms.loss;
      }, model.actorVariables);
      const [policyLoss, entropy, oldApproxKl, approxKl, clipFraction] = kept.map((t) => t.dataSync()[0]);
      Object.assign(sums, {
        actorLoss: sums.actorLoss + actor.value.dataSync()[0],
        policyLoss: sums.policyLoss + policyLoss,
        entropy: sums.entropy + entropy,
        oldApproxKl: sums.oldApproxKl + oldApproxKl,
        approxKl: sums.approxKl + approxKl,
        clipFraction: sums.clipFraction + clipFraction,
      });
      tf.dispose([actor.value, ...kept]);
      actorGrads = accumulate(actorGrads, actor.grads);
      // Critic: pool every state, project, one backward pass
      const critic = tf.variableGrads(() => criticLoss(scaledValues(model, ep, valueScales, off), oldValues, returns, B, config), model.criticVariables);
      sums.valueLoss += critic.value.dataSync()[0];
      critic.value.dispose();
      criticGrads = accumulate(criticGrads, critic.grads);
    } finally {
      disposeEpisode(ep);
      tf.dispose([oldLogProbs, advantages, returns, oldValues]);
    }
  }
  return { ...sums, actorGrads, criticGrads };
}
