/**
 * Zoom policies behind one interface: the learned actor (with incremental scoring) and the
 * baselines (random, top-attention as ZoomMIL, greedy low-resolution attention), plus
 * {@link playEpisode}, which runs any of them on an environment.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, StateError, ValueError, assert, fmtShape } from '../core/errors.js';
import { createRng, type Rng } from '../core/random.js';
import { checkDim, type ActorCritic } from './actor_critic.js';
import type { ActionChoice, SelectOptions, ZoomEnv, ZoomObservation, ZoomStepChanges, ZoomStepResult } from './types.js';
import { LogitTree } from './logit_tree.js';

/**
 * A policy that chooses which patch to zoom into. Per episode: {@link ZoomPolicy.startEpisode}
 * with the observation `reset` returned, then for every step {@link ZoomPolicy.selectAction}
 * and, after `env.step`, {@link ZoomPolicy.observeStep} with the step's info (so that a policy
 * that caches per-row scores re-scores only the changed rows).
 * @category PPO
 */
export interface ZoomPolicy {
  /** Short name for tables and the CLI (`'learned'`, `'random'`, `'top-attention'`, ...). */
  readonly name: string;
  /** Prepares for an episode from S_0. */
  startEpisode(observation: ZoomObservation): void;
  /** Chooses the next patch among those the observation's mask allows. */
  selectAction(observation: ZoomObservation, options?: SelectOptions): ActionChoice;
  /** Takes note of the rows the last step changed. */
  observeStep(changes: ZoomStepChanges): void;
  /** Frees what the policy owns (not the models it was given). */
  dispose(): void;
}

/**
 * Chooses an action from per-row scores (logits) under a mask, with the log-probability of the
 * choice under the masked softmax distribution `p_i = exp(l_i) / sum_{j allowed} exp(l_j)`.
 *
 * Modes: `'argmax'` (the first best allowed row), `'sample'` (from p), `'topK'` (softmax over
 * the k best allowed rows, then sample; k = 3 by default), `'topP'` (sample from the smallest
 * set of best rows whose probability exceeds p, renormalised; p = 0.3 by default).
 * `logProb` is always that of the full masked distribution.
 *
 * @param logits [N] scores; @param mask [N], 1 = allowed.
 * @throws ValueError when no row is allowed.
 * @example
 * ```ts
 * selectFromLogits([0, 2, 1], Uint8Array.from([1, 0, 1]), { mode: 'argmax' });
 * // { action: 2, logProb: log(e / (1 + e)) = -0.3133 }
 * ```
 * @see docs/reference-code.md §6.1 (get_action: top-k 3, top-p 0.3)
 * @category PPO
 */
export function selectFromLogits(logits: ArrayLike<number>, mask: ArrayLike<number>, options: SelectOptions = {}): ActionChoice {
  const N = logits.length;
  if (mask.length !== N) throw new ShapeError(`Expected a mask of ${N} entries, but got ${mask.length}.`);
  const mode = options.mode ?? 'argmax';
  let max = -Infinity;
  let best = -1;
  const allowed: number[] = [];
  for (let i = 0; i < N; i++) {
    if (!mask[i]) continue;
    allowed.push(i);
    if (logits[i] > max) {
      max = logits[i];
      best = i;
    }
  }
  if (best < 0) throw new ValueError('Expected at least one patch left to choose, but the action mask allows none.');
  if (!Number.isFinite(max)) throw new ValueError(`Expected finite scores, but the best allowed score is ${max}.`);
  let sum = 0;
  for (const i of allowed) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const logProbOf = (i: number) => logits[i] - lse;
  if (mode === 'argmax') return { action: best, logProb: logProbOf(best) };
  const rng = options.rng;
  if (!rng) throw new ValueError(`Expected options.rng for mode '${mode}'.`);
  const sampleFrom = (rows: number[], weights: number[]): number => {
    let total = 0;
    for (const w of weights) total += w;
    let r = rng.next() * total;
    for (let k = 0; k < rows.length; k++) {
      r -= weights[k];
      if (r < 0) return rows[k];
    }
    return rows[rows.length - 1];
  };
  if (mode === 'sample') {
    const a = sampleFrom(
      allowed,
      allowed.map((i) => Math.exp(logits[i] - max)),
    );
    return { action: a, logProb: logProbOf(a) };
  }
  const sorted = [...allowed].sort((a, b) => logits[b] - logits[a] || a - b);
  if (mode === 'topK') {
    const k = options.topK ?? 3;
    if (!(Number.isInteger(k) && k >= 1)) throw new ValueError(`Expected topK to be a positive integer, but got ${k}.`);
    const rows = sorted.slice(0, k);
    const a = sampleFrom(
      rows,
      rows.map((i) => Math.exp(logits[i] - max)),
    );
    return { action: a, logProb: logProbOf(a) };
  }
  if (mode === 'topP') {
    const p = options.topP ?? 0.3;
    if (!(p > 0 && p <= 1)) throw new ValueError(`Expected topP to be in (0, 1], but got ${p}.`);
    const rows: number[] = [];
    const weights: number[] = [];
    let cum = 0;
    for (const i of sorted) {
      const pi = Math.exp(logProbOf(i));
      rows.push(i);
      weights.push(pi);
      cum += pi;
      if (cum > p) break;
    }
    const a = sampleFrom(rows, weights);
    return { action: a, logProb: logProbOf(a) };
  }
  throw new ValueError(`Expected mode to be one of 'sample', 'argmax', 'topK', 'topP', but got '${String(mode)}'.`);
}

/**
 * `log pi(action)` under the masked softmax of `logits` (the distribution {@link selectFromLogits}
 * samples from): `l_a - log sum_{j allowed} exp(l_j)`.
 * @param logits [N]; @param mask [N], 1 = allowed; @param action an allowed row.
 * @throws ValueError when the action is not allowed.
 * @example
 * ```ts
 * maskedLogProb([0, 2, 1], Uint8Array.from([1, 0, 1]), 2); // log(e / (1 + e)) = -0.3133
 * ```
 * @category PPO
 */
export function maskedLogProb(logits: ArrayLike<number>, mask: ArrayLike<number>, action: number): number {
  if (!mask[action]) throw new ValueError(`Expected an allowed action, but patch ${action} is masked.`);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (mask[i] && logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) if (mask[i]) sum += Math.exp(logits[i] - max);
  return logits[action] - max - Math.log(sum);
}

function checkObservation(observation: ZoomObservation): void {
  const { numPatches: N, dim: d, state, actionMask } = observation;
  if (state.length !== N * d || actionMask.length !== N) {
    throw new ShapeError(
      `Expected an observation with state [${N} * ${d}] and mask [${N}], but got ${state.length} state values and ${actionMask.length} mask entries.`,
    );
  }
}

/**
 * The learned zoom policy: the actor of an {@link ActorCritic}, with incremental scoring. The
 * logits of all N rows are computed once per episode; after each step only the changed rows
 * that may still be chosen (C, not the chosen patch, which is masked from then on) are
 * re-scored, and the masked distribution is kept in a segment tree, so a step costs
 * `O(|C| (d h + log N))` plus a scan of the mask for changes, and an episode
 * `O(N d h + T (|C| d h + N))` instead of `O(T N d h)`.
 *
 * Training samples (`mode: 'sample'`); evaluation takes the argmax by default, or `'topK'` /
 * `'topP'`. Chosen patches are excluded through the observation's mask, and the log-probability
 * comes from that masked distribution.
 * @example
 * ```ts
 * const policy = new ActorCriticPolicy(model, { seed: 0 });
 * const { totalReward } = playEpisode(env, policy, { mode: 'argmax' });
 * ```
 * @category PPO
 */
export class ActorCriticPolicy implements ZoomPolicy {
  readonly name = 'learned';
  /** The networks (not owned: disposing the policy leaves them alive). */
  readonly model: ActorCritic;
  private readonly rng: Rng;
  private logits: Float32Array | null = null;
  /** The masked distribution of the logits (argmax, normaliser, sampling in O(log N)). */
  private tree: LogitTree | null = null;
  /** Changed rows not re-scored yet (a masked row is re-scored only once it is allowed again). */
  private readonly pending = new Map<number, Float32Array>();
  /** The mask the tree holds. */
  private mask: Uint8Array = new Uint8Array(0);

  constructor(model: ActorCritic, options: { seed?: number } = {}) {
    this.model = model;
    this.rng = createRng(options.seed ?? 0);
  }

  startEpisode(observation: ZoomObservation): void {
    checkObservation(observation);
    checkDim(this.model.config.dim, observation.dim);
    const N = observation.numPatches;
    const rows = this.model.rowInputs(observation);
    // read outside tf.tidy: a typed array returned from tidy is walked element by element
    const t = tf.tidy(() => this.model.actorLogits(tf.tensor2d(rows, [N, this.model.inputDim])));
    this.logits = (t.dataSync() as Float32Array).slice();
    t.dispose();
    this.tree = new LogitTree(this.logits, observation.actionMask);
    this.mask = Uint8Array.from(observation.actionMask, (m) => (m ? 1 : 0));
    this.pending.clear();
  }

  selectAction(observation: ZoomObservation, options: SelectOptions = {}): ActionChoice {
    if (!this.logits) this.startEpisode(observation);
    const logits = this.logits as Float32Array;
    const tree = this.tree as LogitTree;
    if (logits.length !== observation.numPatches) {
      throw new StateError(
        `Expected an observation of the current episode (N = ${logits.length}), but got N = ${observation.numPatches}; call startEpisode() after each reset.`,
      );
    }
    const mask = observation.actionMask;
    const held = this.mask;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === held[i]) continue;
      held[i] = mask[i] ? 1 : 0;
      tree.setAllowed(i, held[i] === 1);
    }
    const mode = options.mode ?? 'argmax';
    if (mode !== 'argmax' && mode !== 'sample') {
      this.rescore(true);
      return selectFromLogits(logits, mask, { ...options, rng: options.rng ?? this.rng });
    }
    this.rescore(false);
    let action: number;
    if (mode === 'argmax') {
      action = tree.argmax();
    } else {
      const rng = options.rng ?? this.rng;
      action = tree.argmax() < 0 ? -1 : tree.sample(rng.next());
    }
    if (action < 0) throw new ValueError('Expected at least one patch left to choose, but the action mask allows none.');
    return { action, logProb: logits[action] - tree.logNormalizer() };
  }

  observeStep(changes: ZoomStepChanges): void {
    assert(this.logits, () => 'Call startEpisode() before observeStep().', StateError);
    const rows = changes.changedRows;
    if (rows.length === 0) return;
    const d = this.model.config.dim;
    if (changes.changedValues.length !== rows.length * d) {
      throw new ShapeError(`Expected ${rows.length} x ${d} changed values, but got ${changes.changedValues.length}.`);
    }
    const inputs = this.model.changedInputs(changes);
    const w = this.model.inputDim;
    for (let k = 0; k < rows.length; k++) this.pending.set(rows[k], inputs.slice(k * w, (k + 1) * w));
  }

  /** The cached logits of the current episode ([N]; a copy), for inspection. */
  currentLogits(): Float32Array | null {
    if (!this.logits) return null;
    this.rescore(true);
    return this.logits.slice();
  }

  dispose(): void {
    this.logits = null;
    this.tree = null;
    this.pending.clear();
  }

  /** Scores the pending rows (all, or only the allowed ones) in one call of the actor. */
  private rescore(all: boolean): void {
    if (this.pending.size === 0) return;
    const tree = this.tree as LogitTree;
    const rows: number[] = [];
    for (const r of this.pending.keys()) if (all || tree.isAllowed(r)) rows.push(r);
    if (rows.length === 0) return;
    const w = this.model.inputDim;
    const values = new Float32Array(rows.length * w);
    rows.forEach((r, k) => values.set(this.pending.get(r) as Float32Array, k * w));
    const scored = tf.tidy(() => this.model.actorLogits(tf.tensor2d(values, [rows.length, w])));
    const fresh = scored.dataSync() as Float32Array;
    scored.dispose();
    const logits = this.logits as Float32Array;
    rows.forEach((r, k) => {
      logits[r] = fresh[k];
      tree.setLogit(r, fresh[k]);
      this.pending.delete(r);
    });
  }
}

/**
 * Baseline: a uniformly random allowed patch at every step. `logProb = -log(#allowed)`.
 * @category PPO
 */
export class RandomPolicy implements ZoomPolicy {
  readonly name = 'random';
  private readonly rng: Rng;

  constructor(options: { seed?: number } = {}) {
    this.rng = createRng(options.seed ?? 0);
  }

  startEpisode(observation: ZoomObservation): void {
    checkObservation(observation);
  }

  selectAction(observation: ZoomObservation, options: SelectOptions = {}): ActionChoice {
    const rng = options.rng ?? this.rng;
    const allowed: number[] = [];
    const mask = observation.actionMask;
    for (let i = 0; i < mask.length; i++) if (mask[i]) allowed.push(i);
    if (allowed.length === 0) throw new ValueError('Expected at least one patch left to choose, but the action mask allows none.');
    return { action: allowed[Math.floor(rng.next() * allowed.length)], logProb: -Math.log(allowed.length) };
  }

  observeStep(): void {}

  dispose(): void {}
}

/**
 * What the attention baselines need from a slide classifier: HAFED stage 2's per-row attention
 * logits. `Hafed` provides it.
 * @category PPO
 */
export interface AttentionScorer {
  /**
   * Attention logits of every row for every branch; a row's logits depend on that row only.
   * **Input shape:** [n, d]. **Output shape:** [n, M]. The caller owns the result.
   */
  stage2RowLogits(x: tf.Tensor2D): tf.Tensor2D;
}

function rowLogits(scorer: AttentionScorer, values: Float32Array, n: number, d: number): { logits: Float32Array; branches: number } {
  // read outside tf.tidy: a typed array returned from tidy is walked element by element
  const out = tf.tidy(() => scorer.stage2RowLogits(tf.tensor2d(values, [n, d])));
  try {
    if (out.rank !== 2 || out.shape[0] !== n) {
      throw new ShapeError(`Expected stage2RowLogits to return [${n}, M], but got ${fmtShape(out.shape)}.`);
    }
    return { logits: (out.dataSync() as Float32Array).slice(), branches: out.shape[1] };
  } finally {
    out.dispose();
  }
}

/**
 * Attention of every row: `a_i = mean_m softmax_N(L[:, m])_i`, computed in float64.
 * **Input shape:** `L` [N * M] row-major. **Output shape:** [N].
 */
function meanBranchAttention(L: Float32Array, N: number, M: number): Float64Array {
  const a = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    let max = -Infinity;
    for (let i = 0; i < N; i++) max = Math.max(max, L[i * M + m]);
    let sum = 0;
    for (let i = 0; i < N; i++) sum += Math.exp(L[i * M + m] - max);
    for (let i = 0; i < N; i++) a[i] += Math.exp(L[i * M + m] - max) / sum / M;
  }
  return a;
}

function firstAllowedByScore(scores: ArrayLike<number>, mask: Uint8Array): number {
  let best = -1;
  for (let i = 0; i < scores.length; i++) if (mask[i] && (best < 0 || scores[i] > scores[best])) best = i;
  if (best < 0) throw new ValueError('Expected at least one patch left to choose, but the action mask allows none.');
  return best;
}

/**
 * Baseline in the manner of ZoomMIL: rank the patches once by the classifier's attention on the
 * low-resolution state S_0 = Z, and zoom into them in that order (the top-T patches).
 * Deterministic; `logProb` is 0.
 * @example
 * ```ts
 * const policy = new TopAttentionPolicy(hafed); // hafed.stage2RowLogits(x) -> [n, M]
 * ```
 * @category PPO
 */
export class TopAttentionPolicy implements ZoomPolicy {
  readonly name = 'top-attention';
  private readonly scorer: AttentionScorer;
  private attention: Float64Array | null = null;

  constructor(scorer: AttentionScorer) {
    this.scorer = scorer;
  }

  startEpisode(observation: ZoomObservation): void {
    checkObservation(observation);
    const { numPatches: N, dim: d } = observation;
    const { logits, branches } = rowLogits(this.scorer, observation.state, N, d);
    this.attention = meanBranchAttention(logits, N, branches);
  }

  selectAction(observation: ZoomObservation): ActionChoice {
    if (!this.attention) this.startEpisode(observation);
    return { action: firstAllowedByScore(this.attention as Float64Array, observation.actionMask), logProb: 0 };
  }

  observeStep(): void {}

  dispose(): void {
    this.attention = null;
  }
}

/**
 * Baseline: at every step, zoom into the allowed patch with the highest classifier attention on
 * the current state S_t (greedy low-resolution attention). The per-row attention logits are
 * cached and only the changed rows re-scored; the softmax over N is recomputed (O(N M)).
 * Deterministic; `logProb` is 0.
 * @category PPO
 */
export class GreedyAttentionPolicy implements ZoomPolicy {
  readonly name = 'greedy-attention';
  private readonly scorer: AttentionScorer;
  private logits: Float32Array | null = null;
  private branches = 1;
  private numPatches = 0;
  private dim = 0;

  constructor(scorer: AttentionScorer) {
    this.scorer = scorer;
  }

  startEpisode(observation: ZoomObservation): void {
    checkObservation(observation);
    const { numPatches: N, dim: d } = observation;
    const { logits, branches } = rowLogits(this.scorer, observation.state, N, d);
    this.logits = logits;
    this.branches = branches;
    this.numPatches = N;
    this.dim = d;
  }

  selectAction(observation: ZoomObservation): ActionChoice {
    if (!this.logits) this.startEpisode(observation);
    const attention = meanBranchAttention(this.logits as Float32Array, this.numPatches, this.branches);
    return { action: firstAllowedByScore(attention, observation.actionMask), logProb: 0 };
  }

  observeStep(changes: ZoomStepChanges): void {
    assert(this.logits, () => 'Call startEpisode() before observeStep().', StateError);
    const rows = changes.changedRows;
    if (rows.length === 0) return;
    const { logits: fresh } = rowLogits(this.scorer, changes.changedValues, rows.length, this.dim);
    const M = this.branches;
    for (let k = 0; k < rows.length; k++) (this.logits as Float32Array).set(fresh.subarray(k * M, (k + 1) * M), rows[k] * M);
  }

  dispose(): void {
    this.logits = null;
  }
}

/** Options of {@link playEpisode}. @category PPO */
export interface PlayEpisodeOptions extends SelectOptions {
  /** Seed passed to `env.reset`. */
  seed?: number;
}

/** What {@link playEpisode} returns. @category PPO */
export interface EpisodeResult<Info> {
  /** The patches chosen, in order. */
  actions: number[];
  /** r_t of every step. */
  rewards: number[];
  /** Sum of the rewards. */
  totalReward: number;
  /** The last step's result (its info carries the final prediction in `WsiEnv`). */
  last: ZoomStepResult<Info & ZoomStepChanges>;
}

/**
 * Runs one episode of `policy` on `env` until it terminates or is truncated.
 * @param options selection mode (default `'argmax'`) and the reset seed.
 * @returns the actions, rewards and the last step result (its observation is a view valid
 *   until the environment's next `reset`).
 * @example
 * ```ts
 * const { actions, last } = playEpisode(env, new RandomPolicy({ seed: 1 }));
 * ```
 * @category PPO
 */
export function playEpisode<Info extends ZoomStepChanges>(
  env: ZoomEnv<Info>,
  policy: ZoomPolicy,
  options: PlayEpisodeOptions = {},
): EpisodeResult<Info> {
  const { seed, ...select } = options;
  let { observation } = env.reset(seed === undefined ? {} : { seed });
  policy.startEpisode(observation);
  const actions: number[] = [];
  const rewards: number[] = [];
  for (;;) {
    const { action } = policy.selectAction(observation, select);
    const result = env.step(action);
    policy.observeStep(result.info);
    actions.push(action);
    rewards.push(result.reward);
    if (result.terminated || result.truncated) {
      return { actions, rewards, totalReward: rewards.reduce((a, b) => a + b, 0), last: result };
    }
    observation = result.observation;
    if (actions.length > observation.numPatches) {
      throw new StateError(`The environment ran ${actions.length} steps on ${observation.numPatches} patches without ending.`);
    }
  }
}
