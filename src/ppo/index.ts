/**
 * The SASHA zoom policy and its training: actor-critic networks, GAE, the episode log and
 * version table, the event-sourced PPO update (and its dense reference), the PPO trainer,
 * callbacks, metrics logging, and baseline policies.
 *
 * @packageDocumentation
 */
export * from './types.js';
export * from './defaults.js';
export * from './gae.js';
export { ActorCritic, ACTOR_CRITIC_FORMAT, type CriticRowTerms } from './actor_critic.js';
export * from './rollout_buffer.js';
export { type PpoLossResult } from './ppo_loss.js';
export * from './event_sourced.js';
export * from './step_statistics.js';
export * from './dense_reference.js';
export * from './policies.js';
export * from './callbacks.js';
export * from './logger.js';
export * from './ppo.js';
