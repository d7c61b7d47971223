/**
 * Low-level access to HDF5 files through h5wasm's Node build: loading the module, checking a
 * file before HDF5 sees it (so that a missing, foreign or truncated file gives a clear error),
 * and reading datasets as raw bytes (which is how float16 data is reached: h5wasm's
 * `dataset.value` throws "Float16 not supported").
 *
 * @packageDocumentation
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type * as H5 from 'h5wasm';
import { DataError, StateError, fmtShape, quoteValue } from '../../core/errors.js';
import { decodeFloat16 } from '../../core/float16.js';

/** The h5wasm namespace (its Node build). */
export type H5Wasm = typeof H5;
/** The Emscripten module under h5wasm (malloc, dataset reads). */
export type H5Module = Awaited<typeof H5.ready>;

let loading: Promise<{ h5: H5Wasm; module: H5Module }> | undefined;

/**
 * Loads h5wasm's Node build once. HDF5 errors are switched to thrown exceptions (instead of
 * messages printed on stderr).
 *
 * @returns the h5wasm namespace and its Emscripten module.
 * @category IO
 */
export function loadH5(): Promise<{ h5: H5Wasm; module: H5Module }> {
  if (!loading) {
    loading = (async () => {
      // h5wasm/node is ESM only. The CommonJS build of this file turns import() into require(),
      // which cannot load it on Node 20; there, the import is redone out of the bundler's sight.
      const spec = 'h5wasm/node';
      let h5: H5Wasm & { default?: H5Wasm };
      const missing = (e: unknown) => {
        const code = (e as { code?: string }).code;
        return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
          ? new StateError('Reading and writing h5 feature files needs h5wasm, an optional dependency of sasha-wsi that is not installed: npm install h5wasm.')
          : e;
      };
      try {
        h5 = (await import(/* @vite-ignore */ spec)) as H5Wasm & { default?: H5Wasm };
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED' && code !== 'ERR_REQUIRE_ESM') throw missing(e);
        const esmImport = new Function('s', 'return import(s)') as (s: string) => Promise<unknown>;
        h5 = (await esmImport(spec).catch((e2: unknown) => Promise.reject(missing(e2)))) as H5Wasm & { default?: H5Wasm };
      }
      const ns = (h5.File ? h5 : h5.default) as H5Wasm;
      const module = await ns.ready;
      module.activate_throwing_error_handler();
      return { h5: ns, module };
    })();
    loading.catch(() => (loading = undefined));
  }
  return loading;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Checks that `path` is a complete HDF5 file: it exists, carries the HDF5 signature (at byte 0
 * or after a user block of 512 x 2^i bytes), and is at least as long as its superblock says.
 *
 * @param what how the file is named in messages (`'the low-res feature file'`).
 * @throws DataError naming the file and the fix.
 * @category IO
 */
export function checkH5File(path: string, what = 'the h5 file'): void {
  if (!existsSync(path)) throw new DataError(`Cannot find ${what} '${path}'. Check the path.`);
  const st = statSync(path);
  if (!st.isFile()) throw new DataError(`Expected ${what} '${path}' to be a file, but it is a directory.`);
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    let base = -1;
    for (let off = 0; off + 8 <= st.size; off = off === 0 ? 512 : off * 2) {
      const got = readSync(fd, head, 0, 64, off);
      if (got >= 8 && SIGNATURE.every((b, i) => head[i] === b)) {
        base = off;
        break;
      }
      if (off > 1 << 26) break;
    }
    if (base < 0) {
      throw new DataError(
        `${what} '${path}' is not an HDF5 file (no HDF5 signature). ` +
          'Pass the .h5 file written by the feature extraction (for CLAM: h5_files/<slide>.h5, not the .pt files).',
      );
    }
    const version = head[8];
    let eof: bigint | undefined;
    if (version === 0 || version === 1) {
      const offsets = head[13];
      // v0: base address at 24; v1 adds 4 bytes before it. Then free-space, EOF, driver addresses.
      const at = (version === 0 ? 24 : 28) + 2 * offsets;
      if (offsets === 8 && at + 8 <= 64) eof = head.readBigUInt64LE(at);
    } else if (version === 2 || version === 3) {
      const offsets = head[9];
      // base address at 12, superblock extension, then EOF.
      if (offsets === 8) eof = head.readBigUInt64LE(12 + 2 * offsets);
    }
    if (eof !== undefined && eof !== 0xffffffffffffffffn && BigInt(st.size - base) < eof) {
      throw new DataError(
        `${what} '${path}' is truncated: ${st.size - base} bytes on disk, but its header says ${eof}. ` +
          'The copy or the extraction was interrupted: copy the file again or re-run the feature extraction.',
      );
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens an HDF5 file for reading after {@link checkH5File}.
 * @returns an open h5wasm file; close it with `file.close()`.
 * @throws DataError naming the file.
 * @category IO
 */
export async function openH5(path: string, what = 'the h5 file'): Promise<H5.File> {
  checkH5File(path, what);
  const { h5 } = await loadH5();
  try {
    return new h5.File(path, 'r');
  } catch (e) {
    throw new DataError(`Cannot open ${what} '${path}' with HDF5: ${firstLine(e)}. Check that the file is complete and not open for writing.`);
  }
}

/** The innermost message of an HDF5 error stack (or the error's first line). @internal */
export function firstLine(e: unknown): string {
  const text = String((e as Error)?.message ?? e);
  const frames = text.split('\n').filter((l) => /^\s*#\d+:/.test(l));
  const last = frames.pop();
  if (last) return last.replace(/^\s*#\d+:.* in (\w+\(\)): /, '$1: ').trim();
  return (text.split('\n')[0] ?? 'unknown error').slice(0, 300);
}

/**
 * Runs one h5wasm call on an open file, turning an HDF5 error (a damaged object header, a
 * broken link table) into a `DataError` naming the file.
 * @internal
 */
export function h5Call<T>(file: H5.File, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`'${file.filename}': ${what} failed (${firstLine(e)}). The file is damaged: copy it again or re-extract the features.`);
  }
}

/**
 * The group at `path` of an open file.
 * @throws DataError when it is missing, is not a group, or cannot be read.
 * @internal
 */
export function h5Group(file: H5.File, path: string): H5.Group {
  const obj = h5Call(file, `reading group '${path}'`, () => file.get(path));
  if (obj === null || typeof (obj as H5.Group).keys !== 'function') throw new DataError(`'${file.filename}' has no group '${path}'.`);
  return obj as H5.Group;
}

/** Names of the groups at the root of an open file. @internal */
export function h5RootGroups(file: H5.File): string[] {
  return h5Call(file, 'listing its groups', () =>
    file.keys().filter((name) => {
      const obj = file.get(name);
      return obj !== null && typeof (obj as H5.Group).keys === 'function';
    }),
  );
}

/**
 * Largest ratio of a dataset's bytes to its file's bytes that a read accepts for chunked
 * (possibly compressed) datasets: DEFLATE cannot exceed 1032:1. Contiguous datasets must fit
 * in the file. A damaged dataspace that claims more is refused before anything is allocated.
 */
export const MAX_H5_EXPANSION = 1032;

/** Element type of a dataset, as we read it. @category IO */
export type H5ElementType = 'float16' | 'float32' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';

/** Shape and element type of a dataset. @category IO */
export interface H5DatasetInfo {
  shape: number[];
  type: H5ElementType;
  /** Stored in chunks (possibly compressed) rather than in one contiguous block. */
  chunked?: boolean;
}

/**
 * Reads the shape and element type of the dataset at `path` (metadata only).
 * @returns `undefined` when there is no dataset at `path`.
 * @throws DataError when the dataset holds something other than numbers.
 * @category IO
 */
export async function datasetInfo(file: H5.File, path: string): Promise<H5DatasetInfo | undefined> {
  const { module } = await loadH5();
  // get_type is -1 for a missing path (no HDF5 error), and costs O(1) in the number of groups.
  if (h5Call(file, `reading '${path}'`, () => module.get_type(file.file_id, path)) !== module.H5O_TYPE_DATASET) return undefined;
  const meta = h5Call(file, `reading the header of dataset '${path}'`, () => module.get_dataset_metadata(file.file_id, path));
  const shape = (meta.shape ?? []).map(Number);
  if (shape.some((s) => !Number.isSafeInteger(s) || s < 0)) throw new DataError(`'${file.filename}': dataset '${path}' has the shape [${shape.join(', ')}]. The file is damaged.`);
  const type = elementType(meta);
  if (type === undefined) {
    throw new DataError(`'${file.filename}': dataset '${path}' does not hold plain numbers (HDF5 class ${meta.type}, size ${meta.size}).`);
  }
  return { shape, type, chunked: meta.chunks !== null && meta.chunks !== undefined };
}

/**
 * True when `path` names a group of `file`.
 * @category IO
 */
export async function hasGroup(file: H5.File, path: string): Promise<boolean> {
  const { module } = await loadH5();
  return h5Call(file, `reading '${path}'`, () => module.get_type(file.file_id, path)) === module.H5O_TYPE_GROUP;
}

function elementType(meta: H5.Metadata): H5ElementType | undefined {
  if (meta.type === 1) {
    if (meta.size === 2) return 'float16';
    if (meta.size === 4) return 'float32';
    if (meta.size === 8) return 'float64';
  } else if (meta.type === 0) {
    const bits = meta.size * 8;
    if ([8, 16, 32, 64].includes(bits)) return `${meta.signed ? 'int' : 'uint'}${bits}` as H5ElementType;
  }
  return undefined;
}

/**
 * Reads a whole dataset (or the leading rows `[start, start + count)`) as raw little-endian
 * bytes, through a buffer malloc'ed in the wasm heap.
 * @returns the bytes and the shape that was read.
 * @category IO
 */
export async function readRaw(
  file: H5.File,
  path: string,
  rows?: { start: number; count: number },
): Promise<{ bytes: Uint8Array; shape: number[]; type: H5ElementType }> {
  const { module } = await loadH5();
  const info = await datasetInfo(file, path);
  if (!info) throw new DataError(`'${file.filename}' has no dataset '${path}'.`);
  const shape = [...info.shape];
  let count: bigint[] | null = null;
  let offset: bigint[] | null = null;
  let strides: bigint[] | null = null;
  if (rows) {
    if (shape.length === 0 || rows.start < 0 || rows.count < 0 || rows.start + rows.count > shape[0]) {
      throw new DataError(`'${file.filename}': rows [${rows.start}, ${rows.start + rows.count}) are outside dataset '${path}' of shape ${fmtShape(shape)}.`);
    }
    shape[0] = rows.count;
    count = shape.map(BigInt);
    offset = shape.map((_, i) => BigInt(i === 0 ? rows.start : 0));
    strides = shape.map(() => 1n);
  }
  const size = elementSize(info.type);
  const total = shape.reduce((a, b) => a * b, 1);
  const nbytes = total * size;
  if (nbytes === 0) return { bytes: new Uint8Array(0), shape, type: info.type };
  let fileBytes = Infinity;
  try {
    fileBytes = statSync(file.filename).size;
  } catch {
    // not a plain file (an in-memory file): no bound from its size
  }
  const limit = info.chunked ? MAX_H5_EXPANSION * fileBytes + 2 ** 20 : fileBytes;
  if (nbytes > limit) {
    throw new DataError(
      `'${file.filename}': dataset '${path}' claims ${fmtShape(info.shape)} ${info.type} values (${nbytes} bytes), more than a file of ${fileBytes} bytes can hold. ` +
        'The file is damaged: copy it again or re-extract the features.',
    );
  }
  const ptr = module._malloc(nbytes);
  if (ptr === 0) throw new DataError(`'${file.filename}': cannot allocate ${nbytes} bytes to read '${path}'.`);
  try {
    try {
      module.get_dataset_data(file.file_id, path, count, offset, strides, BigInt(ptr));
    } catch (e) {
      throw new DataError(
        `'${file.filename}': reading dataset '${path}' failed (${firstLine(e)}). The file may be damaged: copy it again or re-extract the features.`,
      );
    }
    return { bytes: module.HEAPU8.slice(ptr, ptr + nbytes), shape, type: info.type };
  } finally {
    module._free(ptr);
  }
}

function elementSize(type: H5ElementType): number {
  if (type === 'float16') return 2;
  const bits = Number(type.replace(/\D/g, ''));
  return bits / 8;
}

/**
 * Converts raw little-endian bytes of any numeric type to float32 (float16 decoded exactly).
 * @category IO
 */
export function bytesToFloat32(bytes: Uint8Array, type: H5ElementType): Float32Array {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  switch (type) {
    case 'float16':
      return decodeFloat16(new Uint16Array(buf));
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return Float32Array.from(new Float64Array(buf));
    case 'int64':
      return Float32Array.from(new BigInt64Array(buf), Number);
    case 'uint64':
      return Float32Array.from(new BigUint64Array(buf), Number);
    default:
      return Float32Array.from(intView(buf, type));
  }
}

/**
 * Converts raw little-endian bytes of an integer (or integral float) dataset to int32.
 * @throws DataError when a value does not fit in int32 or is not an integer.
 * @category IO
 */
export function bytesToInt32(bytes: Uint8Array, type: H5ElementType, where: string): Int32Array {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  if (type === 'int32') return new Int32Array(buf);
  const src: ArrayLike<number | bigint> =
    type === 'int64'
      ? new BigInt64Array(buf)
      : type === 'uint64'
        ? new BigUint64Array(buf)
        : type.startsWith('float')
          ? bytesToFloat32(bytes, type)
          : intView(buf, type);
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new DataError(`${where}: expected integer pixel coordinates, but found ${String(src[i])}.`);
    }
    out[i] = v;
  }
  return out;
}

function intView(buf: ArrayBuffer, type: H5ElementType): ArrayLike<number> {
  switch (type) {
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
      return new Uint8Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'uint16':
      return new Uint16Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'uint32':
      return new Uint32Array(buf);
    default:
      throw new DataError(`Unsupported element type ${type}.`);
  }
}

/**
 * Reads a numeric attribute (h5py writes Python ints as int64, which h5wasm returns as a BigInt).
 * @returns the value as a number, or `undefined` when the attribute is absent.
 * @throws DataError when it is not a single number.
 * @category IO
 */
export function readNumberAttr(obj: H5.Group | H5.Dataset, name: string, where: string): number | undefined {
  let v: unknown;
  try {
    const attrs = obj.attrs;
    if (!(name in attrs)) return undefined;
    v = attrs[name].value;
  } catch (e) {
    throw new DataError(`${where}: reading attribute '${name}' failed (${firstLine(e)}). The file is damaged: copy it again or re-extract the features.`);
  }
  if (ArrayBuffer.isView(v) || Array.isArray(v)) {
    const arr = v as ArrayLike<unknown>;
    if (arr.length !== 1) throw new DataError(`${where}: expected attribute '${name}' to be one number, but it has ${arr.length} values.`);
    v = arr[0];
  }
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return Number(v);
  throw new DataError(`${where}: expected attribute '${name}' to be a number, but got ${quoteValue(v)}.`);
}
