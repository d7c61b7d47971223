/**
 * Saving and loading `tf.io` model artifacts in a directory (Node): `model.json` plus one
 * weights file, and the crash-safe file writing every Node writer of the library uses: a
 * temporary name in the same folder, fsync, rename, fsync of the folder. After a crash (power
 * loss or SIGKILL) at any point, a reader finds the previous file or the new one, complete.
 *
 * @packageDocumentation
 */
import { closeSync, existsSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tf } from '../../core/tf.js';
import { DataError } from '../../core/errors.js';
import { readModelArtifacts, type ModelFiles } from '../../core/model_files.js';
import type { CheckpointStore } from '../../core/checkpoint.js';
import { hostTag } from './host.js';

/** Name of the JSON file of a saved model. */
export const MODEL_JSON = 'model.json';

/** Suffix of temporary files; readers ignore them and the next save of a model removes them. */
export const TEMP_SUFFIX = '.tmp';

/**
 * A temporary path next to `file`: unique across processes and hosts (shards of one cohort may
 * share a folder on a network file system), ending in {@link TEMP_SUFFIX}.
 * @example
 * ```ts
 * tempPathFor('/out/lr.h5'); // '/out/lr.h5.node7-4242-9f3a2c1b.tmp'
 * ```
 * @category Node
 */
export function tempPathFor(file: string): string {
  return `${file}.${hostTag()}-${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`;
}

/**
 * Flushes a folder's entries to disk (after a rename or a new file in it). File systems that
 * cannot open a folder for syncing (some network mounts) are left as they are.
 * @category Node
 */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EBADF') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Makes a finished temporary file the file `file`: fsync of its bytes, rename over `file`
 * (atomic on POSIX file systems), fsync of the folder. On failure the temporary file is removed.
 * @param tmp a temporary file in the same folder ({@link tempPathFor}), closed.
 * @category Node
 */
export function commitTempFile(tmp: string, file: string): void {
  try {
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/**
 * Writes `data` to `file` crash-safely: a temporary name, fsync, rename, fsync of the folder.
 * @example
 * ```ts
 * await writeFileAtomic('runs/c16/sasha.json', JSON.stringify(manifest));
 * ```
 * @category Node
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(file);
  const handle = await fsp.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (e) {
    await handle.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/** The synchronous form of {@link writeFileAtomic}. @category Node */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(file);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/**
 * Resolves `rel`, a path read from a file inside folder `root` (a weights path in `model.json`,
 * a component path in `sasha.json`), and checks that it stays inside `root`: no absolute path,
 * no `..` that leaves it, no symbolic link that points out of it.
 * @param what how the path is named in messages (`'weights path'`).
 * @returns the absolute path.
 * @throws DataError naming the path and the folder.
 * @example
 * ```ts
 * resolveInside('/models/c16', 'hafed', 'HAFED path');          // '/models/c16/hafed'
 * resolveInside('/models/c16', '../../etc/passwd', 'weights path'); // throws DataError
 * ```
 * @category Node
 */
export function resolveInside(root: string, rel: unknown, what: string): string {
  const refuse = (why: string) =>
    new DataError(`The ${what} '${String(rel)}' in '${root}' ${why}. A saved model names files inside its own folder only; save the model again.`);
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) throw refuse('is not a file name');
  if (path.isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel)) throw refuse('is an absolute path');
  const base = path.resolve(root);
  const full = path.resolve(base, rel);
  const inside = (p: string, b: string) => p === b || p.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
  if (!inside(full, base)) throw refuse('leaves the folder');
  if (existsSync(full)) {
    let realBase: string;
    let realFull: string;
    try {
      realBase = realpathSync(base);
      realFull = realpathSync(full);
    } catch {
      throw refuse('cannot be resolved');
    }
    if (!inside(realFull, realBase)) throw refuse('is a link that leaves the folder');
  }
  return full;
}

/** The directory of a `file://` URL (or a plain path). */
export function pathFromFileUrl(url: string): string {
  return url.startsWith('file://') ? url.slice('file://'.length) : url;
}

/**
 * A `tf.io` handler that saves to and loads from directory `dir`:
 * `dir/model.json` (the tfjs model JSON layout: topology, format, weights manifest) and
 * `dir/weights.<random>.bin`. A save writes the weights under a new name first and switches
 * `model.json` last (both crash-safely: temporary name, fsync, rename, fsync of the folder),
 * then removes the old weights: a crash at any point leaves the previous or the new model
 * readable, never a mix. A load checks `model.json` and the weight files before decoding: a
 * weights path that leaves `dir`, a truncated weights file or one of another model is a
 * `DataError` naming the file.
 *
 * @example
 * ```ts
 * await hafed.save(fileIO('/models/hafed'));
 * const again = await Hafed.load(fileIO('/models/hafed'));
 * ```
 * @category Node
 */
export function fileIO(dir: string): Required<Pick<tf.io.IOHandler, 'save' | 'load'>> {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await fsp.mkdir(dir, { recursive: true });
      const weightsName = `weights.${Date.now().toString(36)}${randomBytes(3).toString('hex')}.bin`;
      const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      await writeFileAtomic(path.join(dir, weightsName), new Uint8Array(data));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
        weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
      };
      const text = JSON.stringify(modelJson);
      await writeFileAtomic(path.join(dir, MODEL_JSON), text);
      // The new model is committed; drop old weights and leftovers of interrupted saves.
      for (const f of await fsp.readdir(dir)) {
        if ((f.startsWith('weights.') && f.endsWith('.bin') && f !== weightsName) || f.endsWith(TEMP_SUFFIX)) {
          await fsp.rm(path.join(dir, f), { force: true });
        }
      }
      fsyncDir(dir);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: text.length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: data.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      const artifacts = await readModelArtifacts(modelFilesFromDir(dir), '');
      if (!artifacts) throw new DataError(`No saved model in '${dir}': ${MODEL_JSON} is missing. Point to the directory a model was saved to.`);
      return artifacts;
    },
  };
}

let routerRegistered = false;

/**
 * Registers the `file://` scheme with `tf.io`, so that `model.save('file:///dir')` and
 * `Hafed.load('file:///dir')` use {@link fileIO}. Skipped when another router (tfjs-node's)
 * already serves `file://`. Importing `sasha-wsi/node` calls it.
 * @category Node
 */
export function registerFileRouter(): void {
  if (routerRegistered) return;
  routerRegistered = true;
  if (tf.io.getSaveHandlers('file:///probe').length > 0) return;
  // tf.io routers return null for URLs they do not serve (its IORouter type omits the null).
  const router = ((url: string | string[]) => {
    if (Array.isArray(url) || !url.startsWith('file://')) return null;
    return fileIO(pathFromFileUrl(url));
  }) as (url: string | string[]) => tf.io.IOHandler;
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}

/**
 * A checkpoint store in a directory: checkpoint `name` is the saved model directory
 * `dir/name/` written by {@link fileIO} (atomic).
 * @example
 * ```ts
 * await trainHafed({ train, val, checkpoint: fileCheckpointStore('runs/hafed/checkpoints'), resume: true });
 * ```
 * @category Node
 */
export function fileCheckpointStore(dir: string): CheckpointStore {
  return {
    save: async (name, artifacts) => {
      await fileIO(resolveInside(dir, name, 'checkpoint name')).save(artifacts);
    },
    load: async (name) => {
      const sub = resolveInside(dir, name, 'checkpoint name');
      if (!existsSync(path.join(sub, MODEL_JSON))) return null;
      return fileIO(sub).load();
    },
  };
}

/**
 * {@link ModelFiles} of a directory on disk, for the browser-safe loaders
 * (`loadSashaModelFrom`, `readModelArtifacts`).
 * @param dir the model directory.
 * @example
 * ```ts
 * const model = await loadSashaModelFrom(modelFilesFromDir('runs/c16'));
 * ```
 * @category Node
 */
export function modelFilesFromDir(dir: string): ModelFiles {
  const root = path.resolve(dir);
  return {
    name: dir,
    async read(rel: string): Promise<Uint8Array | null> {
      // inside the directory, also through symbolic links
      const file = resolveInside(root, rel, 'file');
      try {
        const buf = await fsp.readFile(file);
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw new DataError(`Cannot read '${file}': ${(e as Error).message}.`);
      }
    },
  };
}
