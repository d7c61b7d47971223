/**
 * Evaluation: classification metrics, statistics for comparing models and SVG plots, on plain
 * arrays (browser-safe, no model imports).
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
  perClassAuc,
  reliabilityBins,
  expectedCalibrationError,
  calibrationErrorOfBins,
  classificationMetrics,
  meanStd,
  type ClassificationMetrics,
  type F1Options,
  type ProbabilityRows,
  type ReliabilityBin,
} from './metrics.js';
export {
  bootstrapInterval,
  mcnemarExact,
  pairedBootstrapAuc,
  mannWhitneyU,
  comparePredictions,
  type BootstrapOptions,
  type Interval,
  type McNemarResult,
  type PairedBootstrapAucOptions,
  type PairedAucComparison,
  type PairedComparison,
  type MannWhitneyResult,
  type Scores,
} from './statistics.js';
export { compressionRatio, cohortCompression, type CompressionReport, type SlideStorageShape } from './compression.js';
export {
  zoomInterpretability,
  type ZoomedSlide,
  type PatchGroupSummary,
  type ZoomComparison,
  type ZoomInterpretability,
} from './interpretability.js';
export { lineChartSvg, reliabilityDiagramSvg, type LineSeries, type LineChartOptions, type ReliabilityDiagramOptions } from './plots.js';
