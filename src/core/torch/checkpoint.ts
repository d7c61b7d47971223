/**
 * PyTorch checkpoints (`.pt` / `.pth` files written by `torch.save`) read in TypeScript, with no
 * Python at run time: the zip archive, its `data.pkl` pickle, and the tensor storages it
 * refers to. Tensors are decoded only when asked for (an optimiser state in the same file
 * costs nothing), and every size is checked against the file, so a truncated or hostile file
 * ends in a {@link DataError} naming it.
 *
 * @packageDocumentation
 */
import { DataError, quoteValue } from '../errors.js';
import { decodeFloat16 } from '../float16.js';
import { PyGlobal, PyObject, unpickle } from './pickle.js';
import { isZip, readZip, type ZipEntry } from './zip.js';

/** Element types of PyTorch storages this reader decodes. @category Utils */
export type TorchDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGE_DTYPES: Record<string, [TorchDtype, number]> = {
  FloatStorage: ['float32', 4],
  DoubleStorage: ['float64', 8],
  HalfStorage: ['float16', 2],
  BFloat16Storage: ['bfloat16', 2],
  LongStorage: ['int64', 8],
  IntStorage: ['int32', 4],
  ShortStorage: ['int16', 2],
  CharStorage: ['int8', 1],
  ByteStorage: ['uint8', 1],
  BoolStorage: ['bool', 1],
};
const DTYPE_NAMES: Record<string, [TorchDtype, number]> = {
  float32: ['float32', 4],
  float: ['float32', 4],
  float64: ['float64', 8],
  double: ['float64', 8],
  float16: ['float16', 2],
  half: ['float16', 2],
  bfloat16: ['bfloat16', 2],
  int64: ['int64', 8],
  long: ['int64', 8],
  int32: ['int32', 4],
  int: ['int32', 4],
  int16: ['int16', 2],
  int8: ['int8', 1],
  uint8: ['uint8', 1],
  bool: ['bool', 1],
};

/** A storage a checkpoint refers to: its member in the archive and its element type. */
class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: TorchDtype,
    readonly itemSize: number,
    readonly numel: number,
  ) {}
}

/**
 * A tensor of a PyTorch checkpoint: dtype and shape at once, values on demand.
 * @category Utils
 */
export class TorchTensor {
  /** @internal */
  constructor(
    /** Element type of its storage. */
    readonly dtype: TorchDtype,
    /** Shape (PyTorch's `size()`); `[]` for a scalar. */
    readonly shape: readonly number[],
    private readonly storage: StorageRef,
    private readonly offset: number,
    private readonly stride: readonly number[],
    private readonly read: (key: string) => Uint8Array,
    private readonly name: string,
  ) {}

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * The values as float32, row-major in {@link TorchTensor.shape} (strides applied).
   * @throws DataError when the storage is missing from the archive or shorter than the tensor needs.
   */
  toFloat32(): Float32Array {
    const { dtype, itemSize, numel, key } = this.storage;
    const raw = this.read(key);
    if (raw.length < numel * itemSize) {
      throw new DataError(`'${this.name}': storage ${key} holds ${raw.length} bytes, but ${numel} ${dtype} values need ${numel * itemSize}; the file is truncated or corrupt.`);
    }
    const size = this.size;
    if (size === 0) return new Float32Array(0);
    if (size > numel) {
      throw new DataError(`'${this.name}': a tensor of shape [${this.shape.join(', ')}] has more elements than its storage of ${numel}; the file is corrupt.`);
    }
    // the largest element index the strides reach must be inside the storage
    let last = this.offset;
    for (let i = 0; i < this.shape.length; i++) last += (this.shape[i] - 1) * this.stride[i];
    if (this.offset < 0 || this.stride.some((s) => s < 0) || last >= numel) {
      throw new DataError(`'${this.name}': a tensor of shape [${this.shape.join(', ')}] reaches element ${last} of a storage of ${numel}; the file is corrupt.`);
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const get = elementReader(dtype, view, raw);
    const out = new Float32Array(size);
    const rank = this.shape.length;
    const idx = new Array<number>(rank).fill(0);
    let src = this.offset;
    for (let i = 0; i < size; i++) {
      out[i] = get(src);
      // advance the multi-index (last axis fastest)
      for (let a = rank - 1; a >= 0; a--) {
        idx[a]++;
        src += this.stride[a];
        if (idx[a] < this.shape[a]) break;
        src -= this.stride[a] * this.shape[a];
        idx[a] = 0;
      }
    }
    return out;
  }
}

function elementReader(dtype: TorchDtype, view: DataView, raw: Uint8Array): (i: number) => number {
  switch (dtype) {
    case 'float32':
      return (i) => view.getFloat32(4 * i, true);
    case 'float64':
      return (i) => view.getFloat64(8 * i, true);
    case 'float16': {
      const one = new Uint16Array(1);
      const out = new Float32Array(1);
      return (i) => {
        one[0] = view.getUint16(2 * i, true);
        return decodeFloat16(one, out)[0];
      };
    }
    case 'bfloat16': {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      return (i) => {
        u[0] = view.getUint16(2 * i, true) << 16;
        return f[0];
      };
    }
    case 'int64':
      return (i) => Number(view.getBigInt64(8 * i, true));
    case 'int32':
      return (i) => view.getInt32(4 * i, true);
    case 'int16':
      return (i) => view.getInt16(2 * i, true);
    case 'int8':
      return (i) => view.getInt8(i);
    case 'uint8':
    case 'bool':
      return (i) => raw[i];
  }
}

/** A value of a checkpoint: numbers, strings, `Map` (dicts), arrays, {@link TorchTensor}s, and records of other Python objects. @category Utils */
export type TorchValue = unknown;

/** What {@link readTorchCheckpoint} returns. @category Utils */
export interface TorchCheckpoint {
  /** The unpickled object `torch.save` was given (usually a `Map`). */
  root: TorchValue;
  /** The archive's name prefix (`archive/` for `torch.save`). */
  prefix: string;
}

const MAX_RANK = 32;

/**
 * Reads a PyTorch checkpoint written by `torch.save` (the zip format, PyTorch >= 1.6).
 *
 * @param bytes the file's bytes.
 * @param name the file name, for errors.
 * @returns the unpickled root object; tensors are {@link TorchTensor}s decoded on demand.
 * @throws DataError naming the file when it is not a zip checkpoint (a legacy pre-1.6 file, an
 *   ONNX model, anything else), is truncated, or holds a malformed pickle or tensor.
 * @example
 * ```ts
 * const ckpt = readTorchCheckpoint(new Uint8Array(await readFile('checkpoint-best.pt')), 'checkpoint-best.pt');
 * const model = (ckpt.root as Map<string, unknown>).get('model') as Map<string, TorchTensor>;
 * model.get('fc1.weight')!.shape; // [768, 1152]
 * ```
 * @category Utils
 */
export function readTorchCheckpoint(bytes: Uint8Array, name = 'checkpoint'): TorchCheckpoint {
  if (bytes.length === 0) throw new DataError(`'${name}' is empty (0 bytes); expected a PyTorch checkpoint.`);
  if (!isZip(bytes)) {
    if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
      throw new DataError(
        `'${name}' is a PyTorch checkpoint in the legacy format (before PyTorch 1.6). Load it in Python and save it again with torch.save(obj, path), which writes the zip format.`,
      );
    }
    throw new DataError(`'${name}' is not a PyTorch checkpoint (no zip archive; torch.save writes one). Point to the .pt / .pth file the training saved.`);
  }
  const entries = readZip(bytes, name);
  const pkl = [...entries.values()].find((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (!pkl) throw new DataError(`'${name}' is a zip archive but not a PyTorch checkpoint (it holds no data.pkl).`);
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  let bigEndian = false;
  const order = entries.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order.data).trim() === 'big') bigEndian = true;
  const cache = new Map<string, Uint8Array>();
  const read = (key: string): Uint8Array => {
    let b = cache.get(key);
    if (b) return b;
    const e: ZipEntry | undefined = entries.get(`${prefix}data/${key}`);
    if (!e) throw new DataError(`'${name}' lacks the tensor storage data/${key}; the file is truncated or corrupt.`);
    b = e.data;
    if (bigEndian) throw new DataError(`'${name}' was saved on a big-endian machine; load and save it again on a little-endian one.`);
    cache.set(key, b);
    return b;
  };
  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw new DataError(`'${name}' refers to a persistent object ${quoteValue(pid)} that is no tensor storage.`);
    }
    const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
    const typeName = type instanceof PyGlobal ? type.name : String(type);
    const dt = STORAGE_DTYPES[typeName] ?? (type instanceof PyGlobal && type.module === 'torch' ? DTYPE_NAMES[typeName] : undefined);
    if (!dt) throw new DataError(`'${name}' holds a storage of type '${typeName}', which this reader does not decode.`);
    if (typeof key !== 'string' || !/^[\w.-]{1,64}$/.test(key)) throw new DataError(`'${name}' names a storage '${String(key).slice(0, 40)}' that is no member key.`);
    if (!(typeof numel === 'number' && Number.isInteger(numel) && numel >= 0)) throw new DataError(`'${name}' gives storage ${key} a size of ${String(numel)}.`);
    const e = entries.get(`${prefix}data/${key}`);
    if (e && e.data.length < numel * dt[1]) {
      throw new DataError(`'${name}': storage ${key} holds ${e.data.length} bytes, but ${numel} ${dt[0]} values need ${numel * dt[1]}; the file is truncated or corrupt.`);
    }
    return new StorageRef(key, dt[0], dt[1], numel);
  };
  const intList = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || v.length > MAX_RANK || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
      throw new DataError(`'${name}' holds a tensor whose ${what} ${quoteValue(v)} is no list of sizes.`);
    }
    return v as number[];
  };
  const reduce = (fn: PyGlobal, args: readonly unknown[]): unknown => {
    const q = fn.qualifiedName;
    if (q === 'torch._utils._rebuild_tensor_v2' || q === 'torch._utils._rebuild_tensor' || q === 'torch._utils._rebuild_tensor_v3') {
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef)) throw new DataError(`'${name}' rebuilds a tensor from something that is no storage.`);
      if (!(typeof offset === 'number' && Number.isInteger(offset) && offset >= 0)) throw new DataError(`'${name}' holds a tensor with storage offset ${String(offset)}.`);
      const shape = intList(size, 'size');
      const strides = intList(stride, 'stride');
      if (strides.length !== shape.length) throw new DataError(`'${name}' holds a tensor with ${shape.length} sizes but ${strides.length} strides.`);
      let dtype = storage.dtype;
      if (q === 'torch._utils._rebuild_tensor_v3' && args[6] instanceof PyGlobal && DTYPE_NAMES[args[6].name]) dtype = DTYPE_NAMES[args[6].name][0];
      if (dtype !== storage.dtype) throw new DataError(`'${name}' views a ${storage.dtype} storage as ${dtype}, which this reader does not decode.`);
      return new TorchTensor(dtype, shape, storage, offset, strides, read, name);
    }
    if (q === 'torch._utils._rebuild_parameter' || q === 'torch._utils._rebuild_parameter_with_state') return args[0];
    return undefined;
  };
  const root = unpickle(pkl.data, { persistentLoad, reduce, name });
  return { root, prefix };
}

/** Whether a value is a dict whose every value is a {@link TorchTensor} (a `state_dict()`). @category Utils */
export function isStateDict(v: unknown): v is Map<string, TorchTensor> {
  if (!(v instanceof Map) || v.size === 0) return false;
  for (const [k, t] of v) if (typeof k !== 'string' || !(t instanceof TorchTensor)) return false;
  return true;
}

/** Converts checkpoint values to plain JSON-able data (dicts to objects, tensors to shape records, objects to their class name). @category Utils */
export function torchValueToJson(v: TorchValue, depth = 0): unknown {
  if (depth > 32) return '...';
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof TorchTensor) return { tensor: v.dtype, shape: v.shape };
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(k)] = torchValueToJson(x, depth + 1);
    return o;
  }
  if (Array.isArray(v)) return v.map((x) => torchValueToJson(x, depth + 1));
  if (v instanceof Set) return [...v].map((x) => torchValueToJson(x, depth + 1));
  if (v instanceof PyObject) return { object: v.cls.qualifiedName };
  if (v instanceof PyGlobal) return { global: v.qualifiedName };
  if (v instanceof Uint8Array) return { bytes: v.length };
  return String(v);
}
