/**
 * The WSI environment computed the way the reference code does: the state is a tensor, and
 * every step re-computes the cosine, and the classifier's attention over all N rows. It is the
 * reference that tests and benchmarks hold {@link WsiEnv} to; use {@link WsiEnv} otherwise.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, StateError, ValueError } from '../core/errors.js';
import { cosineToRow, crossEntropy, gatherRows, matMul } from '../core/ops.js';
import { createRng, type Rng } from '../core/random.js';
import { checkRowVector } from '../tsu/targeted_state_update.js';
import type { Env, ResetOptions, ResetResult, StepResult } from './env.js';
import { Discrete } from './spaces.js';
import type { StateClassifier, WsiEnvConfig, WsiEnvOptions, WsiInfo, WsiObservation } from './types.js';
import { WsiObservationSpace, resolveWsiInputs } from './wsi_env.js';

/**
 * Slide logits of the classifier on a full state, the dense way:
 * `stage2HeadLogits( mean_m softmax_N(stage2RowLogits(S)[:, m]) · S )`.
 *
 * **Input shape:** `state` [N, d]. **Output shape:** [1, C].
 * @returns a new tensor owned by the caller.
 * @category MDP
 */
export function denseSlideLogits(classifier: StateClassifier, state: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const rowLogits = classifier.stage2RowLogits(state); // [N, M]
    const attention = tf.softmax(tf.transpose(rowLogits)); // [M, N], softmax over N
    const abar = tf.mean(attention, 0, true) as tf.Tensor2D; // [1, N]
    const pooled = matMul(abar, state); // [1, d]
    return classifier.stage2HeadLogits(pooled); // [1, C]
  });
}

/**
 * The WSI environment with everything re-computed at every step over all N rows (the
 * reference code's cost: O(N d h) per step). Same contract and results as {@link WsiEnv}.
 * Holds one tensor (S_t); free it with `close()`.
 * @category MDP
 */
export class NaiveWsiEnv implements Env<WsiObservation, number, WsiInfo> {
  readonly actionSpace: Discrete;
  readonly observationSpace: WsiObservationSpace;
  readonly config: Readonly<WsiEnvConfig>;
  readonly numPatches: number;
  readonly dim: number;
  readonly budget: number;
  readonly label: number | undefined;
  rng: Rng = createRng(0);

  private readonly classifier: StateClassifier;
  private readonly fS: WsiEnvOptions['fS'];
  private readonly zoom: WsiEnvOptions['zoom'];
  private readonly z: Float32Array;
  private readonly v: Float32Array | null;
  private values: Float32Array;
  private s: tf.Tensor2D | null = null;
  private readonly visited: Uint8Array;
  private readonly rewritten: Uint8Array;
  private t = 0;
  private active = false;
  private closed = false;

  constructor(opts: WsiEnvOptions) {
    const r = resolveWsiInputs(opts);
    this.config = r.config;
    this.numPatches = r.n;
    this.dim = r.d;
    this.budget = r.budget;
    this.label = r.label;
    this.classifier = opts.classifier;
    this.fS = opts.fS;
    this.zoom = opts.zoom;
    this.z = new Float32Array(opts.lowRes.dataSync());
    for (let i = 0; i < this.z.length; i++) if (!Number.isFinite(this.z[i])) throw new DataError(`Expected Z to be finite, but element ${i} is ${this.z[i]}.`);
    this.v = opts.aggregated ? new Float32Array(opts.aggregated.dataSync()) : null;
    this.values = this.z.slice();
    this.visited = new Uint8Array(r.n);
    this.rewritten = new Uint8Array(r.n);
    this.actionSpace = new Discrete(r.n);
    this.observationSpace = new WsiObservationSpace(r.n, r.d, r.budget);
  }

  reset(opts: ResetOptions = {}): ResetResult<WsiObservation, WsiInfo> {
    if (this.closed) throw new StateError('This NaiveWsiEnv was closed.');
    if (opts.seed !== undefined) {
      this.rng = createRng(opts.seed);
      this.actionSpace.seed(opts.seed);
      this.observationSpace.seed(opts.seed);
    }
    this.s?.dispose();
    this.values = this.z.slice();
    this.s = tf.tensor2d(this.values.slice(), [this.numPatches, this.dim]);
    this.visited.fill(0);
    this.rewritten.fill(0);
    this.t = 0;
    this.active = true;
    const head = this.head();
    const observation = this.observation();
    return {
      observation,
      info: {
        t: 0,
        action: -1,
        actionMask: observation.actionMask,
        changedRows: new Int32Array(0),
        changedValues: new Float32Array(0),
        changedScores: new Float32Array(0),
        similarSet: new Int32Array(0),
        ...head,
      },
    };
  }

  step(action: number, v?: ArrayLike<number>): StepResult<WsiObservation, WsiInfo> {
    if (this.closed) throw new StateError('This NaiveWsiEnv was closed.');
    if (!this.active || !this.s) throw new StateError(this.t === 0 ? 'Call reset() before step().' : 'The episode terminated; call reset().');
    const n = this.numPatches;
    const d = this.dim;
    if (!(Number.isInteger(action) && action >= 0 && action < n)) {
      throw new ValueError(`Expected the action to be an integer in [0, ${n}), but got ${action}.`);
    }
    if (this.visited[action]) throw new ValueError(`Expected an action not chosen before, but patch ${action} was already visited.`);
    const { update, tau, rewriteOnce } = this.config;

    // The rewritten set C, from the cosine of every row with S(a).
    const cosT = tf.tidy(() => cosineToRow(this.s!, gatherRows(this.s!, [action]) as tf.Tensor2D));
    const cos = cosT.dataSync();
    cosT.dispose();
    const set: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i === action || this.visited[i]) continue;
      if (update === 'global') set.push(i);
      else if (update === 'tsu' && !(rewriteOnce && this.rewritten[i]) && Math.abs(cos[i]) >= tau) set.push(i);
    }
    const vaArr = checkRowVector(this.resolveV(action, v), d, `V(${action})`);
    const rows = [action, ...set];
    const updates = tf.tidy(() => {
      const s = this.s!;
      const va = tf.tensor2d(vaArr, [1, d]);
      if (set.length === 0) return va;
      const sa = gatherRows(s, [action]) as tf.Tensor2D;
      const k = set.length;
      const x = tf.concat([tf.tile(va, [k, 1]), tf.tile(sa, [k, 1]), gatherRows(s, set)], 1) as tf.Tensor2D;
      return tf.concat([va, this.fS!.apply(x)], 0) as tf.Tensor2D;
    });
    const changedValues = new Float32Array(updates.dataSync());
    updates.dispose();
    // Row writes in place, as the reference does (S[C] = f_S(...); S[visited] = V[visited]).
    for (let r = 0; r < rows.length; r++) this.values.set(changedValues.subarray(r * d, r * d + d), rows[r] * d);
    this.s.dispose();
    this.s = tf.tensor2d(this.values.slice(), [n, d]);
    this.visited[action] = 1;
    for (const i of set) this.rewritten[i] = 1;
    this.t++;
    const terminated = this.t >= this.budget;
    if (terminated) this.active = false;
    const head = this.head();
    const observation = this.observation();
    return {
      observation,
      reward: this.label === undefined ? 0 : -head.crossEntropy,
      terminated,
      truncated: false,
      info: {
        t: this.t,
        action,
        actionMask: observation.actionMask,
        changedRows: Int32Array.from(rows),
        changedValues,
        changedScores: tf.tidy(() => this.classifier.stage2RowLogits(tf.tensor2d(changedValues, [rows.length, d])).dataSync() as Float32Array),
        similarSet: Int32Array.from(set),
        ...head,
      },
    };
  }

  dispose(): void {
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.active = false;
    this.s?.dispose();
    this.s = null;
  }

  private resolveV(action: number, v: ArrayLike<number> | undefined): ArrayLike<number> {
    if (v !== undefined) return v;
    if (this.v) return this.v.slice(action * this.dim, action * this.dim + this.dim);
    if (this.zoom) return this.zoom(action);
    throw new ValueError(`No V(${action}) is available: pass it as step(action, v), or give aggregated V or a zoom callback.`);
  }

  private head(): { slideLogits: Float32Array; probs: Float32Array; crossEntropy: number } {
    const logits = denseSlideLogits(this.classifier, this.s!);
    const probs = tf.softmax(logits);
    const ce = this.label === undefined ? null : crossEntropy(logits, [this.label]);
    const out = {
      slideLogits: new Float32Array(logits.dataSync()),
      probs: new Float32Array(probs.dataSync()),
      crossEntropy: ce ? ce.dataSync()[0] : NaN,
    };
    tf.dispose([logits, probs]);
    ce?.dispose();
    return out;
  }

  private observation(): WsiObservation {
    const actionMask = new Uint8Array(this.numPatches);
    for (let i = 0; i < this.numPatches; i++) actionMask[i] = this.visited[i] ? 0 : 1;
    return {
      numPatches: this.numPatches,
      dim: this.dim,
      t: this.t,
      budget: this.budget,
      actionMask,
      state: this.values.slice(),
    };
  }
}
