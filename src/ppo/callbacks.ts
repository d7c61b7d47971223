/**
 * Hooks into {@link PPO.learn}, in the manner of Stable-Baselines3's callbacks: training
 * start and end, each rollout, each environment step, each update. A hook that returns
 * `false` stops training after the current step or update.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';
import type { PPO } from './ppo.js';

/** What every hook receives. @category PPO */
export interface CallbackContext {
  /** The trainer. */
  ppo: PPO;
  /** Environment steps taken by the trainer so far (all `learn` calls). */
  numTimesteps: number;
  /** Updates completed by the trainer so far (all `learn` calls). */
  numUpdates: number;
}

/** What {@link TrainerCallback.onStep} receives. @category PPO */
export interface StepContext extends CallbackContext {
  action: number;
  reward: number;
  terminated: boolean;
  truncated: boolean;
}

/** What {@link TrainerCallback.onUpdateEnd} receives. @category PPO */
export interface UpdateContext extends CallbackContext {
  /** The update's metrics under {@link PPO_METRICS} keys. */
  metrics: Readonly<Record<string, number>>;
  /** Returns of the update's episodes. */
  episodeReturns: readonly number[];
}

/** Result of a hook: `false` stops training. @category PPO */
export type HookResult = boolean | void | Promise<boolean | void>;

/**
 * A set of optional hooks.
 * @category PPO
 */
export interface TrainerCallback {
  onTrainingStart?(ctx: CallbackContext): void | Promise<void>;
  onRolloutStart?(ctx: CallbackContext): void | Promise<void>;
  /** After every environment step; `false` stops after this step (no update of the partial rollout). */
  onStep?(ctx: StepContext): HookResult;
  onRolloutEnd?(ctx: CallbackContext): void | Promise<void>;
  /** After every update; `false` stops training. */
  onUpdateEnd?(ctx: UpdateContext): HookResult;
  onTrainingEnd?(ctx: CallbackContext): void | Promise<void>;
}

/**
 * Runs several callbacks in order; a stop from any of them stops training.
 * @category PPO
 */
export class CallbackList implements TrainerCallback {
  readonly callbacks: readonly TrainerCallback[];

  constructor(callbacks: readonly TrainerCallback[]) {
    this.callbacks = callbacks;
  }

  async onTrainingStart(ctx: CallbackContext): Promise<void> {
    for (const c of this.callbacks) await c.onTrainingStart?.(ctx);
  }

  async onRolloutStart(ctx: CallbackContext): Promise<void> {
    for (const c of this.callbacks) await c.onRolloutStart?.(ctx);
  }

  async onStep(ctx: StepContext): Promise<boolean> {
    let go = true;
    for (const c of this.callbacks) if (c.onStep && (await c.onStep(ctx)) === false) go = false;
    return go;
  }

  async onRolloutEnd(ctx: CallbackContext): Promise<void> {
    for (const c of this.callbacks) await c.onRolloutEnd?.(ctx);
  }

  async onUpdateEnd(ctx: UpdateContext): Promise<boolean> {
    let go = true;
    for (const c of this.callbacks) if (c.onUpdateEnd && (await c.onUpdateEnd(ctx)) === false) go = false;
    return go;
  }

  async onTrainingEnd(ctx: CallbackContext): Promise<void> {
    for (const c of this.callbacks) await c.onTrainingEnd?.(ctx);
  }
}

/**
 * Saves the trainer every `saveFreq` updates through `save` (which chooses the target, for
 * instance a new directory per update).
 * @example
 * ```ts
 * checkpointCallback({ saveFreq: 10, save: (ppo, n) => ppo.save(fileHandler(`ckpt/${n}`)) });
 * ```
 * @category PPO
 */
export function checkpointCallback(options: { saveFreq: number; save: (ppo: PPO, numUpdates: number) => Promise<unknown> }): TrainerCallback {
  const { saveFreq, save } = options;
  if (!(Number.isInteger(saveFreq) && saveFreq >= 1)) throw new ValueError(`Expected saveFreq to be a positive integer, but got ${saveFreq}.`);
  return {
    async onUpdateEnd(ctx) {
      if (ctx.numUpdates % saveFreq === 0) await save(ctx.ppo, ctx.numUpdates);
    },
  };
}

/**
 * Stops training once the mean return of the last `window` episodes reaches `threshold`.
 * @category PPO
 */
export function earlyStopOnReward(options: { threshold: number; window?: number }): TrainerCallback {
  const { threshold, window = 10 } = options;
  if (!(Number.isInteger(window) && window >= 1)) throw new ValueError(`Expected window to be a positive integer, but got ${window}.`);
  const recent: number[] = [];
  return {
    onUpdateEnd(ctx) {
      recent.push(...ctx.episodeReturns);
      while (recent.length > window) recent.shift();
      if (recent.length < window) return true;
      return recent.reduce((a, b) => a + b, 0) / recent.length < threshold;
    },
  };
}

/** State exposed by {@link evalCallback}. @category PPO */
export interface EvalCallback extends TrainerCallback {
  /** Best score so far (NaN before the first evaluation). */
  readonly bestScore: number;
  /** Update count at which the best score was reached (-1 before). */
  readonly bestUpdate: number;
}

/**
 * Evaluates the trainer every `evalFreq` updates and calls `onNewBest` when the score improves
 * (model selection; SB3's `EvalCallback`). `mode: 'min'` (default) treats lower as better, as
 * the reference's selection criterion `(2 - AUC - F1) + CE`.
 * @example
 * ```ts
 * const best = evalCallback({ evalFreq: 50, evaluate: (ppo) => validationScore(ppo), onNewBest: (ppo) => ppo.save(h) });
 * ```
 * @category PPO
 */
export function evalCallback(options: {
  evalFreq: number;
  evaluate: (ppo: PPO) => number | Promise<number>;
  onNewBest?: (ppo: PPO, score: number, numUpdates: number) => unknown | Promise<unknown>;
  mode?: 'min' | 'max';
}): EvalCallback {
  const { evalFreq, evaluate, onNewBest, mode = 'min' } = options;
  if (!(Number.isInteger(evalFreq) && evalFreq >= 1)) throw new ValueError(`Expected evalFreq to be a positive integer, but got ${evalFreq}.`);
  const state = { bestScore: Number.NaN, bestUpdate: -1 };
  return {
    get bestScore() {
      return state.bestScore;
    },
    get bestUpdate() {
      return state.bestUpdate;
    },
    async onUpdateEnd(ctx) {
      if (ctx.numUpdates % evalFreq !== 0) return;
      const score = await evaluate(ctx.ppo);
      const better = Number.isNaN(state.bestScore) || (mode === 'min' ? score < state.bestScore : score > state.bestScore);
      if (better && Number.isFinite(score)) {
        state.bestScore = score;
        state.bestUpdate = ctx.numUpdates;
        await onNewBest?.(ctx.ppo, score, ctx.numUpdates);
      }
    },
  };
}
