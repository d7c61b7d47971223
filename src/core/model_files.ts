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
import { DataError } from './errors.js';

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
  if (typeof json !== 'object' || !('modelTopology' in json)) {
    throw new DataError(`'${jsonPath}' in '${files.name}' is not a tfjs model JSON (no modelTopology).`);
  }
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const parts: Uint8Array[] = [];
    for (const group of manifest ?? []) {
      specs.push(...group.weights);
      for (const p of group.paths) {
        const wp = joinModelPath(dir, p);
        const bytes = await files.read(wp);
        if (bytes === null) throw new DataError(`The weights file '${wp}' listed in '${jsonPath}' is missing from '${files.name}'; the saved model is incomplete.`);
        parts.push(bytes);
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
