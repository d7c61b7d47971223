/**
 * `checkEnv`: checks that an environment follows the {@link Env} contract (as Gymnasium's
 * `check_env` does for Python envs).
 *
 * @packageDocumentation
 */
import { SashaError, StateError } from '../core/errors.js';
import type { Env } from './env.js';
import { Discrete } from './spaces.js';

/** The env broke its contract; the message lists every problem found. @category MDP */
export class EnvCheckError extends SashaError {}

/** Options of {@link checkEnv}. @category MDP */
export interface CheckEnvOptions {
  /** The most steps to take in the test episode (default 10,000). */
  maxSteps?: number;
  /** The seed of the test episodes (default 0). */
  seed?: number;
}

/** What {@link checkEnv} returns when the env passes. @category MDP */
export interface CheckEnvReport {
  /** Steps of the test episode. */
  steps: number;
  /** Legal but doubtful behaviour (the episode did not end within `maxSteps`, ...). */
  warnings: string[];
}

/**
 * Checks an environment:
 * - it has `actionSpace` and `observationSpace` (with `contains`, `sample`, `seed`), `reset`,
 *   `step` and `close`;
 * - `reset({ seed })` returns `{ observation, info }`, the observation inside the space;
 * - `step` returns `{ observation, reward, terminated, truncated, info }` with a finite number
 *   reward, boolean flags, an object info and an observation inside the space;
 * - two episodes with the same seed and actions give the same observations and rewards;
 * - stepping after the episode ended throws a `StateError`;
 * - for a {@link Discrete} action space, an out-of-range action throws.
 * Actions are drawn from the action space, under `info.actionMask` when the info has one.
 * The env is left after a finished episode (call `reset` to use it again).
 *
 * @returns a report with the episode length and warnings.
 * @throws EnvCheckError listing every failed check.
 * @example
 * ```ts
 * checkEnv(new WsiEnv({ classifier, fS, lowRes: z, aggregated: v, label: 0 })); // { steps: T, warnings: [] }
 * ```
 * @category MDP
 */
export function checkEnv<Obs, Act, Info>(env: Env<Obs, Act, Info>, opts: CheckEnvOptions = {}): CheckEnvReport {
  const maxSteps = opts.maxSteps ?? 10_000;
  const seed = opts.seed ?? 0;
  const problems: string[] = [];
  const warnings: string[] = [];
  const fail = (msg: string) => problems.push(msg);
  const done = (): never => {
    throw new EnvCheckError(`checkEnv found ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  };

  // Interface.
  for (const key of ['reset', 'step', 'close'] as const) {
    if (typeof (env as unknown as Record<string, unknown>)?.[key] !== 'function') fail(`env.${key} is not a function.`);
  }
  for (const key of ['actionSpace', 'observationSpace'] as const) {
    const space = (env as unknown as Record<string, Record<string, unknown> | undefined>)?.[key];
    if (!space) fail(`env.${key} is missing.`);
    else for (const m of ['contains', 'sample', 'seed']) if (typeof space[m] !== 'function') fail(`env.${key}.${m} is not a function.`);
  }
  if (problems.length > 0) done();

  // Reset.
  const r0 = env.reset({ seed });
  if (r0 === null || typeof r0 !== 'object' || !('observation' in r0) || !('info' in r0)) {
    fail('reset() must return { observation, info }.');
    done();
  }
  if (!env.observationSpace.contains(r0.observation)) fail('The observation returned by reset() is not in observationSpace.');
  if (r0.info === null || typeof r0.info !== 'object') fail('reset() must return an info object.');
  const first = snapshot(r0.observation);

  // One episode, recording the actions.
  const actions: Act[] = [];
  const rewards: number[] = [];
  const observations: unknown[] = [];
  let info: Info = r0.info;
  let ended = false;
  for (let t = 0; t < maxSteps && problems.length === 0; t++) {
    const action = env.actionSpace.sample(maskOf(info));
    if (!env.actionSpace.contains(action)) fail(`actionSpace.sample() returned ${String(action)}, which the space does not contain.`);
    const r = env.step(action);
    const keys = ['observation', 'reward', 'terminated', 'truncated', 'info'];
    if (r === null || typeof r !== 'object' || keys.some((k) => !(k in r))) {
      fail(`step() must return { ${keys.join(', ')} }.`);
      break;
    }
    if (typeof r.reward !== 'number' || !Number.isFinite(r.reward)) fail(`step() returned a reward that is not a finite number: ${String(r.reward)}.`);
    if (typeof r.terminated !== 'boolean' || typeof r.truncated !== 'boolean') fail('step() must return boolean terminated and truncated.');
    if (r.info === null || typeof r.info !== 'object') fail('step() must return an info object.');
    if (!env.observationSpace.contains(r.observation)) fail(`The observation of step ${t + 1} is not in observationSpace.`);
    actions.push(action);
    rewards.push(r.reward);
    observations.push(snapshot(r.observation));
    info = r.info;
    if (r.terminated || r.truncated) {
      ended = true;
      break;
    }
  }
  if (problems.length > 0) done();
  if (!ended) warnings.push(`The episode did not end within ${maxSteps} steps.`);

  // Stepping after the end must throw a StateError.
  if (ended) {
    let threw: unknown = null;
    try {
      env.step(actions[0]);
    } catch (e) {
      threw = e;
    }
    if (!(threw instanceof StateError)) fail('step() after the episode ended must throw a StateError.');
  }

  // Determinism: same seed, same actions, same episode.
  const r1 = env.reset({ seed });
  if (!deepEqual(snapshot(r1.observation), first)) fail('reset() with the same seed gave a different observation.');
  for (let t = 0; t < actions.length; t++) {
    const r = env.step(actions[t]);
    if (!Object.is(r.reward, rewards[t]) || !deepEqual(snapshot(r.observation), observations[t])) {
      fail(`The same seed and actions gave a different result at step ${t + 1}: the env is not deterministic.`);
      break;
    }
  }

  // Invalid actions.
  if (env.actionSpace instanceof Discrete) {
    const space = env.actionSpace;
    env.reset({ seed });
    for (const bad of [space.start + space.n, space.start - 1, space.start + 0.5]) {
      let threw = false;
      try {
        env.step(bad as Act);
      } catch {
        threw = true;
      }
      if (!threw) fail(`step(${bad}) with an action outside actionSpace did not throw.`);
    }
  }
  if (problems.length > 0) done();
  return { steps: actions.length, warnings };
}

function maskOf(info: unknown): Uint8Array | undefined {
  const m = (info as { actionMask?: unknown } | null)?.actionMask;
  return m instanceof Uint8Array ? m : undefined;
}

/** A deep copy (typed arrays copied), so later steps cannot change what was recorded. */
function snapshot<T>(x: T): T {
  return structuredClone(x);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<number>;
    const y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length || a.constructor !== b.constructor) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}
