/**
 * Patch encoders: the {@link PatchEncoder} contract, preprocessing, adapters for tfjs models,
 * ONNX models and functions, and a small built-in CNN for examples and tests.
 *
 * @packageDocumentation
 */
export {
  encodePatches,
  preprocessPatches,
  checkNormalization,
  toFeatureMatrix,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type PatchEncoder,
  type Normalization,
  type DataFormat,
  type ResizeMethod,
  type PreprocessOptions,
} from './types.js';
export {
  layersModelEncoder,
  graphModelEncoder,
  functionEncoder,
  type EncoderOptions,
  type GraphModelLike,
  type GraphModelEncoderOptions,
  type FunctionEncoderOptions,
} from './adapters.js';
export { builtinEncoder, builtinEncoderModel, DEFAULT_BUILTIN_ENCODER_CONFIG, type BuiltinEncoderConfig } from './builtin.js';
export {
  onnxEncoder,
  setOnnxRuntime,
  checkOnnxBytes,
  type OnnxEncoderOptions,
  type OnnxPatchEncoder,
  type OnnxOutputPooling,
  type OnnxRuntimeLike,
  type OrtSessionLike,
  type OrtTensorLike,
  type OrtValueMetadataLike,
  type RuntimeSource,
} from './onnx.js';
