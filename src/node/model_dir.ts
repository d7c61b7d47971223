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
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../core/errors.js';
import { MODEL_MANIFEST, MODEL_MANIFEST_FORMAT, parseModelManifest, type ModelManifest } from '../pipeline/load_model.js';
import { writeFileAtomic } from './io/file_io.js';

export { MODEL_MANIFEST, MODEL_MANIFEST_FORMAT, type ModelManifest } from '../pipeline/load_model.js';

/**
 * Reads `DIR/sasha.json`.
 * @throws DataError naming the fix when the directory holds no model or another format.
 */
export function readModelManifest(dir: string): ModelManifest {
  const file = path.join(dir, MODEL_MANIFEST);
  if (!existsSync(file)) {
    throw new DataError(`'${dir}' is not a model directory: ${MODEL_MANIFEST} is missing. Train one with 'sasha train hafed --out ${dir}'.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`Cannot parse '${file}': ${(e as Error).message}.`);
  }
  return parseModelManifest(json, file);
}

/** Writes `DIR/sasha.json` atomically, keeping the keys of an existing manifest that `update` does not set. */
export async function updateModelManifest(dir: string, update: Omit<Partial<ModelManifest>, 'format' | 'formatVersion'>): Promise<ModelManifest> {
  const file = path.join(dir, MODEL_MANIFEST);
  const prev = existsSync(file) ? readModelManifest(dir) : {};
  const next = { format: MODEL_MANIFEST_FORMAT, formatVersion: 1, ...prev, ...update } as ModelManifest;
  next.format = MODEL_MANIFEST_FORMAT;
  next.formatVersion = 1;
  await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n');
  return next;
}
