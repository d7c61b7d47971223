/**
 * A {@link PatchEncoder} over ONNX Runtime: the pathology encoders users have (ViT-S/16 DINO,
 * UNI, CONCH, Virchow, CTransPath) are PyTorch models, which export to ONNX in a few lines
 * (docs/guides/encoders.md) and run here without conversion to TensorFlow.
 *
 * The runtime is an optional peer: `onnxruntime-node` in Node (registered by importing
 * `sasha-wsi/node`), `onnxruntime-web` in browsers (pass it as `runtime`, or register it once
 * with {@link setOnnxRuntime}). This module is browser-safe: it never imports either package
 * by name.
 *
 * @packageDocumentation
 */
import { tf } from '../../core/tf.js';
import { DataError, ShapeError, StateError, ValueError, fmtShape } from '../../core/errors.js';
import { decodeFloat16, encodeFloat16 } from '../../core/float16.js';
import { checkNormalization, preprocessPatches, type Normalization, type PatchEncoder, type ResizeMethod } from './types.js';

/** A tensor as ONNX Runtime returns it (the part of `onnxruntime-common`'s `Tensor` used here). @category Encoders */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}

/** Input or output metadata of an ONNX Runtime session (`onnxruntime-common` 1.2x+). @category Encoders */
export interface OrtValueMetadataLike {
  readonly name: string;
  readonly isTensor: boolean;
  /** Element type (`'float32'`, `'float16'`, ...), for tensors. */
  readonly type?: string;
  /** Dimensions; a string is a symbolic (dynamic) axis. */
  readonly shape?: readonly (number | string)[];
}

/** An ONNX Runtime inference session (the part of `InferenceSession` used here). @category Encoders */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadataLike[];
  readonly outputMetadata?: readonly OrtValueMetadataLike[];
  run(feeds: Record<string, OrtTensorLike>, fetches?: readonly string[]): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/**
 * An ONNX Runtime module: `import * as ort from 'onnxruntime-web'` (browsers) or
 * `'onnxruntime-node'` (Node). Only `InferenceSession.create`, `Tensor` and `env.wasm` are used.
 * @category Encoders
 */
export interface OnnxRuntimeLike {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: 'float32' | 'float16', data: Float32Array | Uint16Array, dims: readonly number[]) => OrtTensorLike;
  env?: { wasm?: { numThreads?: number } };
}

/** How the model's output becomes one feature vector per patch. @category Encoders */
export type OnnxOutputPooling = 'pooled' | 'cls' | 'mean';

/** Options of {@link onnxEncoder}. @category Encoders */
export interface OnnxEncoderOptions {
  /** The ONNX Runtime module. Default: the one registered with {@link setOnnxRuntime} (`sasha-wsi/node` registers `onnxruntime-node`), else `onnxruntime-web` loaded by name. */
  runtime?: OnnxRuntimeLike;
  /** Input layout: `'NCHW'` (PyTorch exports) or `'NHWC'`. Default: from the model's input shape (`[B, 3, H, W]` is NCHW), else NCHW. */
  layout?: 'NCHW' | 'NHWC';
  /** Side of the model input. Default: from the model's input shape; required when its spatial axes are dynamic. */
  inputSize?: number;
  /** Resize to this side, then centre-crop to `inputSize` (timm's `crop_pct`, CONCH's transform). Default `inputSize`. */
  resizeSize?: number;
  /** Interpolation of the resize (default `'bilinear'`). */
  resizeMethod?: ResizeMethod;
  /** Input normalisation (default `'imagenet'`; `{ mean, std }` for other constants, e.g. CONCH's OpenAI CLIP values). */
  normalization?: Normalization;
  /** Most patches per `session.run` (default 32; a model exported with a fixed batch axis uses that size). */
  batchSize?: number;
  /** Intra-op threads (`onnxruntime-node`'s `intraOpNumThreads`; `env.wasm.numThreads` for `onnxruntime-web`, set before its first session). Default: the runtime's. */
  threads?: number;
  /** The output holding the features (default: the model's first output). */
  outputName?: string;
  /**
   * How an output becomes `[B, d]`: `'pooled'` takes a `[B, d]` output as is (the model pools,
   * e.g. timm with `num_classes=0`); `'cls'` takes token 0 of a `[B, T, d]` output (a ViT's
   * CLS token, e.g. Hugging Face `last_hidden_state`); `'mean'` averages the tokens after the
   * first `prefixTokens`. Default: `'pooled'` for a rank-2 output, an error naming the choices
   * for token outputs.
   */
  output?: OnnxOutputPooling;
  /** Tokens skipped by `output: 'mean'` (1 for a ViT's CLS token, 1 + registers for DINOv2-reg / Virchow2). Default 0. */
  prefixTokens?: number;
  /** Element type of the model input. Default: the model's declared input type, else float32. */
  dtype?: 'float32' | 'float16';
  /** Expected feature width; a model giving another width is an error naming both. Default: the model's. */
  dim?: number;
  /** Name in logs, errors and file metadata (default: `onnx(<n> bytes)`). */
  name?: string;
  /** Extra ONNX Runtime session options (merged over the ones set here). */
  sessionOptions?: Record<string, unknown>;
}

/** A {@link PatchEncoder} over an ONNX Runtime session; `encode` throws, use `encodeAsync`. @category Encoders */
export interface OnnxPatchEncoder extends PatchEncoder {
  encodeAsync(batch: tf.Tensor4D): Promise<tf.Tensor2D>;
  /** The session's input and output names, layout, dtype and batch size as resolved. */
  readonly info: Readonly<{ inputName: string; outputName: string; layout: 'NCHW' | 'NHWC'; dtype: 'float32' | 'float16'; batchSize: number; output: OnnxOutputPooling }>;
  /** Releases the session (`dispose` does it without waiting). */
  release(): Promise<void>;
}

/** An ONNX Runtime module, or a function that loads one on first use. */
export type RuntimeSource = OnnxRuntimeLike | (() => Promise<OnnxRuntimeLike>);
let registered: RuntimeSource | null = null;

/**
 * Registers the ONNX Runtime module {@link onnxEncoder} uses when none is passed (a module or
 * a function that loads one). `sasha-wsi/node` registers `onnxruntime-node` on import; a
 * browser app can register `onnxruntime-web` once.
 * @param runtime the module, a loader, or null to clear.
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * setOnnxRuntime(ort);
 * ```
 * @category Encoders
 */
export function setOnnxRuntime(runtime: RuntimeSource | null): void {
  registered = runtime;
}

/** The runtime: the option, the registered one, else `onnxruntime-web` loaded by name. */
async function resolveRuntime(runtime: OnnxRuntimeLike | undefined): Promise<OnnxRuntimeLike> {
  if (runtime) return runtime;
  if (registered) return typeof registered === 'function' ? registered() : registered;
  const spec = 'onnxruntime-web'; // a variable: bundlers do not resolve it, so the peer stays optional
  try {
    return (await import(/* @vite-ignore */ spec)) as OnnxRuntimeLike;
  } catch {
    throw new DataError(
      'ONNX encoders need ONNX Runtime, an optional peer dependency. In Node: ' +
        "ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.31 and import 'sasha-wsi/node'. " +
        "In a browser: npm install onnxruntime-web@1.31 and pass { runtime: ort } (import * as ort from 'onnxruntime-web').",
    );
  }
}

const MAX_ONNX_BYTES = 2 ** 31 - 1; // protobuf's 2 GB limit; larger models use external data files

/**
 * Cheap checks of the bytes before ONNX Runtime parses them: not empty, not another known
 * format, and starting like an ONNX `ModelProto` (a protobuf message whose first field is
 * `ir_version`, field 1, or another field number below 21).
 * @throws DataError naming the model and what the bytes look like.
 */
export function checkOnnxBytes(bytes: Uint8Array, name: string): void {
  if (bytes.length === 0) throw new DataError(`The ONNX model '${name}' is empty (0 bytes). Export it again with torch.onnx.export.`);
  if (bytes.length > MAX_ONNX_BYTES) throw new DataError(`The ONNX model '${name}' has ${bytes.length} bytes, over protobuf's 2 GB limit; export it with external data.`);
  const head = String.fromCharCode(...bytes.subarray(0, 8));
  const foreign: [boolean, string][] = [
    [head.startsWith('PK'), 'a zip archive (a PyTorch .pt / .pth checkpoint?)'],
    [head.startsWith('\x89HDF'), 'an HDF5 file'],
    [head.startsWith('{') || head.startsWith('['), 'JSON (a tfjs model.json? use a tfjs model directory instead)'],
    [bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5, 'a Python pickle (a legacy PyTorch checkpoint?)'],
    [head.startsWith('II*\0') || head.startsWith('MM\0*'), 'a TIFF image'],
  ];
  for (const [hit, what] of foreign) {
    if (hit) throw new DataError(`'${name}' is not an ONNX model: it is ${what}. Export the encoder with torch.onnx.export (docs/guides/encoders.md).`);
  }
  const tag = bytes[0];
  const field = tag >> 3;
  const wire = tag & 7;
  if (!(field >= 1 && field <= 20 && (wire === 0 || wire === 2))) {
    throw new DataError(`'${name}' is not an ONNX model (its first byte 0x${tag.toString(16)} starts no ONNX ModelProto field). The file is corrupt or of another format.`);
  }
}

function staticDim(v: number | string | undefined): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** Copies an ORT output to float32. */
function toFloat32(t: OrtTensorLike, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const d = t.data as Uint16Array | { buffer: ArrayBuffer; byteOffset: number; length: number };
    const bits = d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.length);
    return decodeFloat16(bits);
  }
  if (t.type === 'float64') return Float32Array.from(t.data as Float64Array);
  throw new ShapeError(`The ONNX model '${name}' returned ${t.type} features; expected float32, float16 or float64.`);
}

/**
 * A {@link PatchEncoder} over ONNX Runtime.
 *
 * Each batch of raw patches `[B, h, w, 3]` (RGB in [0, 255]) is resized (to `resizeSize`,
 * then centre-cropped to `inputSize`), normalised `(x / 255 - mean) / std`, laid out as NCHW
 * or NHWC, cast to the input dtype and run in chunks of `batchSize`; the chosen output is
 * reduced to `[B, d]` (`'pooled'` as is, `'cls'` token 0, `'mean'` the mean of the tokens after
 * `prefixTokens`).
 *
 * The session runs asynchronously: use `encodeAsync` (the library's `extractFeatures` and
 * `analyzeSlide` do); `encode` throws.
 *
 * @param model the `.onnx` bytes (in Node, `loadOnnxEncoder(path)` from `sasha-wsi/node` reads a file).
 * @returns the encoder; `dispose()` releases the session.
 * @throws DataError for bytes that are no ONNX model, a model ONNX Runtime cannot load, or a
 *   missing runtime (with the install line); ShapeError for a model input that is not an
 *   image batch, an `inputSize` the model does not take, or an output width other than `dim`.
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * const bytes = new Uint8Array(await (await fetch('/models/vit_s16.onnx')).arrayBuffer());
 * const enc = await onnxEncoder(bytes, { runtime: ort, output: 'pooled', normalization: 'imagenet' });
 * const z = await enc.encodeAsync(patches); // [B, 384]
 * enc.dispose();
 * ```
 * @category Encoders
 */
export async function onnxEncoder(model: Uint8Array | ArrayBuffer, options: OnnxEncoderOptions = {}): Promise<OnnxPatchEncoder> {
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  const name = options.name ?? `onnx(${bytes.length} bytes)`;
  const normalization = options.normalization ?? 'imagenet';
  checkNormalization(normalization);
  const posInt = (key: keyof OnnxEncoderOptions, min = 1) => {
    const v = options[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min)) {
      throw new ValueError(`Expected onnxEncoder option ${key} to be an integer >= ${min}, but got ${String(v)}.`);
    }
  };
  (['inputSize', 'resizeSize', 'batchSize', 'threads', 'dim'] as const).forEach((k) => posInt(k));
  posInt('prefixTokens', 0);
  if (options.layout !== undefined && options.layout !== 'NCHW' && options.layout !== 'NHWC') {
    throw new ValueError(`Expected onnxEncoder option layout to be 'NCHW' or 'NHWC', but got '${String(options.layout)}'.`);
  }
  if (options.output !== undefined && !['pooled', 'cls', 'mean'].includes(options.output)) {
    throw new ValueError(`Expected onnxEncoder option output to be 'pooled', 'cls' or 'mean', but got '${String(options.output)}'.`);
  }
  if (options.dtype !== undefined && options.dtype !== 'float32' && options.dtype !== 'float16') {
    throw new ValueError(`Expected onnxEncoder option dtype to be 'float32' or 'float16', but got '${String(options.dtype)}'.`);
  }
  checkOnnxBytes(bytes, name);
  const ort = await resolveRuntime(options.runtime);
  if (options.threads !== undefined && ort.env?.wasm) ort.env.wasm.numThreads = options.threads;
  let session: OrtSessionLike;
  try {
    session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...(options.threads !== undefined ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
      ...(options.sessionOptions ?? {}),
    });
  } catch (e) {
    throw new DataError(`ONNX Runtime cannot load the model '${name}': ${firstLine(e)}. The file is corrupt, truncated or not an ONNX model.`);
  }
  try {
    return await buildEncoder(ort, session, name, normalization, options);
  } catch (e) {
    await session.release().catch(() => undefined);
    throw e;
  }
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).replace(/\.$/, '').slice(0, 500);
}

async function buildEncoder(
  ort: OnnxRuntimeLike,
  session: OrtSessionLike,
  name: string,
  normalization: Normalization,
  options: OnnxEncoderOptions,
): Promise<OnnxPatchEncoder> {
  if (session.inputNames.length !== 1) {
    throw new ShapeError(
      `The ONNX model '${name}' has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); expected one image batch input [B, 3, H, W]. ` +
        'Export the vision tower alone (docs/guides/encoders.md).',
    );
  }
  const inputName = session.inputNames[0];
  const outputName = options.outputName ?? session.outputNames[0];
  if (!session.outputNames.includes(outputName)) {
    throw new ValueError(`The ONNX model '${name}' has no output '${outputName}'; its outputs are ${session.outputNames.join(', ')}.`);
  }
  const inMeta = session.inputMetadata?.find((m) => m.name === inputName);
  const outMeta = session.outputMetadata?.find((m) => m.name === outputName);
  const inShape = inMeta?.shape ?? [];
  if (inMeta && inShape.length > 0 && inShape.length !== 4) {
    throw new ShapeError(`The ONNX model '${name}' takes input '${inputName}' of shape [${inShape.join(', ')}]; expected an image batch [B, 3, H, W] or [B, H, W, 3].`);
  }
  let layout = options.layout;
  if (!layout) layout = inShape.length === 4 && staticDim(inShape[3]) === 3 && staticDim(inShape[1]) !== 3 ? 'NHWC' : 'NCHW';
  const [hAxis, wAxis, cAxis] = layout === 'NCHW' ? [2, 3, 1] : [1, 2, 3];
  const channels = staticDim(inShape[cAxis]);
  if (channels !== undefined && channels !== 3) {
    throw new ShapeError(`The ONNX model '${name}' takes ${channels}-channel input [${inShape.join(', ')}] (layout ${layout}); expected 3-channel RGB. Check the layout option.`);
  }
  const declaredH = staticDim(inShape[hAxis]);
  const declaredW = staticDim(inShape[wAxis]);
  if (declaredH !== undefined && declaredW !== undefined && declaredH !== declaredW) {
    throw new ShapeError(`The ONNX model '${name}' takes ${declaredH} x ${declaredW} input; expected square patches.`);
  }
  const inputSize = options.inputSize ?? declaredH;
  if (inputSize === undefined) {
    throw new ValueError(`The ONNX model '${name}' has dynamic spatial axes (input [${inShape.join(', ')}]); pass inputSize (e.g. 224).`);
  }
  if (declaredH !== undefined && inputSize !== declaredH) {
    throw new ShapeError(
      `The ONNX model '${name}' takes input [${inShape.join(', ')}] (side ${declaredH}), but inputSize ${inputSize} was asked for. Drop inputSize or export the model for ${inputSize} px.`,
    );
  }
  const resizeSize = options.resizeSize ?? inputSize;
  if (resizeSize < inputSize) throw new ValueError(`Expected resizeSize >= inputSize (${inputSize}), but got ${resizeSize}.`);
  const declaredType = inMeta?.type;
  if (options.dtype === undefined && declaredType !== undefined && declaredType !== 'float32' && declaredType !== 'float16') {
    throw new ShapeError(`The ONNX model '${name}' takes ${declaredType} input; expected float32 or float16 pixels.`);
  }
  const dtype: 'float32' | 'float16' = options.dtype ?? (declaredType === 'float16' ? 'float16' : 'float32');
  const fixedBatch = staticDim(inShape[0]);
  const batchSize = fixedBatch ?? options.batchSize ?? 32;
  const outShape = outMeta?.shape ?? [];
  let output = options.output;
  if (!output && outShape.length === 3) {
    throw new ShapeError(
      `The ONNX model '${name}' returns token features [${outShape.join(', ')}] from '${outputName}'; choose output: 'cls' (the CLS token) or 'mean' (with prefixTokens), or export a pooled output.`,
    );
  }
  output ??= 'pooled';
  const prefixTokens = options.prefixTokens ?? 0;
  const dims = layout === 'NCHW' ? [3, inputSize, inputSize] : [inputSize, inputSize, 3];
  const perPatch = 3 * inputSize * inputSize;
  let released = false;
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs one chunk of `b` preprocessed patches; returns `[b, d]` row-major. */
  const runChunk = async (x: Float32Array, b: number): Promise<{ rows: Float32Array; d: number }> => {
    const feedB = fixedBatch ?? b;
    let data: Float32Array = x;
    if (feedB !== b) {
      data = new Float32Array(feedB * perPatch);
      data.set(x);
    }
    const input = dtype === 'float16' ? new ort.Tensor('float16', encodeFloat16(data), [feedB, ...dims]) : new ort.Tensor('float32', data, [feedB, ...dims]);
    let res: Record<string, OrtTensorLike>;
    try {
      res = await session.run({ [inputName]: input }, [outputName]);
    } catch (e) {
      throw new ShapeError(
        `ONNX Runtime failed on the model '${name}' with input '${inputName}' [${[feedB, ...dims].join(', ')}] (${layout}, ${dtype}): ${firstLine(e)}. ` +
          'Check inputSize, layout and dtype against the model (docs/guides/encoders.md).',
      );
    } finally {
      input.dispose?.();
    }
    const y = res[outputName];
    try {
      const vals = toFloat32(y, name);
      const shape = y.dims;
      return { rows: reduceOutput(vals, shape, feedB, b, output!, prefixTokens, name, outputName), d: shapeWidth(shape, output!, name, outputName) };
    } finally {
      for (const t of Object.values(res)) t.dispose?.();
    }
  };

  const encodeAsync = async (batch: tf.Tensor4D): Promise<tf.Tensor2D> => {
    if (released) throw new StateError(`The ONNX encoder '${name}' was disposed; create a new one.`);
    if (batch.rank !== 4 || batch.shape[3] !== 3) throw new ShapeError(`Expected a patch batch of shape [B, h, w, 3], but got ${fmtShape(batch.shape)}.`);
    const B = batch.shape[0];
    const x = preprocessPatches(batch, {
      inputSize,
      resizeSize,
      resizeMethod: options.resizeMethod,
      normalization,
      dataFormat: layout === 'NCHW' ? 'channelsFirst' : 'channelsLast',
    });
    let pixels: Float32Array;
    try {
      pixels = (await x.data()) as Float32Array;
    } finally {
      x.dispose();
    }
    // one run at a time per session
    const job = queue.then(async () => {
      const chunks: Float32Array[] = [];
      let d = 0;
      for (let s = 0; s < B; s += batchSize) {
        const b = Math.min(batchSize, B - s);
        const r = await runChunk(pixels.subarray(s * perPatch, (s + b) * perPatch), b);
        d = r.d;
        chunks.push(r.rows);
      }
      const out = new Float32Array(B * d);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return { out, d };
    });
    queue = job.catch(() => undefined);
    const { out, d } = await job;
    return tf.tensor2d(out, [B, d]);
  };

  // The feature width: from the output metadata, else from one blank patch.
  let dim = output === 'pooled' ? (outShape.length === 2 ? staticDim(outShape[1]) : undefined) : outShape.length === 3 ? staticDim(outShape[2]) : undefined;
  if (dim === undefined || (options.dim !== undefined && dim !== options.dim)) {
    const probe = await runChunk(new Float32Array(perPatch), 1);
    dim = probe.d;
  }
  if (options.dim !== undefined && dim !== options.dim) {
    throw new ShapeError(`The ONNX model '${name}' gives features of width ${dim} (output '${outputName}', ${output}), but d = ${options.dim} was expected. Use d = ${dim} or the encoder the features were made with.`);
  }
  const d = dim;
  return {
    dim: d,
    inputSize,
    name,
    info: Object.freeze({ inputName, outputName, layout, dtype, batchSize, output }),
    encode(): tf.Tensor2D {
      throw new StateError(`The ONNX encoder '${name}' runs asynchronously: call encodeAsync (or encodePatches(encoder, batch)).`);
    },
    encodeAsync: async (batch) => {
      const y = await encodeAsync(batch);
      if (y.shape[1] !== d) {
        y.dispose();
        throw new ShapeError(`The ONNX model '${name}' returned features of width ${y.shape[1]}, but its width was ${d} when it was loaded.`);
      }
      return y;
    },
    async release() {
      if (released) return;
      released = true;
      await queue;
      await session.release();
    },
    dispose() {
      if (released) return;
      released = true;
      void queue.then(() => session.release()).catch(() => undefined);
    },
  };
}

/** The feature width of an output of shape `shape` under `output`. */
function shapeWidth(shape: readonly number[], output: OnnxOutputPooling, name: string, outputName: string): number {
  if (output === 'pooled') {
    const rest = shape.slice(1).filter((v) => v !== 1);
    if (shape.length >= 2 && rest.length <= 1) return rest[0] ?? 1;
    throw new ShapeError(
      `The ONNX model '${name}' returned '${outputName}' of shape [${shape.join(', ')}]; output 'pooled' needs [B, d] (or [B, d, 1, 1]). For token outputs [B, T, d] choose output: 'cls' or 'mean'.`,
    );
  }
  if (shape.length !== 3) {
    throw new ShapeError(`The ONNX model '${name}' returned '${outputName}' of shape [${shape.join(', ')}]; output '${output}' needs token features [B, T, d].`);
  }
  return shape[2];
}

/** Reduces an output `[feedB, ...]` to the first `b` rows of `[b, d]`. */
function reduceOutput(
  vals: Float32Array,
  shape: readonly number[],
  feedB: number,
  b: number,
  output: OnnxOutputPooling,
  prefixTokens: number,
  name: string,
  outputName: string,
): Float32Array {
  if (shape[0] !== feedB) throw new ShapeError(`The ONNX model '${name}' returned ${shape[0]} rows of '${outputName}' for a batch of ${feedB} patches.`);
  const d = shapeWidth(shape, output, name, outputName);
  if (output === 'pooled') return vals.slice(0, b * d);
  const T = shape[1];
  const out = new Float32Array(b * d);
  if (output === 'cls') {
    for (let i = 0; i < b; i++) out.set(vals.subarray(i * T * d, i * T * d + d), i * d);
    return out;
  }
  if (prefixTokens >= T) throw new ShapeError(`The ONNX model '${name}' returns ${T} tokens; prefixTokens ${prefixTokens} leaves none to average.`);
  const n = T - prefixTokens;
  for (let i = 0; i < b; i++) {
    const row = out.subarray(i * d, (i + 1) * d);
    for (let t = prefixTokens; t < T; t++) {
      const base = (i * T + t) * d;
      for (let j = 0; j < d; j++) row[j] += vals[base + j];
    }
    for (let j = 0; j < d; j++) row[j] /= n;
  }
  return out;
}
