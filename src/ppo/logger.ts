/**
 * Training metrics under CleanRL's names, through an injectable logger. The library prints
 * nothing by default.
 *
 * @packageDocumentation
 */

/**
 * The keys PPO records after every update, as CleanRL's `ppo.py` names them, so that curves
 * can be compared with CleanRL runs.
 * @category PPO
 */
export const PPO_METRICS = Object.freeze({
  /** Clipped surrogate loss (last epoch). */
  policyLoss: 'losses/policy_loss',
  /** Critic loss (last epoch). */
  valueLoss: 'losses/value_loss',
  /** Mean entropy of the masked distributions (last epoch). */
  entropy: 'losses/entropy',
  /** `mean(-log r)` (last epoch). */
  oldApproxKl: 'losses/old_approx_kl',
  /** `mean((r - 1) - log r)` (last epoch). */
  approxKl: 'losses/approx_kl',
  /** Fraction of samples whose ratio was clipped (mean over epochs). */
  clipFraction: 'losses/clipfrac',
  /** `1 - Var[R - V_old] / Var[R]` of the batch. */
  explainedVariance: 'losses/explained_variance',
  /** Mean undiscounted return of the update's episodes. */
  episodicReturn: 'charts/episodic_return',
  /** Mean length of the update's episodes. */
  episodicLength: 'charts/episodic_length',
  /** Mean final reward (in SASHA: minus the final cross-entropy). */
  finalReward: 'charts/final_reward',
  /** The actor's learning rate. */
  learningRate: 'charts/learning_rate',
  /** Environment steps per second, rollout and update included. */
  sps: 'charts/SPS',
  /** Global gradient norm of the actor before clipping (last epoch). */
  actorGradNorm: 'train/actor_grad_norm',
  /** Global gradient norm of the critic before clipping (last epoch). */
  criticGradNorm: 'train/critic_grad_norm',
  /** Epochs run in the update (fewer than `updateEpochs` when `targetKl` stopped it). */
  epochs: 'train/epochs',
});

/**
 * Receives scalar metrics: `record` collects values, `dump` closes a row at a step count.
 * @category PPO
 */
export interface Logger {
  /** Records the latest value of `key`. */
  record(key: string, value: number): void;
  /** Emits the values recorded since the last dump, tagged with `step` (environment steps). */
  dump(step: number): void;
}

/** One logged value. @category PPO */
export interface LoggedValue {
  step: number;
  value: number;
}

/**
 * Keeps every dumped value in memory, by key.
 * @example
 * ```ts
 * const logger = new MemoryLogger();
 * new PPO({ policy: { dim: 384 }, env, logger });
 * logger.latest('losses/approx_kl');
 * ```
 * @category PPO
 */
export class MemoryLogger implements Logger {
  /** Dumped values by key, in order. */
  readonly history = new Map<string, LoggedValue[]>();
  private pending = new Map<string, number>();

  record(key: string, value: number): void {
    this.pending.set(key, value);
  }

  dump(step: number): void {
    for (const [key, value] of this.pending) {
      const list = this.history.get(key) ?? [];
      list.push({ step, value });
      this.history.set(key, list);
    }
    this.pending = new Map();
  }

  /** The last dumped value of `key` (undefined if never logged). */
  latest(key: string): number | undefined {
    const list = this.history.get(key);
    return list?.[list.length - 1]?.value;
  }

  /** Every dumped value of `key`. */
  values(key: string): number[] {
    return (this.history.get(key) ?? []).map((v) => v.value);
  }
}

/**
 * Writes one line per dump through `write`: `format: 'text'` gives
 * `step 1200 | losses/policy_loss -0.0123 | ...`, `format: 'jsonl'` one JSON object per line
 * (`{"step":1200,"losses/policy_loss":-0.0123,...}`).
 * @example
 * ```ts
 * const logger = new LineLogger((line) => process.stderr.write(line + '\n'));
 * ```
 * @category PPO
 */
export class LineLogger implements Logger {
  private pending = new Map<string, number>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly format: 'text' | 'jsonl' = 'text',
  ) {}

  record(key: string, value: number): void {
    this.pending.set(key, value);
  }

  dump(step: number): void {
    if (this.pending.size === 0) return;
    if (this.format === 'jsonl') {
      this.write(JSON.stringify({ step, ...Object.fromEntries(this.pending) }));
    } else {
      const parts = [...this.pending].map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`);
      this.write([`step ${step}`, ...parts].join(' | '));
    }
    this.pending = new Map();
  }
}
