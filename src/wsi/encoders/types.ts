/**
 * The patch encoder contract and input preprocessing shared by every adapter.
 *
 * @packageDocumentation
 */
import { tf } from '../../core/tf.js';
import { ShapeError, ValueError, fmtShape } from '../../core/errors.js';

/**
 * Turns a batch of RGB patches into feature vectors.
 *
 * `encode` takes raw pixels, float32 RGB values in [0, 255] of shape `[B, h, w, 3]` (any h, w:
 * the encoder resizes to its `inputSize` and normalises as it was trained), and returns
 * `[B, dim]`. Swapping encoders is one line: any adapter ({@link layersModelEncoder},
 * {@link graphModelEncoder}, {@link functionEncoder}, {@link builtinEncoder}) gives this
 * interface.
 * @category Encoders
 */
export interface PatchEncoder {
  /** Feature width d. */
  readonly dim: number;
  /** Side of the square input the model takes (patches are resized to it). */
  readonly inputSize: number;
  /** Short name for logs and file metadata. */
  readonly name: string;
  /**
   * Encodes a batch.
   * @param batch `[B, h, w, 3]` float32 RGB in [0, 255]; not disposed.
   * @returns `[B, dim]` features, owned by the caller.
   */
  encode(batch: tf.Tensor4D): tf.Tensor2D;
  /**
   * Encodes a batch asynchronously. Encoders backed by an asynchronous runtime (ONNX Runtime,
   * {@link onnxEncoder}) implement it and their `encode` throws; the library's pipelines
   * (`extractFeatures`, `analyzeSlide`) call it through {@link encodePatches} when present.
   * @param batch `[B, h, w, 3]` float32 RGB in [0, 255]; not disposed.
   * @returns `[B, dim]` features, owned by the caller.
   */
  encodeAsync?(batch: tf.Tensor4D): Promise<tf.Tensor2D>;
  /** Frees the model's weights. */
  dispose(): void;
}

/**
 * Encodes a batch with any {@link PatchEncoder}: `encoder.encodeAsync` when the encoder has it
 * (ONNX Runtime encoders), else `encoder.encode`.
 * @param batch `[B, h, w, 3]` float32 RGB in [0, 255]; not disposed.
 * @returns `[B, dim]` features, owned by the caller.
 * @example
 * ```ts
 * const z = await encodePatches(encoder, tf.zeros([4, 256, 256, 3])); // [4, encoder.dim]
 * ```
 * @category Encoders
 */
export async function encodePatches(encoder: PatchEncoder, batch: tf.Tensor4D): Promise<tf.Tensor2D> {
  return encoder.encodeAsync ? encoder.encodeAsync(batch) : encoder.encode(batch);
}

/** ImageNet channel means (on [0, 1] pixels), as torchvision normalises. @category Encoders */
export const IMAGENET_MEAN: readonly [number, number, number] = Object.freeze([0.485, 0.456, 0.406]) as [number, number, number];
/** ImageNet channel standard deviations. @category Encoders */
export const IMAGENET_STD: readonly [number, number, number] = Object.freeze([0.229, 0.224, 0.225]) as [number, number, number];

/**
 * Input normalisation:
 * - `'imagenet'`: `(x / 255 - IMAGENET_MEAN) / IMAGENET_STD` (torchvision `ToTensor` +
 *   `Normalize`, as the SASHA reference, CLAM and most pathology encoders use);
 * - `'unit'`: `x / 255`;
 * - `'none'`: raw [0, 255] values;
 * - `{ mean, std }`: `(x / 255 - mean) / std` with your constants (e.g. CONCH or UNI's).
 * @category Encoders
 */
export type Normalization = 'imagenet' | 'unit' | 'none' | { mean: readonly number[]; std: readonly number[] };

/** Where the channel axis of the model's input is. PyTorch models converted through ONNX take `channelsFirst`. */
export type DataFormat = 'channelsLast' | 'channelsFirst';

/** Interpolation of {@link PreprocessOptions.resizeMethod}. @category Encoders */
export type ResizeMethod = 'bilinear' | 'nearest';

/** How patches are prepared for a model. @category Encoders */
export interface PreprocessOptions {
  /** Side of the model input (patches are resized to it, or to `resizeSize` and then centre-cropped to it). */
  inputSize: number;
  /**
   * Side the patches are resized to before a centre crop of `inputSize` (torchvision
   * `Resize(resizeSize)` + `CenterCrop(inputSize)`, as timm's evaluation transform with
   * `crop_pct < 1`). Default `inputSize` (resize only, no crop). Must be >= `inputSize`.
   */
  resizeSize?: number;
  /**
   * Interpolation of the resize: `'bilinear'` (default; half-pixel centres, PyTorch's
   * `align_corners=False`) or `'nearest'`.
   */
  resizeMethod?: ResizeMethod;
  /** Input normalisation (default `'imagenet'`). */
  normalization?: Normalization;
  /** Channel axis of the model input (default `'channelsLast'`, `[B, H, W, 3]`). */
  dataFormat?: DataFormat;
}

/** Checks a {@link Normalization} value. */
export function checkNormalization(n: Normalization): void {
  if (n === 'imagenet' || n === 'unit' || n === 'none') return;
  const ok =
    typeof n === 'object' &&
    n !== null &&
    Array.isArray(n.mean) &&
    Array.isArray(n.std) &&
    n.mean.length === 3 &&
    n.std.length === 3 &&
    n.std.every((s) => s > 0);
  if (!ok) {
    throw new ValueError(
      `Expected normalization to be 'imagenet', 'unit', 'none' or { mean: [r, g, b], std: [r, g, b] } with std > 0, but got ${JSON.stringify(n)}.`,
    );
  }
}

/**
 * Resizes and normalises a batch of raw patches for a model.
 *
 * `y = (resize(x, inputSize) / 255 - mean) / std`, transposed to `[B, 3, s, s]` for
 * `channelsFirst`.
 *
 * @param batch `[B, h, w, 3]` float32 in [0, 255]; not disposed.
 * @returns `[B, s, s, 3]` (or `[B, 3, s, s]`), owned by the caller.
 * @example
 * ```ts
 * const x = preprocessPatches(tf.fill([2, 256, 256, 3], 255), { inputSize: 224 });
 * // x: [2, 224, 224, 3], each channel (1 - mean) / std, e.g. 2.2489 for red
 * ```
 * @category Encoders
 */
export function preprocessPatches(batch: tf.Tensor4D, options: PreprocessOptions): tf.Tensor4D {
  const norm = options.normalization ?? 'imagenet';
  checkNormalization(norm);
  if (batch.rank !== 4 || batch.shape[3] !== 3) {
    throw new ShapeError(`Expected a patch batch of shape [B, h, w, 3], but got ${fmtShape(batch.shape)}.`);
  }
  const s = options.inputSize;
  const r = options.resizeSize ?? s;
  const method = options.resizeMethod ?? 'bilinear';
  if (!(Number.isInteger(s) && s > 0 && Number.isInteger(r) && r >= s)) {
    throw new ValueError(`Expected inputSize to be a positive integer and resizeSize an integer >= inputSize, but got inputSize ${s}, resizeSize ${r}.`);
  }
  if (method !== 'bilinear' && method !== 'nearest') throw new ValueError(`Expected resizeMethod to be 'bilinear' or 'nearest', but got '${String(method)}'.`);
  return tf.tidy(() => {
    let x: tf.Tensor4D = tf.cast(batch, 'float32');
    if (batch.shape[1] !== r || batch.shape[2] !== r) {
      x = method === 'bilinear' ? tf.image.resizeBilinear(x, [r, r], false, true) : tf.image.resizeNearestNeighbor(x, [r, r], false, true);
    }
    if (r > s) {
      // torchvision CenterCrop: top-left at round((r - s) / 2), Python's round half to even
      const half = (r - s) / 2;
      const o = Number.isInteger(half) ? half : Math.floor(half) % 2 === 0 ? Math.floor(half) : Math.ceil(half);
      x = tf.slice(x, [0, o, o, 0], [-1, s, s, 3]);
    }
    if (norm === 'unit') x = tf.div(x, 255);
    else if (norm !== 'none') {
      const mean = norm === 'imagenet' ? IMAGENET_MEAN : norm.mean;
      const std = norm === 'imagenet' ? IMAGENET_STD : norm.std;
      // (x / 255 - m) / s = x * (1 / (255 s)) - m / s
      const scale = tf.tensor1d(std.map((v) => 1 / (255 * v)));
      const shift = tf.tensor1d(mean.map((m, i) => m / std[i]));
      x = tf.sub(tf.mul(x, scale), shift);
    }
    if (options.dataFormat === 'channelsFirst') x = tf.transpose(x, [0, 3, 1, 2]);
    return x;
  });
}

/**
 * How a model output becomes `[B, d]`: `[B, d]` as is; `[B, 1, 1, d]` or `[B, d, 1, 1]`
 * flattened; token outputs `[B, T, d]` by `tokenPooling` (`'cls'`: token 0, as a ViT's CLS
 * feature; `'mean'`: the mean over tokens).
 * @param out the model output; not disposed.
 * @returns `[B, d]`, owned by the caller.
 * @category Encoders
 */
export function toFeatureMatrix(out: tf.Tensor, tokenPooling?: 'cls' | 'mean'): tf.Tensor2D {
  const [b, ...rest] = out.shape;
  if (out.rank === 2) return tf.clone(out) as tf.Tensor2D;
  if (out.rank === 3) {
    if (!tokenPooling) {
      throw new ShapeError(
        `The encoder returned token features ${fmtShape(out.shape)}; pass tokenPooling: 'cls' (ViT CLS token) or 'mean' to reduce them to [B, d].`,
      );
    }
    return tf.tidy(() =>
      tokenPooling === 'cls'
        ? (tf.reshape(tf.slice(out, [0, 0, 0], [b, 1, rest[1]]), [b, rest[1]]) as tf.Tensor2D)
        : (tf.mean(out, 1) as tf.Tensor2D),
    );
  }
  const nonUnit = rest.filter((v) => v !== 1);
  if (nonUnit.length === 1) return tf.reshape(out, [b, nonUnit[0]]) as tf.Tensor2D;
  throw new ShapeError(
    `Expected the encoder to return [B, d] (or [B, 1, 1, d], [B, d, 1, 1], [B, T, d]), but got ${fmtShape(out.shape)}. ` +
      'Choose the feature output with outputName, or wrap the model in functionEncoder.',
  );
}
