/**
 * sasha-wsi/synthetic: synthetic data with known ground truth, for tests, examples and
 * benchmarks: feature cohorts in the SASHA data contract (Z, U, labels, tumour masks), slide
 * images whose pixels hold tumour regions, and digit slides built from real images (MNIST).
 * Writers to h5 and TIFF files are in `sasha-wsi/node`.
 *
 * @packageDocumentation
 */
export {
  generateSyntheticCohort,
  SyntheticDataset,
  SYNTHETIC_PRESETS,
  DEFAULT_SYNTHETIC_FEATURE_CONFIG,
  resolveSyntheticConfig,
  syntheticSlide,
  syntheticIds,
  syntheticLabels,
  syntheticSplit,
  slideToBag,
  summarizeSlides,
  summarizeCohort,
  formatCohortSummary,
  mimicClass,
  tumourClass,
  lesionClass,
  type SyntheticFeatureConfig,
  type SyntheticPresetName,
  type SyntheticCohort,
  type SyntheticSlide,
  type SyntheticTruth,
  type CohortSummary,
  type SubsetSummary,
} from './features.js';
export {
  generateSyntheticSlideImage,
  syntheticTruthMask,
  syntheticLesionFraction,
  DEFAULT_SYNTHETIC_IMAGE_CONFIG,
  SYNTHETIC_BACKGROUND,
  SYNTHETIC_TISSUE,
  SYNTHETIC_LESION,
  type SyntheticImageConfig,
  type SyntheticSlideImage,
} from './slide_image.js';
export {
  DigitSlideCohort,
  renderDigitSlide,
  renderDigitPatch,
  digitTruthAt,
  partitionDigitBank,
  scaleDigitBank,
  lowResDigit,
  lookalikeDigits,
  randomStain,
  paintDigitCell,
  DEFAULT_DIGIT_SLIDE_CONFIG,
  DIGIT_SLIDE_PRESETS,
  DEFAULT_DIGIT_STAIN,
  resolveDigitSlideConfig,
  MNIST_SIZE,
  CELL_GLASS,
  CELL_NORMAL,
  CELL_MIMIC,
  CELL_TUMOUR,
  type DigitBank,
  type DigitSlideConfig,
  type DigitPools,
  type DigitStain,
  type DigitCell,
  type DigitSlide,
} from './digit_slide.js';
export { syntheticTumourFractions, digitTumourFractions, syntheticImageTumourFractions } from '../annotations.js';
