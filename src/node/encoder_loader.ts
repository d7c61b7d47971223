/**
 * Loading a patch encoder from disk for the CLI and scripts: the built-in CNN, an ONNX model
 * (`.onnx`, through the optional `onnxruntime-node`), or a tfjs model directory (LayersModel, or
 * GraphModel through the optional `@tensorflow/tfjs-converter`).
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tf, tfl } from '../core/tf.js';
import { DataError } from '../core/errors.js';
import {
  builtinEncoder,
  graphModelEncoder,
  layersModelEncoder,
  type GraphModelLike,
  type Normalization,
  type PatchEncoder,
} from '../wsi/encoders/index.js';
import { fileIO } from './io/file_io.js';
import { loadOnnxEncoder } from './onnx_encoder.js';

/** What {@link loadEncoder} loads. @category Encoders */
export interface EncoderSpec {
  /** `'builtin'`, an `.onnx` file, or a directory (or its `model.json`) holding a tfjs LayersModel or GraphModel. */
  encoder: string;
  /** Feature width: the built-in CNN's d; for models, checked against the model (default: the model's). */
  dim?: number;
  /** Input side (default: the model's; 224 for the built-in CNN). */
  inputSize?: number;
  /** Input normalisation (default `'imagenet'`). */
  normalization?: Normalization;
  /** Output holding the features (GraphModel node, ONNX output name). */
  outputName?: string;
  /** Reduction of token outputs `[B, T, d]` (ONNX: `'mean'` skips `prefixTokens`). */
  tokenPooling?: 'cls' | 'mean';
  /** ONNX: tokens skipped by `tokenPooling: 'mean'` (1 for a ViT's CLS token). */
  prefixTokens?: number;
  /** ONNX: resize to this side, then centre-crop to `inputSize`. */
  resizeSize?: number;
  /** ONNX: input layout (default from the model). */
  layout?: 'NCHW' | 'NHWC';
  /** ONNX: element type of the input (default the model's). */
  dtype?: 'float32' | 'float16';
  /** ONNX: patches per session run. */
  batchSize?: number;
  /** ONNX: intra-op threads (default ONNX Runtime's). */
  threads?: number;
  /** Seed of the built-in CNN. */
  seed?: number;
}

/**
 * Loads a {@link PatchEncoder}: the built-in CNN (examples and tests only), an ONNX model
 * (a path ending in `.onnx`, run by ONNX Runtime), or a converted model directory
 * (`model.json` with `format` `layers-model` or `graph-model`).
 *
 * @throws DataError naming the path when it holds no model, or a GraphModel without
 *   `@tensorflow/tfjs-converter` installed.
 * @example
 * ```ts
 * const enc = await loadEncoder({ encoder: 'models/vit_s16', tokenPooling: 'cls' });
 * const vit = await loadEncoder({ encoder: 'models/vit_s16.onnx', threads: 2 }); // ONNX Runtime
 * ```
 * @category Encoders
 */
export async function loadEncoder(spec: EncoderSpec): Promise<PatchEncoder> {
  if (spec.encoder === 'builtin') {
    return builtinEncoder({
      ...(spec.dim !== undefined ? { dim: spec.dim } : {}),
      ...(spec.inputSize !== undefined ? { inputSize: spec.inputSize } : {}),
      ...(spec.normalization !== undefined ? { normalization: spec.normalization } : {}),
      ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    });
  }
  if (/\.onnx$/i.test(spec.encoder)) {
    return loadOnnxEncoder(spec.encoder, {
      ...(spec.dim !== undefined ? { dim: spec.dim } : {}),
      ...(spec.inputSize !== undefined ? { inputSize: spec.inputSize } : {}),
      ...(spec.resizeSize !== undefined ? { resizeSize: spec.resizeSize } : {}),
      ...(spec.normalization !== undefined ? { normalization: spec.normalization } : {}),
      ...(spec.outputName !== undefined ? { outputName: spec.outputName } : {}),
      ...(spec.tokenPooling !== undefined ? { output: spec.tokenPooling } : {}),
      ...(spec.prefixTokens !== undefined ? { prefixTokens: spec.prefixTokens } : {}),
      ...(spec.layout !== undefined ? { layout: spec.layout } : {}),
      ...(spec.dtype !== undefined ? { dtype: spec.dtype } : {}),
      ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}),
      ...(spec.threads !== undefined ? { threads: spec.threads } : {}),
    });
  }
  const dir = existsSync(spec.encoder) && statSync(spec.encoder).isDirectory() ? spec.encoder : dirname(spec.encoder);
  const jsonPath = join(dir, 'model.json');
  if (!existsSync(jsonPath)) {
    throw new DataError(
      `No encoder model at '${spec.encoder}': expected an .onnx file, a directory with model.json (a tfjs LayersModel or GraphModel), or 'builtin'. ` +
        'See docs/guides/encoders.md to convert a Keras or PyTorch model.',
    );
  }
  let format: string | undefined;
  try {
    format = (JSON.parse(readFileSync(jsonPath, 'utf8')) as { format?: string }).format;
  } catch (e) {
    throw new DataError(`Cannot read '${jsonPath}': ${(e as Error).message}.`);
  }
  const options = {
    ...(spec.inputSize !== undefined ? { inputSize: spec.inputSize } : {}),
    ...(spec.normalization !== undefined ? { normalization: spec.normalization } : {}),
    ...(spec.tokenPooling !== undefined ? { tokenPooling: spec.tokenPooling } : {}),
    name: dir,
  };
  let encoder: PatchEncoder;
  if (format === 'graph-model') {
    const spec2 = '@tensorflow/tfjs-converter';
    let converter: { loadGraphModel(h: tf.io.IOHandler): Promise<GraphModelLike> };
    try {
      converter = (await import(spec2)) as typeof converter;
    } catch {
      throw new DataError(`'${dir}' holds a GraphModel, which needs @tensorflow/tfjs-converter: npm install @tensorflow/tfjs-converter@4.22.0.`);
    }
    encoder = graphModelEncoder(await converter.loadGraphModel(fileIO(dir)), { ...options, outputName: spec.outputName });
  } else {
    encoder = layersModelEncoder(await tfl.loadLayersModel(fileIO(dir)), options);
  }
  if (spec.dim !== undefined && spec.dim !== encoder.dim) {
    const d = encoder.dim;
    encoder.dispose();
    throw new DataError(`The encoder in '${dir}' gives features of width ${d}, but d = ${spec.dim} was asked for. Drop --dim or use d = ${d}.`);
  }
  return encoder;
}
