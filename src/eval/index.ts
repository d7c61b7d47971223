/**
 * Evaluation: classification metrics and the statistics that compare models (bootstrap
 * intervals, McNemar, paired AUC bootstrap, Mann-Whitney U), on plain arrays (browser-safe,
 * no model imports).
 *
 * @packageDocumentation
 */
export * from './metrics.js';
export * from './statistics.js';
export * from './plots.js';
export * from './compression.js';
export * from './interpretability.js';
