/**
 * The zoom policy's networks: an actor that scores every patch from its own state row, and a
 * critic that pools the state with its own attention and projects it to a value.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, StateError, ValueError, assert, fmtShape } from '../core/errors.js';
import { linear, maskedSoftmax, matMul } from '../core/ops.js';
import { createRng } from '../core/random.js';
import { linearInit } from '../core/init.js';
import { gatedScores } from '../core/gated_attention.js';
import { resolveActorCriticConfig, type ActorCriticConfig } from './defaults.js';
import { decodeArtifacts, encodeArtifacts, loadArtifacts, saveArtifacts, type ArtifactFormat, type IOTarget } from '../core/io.js';
import type { ZoomObservation, ZoomStepChanges } from './types.js';

/** Weights of one gated attention `d -> h -> 1`. */
interface GatedAttentionWeights {
  vKernel: tf.Variable; // [d, h]
  vBias: tf.Variable; // [h]
  uKernel: tf.Variable; // [d, h]
  uBias: tf.Variable; // [h]
  wKernel: tf.Variable; // [h, 1]
  wBias: tf.Variable; // [1]
}

/** Format tag of a saved {@link ActorCritic}. */
export const ACTOR_CRITIC_FORMAT = 'sasha-wsi/actor-critic';

const ACTOR_CRITIC_ARTIFACT: ArtifactFormat = {
  format: ACTOR_CRITIC_FORMAT,
  version: 1,
  what: 'zoom policy (actor-critic)',
  writtenBy: 'ActorCritic.save or `sasha train policy`',
};

let instanceCount = 0;

/**
 * Gated attention logit of every row, `l = w . (tanh(x Wv + bv) * sigmoid(x Wu + bu)) + b`
 * ({@link gatedScores} with one output; the rows `x` are data and get no gradient).
 *
 * **Input shape:** `x` [n, d]. **Output shape:** [n].
 */
function gatedAttentionLogits(x: tf.Tensor2D, g: GatedAttentionWeights, xT?: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() =>
    tf.reshape(
      gatedScores(x, { kernelV: g.vKernel, biasV: g.vBias, kernelU: g.uKernel, biasU: g.uBias, kernelW: g.wKernel, biasW: g.wBias }, false, xT),
      [-1],
    ),
  );
}

/** Rows `[a_i (da), b_i (db), c_i (1)]` of n rows, row-major [n * (da + db + 1)]. */
function concatRows(n: number, da: number, a: Float32Array, db: number, b: Float32Array, c: Float32Array): Float32Array {
  const w = da + db + 1;
  const out = new Float32Array(n * w);
  for (let i = 0; i < n; i++) {
    out.set(a.subarray(i * da, i * da + da), i * w);
    out.set(b.subarray(i * db, i * db + db), i * w + da);
    out[i * w + da + db] = c[i];
  }
  return out;
}

/**
 * `x . w` for every row ([n, d] x [d, 1] -> [n]), differentiable with respect to `w` only (the
 * rows are data); the gradient `x^T dy` uses `xT` ([d, n]) when given instead of transposing x.
 */
function rowProjections(x: tf.Tensor2D, w: tf.Variable, xT?: tf.Tensor2D): tf.Tensor1D {
  const op = tf.customGrad(((wk: tf.Tensor) => ({
    value: tf.reshape(tf.matMul(x, wk as tf.Tensor2D), [-1]),
    gradFunc: (dy: tf.Tensor) =>
      tf.tidy(() => {
        const t = xT ?? (tf.transpose(x) as tf.Tensor2D);
        return tf.matMul(t, tf.reshape(dy, [-1, 1]) as tf.Tensor2D);
      }),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (w: tf.Tensor) => tf.Tensor1D;
  return op(w);
}

/** What {@link ActorCritic.criticRowTerms} returns. @category PPO */
export interface CriticRowTerms {
  /** c_i, the critic's attention logit of every row, [n]. */
  attentionLogits: tf.Tensor1D;
  /** s_i = x_i . w_value, the value head applied to every row (without its bias), [n]. */
  projections: tf.Tensor1D;
}

/**
 * Actor and critic of the SASHA zoom policy (no shared parameters).
 *
 * - Actor: a gated attention `d -> h -> 1` applied to every row of the state:
 *   `logit_i = w . (tanh(Wv s_i + bv) * sigmoid(Wu s_i + bu)) + b`. The logit of patch i depends
 *   only on `S_t(i)`, so a policy can cache the logits and re-score only rows that change.
 * - Critic: its own gated attention gives logits `c_i`; then `alpha = softmax_N(c)`, the pooled
 *   state `h = sum_i alpha_i s_i` and `V(S) = h . w_value + b_value`. Because the value head is
 *   linear, `V(S) = sum_i alpha_i (s_i . w_value) + b_value`: pooling the per-row scalars equals
 *   projecting the pooled state, which the event-sourced update relies on.
 *
 * Weights are initialised as PyTorch's `nn.Linear` (uniform in +-1/sqrt(fan-in)) from the
 * config's seed. The object owns its variables: call {@link ActorCritic.dispose}.
 *
 * **Input shape:** states [n, d]. **Output shape:** actor logits [n]; value a scalar.
 * @example
 * ```ts
 * const ac = new ActorCritic({ dim: 384 });
 * const logits = ac.actorLogits(tf.randomNormal([1000, 384])); // [1000]
 * const v = ac.value(tf.randomNormal([1000, 384]));            // scalar
 * ```
 * @see docs/reference-code.md §6.1
 * @category PPO
 */
export class ActorCritic {
  /** The resolved config (d, hidden width, seed). */
  readonly config: Readonly<ActorCriticConfig>;
  /**
   * Width of a row's input: d, or `d + M + 1` when the networks read the classifier's M attention
   * logits and the changed flag besides the state (see {@link ActorCritic.rowInputs}).
   */
  readonly inputDim: number;
  private readonly actor: GatedAttentionWeights;
  /** w_p, the weight of the attention prior in the actor's logits, [1] (with `numScores > 0`). */
  private readonly priorWeight: tf.Variable | null;
  private readonly criticAttention: GatedAttentionWeights;
  private readonly valueKernel: tf.Variable; // [d, 1]
  /** b_value, the bias of the critic's value head, [1]. */
  readonly valueBias: tf.Variable;
  private readonly prefix: string;
  private disposed = false;

  /** @param config sizes; `dim` must match the features the policy will see. */
  constructor(config: Partial<ActorCriticConfig> = {}) {
    this.config = resolveActorCriticConfig(config);
    const { hiddenDim: h, seed, numScores, attentionPrior } = this.config;
    const d = (this.inputDim = this.config.dim + (numScores > 0 ? numScores + 1 : 0));
    this.prefix = `sasha_actor_critic_${instanceCount++}`;
    const rng = createRng(seed);
    const make = (name: string, shape: number[], fanIn: number, zero = false) =>
      tf.tidy(() => {
        const init = linearInit(rng, shape, fanIn); // drawn even when zeroed: the other weights do not depend on it
        return tf.variable(zero ? tf.zerosLike(init) : init, true, `${this.prefix}/${name}`);
      });
    const gated = (scope: string, zeroHead = false): GatedAttentionWeights => ({
      vKernel: make(`${scope}/attention_v/kernel`, [d, h], d),
      vBias: make(`${scope}/attention_v/bias`, [h], d),
      uKernel: make(`${scope}/attention_u/kernel`, [d, h], d),
      uBias: make(`${scope}/attention_u/bias`, [h], d),
      wKernel: make(`${scope}/attention_weights/kernel`, [h, 1], h, zeroHead),
      wBias: make(`${scope}/attention_weights/bias`, [1], h, zeroHead),
    });
    const headStart = numScores > 0 && attentionPrior !== 0;
    this.actor = gated('actor', headStart);
    this.criticAttention = gated('critic');
    this.valueKernel = make('critic/value_fc/kernel', [d, 1], d);
    this.valueBias = make('critic/value_fc/bias', [1], d);
    this.priorWeight = numScores > 0 ? tf.tidy(() => tf.variable(tf.tensor1d([attentionPrior]), true, `${this.prefix}/actor/prior_weight`)) : null;
  }

  /**
   * The rows the networks read for an observation: S_t itself ([N * d], not copied) when the
   * networks read the state alone, else `[S_t(i), scores_i, changed_i]` per row ([N * (d + M + 1)],
   * a new array).
   * @throws ValueError when the policy reads attention scores and the observation has none.
   */
  rowInputs(observation: ZoomObservation): Float32Array {
    const { numPatches: n, state } = observation;
    const M = this.config.numScores;
    if (M === 0) return state;
    const { rowScores, changed } = observation;
    if (!rowScores || !changed || observation.numScores !== M) {
      throw new ValueError(
        `This policy reads the classifier's ${M} attention logits per row, but the observation ${rowScores ? `has ${observation.numScores}` : 'has none'}. ` +
          'Use WsiEnv observations with the classifier the policy was trained with.',
      );
    }
    const flags = new Float32Array(n);
    for (let i = 0; i < n; i++) flags[i] = changed[i];
    return concatRows(n, this.config.dim, state, M, rowScores, flags);
  }

  /**
   * The inputs of the rows a step changed (they all hold a new value, so their changed flag is
   * 1): `changedValues` itself, or `[values, scores, 1]` per row.
   * @throws ValueError when the policy reads attention scores and the changes have none.
   */
  changedInputs(changes: ZoomStepChanges): Float32Array {
    const n = changes.changedRows.length;
    const M = this.config.numScores;
    if (M === 0) return changes.changedValues;
    const scores = changes.changedScores;
    if (!scores || scores.length !== n * M) {
      throw new ValueError(`This policy reads ${M} attention logits per changed row, but the step info has ${scores ? scores.length / Math.max(1, n) : 'none'}.`);
    }
    return concatRows(n, this.config.dim, changes.changedValues, M, scores, new Float32Array(n).fill(1));
  }

  /** The actor's trainable variables. */
  get actorVariables(): tf.Variable[] {
    return this.priorWeight ? [...Object.values(this.actor), this.priorWeight] : Object.values(this.actor);
  }

  /** The critic's trainable variables (attention and value head). */
  get criticVariables(): tf.Variable[] {
    return [...Object.values(this.criticAttention), this.valueKernel, this.valueBias];
  }

  /** Number of trainable scalars of actor and critic: `{ actor, critic }`. */
  get parameterCounts(): { actor: number; critic: number } {
    const count = (vs: tf.Variable[]) => vs.reduce((s, v) => s + v.size, 0);
    return { actor: count(this.actorVariables), critic: count(this.criticVariables) };
  }

  /**
   * The actor's logit of every row.
   *
   * **Input shape:** `x` [n, d]. **Output shape:** [n].
   * @param xT optional `x` transposed, [d, n]: the gradient uses it instead of transposing `x`
   *   (a caller that differentiates the same rows several times makes it once); it stays owned by
   *   the caller and alive until the gradient is computed.
   * @returns a new tensor owned by the caller.
   */
  actorLogits(x: tf.Tensor2D, xT?: tf.Tensor2D): tf.Tensor1D {
    this.checkInput(x, 'actorLogits');
    const own = gatedAttentionLogits(x, this.actor, xT);
    if (!this.priorWeight) return own;
    const { dim: d, numScores: M } = this.config;
    return tf.tidy(() => {
      const prior = tf.mean(tf.slice(x, [0, d], [-1, M]), 1); // [n]: mean of the classifier's attention logits
      return tf.add(own, tf.mul(prior, this.priorWeight as tf.Variable)) as tf.Tensor1D;
    });
  }

  /**
   * The critic's per-row terms: attention logits `c_i` and projections `s_i = x_i . w_value`.
   *
   * **Input shape:** `x` [n, d]. **Output shape:** two tensors [n].
   * @param xT optional `x` transposed, [d, n] (as in {@link ActorCritic.actorLogits}).
   * @returns new tensors owned by the caller.
   */
  criticRowTerms(x: tf.Tensor2D, xT?: tf.Tensor2D): CriticRowTerms {
    this.checkInput(x, 'criticRowTerms');
    return tf.tidy(() => ({
      attentionLogits: gatedAttentionLogits(x, this.criticAttention, xT),
      projections: rowProjections(x, this.valueKernel, xT),
    }));
  }

  /**
   * The critic's value of one state, by its definition: `V(S) = (softmax_N(c)^T S) . w + b`.
   *
   * **Input shape:** `state` [N, d]. **Output:** scalar.
   * @returns a new scalar owned by the caller.
   */
  value(state: tf.Tensor2D): tf.Scalar {
    this.checkInput(state, 'value');
    return tf.tidy(() => {
      const alpha = maskedSoftmax(tf.reshape(gatedAttentionLogits(state, this.criticAttention), [1, -1])) as tf.Tensor2D; // [1, N]
      const pooled = matMul(alpha, state); // [1, d]
      return tf.reshape(linear(pooled, this.valueKernel, this.valueBias), []) as tf.Scalar;
    });
  }

  /**
   * The critic's values of a stack of states, by the definition (pool, then project), as the
   * reference evaluates a rollout: `V_t = (softmax_N(c(S_t))^T S_t) . w + b`.
   *
   * **Input shape:** `states` [T, N, d]. **Output shape:** [T].
   * @returns a new tensor owned by the caller.
   */
  values(states: tf.Tensor3D): tf.Tensor1D {
    this.checkAlive();
    const [T, N, d] = states.shape;
    if (states.rank !== 3 || d !== this.inputDim) {
      throw new ShapeError(`Error in ActorCritic.values: expected states [T, N, ${this.inputDim}], but got ${fmtShape(states.shape)}.`);
    }
    return tf.tidy(() => {
      const c = tf.reshape(gatedAttentionLogits(tf.reshape(states, [T * N, d]) as tf.Tensor2D, this.criticAttention), [T, 1, N]);
      const pooled = tf.reshape(tf.matMul(tf.softmax(c) as tf.Tensor3D, states), [T, d]) as tf.Tensor2D; // [T, d]
      return tf.reshape(linear(pooled, this.valueKernel, this.valueBias), [T]) as tf.Tensor1D;
    });
  }

  /**
   * The weights under stable names (`actor/attention_v/kernel`, ..., `critic/value_fc/bias`).
   * The tensors are the live variables: do not dispose them.
   */
  getWeights(): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const v of [...this.actorVariables, ...this.criticVariables]) out[this.shortName(v.name)] = v;
    return out;
  }

  /**
   * Copies weights by stable name into the variables (every weight is required).
   * @throws ShapeError when a shape differs (for instance a policy trained for another d).
   */
  setWeights(weights: tf.NamedTensorMap): void {
    const mine = this.getWeights();
    for (const name of Object.keys(mine)) {
      const w = weights[name];
      if (!w) throw new ValueError(`Expected a weight named '${name}' for the actor-critic, but it is missing.`);
      const target = mine[name] as tf.Variable;
      if (!tf.util.arraysEqual(w.shape, target.shape)) {
        throw new ShapeError(
          `Expected weight '${name}' of shape ${fmtShape(target.shape)}, but got ${fmtShape(w.shape)}. The policy was saved for other sizes (d or hidden width).`,
        );
      }
    }
    for (const name of Object.keys(mine)) (mine[name] as tf.Variable).assign(weights[name]);
  }

  /** The full variable name of a stable weight name. @internal */
  fullName(shortName: string): string {
    return `${this.prefix}/${shortName}`;
  }

  /** The stable weight name of a variable of this object. @internal */
  shortName(fullName: string): string {
    return fullName.startsWith(this.prefix + '/') ? fullName.slice(this.prefix.length + 1) : fullName;
  }

  /** Config and weights as one `tf.io` artifact (`modelTopology.format` is {@link ACTOR_CRITIC_FORMAT}). */
  async toArtifacts(): Promise<tf.io.ModelArtifacts> {
    this.checkAlive();
    return encodeArtifacts(ACTOR_CRITIC_ARTIFACT, { config: { ...this.config } }, this.getWeights());
  }

  /**
   * Rebuilds an actor-critic from {@link ActorCritic.toArtifacts}.
   * @param options.dim the feature width of the data it will see; a different saved d is an error.
   * @throws ShapeError when the saved d differs from `options.dim`; DataError on other artifacts.
   */
  static fromArtifacts(artifacts: tf.io.ModelArtifacts, options: { dim?: number } = {}): ActorCritic {
    const { description, tensors } = decodeArtifacts(artifacts, ACTOR_CRITIC_ARTIFACT);
    try {
      const config = description.config as ActorCriticConfig;
      checkDim(config.dim, options.dim);
      const ac = new ActorCritic(config);
      try {
        ac.setWeights(tensors);
      } catch (e) {
        ac.dispose();
        throw e;
      }
      return ac;
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /**
   * Saves config and weights through a `tf.io` handler (or registered URL) in one `save` call.
   * @example
   * ```ts
   * await ac.save('file://runs/policy'); // Node, after importing 'sasha-wsi/node'
   * ```
   */
  async save(target: IOTarget): Promise<tf.io.SaveResult> {
    return saveArtifacts(target, await this.toArtifacts());
  }

  /**
   * Rebuilds an actor-critic from what {@link ActorCritic.save} wrote.
   * @param options.dim the feature width of the data it will see; a different saved d is an error.
   * @throws ShapeError when the saved d differs from `options.dim`.
   */
  static async load(target: IOTarget, options: { dim?: number } = {}): Promise<ActorCritic> {
    return ActorCritic.fromArtifacts(await loadArtifacts(target), options);
  }

  /** Frees the variables. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([...this.actorVariables, ...this.criticVariables]);
  }

  /** Whether {@link ActorCritic.dispose} was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  private checkAlive(): void {
    assert(!this.disposed, () => 'This ActorCritic was disposed; load or create a new one.', StateError);
  }

  private checkInput(x: tf.Tensor, what: string): void {
    this.checkAlive();
    if (x.rank !== 2 || x.shape[1] !== this.inputDim) {
      throw new ShapeError(
        `Error in ActorCritic.${what}: expected rows [n, ${this.inputDim}], but got ${fmtShape(x.shape)}. The policy was built for d = ${this.config.dim}` +
          (this.inputDim !== this.config.dim ? ` and ${this.config.numScores} attention logits per row (rows of width d + M + 1; see rowInputs).` : '.'),
      );
    }
  }
}

/**
 * Throws when a policy's d differs from the data's.
 * @internal
 */
export function checkDim(policyDim: number, dataDim: number | undefined): void {
  if (dataDim !== undefined && policyDim !== dataDim) {
    throw new ShapeError(
      `Expected a policy for feature width d = ${dataDim}, but the policy was built for d = ${policyDim}. Train a policy on these features or use features of width ${policyDim}.`,
    );
  }
}
