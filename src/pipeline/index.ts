/**
 * The SASHA pipeline: V on demand, the staged training recipe (HAFED, f_S, the zoom policy),
 * the policy stage with model selection, evaluation of any zoom policy at a budget, and the
 * model bundle, and inference on slides from their pixels (lazy zoom, heatmaps).
 *
 * @packageDocumentation
 */
export * from './aggregated.js';
export * from './analyze_slide.js';
export * from './heatmap.js';
export * from './evaluate_sasha.js';
export * from './train_policy.js';
export * from './train_sasha.js';
export * from './sasha_model.js';
export * from './load_model.js';
export * from './presets.js';
export * from './ablation.js';
export * from './reference_import.js';
export * from './budget_sweep.js';
