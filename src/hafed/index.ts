/**
 * sasha-wsi/hafed: HAFED, the multi-branch gated-attention MIL model of SASHA: the attention
 * layer, stage 1 (feature aggregator), stage 2 (slide classifier), the ACMIL losses, the model,
 * its trainer and its evaluation.
 *
 * @packageDocumentation
 */
export type { HafedInput, HafedConfig, HafedTrainConfig, HafedOutput, HafedLosses, HafedEpochLog, HafedBest } from './types.js';
export { DEFAULT_HAFED_CONFIG, DEFAULT_HAFED_TRAIN_CONFIG, resolveHafedConfig, resolveHafedTrainConfig } from './defaults.js';
export {
  MultiBranchAttention,
  multiBranchAttention,
  attentionPool,
  type MultiBranchAttentionArgs,
  type MultiBranchAttentionOutput,
  type AttentionForwardOptions,
  type BaseLayerArgs,
} from './multi_branch_attention.js';
export { FeatureAggregator, type FeatureAggregatorArgs, type FeatureAggregatorOutput, type StageForwardOptions } from './feature_aggregator.js';
export {
  poolSubPatches,
  poolSubPatchesNoGrad,
  type SubPatchPooling,
  type SubPatchPoolingOptions,
} from './sub_patch_pooling.js';
export { SlideClassifier, type SlideClassifierArgs, type SlideClassifierOutput } from './slide_classifier.js';
export { hafedLoss, slideLoss, branchLoss, similarityLoss } from './losses.js';
export { Hafed, HAFED_FORMAT, HAFED_FORMAT_VERSION, type HafedPrediction } from './hafed.js';
export { evaluateHafed, predictHafed, type EvaluateHafedOptions, type SlidePrediction } from './evaluate.js';
export {
  trainHafed,
  hafedTrainStep,
  HAFED_CHECKPOINT_FORMAT,
  type TrainHafedOptions,
  type TrainHafedResult,
  type HafedTrainCallbacks,
  type HafedStepInfo,
  type HafedStepResult,
} from './train_hafed.js';
export {
  hafedTrainStepSharded,
  predictHafedSharded,
  SubPatchShard,
  type SubPatchWorkers,
  type ShardWeights,
  type ShardForwardTask,
  type ShardForwardResult,
} from './sharded.js';
