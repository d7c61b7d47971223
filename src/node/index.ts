/**
 * sasha-wsi/node: the parts of the library that need Node (files on disk, h5 feature files,
 * slides from disk, trained models from a directory). Importing it registers the `file://`
 * scheme with `tf.io` and `onnxruntime-node` as the runtime of `onnxEncoder`.
 *
 * Sections:
 * 1. Files: model artifacts in directories, `file://` URLs, checkpoint directories, the CLI's
 *    model directory.
 * 2. HDF5 feature files.
 * 3. Slides: opening TIFF / SVS files (in a worker thread too), writing synthetic and digit
 *    slides, encoders from disk, feature files as an extraction sink.
 * 4. Inference: loading a trained SASHA model, heatmap PNGs.
 *
 * @packageDocumentation
 */
import { registerFileRouter } from './io/file_io.js';
import { registerNodeOnnxRuntime } from './onnx_encoder.js';

// Files (crash-safe writes, model directories on disk, output-folder locks)
export {
  fileIO,
  fileCheckpointStore,
  modelFilesFromDir,
  registerFileRouter,
  pathFromFileUrl,
  writeFileAtomic,
  writeFileAtomicSync,
  MODEL_JSON,
} from './io/file_io.js';
export { lockFolder, removeStaleTempFiles, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, type FolderLock, type LockOwner } from './io/folder_lock.js';
export {
  readModelManifest,
  updateModelManifest,
  MODEL_MANIFEST,
  MODEL_MANIFEST_FORMAT,
  type ModelManifest,
} from './model_dir.js';

// HDF5 feature files
export * from './h5/index.js';

// Slides
export { openSlide, slideIdFromPath, type OpenSlideOptions, type JpegDecoderChoice } from './open_slide.js';
export { openSlideInWorker, canReadInWorker, WorkerSlideSource } from './worker_slide_source.js';
export { writeSyntheticSlide, writeRgbTiff, type SyntheticTiffOptions, type WrittenSyntheticSlide } from './synthetic_slide.js';
export { loadEncoder, type EncoderSpec } from './encoder_loader.js';
export { loadOnnxEncoder, loadNodeOnnxRuntime } from './onnx_encoder.js';
export { H5FeatureSink, type H5FeatureSinkOptions, type MergedFeatureFiles } from './feature_sink.js';
export {
  loadMnistDigits,
  writeDigitCohort,
  readDigitTruth,
  type WriteDigitCohortOptions,
  type DigitCohortFiles,
} from './digit_slides.js';

// Training: HAFED's stage 1 over worker threads
export { HafedWorkerPool, createHafedWorkerPool } from './hafed_workers.js';
export { NativeStage1, createNativeStage1, stkimAdditiveMask, type NativeStage1Options } from './native_stage1.js';

// Inference
export {
  loadSashaModel,
  trainedBudgets,
  readTrainingExtractSettings,
  readModelDirExtractSettings,
  packModelDir,
  type LoadSashaModelOptions,
  type PackModelDirOptions,
  type PackedModelDir,
} from './load_model.js';
export { writeHeatmap } from './heatmap.js';

// Evaluation outputs: plots
export * from './plots.js';

registerFileRouter();
registerNodeOnnxRuntime();
