/**
 * An HDF5 file writer that never leaves a half-written file (it writes to a temporary name and
 * renames on {@link H5Writer.commit}) and that can write float16 datasets.
 *
 * h5wasm 0.10.3 cannot create a float16 dataset (its C++ side accepts floats of 4 or 8 bytes
 * only). The writer therefore stores the half-precision bits in a float32 dataset of the same
 * rank and half the element count (an exact byte copy: HDF5 converts nothing between equal
 * types), and after closing the file rewrites three header messages of that dataset: the
 * datatype (IEEE binary16 little-endian, as h5py writes it), the dataspace (the real shape) and
 * the storage size. Files are written with HDF5's earliest format (superblock 0, version-1
 * object headers, no checksums), the format h5py produces by default.
 *
 * @packageDocumentation
 */
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import type * as H5 from 'h5wasm';
import { DataError, ShapeError, StateError, ValueError, fmtShape } from '../../core/errors.js';
import { encodeFloat16 } from '../../core/float16.js';
import { commitTempFile, tempPathFor } from '../io/file_io.js';
import { datasetInfo, loadH5 } from './h5file.js';

/** A float16 dataset whose header must be rewritten after the file is closed. */
interface PendingHalf {
  path: string;
  address: number;
  shape: number[];
}

/**
 * Writes one HDF5 file atomically.
 *
 * @example
 * ```ts
 * const w = await H5Writer.create('/data/lr.h5');
 * w.createGroup('slide_1');
 * w.writeFloat16('slide_1/feat', features, [n, d]);
 * w.writeNumberAttr('slide_1', 'label', 1);
 * await w.commit(); // lr.h5 appears complete, or not at all
 * ```
 * @category IO
 */
export class H5Writer {
  private file: H5.File | undefined;
  private readonly pending: PendingHalf[] = [];

  private constructor(
    /** Final path of the file. */
    readonly path: string,
    /** Temporary path written until {@link commit}. */
    readonly tmpPath: string,
    file: H5.File,
  ) {
    this.file = file;
  }

  /** Starts a new file that will replace `path` on {@link commit}. */
  static async create(path: string): Promise<H5Writer> {
    const { h5 } = await loadH5();
    const tmpPath = tempPathFor(path);
    let file: H5.File;
    try {
      file = new h5.File(tmpPath, 'w', { libver: ['earliest', 'v110'] });
    } catch (e) {
      throw new DataError(`Cannot create '${tmpPath}': ${(e as Error).message.split('\n')[0]}. Check that the directory exists and is writable.`);
    }
    return new H5Writer(path, tmpPath, file);
  }

  private open(): H5.File {
    if (!this.file) throw new StateError(`The writer of '${this.path}' is already committed or aborted.`);
    return this.file;
  }

  /** Creates a group (and its parents) unless it exists. */
  createGroup(path: string): void {
    const file = this.open();
    let cur = '';
    for (const part of path.split('/').filter(Boolean)) {
      const parent = cur === '' ? file : (file.get(cur) as H5.Group);
      if (!parent.keys().includes(part)) parent.create_group(part);
      cur = cur === '' ? part : `${cur}/${part}`;
    }
  }

  private parentOf(path: string): { group: H5.Group; name: string } {
    const file = this.open();
    const parts = path.split('/').filter(Boolean);
    const name = parts.pop()!;
    if (parts.length > 0) this.createGroup(parts.join('/'));
    return { group: parts.length > 0 ? (file.get(parts.join('/')) as H5.Group) : file, name };
  }

  /**
   * Writes a float16 dataset. `values` are rounded to the nearest half (ties to even); a
   * `Uint16Array` is taken as half-precision bits already encoded.
   */
  writeFloat16(path: string, values: ArrayLike<number> | Uint16Array, shape: readonly number[]): void {
    const total = checkShape(path, values.length, shape);
    if (total === 0) throw new ValueError(`Expected a non-empty dataset '${path}', but got shape ${fmtShape(shape)}.`);
    const pairs = Math.ceil(total / 2);
    const bits = new Uint16Array(2 * pairs);
    if (values instanceof Uint16Array) bits.set(values);
    else {
      encodeFloat16(values, bits.subarray(0, total));
      for (let i = 0; i < total; i++) {
        if ((bits[i] & 0x7fff) === 0x7c00 && Number.isFinite(values[i])) {
          throw new DataError(
            `Dataset '${path}': value ${values[i]} at flat index ${i} is beyond the float16 range (65504). ` +
              "Write with dtype 'float32', or normalise the features.",
          );
        }
      }
    }
    const placeholder = [...shape.slice(0, -1).map(() => 1), pairs];
    const { group, name } = this.parentOf(path);
    const ds = group.create_dataset({ name, data: new Float32Array(bits.buffer), shape: placeholder, dtype: '<f4' });
    const ref = ds.create_reference().ref_data;
    if (ref.length !== 8) throw new StateError(`Unexpected HDF5 object reference size ${ref.length} while writing '${path}'.`);
    let address = 0;
    for (let i = 7; i >= 0; i--) address = address * 256 + ref[i];
    this.pending.push({ path: normalise(path), address, shape: [...shape] });
  }

  /** Writes a float32 dataset. */
  writeFloat32(path: string, values: ArrayLike<number>, shape: readonly number[]): void {
    checkShape(path, values.length, shape);
    const { group, name } = this.parentOf(path);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    group.create_dataset({ name, data, shape: [...shape], dtype: '<f4' });
  }

  /** Writes an integer dataset as int32 (`'<i4'`) or int64 (`'<i8'`, what numpy writes by default). */
  writeInt(path: string, values: ArrayLike<number>, shape: readonly number[], dtype: '<i4' | '<i8' = '<i4'): void {
    checkShape(path, values.length, shape);
    const { group, name } = this.parentOf(path);
    const data = dtype === '<i4' ? Int32Array.from(values) : BigInt64Array.from(Array.from(values), (v) => BigInt(v));
    // h5wasm reads the letter only: 'i' is int32, 'q' is int64.
    group.create_dataset({ name, data, shape: [...shape], dtype: dtype === '<i4' ? '<i' : '<q' });
  }

  /** Sets an integer attribute (int64, as h5py stores a Python int) on a group or dataset. */
  writeNumberAttr(objectPath: string, name: string, value: number): void {
    if (!Number.isInteger(value)) throw new ValueError(`Expected attribute '${name}' of '${objectPath}' to be an integer, but got ${value}.`);
    const file = this.open();
    const obj = (objectPath === '' || objectPath === '/' ? file : file.get(objectPath)) as H5.Group | null;
    if (!obj) throw new StateError(`Cannot set attribute '${name}': '${objectPath}' does not exist in '${this.tmpPath}'.`);
    obj.create_attribute(name, value, null, '<q');
  }

  /**
   * Closes the file, finishes its float16 datasets, checks them, and renames it to its final
   * path (replacing any file there).
   */
  async commit(): Promise<void> {
    const file = this.open();
    this.file = undefined;
    try {
      file.close();
      patchHalfDatasets(this.tmpPath, this.pending);
      await verifyHalfDatasets(this.tmpPath, this.pending);
      commitTempFile(this.tmpPath, this.path);
    } catch (e) {
      if (existsSync(this.tmpPath)) unlinkSync(this.tmpPath);
      throw e;
    }
  }

  /** Closes and deletes the temporary file; the final path is left untouched. */
  abort(): void {
    if (this.file) {
      try {
        this.file.close();
      } catch {
        // already broken; the temporary file is removed below
      }
      this.file = undefined;
    }
    if (existsSync(this.tmpPath)) unlinkSync(this.tmpPath);
  }
}

function normalise(path: string): string {
  return '/' + path.split('/').filter(Boolean).join('/');
}

function checkShape(path: string, length: number, shape: readonly number[]): number {
  if (shape.length === 0 || shape.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new ShapeError(`Expected the shape of '${path}' to be a list of non-negative integers, but got ${fmtShape(shape)}.`);
  }
  const total = shape.reduce((a, b) => a * b, 1);
  if (total !== length) throw new ShapeError(`Dataset '${path}': shape ${fmtShape(shape)} needs ${total} values, but got ${length}.`);
  return total;
}

// Header message types (HDF5 file format specification, section IV.A.2).
const MSG_DATASPACE = 0x0001;
const MSG_DATATYPE = 0x0003;
const MSG_FILL_VALUE = 0x0005;
const MSG_LAYOUT = 0x0008;
const MSG_CONTINUATION = 0x0010;

/**
 * Datatype message of IEEE binary16 little-endian: class 1 version 1; bit field: little-endian,
 * implied mantissa MSB, sign at bit 15; size 2; bit offset 0, precision 16; exponent at bit 10,
 * 5 bits; mantissa at bit 0, 10 bits; exponent bias 15.
 */
const HALF_DATATYPE = Uint8Array.from([0x11, 0x20, 0x0f, 0x00, 2, 0, 0, 0, 0, 0, 16, 0, 10, 5, 0, 10, 15, 0, 0, 0]);

/** Reads `length` bytes of `fd` at `pos`. */
function readAt(fd: number, pos: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readSync(fd, buf, 0, length, pos);
  if (got !== length) throw new StateError(`Short read at ${pos} while finishing float16 datasets.`);
  return buf;
}

/** Rewrites the header of every pending float16 dataset of the (closed) file at `path`. */
function patchHalfDatasets(path: string, pending: readonly PendingHalf[]): void {
  if (pending.length === 0) return;
  const fd = openSync(path, 'r+');
  try {
    for (const p of pending) patchOne(fd, p);
  } finally {
    closeSync(fd);
  }
}

function patchOne(fd: number, p: PendingHalf): void {
  const fail = (why: string) => new StateError(`Cannot finish float16 dataset '${p.path}': ${why}.`);
  const head = readAt(fd, p.address, 16);
  if (head[0] !== 1) throw fail(`expected a version-1 object header, found version ${head[0]}`);
  const numMessages = head.readUInt16LE(2);
  const chunks: { pos: number; size: number }[] = [{ pos: p.address + 16, size: head.readUInt32LE(8) }];
  const found: Record<number, number> = {};
  let seen = 0;
  for (let c = 0; c < chunks.length && seen < numMessages; c++) {
    const { pos, size } = chunks[c];
    const buf = readAt(fd, pos, size);
    let off = 0;
    while (off + 8 <= size && seen < numMessages) {
      const type = buf.readUInt16LE(off);
      const msize = buf.readUInt16LE(off + 2);
      if (type === MSG_CONTINUATION) {
        chunks.push({ pos: Number(buf.readBigUInt64LE(off + 8)), size: Number(buf.readBigUInt64LE(off + 16)) });
      }
      if (found[type] === undefined) found[type] = pos + off + 8;
      off += 8 + msize;
      seen++;
    }
  }
  for (const t of [MSG_DATASPACE, MSG_DATATYPE, MSG_LAYOUT]) {
    if (found[t] === undefined) throw fail(`header message 0x${t.toString(16)} not found`);
  }
  const total = p.shape.reduce((a, b) => a * b, 1);

  // Datatype: must be the float32 placeholder.
  const dt = readAt(fd, found[MSG_DATATYPE], 20);
  if (dt[0] !== 0x11 || dt.readUInt32LE(4) !== 4 || dt[10] !== 32) throw fail('the placeholder is not a 32-bit float');
  writeSync(fd, HALF_DATATYPE, 0, HALF_DATATYPE.length, found[MSG_DATATYPE]);

  // Dataspace: same rank, real dimensions (and maximum dimensions when stored).
  const ds = readAt(fd, found[MSG_DATASPACE], 8);
  const version = ds[0];
  const rank = ds[1];
  const flags = ds[2];
  if (rank !== p.shape.length) throw fail(`dataspace rank ${rank} differs from ${p.shape.length}`);
  const dimsAt = found[MSG_DATASPACE] + (version === 1 ? 8 : 4);
  const dims = Buffer.alloc(8 * rank);
  p.shape.forEach((s, i) => dims.writeBigUInt64LE(BigInt(s), 8 * i));
  writeSync(fd, dims, 0, dims.length, dimsAt);
  if (flags & 1) writeSync(fd, dims, 0, dims.length, dimsAt + 8 * rank);

  // Layout: contiguous storage of total * 2 bytes.
  const lay = readAt(fd, found[MSG_LAYOUT], 18);
  if (lay[0] !== 3 || lay[1] !== 1) throw fail(`expected a version-3 contiguous layout, found version ${lay[0]} class ${lay[1]}`);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(total * 2));
  writeSync(fd, size, 0, 8, found[MSG_LAYOUT] + 10);

  // Fill value: a stored value would have the placeholder's size.
  if (found[MSG_FILL_VALUE] !== undefined) {
    const fv = readAt(fd, found[MSG_FILL_VALUE], 8);
    if (fv[0] === 2 && fv[3] === 1 && fv.readUInt32LE(4) !== 0) throw fail('the placeholder has a stored fill value');
  }
}

/** Re-opens the file and checks that every float16 dataset reads as float16 of its shape. */
async function verifyHalfDatasets(path: string, pending: readonly PendingHalf[]): Promise<void> {
  if (pending.length === 0) return;
  const { h5 } = await loadH5();
  const file = new h5.File(path, 'r');
  try {
    for (const p of pending) {
      const info = await datasetInfo(file, p.path);
      if (!info || info.type !== 'float16' || fmtShape(info.shape) !== fmtShape(p.shape)) {
        throw new StateError(`Float16 dataset '${p.path}' reads back as ${info ? `${info.type} ${fmtShape(info.shape)}` : 'nothing'}.`);
      }
    }
  } finally {
    file.close();
  }
}
