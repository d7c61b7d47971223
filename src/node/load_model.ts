/**
 * Loading a trained SASHA model from disk for inference: the model directory the CLI trains
 * into (`sasha.json` with HAFED, f_S and one policy per budget), or a bundle written by
 * `SashaModel.save(fileCheckpointStore(dir))`. Also reads the extraction settings the training
 * features were made with, so that inference reads slides the same way, and packs a model
 * directory with those settings and its encoder into a self-contained one (for a browser, or
 * another machine).
 *
 * The reading itself is browser-safe ({@link loadSashaModelFrom} in `sasha-wsi`); this module
 * gives it the files of a directory.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DataError, ValueError } from '../core/errors.js';
import { parseBuiltinEncoderName } from '../wsi/encoders/builtin.js';
import {
  MODEL_EXTRACT_SETTINGS,
  loadSashaModelFrom,
  trainedBudgets,
  type LoadSashaModelOptions,
  type ModelManifest,
  type SashaModel,
} from '../pipeline/index.js';
import { modelFilesFromDir, writeFileAtomic } from './io/file_io.js';
import { MODEL_MANIFEST, readModelManifest } from './model_dir.js';

export { trainedBudgets, type LoadSashaModelOptions } from '../pipeline/load_model.js';

/**
 * Loads a trained SASHA model for `analyzeSlide` (from `sasha-wsi`).
 *
 * Two layouts are read: the CLI's model directory (`DIR/sasha.json`, `DIR/hafed/`,
 * `DIR/tsu/`, `DIR/policy-<f>/`), from which HAFED, f_S and the policy of the budget are taken
 * with the environment settings that policy was trained with; or a bundle saved with
 * `SashaModel.save(fileCheckpointStore(DIR))` (`DIR/sasha/`, `DIR/hafed/`, ...). Browsers load
 * the same directories with `loadSashaModelFrom(modelFilesFromUrl(url))`.
 *
 * @param dir the model directory.
 * @returns the model, owned by the caller (`dispose()` it); `extra.dir` is `dir`.
 * @throws DataError naming the fix when the directory holds no model, no f_S, or no policy for
 *   the budget (listing the budgets it has).
 * @example
 * ```ts
 * const model = await loadSashaModel('models/c16', { budget: 0.2 });
 * const res = await model.analyzeSlide(slide, { encoder });
 * model.dispose();
 * ```
 * @category Node
 */
export async function loadSashaModel(dir: string, options: LoadSashaModelOptions = {}): Promise<SashaModel> {
  const model = await loadSashaModelFrom(modelFilesFromDir(dir), options);
  model.extra = { ...model.extra, dir };
  return model;
}

/**
 * The settings `sasha extract` recorded (`extract.json`) next to the feature files a model
 * directory was trained on, or null when they cannot be found. Inference reads slides with
 * the same encoder, levels, tissue and grid settings by default.
 * @example
 * ```ts
 * readTrainingExtractSettings(readModelManifest('models/c16'));
 * // { encoder: 'builtin-cnn(d=384,in=224,seed=0)', lowRes: { level: 3 }, highRes: { level: 1 }, tissue: {...}, grid: {...}, ... }
 * ```
 * @category Node
 */
export function readTrainingExtractSettings(manifest: ModelManifest): Record<string, unknown> | null {
  const lr = manifest.data?.lrH5;
  if (typeof lr !== 'string') return null;
  return readJsonIfAny(path.join(path.dirname(lr), 'extract.json'));
}

/**
 * The extraction settings inference on a model directory should use: the directory's own
 * `extract.json` (a directory written by {@link packModelDir}; an encoder path in it is taken
 * relative to the directory), else those recorded next to its training features
 * ({@link readTrainingExtractSettings}), else null.
 * @example
 * ```ts
 * readModelDirExtractSettings('site/models/c16')?.encoder; // '/abs/site/models/c16/encoder'
 * ```
 * @category Node
 */
export function readModelDirExtractSettings(dir: string, manifest: ModelManifest | null = null): Record<string, unknown> | null {
  const own = readJsonIfAny(path.join(dir, MODEL_EXTRACT_SETTINGS));
  if (own) {
    const enc = own.encoder;
    if (typeof enc === 'string' && !parseBuiltinEncoderName(enc) && !path.isAbsolute(enc) && existsSync(path.join(dir, enc))) {
      return { ...own, encoder: path.resolve(dir, enc) };
    }
    return own;
  }
  return manifest ? readTrainingExtractSettings(manifest) : null;
}

/**
 * Options of {@link packModelDir}.
 * @example
 * ```ts
 * await packModelDir('runs/c16', 'public/models/c16', { budgets: [0.2] });
 * ```
 * @category Node
 */
export interface PackModelDirOptions {
  /** The budgets whose policies to keep (default: every trained one). */
  budgets?: number[];
  /**
   * The extraction settings to ship (default: those recorded next to the training features,
   * {@link readTrainingExtractSettings}, or the directory's own `extract.json`).
   */
  extract?: Record<string, unknown>;
}

/** What {@link packModelDir} wrote. @category Node */
export interface PackedModelDir {
  /** The output directory. */
  dir: string;
  /** Relative paths of the files written. */
  files: string[];
  /** Their total size in bytes. */
  bytes: number;
  /** The encoder the directory names: a built-in CNN name, or `'encoder'` (a tfjs model copied into it). */
  encoder: string;
}

/**
 * Writes a self-contained copy of a trained model directory, for inference in a browser or on
 * another machine: `sasha.json` (training data paths reduced to file names), HAFED, f_S, the
 * policies asked for (no training checkpoints), `extract.json` (the settings the training
 * features were extracted with) and, when the encoder was a tfjs model directory, that model as
 * `encoder/` (with `extract.json` naming it `'encoder'`; an ONNX file goes to
 * `encoder/<name>.onnx`, for Node). `loadSashaModelFrom` reads it from a
 * URL or from picked files; `sasha infer --model` reads it from disk.
 *
 * @param dir the trained model directory (`sasha train all --out dir`).
 * @param out the output directory (created; files of the same names are replaced).
 * @returns the files written and their size.
 * @throws DataError when the directory has no HAFED or no extraction settings can be found
 *   (pass `extract`), or the encoder directory is missing; ValueError for a budget without a policy.
 * @example
 * ```ts
 * const packed = await packModelDir('runs/c16', 'site/models/c16');
 * packed.files; // ['sasha.json', 'extract.json', 'hafed/model.json', ..., 'encoder/model.json', ...]
 * ```
 * @category Node
 */
export async function packModelDir(dir: string, out: string, options: PackModelDirOptions = {}): Promise<PackedModelDir> {
  if (path.resolve(dir) === path.resolve(out)) throw new ValueError(`Expected an output directory other than the model directory '${dir}'.`);
  const manifest = readModelManifest(dir);
  if (!manifest.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one with 'sasha train hafed --out ${dir}'.`);
  const extract = options.extract ?? readTrainingExtractSettings(manifest) ?? readJsonIfAny(path.join(dir, MODEL_EXTRACT_SETTINGS));
  if (!extract || typeof extract.encoder !== 'string') {
    throw new DataError(
      `Cannot find the extraction settings of '${dir}' (extract.json next to its training features ${manifest.data?.lrH5 ?? '(none recorded)'}). ` +
        'Pass them as options.extract ({ encoder, lowRes, highRes, tissue, grid, normalization }).',
    );
  }
  const have = trainedBudgets(manifest);
  const budgets = options.budgets ?? have;
  for (const f of budgets) {
    if (!have.some((b) => Math.abs(b - f) < 1e-9)) throw new ValueError(`No policy trained for budget ${f} in '${dir}' (trained for: ${have.join(', ') || 'none'}).`);
  }
  const policies = Object.fromEntries(
    Object.entries((manifest.policies ?? {}) as Record<string, { budget: number; path: string }>).filter(([, p]) => budgets.some((f) => Math.abs(p.budget - f) < 1e-9)),
  );
  const tsu = manifest.tsu as { path: string } | undefined;
  const parts = [manifest.hafed.path, ...(tsu ? [tsu.path] : []), ...Object.values(policies).map((p) => p.path)];
  await mkdir(out, { recursive: true });
  for (const part of parts) {
    await rm(path.join(out, part), { recursive: true, force: true });
    await cp(path.join(dir, part), path.join(out, part), { recursive: true });
  }
  let encoder = extract.encoder as string;
  if (/\.onnx$/i.test(encoder)) {
    // an ONNX encoder is one file: it goes to encoder/ under its own name (Node reads it; browsers do not)
    const file = path.isAbsolute(encoder) ? encoder : [path.resolve(encoder), path.resolve(dir, encoder)].find((f) => existsSync(f)) ?? path.resolve(encoder);
    if (!existsSync(file)) throw new DataError(`The ONNX encoder '${encoder}' named in the extraction settings of '${dir}' is not here; pass options.extract with its path.`);
    await rm(path.join(out, 'encoder'), { recursive: true, force: true });
    await mkdir(path.join(out, 'encoder'), { recursive: true });
    await cp(file, path.join(out, 'encoder', path.basename(file)));
    encoder = `encoder/${path.basename(file)}`;
  } else if (!parseBuiltinEncoderName(encoder)) {
    const encDir = path.isAbsolute(encoder) ? encoder : [path.resolve(encoder), path.resolve(dir, encoder)].find((d) => existsSync(d)) ?? path.resolve(encoder);
    const root = existsSync(path.join(encDir, 'model.json')) ? encDir : path.dirname(encDir);
    if (!existsSync(path.join(root, 'model.json'))) {
      throw new DataError(`The encoder '${encoder}' named in the extraction settings of '${dir}' is not a tfjs model directory here; pass options.extract with its path.`);
    }
    await rm(path.join(out, 'encoder'), { recursive: true, force: true });
    await cp(root, path.join(out, 'encoder'), { recursive: true });
    encoder = 'encoder';
  }
  const base = (p: unknown) => (typeof p === 'string' ? path.basename(p) : p);
  const data = manifest.data ? { lrH5: base(manifest.data.lrH5), hrH5: base(manifest.data.hrH5), split: base(manifest.data.split) } : manifest.data;
  await writeFileAtomic(path.join(out, MODEL_MANIFEST), JSON.stringify({ ...manifest, data, policies }, null, 2) + '\n');
  await writeFileAtomic(path.join(out, MODEL_EXTRACT_SETTINGS), JSON.stringify({ ...extract, encoder }, null, 2) + '\n');
  const files: string[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(out, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else {
        files.push(r);
        bytes += (await stat(path.join(out, r))).size;
      }
    }
  };
  await walk('');
  return { dir: out, files: files.sort(), bytes, encoder };
}

function readJsonIfAny(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
