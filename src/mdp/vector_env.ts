/**
 * Several environments stepped side by side (Gymnasium's `SyncVectorEnv`): for SASHA, several
 * slides' episodes at once, each with its own N and T.
 *
 * @packageDocumentation
 */
import { ShapeError, StateError, ValueError } from '../core/errors.js';
import type { Env, ResetOptions } from './env.js';

/**
 * When a finished sub-environment starts its next episode.
 * - `'next-step'` (Gymnasium's default): the step after the one that ended an episode resets
 *   that sub-env; its action is ignored and it returns the reset observation, reward 0,
 *   `terminated = truncated = false` and the reset info.
 * - `'disabled'`: a finished sub-env waits for `reset({ options: { resetMask } })`; until
 *   then its action must be `null`, and it reports its final observation again with reward 0
 *   and its final flags.
 * @category MDP
 */
export type AutoresetMode = 'next-step' | 'disabled';

/** What {@link SyncVectorEnv.step} returns (one entry per sub-env). @category MDP */
export interface VectorStepResult<Obs, Info> {
  observations: Obs[];
  rewards: Float64Array;
  terminations: boolean[];
  truncations: boolean[];
  infos: Info[];
}

/** What {@link SyncVectorEnv.reset} returns. @category MDP */
export interface VectorResetResult<Obs, Info> {
  observations: Obs[];
  infos: Info[];
}

/**
 * Steps several environments in turn, in one process.
 *
 * @example
 * ```ts
 * const venv = new SyncVectorEnv(slides.map((s) => new WsiEnv({ classifier, fS, lowRes: s.z, aggregated: s.v, label: s.y })));
 * let { observations } = venv.reset({ seed: 0 });       // sub-env i is seeded with 0 + i
 * const r = venv.step(venv.envs.map((e, i) => e.actionSpace.sample(observations[i].actionMask)));
 * ```
 * @category MDP
 */
export class SyncVectorEnv<Obs, Act, Info> {
  /** The sub-environments. */
  readonly envs: readonly Env<Obs, Act, Info>[];
  /** The number of sub-environments. */
  readonly numEnvs: number;
  /** See {@link AutoresetMode}. */
  readonly autoreset: AutoresetMode;
  private readonly lastObs: (Obs | undefined)[];
  private readonly lastInfo: (Info | undefined)[];
  private readonly finished: boolean[];
  private readonly lastFlags: { terminated: boolean; truncated: boolean }[];
  private started = false;

  /**
   * @param envs the sub-environments (owned by the vector env from now on: `close` closes them).
   * @param opts `autoreset` (default `'next-step'`).
   */
  constructor(envs: readonly Env<Obs, Act, Info>[], opts: { autoreset?: AutoresetMode } = {}) {
    if (!Array.isArray(envs) || envs.length === 0) throw new ValueError('Expected at least one environment.');
    const autoreset = opts.autoreset ?? 'next-step';
    if (autoreset !== 'next-step' && autoreset !== 'disabled') {
      throw new ValueError(`Expected autoreset to be 'next-step' or 'disabled', but got ${JSON.stringify(autoreset)}.`);
    }
    this.envs = [...envs];
    this.numEnvs = envs.length;
    this.autoreset = autoreset;
    this.lastObs = new Array(this.numEnvs);
    this.lastInfo = new Array(this.numEnvs);
    this.finished = new Array(this.numEnvs).fill(false);
    this.lastFlags = Array.from({ length: this.numEnvs }, () => ({ terminated: false, truncated: false }));
  }

  /**
   * Resets every sub-env (or those with `options.resetMask[i]` true). With `seed`, sub-env i
   * gets `seed + i`.
   */
  reset(opts: ResetOptions & { options?: { resetMask?: readonly boolean[] } } = {}): VectorResetResult<Obs, Info> {
    const mask = opts.options?.resetMask;
    if (mask !== undefined && mask.length !== this.numEnvs) {
      throw new ShapeError(`Expected resetMask of length ${this.numEnvs}, but got ${mask.length}.`);
    }
    if (mask !== undefined && !this.started) throw new StateError('Call reset() without a resetMask first.');
    for (let i = 0; i < this.numEnvs; i++) {
      if (mask && !mask[i]) continue;
      const r = this.envs[i].reset(opts.seed === undefined ? {} : { seed: opts.seed + i });
      this.lastObs[i] = r.observation;
      this.lastInfo[i] = r.info;
      this.finished[i] = false;
      this.lastFlags[i] = { terminated: false, truncated: false };
    }
    this.started = true;
    return { observations: this.lastObs.slice() as Obs[], infos: this.lastInfo.slice() as Info[] };
  }

  /**
   * Steps every sub-env with its action.
   * @param actions one per sub-env; `null` for a finished sub-env in `'disabled'` mode (ignored in `'next-step'` mode).
   * @throws StateError before `reset`, or when a finished sub-env gets an action in `'disabled'` mode.
   */
  step(actions: readonly (Act | null)[]): VectorStepResult<Obs, Info> {
    if (!this.started) throw new StateError('Call reset() before step().');
    if (actions.length !== this.numEnvs) throw new ShapeError(`Expected ${this.numEnvs} actions, but got ${actions.length}.`);
    for (let i = 0; i < this.numEnvs; i++) {
      if (this.finished[i] && this.autoreset === 'disabled' && actions[i] !== null) {
        throw new StateError(`Sub-env ${i} has finished its episode: pass null as its action, or reset it with options.resetMask.`);
      }
      if (!this.finished[i] && actions[i] === null) {
        throw new ValueError(`Expected an action for sub-env ${i}, which is still running, but got null.`);
      }
    }
    const rewards = new Float64Array(this.numEnvs);
    const terminations: boolean[] = [];
    const truncations: boolean[] = [];
    for (let i = 0; i < this.numEnvs; i++) {
      const env = this.envs[i];
      if (this.finished[i]) {
        if (this.autoreset === 'next-step') {
          const r = env.reset();
          this.lastObs[i] = r.observation;
          this.lastInfo[i] = r.info;
          this.finished[i] = false;
          this.lastFlags[i] = { terminated: false, truncated: false };
        }
        terminations.push(this.lastFlags[i].terminated);
        truncations.push(this.lastFlags[i].truncated);
        continue;
      }
      const r = env.step(actions[i] as Act);
      this.lastObs[i] = r.observation;
      this.lastInfo[i] = r.info;
      rewards[i] = r.reward;
      terminations.push(r.terminated);
      truncations.push(r.truncated);
      this.lastFlags[i] = { terminated: r.terminated, truncated: r.truncated };
      this.finished[i] = r.terminated || r.truncated;
    }
    return {
      observations: this.lastObs.slice() as Obs[],
      rewards,
      terminations,
      truncations,
      infos: this.lastInfo.slice() as Info[],
    };
  }

  /** Closes every sub-env. */
  close(): void {
    for (const e of this.envs) e.close();
  }
}
