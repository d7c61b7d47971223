/**
 * sasha-wsi/ppo: the SASHA zoom policy and its training: actor-critic networks, GAE, the
 * episode log and version table, the event-sourced PPO update, the PPO trainer, callbacks,
 * metrics logging, and baseline policies.
 *
 * @packageDocumentation
 */
export type {
  ZoomObservation,
  ZoomStepChanges,
  ZoomResetResult,
  ZoomStepResult,
  ZoomEnv,
  ZoomEnvProvider,
  SelectionMode,
  SelectOptions,
  ActionChoice,
  ZoomTeacher,
} from './types.js';
export {
  DEFAULT_ACTOR_CRITIC_CONFIG,
  DEFAULT_PPO_CONFIG,
  PPO_PRESETS,
  resolveActorCriticConfig,
  resolvePpoConfig,
  type ActorCriticConfig,
  type PpoConfig,
  type PpoUpdateMode,
} from './defaults.js';
export { computeGae, normalizeAdvantages, explainedVariance, type GaeInput, type GaeOutput } from './gae.js';
export { ActorCritic, ACTOR_CRITIC_FORMAT, type CriticRowTerms } from './actor_critic.js';
export { RolloutBuffer, EpisodeLog, VersionTable, buildRolloutBatch, type RolloutBatch, type StepChunk } from './rollout_buffer.js';
export type { PpoLossResult } from './ppo_loss.js';
export { eventSourcedPpoLoss, evaluateEventSourced, VersionRows, type EventSourcedOptions, type PolicyEvaluation } from './event_sourced.js';
export {
  ActorCriticPolicy,
  RandomPolicy,
  TopAttentionPolicy,
  GreedyAttentionPolicy,
  selectFromLogits,
  maskedLogProb,
  playEpisode,
  type ZoomPolicy,
  type AttentionScorer,
  type PlayEpisodeOptions,
  type EpisodeResult,
} from './policies.js';
export {
  CallbackList,
  checkpointCallback,
  earlyStopOnReward,
  evalCallback,
  type TrainerCallback,
  type CallbackContext,
  type StepContext,
  type UpdateContext,
  type HookResult,
  type EvalCallback,
} from './callbacks.js';
export { PPO_METRICS, MemoryLogger, LineLogger, type Logger, type LoggedValue } from './logger.js';
export {
  PPO,
  PPO_FORMAT,
  runPpoUpdate,
  type PpoOptions,
  type LearnOptions,
  type PpoLoadOptions,
  type PredictOptions,
  type UpdateMetrics,
  type PpoUpdateArgs,
} from './ppo.js';
