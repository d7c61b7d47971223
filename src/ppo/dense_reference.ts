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

function denseEpisodes(table: VersionTable): DenseEpisode[] {
  return table.episodes.map((ep, e) => {
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
  });
}

function disposeEpisodes(eps: DenseEpisode[]): void {
  for (const e of eps) tf.dispose([e.states, e.mask, e.actionIndex]);
}

/** Per-step masked log-probabilities of the actions and entropies, concatenated over episodes. */
function actorQuantities(model: ActorCritic, eps: DenseEpisode[]): { logProbs: tf.Tensor1D; entropies: tf.Tensor1D } {
  return tf.tidy(() => {
    const lps: tf.Tensor1D[] = [];
    const ents: tf.Tensor1D[] = [];
    for (const e of eps) {
      const [T, N, d] = e.states.shape;
      const logits = tf.reshape(model.actorLogits(tf.reshape(e.states, [T * N, d]) as tf.Tensor2D), [T, N]); // [T, N]
      const logp = maskedLogSoftmax(logits, e.mask); // [T, N]
      ents.push(entropyFromLogProbs(logp) as tf.Tensor1D);
      lps.push(gatherRows(tf.reshape(logp, [-1]) as tf.Tensor1D, e.actionIndex));
    }
    return { logProbs: tf.concat(lps) as tf.Tensor1D, entropies: tf.concat(ents) as tf.Tensor1D };
  });
}

function criticValues(model: ActorCritic, eps: DenseEpisode[]): tf.Tensor1D {
  return tf.tidy(() => tf.concat(eps.map((e) => model.values(e.states))) as tf.Tensor1D);
}

/**
 * Evaluates the policy on every step of a table without gradients, densely (every S_t stacked).
 * Same outputs as {@link evaluateEventSourced}.
 * @category PPO
 */
export function evaluateDense(model: ActorCritic, table: VersionTable): PolicyEvaluation {
  const eps = denseEpisodes(table);
  try {
    const { logProbs, entropies } = actorQuantities(model, eps);
    const values = criticValues(model, eps);
    const out = { logProbs: logProbs.dataSync().slice(), entropies: entropies.dataSync().slice(), values: values.dataSync().slice() };
    tf.dispose([logProbs, entropies, values]);
    return out as PolicyEvaluation;
  } finally {
    disposeEpisodes(eps);
  }
}

/**
 * The PPO losses of one epoch on a batch and their gradients, computed densely as the
 * reference does: stack S_t [B, N, d], run the actor on every (step, row), pool every state
 * with the critic, one backward pass per network. Parameters are not changed.
 *
 * @returns loss values and gradients (the gradient tensors belong to the caller).
 * @category PPO
 */
export function densePpoLoss(
  model: ActorCritic,
  batch: RolloutBatch,
  config: Pick<PpoConfig, 'clipCoef' | 'entCoef' | 'clipValueLoss'>,
): PpoLossResult {
  const B = batch.table.numSamples;
  const eps = denseEpisodes(batch.table);
  const oldLogProbs = tf.tensor1d(batch.oldLogProbs);
  const advantages = tf.tensor1d(batch.advantages);
  const returns = tf.tensor1d(batch.returns);
  const oldValues = tf.tensor1d(batch.oldValues);
  const kept: tf.Scalar[] = [];
  try {
    let stats: ReturnType<typeof actorLossTerms> | null = null;
    const actor = tf.variableGrads(() => {
      const q = actorQuantities(model, eps);
      const terms = actorLossTerms(q.logProbs, q.entropies, oldLogProbs, advantages, B, config);
      stats = terms;
      kept.push(...[terms.policyLoss, terms.entropy, terms.oldApproxKl, terms.approxKl, terms.clipFraction].map((t) => tf.keep(t)));
      return terms.loss;
    }, model.actorVariables);
    const critic = tf.variableGrads(() => criticLoss(criticValues(model, eps), oldValues, returns, B, config), model.criticVariables);
    const s = stats as unknown as ReturnType<typeof actorLossTerms>;
    const read = (t: tf.Scalar) => t.dataSync()[0];
    const result: PpoLossResult = {
      actorLoss: read(actor.value),
      valueLoss: read(critic.value),
      policyLoss: read(s.policyLoss),
      entropy: read(s.entropy),
      oldApproxKl: read(s.oldApproxKl),
      approxKl: read(s.approxKl),
      clipFraction: read(s.clipFraction),
      actorGrads: actor.grads,
      criticGrads: critic.grads,
    };
    tf.dispose([actor.value, critic.value]);
    return result;
  } finally {
    tf.dispose(kept);
    tf.dispose([oldLogProbs, advantages, returns, oldValues]);
    disposeEpisodes(eps);
  }
}
