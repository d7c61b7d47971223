/**
 * Episode logs and the version table: an episode is stored as its initial state plus, per step,
 * the rows that changed and their new values, never as T full states.
 *
 * Within an episode a state row changes only when its patch is chosen or rewritten by the
 * targeted state update. So the distinct row values of an episode ("row versions") number
 * `R = N + sum_t |changed_t|`, and every state S_t is a choice of one version per row. The
 * {@link VersionTable} holds the R versions once and yields, chunk by chunk, which version each
 * row holds at each step: the networks then run once per version, not once per (step, row).
 *
 * Everything here is plain typed arrays (no tensors).
 *
 * @packageDocumentation
 */
import { DataError, ShapeError, StateError, ValueError, assert } from '../core/errors.js';
import { computeGae, explainedVariance, normalizeAdvantages } from './gae.js';
import type { ZoomObservation, ZoomStepChanges } from './types.js';

const EMPTY_INT = new Int32Array(0);

/**
 * The record of one episode on one slide: S_0, the action mask at each decision, the actions
 * with their log-probabilities, the rewards, and the rows each step rewrote.
 *
 * Memory: `N d` floats for S_0 (shared with a sibling episode on the same slide), plus
 * `|changed_t| d` per step, plus O(N + T) integers.
 * @category PPO
 */
export class EpisodeLog {
  /** N. */
  readonly numPatches: number;
  /** d. */
  readonly dim: number;
  /** S_0, [N * d] (a private copy, possibly shared with another episode of the same slide). */
  readonly initialState: Float32Array;
  /** The action mask at the first decision, [N] (1 = allowed). */
  readonly initialMask: Uint8Array;
  /** T, the episode's budget of steps (the observation's `budget`). */
  readonly budget: number;
  /** a_t. */
  readonly actions: number[] = [];
  /** log pi_old(a_t | S_t) under the masked distribution, from the rollout. */
  readonly logProbs: number[] = [];
  /** r_t. */
  readonly rewards: number[] = [];
  /** Per step: rows whose mask flipped since the previous decision (before decision t). */
  readonly maskFlips: Int32Array[] = [];
  /** Per step: rows the step changed (a_t and C_t). */
  readonly changedRows: Int32Array[] = [];
  /** Per step: their new values, [|changedRows[t]| * d]. */
  readonly changedValues: Float32Array[] = [];
  /** The episode ended at its budget. */
  terminated = false;
  /** The episode was cut short; {@link EpisodeLog.bootstrapValue} then holds V(S_T). */
  truncated = false;
  /** V(S_T) for a truncated episode, 0 otherwise. */
  bootstrapValue = 0;
  private mask: Uint8Array | null;
  private open = true;

  /**
   * Starts a log from the observation returned by `reset`.
   * @param shareInitialWith a previous log of the same slide: when its S_0 is equal, the
   *   array is shared instead of copied.
   */
  constructor(observation: ZoomObservation, shareInitialWith?: EpisodeLog) {
    const { numPatches: N, dim: d, state, actionMask } = observation;
    assert(Number.isInteger(N) && N > 0, () => `Expected numPatches to be a positive integer, but got ${N}.`, ShapeError);
    assert(Number.isInteger(d) && d > 0, () => `Expected dim to be a positive integer, but got ${d}.`, ShapeError);
    if (state.length !== N * d) throw new ShapeError(`Expected the state to have N * d = ${N * d} values, but got ${state.length}.`);
    if (actionMask.length !== N) throw new ShapeError(`Expected the action mask to have N = ${N} entries, but got ${actionMask.length}.`);
    this.numPatches = N;
    this.dim = d;
    const prev = shareInitialWith;
    this.initialState =
      prev && prev.numPatches === N && prev.dim === d && sameValues(prev.initialState, state) ? prev.initialState : state.slice();
    this.initialMask = actionMask.slice();
    this.mask = actionMask.slice();
    this.budget = observation.budget;
  }

  /** T, the number of recorded steps. */
  get length(): number {
    return this.actions.length;
  }

  /** Whether {@link EpisodeLog.finish} was called. */
  get isFinished(): boolean {
    return !this.open;
  }

  /** `sum_t |changed_t|`, the number of row versions the steps added. */
  get numChangedRows(): number {
    let n = 0;
    for (const rows of this.changedRows) n += rows.length;
    return n;
  }

  /**
   * Records one step.
   * @param step.actionMask the mask the action was chosen under (the decision-time observation's).
   * @param step.changes the step's `changedRows` / `changedValues` (copied).
   * @throws DataError on a non-finite reward or changed value; ValueError on a masked or
   *   out-of-range action; ShapeError on inconsistent sizes.
   */
  recordStep(step: { actionMask: Uint8Array; action: number; logProb: number; reward: number; changes: ZoomStepChanges }): void {
    assert(this.open, () => 'This episode log is finished; start a new one for the next episode.', StateError);
    const { numPatches: N, dim: d } = this;
    const t = this.length;
    const { action, logProb, reward, actionMask, changes } = step;
    if (!Number.isFinite(reward)) {
      throw new DataError(`Expected a finite reward, but step ${t} returned ${reward}. Check the classifier and the features of this slide for NaN.`);
    }
    if (!Number.isFinite(logProb)) throw new DataError(`Expected a finite log-probability, but step ${t} has ${logProb}.`);
    if (!(Number.isInteger(action) && action >= 0 && action < N)) {
      throw new ValueError(`Expected an action in [0, ${N}), but got ${action} at step ${t}.`);
    }
    if (actionMask.length !== N) throw new ShapeError(`Expected an action mask of ${N} entries, but got ${actionMask.length} at step ${t}.`);
    if (!actionMask[action]) throw new ValueError(`Expected the action ${action} to be allowed by the mask, but it is masked at step ${t}.`);
    const { changedRows, changedValues } = changes;
    if (changedValues.length !== changedRows.length * d) {
      throw new ShapeError(
        `Expected ${changedRows.length} x ${d} changed values, but got ${changedValues.length} at step ${t}.`,
      );
    }
    const seen = new Set<number>();
    for (const r of changedRows) {
      if (!(Number.isInteger(r) && r >= 0 && r < N) || seen.has(r)) {
        throw new ValueError(`Expected distinct changed rows in [0, ${N}), but got ${Array.from(changedRows).join(', ')} at step ${t}.`);
      }
      seen.add(r);
    }
    for (let i = 0; i < changedValues.length; i++) {
      if (!Number.isFinite(changedValues[i])) {
        throw new DataError(`Expected finite state values, but row ${changedRows[Math.floor(i / d)]} became ${changedValues[i]} at step ${t}.`);
      }
    }
    const mask = this.mask as Uint8Array;
    const flips: number[] = [];
    for (let i = 0; i < N; i++) {
      const m = actionMask[i] ? 1 : 0;
      if (m !== mask[i]) {
        flips.push(i);
        mask[i] = m;
      }
    }
    this.maskFlips.push(flips.length ? Int32Array.from(flips) : EMPTY_INT);
    this.actions.push(action);
    this.logProbs.push(logProb);
    this.rewards.push(reward);
    this.changedRows.push(Int32Array.from(changedRows));
    this.changedValues.push(Float32Array.from(changedValues));
  }

  /**
   * Closes the log.
   * @param end.bootstrapValue V(S_T), required for a truncated episode.
   */
  finish(end: { terminated: boolean; truncated: boolean; bootstrapValue?: number }): void {
    assert(this.open, () => 'This episode log is already finished.', StateError);
    assert(this.length > 0, () => 'Expected at least one step in an episode, but none was recorded.', StateError);
    const v = end.truncated ? (end.bootstrapValue ?? Number.NaN) : 0;
    if (!Number.isFinite(v)) throw new ValueError(`Expected a finite bootstrap value for a truncated episode, but got ${v}.`);
    this.terminated = end.terminated;
    this.truncated = end.truncated;
    this.bootstrapValue = v;
    this.open = false;
    this.mask = null;
  }
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A run of consecutive steps (samples) of episodes with the same N, as the update consumes
 * them. A chunk may span several episodes of one slide.
 * @category PPO
 */
export interface StepChunk {
  /** Number of steps in the chunk. */
  length: number;
  /** N of the chunk's episodes. */
  numPatches: number;
  /** Index of the chunk's first step among all samples of the table. */
  sampleStart: number;
  /** ver[t, i]: the version held by row i at step t, [length * N] (indices into the table). */
  versions: Int32Array;
  /** The action mask of each step, [length * N] (1 = allowed). */
  mask: Uint8Array;
  /** Position of a_t in the chunk's flattened [length * N] grid: `j * N + a_t`. */
  actionIndex: Int32Array;
}

/** One decision of an episode during a replay; `versions` and `mask` are live views. */
interface ReplayStep {
  t: number;
  versions: Int32Array;
  mask: Uint8Array;
  action: number;
}

/**
 * The distinct row versions of a set of finished episodes and, per step, which version each row
 * holds. Built by {@link VersionTable.fromEpisodes}. The rows changed by an episode's last step
 * are not stored: no decision of the episode sees them.
 * @category PPO
 */
export class VersionTable {
  /** d. */
  readonly dim: number;
  /** R, the number of row versions. */
  readonly numVersions: number;
  /** The versions, [R * d] row-major. */
  readonly values: Float32Array;
  /** The episodes, in sample order. */
  readonly episodes: readonly EpisodeLog[];
  /** Total number of steps (samples) over the episodes. */
  readonly numSamples: number;
  /** Per episode: the version index of its S_0 row 0 (rows are consecutive). */
  private readonly initialBase: number[];
  /** Per episode, per step: the version index of the first row the step changed. */
  private readonly changeBase: Int32Array[];
  /** Per episode: index of its first step among all samples. */
  readonly sampleOffsets: readonly number[];

  private constructor(
    dim: number,
    values: Float32Array,
    episodes: EpisodeLog[],
    initialBase: number[],
    changeBase: Int32Array[],
    sampleOffsets: number[],
  ) {
    this.dim = dim;
    this.values = values;
    this.numVersions = values.length / dim;
    this.episodes = episodes;
    this.initialBase = initialBase;
    this.changeBase = changeBase;
    this.sampleOffsets = sampleOffsets;
    this.numSamples = episodes.reduce((s, e) => s + e.length, 0);
  }

  /**
   * Builds the table of finished episodes (all of the same d). Episodes that share their S_0
   * array share its versions.
   */
  static fromEpisodes(episodes: readonly EpisodeLog[]): VersionTable {
    assert(episodes.length > 0, () => 'Expected at least one episode to build a version table from.');
    const d = episodes[0].dim;
    let total = 0;
    const initialOwner = new Map<Float32Array, number>();
    for (const e of episodes) {
      assert(e.isFinished, () => 'Expected finished episodes; call finish() on each episode log first.', StateError);
      if (e.dim !== d) throw new ShapeError(`Expected episodes of one feature width, but got d = ${d} and d = ${e.dim}.`);
      if (!initialOwner.has(e.initialState)) {
        initialOwner.set(e.initialState, -1);
        total += e.numPatches;
      }
      // the last step's changes shape no decision of the episode: they are left out
      total += e.numChangedRows - e.changedRows[e.length - 1].length;
    }
    const values = new Float32Array(total * d);
    const initialBase: number[] = [];
    const changeBase: Int32Array[] = [];
    const sampleOffsets: number[] = [];
    let next = 0;
    let samples = 0;
    for (const e of episodes) {
      let base = initialOwner.get(e.initialState) as number;
      if (base < 0) {
        base = next;
        values.set(e.initialState, next * d);
        next += e.numPatches;
        initialOwner.set(e.initialState, base);
      }
      initialBase.push(base);
      const starts = new Int32Array(e.length);
      for (let t = 0; t < e.length - 1; t++) {
        starts[t] = next;
        values.set(e.changedValues[t], next * d);
        next += e.changedRows[t].length;
      }
      changeBase.push(starts);
      sampleOffsets.push(samples);
      samples += e.length;
    }
    return new VersionTable(d, values, [...episodes], initialBase, changeBase, sampleOffsets);
  }

  /**
   * Where episode `e`'s versions are: `initial`, the version index of its S_0 row 0 (row i holds
   * `initial + i`), and `changes[t]`, the version index of the first row step t changed (the
   * k-th row of `changedRows[t]` gets `changes[t] + k` from decision t + 1 on; the last step's
   * entry is unused). For computations that replay the episodes themselves.
   */
  versionLayout(e: number): { initial: number; changes: Int32Array } {
    this.checkEpisode(e);
    return { initial: this.initialBase[e], changes: this.changeBase[e] };
  }

  /**
   * Replays one episode: yields each decision with the versions and mask rows hold then
   * (live views, valid until the next iteration). O(N) per step.
   */
  private *replay(e: number): Generator<ReplayStep> {
    const ep = this.episodes[e];
    const N = ep.numPatches;
    const versions = new Int32Array(N);
    for (let i = 0; i < N; i++) versions[i] = this.initialBase[e] + i;
    const mask = ep.initialMask.slice();
    for (let t = 0; t < ep.length; t++) {
      for (const r of ep.maskFlips[t]) mask[r] = mask[r] ? 0 : 1;
      yield { t, versions, mask, action: ep.actions[t] };
      // the step's changes take effect for the next decision (there is none after the last)
      if (t === ep.length - 1) break;
      const rows = ep.changedRows[t];
      const base = this.changeBase[e][t];
      for (let k = 0; k < rows.length; k++) versions[rows[k]] = base + k;
    }
  }

  /**
   * Yields all steps in sample order, in chunks of at most `max(1, floor(maxElements / N))`
   * steps. A chunk may span consecutive episodes with the same N (one slide), never two Ns.
   */
  *stepChunks(maxElements: number): Generator<StepChunk> {
    let chunk: StepChunk | null = null;
    let filled = 0;
    const close = (): StepChunk => {
      const c = chunk as StepChunk;
      const N = c.numPatches;
      chunk = null;
      if (filled === c.length) return c;
      return {
        ...c,
        length: filled,
        versions: c.versions.slice(0, filled * N),
        mask: c.mask.slice(0, filled * N),
        actionIndex: c.actionIndex.slice(0, filled),
      };
    };
    for (let e = 0; e < this.episodes.length; e++) {
      const N = this.episodes[e].numPatches;
      if (chunk !== null && (chunk as StepChunk).numPatches !== N) yield close();
      const perChunk = Math.max(1, Math.floor(maxElements / N));
      for (const step of this.replay(e)) {
        if (chunk === null) {
          // samples left in this run of episodes with the same N
          let left = this.episodes[e].length - step.t;
          for (let f = e + 1; f < this.episodes.length && this.episodes[f].numPatches === N; f++) left += this.episodes[f].length;
          const len = Math.min(perChunk, left);
          chunk = {
            length: len,
            numPatches: N,
            sampleStart: this.sampleOffsets[e] + step.t,
            versions: new Int32Array(len * N),
            mask: new Uint8Array(len * N),
            actionIndex: new Int32Array(len),
          };
          filled = 0;
        }
        const c: StepChunk = chunk;
        c.versions.set(step.versions, filled * N);
        c.mask.set(step.mask, filled * N);
        c.actionIndex[filled] = filled * N + step.action;
        filled += 1;
        if (filled === c.length) yield close();
      }
    }
    if (chunk !== null) yield close();
  }

  /**
   * The dense states S_t of one episode, [T * N * d], for reference computations (O(T N d)
   * memory).
   */
  denseStates(episode: number): Float32Array {
    this.checkEpisode(episode);
    const ep = this.episodes[episode];
    const N = ep.numPatches;
    const d = this.dim;
    const out = new Float32Array(ep.length * N * d);
    for (const { t, versions } of this.replay(episode)) {
      for (let i = 0; i < N; i++) out.set(this.values.subarray(versions[i] * d, (versions[i] + 1) * d), (t * N + i) * d);
    }
    return out;
  }

  /** The dense action masks of one episode, [T * N] (1 = allowed). */
  denseMasks(episode: number): Uint8Array {
    this.checkEpisode(episode);
    const N = this.episodes[episode].numPatches;
    const out = new Uint8Array(this.episodes[episode].length * N);
    for (const { t, mask } of this.replay(episode)) out.set(mask, t * N);
    return out;
  }

  private checkEpisode(e: number): void {
    if (!(Number.isInteger(e) && e >= 0 && e < this.episodes.length)) {
      throw new ValueError(`Expected an episode index in [0, ${this.episodes.length}), but got ${e}.`);
    }
  }
}

/**
 * One update's training data (SB3's `RolloutBufferSamples`), every array over the B samples
 * in episode order.
 * @category PPO
 */
export interface RolloutBatch {
  /** The states, as row versions. */
  table: VersionTable;
  /** a_t, [B]. */
  actions: Int32Array;
  /** log pi_old(a_t | S_t), masked distribution, [B]. */
  oldLogProbs: Float32Array;
  /** V_old(S_t), [B]. */
  oldValues: Float32Array;
  /** A_t, normalised when configured, [B]. */
  advantages: Float32Array;
  /** Critic targets R_t = A_t + V_old(S_t) (formed before normalisation), [B]. */
  returns: Float32Array;
  /** r_t, [B]. */
  rewards: Float32Array;
  /** Explained variance of the returns by the old values. */
  explainedVariance: number;
}

/**
 * Builds the batch of an update: GAE per episode (bootstrap 0 at a terminal end, V(S_T) at a
 * truncated one), returns `A + V_old`, then advantage normalisation over all B samples.
 *
 * @param oldValues V_old(S_t) for every sample, [B], from the critic before the update.
 * @returns arrays owned by the caller.
 * @see docs/reference-code.md §6.2 steps 3-5
 * @category PPO
 */
export function buildRolloutBatch(
  table: VersionTable,
  oldValues: ArrayLike<number>,
  config: { gamma: number; gaeLambda: number; normAdvantage: boolean },
): RolloutBatch {
  const B = table.numSamples;
  if (oldValues.length !== B) throw new ShapeError(`Expected ${B} old values, but got ${oldValues.length}.`);
  const actions = new Int32Array(B);
  const oldLogProbs = new Float32Array(B);
  const rewards = new Float32Array(B);
  const rawAdvantages = new Float64Array(B);
  const returns = new Float32Array(B);
  for (let e = 0; e < table.episodes.length; e++) {
    const ep = table.episodes[e];
    const off = table.sampleOffsets[e];
    const values = Array.from({ length: ep.length }, (_, t) => oldValues[off + t]);
    const gae = computeGae({
      rewards: ep.rewards,
      values,
      bootstrapValue: ep.bootstrapValue,
      gamma: config.gamma,
      gaeLambda: config.gaeLambda,
    });
    for (let t = 0; t < ep.length; t++) {
      actions[off + t] = ep.actions[t];
      oldLogProbs[off + t] = ep.logProbs[t];
      rewards[off + t] = ep.rewards[t];
      rawAdvantages[off + t] = gae.advantages[t];
      returns[off + t] = gae.returns[t];
    }
  }
  const advantages = Float32Array.from(config.normAdvantage ? normalizeAdvantages(rawAdvantages) : rawAdvantages);
  const old = Float32Array.from(oldValues);
  return {
    table,
    actions,
    oldLogProbs,
    oldValues: old,
    advantages,
    returns,
    rewards,
    explainedVariance: explainedVariance(old, returns),
  };
}

/**
 * The factor `rho_t` of every sample's value when the critic predicts the value per remaining
 * step (`criticTimeScale`): `T - t`, or `(T - t) / T` with `rewardScale: 'budget'`; null
 * when the critic's output is the value itself.
 * @returns [B] in sample order, or null.
 * @category PPO
 */
export function valueScales(table: VersionTable, config: { criticTimeScale: boolean; rewardScale: 'none' | 'budget' }): Float32Array | null {
  if (!config.criticTimeScale) return null;
  const out = new Float32Array(table.numSamples);
  table.episodes.forEach((e, i) => {
    const T = Math.max(e.budget, e.length);
    for (let t = 0; t < e.length; t++) out[table.sampleOffsets[i] + t] = (T - t) / (config.rewardScale === 'budget' ? T : 1);
  });
  return out;
}

/**
 * The episodes of a table grouped by slide: consecutive episodes that share their S_0 array
 * (as a {@link RolloutBuffer} records episodes of one slide) form one group.
 * @returns episode indices per group, in table order.
 * @category PPO
 */
export function slideGroups(table: VersionTable): number[][] {
  const groups: number[][] = [];
  table.episodes.forEach((e, i) => {
    const prev = i > 0 ? table.episodes[i - 1] : null;
    if (prev && prev.initialState === e.initialState) groups[groups.length - 1].push(i);
    else groups.push([i]);
  });
  return groups;
}

/**
 * The part of a batch that belongs to some of its episodes (a minibatch): a version table of
 * those episodes and the per-sample arrays gathered in the same order. Advantages are kept as
 * they are (normalised over the whole batch).
 * @param episodes indices into `batch.table.episodes`, ascending.
 * @returns a new batch (arrays owned by the caller).
 * @category PPO
 */
export function sliceRolloutBatch(batch: RolloutBatch, episodes: readonly number[]): RolloutBatch {
  const { table } = batch;
  const sub = VersionTable.fromEpisodes(episodes.map((e) => table.episodes[e]));
  const B = sub.numSamples;
  const pick = <T extends Float32Array | Int32Array>(src: T, make: (n: number) => T): T => {
    const out = make(B);
    let k = 0;
    for (const e of episodes) {
      const off = table.sampleOffsets[e];
      const len = table.episodes[e].length;
      out.set(src.subarray(off, off + len), k);
      k += len;
    }
    return out;
  };
  const f32 = (n: number) => new Float32Array(n);
  const oldValues = pick(batch.oldValues, f32);
  const returns = pick(batch.returns, f32);
  return {
    table: sub,
    actions: pick(batch.actions, (n) => new Int32Array(n)),
    oldLogProbs: pick(batch.oldLogProbs, f32),
    oldValues,
    advantages: pick(batch.advantages, f32),
    returns,
    rewards: pick(batch.rewards, f32),
    explainedVariance: explainedVariance(oldValues, returns),
  };
}

/**
 * Collects the episodes of one update. Consecutive episodes on the same slide share S_0.
 * @example
 * ```ts
 * const buffer = new RolloutBuffer();
 * let { observation } = env.reset();
 * buffer.startEpisode(observation);
 * // ... buffer.recordStep({ ... }) after every env.step, then buffer.finishEpisode({ terminated: true, truncated: false })
 * const table = buffer.versionTable();
 * ```
 * @category PPO
 */
export class RolloutBuffer {
  private readonly logs: EpisodeLog[] = [];

  /** The episodes recorded so far. */
  get episodes(): readonly EpisodeLog[] {
    return this.logs;
  }

  /** Total steps recorded. */
  get numSamples(): number {
    return this.logs.reduce((s, e) => s + e.length, 0);
  }

  /** Starts recording an episode from the observation `reset` returned. */
  startEpisode(observation: ZoomObservation): EpisodeLog {
    const last = this.logs[this.logs.length - 1];
    assert(!last || last.isFinished, () => 'The previous episode is still open; finish it before starting another.', StateError);
    const log = new EpisodeLog(observation, last);
    this.logs.push(log);
    return log;
  }

  /** Records a step of the open episode (see {@link EpisodeLog.recordStep}). */
  recordStep(step: Parameters<EpisodeLog['recordStep']>[0]): void {
    this.current().recordStep(step);
  }

  /** Closes the open episode (see {@link EpisodeLog.finish}). */
  finishEpisode(end: Parameters<EpisodeLog['finish']>[0]): void {
    this.current().finish(end);
  }

  /** The version table of the recorded (finished) episodes. */
  versionTable(): VersionTable {
    return VersionTable.fromEpisodes(this.logs);
  }

  /** Forgets every episode. */
  clear(): void {
    this.logs.length = 0;
  }

  private current(): EpisodeLog {
    const last = this.logs[this.logs.length - 1];
    assert(last && !last.isFinished, () => 'No episode is open; call startEpisode() after env.reset().', StateError);
    return last;
  }
}
