/**
 * sasha-wsi: SASHA (Sequential Attention-based Sampling for Histopathological Analysis) on
 * TensorFlow.js.
 *
 * Sections:
 * 1. Core: backends, ops, optimisers, errors, config, random numbers, the data contract.
 *
 * @packageDocumentation
 */

// Core
export * from './core/index.js';
