/**
 * sasha-wsi/node: the parts of the library that need Node (files on disk, h5 feature files,
 * the CLI helpers). Importing it registers the `file://` scheme with `tf.io` and
 * `onnxruntime-node` as the runtime of `onnxEncoder`.
 *
 * Sections:
 * 1. File io (model artifacts in directories, file:// URLs, checkpoint directories).
 * 2. HDF5 feature files.
 * 3. Slides: opening TIFF / SVS files, synthetic slides, encoders from disk, feature sinks.
 * 4. Inference: loading a trained SASHA model, heatmap PNGs.
 *
 * @packageDocumentation
 */
import { registerFileRouter } from './io/file_io.js';
import { registerNodeOnnxRuntime } from './onnx_encoder.js';

// File io (crash-safe writes, model directories on disk, output-folder locks)
export * from './io/file_io.js';
export * from './io/folder_lock.js';

// Model directories (sasha.json)
export * from './model_dir.js';

// HDF5 feature files
export * from './h5/index.js';

// Slides
export * from './open_slide.js';
export * from './jpeg_wasm.js';
export * from './worker_slide_source.js';
export { HafedWorkerPool, createHafedWorkerPool } from './hafed_workers.js';
export * from './synthetic_slide.js';
export * from './encoder_loader.js';
export * from './onnx_encoder.js';
export * from './feature_sink.js';

// Digit slides (MNIST digits as pyramidal TIFF cohorts)
export * from './digit_slides.js';

// Inference: trained models from disk, heatmap PNGs
export * from './load_model.js';
export * from './heatmap.js';

// Evaluation outputs: plots
export * from './plots.js';

registerFileRouter();
registerNodeOnnxRuntime();
