/**
 * Evaluation: classification metrics on plain arrays (browser-safe, no model imports).
 *
 * @packageDocumentation
 */
export * from './metrics.js';
