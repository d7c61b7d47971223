/**
 * The model directory the CLI trains into (`--out DIR`, later `--model DIR`):
 * ```
 * DIR/sasha.json              what is in the directory: data paths, d, k, classes, per-component entries
 * DIR/hafed/                  the trained HAFED (model.json + weights), loadable with Hafed.load
 * DIR/checkpoints/hafed/      training checkpoints: last/ (resumable), best/
 * ```
 * `sasha.json` is updated by each training command (`train hafed` writes `data` and `hafed`;
 * later stages add their own entries), always atomically.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, SashaError } from '../core/errors.js';
import { MODEL_MANIFEST, MODEL_MANIFEST_FORMAT, modelManifestEntries, parseModelManifest, type ModelManifest } from '../pipeline/load_model.js';
import { fileIO, resolveInside, writeFileAtomic } from './io/file_io.js';

export { MODEL_MANIFEST, MODEL_MANIFEST_FORMAT, type ModelManifest } from '../pipeline/load_model.js';

/** Largest `sasha.json` read (a manifest is a few kB). */
const MAX_MANIFEST_BYTES = 16 * 2 ** 20;

/**
 * Reads `DIR/sasha.json` and checks its fields: `dim`, `k` and `numClasses` are positive
 * integers, `data` names the feature files, and the folder of every component entry (`path`)
 * stays inside `DIR` (see `modelComponentPath`).
 * @throws DataError naming the fix when the directory holds no model, another format, or a
 *   damaged manifest.
 * @category Node
 */
export function readModelManifest(dir: string): ModelManifest {
  const file = path.join(dir, MODEL_MANIFEST);
  if (!existsSync(file)) {
    throw new DataError(`'${dir}' is not a model directory: ${MODEL_MANIFEST} is missing. Train one with 'sasha train hafed --out ${dir}'.`);
  }
  let json: unknown;
  try {
    const size = statSync(file).size;
    if (size > MAX_MANIFEST_BYTES) throw new Error(`${size} bytes, more than a manifest has`);
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`Cannot parse '${file}': ${(e as Error).message}. The manifest is damaged; train the model again or restore the file.`);
  }
  const manifest = parseModelManifest(json, file);
  // the browser-safe parser checks the paths as text; on disk, symbolic links must not leave DIR either
  for (const [key, entry] of modelManifestEntries(manifest)) resolveInside(dir, entry.path, `path of '${key}'`);
  return manifest;
}

/**
 * The folder or file of a component entry of a model directory (`manifest.hafed.path`,
 * `manifest.tsu.path`, a policy's path), resolved inside `dir`.
 * @throws DataError when the path is absolute, leaves `dir` through `..`, or is a symbolic link
 *   that points out of it.
 * @example
 * ```ts
 * const m = readModelManifest('runs/c16');
 * const hafed = await Hafed.load(fileIO(modelComponentPath('runs/c16', m.hafed!.path, 'HAFED')));
 * ```
 * @category Node
 */
export function modelComponentPath(dir: string, rel: string, what: string): string {
  return resolveInside(dir, rel, `${what} path in ${MODEL_MANIFEST}`);
}

/**
 * Loads a component of a model directory (`manifest.hafed.path`, a policy's path) with its
 * class's `load` (`Hafed.load`, `StateMlp.load`, `ActorCritic.load`): the path is resolved
 * inside `dir` (`modelComponentPath`), and any failure is a `DataError` naming the folder.
 * @returns the loaded model, owned by the caller.
 * @example
 * ```ts
 * const hafed = await loadModelComponent('runs/c16', m.hafed!.path, 'HAFED', (io) => Hafed.load(io));
 * ```
 * @category Node
 */
export async function loadModelComponent<T>(dir: string, rel: string, what: string, load: (io: ReturnType<typeof fileIO>) => Promise<T>): Promise<T> {
  const sub = modelComponentPath(dir, rel, what);
  try {
    return await load(fileIO(sub));
  } catch (e) {
    if (e instanceof DataError) throw e;
    const why = e instanceof SashaError ? e.message : `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
    throw new DataError(`The ${what} saved in '${sub}' cannot be loaded: ${why} The folder is damaged or of another version; train or save it again.`);
  }
}

/**
 * Writes `DIR/sasha.json` crash-safely, keeping the keys of an existing manifest that `update`
 * does not set. Runs writing one model directory hold its folder lock (`lockFolder`).
 * @category Node
 */
export async function updateModelManifest(dir: string, update: Omit<Partial<ModelManifest>, 'format' | 'formatVersion'>): Promise<ModelManifest> {
  const file = path.resolve(dir, MODEL_MANIFEST);
  // one update of a file at a time in this process: each reads what the previous one wrote
  const previous = manifestUpdates.get(file) ?? Promise.resolve();
  const run = previous.then(async () => {
    const prev = existsSync(file) ? readModelManifest(dir) : {};
    const next = { format: MODEL_MANIFEST_FORMAT, formatVersion: 1, ...prev, ...update } as ModelManifest;
    // policies are added one budget at a time: keep the ones saved meanwhile
    if (update.policies) next.policies = { ...((prev as Partial<ModelManifest>).policies ?? {}), ...update.policies };
    next.format = MODEL_MANIFEST_FORMAT;
    next.formatVersion = 1;
    await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n');
    return next;
  });
  const settled = run.catch(() => undefined);
  manifestUpdates.set(file, settled);
  void settled.then(() => {
    if (manifestUpdates.get(file) === settled) manifestUpdates.delete(file);
  });
  return run;
}

/** The last pending manifest update per file (see {@link updateModelManifest}). */
const manifestUpdates = new Map<string, Promise<unknown>>();
