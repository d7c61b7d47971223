/**
 * A pickle reader that builds data, never runs code: the subset of Python's pickle machine
 * (protocols 0 to 5) that `torch.save` output uses. Classes named by the pickle are not
 * imported: a few are understood (`collections.OrderedDict`, PyTorch's tensor rebuild
 * functions, `_codecs.encode`), every other becomes a {@link PyObject} record of its name,
 * arguments and state. Every read is bounded by the bytes at hand.
 *
 * @packageDocumentation
 */
import { DataError } from '../errors.js';

/** A class or function a pickle refers to (`GLOBAL module name`). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  /** `module.name`. */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object of a class the reader does not know: its class, constructor arguments and state. */
export class PyObject {
  state: unknown = undefined;
  constructor(
    readonly cls: PyGlobal,
    readonly args: readonly unknown[],
  ) {}
}

/** A value the pickle's persistent-load hook resolves (PyTorch: tensor storages). */
export type PersistentLoad = (pid: unknown) => unknown;

/** A hook that builds a known global's object from its arguments, or returns undefined to keep a {@link PyObject}. */
export type ReduceHook = (fn: PyGlobal, args: readonly unknown[]) => unknown;

/** A Python tuple (a frozen array). */
export type PyTuple = readonly unknown[];

function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** A little-endian two's-complement integer of `b` (pickle LONG1 / LONG4). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Reads one pickle.
 * @param data the pickle bytes.
 * @param options.persistentLoad resolves `BINPERSID` / `PERSID` ids.
 * @param options.reduce builds objects of known globals.
 * @param options.name the file name, for errors.
 * @returns the unpickled value: numbers, strings, booleans, null, `Uint8Array` (bytes),
 *   arrays (lists and tuples), `Map` (dicts), `Set`, and what the hooks return.
 * @throws DataError naming the file for a truncated or malformed pickle, or an opcode that is not supported.
 */
export function unpickle(data: Uint8Array, options: { persistentLoad?: PersistentLoad; reduce?: ReduceHook; name?: string } = {}): unknown {
  const name = options.name ?? 'pickle';
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length;
  let pos = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const fail = (what: string): never => {
    throw new DataError(`'${name}' holds a malformed pickle (${what} at byte ${pos}); the file is truncated or corrupt.`);
  };
  const need = (k: number) => {
    if (k < 0 || pos + k > n) fail(`a read of ${k} bytes past the end of its ${n} bytes`);
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    const lo = u32();
    const hi = u32();
    if (hi > 0x1fffff) fail('a length beyond 2^53');
    return hi * 2 ** 32 + lo;
  };
  const take = (k: number) => (need(k), (pos += k), data.subarray(pos - k, pos));
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('a text line without its end');
    const s = bytesToLatin1(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const str = (b: Uint8Array) => {
    try {
      return utf8.decode(b);
    } catch {
      return fail('a string that is not UTF-8');
    }
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('a pop from an empty stack');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('an empty stack');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail('no mark');
    return stack.splice(m!);
  };
  const memoGet = (k: number) => {
    if (!memo.has(k)) fail(`memo key ${k} not set`);
    return memo.get(k);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (kv.length % 2 !== 0) fail('an odd number of dict items');
    for (let i = 0; i < kv.length; i += 2) {
      if (d instanceof Map) d.set(kv[i], kv[i + 1]);
      else if (d instanceof PyObject) {
        // dict items on an object subclassing dict: keep them as its state
        if (!(d.state instanceof Map)) d.state = new Map();
        (d.state as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
      } else fail('dict items on a value that is no dict');
    }
  };
  const appendTo = (list: unknown, items: unknown[]) => {
    if (Array.isArray(list)) {
      if (Object.isFrozen(list)) fail('list items appended to a tuple');
      list.push(...items);
    } else if (list instanceof PyObject) {
      if (!Array.isArray(list.state)) list.state = [];
      (list.state as unknown[]).push(...items);
    } else fail('list items on a value that is no list');
  };
  const reduce = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) return fail('a call of a value that is no class or function');
    if (!Array.isArray(args)) return fail('call arguments that are no tuple');
    const g = fn as PyGlobal;
    const q = g.qualifiedName;
    if (q === 'collections.OrderedDict' || q === 'builtins.dict' || q === '__builtin__.dict') {
      const m = new Map<unknown, unknown>();
      if (args.length > 0 && Array.isArray(args[0])) for (const kv of args[0] as unknown[][]) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
      return m;
    }
    if (q === 'builtins.set' || q === '__builtin__.set' || q === 'builtins.frozenset' || q === '__builtin__.frozenset') {
      return new Set(Array.isArray(args[0]) ? (args[0] as unknown[]) : []);
    }
    if (q === 'builtins.list' || q === '__builtin__.list') return Array.isArray(args[0]) ? [...(args[0] as unknown[])] : [];
    if (q === '_codecs.encode' && typeof args[0] === 'string') {
      const s = args[0] as string;
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
      return out;
    }
    if (q === 'builtins.bytearray' || q === '__builtin__.bytearray') return args[0] instanceof Uint8Array ? args[0] : new Uint8Array(0);
    const hooked = options.reduce?.(g, args as unknown[]);
    return hooked !== undefined ? hooked : new PyObject(g, args as unknown[]);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length > 0) fail(`a stop with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length); // a mark is a stack position, not a value
        break;
      case 0x30: // POP
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: {
        // LONG4
        const k = i32();
        if (k < 0) fail('a negative length');
        stack.push(decodeLong(take(k)));
        break;
      }
      case 0x49: {
        // INT (text)
        const s = line();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else {
          const v = Number(s);
          if (!Number.isFinite(v)) fail(`an integer '${s.slice(0, 20)}'`);
          stack.push(v);
        }
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = line().replace(/L$/, '');
        if (!/^-?\d{1,400}$/.test(s)) fail(`an integer '${s.slice(0, 20)}'`);
        const v = BigInt(s);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: // FLOAT (text)
        stack.push(Number(line()));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(take(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line());
        break;
      case 0x54: {
        // BINSTRING
        const k = i32();
        if (k < 0) fail('a negative length');
        stack.push(bytesToLatin1(take(k)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(bytesToLatin1(take(u8())));
        break;
      case 0x53: {
        // STRING (quoted text)
        const s = line();
        stack.push(s.length >= 2 && (s[0] === "'" || s[0] === '"') ? s.slice(1, -1) : s);
        break;
      }
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x85: // TUPLE1
        stack.push(Object.freeze([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(Object.freeze(popMark()));
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const kv = popMark();
        const d = new Map();
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail('set items on a value that is no set');
        for (const v of items) (s as Set<unknown>).add(v);
        break;
      }
      case 0x70: // PUT (text)
        memo.set(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(Number(line())));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const mod = line();
        stack.push(new PyGlobal(mod, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const nm = pop();
        const mod = pop();
        if (typeof mod !== 'string' || typeof nm !== 'string') fail('a global whose module or name is no string');
        stack.push(new PyGlobal(mod as string, nm as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(reduce(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = pop();
        stack.push(reduce(cls, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        // state of a dict subclass (OrderedDict._metadata) or of a tensor: not needed
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('a persistent id without a loader');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        // PERSID
        const pid = line();
        if (!options.persistentLoad) fail('a persistent id without a loader');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      default:
        fail(`the opcode 0x${op.toString(16)}, which this reader does not support`);
    }
  }
}
