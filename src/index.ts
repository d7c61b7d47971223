/**
 * sasha-wsi: SASHA (Sequential Attention-based Sampling for Histopathological Analysis) on
 * TensorFlow.js.
 *
 * Sections:
 * 1. Core: backends, ops, optimisers, errors, config, random numbers, the data contract.
 * 2. Slides and features: slide sources (TIFF / SVS, in-memory), tissue segmentation, patch grids,
 *    patch encoders, feature extraction, synthetic slides and synthetic feature cohorts.
 * 3. Evaluation: classification metrics.
 * 4. HAFED: multi-branch attention, the two stages, losses, model, trainer.
 * 5. TSU: the targeted state update, the f_S network and its trainer.
 * 6. MDP: the environment interface, the WSI environment, vector env, checkEnv.
 * 7. PPO: the zoom policy (actor-critic), GAE, the event-sourced update, the trainer, baselines.
 *
 * @packageDocumentation
 */

// Core
export * from './core/index.js';

// Slides and features
export * from './wsi/index.js';

// Evaluation
export * from './eval/index.js';

// HAFED
export * from './hafed/index.js';

// TSU
export * from './tsu/index.js';

// MDP
export * from './mdp/index.js';
// PPO
export * from './ppo/index.js';

// Pipeline
export * from './pipeline/index.js';
