/**
 * Evaluation: classification metrics and statistics for comparing models, on plain arrays
 * (browser-safe, no model imports).
 *
 * @packageDocumentation
 */
export {
  accuracy,
  balancedAccuracy,
  confusionMatrix,
  f1Score,
  binaryAuc,
  rocAuc,
  expectedCalibrationError,
  classificationMetrics,
  meanStd,
  type ClassificationMetrics,
  type F1Options,
  type ProbabilityRows,
} from './metrics.js';
export {
  bootstrapInterval,
  mcnemarExact,
  pairedBootstrapAuc,
  mannWhitneyU,
  type BootstrapOptions,
  type Interval,
  type McNemarResult,
  type PairedBootstrapAucOptions,
  type PairedAucComparison,
  type MannWhitneyResult,
  type Scores,
} from './statistics.js';
