/**
 * The SASHA MDP on one slide, with incremental scoring.
 *
 * State S_0 = Z. At step t the agent picks an unvisited patch a; the targeted state update
 * rewrites the rows similar to S_t(a) with f_S and sets S_t+1(a) = V(a); the reward is
 * `-CE(y, HAFED stage 2 (S_t+1))`. The episode terminates after T = ceil(f N) steps. One env
 * serves training, validation and inference (cached V, or V(a) given per step or produced by
 * a zoom callback).
 *
 * Every step re-scores only the rows that changed (a and C): the classifier's per-row
 * attention logits are cached, and the pooled slide embedding is updated in O(|C| M d), so a
 * step costs O(N d) for the cosine plus O((|C| + 1) d h) in the networks.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ShapeError, StateError, ValueError, fmtShape } from '../core/errors.js';
import { createRng, type Rng } from '../core/random.js';
import { applyStateUpdate, checkRowVector, computeStateUpdate, createTsuState, firstNonFinite } from '../tsu/targeted_state_update.js';
import { CosineIndex } from '../tsu/cosine_index.js';
import type { TsuState } from '../tsu/types.js';
import { budgetSteps, resolveWsiEnvConfig } from './defaults.js';
import type { Env, ResetOptions, ResetResult, StepResult } from './env.js';
import { IncrementalAttentionPool, RowScoreCache, type PoolSnapshot } from './incremental.js';
import { Discrete, type Space } from './spaces.js';
import type { StateClassifier, WsiEnvConfig, WsiEnvOptions, WsiInfo, WsiObservation } from './types.js';

/**
 * The observations of a slide with N patches of width d and T steps.
 * @category MDP
 */
export class WsiObservationSpace implements Space<WsiObservation> {
  private rng: Rng = createRng(0);

  constructor(
    /** N. */ readonly numPatches: number,
    /** d. */ readonly dim: number,
    /** T. */ readonly budget: number,
  ) {}

  contains(x: unknown): x is WsiObservation {
    if (x === null || typeof x !== 'object') return false;
    const o = x as Partial<WsiObservation>;
    const { numPatches: n, dim: d } = this;
    if (o.numPatches !== n || o.dim !== d || o.budget !== this.budget) return false;
    if (!(typeof o.t === 'number' && Number.isInteger(o.t) && o.t >= 0 && o.t <= this.budget)) return false;
    if (!(o.actionMask instanceof Uint8Array) || o.actionMask.length !== n) return false;
    if (!(o.state instanceof Float32Array) || o.state.length !== n * d) return false;
    let blocked = 0;
    for (let i = 0; i < n; i++) {
      if (o.actionMask[i] > 1) return false;
      if (o.actionMask[i] === 0) blocked++;
    }
    if (blocked !== o.t) return false;
    for (let i = 0; i < o.state.length; i++) if (!Number.isFinite(o.state[i])) return false;
    return true;
  }

  /** A random observation: t uniform in [0, T], t random patches masked, a standard normal state. */
  sample(): WsiObservation {
    const { numPatches: n, dim: d, budget } = this;
    const t = this.rng.int(budget + 1);
    const actionMask = new Uint8Array(n).fill(1);
    for (const i of this.rng.sample(n, t)) actionMask[i] = 0;
    const state = new Float32Array(n * d);
    for (let i = 0; i < state.length; i++) state[i] = this.rng.normal();
    return { numPatches: n, dim: d, t, budget, actionMask, state };
  }

  seed(seed: number): void {
    this.rng = createRng(seed);
  }
}

/** The checked inputs both WSI envs are built from. */
export interface ResolvedWsiInputs {
  config: Readonly<WsiEnvConfig>;
  n: number;
  d: number;
  numClasses: number;
  numBranches: number;
  budget: number;
  label: number | undefined;
}

/** Checks the options of a WSI env and resolves its config (shared by {@link WsiEnv} and the naive env). */
export function resolveWsiInputs(opts: WsiEnvOptions): ResolvedWsiInputs {
  if (opts === null || typeof opts !== 'object') throw new ValueError('Expected WsiEnv options { classifier, fS, lowRes, ... }.');
  const { classifier, fS, lowRes, aggregated, label, zoom } = opts;
  checkClassifier(classifier);
  const explicitUpdate = opts.config?.update !== undefined;
  const config = resolveWsiEnvConfig({ ...opts.config, update: explicitUpdate ? opts.config!.update : fS == null ? 'none' : 'tsu' });
  if (fS == null && config.update !== 'none') {
    throw new ValueError(`The '${config.update}' update needs f_S, but fS is null. Pass a trained StateMlp, or set update: 'none'.`);
  }
  if (!(lowRes instanceof tf.Tensor) || lowRes.rank !== 2 || lowRes.shape[0] === 0) {
    throw new ShapeError(`Expected lowRes (Z) to be a tensor [N, d] with N > 0, but got ${lowRes instanceof tf.Tensor ? fmtShape(lowRes.shape) : String(lowRes)}.`);
  }
  const [n, d] = lowRes.shape;
  if (d !== classifier.dim) {
    throw new ShapeError(
      `Expected lowRes (Z) of width d = ${classifier.dim} (the classifier's), but got ${fmtShape(lowRes.shape)}. ` +
        'Use features from the encoder the model was trained with.',
    );
  }
  if (fS != null && fS.dim !== d) {
    throw new ShapeError(`Expected f_S of width d = ${d}, but it has dim ${fS.dim}. Use the TSU trained with this HAFED.`);
  }
  if (aggregated !== undefined) {
    if (!(aggregated instanceof tf.Tensor) || !tf.util.arraysEqual(aggregated.shape, lowRes.shape)) {
      throw new ShapeError(
        `Expected aggregated (V) to have the shape of lowRes ${fmtShape(lowRes.shape)}, but got ${aggregated instanceof tf.Tensor ? fmtShape(aggregated.shape) : String(aggregated)}.`,
      );
    }
  }
  if (zoom !== undefined && typeof zoom !== 'function') throw new ValueError('Expected zoom to be a function (action) => V(a).');
  if (label !== undefined && !(Number.isInteger(label) && label >= 0 && label < classifier.numClasses)) {
    throw new ValueError(`Expected label to be an integer in [0, ${classifier.numClasses}), but got ${label}. Check the slide's label.`);
  }
  return {
    config,
    n,
    d,
    numClasses: classifier.numClasses,
    numBranches: classifier.numBranches,
    budget: budgetSteps(config.budget, n),
    label,
  };
}

function checkClassifier(c: StateClassifier): void {
  const ok =
    c != null &&
    typeof c.stage2RowLogits === 'function' &&
    typeof c.stage2HeadLogits === 'function' &&
    Number.isInteger(c.dim) &&
    Number.isInteger(c.numClasses) &&
    Number.isInteger(c.numBranches) &&
    c.dim > 0 &&
    c.numClasses > 0 &&
    c.numBranches > 0;
  if (!ok) {
    throw new ValueError(
      'Expected classifier to have dim, numClasses, numBranches, stage2RowLogits(x) and stage2HeadLogits(pooled) (a Hafed has them).',
    );
  }
}

/** Softmax and cross-entropy of slide logits, in float64. */
export function headOutputs(logits: Float32Array, label: number | undefined): { probs: Float32Array; crossEntropy: number } {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let z = 0;
  for (const l of logits) z += Math.exp(l - max);
  const logZ = max + Math.log(z);
  const probs = new Float32Array(logits.length);
  for (let c = 0; c < logits.length; c++) probs[c] = Math.exp(logits[c] - logZ);
  const crossEntropy = label === undefined ? NaN : logZ - logits[label];
  return { probs, crossEntropy };
}

/** Runs the classifier head on a pooled embedding [d] and returns the slide logits [C]. */
export function slideLogitsOf(classifier: StateClassifier, pooled: Float32Array): Float32Array {
  const y = tf.tidy(() => classifier.stage2HeadLogits(tf.tensor2d(pooled, [1, pooled.length])));
  try {
    if (y.rank !== 2 || y.shape[0] !== 1 || y.shape[1] !== classifier.numClasses) {
      throw new ShapeError(`Expected stage2HeadLogits to return [1, ${classifier.numClasses}], but got ${fmtShape(y.shape)}.`);
    }
    return new Float32Array(y.dataSync());
  } finally {
    y.dispose();
  }
}

/**
 * `pooled kernel + bias` for a kernel [d * C] (a plain function of arrays, so that its optimised
 * code serves every env).
 */
function linearHead(pooled: Float32Array, kernel: Float32Array, bias: Float32Array): Float32Array {
  const C = bias.length;
  const out = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = bias[c];
    for (let j = 0; j < pooled.length; j++) s += pooled[j] * kernel[j * C + c];
    out[c] = s;
  }
  return out;
}

const EMPTY_ROWS = new Int32Array(0);
const EMPTY_VALUES = new Float32Array(0);

/**
 * The WSI environment (SASHA's MDP) on one slide, with incremental scoring.
 *
 * **Observation:** {@link WsiObservation} (S_t as a read-only view [N * d], the action mask,
 * t and T). **Action:** a patch index in [0, N), not visited yet. **Reward:**
 * `-CE(y, stage2HeadLogits(sum_i abar_i S_t+1(i)))` at every step (0 without a label).
 * **Termination:** after T = ceil(f N) steps.
 *
 * The env holds no tensor: its state, caches and V live in typed arrays; tfjs runs only the
 * classifier and f_S on the changed rows, inside `tf.tidy`.
 *
 * @example
 * ```ts
 * const env = new WsiEnv({ classifier: hafed, fS, lowRes: z, aggregated: v, label: 1, config: { budget: 0.2 } });
 * let { observation, info } = env.reset({ seed: 0 });
 * let ret = 0;
 * for (let done = false; !done; ) {
 *   const r = env.step(env.actionSpace.sample(observation.actionMask));
 *   ret += r.reward;
 *   observation = r.observation;
 *   done = r.terminated;
 * }
 * // inference: no cached V, V(a) given per step after zooming into patch a
 * const r = env2.step(a, await zoomAndAggregate(a));
 * ```
 * @see docs/reference-code.md §5
 * @category MDP
 */
export class WsiEnv implements Env<WsiObservation, number, WsiInfo> {
  readonly actionSpace: Discrete;
  readonly observationSpace: WsiObservationSpace;
  /** The resolved config. */
  readonly config: Readonly<WsiEnvConfig>;
  /** N. */
  readonly numPatches: number;
  /** d. */
  readonly dim: number;
  /** T = ceil(f N). */
  readonly budget: number;
  /** The slide's label, if known. */
  readonly label: number | undefined;
  /** The env's generator, seeded by `reset({ seed })`. */
  rng: Rng = createRng(0);

  private readonly classifier: StateClassifier;
  private readonly fS: WsiEnvOptions['fS'];
  private readonly zoom: WsiEnvOptions['zoom'];
  private readonly z: Float32Array;
  private readonly norms0: Float64Array;
  private readonly v: Float32Array | null;
  private readonly state: TsuState;
  private readonly index: CosineIndex;
  private readonly index0: CosineIndex;
  private readonly rowLogits: RowScoreCache;
  /** The classifier's row logits of every V row, [N * M] (when V is given): a chosen row's new logits. */
  private readonly vLogits: Float32Array | null;
  /** The slide head's weights when it is linear (`stage2HeadWeights`), else null (a tensor call). */
  private readonly head: { kernel: Float32Array; bias: Float32Array } | null;
  private readonly logits0: Float32Array;
  private readonly pool: IncrementalAttentionPool;
  private readonly pool0: PoolSnapshot;
  private readonly head0: { slideLogits: Float32Array; probs: Float32Array; crossEntropy: number };
  private readonly mask: Uint8Array;
  private readonly changed: Uint8Array;
  private readonly pooledBuf: Float32Array;
  private t = 0;
  private active = false;
  private closed = false;

  /**
   * @param opts the classifier, f_S, Z, optionally V, the label, a zoom callback and the config.
   * @throws ShapeError when widths differ (Z vs classifier, V vs Z, f_S); ValueError for a bad
   *   config, label or classifier; DataError for non-finite features.
   */
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
    this.state = createTsuState(opts.lowRes);
    this.z = this.state.values.slice();
    this.norms0 = this.state.norms.slice();
    this.index = new CosineIndex(this.state);
    if (opts.aggregated) {
      this.v = new Float32Array(opts.aggregated.dataSync());
      const bad = firstNonFinite(this.v);
      if (bad >= 0) throw new DataError(`Expected aggregated (V) to be finite, but row ${Math.floor(bad / r.d)} holds ${this.v[bad]}.`);
    } else {
      this.v = null;
    }
    this.rowLogits = new RowScoreCache((x) => this.classifier.stage2RowLogits(x), r.n, r.d);
    this.rowLogits.scoreAll(this.state.values);
    if (this.rowLogits.width !== r.numBranches) {
      throw new ShapeError(`Expected stage2RowLogits to return [n, ${r.numBranches}] (numBranches), but got width ${this.rowLogits.width}.`);
    }
    this.logits0 = this.rowLogits.scores.slice();
    if (this.v) {
      // the rows a step chooses become V rows: score them all at once, in large products
      const vCache = new RowScoreCache((x) => this.classifier.stage2RowLogits(x), r.n, r.d);
      vCache.scoreAll(this.v);
      this.vLogits = vCache.scores;
      this.index.setTable(opts.aggregated!);
    } else {
      this.vLogits = null;
    }
    this.index0 = this.index.clone();
    this.head = typeof opts.classifier.stage2HeadWeights === 'function' ? opts.classifier.stage2HeadWeights() : null;
    if (this.head && (this.head.kernel.length !== r.d * r.numClasses || this.head.bias.length !== r.numClasses)) {
      throw new ShapeError(`Expected stage2HeadWeights to return a kernel of ${r.d} x ${r.numClasses} and a bias of ${r.numClasses} values.`);
    }
    this.pool = new IncrementalAttentionPool(r.n, r.d, r.numBranches);
    this.pool.attach(this.rowLogits.scores, this.state.values);
    this.pool0 = this.pool.snapshot();
    this.pooledBuf = new Float32Array(r.d);
    const slideLogits = this.slideLogits();
    this.head0 = { slideLogits, ...headOutputs(slideLogits, r.label) };
    this.mask = new Uint8Array(r.n);
    this.changed = new Uint8Array(r.n);
    this.actionSpace = new Discrete(r.n);
    this.observationSpace = new WsiObservationSpace(r.n, r.d, r.budget);
  }

  /** Steps taken in the current episode. */
  get steps(): number {
    return this.t;
  }

  /**
   * The attention weights abar [N] of the classifier on the current state (for heatmaps).
   * @returns a new array.
   */
  attention(): Float32Array {
    this.checkOpen();
    return this.pool.attention();
  }

  /**
   * One-step lookahead for a teacher in training: the cross-entropy `-log p(y | S')` of the
   * classifier on the state S' where one allowed patch i alone is zoomed into next (its row
   * replaced by V(i), no state update), for every patch; `Infinity` for patches already chosen.
   * Needs the label and the cached V (a training env). Costs O(N M d) plus one batched run of
   * the classifier head; the env is not changed.
   * @returns a new array [N].
   * @throws StateError outside an episode; ValueError without a label or cached V.
   */
  zoomLookahead(): Float64Array {
    this.checkOpen();
    if (!this.active) throw new StateError('Call reset() before zoomLookahead(), and use it before the episode terminates.');
    if (this.label === undefined || !this.v) {
      throw new ValueError('zoomLookahead() needs the slide label and the cached V (a training environment).');
    }
    const n = this.numPatches;
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (this.mask[i]) rows.push(i);
    const out = new Float64Array(n).fill(Infinity);
    if (rows.length === 0) return out;
    const m = this.rowLogits.width;
    const d = this.dim;
    const newLogits = new Float32Array(rows.length * m);
    const newValues = new Float32Array(rows.length * d);
    rows.forEach((i, r) => {
      newLogits.set(this.vLogits!.subarray(i * m, i * m + m), r * m);
      newValues.set(this.v!.subarray(i * d, i * d + d), r * d);
    });
    const pooled = this.pool.pooledIfReplaced(rows, newLogits, newValues);
    const C = this.classifier.numClasses;
    let logits: Float32Array;
    if (this.head) {
      const { kernel, bias } = this.head;
      logits = new Float32Array(rows.length * C);
      for (let r = 0; r < rows.length; r++) {
        for (let c = 0; c < C; c++) {
          let acc = bias[c];
          for (let j = 0; j < d; j++) acc += pooled[r * d + j] * kernel[j * C + c];
          logits[r * C + c] = acc;
        }
      }
    } else {
      logits = tf.tidy(() => this.classifier.stage2HeadLogits(tf.tensor2d(pooled, [rows.length, d])).dataSync() as Float32Array);
    }
    rows.forEach((i, r) => {
      out[i] = headOutputs(logits.subarray(r * C, r * C + C), this.label).crossEntropy;
    });
    return out;
  }

  /**
   * Starts an episode from S_0 = Z. Costs O(N d) (a copy); no network runs.
   * @param opts `seed` re-seeds {@link WsiEnv.rng} and the action space.
   */
  reset(opts: ResetOptions = {}): ResetResult<WsiObservation, WsiInfo> {
    this.checkOpen();
    if (opts.seed !== undefined) {
      this.rng = createRng(opts.seed);
      this.actionSpace.seed(opts.seed);
      this.observationSpace.seed(opts.seed);
    }
    const s = this.state;
    s.values.set(this.z);
    s.norms.set(this.norms0);
    s.visited.fill(0);
    s.rewritten.fill(0);
    this.index.copyFrom(this.index0);
    this.rowLogits.scores.set(this.logits0);
    this.pool.restore(this.pool0);
    this.mask.fill(1);
    this.changed.fill(0);
    this.t = 0;
    this.active = true;
    const actionMask = this.mask.slice();
    return {
      observation: this.observation(actionMask),
      info: {
        t: 0,
        action: -1,
        actionMask,
        changedRows: EMPTY_ROWS,
        changedValues: EMPTY_VALUES,
        changedScores: EMPTY_VALUES,
        similarSet: EMPTY_ROWS,
        slideLogits: this.head0.slideLogits.slice(),
        probs: this.head0.probs.slice(),
        crossEntropy: this.head0.crossEntropy,
      },
    };
  }

  /**
   * Zooms into patch `action`.
   *
   * @param action a, an integer in [0, N) not chosen before in this episode.
   * @param v V(a) [d], when known only now (inference); otherwise the cached V or the zoom
   *   callback provides it. A given `v` takes precedence.
   * @throws StateError before `reset` or after the episode terminated; ValueError for an
   *   invalid action or when no V(a) is available; ShapeError for a V(a) of the wrong width.
   */
  step(action: number, v?: ArrayLike<number>): StepResult<WsiObservation, WsiInfo> {
    this.checkOpen();
    if (!this.active) {
      throw new StateError(
        this.t === 0
          ? 'Call reset() before step().'
          : `The episode terminated after T = ${this.budget} steps; call reset() to start a new one.`,
      );
    }
    const s = this.state;
    const { dim: d } = this;
    if (!(Number.isInteger(action) && action >= 0 && action < this.numPatches)) {
      throw new ValueError(`Expected the action to be an integer in [0, ${this.numPatches}), but got ${action}.`);
    }
    if (s.visited[action]) {
      throw new ValueError(
        `Expected an action not chosen before, but patch ${action} was already visited in this episode. ` +
          'Sample from observation.actionMask (1 = allowed).',
      );
    }
    const va = checkRowVector(this.resolveV(action, v), d, `V(${action})`);

    // Targeted state update (only f_S on C runs in tfjs).
    const { update, tau, rewriteOnce } = this.config;
    const change = computeStateUpdate(s, action, va, this.fS, { update, tau, rewriteOnce }, this.index);
    const { rows } = change;
    const nr = rows.length;
    // Re-score the changed rows only; a cached V row's logits are known already.
    const m = this.rowLogits.width;
    let newLogits: Float32Array;
    const fromCache = v === undefined && this.vLogits !== null;
    if (fromCache) {
      newLogits = new Float32Array(nr * m);
      newLogits.set(this.vLogits.subarray(action * m, action * m + m));
      if (nr > 1) newLogits.set(this.rowLogits.score(change.values.subarray(d), nr - 1), m);
    } else {
      newLogits = this.rowLogits.score(change.values, nr);
    }
    const oldValues = new Float32Array(nr * d);
    const oldLogits = new Float32Array(nr * m);
    for (let r = 0; r < nr; r++) {
      oldValues.set(s.values.subarray(rows[r] * d, rows[r] * d + d), r * d);
      oldLogits.set(this.rowLogits.scores.subarray(rows[r] * m, rows[r] * m + m), r * m);
    }
    applyStateUpdate(s, action, change);
    for (let r = 0; r < nr; r++) this.changed[rows[r]] = 1;
    if (fromCache) {
      this.index.useTableRow(action);
      this.index.updateRows(s, rows.subarray(1));
    } else {
      this.index.updateRows(s, rows);
    }
    this.rowLogits.write(rows, newLogits);
    this.pool.update(rows, oldLogits, oldValues);

    this.t++;
    this.mask[action] = 0;
    const terminated = this.t >= this.budget;
    if (terminated) this.active = false;
    const slideLogits = this.slideLogits();
    const { probs, crossEntropy } = headOutputs(slideLogits, this.label);
    const actionMask = this.mask.slice();
    return {
      observation: this.observation(actionMask),
      reward: this.label === undefined ? 0 : -crossEntropy,
      terminated,
      truncated: false,
      info: {
        t: this.t,
        action,
        actionMask,
        changedRows: rows,
        changedValues: change.values,
        changedScores: newLogits,
        similarSet: change.similarSet,
        slideLogits,
        probs,
        crossEntropy,
      },
    };
  }

  /** Same as {@link WsiEnv.close}. */
  dispose(): void {
    this.close();
  }

  /** Releases the env (it holds no tensors; the classifier and f_S stay owned by the caller). */
  close(): void {
    this.closed = true;
    this.active = false;
  }

  /** The slide logits of the current pooled embedding: in plain arithmetic for a linear head. */
  private slideLogits(): Float32Array {
    const pooled = this.pool.pooled(this.pooledBuf);
    if (!this.head) return slideLogitsOf(this.classifier, pooled);
    return linearHead(pooled, this.head.kernel, this.head.bias);
  }

  private resolveV(action: number, v: ArrayLike<number> | undefined): ArrayLike<number> {
    if (v !== undefined) return v;
    if (this.v) return this.v.subarray(action * this.dim, action * this.dim + this.dim);
    if (this.zoom) return this.zoom(action);
    throw new ValueError(
      `No V(${action}) is available: pass it as step(action, v), or build the env with aggregated V or a zoom callback.`,
    );
  }

  private observation(actionMask: Uint8Array): WsiObservation {
    return {
      numPatches: this.numPatches,
      dim: this.dim,
      t: this.t,
      budget: this.budget,
      actionMask,
      state: this.state.values,
      numScores: this.rowLogits.width,
      rowScores: this.rowLogits.scores,
      changed: this.changed,
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new StateError('This WsiEnv was closed; create a new one.');
  }
}
