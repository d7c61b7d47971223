/**
 * sasha-wsi: SASHA (Sequential Attention-based Sampling for Histopathological Analysis) on
 * TensorFlow.js.
 *
 * Sections:
 * 1. Core: backends, ops, optimisers, errors, config, random numbers, the data contract.
 * 2. Slides and features: synthetic feature cohorts.
 *
 * @packageDocumentation
 */

// Core
export * from './core/index.js';

// Slides and features
export * from './wsi/index.js';
