/**
 * A small stand-in for WsiEnv that follows the environment contract: N patches of width d, a
 * budget of T steps, a mask of chosen patches, and per step the chosen row (now its hidden
 * "high-res" value) plus a few rewritten rows. One patch (the key) carries a marker in feature
 * 0; finding it makes the reward high. Observation arrays are live views, rewritten in place by
 * step(), as the contract allows.
 */
import { createRng, type Rng } from '../../src/core/index.js';
import type { ZoomEnv, ZoomObservation, ZoomStepChanges, ZoomStepResult } from '../../src/ppo/index.js';

export interface FakeInfo extends ZoomStepChanges {
  actionMask: Uint8Array;
  success: boolean;
}

export interface FakeEnvOptions {
  numPatches: number;
  dim: number;
  budget: number;
  /** Rewritten rows per step besides the chosen one: uniform in [min, max]. */
  rewrites?: [number, number];
  /** Marker value in feature 0 of the key patch. */
  marker?: number;
  seed?: number;
  /** Reward to return at this step index (for error tests). */
  badRewardAt?: number;
}

export class FakeZoomEnv implements ZoomEnv<FakeInfo> {
  readonly N: number;
  readonly d: number;
  readonly T: number;
  private rng: Rng;
  private S: Float32Array;
  private V: Float32Array;
  private mask: Uint8Array;
  private t = 0;
  private started = false;
  private done = false;
  key = 0;
  private found = false;
  /** Copies of S_t at each decision of the current episode (for checks). */
  history: Float32Array[] = [];

  constructor(private readonly opts: FakeEnvOptions) {
    this.N = opts.numPatches;
    this.d = opts.dim;
    this.T = opts.budget;
    this.rng = createRng(opts.seed ?? 0);
    this.S = new Float32Array(this.N * this.d);
    this.V = new Float32Array(this.N * this.d);
    this.mask = new Uint8Array(this.N);
  }

  private obs(): ZoomObservation {
    return { numPatches: this.N, dim: this.d, t: this.t, budget: this.T, actionMask: this.mask, state: this.S };
  }

  reset(options: { seed?: number } = {}) {
    if (options.seed !== undefined) this.rng = createRng(options.seed);
    const { N, d } = this;
    for (let i = 0; i < N * d; i++) {
      this.S[i] = this.rng.normal();
      this.V[i] = this.rng.normal();
    }
    this.key = this.rng.int(N);
    for (let i = 0; i < N; i++) this.S[i * d] = this.rng.normal() * 0.5;
    this.S[this.key * d] = this.opts.marker ?? 3;
    this.mask.fill(1);
    this.t = 0;
    this.started = true;
    this.done = false;
    this.found = false;
    this.history = [this.S.slice()];
    return { observation: this.obs(), info: { actionMask: this.mask.slice() } };
  }

  step(action: number): ZoomStepResult<FakeInfo> {
    if (!this.started) throw new Error('Call reset before step.');
    if (this.done) throw new Error('The episode has ended; call reset.');
    const { N, d } = this;
    if (!(Number.isInteger(action) && action >= 0 && action < N)) throw new Error(`action ${action} out of range`);
    if (!this.mask[action]) throw new Error(`action ${action} already chosen`);
    this.t += 1;
    this.mask[action] = 0;
    const [lo, hi] = this.opts.rewrites ?? [0, 0];
    const k = lo + this.rng.int(hi - lo + 1);
    const candidates: number[] = [];
    for (let i = 0; i < N; i++) if (this.mask[i] && i !== action) candidates.push(i);
    this.rng.shuffle(candidates);
    const C = candidates.slice(0, k);
    const rows = [action, ...C];
    const values = new Float32Array(rows.length * d);
    for (let j = 0; j < d; j++) this.S[action * d + j] = this.V[action * d + j];
    for (const i of C) {
      for (let j = 0; j < d; j++) this.S[i * d + j] = 0.5 * (this.S[i * d + j] + this.V[action * d + j]) + 0.1 * this.rng.normal();
    }
    rows.forEach((r, q) => values.set(this.S.subarray(r * d, (r + 1) * d), q * d));
    if (action === this.key) this.found = true;
    let reward = Math.log(this.found ? 0.95 : 0.5);
    if (this.opts.badRewardAt === this.t - 1) reward = Number.NaN;
    const terminated = this.t === this.T;
    this.done = terminated;
    if (!terminated) this.history.push(this.S.slice());
    return {
      observation: this.obs(),
      reward,
      terminated,
      truncated: false,
      info: { actionMask: this.mask.slice(), changedRows: Int32Array.from(rows), changedValues: values, success: this.found },
    };
  }
}
