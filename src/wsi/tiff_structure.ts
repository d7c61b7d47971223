/**
 * A structural check of a TIFF file before geotiff parses it: the chain of image file
 * directories (IFDs) is walked once, and every directory and every tag value must lie inside
 * the file. A hostile or damaged file (an IFD chain that loops back, a tag whose count claims
 * gigabytes, an offset past the end) then fails with a `DataError` at once, instead of making
 * the parser loop forever or allocate what the file claims.
 *
 * Browser-safe: the bytes are read through a small `read(offset, length)` function (geotiff's
 * `source.fetch`, a file handle, an `ArrayBuffer`).
 *
 * @packageDocumentation
 */
import { DataError } from '../core/errors.js';

/** Limits of {@link checkTiffStructure}. @category WSI */
export interface TiffStructureLimits {
  /** Most image file directories in one file (a slide has about 10; OME files a few thousand). */
  maxIfds: number;
  /** Most entries in one directory. */
  maxEntries: number;
  /** Most bytes of one tag value (a tile table of a 200 000-pixel-wide slide is a few MB). */
  maxValueBytes: number;
}

/** Default limits of {@link checkTiffStructure}. @category WSI */
export const DEFAULT_TIFF_STRUCTURE_LIMITS: Readonly<TiffStructureLimits> = Object.freeze({
  maxIfds: 65536,
  maxEntries: 4096,
  maxValueBytes: 256 * 2 ** 20,
});

/** What {@link checkTiffStructure} found. @category WSI */
export interface TiffStructure {
  /** `false` for classic TIFF, `true` for BigTIFF. */
  bigTiff: boolean;
  littleEndian: boolean;
  /** Byte offset of each image file directory, in chain order. */
  ifdOffsets: number[];
}

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export type TiffByteReader = (offset: number, length: number) => Promise<Uint8Array>;

/** Bytes per value of each TIFF field type (TIFF 6.0 and BigTIFF); 0 for unknown types. */
const TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8];

/**
 * Walks the IFD chain of a TIFF or BigTIFF file and checks that it ends, that it has at most
 * `maxIfds` directories, and that every directory and every out-of-line tag value lies inside
 * the file (`byteLength`, when known) and within `maxValueBytes`.
 *
 * @param read reads bytes of the file.
 * @param byteLength size of the file, or undefined when unknown (a URL without a length).
 * @param name the slide's name in messages.
 * @returns the directories found.
 * @throws DataError naming the slide, the directory and the byte range at fault.
 * @example
 * ```ts
 * const bytes = new Uint8Array(await file.arrayBuffer());
 * const s = await checkTiffStructure(async (o, n) => bytes.subarray(o, o + n), bytes.length, 'slide.tif');
 * s.ifdOffsets.length; // 4 (levels, thumbnail, ...)
 * ```
 * @category WSI
 */
export async function checkTiffStructure(
  read: TiffByteReader,
  byteLength: number | undefined,
  name: string,
  limits: Partial<TiffStructureLimits> = {},
): Promise<TiffStructure> {
  const lim = { ...DEFAULT_TIFF_STRUCTURE_LIMITS, ...limits };
  const size = byteLength ?? Number.MAX_SAFE_INTEGER;
  const corrupt = (why: string) =>
    new DataError(`Slide '${name}' is corrupt: ${why}. The file is damaged or truncated; copy or convert it again.`);
  const truncated = (why: string) =>
    new DataError(`Slide '${name}' is truncated or corrupt: ${why}. Copy or download the file again.`);
  const readExactly = async (offset: number, length: number, what: string): Promise<DataView> => {
    if (offset < 0 || offset + length > size) {
      throw truncated(`${what} needs bytes ${offset} to ${offset + length}, but the file has ${size} bytes`);
    }
    const b = await read(offset, length);
    if (b.length < length) throw truncated(`${what} needs bytes ${offset} to ${offset + length}, but the file ends at ${offset + b.length}`);
    return new DataView(b.buffer, b.byteOffset, length);
  };
  const head = await readExactly(0, 16 <= size ? 16 : 8, 'the header');
  const order = head.getUint16(0, false);
  if (order !== 0x4949 && order !== 0x4d4d) throw corrupt('the header has no byte-order mark (II or MM)');
  const le = order === 0x4949;
  const version = head.getUint16(2, le);
  if (version !== 42 && version !== 43) throw corrupt(`the header has version ${version}, not 42 (TIFF) or 43 (BigTIFF)`);
  const big = version === 43;
  if (big && (head.byteLength < 16 || head.getUint16(4, le) !== 8)) throw corrupt('the BigTIFF header is incomplete');
  const u64 = (v: DataView, at: number) => {
    const x = v.getBigUint64(at, le);
    return x > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(x);
  };
  const headerBytes = big ? 16 : 8;
  let next = big ? u64(head, 8) : head.getUint32(4, le);
  const seen = new Set<number>();
  const ifdOffsets: number[] = [];
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  const inlineBytes = big ? 8 : 4;
  while (next !== 0) {
    const k = ifdOffsets.length;
    if (seen.has(next)) throw corrupt(`image directory ${k} points back to the directory at byte ${next} (a loop)`);
    if (k >= lim.maxIfds) throw corrupt(`it has more than ${lim.maxIfds} image directories`);
    if (next < headerBytes) throw corrupt(`image directory ${k} starts at byte ${next}, inside the header`);
    seen.add(next);
    ifdOffsets.push(next);
    const cv = await readExactly(next, countBytes, `image directory ${k}`);
    const n = big ? u64(cv, 0) : cv.getUint16(0, le);
    if (n === 0) throw corrupt(`image directory ${k} (byte ${next}) has no entries`);
    if (n > lim.maxEntries) throw corrupt(`image directory ${k} claims ${n} entries (at most ${lim.maxEntries})`);
    const body = await readExactly(next + countBytes, n * entryBytes + inlineBytes, `image directory ${k}`);
    for (let e = 0; e < n; e++) {
      const at = e * entryBytes;
      const tag = body.getUint16(at, le);
      const type = body.getUint16(at + 2, le);
      const count = big ? u64(body, at + 4) : body.getUint32(at + 4, le);
      const per = TYPE_BYTES[type] ?? 0;
      if (per === 0) continue; // unknown types are skipped by readers (TIFF 6.0, section 2)
      const bytes = count * per;
      if (bytes > lim.maxValueBytes) {
        throw corrupt(`tag ${tag} of image directory ${k} claims ${count} values (${bytes} bytes, at most ${lim.maxValueBytes})`);
      }
      if (bytes > inlineBytes) {
        const off = big ? u64(body, at + 4 + 8) : body.getUint32(at + 8, le);
        if (off < headerBytes) throw corrupt(`tag ${tag} of image directory ${k} points at byte ${off}, inside the header`);
        if (off + bytes > size) {
          throw truncated(`tag ${tag} of image directory ${k} needs bytes ${off} to ${off + bytes}, outside the file of ${size} bytes`);
        }
      }
    }
    next = big ? u64(body, n * entryBytes) : body.getUint32(n * entryBytes, le);
  }
  if (ifdOffsets.length === 0) throw corrupt('it holds no image directory');
  return { bigTiff: big, littleEndian: le, ifdOffsets };
}
