/**
 * sasha-wsi/pipeline: every public part of the SASHA pipeline. V on demand, the staged training
 * recipe (HAFED, f_S, the zoom policy), the policy stage with model selection, evaluation of any
 * zoom policy at a budget, the model bundle, inference on slides from their pixels (lazy zoom,
 * heatmaps), and import of the official code's checkpoints; model bundles read from any
 * `ModelFiles` of `sasha-wsi/core` (URLs, picked files, a directory in Node). The root entry
 * `sasha-wsi` re-exports the most used of these.
 *
 * @packageDocumentation
 */
export { withAggregated, type AggregatedDataset } from './aggregated.js';
export {
  analyzeSlide,
  analysisToJson,
  heatmapDataFromJson,
  DEFAULT_ANALYZE_SLIDE_CONFIG,
  resolveAnalyzeSlideConfig,
  type AnalyzeMode,
  type AnalyzeSlideConfig,
  type AnalyzeSlideOptions,
  type AnalyzeTimings,
  type AnalyzeCounts,
  type AnalyzeEvent,
  type AnalyzeLayoutEvent,
  type AnalyzeStateEvent,
  type AnalysisPrediction,
  type SlideAnalysis,
  type SlideAnalysisJson,
} from './analyze_slide.js';
export {
  renderHeatmap,
  colormapColor,
  normalizeScores,
  thumbnailLevel,
  DEFAULT_HEATMAP_CONFIG,
  resolveHeatmapConfig,
  type Heatmap,
  type HeatmapColormap,
  type HeatmapConfig,
  type HeatmapData,
} from './heatmap.js';
export {
  evaluateSasha,
  evaluateFullResolution,
  makePolicy,
  policySelectionScore,
  summarizeEvaluation,
  POLICY_NAMES,
  type PolicyName,
  type EvaluateSashaOptions,
  type SashaSlideResult,
  type SashaEvaluation,
} from './evaluate_sasha.js';
export {
  trainPolicy,
  DEFAULT_POLICY_EPOCHS,
  DEFAULT_POLICY_RECIPE,
  REFERENCE_POLICY_RECIPE,
  POLICY_RECIPES,
  teacherFunction,
  type PolicyRecipe,
  type PolicyRecipeName,
  type PolicyTeacher,
  type PolicyEpochLog,
  type TrainPolicyOptions,
  type TrainPolicyResult,
} from './train_policy.js';
export {
  trainSasha,
  SASHA_STAGES,
  type SashaStage,
  type TrainSashaConfig,
  type TrainSashaOptions,
  type TrainSashaResult,
} from './train_sasha.js';
export {
  loadSashaModelFrom,
  loadModelEncoder,
  parseModelManifest,
  readModelExtractSettings,
  analyzeConfigFromSettings,
  trainedBudgets,
  MODEL_MANIFEST,
  MODEL_MANIFEST_FORMAT,
  MODEL_EXTRACT_SETTINGS,
  type ModelManifest,
  type LoadSashaModelOptions,
  type LoadModelEncoderOptions,
} from './load_model.js';
export { SashaModel, SASHA_MODEL_FORMAT, SASHA_MODEL_FORMAT_VERSION, type SashaModelInfo } from './sasha_model.js';
export {
  hafedFromReference,
  stateMlpFromReference,
  actorCriticFromReference,
  type ReferenceCheckpointSource,
  type ReferenceImportInfo,
  type HafedFromReferenceOptions,
} from './reference_import.js';
export {
  SASHA_PRESETS,
  SASHA_PRESET_NAMES,
  sashaPreset,
  presetConfig,
  type SashaPreset,
  type SashaPresetName,
} from './presets.js';
export {
  runAblation,
  ABLATION_ROWS,
  ABLATION_DESCRIPTIONS,
  type AblationRowName,
  type AblationRow,
  type AblationResult,
  type RunAblationOptions,
} from './ablation.js';
export {
  evaluateBudgetSweep,
  budgetSweepSvg,
  type SweepPolicy,
  type BudgetSweepOptions,
  type BudgetSweepRow,
} from './budget_sweep.js';
