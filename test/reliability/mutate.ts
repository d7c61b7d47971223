/**
 * Seeded mutations of input files for fuzzing the readers: generic byte damage (bit flips,
 * byte runs, truncation, insertions and deletions, integer fields set to huge values) and
 * structure-aware damage of TIFF directories and JSON documents. A mutation is a pure function
 * of the bytes and a {@link Rng}, so a case is reproduced from its seed and index.
 */
import { Rng } from '../../src/core/random.js';
import { crc32 } from '../../src/core/torch/zip.js';
import { tiffLayout, type TiffLayout } from './tiff_layout.js';

/** A mutated file and the name of the mutation that made it. */
export interface Mutation {
  kind: string;
  bytes: Uint8Array;
}

/** The kinds of file the fuzzer knows the structure of. */
export type FileKind = 'tiff' | 'json' | 'h5' | 'bin' | 'csv' | 'onnx' | 'pt';

/** Integer values that break parsers: zero, all ones, sign bits, just past the file. */
function hostileUint32(rng: Rng, size: number): number {
  const pick = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0xfffffffe, size, size + 1, size * 2, 0x10000, 0xffff, rng.nextUint32()];
  return pick[rng.int(pick.length)] >>> 0;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Generic damage, any file. */
export function mutateBytes(src: Uint8Array, rng: Rng): Mutation {
  const b = Uint8Array.from(src);
  const n = b.length;
  const pos = () => (n === 0 ? 0 : rng.int(n));
  switch (rng.int(9)) {
    case 0: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips && n > 0; i++) b[pos()] ^= 1 << rng.int(8);
      return { kind: 'bit-flip', bytes: b };
    }
    case 1: {
      const at = pos();
      const len = Math.min(n - at, 1 + rng.int(64));
      const fill = [0, 0xff, -1][rng.int(3)];
      for (let i = 0; i < len; i++) b[at + i] = fill < 0 ? rng.int(256) : fill;
      return { kind: 'byte-run', bytes: b };
    }
    case 2:
      return { kind: 'truncate', bytes: b.slice(0, pos()) };
    case 3:
      return { kind: 'truncate-end', bytes: b.slice(0, Math.max(0, n - 1 - rng.int(Math.min(n, 4096)))) };
    case 4: {
      const at = pos();
      const ins = new Uint8Array(1 + rng.int(256)).map(() => rng.int(256));
      const out = new Uint8Array(n + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      return { kind: 'insert', bytes: out };
    }
    case 5: {
      const at = pos();
      const len = 1 + rng.int(Math.max(1, Math.min(4096, n - at)));
      const out = new Uint8Array(n - Math.min(len, n - at));
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return { kind: 'delete', bytes: out };
    }
    case 6: {
      // a 4-byte integer field (aligned) set to a hostile value: lengths, counts, offsets
      if (n >= 4) view(b).setUint32(rng.int(Math.floor(n / 4)) * 4, hostileUint32(rng, n), rng.int(2) === 0);
      return { kind: 'u32-field', bytes: b };
    }
    case 7: {
      // an 8-byte field (HDF5 addresses and lengths are 8 bytes)
      if (n >= 8) {
        const v = [0xffffffffffffffffn, 0x7fffffffffffffffn, BigInt(n) * 1000n, BigInt(n + 1), 0n][rng.int(5)];
        view(b).setBigUint64(rng.int(Math.floor(n / 8)) * 8, v, true);
      }
      return { kind: 'u64-field', bytes: b };
    }
    default: {
      const out = new Uint8Array(n === 0 ? 0 : rng.int(Math.min(n, 8192)) + 1).map(() => rng.int(256));
      if (out.length >= 4 && src.length >= 4 && rng.int(2) === 0) out.set(src.subarray(0, 4)); // keep the magic half of the time
      return { kind: 'random-bytes', bytes: out };
    }
  }
}

/** Damage to the directories of a classic TIFF: entry fields, counts, offsets, the IFD chain, tile tables. */
export function mutateTiff(src: Uint8Array, rng: Rng): Mutation {
  let layout: TiffLayout;
  try {
    layout = tiffLayout(src);
  } catch {
    return mutateBytes(src, rng);
  }
  if (layout.ifds.length === 0) return mutateBytes(src, rng);
  const b = Uint8Array.from(src);
  const v = view(b);
  const le = layout.le;
  const ifd = layout.ifds[rng.int(layout.ifds.length)];
  const entry = ifd.entries[rng.int(ifd.entries.length)];
  switch (rng.int(8)) {
    case 0: // the IFD chain: a loop back, a dangling pointer, a pointer into the header
      v.setUint32(ifd.nextAt, [layout.ifds[rng.int(layout.ifds.length)].offset, hostileUint32(rng, b.length), 2, 4][rng.int(4)], le);
      return { kind: 'tiff-ifd-chain', bytes: b };
    case 1: // an entry's count
      v.setUint32(entry.countAt, hostileUint32(rng, b.length), le);
      return { kind: 'tiff-count', bytes: b };
    case 2: // an entry's value or offset
      v.setUint32(entry.valueAt, hostileUint32(rng, b.length), le);
      return { kind: 'tiff-value', bytes: b };
    case 3: // an entry's type
      v.setUint16(entry.at + 2, [0, 13, 14, 16, 255, 1 + rng.int(12)][rng.int(6)], le);
      return { kind: 'tiff-type', bytes: b };
    case 4: {
      // one value of a tile table (offsets or byte counts) or of a small array tag
      const big = ifd.entries.filter((e) => e.count > 1 && (e.type === 3 || e.type === 4));
      if (big.length === 0) return mutateBytes(src, rng);
      const e = big[rng.int(big.length)];
      const i = rng.int(e.count);
      if (e.type === 3) v.setUint16(e.dataAt + 2 * i, hostileUint32(rng, b.length) & 0xffff, le);
      else v.setUint32(e.dataAt + 4 * i, hostileUint32(rng, b.length), le);
      return { kind: 'tiff-array-value', bytes: b };
    }
    case 5: // the entry count of a directory
      v.setUint16(ifd.offset, [0, 1, 0xffff, ifd.entries.length + 1 + rng.int(100)][rng.int(4)], le);
      return { kind: 'tiff-entry-count', bytes: b };
    case 6: {
      // damage inside an out-of-line value (JPEG tables, descriptions, tile tables)
      const outOfLine = ifd.entries.filter((e) => e.bytes > 4 && e.dataAt + e.bytes <= b.length);
      if (outOfLine.length === 0) return mutateBytes(src, rng);
      const e = outOfLine[rng.int(outOfLine.length)];
      const k = 1 + rng.int(8);
      for (let i = 0; i < k; i++) b[e.dataAt + rng.int(e.bytes)] = rng.int(256);
      return { kind: 'tiff-value-bytes', bytes: b };
    }
    default: // the header's first-IFD offset
      v.setUint32(4, hostileUint32(rng, b.length), le);
      return { kind: 'tiff-header', bytes: b };
  }
}

/** Values that break JSON readers: wrong types, huge and negative numbers, escaping paths. */
function hostileJsonValue(rng: Rng): unknown {
  const pick: unknown[] = [
    null,
    -1,
    0,
    1e308,
    Number.MAX_SAFE_INTEGER,
    -1e9,
    0.5,
    '',
    '../../../../etc/passwd',
    '/etc/passwd',
    'x'.repeat(1 + rng.int(100000)),
    [],
    {},
    [1, 2, 3],
    { a: 1 },
    true,
    'NaN',
  ];
  return pick[rng.int(pick.length)];
}

/** Damage to a JSON document: one node replaced, deleted, or nested deeply; then generic byte damage as a fallback. */
export function mutateJson(src: Uint8Array, rng: Rng): Mutation {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(src));
  } catch {
    return mutateBytes(src, rng);
  }
  if (rng.int(4) === 0) return mutateBytes(src, rng);
  // collect containers and keys
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach((v, i) => (slots.push({ parent: x, key: i }), walk(v)));
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) (slots.push({ parent: x as Record<string, unknown>, key: k }), walk(v));
  };
  walk(doc);
  if (slots.length === 0) return mutateBytes(src, rng);
  const slot = slots[rng.int(slots.length)];
  const parent = slot.parent as Record<string | number, unknown>;
  const r = rng.int(10);
  let kind: string;
  if (r < 6) {
    parent[slot.key] = hostileJsonValue(rng);
    kind = 'json-value';
  } else if (r < 8) {
    if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
    else delete parent[slot.key];
    kind = 'json-delete';
  } else if (r < 9) {
    // deep nesting, spliced into the text (JSON.stringify itself would run out of stack)
    const depth = 1000 + rng.int(100000);
    parent[slot.key] = '\u0000DEEP\u0000';
    const text = JSON.stringify(doc).replace('"\\u0000DEEP\\u0000"', '['.repeat(depth) + '1' + ']'.repeat(depth));
    return { kind: 'json-deep', bytes: new TextEncoder().encode(text) };
  } else {
    const arr = parent[slot.key];
    parent[slot.key] = Array.isArray(arr) ? [...arr, ...arr, ...arr] : [arr, arr];
    kind = 'json-repeat';
  }
  return { kind, bytes: new TextEncoder().encode(JSON.stringify(doc)) };
}

/** Damage to a CSV file: separators, quotes, line ends, huge and negative numbers, NUL bytes. */
export function mutateCsv(src: Uint8Array, rng: Rng): Mutation {
  const text = new TextDecoder().decode(src);
  if (rng.int(3) === 0) return mutateBytes(src, rng);
  const lines = text.split('\n');
  const i = rng.int(lines.length);
  const choices = [
    () => (lines[i] = lines[i].replace(/,/g, ';')),
    () => (lines[i] = lines[i] + ',' + '9'.repeat(1 + rng.int(400))),
    () => (lines[i] = lines[i].replace(/\d+$/, String(-1 - rng.int(10)))),
    () => (lines[i] = '"' + lines[i]),
    () => (lines[i] = lines[i] + '\r\r\u0000'),
    () => (lines[i] = ''),
    () => lines.splice(i, 0, ...new Array(1 + rng.int(1000)).fill(lines[i])),
    () => (lines[i] = '\ufeff' + lines[i]),
    () => (lines[i] = lines[i].replace(/\d+$/, '1e400')),
    () => (lines[i] = lines[i].replace(/,[^,]*$/, '')),
  ];
  const c = rng.int(choices.length);
  choices[c]();
  return { kind: `csv-${c}`, bytes: new TextEncoder().encode(lines.join('\n')) };
}

/**
 * Damage inside one member of a zip archive stored uncompressed (a PyTorch checkpoint: its
 * pickle or a tensor storage), with the member's CRC-32 rewritten in its local and central
 * headers, so that the damage reaches the pickle reader and the tensor decoding instead of
 * stopping at the checksum.
 */
export function mutateZipMember(src: Uint8Array, rng: Rng): Mutation {
  const b = Uint8Array.from(src);
  const v = view(b);
  let eocd = -1;
  for (let o = b.length - 22; o >= 0; o--) if (v.getUint32(o, true) === 0x06054b50) {
    eocd = o;
    break;
  }
  if (eocd < 0) return mutateBytes(src, rng);
  const count = v.getUint16(eocd + 10, true);
  let o = v.getUint32(eocd + 16, true);
  const members: { central: number; local: number; size: number; name: string }[] = [];
  for (let i = 0; i < count && o + 46 <= b.length; i++) {
    const nameLen = v.getUint16(o + 28, true);
    const name = new TextDecoder().decode(b.subarray(o + 46, o + 46 + nameLen));
    members.push({ central: o, local: v.getUint32(o + 42, true), size: v.getUint32(o + 20, true), name });
    o += 46 + nameLen + v.getUint16(o + 30, true) + v.getUint16(o + 32, true);
  }
  const usable = members.filter((m) => m.size > 0 && m.local + 30 <= b.length);
  if (usable.length === 0) return mutateBytes(src, rng);
  // the pickle half of the time: its opcodes drive everything else
  const pkl = usable.filter((m) => m.name.endsWith('.pkl'));
  const m = pkl.length > 0 && rng.int(2) === 0 ? pkl[0] : usable[rng.int(usable.length)];
  const start = m.local + 30 + v.getUint16(m.local + 26, true) + v.getUint16(m.local + 28, true);
  if (start + m.size > b.length) return mutateBytes(src, rng);
  const data = b.subarray(start, start + m.size);
  const inner = mutateBytes(data, rng);
  // keep the member's size (a resized member would only break the archive's offsets)
  const same = new Uint8Array(data.length);
  same.set(inner.bytes.subarray(0, data.length));
  if (inner.bytes.length < data.length) same.fill(0, inner.bytes.length);
  data.set(same);
  const crc = crc32(data);
  v.setUint32(m.local + 14, crc, true);
  v.setUint32(m.central + 16, crc, true);
  return { kind: `zip-member-${m.name.endsWith('.pkl') ? 'pickle' : 'storage'}-${inner.kind}`, bytes: b };
}

/** One mutation of a file of `kind`: structure-aware half of the time where the structure is known. */
export function mutate(src: Uint8Array, kind: FileKind, rng: Rng): Mutation {
  const aware = rng.int(2) === 0;
  if (aware && kind === 'tiff') return mutateTiff(src, rng);
  if (aware && kind === 'json') return mutateJson(src, rng);
  if (aware && kind === 'csv') return mutateCsv(src, rng);
  if (aware && kind === 'pt') return mutateZipMember(src, rng);
  return mutateBytes(src, rng);
}

/** The random stream of case `i` of a target: a function of the run seed, the target and i only. */
export function caseRng(seed: number, target: string, i: number): Rng {
  let h = 2166136261 ^ seed;
  for (const ch of `${target}:${i}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return new Rng(h);
}
