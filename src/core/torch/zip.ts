/**
 * A reader of the stored (uncompressed) zip archives `torch.save` writes, with every offset and
 * length checked against the bytes at hand, so that truncated or hostile files end in a
 * {@link DataError} and never in a large allocation.
 *
 * @packageDocumentation
 */
import { DataError } from '../errors.js';

/** One member of a zip archive. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** Its bytes (a view into the archive, not a copy). */
  data: Uint8Array;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** Most members read from one archive (a checkpoint holds one per tensor storage). */
const MAX_ENTRIES = 1_000_000;

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE, as zip uses) of `b`. */
export function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Whether the bytes start like a zip archive (a local file header, or an empty archive). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5) && (bytes[3] === 4 || bytes[3] === 6);
}

/**
 * Lists the members of a zip archive whose members are stored uncompressed (as PyTorch writes
 * them), each checked against its CRC-32. The central directory is read from the end of the
 * file (zip64 included).
 * @param bytes the archive.
 * @param name the file name, for error messages.
 * @throws DataError naming the file for a truncated or malformed archive, or a compressed member.
 */
export function readZip(bytes: Uint8Array, name: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  const bad = (what: string) => new DataError(`'${name}' is not a readable zip archive (${what}); the file is truncated or corrupt.`);
  const u32 = (o: number) => {
    if (o < 0 || o + 4 > n) throw bad(`offset ${o} past the end of its ${n} bytes`);
    return view.getUint32(o, true);
  };
  const u16 = (o: number) => {
    if (o < 0 || o + 2 > n) throw bad(`offset ${o} past the end of its ${n} bytes`);
    return view.getUint16(o, true);
  };
  const u64 = (o: number) => {
    const lo = u32(o);
    const hi = u32(o + 4);
    if (hi > 0x1fffff) throw bad('a 64-bit size beyond 2^53');
    return hi * 2 ** 32 + lo;
  };
  // End of central directory: 22 bytes plus a comment of at most 65535 bytes.
  let eocd = -1;
  for (let o = n - 22; o >= Math.max(0, n - 22 - 65535); o--) {
    if (bytes[o] === 0x50 && bytes[o + 1] === 0x4b && view.getUint32(o, true) === EOCD) {
      eocd = o;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== EOCD64_LOCATOR) throw bad('a zip64 archive without its locator');
    const e64 = u64(loc + 8);
    if (u32(e64) !== EOCD64) throw bad('no zip64 end-of-central-directory record');
    count = u64(e64 + 32);
    cdSize = u64(e64 + 40);
    cdOffset = u64(e64 + 48);
  }
  if (count > MAX_ENTRIES) throw bad(`${count} members, over the ${MAX_ENTRIES} read`);
  if (cdOffset + cdSize > n) throw bad(`a central directory at ${cdOffset} + ${cdSize} bytes past the end of its ${n} bytes`);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let o = cdOffset;
  for (let i = 0; i < count; i++) {
    if (u32(o) !== CENTRAL) throw bad(`member ${i} of the central directory has no header`);
    const method = u16(o + 10);
    const crc = u32(o + 16);
    let compSize = u32(o + 20);
    let size = u32(o + 24);
    const nameLen = u16(o + 28);
    const extraLen = u16(o + 30);
    const commentLen = u16(o + 32);
    let localOffset = u32(o + 42);
    if (o + 46 + nameLen + extraLen + commentLen > n) throw bad(`member ${i} runs past the end`);
    const entryName = decoder.decode(bytes.subarray(o + 46, o + 46 + nameLen));
    // zip64 extra field: the sizes and offset that are 0xffffffff above, in that order
    let e = o + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = u16(e);
      const len = u16(e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        if (size === 0xffffffff) (size = u64(p)), (p += 8);
        if (compSize === 0xffffffff) (compSize = u64(p)), (p += 8);
        if (localOffset === 0xffffffff) localOffset = u64(p);
      }
      e += 4 + len;
    }
    if (method !== 0) {
      throw new DataError(`'${name}' holds the compressed member '${entryName}' (method ${method}); PyTorch checkpoints store members uncompressed. Save it again with torch.save.`);
    }
    if (compSize !== size) throw bad(`member '${entryName}' has sizes ${compSize} and ${size}`);
    if (u32(localOffset) !== LOCAL) throw bad(`member '${entryName}' has no local header at ${localOffset}`);
    const start = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (start + size > n) throw bad(`member '${entryName}' (${size} bytes at ${start}) runs past the end of its ${n} bytes`);
    const member = bytes.subarray(start, start + size);
    if (crc32(member) !== crc) throw new DataError(`'${name}' is corrupt: the checksum of its member '${entryName}' does not match.`);
    entries.set(entryName, { name: entryName, data: member });
    o += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}
