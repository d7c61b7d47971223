/**
 * Where things are in a classic TIFF file: the image directories, their entries and the byte
 * positions of each field, so that tests and the fuzzer can damage one field on purpose.
 */

/** One directory entry and the file positions of its fields. */
export interface TiffEntry {
  tag: number;
  type: number;
  count: number;
  /** Position of the entry (its tag field). */
  at: number;
  /** Position of the count field (4 bytes). */
  countAt: number;
  /** Position of the value / offset field (4 bytes). */
  valueAt: number;
  /** Where the value lives: `valueAt` when inline, else the offset stored there. */
  dataAt: number;
  /** Size of the value in bytes. */
  bytes: number;
}

/** One image file directory. */
export interface TiffIfd {
  offset: number;
  entries: TiffEntry[];
  /** Position of the next-IFD pointer (4 bytes). */
  nextAt: number;
}

export interface TiffLayout {
  le: boolean;
  ifds: TiffIfd[];
}

const TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8];

/** Parses the directory chain of a classic (non-Big) TIFF. */
export function tiffLayout(bytes: Uint8Array): TiffLayout {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = v.getUint16(0, false) === 0x4949;
  if (v.getUint16(2, le) !== 42) throw new Error('not a classic TIFF');
  const ifds: TiffIfd[] = [];
  let next = v.getUint32(4, le);
  const seen = new Set<number>();
  while (next !== 0 && !seen.has(next)) {
    seen.add(next);
    const n = v.getUint16(next, le);
    const entries: TiffEntry[] = [];
    for (let e = 0; e < n; e++) {
      const at = next + 2 + 12 * e;
      const tag = v.getUint16(at, le);
      const type = v.getUint16(at + 2, le);
      const count = v.getUint32(at + 4, le);
      const size = (TYPE_BYTES[type] ?? 1) * count;
      entries.push({ tag, type, count, at, countAt: at + 4, valueAt: at + 8, dataAt: size > 4 ? v.getUint32(at + 8, le) : at + 8, bytes: size });
    }
    const nextAt = next + 2 + 12 * n;
    ifds.push({ offset: next, entries, nextAt });
    next = v.getUint32(nextAt, le);
  }
  return { le, ifds };
}

/** The entry of `tag` in directory `ifd`. */
export function entryOf(layout: TiffLayout, ifd: number, tag: number): TiffEntry {
  const e = layout.ifds[ifd]?.entries.find((x) => x.tag === tag);
  if (!e) throw new Error(`no tag ${tag} in IFD ${ifd}`);
  return e;
}

/** Writes an unsigned integer of `size` bytes (2 or 4) at `at`, in the file's byte order. */
export function putUint(bytes: Uint8Array, at: number, value: number, size: 2 | 4, le: boolean): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 2) v.setUint16(at, value, le);
  else v.setUint32(at, value >>> 0, le);
}

/** Reads the `i`-th value of a SHORT or LONG array entry. */
export function entryValue(bytes: Uint8Array, layout: TiffLayout, e: TiffEntry, i = 0): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return e.type === 3 ? v.getUint16(e.dataAt + 2 * i, layout.le) : v.getUint32(e.dataAt + 4 * i, layout.le);
}

/** Writes the `i`-th value of a SHORT or LONG array entry. */
export function setEntryValue(bytes: Uint8Array, layout: TiffLayout, e: TiffEntry, value: number, i = 0): void {
  putUint(bytes, e.type === 3 ? e.dataAt + 2 * i : e.dataAt + 4 * i, value, e.type === 3 ? 2 : 4, layout.le);
}

/** TIFF tag numbers used by the tests. */
export const TAG = {
  ImageWidth: 256,
  ImageLength: 257,
  Compression: 259,
  StripOffsets: 273,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  JPEGTables: 347,
} as const;
