/**
 * Loading a trained SASHA model from its files, wherever they are (browser-safe): the model
 * directory the CLI trains into (`sasha.json` with HAFED, f_S and one policy per budget), or a
 * bundle written by {@link SashaModel.save}. The files come through {@link ModelFiles}: a URL
 * ({@link modelFilesFromUrl}), files picked in a browser ({@link modelFilesFromPicked}), or a
 * directory on disk (`loadSashaModel(dir)` in `sasha-wsi/node`).
 *
 * A model directory may also hold `extract.json`, the settings its training features were
 * extracted with (encoder, levels, tissue, grid), and `encoder/`, the patch encoder as a tfjs
 * model: `packModelDir` in `sasha-wsi/node` writes such a self-contained directory, which
 * inference in a browser reads whole.
 *
 * @packageDocumentation
 */
import { tf, tfl } from '../core/tf.js';
import { DataError, SashaError, ShapeError, ValueError, quoteValue } from '../core/errors.js';
import { checkModelPath, readModelArtifacts, readModelJson, type ModelFiles } from '../core/model_files.js';
import { Hafed } from '../hafed/hafed.js';
import { DEFAULT_WSI_ENV_CONFIG, resolveWsiEnvConfig, type WsiEnvConfig } from '../mdp/index.js';
import { ActorCritic } from '../ppo/index.js';
import { StateMlp } from '../tsu/index.js';
import {
  builtinEncoder,
  graphModelEncoder,
  layersModelEncoder,
  onnxEncoder,
  type GraphModelLike,
  type Normalization,
  type OnnxRuntimeLike,
  type PatchEncoder,
} from '../wsi/encoders/index.js';
import { parseBuiltinEncoderName } from '../wsi/encoders/builtin.js';
import type { PatchGridConfig } from '../wsi/patch_grid.js';
import type { LevelSpec } from '../wsi/slide_source.js';
import type { TissueConfig } from '../wsi/tissue.js';
import type { AnalyzeSlideConfig } from './analyze_slide.js';
import { SashaModel } from './sasha_model.js';

/** Name of the manifest file in a model directory. @category Pipeline */
export const MODEL_MANIFEST = 'sasha.json';
/** The `format` field of the manifest. @category Pipeline */
export const MODEL_MANIFEST_FORMAT = 'sasha-model';
/** Name of the extraction settings a self-contained model directory carries. @category Pipeline */
export const MODEL_EXTRACT_SETTINGS = 'extract.json';

/**
 * The manifest of a model directory (`DIR/sasha.json`). Components add their own keys:
 * `tsu` (`{ path, train: { tau, ... } }`) and `policies` (`{ [budget]: { path, budget, env } }`).
 * @category Pipeline
 */
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
   * The feature files the models were trained on (absolute paths; file names only in a
   * directory written by `packModelDir`). Absent in a directory written by `sasha
   * import-reference` without `--lr-h5` / `--split`: commands then need them as flags.
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

/** What the loader reads of a policy entry of the manifest. */
interface PolicyEntry {
  path: string;
  budget: number;
  env?: Partial<WsiEnvConfig>;
}

/** What the loader reads of the f_S entry of the manifest. */
interface TsuEntry {
  path: string;
  train?: Record<string, unknown>;
}

/**
 * Checks a parsed `sasha.json`: its format and layout version; `dim`, `k` and `numClasses`
 * are positive integers (at least 2 classes); `data` names the feature files; every component
 * entry (`hafed`, `tsu`, `aggregated`, each policy) is an object whose `path` is a relative path
 * inside the model directory (no absolute path, no `..` that leaves it); a policy's budget is in
 * (0, 1].
 * @param json the parsed file.
 * @param where the file, for messages.
 * @throws DataError when it is another format, a newer layout, or damaged.
 * @category Pipeline
 */
export function parseModelManifest(json: unknown, where: string): ModelManifest {
  const m = json as ModelManifest | null;
  if (m === null || typeof m !== 'object' || Array.isArray(m) || m.format !== MODEL_MANIFEST_FORMAT) {
    throw new DataError(`'${where}' is not a sasha-wsi model manifest (format '${String((m as { format?: unknown } | null)?.format)}').`);
  }
  if (typeof m.formatVersion !== 'number' || m.formatVersion > 1) {
    throw new DataError(`'${where}' was written by a newer sasha-wsi (layout version ${m.formatVersion}); upgrade to read it.`);
  }
  const damaged = (why: string) => new DataError(`'${where}' is damaged: ${why}. Train the model again or restore the file.`);
  for (const key of ['dim', 'k', 'numClasses'] as const) {
    if (m[key] !== undefined && !(Number.isSafeInteger(m[key]) && m[key] > 0)) throw damaged(`'${key}' is ${quoteValue(m[key])}, not a positive integer`);
  }
  if (m.numClasses !== undefined && m.numClasses < 2) throw damaged(`'numClasses' is ${m.numClasses}; a classifier has at least 2 classes`);
  const d = m.data as Record<string, unknown> | undefined;
  if (d !== undefined && (d === null || typeof d !== 'object' || typeof d.lrH5 !== 'string' || typeof d.split !== 'string' || (d.hrH5 !== undefined && typeof d.hrH5 !== 'string'))) {
    throw damaged("'data' does not name the feature files (lrH5, split)");
  }
  if (m.policies !== undefined && (m.policies === null || typeof m.policies !== 'object' || Array.isArray(m.policies))) throw damaged("'policies' is not an object");
  for (const [key, v] of Object.entries((m.policies ?? {}) as Record<string, unknown>)) {
    const budget = (v as { budget?: unknown } | null)?.budget;
    if (typeof budget !== 'number' || !(budget > 0 && budget <= 1)) throw damaged(`policy '${key}' has the budget ${quoteValue(budget)}, not a number in (0, 1]`);
  }
  for (const key of ['hafed', 'tsu', 'aggregated']) {
    if (m[key] !== undefined && (m[key] === null || typeof m[key] !== 'object')) throw damaged(`the entry '${key}' is not an object`);
  }
  for (const [key, v] of Object.entries((m.policies ?? {}) as Record<string, unknown>)) {
    if (v === null || typeof v !== 'object') throw damaged(`the entry 'policies.${key}' is not an object`);
  }
  for (const [key, entry] of modelManifestEntries(m)) checkModelPath(entry.path, `path of '${key}'`, where);
  return m;
}

/**
 * The component entries of a manifest that name a folder or file of the model directory:
 * `[key, entry]` for `hafed`, `tsu`, `aggregated` and each policy (`policies.<slot>`).
 * @category Pipeline
 */
export function modelManifestEntries(m: ModelManifest): [string, { path: unknown }][] {
  const out: [string, { path: unknown }][] = [];
  for (const key of ['hafed', 'tsu', 'aggregated']) if (m[key] !== undefined) out.push([key, m[key] as { path: unknown }]);
  for (const [k, v] of Object.entries((m.policies ?? {}) as Record<string, { path: unknown }>)) out.push([`policies.${k}`, v]);
  return out;
}

/**
 * The budgets a model directory holds policies for (`sasha train policy --budget f`), ascending.
 * @example
 * ```ts
 * trainedBudgets(manifest); // [0.1, 0.2]
 * ```
 * @category Pipeline
 */
export function trainedBudgets(manifest: ModelManifest): number[] {
  const policies = (manifest.policies ?? {}) as Record<string, PolicyEntry>;
  return Object.values(policies)
    .map((p) => p.budget)
    .sort((a, b) => a - b);
}

/**
 * Options of {@link loadSashaModelFrom} (and `loadSashaModel` in `sasha-wsi/node`).
 * @example
 * ```ts
 * await loadSashaModelFrom(files, { budget: 0.1 });           // the policy trained for f = 0.1
 * await loadSashaModelFrom(files, { withoutPolicy: true });   // HAFED and f_S only (baselines, full resolution)
 * ```
 * @category Pipeline
 */
export interface LoadSashaModelOptions {
  /**
   * The budget f whose policy to load. Default: the only policy of the directory (an error
   * when it holds several).
   */
  budget?: number;
  /**
   * Load without a policy (for the baseline policies or the full-resolution mode); then a
   * missing policy for `budget` is not an error. Default false.
   */
  withoutPolicy?: boolean;
}

/**
 * Loads a trained SASHA model for {@link analyzeSlide} from the files of a model directory.
 *
 * Two layouts are read: the CLI's model directory (`sasha.json`, `hafed/`, `tsu/`,
 * `policy-<f>/`), from which HAFED, f_S and the policy of the budget are taken with the
 * environment settings that policy was trained with; or a bundle saved with
 * {@link SashaModel.save} (`sasha/`, `hafed/`, ...). `extra.manifest` holds the manifest of a
 * model directory.
 *
 * @param files the directory's files (URL, picked files, or a directory on disk).
 * @returns the model, owned by the caller (`dispose()` it).
 * @throws DataError naming the fix when the files hold no model, no f_S, or no policy for the
 *   budget (listing the budgets there are); ValueError for a budget outside (0, 1].
 * @example
 * ```ts
 * const model = await loadSashaModelFrom(modelFilesFromUrl('/models/c16/'), { budget: 0.2 });
 * const res = await model.analyzeSlide(slide, { encoder });
 * model.dispose();
 * ```
 * @category Pipeline
 */
export async function loadSashaModelFrom(files: ModelFiles, options: LoadSashaModelOptions = {}): Promise<SashaModel> {
  const { budget, withoutPolicy = false } = options;
  const where = files.name;
  if (budget !== undefined && !(budget > 0 && budget <= 1)) throw new ValueError(`Expected the budget f to be in (0, 1], but got ${budget}.`);
  const raw = await readModelJson(files, MODEL_MANIFEST);
  if (raw === null) {
    if ((await files.read('sasha/model.json')) !== null) return loadBundle(files, budget, withoutPolicy);
    throw new DataError(
      `'${where}' holds no SASHA model (no ${MODEL_MANIFEST}). Train one with 'sasha train all --out DIR' and give that directory, ` +
        'or save a SashaModel with its save() method.',
    );
  }
  const manifest = parseModelManifest(raw, `${where} ${MODEL_MANIFEST}`);
  if (!manifest.hafed) throw new DataError(`The model directory '${where}' holds no HAFED; train one with 'sasha train hafed'.`);
  if (manifest.hafed.input !== 'highRes') {
    throw new ValueError(`The HAFED in '${where}' reads low-res features only (--input lowRes); SASHA inference needs a HAFED trained on U.`);
  }
  const tsuEntry = manifest.tsu as TsuEntry | undefined;
  const policies = (manifest.policies ?? {}) as Record<string, PolicyEntry>;
  const have = trainedBudgets(manifest);
  const entryFor = (f: number) => Object.values(policies).find((p) => Math.abs(p.budget - f) < 1e-9);
  let entry: PolicyEntry | undefined;
  if (budget !== undefined) entry = entryFor(budget);
  else if (have.length === 1) entry = entryFor(have[0]);
  else if (have.length > 1 && !withoutPolicy) {
    throw new ValueError(`The model directory '${where}' holds policies for budgets ${have.join(', ')}; choose one (--budget).`);
  }
  if (!entry && !withoutPolicy) {
    const f = budget ?? DEFAULT_WSI_ENV_CONFIG.budget;
    throw new DataError(
      `No policy trained for budget ${f} in '${where}'${have.length ? ` (trained for: ${have.join(', ')})` : ''}. ` +
        `Run 'sasha train policy --model DIR --budget ${f}', or use a baseline policy (top-attention or random).`,
    );
  }
  if (!tsuEntry && !withoutPolicy) throw new DataError(`The model directory '${where}' holds no f_S; run 'sasha train tsu --model DIR' first.`);
  const hafedArtifacts = await artifacts(files, manifest.hafed.path, 'HAFED');
  const hafed = decodePart(files, manifest.hafed.path, 'HAFED', () => Hafed.fromArtifacts(hafedArtifacts));
  let fS: StateMlp | null = null;
  let policy: ActorCritic | null = null;
  try {
    if (tsuEntry) {
      const a = await artifacts(files, tsuEntry.path, 'f_S');
      fS = decodePart(files, tsuEntry.path, 'f_S', () => StateMlp.fromArtifacts(a));
    }
    if (entry) {
      const a = await artifacts(files, entry.path, `policy for f = ${entry.budget}`);
      policy = decodePart(files, entry.path, `policy for f = ${entry.budget}`, () => ActorCritic.fromArtifacts(a, { dim: hafed.dim }));
    }
    const f = entry?.budget ?? budget ?? DEFAULT_WSI_ENV_CONFIG.budget;
    const trainedTau = Number(tsuEntry?.train?.tau);
    const env = resolveWsiEnvConfig({
      ...(entry?.env ?? {}),
      budget: f,
      // the tau f_S was trained with, as 'sasha train policy' uses
      tau: entry?.env?.tau ?? (Number.isFinite(trainedTau) ? trainedTau : DEFAULT_WSI_ENV_CONFIG.tau),
      ...(fS ? {} : { update: 'none' as const }),
    });
    return new SashaModel({ hafed, fS, policy, env, extra: { manifest } });
  } catch (e) {
    hafed.dispose();
    fS?.dispose();
    policy?.dispose();
    throw e;
  }
}

/** The artifacts of a part the manifest lists; an error naming the part when they are missing. */
async function artifacts(files: ModelFiles, dir: string, what: string) {
  const a = await readModelArtifacts(files, dir);
  if (!a) throw new DataError(`The ${what} listed in ${MODEL_MANIFEST} is missing from '${files.name}' (no ${dir}/model.json); the model directory is incomplete.`);
  return a;
}

/**
 * Decodes a part of a model directory (`Hafed.fromArtifacts`, ...): a failure (a damaged
 * config, weights of the wrong shape) is a `DataError` naming the part and the directory.
 */
function decodePart<T>(files: ModelFiles, dir: string, what: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`The ${what} in '${files.name}/${dir}': ${e.message}`);
    const why = e instanceof SashaError ? e.message : `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
    throw new DataError(`The ${what} saved in '${files.name}/${dir}' cannot be loaded: ${why} The folder is damaged or of another version; train or save it again.`);
  }
}

async function loadBundle(files: ModelFiles, budget: number | undefined, withoutPolicy: boolean): Promise<SashaModel> {
  const store = {
    load: (name: string) => readModelArtifacts(files, name),
    save: async () => {
      throw new DataError(`'${files.name}' is read-only.`);
    },
  };
  let model: SashaModel;
  try {
    model = await SashaModel.load(store);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const why = e instanceof SashaError ? e.message : `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
    throw new DataError(`The SASHA model saved in '${files.name}' cannot be loaded: ${why} The folder is damaged or of another version; save it again.`);
  }
  if (budget !== undefined && Math.abs(budget - model.env.budget) > 1e-9) {
    if (model.policy && !withoutPolicy) {
      const own = model.env.budget;
      model.dispose();
      throw new DataError(
        `The model in '${files.name}' holds a policy for budget ${own}, not ${budget}. Use budget ${own}, or a baseline policy (top-attention or random).`,
      );
    }
    model.env = resolveWsiEnvConfig({ ...model.env, budget });
  }
  return model;
}

/**
 * The extraction settings a self-contained model directory carries (`extract.json`, as
 * `sasha extract` writes it next to the features: `encoder`, `lowRes`, `highRes`, `tissue`,
 * `grid`, `normalization`, `inputSize`), or null when it has none.
 * @example
 * ```ts
 * const s = await readModelExtractSettings(modelFilesFromUrl('/models/c16/'));
 * s?.encoder; // 'builtin-cnn(d=64,in=32,seed=0)' or 'encoder' (a folder of the directory)
 * ```
 * @category Pipeline
 */
export async function readModelExtractSettings(files: ModelFiles): Promise<Record<string, unknown> | null> {
  const json = await readModelJson<Record<string, unknown>>(files, MODEL_EXTRACT_SETTINGS);
  if (json !== null && (typeof json !== 'object' || Array.isArray(json))) {
    throw new DataError(`'${MODEL_EXTRACT_SETTINGS}' in '${files.name}' is not an object of extraction settings.`);
  }
  return json;
}

/** Options of {@link loadModelEncoder}. @category Pipeline */
export interface LoadModelEncoderOptions {
  /** The feature width the encoder must give (the model's d); a mismatch is an error naming both. */
  dim?: number;
  /**
   * Loads a GraphModel from an IO handler (`tfconv.loadGraphModel` of
   * `@tensorflow/tfjs-converter`), for an `encoder/` saved as a GraphModel; without it such an
   * encoder is an error naming the package.
   */
  loadGraphModel?: (handler: tf.io.IOHandler) => Promise<GraphModelLike>;
  /**
   * ONNX Runtime for an `.onnx` encoder (`import * as ort from 'onnxruntime-web'` in a browser);
   * default: the runtime registered with `setOnnxRuntime` (`sasha-wsi/node` registers
   * `onnxruntime-node`).
   */
  onnxRuntime?: OnnxRuntimeLike;
}

/**
 * The patch encoder named by a model directory's extraction settings
 * ({@link readModelExtractSettings}): a built-in CNN (`'builtin-cnn(d=..,in=..,seed=..)'`,
 * rebuilt from its seed), a folder of the directory (`'encoder'`, as `packModelDir` of
 * `sasha-wsi/node` writes it) holding a tfjs LayersModel or GraphModel, or an ONNX file of the
 * directory (`'encoder/vit_s16.onnx'`, run by ONNX Runtime with the patch preparation recorded
 * at extraction). The settings' `normalization`, `inputSize` and `tokenPooling` are applied.
 * @param files the model directory's files.
 * @param settings the extraction settings (at least `encoder`).
 * @returns the encoder, owned by the caller (`dispose()` it).
 * @throws DataError naming the fix when the encoder is neither, or missing; ShapeError when
 *   its width is not `options.dim`.
 * @example
 * ```ts
 * const files = modelFilesFromUrl('/models/c16/');
 * const settings = await readModelExtractSettings(files);
 * const encoder = await loadModelEncoder(files, settings!, { dim: model.hafed!.dim });
 * ```
 * @category Pipeline
 */
export async function loadModelEncoder(files: ModelFiles, settings: Record<string, unknown>, options: LoadModelEncoderOptions = {}): Promise<PatchEncoder> {
  const name = settings.encoder;
  if (typeof name !== 'string' || name === '') throw new DataError(`The extraction settings of '${files.name}' name no encoder ("encoder" is missing).`);
  const normalization = (settings.normalization as Normalization | undefined) ?? 'imagenet';
  const builtin = parseBuiltinEncoderName(name);
  let encoder: PatchEncoder;
  if (builtin) {
    encoder = builtinEncoder({ ...builtin, normalization });
  } else if (/\.onnx$/i.test(name)) {
    const bytes = await files.read(name);
    if (!bytes) throw new DataError(`The ONNX encoder '${name}' named in ${MODEL_EXTRACT_SETTINGS} is not in '${files.name}'.`);
    // the patch preparation recorded at extraction (sasha extract --encoder x.onnx)
    const r = (settings.onnx ?? {}) as Record<string, unknown>;
    const pick = <T>(k: string): T | undefined => (r[k] === undefined ? undefined : (r[k] as T));
    const tokenPooling = pick<'cls' | 'mean'>('tokenPooling');
    encoder = await onnxEncoder(bytes, {
      name: `${files.name.replace(/\/$/, '')}/${name}`,
      normalization,
      ...(typeof settings.inputSize === 'number' ? { inputSize: settings.inputSize } : {}),
      ...(pick<number>('resizeSize') !== undefined ? { resizeSize: pick<number>('resizeSize') } : {}),
      ...(pick<string>('outputName') !== undefined ? { outputName: pick<string>('outputName') } : {}),
      ...(tokenPooling !== undefined ? { output: tokenPooling } : {}),
      ...(pick<number>('prefixTokens') !== undefined ? { prefixTokens: pick<number>('prefixTokens') } : {}),
      ...(pick<'NCHW' | 'NHWC'>('layout') !== undefined ? { layout: pick<'NCHW' | 'NHWC'>('layout') } : {}),
      ...(pick<'float32' | 'float16'>('dtype') !== undefined ? { dtype: pick<'float32' | 'float16'>('dtype') } : {}),
      ...(options.onnxRuntime ? { runtime: options.onnxRuntime } : {}),
    });
  } else {
    const artifacts = await readModelArtifacts(files, name);
    if (!artifacts) {
      throw new DataError(
        `The encoder '${name}' named in ${MODEL_EXTRACT_SETTINGS} is not in '${files.name}' (no ${name}/model.json). ` +
          "Pack the model directory with its encoder (packModelDir in sasha-wsi/node), or name a built-in encoder.",
      );
    }
    const common = {
      normalization,
      name: `${files.name.replace(/\/$/, '')}/${name}`,
      ...(typeof settings.inputSize === 'number' ? { inputSize: settings.inputSize } : {}),
      ...(settings.tokenPooling === 'cls' || settings.tokenPooling === 'mean' ? { tokenPooling: settings.tokenPooling as 'cls' | 'mean' } : {}),
    };
    if (artifacts.format === 'graph-model') {
      if (!options.loadGraphModel) {
        throw new DataError(
          `The encoder in '${files.name}${name}' is a GraphModel: pass options.loadGraphModel (loadGraphModel of @tensorflow/tfjs-converter@4.22.0).`,
        );
      }
      const graph = await options.loadGraphModel(tf.io.fromMemory(artifacts));
      encoder = graphModelEncoder(graph, { ...common, outputName: settings.outputName as string | undefined });
    } else {
      encoder = layersModelEncoder(await tfl.loadLayersModel(tf.io.fromMemory(artifacts)), common);
    }
  }
  if (options.dim !== undefined && encoder.dim !== options.dim) {
    const d = encoder.dim;
    encoder.dispose();
    throw new ShapeError(
      `The encoder '${name}' of '${files.name}' gives features of width d = ${d}, but the model was trained on d = ${options.dim}. ` +
        'The model and its encoder must come from the same training run: use the encoder its features were extracted with.',
    );
  }
  return encoder;
}

/**
 * The {@link analyzeSlide} settings that read slides as a model's training features were read:
 * the levels, tissue and grid settings of its extraction settings
 * ({@link readModelExtractSettings}). Fields the settings lack keep their defaults.
 * @param settings the parsed `extract.json`, or null.
 * @returns a partial config for `analyzeSlide` (`lowRes`, `highRes`, `tissue`, `grid`).
 * @example
 * ```ts
 * const config = { ...analyzeConfigFromSettings(settings), budget: 0.2 };
 * await analyzeSlide(model, slide, { encoder, config });
 * ```
 * @category Pipeline
 */
export function analyzeConfigFromSettings(settings: Record<string, unknown> | null): Partial<AnalyzeSlideConfig> {
  const out: Partial<AnalyzeSlideConfig> = {};
  if (!settings) return out;
  const obj = (v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const lowRes = obj(settings.lowRes);
  const highRes = obj(settings.highRes);
  const tissue = obj(settings.tissue);
  const grid = obj(settings.grid);
  if (lowRes) out.lowRes = lowRes as LevelSpec;
  if (highRes) out.highRes = highRes as LevelSpec;
  if (tissue) out.tissue = tissue as Partial<TissueConfig>;
  if (grid) out.grid = grid as Partial<PatchGridConfig>;
  return out;
}
