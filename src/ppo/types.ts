/**
 * Types shared by the PPO component: the part of the SASHA environment a zoom policy and the
 * trainer rely on, action choices, and the rollout batch.
 *
 * The environment types are structural: `WsiEnv` of `src/mdp` satisfies {@link ZoomEnv}, and so
 * does any stand-in with the same observation and step contract (tests use a small fake).
 *
 * @packageDocumentation
 */
import type { ResetResult, StepResult } from '../mdp/env.js';

/**
 * What a zoom policy sees at step t: the state `S_t` of the slide and which patches may still
 * be chosen. This is the observation of `WsiEnv`.
 * @category PPO
 */
export interface ZoomObservation {
  /** N, the number of low-resolution patches of the slide. */
  readonly numPatches: number;
  /** d, the feature width. */
  readonly dim: number;
  /** Steps taken so far in the episode (0 after `reset`). */
  readonly t: number;
  /** T = ceil(f N), the number of steps of the episode. */
  readonly budget: number;
  /** [N], 1 = the patch may be chosen, 0 = already chosen. */
  readonly actionMask: Uint8Array;
  /**
   * S_t, [N * d] row-major. A read-only view, valid until the next `step` or `reset` of the
   * environment: copy what must outlive it.
   */
  readonly state: Float32Array;
  /** M, the width of `rowScores` (absent when the environment gives no scores). */
  readonly numScores?: number;
  /** The frozen classifier's attention logits of every row, [N * M] (a view like `state`). */
  readonly rowScores?: Float32Array;
  /** [N], 1 for every row that no longer holds its low-resolution feature (a view like `state`). */
  readonly changed?: Uint8Array;
}

/**
 * The rows of the state a step rewrote: the chosen patch a (now holding its high-resolution
 * feature V(a)) and the set C the targeted state update rewrote. This is the part of `WsiInfo`
 * the policy and the rollout buffer read.
 * @category PPO
 */
export interface ZoomStepChanges {
  /** Rows whose state changed at this step (a and C), distinct. */
  readonly changedRows: Int32Array;
  /** Their new values, [|changedRows| * d] row-major, in the order of `changedRows`. */
  readonly changedValues: Float32Array;
  /** The classifier's attention logits of the changed rows, [|changedRows| * M] (with `rowScores`). */
  readonly changedScores?: Float32Array;
}

/**
 * Result of {@link ZoomEnv.reset}: Gymnasium's reset result on a zoom observation.
 * @category PPO
 */
export type ZoomResetResult<Info = unknown> = ResetResult<ZoomObservation, Info>;

/**
 * Result of {@link ZoomEnv.step} (Gymnasium v0.26 semantics): `reward` is r_t (in SASHA
 * `-CE(y, classify(S_{t+1}))`, finite); `terminated` means the budget is spent (t == T, not
 * bootstrapped); `truncated` means an outside limit cut the episode (bootstrapped with the
 * critic's value of the next state).
 * @category PPO
 */
export type ZoomStepResult<Info extends ZoomStepChanges = ZoomStepChanges> = StepResult<ZoomObservation, Info>;

/**
 * The environment contract PPO trains on: Gymnasium-style `reset` / `step` over a slide, one
 * patch chosen per step. `WsiEnv` implements it.
 * @category PPO
 */
export interface ZoomEnv<Info extends ZoomStepChanges = ZoomStepChanges, ResetInfo = unknown> {
  /** Starts an episode; `seed` reseeds the environment's own generator. */
  reset(options?: { seed?: number }): ZoomResetResult<ResetInfo>;
  /**
   * Zooms into patch `action`. `v` (optional, [d]) supplies V(a) when the environment computes
   * it lazily (inference from pixels); training environments hold V already.
   */
  step(action: number, v?: Float32Array): ZoomStepResult<Info>;
}

/**
 * Builds (or hands out) the environments of one PPO update, e.g. one per training slide: it is
 * called with `index` 0, 1, ... up to `numEnvsPerUpdate - 1` for every update, and may return
 * null for an index above 0 when the update has fewer environments (the end of an epoch). The
 * provider owns the environments it returns (PPO never closes them).
 * @category PPO
 */
export type ZoomEnvProvider = (update: number, index: number) => ZoomEnv | null | Promise<ZoomEnv | null>;

/** How a policy turns scores into an action. @category PPO */
export type SelectionMode = 'sample' | 'argmax' | 'topK' | 'topP';

/** Options of an action choice. @category PPO */
export interface SelectOptions {
  /**
   * `'sample'` (training), `'argmax'` (evaluation, the reference's default), `'topK'` (sample
   * among the k best, softmax over them) or `'topP'` (sample in the smallest set of best
   * patches whose probability exceeds p). Default `'argmax'`.
   */
  mode?: SelectionMode;
  /** k of `'topK'` (default 3, the reference's value). */
  topK?: number;
  /** p of `'topP'` (default 0.3, the reference's value). */
  topP?: number;
  /** Random numbers for the sampling modes (a policy falls back to its own seeded generator). */
  rng?: { next(): number };
}

/** One chosen action. @category PPO */
export interface ActionChoice {
  /** The chosen patch index, in [0, N). */
  action: number;
  /**
   * `log pi(action | S_t)` under the policy's masked distribution (chosen patches excluded);
   * 0 for deterministic baselines.
   */
  logProb: number;
}

/**
 * A teacher for imitation ({@link PPO.imitate}): chooses the action at an observation of an
 * environment, possibly from what only the training environment knows (a label-aware
 * lookahead, for example).
 * @category PPO
 */
export type ZoomTeacher = (env: ZoomEnv, observation: ZoomObservation) => number;
