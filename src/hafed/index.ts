/**
 * HAFED: the multi-branch gated attention layer, stage 1 (feature aggregator), stage 2 (slide
 * classifier), the ACMIL losses, the model, its trainer and its evaluation.
 *
 * @packageDocumentation
 */
export * from './types.js';
export * from './defaults.js';
export * from './multi_branch_attention.js';
export * from './feature_aggregator.js';
export * from './sub_patch_pooling.js';
export * from './slide_classifier.js';
export * from './losses.js';
export * from './hafed.js';
export * from './evaluate.js';
export * from './train_hafed.js';
export * from './sharded.js';
