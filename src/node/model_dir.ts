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
import { writeFileAtomic } from './io/file_io.js';

/** Name of the manifest file in a model directory. */
export const MODEL_MANIFEST = 'sasha.json';
/** The `format` field of the manifest. */
export const MODEL_MANIFEST_FORMAT = 'sasha-model';

/** The manifest of a model directory (`DIR/sasha.json`). Components add their own keys. */
export interface ModelManifest {
  format: typeof MODEL_MANIFEST_FORMAT;
  formatVersion: number;
  /** Feature width d. */
  dim: number;
  /** Sub-patches per patch k. */
  k: number;
  /** Number of classes. */
  numClasses: number;
  /**
   * The feature files the models were trained on (absolute paths). Absent in a directory
   * written by `sasha import-reference` without `--lr-h5` / `--split`: commands then need them as flags.
   */
  data?: { lrH5: string; hrH5?: string; split: string };
  /** The HAFED entry written by `sasha train hafed`. */
  hafed?: {
    /** Directory of the saved model, relative to the model directory. */
    path: string;
    input: 'highRes' | 'lowRes';
    config: Record<string, unknown>;
    train: Record<string, unknown>;
    seed: number;
    /** The training flags it was trained with (see `recordedFlags`); absent in older directories. */
    flags?: Record<string, string>;
    best: Record<string, unknown>;
  };
  [component: string]: unknown;
}

/**
 * Reads `DIR/sasha.json`.
 * @throws DataError naming the fix when the directory holds no model or another format.
 */
export function readModelManifest(dir: string): ModelManifest {
  const file = path.join(dir, MODEL_MANIFEST);
  if (!existsSync(file)) {
    throw new DataError(`'${dir}' is not a model directory: ${MODEL_MANIFEST} is missing. Train one with 'sasha train hafed --out ${dir}'.`);
  }
  let json: ModelManifest;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as ModelManifest;
  } catch (e) {
    throw new DataError(`Cannot parse '${file}': ${(e as Error).message}.`);
  }
  if (json.format !== MODEL_MANIFEST_FORMAT) {
    throw new DataError(`'${file}' is not a sasha-wsi model manifest (format '${String(json.format)}').`);
  }
  if (typeof json.formatVersion !== 'number' || json.formatVersion > 1) {
    throw new DataError(`'${file}' was written by a newer sasha-wsi (layout version ${json.formatVersion}); upgrade to read it.`);
  }
  return json;
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
