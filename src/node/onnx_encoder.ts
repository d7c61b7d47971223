/**
 * ONNX encoders in Node: `onnxruntime-node` registered as the runtime of `onnxEncoder`
 * (importing `sasha-wsi/node` does it), and `.onnx` files read from disk.
 *
 * @packageDocumentation
 */
import { readFile, stat } from 'node:fs/promises';
import { DataError } from '../core/errors.js';
import { onnxEncoder, setOnnxRuntime, type OnnxEncoderOptions, type OnnxPatchEncoder, type OnnxRuntimeLike } from '../wsi/encoders/index.js';

/**
 * Loads ONNX Runtime in Node: `onnxruntime-node` (native, multi-threaded), else
 * `onnxruntime-web` (wasm); a clear error with the install line when neither is installed.
 * @category Encoders
 */
export async function loadNodeOnnxRuntime(): Promise<OnnxRuntimeLike> {
  for (const spec of ['onnxruntime-node', 'onnxruntime-web']) {
    try {
      const mod = (await import(spec)) as OnnxRuntimeLike & { default?: OnnxRuntimeLike };
      return mod.InferenceSession ? mod : (mod.default as OnnxRuntimeLike);
    } catch {
      // try the next one
    }
  }
  throw new DataError(
    'ONNX encoders need ONNX Runtime, an optional peer dependency: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.31 ' +
      '(the CPU build ships in the package; the variable skips the optional CUDA download).',
  );
}

/** Registers {@link loadNodeOnnxRuntime} as the default runtime of `onnxEncoder` (done on importing `sasha-wsi/node`). */
export function registerNodeOnnxRuntime(): void {
  let cached: Promise<OnnxRuntimeLike> | null = null;
  setOnnxRuntime(() => {
    cached ??= loadNodeOnnxRuntime().catch((e) => {
      cached = null;
      throw e;
    });
    return cached;
  });
}

/**
 * An `onnxEncoder` from an `.onnx` file.
 * @param file path of the model.
 * @param options as `onnxEncoder`; `name` defaults to the path.
 * @throws DataError naming the file when it is missing, empty, not an ONNX model, or cannot be loaded.
 * @example
 * ```ts
 * const enc = await loadOnnxEncoder('models/vit_s16.onnx', { threads: 2 });
 * const z = await enc.encodeAsync(patches); // [B, 384]
 * ```
 * @category Encoders
 */
export async function loadOnnxEncoder(file: string, options: OnnxEncoderOptions = {}): Promise<OnnxPatchEncoder> {
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a file');
    size = s.size;
  } catch {
    throw new DataError(`No ONNX model at '${file}'. Export one with torch.onnx.export (docs/guides/encoders.md).`);
  }
  if (size > 2 ** 31 - 1) throw new DataError(`The ONNX model '${file}' has ${size} bytes, over protobuf's 2 GB limit; export it with external data.`);
  const bytes = new Uint8Array(await readFile(file));
  return onnxEncoder(bytes, { name: file, ...options });
}
