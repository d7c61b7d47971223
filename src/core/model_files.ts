/**
 * Reading saved models wherever their files are: a directory served over HTTP (a URL), files a
 * user picked or dropped in a browser (`File` objects with their relative paths), or a
 * directory on disk (`modelFilesFromDir` in `sasha-wsi/node`). One small interface,
 * {@link ModelFiles}, hides the difference, so that loading a model directory is written once
 * and runs in browsers, Web Workers and Node.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { DataError, quoteValue } from './errors.js';

/**
 * Read access to the files of one model directory, by path relative to it (`'sasha.json'`,
 * `'hafed/model.json'`). Paths use `/`.
 * @example
 * ```ts
 * const files = modelFilesFromUrl('https://example.org/models/c16/');
 * const json = await readModelJson(files, 'sasha.json');
 * ```
 * @category Utils
 */
export interface ModelFiles {
  /** Where the files are, for messages (a URL, a folder name or a path). */
  readonly name: string;
  /**
   * The bytes of the file at `path`, or null when it does not exist.
   * @throws DataError when it exists but cannot be read.
   */
  read(path: string): Promise<Uint8Array | null>;
}

/** `a/./b/../c` -> `a/c`; leading `/` and `./` removed. @internal */
export function normalizeModelPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split(/[\\/]+/)) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** Joins a directory and a relative path of a model directory (`'hafed'`, `'model.json'` -> `'hafed/model.json'`). */
function joinModelPath(dir: string, path: string): string {
  return normalizeModelPath(dir === '' ? path : `${dir}/${path}`);
}

/**
 * Checks a path read from a file of a model directory (a component path in `sasha.json`, a
 * weights path in `model.json`): a non-empty relative path that stays inside the folder it is
 * relative to (no absolute path, no drive letter, no `..` that leaves the folder).
 * @param what how the path is named in messages (`'weights path'`).
 * @param where the file it was read from.
 * @returns the path with `.` and inner `..` resolved.
 * @throws DataError naming the path and the file.
 * @example
 * ```ts
 * checkModelPath('hafed', 'HAFED path', 'sasha.json');            // 'hafed'
 * checkModelPath('../../etc/passwd', 'weights path', 'model.json'); // throws DataError
 * ```
 * @category Utils
 */
export function checkModelPath(rel: unknown, what: string, where: string): string {
  const refuse = (why: string) =>
    new DataError(`The ${what} '${String(rel)}' in '${where}' ${why}. A saved model names files inside its own folder only; save the model again.`);
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) throw refuse('is not a file name');
  if (/^([\\/]|[A-Za-z]:)/.test(rel)) throw refuse('is an absolute path');
  let depth = 0;
  for (const part of rel.split(/[\\/]+/)) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) throw refuse('leaves the folder');
  }
  const out = normalizeModelPath(rel);
  if (out === '') throw refuse('is not a file name');
  return out;
}

/** Bytes per element of each weight dtype tfjs stores (after quantization, if any). */
const WEIGHT_DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/**
 * Checks a parsed tfjs `model.json`: a JSON object with a `modelTopology`, whose
 * `weightsManifest` is a list of groups of weight files (`paths`) and weight entries (`name`,
 * an integer `shape` of rank at most 8, a known `dtype` and quantization).
 * @param file the file, for messages.
 * @throws DataError naming the file and what is wrong.
 * @internal
 */
export function checkModelJson(json: unknown, file: string): asserts json is tf.io.ModelJSON {
  const bad = (why: string) => new DataError(`'${file}' is not a saved model: ${why}. The file is corrupt or of another kind; save the model again.`);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad('expected a JSON object');
  const j = json as Record<string, unknown>;
  if (j.modelTopology === undefined || j.modelTopology === null || typeof j.modelTopology !== 'object') throw bad("'modelTopology' is missing");
  if (j.weightsManifest === undefined) return;
  if (!Array.isArray(j.weightsManifest)) throw bad("'weightsManifest' is not a list");
  for (const [g, group] of (j.weightsManifest as unknown[]).entries()) {
    const gr = group as Record<string, unknown> | null;
    if (gr === null || typeof gr !== 'object' || !Array.isArray(gr.paths) || !Array.isArray(gr.weights)) {
      throw bad(`weights group ${g} needs the lists 'paths' and 'weights'`);
    }
    if (gr.paths.some((p) => typeof p !== 'string')) throw bad(`weights group ${g} has a path that is not a string`);
    for (const w of gr.weights as unknown[]) {
      const e = w as Record<string, unknown> | null;
      if (e === null || typeof e !== 'object' || typeof e.name !== 'string') throw bad(`weights group ${g} has an entry without a name`);
      if (!Array.isArray(e.shape) || e.shape.length > 8 || e.shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
        throw bad(`weight '${e.name}' has the shape ${quoteValue(e.shape)}, not a list of non-negative integers`);
      }
      if (typeof e.dtype !== 'string' || !(e.dtype in WEIGHT_DTYPE_BYTES || e.dtype === 'string')) {
        throw bad(`weight '${e.name}' has the unknown dtype ${quoteValue(e.dtype)}`);
      }
      const q = e.quantization as Record<string, unknown> | undefined;
      if (q !== undefined && (q === null || typeof q !== 'object' || !['uint8', 'uint16', 'float16'].includes(q.dtype as string))) {
        throw bad(`weight '${e.name}' has an unknown quantization ${quoteValue(q)}`);
      }
    }
  }
}

/**
 * Bytes of one weight entry in its file (after quantization), or undefined for string weights
 * (variable length).
 * @internal
 */
export function weightEntryBytes(e: tf.io.WeightsManifestEntry): number | undefined {
  if (e.dtype === 'string') return undefined;
  const size = e.shape.reduce((a, b) => a * b, 1);
  return size * WEIGHT_DTYPE_BYTES[e.quantization?.dtype ?? e.dtype];
}


/** Options of {@link modelFilesFromUrl}. @category Utils */
export interface ModelFilesFromUrlOptions {
  /** The fetch function (default: the global `fetch`); e.g. one that adds credentials. */
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /** Passed to every request (headers, credentials, cache mode). */
  requestInit?: RequestInit;
}

/**
 * {@link ModelFiles} of a model directory served over HTTP(S). A 404 (or 410) reads as a
 * missing file; other failures are errors that name the URL.
 * @param base the directory's URL; a trailing `/` is added when missing. Relative URLs are
 *   resolved against the page (`location.href`) in browsers.
 * @example
 * ```ts
 * const model = await loadSashaModelFrom(modelFilesFromUrl('/models/c16/'));
 * ```
 * @category Utils
 */
export function modelFilesFromUrl(base: string, options: ModelFilesFromUrlOptions = {}): ModelFiles {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  let root: URL;
  try {
    root = new URL(base.endsWith('/') ? base : `${base}/`, page);
  } catch {
    throw new DataError(`'${base}' is not a valid URL of a model directory. Give an absolute URL, or a path on this site such as '/models/c16/'.`);
  }
  const doFetch = options.fetch ?? ((u: string, init?: RequestInit) => fetch(u, init));
  return {
    name: root.href,
    async read(path: string): Promise<Uint8Array | null> {
      const url = new URL(normalizeModelPath(path), root).href;
      let res: Response;
      try {
        res = await doFetch(url, options.requestInit);
      } catch (e) {
        throw new DataError(`Cannot fetch '${url}': ${(e as Error).message}. Check the address and that the server allows this page to read it (CORS).`);
      }
      if (res.status === 404 || res.status === 410) return null;
      if (!res.ok) throw new DataError(`Cannot fetch '${url}': HTTP ${res.status} ${res.statusText}.`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

/** A file picked in a browser, or anything with the same reading methods. @category Utils */
export interface PickedFile {
  /** The file's own name. */
  readonly name: string;
  /** Its path from the picked folder, folder included (`'c16/hafed/model.json'`), as `<input webkitdirectory>` and drag and drop give it. */
  readonly webkitRelativePath?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * {@link ModelFiles} over files a user picked (`<input type="file" webkitdirectory>`, or a
 * dropped folder). Paths come from `webkitRelativePath` (or the keys of a map, which are taken
 * as paths relative to the model directory). In a picked list, the model directory is
 * recognised as the shallowest folder holding `sasha.json` (or, for a saved bundle,
 * `sasha/model.json`; or `model.json` for a single saved model), so that picking the model
 * directory itself or a folder around it both work.
 * @param files the picked files, or a map from relative path to file.
 * @param name for messages (default: the picked folder's name).
 * @example
 * ```ts
 * input.onchange = async () => {
 *   const model = await loadSashaModelFrom(modelFilesFromPicked(input.files!));
 * };
 * ```
 * @category Utils
 */
export function modelFilesFromPicked(files: Iterable<PickedFile> | ArrayLike<PickedFile> | ReadonlyMap<string, PickedFile>, name?: string): ModelFiles {
  const byPath = new Map<string, PickedFile>();
  const isMap = files instanceof Map;
  if (isMap) {
    for (const [p, f] of files as ReadonlyMap<string, PickedFile>) byPath.set(normalizeModelPath(p), f);
  } else {
    const list = Symbol.iterator in Object(files) ? Array.from(files as Iterable<PickedFile>) : Array.from(files as ArrayLike<PickedFile>);
    for (const f of list) byPath.set(normalizeModelPath(f.webkitRelativePath || f.name), f);
  }
  // The model directory is the shallowest folder holding one of the marker files (the keys of a
  // map are relative to the model directory already).
  const markers = isMap ? [] : ['sasha.json', 'sasha/model.json', 'model.json'];
  let root: string | undefined;
  for (const marker of markers) {
    for (const p of byPath.keys()) {
      if (p !== marker && !p.endsWith(`/${marker}`)) continue;
      const dir = p.slice(0, p.length - marker.length).replace(/\/$/, '');
      if (root === undefined || dir.split('/').length < root.split('/').length) root = dir;
    }
    if (root !== undefined) break;
  }
  const prefix = root ? `${root}/` : '';
  return {
    name: name ?? (root || (byPath.size ? 'the picked files' : 'no files')),
    async read(path: string): Promise<Uint8Array | null> {
      const f = byPath.get(prefix + normalizeModelPath(path));
      if (!f) return null;
      try {
        return new Uint8Array(await f.arrayBuffer());
      } catch (e) {
        throw new DataError(`Cannot read the picked file '${prefix + path}': ${(e as Error).message}.`);
      }
    },
  };
}

/**
 * Reads and parses a JSON file of a model directory.
 * @returns the parsed value, or null when the file does not exist.
 * @throws DataError naming the file when it is not valid JSON.
 * @category Utils
 */
export async function readModelJson<T = unknown>(files: ModelFiles, path: string): Promise<T | null> {
  const bytes = await files.read(path);
  if (bytes === null) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (e) {
    throw new DataError(`'${path}' in '${files.name}' is not valid JSON (${(e as Error).message}); the file is corrupt or is not part of a saved model.`);
  }
}

/**
 * Reads the `tf.io` artifacts of a model saved in folder `dir` of a model directory:
 * `dir/model.json` (topology, weights manifest) and the weight files it lists (paths relative to
 * `dir`), concatenated in manifest order. Works for any tfjs model JSON (sasha-wsi models,
 * LayersModels, GraphModels).
 * @param dir the folder, relative to the model directory (`''` for its root).
 * @returns the artifacts (weights in one buffer), or null when `dir/model.json` does not exist.
 * @throws DataError naming the file when it is not a tfjs model JSON or a listed weights file is missing.
 * @example
 * ```ts
 * const a = await readModelArtifacts(files, 'hafed');
 * const hafed = Hafed.fromArtifacts(a!);
 * ```
 * @category Utils
 */
export async function readModelArtifacts(files: ModelFiles, dir: string): Promise<tf.io.ModelArtifacts | null> {
  const jsonPath = joinModelPath(dir, 'model.json');
  const json = await readModelJson<tf.io.ModelJSON>(files, jsonPath);
  if (json === null) return null;
  checkModelJson(json, `${files.name}/${jsonPath}`);
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const parts: Uint8Array[] = [];
    for (const group of manifest ?? []) {
      specs.push(...group.weights);
      let have = 0;
      const paths: string[] = [];
      for (const p of group.paths) {
        const wp = joinModelPath(dir, checkModelPath(p, 'weights path', `${files.name}/${jsonPath}`));
        const bytes = await files.read(wp);
        if (bytes === null) throw new DataError(`The weights file '${wp}' listed in '${jsonPath}' is missing from '${files.name}'; the saved model is incomplete.`);
        parts.push(bytes);
        paths.push(wp);
        have += bytes.length;
      }
      const need = group.weights.map(weightEntryBytes);
      if (need.every((n) => n !== undefined)) {
        const want = (need as number[]).reduce((a, b) => a + b, 0);
        if (have !== want) {
          throw new DataError(
            `Weights file${paths.length > 1 ? 's' : ''} '${paths.map((p) => `${files.name}/${p}`).join("', '")}' hold${paths.length > 1 ? '' : 's'} ${have} bytes, but '${files.name}/${jsonPath}' describes ${want} ` +
              `(${group.weights.length} weights). The file is truncated or belongs to another model; save the model again.`,
          );
        }
      }
    }
    const total = parts.reduce((a, b) => a + b.length, 0);
    const data = new Uint8Array(total);
    let o = 0;
    for (const b of parts) {
      data.set(b, o);
      o += b.length;
    }
    return [specs, data.buffer];
  });
}
