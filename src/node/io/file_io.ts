/**
 * Saving and loading `tf.io` model artifacts in a directory (Node): `model.json` plus one
 * weights file, written atomically, and the `file://` URL scheme for `save(url)` / `load(url)`.
 *
 * @packageDocumentation
 */
import { promises as fsp, existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tf } from '../../core/tf.js';
import { DataError } from '../../core/errors.js';
import type { ModelFiles } from '../../core/model_files.js';
import type { CheckpointStore } from '../../core/checkpoint.js';

/** Name of the JSON file of a saved model. */
export const MODEL_JSON = 'model.json';

/** Writes `data` to `file` through a temporary name, flushed, then renamed (atomic on POSIX). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fsp.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** The directory of a `file://` URL (or a plain path). */
export function pathFromFileUrl(url: string): string {
  return url.startsWith('file://') ? url.slice('file://'.length) : url;
}

/**
 * A `tf.io` handler that saves to and loads from directory `dir`:
 * `dir/model.json` (the tfjs model JSON layout: topology, format, weights manifest) and
 * `dir/weights.<random>.bin`. A save writes the weights under a new name first and switches
 * `model.json` last (both through temporary names and renames), then removes the old weights:
 * a crash at any point leaves the previous or the new model readable, never a mix.
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
        if ((f.startsWith('weights.') && f.endsWith('.bin') && f !== weightsName) || f.endsWith('.tmp')) {
          await fsp.rm(path.join(dir, f), { force: true });
        }
      }
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
      const file = path.join(dir, MODEL_JSON);
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await fsp.readFile(file, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new DataError(
          code === 'ENOENT'
            ? `No saved model in '${dir}': ${MODEL_JSON} is missing. Point to the directory a model was saved to.`
            : `Cannot read '${file}': ${(e as Error).message}. The file is corrupt; save the model again.`,
        );
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const f = path.join(dir, p);
            let buf: Buffer;
            try {
              buf = await fsp.readFile(f);
            } catch (e) {
              throw new DataError(`Cannot read weights file '${f}': ${(e as Error).message}. The saved model is incomplete.`);
            }
            buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
          }
        }
        return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
      });
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
      await fileIO(path.join(dir, name)).save(artifacts);
    },
    load: async (name) => {
      const sub = path.join(dir, name);
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
      const file = path.resolve(root, rel);
      if (file !== root && !file.startsWith(root + path.sep)) throw new DataError(`'${rel}' lies outside the model directory '${dir}'.`);
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
