/**
 * sasha-wsi/mdp: a Gymnasium-style environment interface, spaces, the SASHA WSI environment
 * with incremental scoring, a vector env and `checkEnv`.
 *
 * @packageDocumentation
 */
export type { Env, ResetOptions, ResetResult, StepResult } from './env.js';
export { Discrete, type Space } from './spaces.js';
export type { StateClassifier, WsiEnvConfig, WsiEnvOptions, WsiInfo, WsiObservation } from './types.js';
export { DEFAULT_WSI_ENV_CONFIG, resolveWsiEnvConfig, budgetSteps } from './defaults.js';
export { RowScoreCache, IncrementalAttentionPool, type RowScorer, type PoolSnapshot } from './incremental.js';
export { WsiEnv, WsiObservationSpace } from './wsi_env.js';
export {
  SyncVectorEnv,
  type AutoresetMode,
  type VectorStepResult,
  type VectorResetResult,
} from './vector_env.js';
export { checkEnv, EnvCheckError, type CheckEnvOptions, type CheckEnvReport } from './check_env.js';
