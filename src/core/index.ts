/**
 * sasha-wsi/core: the ground floor the components are built on, for users who build their own
 * models and trainers with the same parts: tfjs access, backends, errors, seeded randomness,
 * wasm-friendly ops, AdamW and gradient clipping, the slide data contract, the gated-attention
 * scores, saving and loading (targets, artifacts, training checkpoints) and a reader of PyTorch
 * checkpoints.
 *
 * @packageDocumentation
 */
export { tf, tfl } from './tf.js';
export { VERSION } from './version.js';
export { SashaError, ValueError, ShapeError, DataError, StateError } from './errors.js';
export { Rng, createRng } from './random.js';
export { initBackend, DEFAULT_BACKEND_ORDER, type BackendName, type InitBackendOptions } from './backend.js';
export {
  matMul,
  linear,
  gatherRows,
  rowNorms,
  cosineToRow,
  pairwiseCosine,
  maskedSoftmax,
  gelu,
  layerNorm,
  crossEntropy,
  COSINE_EPS,
  MASK_LOGIT,
} from './ops.js';
export {
  AdamW,
  DEFAULT_ADAMW_CONFIG,
  clipByGlobalNorm,
  halfCosineLr,
  type AdamWConfig,
  type ClipResult,
  type HalfCosineSchedule,
  type NamedTensor,
} from './optim.js';
export {
  InMemoryDataset,
  subsetDataset,
  parseSplit,
  checkSplit,
  disposeBag,
  validateBag,
  type SlideBag,
  type SlidePart,
  type SlideDataset,
  type SlideSplit,
  type SplitSubset,
  type BagExpectations,
} from './data.js';
export { encodeFloat16, decodeFloat16, roundToFloat16 } from './float16.js';
export type { ProgressEvent, ProgressCallback } from './progress.js';
export { gatedScores, type ScoreWeights } from './gated_attention.js';
export { linearInit } from './init.js';
export {
  saveArtifacts,
  loadArtifacts,
  encodeArtifacts,
  decodeArtifacts,
  type IOTarget,
  type ArtifactFormat,
  type DecodedArtifacts,
} from './io.js';
export {
  MemoryCheckpointStore,
  prefixedStore,
  epochRng,
  optimizerTensors,
  restoreOptimizer,
  checkResume,
  encodeTrainingCheckpoint,
  decodeTrainingCheckpoint,
  type CheckpointStore,
  type TrainingCheckpoint,
  type TrainingCheckpointParts,
  type TrainingCheckpointState,
} from './checkpoint.js';
export {
  modelFilesFromUrl,
  modelFilesFromPicked,
  readModelJson,
  readModelArtifacts,
  type ModelFiles,
  type ModelFilesFromUrlOptions,
  type PickedFile,
} from './model_files.js';
export {
  readTorchCheckpoint,
  isStateDict,
  torchValueToJson,
  TorchTensor,
  PyGlobal,
  PyObject,
  type TorchCheckpoint,
  type TorchDtype,
  type TorchValue,
} from './torch/index.js';
