/**
 * Loading a trained SASHA model from disk for inference: the model directory the CLI trains
 * into (`sasha.json` with HAFED, f_S and one policy per budget), or a bundle written by
 * `SashaModel.save(fileCheckpointStore(dir))`. Also reads the extraction settings the training
 * features were made with, so that inference reads slides the same way.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DataError, SashaError, ValueError } from '../core/errors.js';
import { Hafed } from '../hafed/index.js';
import { DEFAULT_WSI_ENV_CONFIG, resolveWsiEnvConfig } from '../mdp/index.js';
import { ActorCritic } from '../ppo/index.js';
import { SashaModel } from '../pipeline/index.js';
import { StateMlp } from '../tsu/index.js';
import type { PolicyManifestEntry } from './cli/train_sasha.js';
import type { TsuManifestEntry } from './cli/train_tsu.js';
import { fileCheckpointStore, MODEL_JSON } from './io/file_io.js';
import { MODEL_MANIFEST, loadModelComponent, readModelManifest, type ModelManifest } from './model_dir.js';

/**
 * Options of {@link loadSashaModel}.
 * @example
 * ```ts
 * await loadSashaModel('models/c16', { budget: 0.1 });           // the policy trained for f = 0.1
 * await loadSashaModel('models/c16', { withoutPolicy: true });   // HAFED and f_S only (baselines, full resolution)
 * ```
 * @category Node
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
 * The budgets a model directory holds policies for (`sasha train policy --budget f`), ascending.
 * @example
 * ```ts
 * trainedBudgets(readModelManifest('models/c16')); // [0.1, 0.2]
 * ```
 * @category Node
 */
export function trainedBudgets(manifest: ModelManifest): number[] {
  const policies = (manifest.policies ?? {}) as Record<string, PolicyManifestEntry>;
  return Object.values(policies)
    .map((p) => p.budget)
    .sort((a, b) => a - b);
}

/**
 * Loads a trained SASHA model for `analyzeSlide` (from `sasha-wsi`).
 *
 * Two layouts are read: the CLI's model directory (`DIR/sasha.json`, `DIR/hafed/`,
 * `DIR/tsu/`, `DIR/policy-<f>/`), from which HAFED, f_S and the policy of the budget are taken
 * with the environment settings that policy was trained with; or a bundle saved with
 * `SashaModel.save(fileCheckpointStore(DIR))` (`DIR/sasha/`, `DIR/hafed/`, ...).
 *
 * @param dir the model directory.
 * @returns the model, owned by the caller (`dispose()` it).
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
  const { budget, withoutPolicy = false } = options;
  if (budget !== undefined && !(budget > 0 && budget <= 1)) throw new ValueError(`Expected the budget f to be in (0, 1], but got ${budget}.`);
  if (!existsSync(path.join(dir, MODEL_MANIFEST))) {
    if (existsSync(path.join(dir, 'sasha', MODEL_JSON))) return loadBundle(dir, budget, withoutPolicy);
    throw new DataError(
      `'${dir}' holds no SASHA model (no ${MODEL_MANIFEST}). Train one with 'sasha train all --out ${dir}' or save a SashaModel with fileCheckpointStore('${dir}').`,
    );
  }
  const manifest = readModelManifest(dir);
  if (!manifest.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one with 'sasha train hafed --out ${dir}'.`);
  if (manifest.hafed.input !== 'highRes') {
    throw new ValueError(`The HAFED in '${dir}' reads low-res features only (--input lowRes); SASHA inference needs a HAFED trained on U.`);
  }
  const tsuEntry = manifest.tsu as TsuManifestEntry | undefined;
  const policies = (manifest.policies ?? {}) as Record<string, PolicyManifestEntry>;
  const have = trainedBudgets(manifest);
  const entryFor = (f: number) => Object.values(policies).find((p) => Math.abs(p.budget - f) < 1e-9);
  let entry: PolicyManifestEntry | undefined;
  if (budget !== undefined) entry = entryFor(budget);
  else if (have.length === 1) entry = entryFor(have[0]);
  else if (have.length > 1 && !withoutPolicy) {
    throw new ValueError(`The model directory '${dir}' holds policies for budgets ${have.join(', ')}; choose one (--budget).`);
  }
  if (!entry && !withoutPolicy) {
    const f = budget ?? DEFAULT_WSI_ENV_CONFIG.budget;
    throw new DataError(
      `No policy trained for budget ${f} in '${dir}'${have.length ? ` (trained for: ${have.join(', ')})` : ''}. ` +
        `Run 'sasha train policy --model ${dir} --budget ${f}', or use a baseline policy (--policy top-attention|random).`,
    );
  }
  if (!tsuEntry && !withoutPolicy) throw new DataError(`The model directory '${dir}' holds no f_S; run 'sasha train tsu --model ${dir}' first.`);
  const hafed = await loadModelComponent(dir, manifest.hafed.path, 'HAFED', (io) => Hafed.load(io));
  let fS: StateMlp | null = null;
  let policy: ActorCritic | null = null;
  try {
    if (tsuEntry) fS = await loadModelComponent(dir, tsuEntry.path, 'f_S', (io) => StateMlp.load(io));
    if (entry) policy = await loadModelComponent(dir, entry.path, 'policy', (io) => ActorCritic.load(io, { dim: hafed.dim }));
    const f = entry?.budget ?? budget ?? DEFAULT_WSI_ENV_CONFIG.budget;
    const env = resolveWsiEnvConfig({
      ...(entry?.env ?? {}),
      budget: f,
      // the tau f_S was trained with, as 'sasha train policy' uses
      tau: entry?.env.tau ?? (Number.isFinite(Number(tsuEntry?.train?.tau)) ? Number(tsuEntry!.train.tau) : DEFAULT_WSI_ENV_CONFIG.tau),
      ...(fS ? {} : { update: 'none' as const }),
    });
    return new SashaModel({ hafed, fS, policy, env, extra: { dir, manifest } });
  } catch (e) {
    hafed.dispose();
    fS?.dispose();
    policy?.dispose();
    throw e;
  }
}

async function loadBundle(dir: string, budget: number | undefined, withoutPolicy: boolean): Promise<SashaModel> {
  let model: SashaModel;
  try {
    model = await SashaModel.load(fileCheckpointStore(dir));
  } catch (e) {
    if (e instanceof DataError) throw e;
    const why = e instanceof SashaError ? e.message : `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
    throw new DataError(`The SASHA model saved in '${dir}' cannot be loaded: ${why} The folder is damaged or of another version; save it again.`);
  }
  if (budget !== undefined && Math.abs(budget - model.env.budget) > 1e-9) {
    if (model.policy && !withoutPolicy) {
      const own = model.env.budget;
      model.dispose();
      throw new DataError(
        `The model in '${dir}' holds a policy for budget ${own}, not ${budget}. Use --budget ${own}, or a baseline policy (--policy top-attention|random).`,
      );
    }
    model.env = resolveWsiEnvConfig({ ...model.env, budget });
  }
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
  const file = path.join(path.dirname(lr), 'extract.json');
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
