/**
 * Adapters that turn a tfjs LayersModel, a GraphModel (a model converted from TensorFlow,
 * Keras, or PyTorch through ONNX) or a plain function into a {@link PatchEncoder}.
 *
 * @packageDocumentation
 */
import { tf, tfl } from '../../core/tf.js';
import { ShapeError, ValueError, fmtShape } from '../../core/errors.js';
import {
  checkNormalization,
  preprocessPatches,
  toFeatureMatrix,
  type DataFormat,
  type Normalization,
  type PatchEncoder,
} from './types.js';

/** Options shared by the adapters. @category Encoders */
export interface EncoderOptions {
  /** Input side; default from the model's input shape. */
  inputSize?: number;
  /** Input normalisation (default `'imagenet'`). */
  normalization?: Normalization;
  /** Channel axis of the model input; default from the model's input shape (`[B, 3, H, W]` means channelsFirst). */
  dataFormat?: DataFormat;
  /** Feature width; default from the model's output shape, else found by encoding one blank patch. */
  dim?: number;
  /** Reduction of token outputs `[B, T, d]`: `'cls'` (token 0) or `'mean'`. */
  tokenPooling?: 'cls' | 'mean';
  /** Name for logs (default: the adapter kind). */
  name?: string;
}

/** The subset of tfjs-converter's `GraphModel` the adapter needs (so tfjs-converter stays optional). @category Encoders */
export interface GraphModelLike {
  readonly inputs: readonly { name: string; shape?: number[] }[];
  readonly outputs: readonly { name: string; shape?: number[] }[];
  execute(inputs: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap, outputs?: string | string[]): tf.Tensor | tf.Tensor[];
  dispose(): void;
}

/** Infers input side and data format from a model input shape (`[B, H, W, C]` or `[B, C, H, W]`). */
function inferInput(shape: readonly (number | null | undefined)[] | undefined, options: EncoderOptions, what: string): { size: number; format: DataFormat } {
  const s = (shape ?? []).map((v) => (v === null || v === undefined || v < 0 ? undefined : v));
  let format = options.dataFormat;
  if (!format && s.length === 4) format = s[1] === 3 && s[3] !== 3 ? 'channelsFirst' : 'channelsLast';
  format ??= 'channelsLast';
  const size = options.inputSize ?? (format === 'channelsFirst' ? s[2] : s[1]);
  if (!(size !== undefined && Number.isInteger(size) && size > 0)) {
    throw new ValueError(`The ${what} does not declare its input size (input shape ${JSON.stringify(shape)}); pass inputSize.`);
  }
  if (s.length === 4) {
    const c = format === 'channelsFirst' ? s[1] : s[3];
    if (c !== undefined && c !== 3) {
      throw new ShapeError(`Expected the ${what} to take 3-channel RGB input, but its input shape is ${JSON.stringify(shape)}.`);
    }
  }
  return { size, format };
}

/** Builds an encoder from a `run` function on preprocessed input. */
function makeEncoder(
  kind: string,
  run: (x: tf.Tensor4D) => tf.Tensor | tf.Tensor[],
  size: number,
  format: DataFormat,
  declaredDim: number | undefined,
  options: EncoderOptions,
  disposeFn: () => void,
): PatchEncoder {
  const normalization = options.normalization ?? 'imagenet';
  checkNormalization(normalization);
  const encode = (batch: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      const x = preprocessPatches(batch, { inputSize: size, normalization, dataFormat: format });
      const out = run(x);
      const first = Array.isArray(out) ? out[0] : out;
      const y = toFeatureMatrix(first, options.tokenPooling);
      if (y.shape[0] !== batch.shape[0]) {
        throw new ShapeError(`The ${kind} returned ${y.shape[0]} rows for a batch of ${batch.shape[0]} patches (${fmtShape(first.shape)}).`);
      }
      return tf.cast(y, 'float32') as tf.Tensor2D;
    });
  let dim = options.dim ?? declaredDim;
  if (dim === undefined) {
    const probe = tf.zeros([1, size, size, 3]) as tf.Tensor4D;
    const y = encode(probe);
    dim = y.shape[1];
    tf.dispose([probe, y]);
  }
  if (!(Number.isInteger(dim) && dim > 0)) throw new ValueError(`Expected the feature width dim to be a positive integer, but got ${dim}.`);
  const d = dim;
  return { dim: d, inputSize: size, name: options.name ?? kind, encode, dispose: disposeFn };
}

/**
 * A {@link PatchEncoder} from a tfjs-layers model (`tf.loadLayersModel('file://...')`, or a
 * Keras model converted with `tensorflowjs_converter --input_format keras`).
 *
 * @param model the model; its first output gives the features. Disposed by the encoder's `dispose`.
 * @example
 * ```ts
 * const model = await tfl.loadLayersModel('file://models/my_encoder/model.json');
 * const enc = layersModelEncoder(model, { normalization: 'imagenet' });
 * enc.dim; // from the model's output shape
 * ```
 * @category Encoders
 */
export function layersModelEncoder(model: tfl.LayersModel, options: EncoderOptions = {}): PatchEncoder {
  const { size, format } = inferInput(model.inputs[0]?.shape, options, 'LayersModel');
  const outShape = model.outputs[0]?.shape;
  const last = outShape && outShape.length >= 2 ? outShape[outShape.length - 1] : null;
  const declared = outShape && outShape.length === 2 && typeof last === 'number' && last > 0 ? last : undefined;
  return makeEncoder('LayersModel', (x) => model.predict(x), size, format, declared, options, () => model.dispose());
}

/** Options of {@link graphModelEncoder}. @category Encoders */
export interface GraphModelEncoderOptions extends EncoderOptions {
  /** Name of the output node holding the features (default: the model's first output). */
  outputName?: string;
}

/**
 * A {@link PatchEncoder} from a tfjs-converter `GraphModel` (`tf.loadGraphModel(...)` from
 * `@tensorflow/tfjs-converter`): a TensorFlow SavedModel, or a PyTorch model exported to ONNX,
 * converted to TensorFlow (onnx2tf / onnx-tf) and then to tfjs. Such PyTorch models usually
 * take `[B, 3, H, W]` input, which is detected from the input shape.
 *
 * @param model a GraphModel (any object with `inputs`, `outputs`, `execute`, `dispose`).
 * @example
 * ```ts
 * import { loadGraphModel } from '@tensorflow/tfjs-converter';
 * const enc = graphModelEncoder(await loadGraphModel('file://models/vit_s16/model.json'), { tokenPooling: 'cls' });
 * ```
 * @category Encoders
 */
export function graphModelEncoder(model: GraphModelLike, options: GraphModelEncoderOptions = {}): PatchEncoder {
  if (model.inputs.length !== 1) {
    throw new ValueError(
      `Expected the GraphModel to have one input, but it has ${model.inputs.length} (${model.inputs.map((i) => i.name).join(', ')}). Wrap it in functionEncoder.`,
    );
  }
  const { size, format } = inferInput(model.inputs[0].shape, options, 'GraphModel');
  const outName = options.outputName ?? model.outputs[0]?.name;
  const outInfo = model.outputs.find((o) => o.name === outName);
  if (options.outputName && !outInfo) {
    throw new ValueError(`The GraphModel has no output '${options.outputName}'; its outputs are ${model.outputs.map((o) => o.name).join(', ')}.`);
  }
  const s = outInfo?.shape;
  const declared = s && s.length === 2 && s[1] > 0 ? s[1] : undefined;
  return makeEncoder('GraphModel', (x) => model.execute(x, outName), size, format, declared, options, () => model.dispose());
}

/** Options of {@link functionEncoder}: `dim` and `inputSize` are required. @category Encoders */
export interface FunctionEncoderOptions extends Omit<EncoderOptions, 'dim' | 'inputSize'> {
  dim: number;
  inputSize: number;
  /** Called by `dispose` (free weights the function holds). */
  dispose?: () => void;
}

/**
 * A {@link PatchEncoder} from a function of preprocessed input (resized and normalised as
 * configured) to features. The function runs inside `tf.tidy`.
 *
 * @param fn `x: [B, s, s, 3]` (or `[B, 3, s, s]`) -> `[B, d]` (or a shape {@link toFeatureMatrix} reduces).
 * @example
 * ```ts
 * // mean colour per channel as a 3-d "feature"
 * const enc = functionEncoder((x) => tf.mean(x, [1, 2]) as tf.Tensor2D, { dim: 3, inputSize: 32, normalization: 'unit' });
 * ```
 * @category Encoders
 */
export function functionEncoder(fn: (x: tf.Tensor4D) => tf.Tensor, options: FunctionEncoderOptions): PatchEncoder {
  const format = options.dataFormat ?? 'channelsLast';
  if (!(Number.isInteger(options.inputSize) && options.inputSize > 0)) {
    throw new ValueError(`Expected inputSize to be a positive integer, but got ${options.inputSize}.`);
  }
  return makeEncoder('function', fn, options.inputSize, format, options.dim, options, options.dispose ?? (() => {}));
}
