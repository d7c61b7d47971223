/**
 * The environment interface, with Gymnasium (v0.26+) semantics and named results:
 * `reset({ seed })` returns `{ observation, info }`; `step(action)` returns
 * `{ observation, reward, terminated, truncated, info }`.
 *
 * `terminated` means the MDP reached a terminal state (for the WSI env: the zoom budget T is
 * spent), so a trainer must not bootstrap from it; `truncated` means an outside limit cut the
 * episode short, so a trainer should bootstrap from the value of the last observation.
 *
 * @packageDocumentation
 */
import type { Space } from './spaces.js';

/** Options of {@link Env.reset}. @category MDP */
export interface ResetOptions {
  /** Seeds the env's own random generator (the only way to seed an env). */
  seed?: number;
  /** Env-specific options. */
  options?: Record<string, unknown>;
}

/** What {@link Env.reset} returns. @category MDP */
export interface ResetResult<Obs, Info> {
  observation: Obs;
  info: Info;
}

/** What {@link Env.step} returns. @category MDP */
export interface StepResult<Obs, Info> {
  /** The observation after the action. */
  observation: Obs;
  /** The reward of the transition. */
  reward: number;
  /** A terminal state of the MDP was reached: do not bootstrap. */
  terminated: boolean;
  /** An outside limit ended the episode: bootstrap from `observation`. */
  truncated: boolean;
  /** Diagnostics (never needed to act). */
  info: Info;
}

/**
 * An environment: the agent-facing side of an MDP.
 *
 * Rules every implementation follows: `step` before `reset`, or after the episode ended,
 * throws a `StateError`; an action outside `actionSpace` throws a `ValueError`; `reset` with
 * the same seed gives the same episode for the same actions.
 *
 * @example
 * ```ts
 * let { observation, info } = env.reset({ seed: 0 });
 * for (;;) {
 *   const action = env.actionSpace.sample(info.actionMask);
 *   const r = env.step(action);
 *   if (r.terminated || r.truncated) break;
 *   info = r.info;
 * }
 * ```
 * @category MDP
 */
export interface Env<Obs, Act, Info> {
  /** The valid actions. */
  readonly actionSpace: Space<Act>;
  /** The valid observations. */
  readonly observationSpace: Space<Obs>;
  /** Starts an episode. */
  reset(opts?: ResetOptions): ResetResult<Obs, Info>;
  /** Applies one action. */
  step(action: Act): StepResult<Obs, Info>;
  /** Frees what the env holds. It cannot be used afterwards. */
  close(): void;
}
