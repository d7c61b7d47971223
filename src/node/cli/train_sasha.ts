/**
 * `sasha train policy` and `sasha train all`: the policy stage of SASHA, and the three stages
 * (HAFED, f_S, policy) in a row, on a model directory (see `model_dir.ts`):
 * ```
 * DIR/policy-<f>/                    the zoom policy trained for budget f (ActorCritic.save)
 * DIR/policy-<f>-global/             the policy trained for f under the global update (ablation)
 * DIR/checkpoints/policy-<slot>/     last/ (resumable PPO state), best/
 * ```
 * and the manifest entry `policies[<slot>]` (`'0.2'`, `'0.2-global'`).
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import type { SlideSplit } from '../../core/data.js';
import { Hafed } from '../../hafed/index.js';
import { DEFAULT_WSI_ENV_CONFIG, resolveWsiEnvConfig, type WsiEnvConfig } from '../../mdp/index.js';
import { DEFAULT_PPO_CONFIG, resolvePpoConfig } from '../../ppo/index.js';
import { POLICY_RECIPES, trainPolicy, withAggregated, type AggregatedDataset } from '../../pipeline/index.js';
import { StateMlp } from '../../tsu/index.js';
import { H5FeatureDataset, readSplitFile } from '../h5/index.js';
import { fileCheckpointStore, fileIO } from '../io/file_io.js';
import { loadModelComponent, modelComponentPath, readModelManifest, updateModelManifest, type ModelManifest } from '../model_dir.js';
import { dataPaths, folderLockOf, numberFlag, recordedFlags, requireString, type CommandIO, type CommandSpec, type ParsedArgs } from './args.js';
import { trainHafedCommand } from './train_hafed.js';
import { trainTsuCommand, type TsuManifestEntry } from './train_tsu.js';
import { PRESET_FLAG, presetDefaultHelp, presetFromFlag } from './presets.js';
import { progressBars } from './progress_bar.js';

/** The tau f_S was trained with (the policy and evaluation use the same). */
export function tsuTau(entry: TsuManifestEntry): number {
  const tau = Number(entry.train?.tau);
  return Number.isFinite(tau) ? tau : DEFAULT_WSI_ENV_CONFIG.tau;
}

/** The manifest entry of a policy trained for one budget. */
export interface PolicyManifestEntry {
  path: string;
  budget: number;
  /** The state update the policy was trained with (absent in directories written before it was recorded: `'tsu'`). */
  update?: WsiEnvConfig['update'];
  env: WsiEnvConfig;
  ppo: Record<string, unknown>;
  /** PPO epochs. */
  epochs: number;
  /** Imitation epochs before PPO (absent in directories written before it was recorded: 0). */
  imitationEpochs?: number;
  seed: number;
  bestEpoch: number;
  bestScore: number;
  /** The training flags it was trained with (see `recordedFlags`); absent in older directories. */
  flags?: Record<string, string>;
}

/** The key of a budget in `manifest.policies` and in directory names (`0.2`, `0.1`). */
export function budgetKey(budget: number): string {
  return String(Number(budget.toPrecision(6)));
}

/**
 * The slot of a policy in a model directory: its budget key for the targeted update (`'0.2'`),
 * with the update appended otherwise (`'0.2-global'`), so that an ablation never overwrites the
 * policy SASHA uses. The policy lives in `DIR/policy-<slot>/`.
 */
export function policySlot(budget: number, update: WsiEnvConfig['update'] = 'tsu'): string {
  return update === 'tsu' ? budgetKey(budget) : `${budgetKey(budget)}-${update}`;
}

/** Everything a stage needs from a model directory: the manifest, HAFED, the data with V. */
export interface ModelData {
  dir: string;
  manifest: ModelManifest;
  hafed: Hafed;
  dataset: H5FeatureDataset;
  withV: AggregatedDataset;
  split: SlideSplit;
  close(): void;
}

/**
 * Opens a model directory with its HAFED and its data (the files recorded in the manifest, or
 * `--lr-h5` / `--hr-h5` / `--split` when given). V comes from `DIR/v.h5` when `sasha train tsu`
 * cached it for the current HAFED, else it is computed from U once per slide and kept in memory.
 */
export async function openModelData(dir: string, args: ParsedArgs): Promise<ModelData> {
  const manifest = readModelManifest(dir);
  if (!manifest.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one with 'sasha train hafed --out ${dir}'.`);
  if (manifest.hafed.input !== 'highRes') {
    throw new ValueError(`The HAFED in '${dir}' reads low-res features only (--input lowRes); SASHA needs a HAFED trained on U.`);
  }
  const { lrH5, hrH5, splitPath } = dataPaths(args, manifest.data);
  if (!hrH5) throw new ValueError('SASHA needs the high-res features U: pass --hr-h5.');
  const hafed = await loadModelComponent(dir, manifest.hafed.path, 'HAFED', (io) => Hafed.load(io));
  // V cached by 'sasha train tsu' (DIR/v.h5), when computed with the current HAFED
  const cached = manifest.aggregated as { path: string; hafedBest: unknown } | undefined;
  const vH5 = cached && JSON.stringify(cached.hafedBest) === JSON.stringify(manifest.hafed.best) ? modelComponentPath(dir, cached.path, 'V file') : undefined;
  let dataset: H5FeatureDataset | null = null;
  try {
    dataset = await H5FeatureDataset.open({ lrH5, hrH5, ...(vH5 && existsSync(vH5) ? { vH5 } : {}) });
    if (dataset.dim !== hafed.dim || dataset.k !== hafed.k) {
      throw new DataError(
        `The model was trained on features with d = ${hafed.dim}, k = ${hafed.k}, but '${hrH5}' has d = ${dataset.dim}, k = ${dataset.k}. ` +
          'Use features extracted with the same encoder and levels.',
      );
    }
    const split = readSplitFile(splitPath, dataset);
    const ds = dataset;
    return {
      dir,
      manifest,
      hafed,
      dataset: ds,
      withV: withAggregated(ds, hafed),
      split,
      close: () => {
        ds.close();
        hafed.dispose();
      },
    };
  } catch (e) {
    dataset?.close();
    hafed.dispose();
    throw e;
  }
}

/** Reads `--update` (`tsu` or `global`). */
function updateFlag(args: ParsedArgs): WsiEnvConfig['update'] {
  const u = (args.values.update ?? 'tsu') as string;
  if (u !== 'tsu' && u !== 'global') throw new ValueError(`Expected --update to be 'tsu' or 'global', but got '${u}'.`);
  return u;
}

/** `sasha train policy`. */
export const trainPolicyCommand: CommandSpec = {
  name: 'train policy',
  summary: 'train the zoom policy (PPO) for a budget f with HAFED and f_S frozen',
  flags: {
    model: { type: 'string', help: "model directory with HAFED and f_S ('sasha train hafed', 'sasha train tsu')" },
    budget: { type: 'string', help: 'fraction f of the patches zoomed into (T = ceil(f N) steps)', default: String(DEFAULT_WSI_ENV_CONFIG.budget) },
    epochs: { type: 'string', help: presetDefaultHelp('PPO passes over the training slides', (p) => p.policyEpochs) },
    'imitation-epochs': {
      type: 'string',
      help: "passes of imitation of the lookahead teacher before PPO (default: the preset's recipe, 0 for default and reference)",
    },
    seed: { type: 'string', help: 'seed of slide order, sampling and initialisation', default: '5' },
    update: { type: 'string', help: "state update: 'tsu' (targeted) or 'global' (ablation, saved apart as policy-<f>-global)", default: 'tsu' },
    preset: PRESET_FLAG,
    lr: { type: 'string', help: "AdamW learning rate of actor and critic (default: the preset's recipe, 1e-3 for default, 1e-5 for reference)" },
    resume: { type: 'boolean', help: 'continue from DIR/checkpoints/policy-<slot>/last when it exists' },
  },
  lock: (args) => folderLockOf(args, 'model', 'train policy'),
  async run(args, io) {
    const dir = path.resolve(requireString(args, 'model', 'train policy'));
    const budget = numberFlag(args, 'budget', DEFAULT_WSI_ENV_CONFIG.budget, { min: 0, minExclusive: true, max: 1 });
    const { name: presetName, preset } = presetFromFlag(args, readModelManifest(dir).preset);
    const epochs = numberFlag(args, 'epochs', preset.policyEpochs, { min: 0, integer: true });
    const seed = numberFlag(args, 'seed', 5, { integer: true });
    const recipe = POLICY_RECIPES[preset.policyRecipe];
    const imitationEpochs = numberFlag(args, 'imitation-epochs', recipe.imitation.epochs, { min: 0, integer: true });
    if (epochs + imitationEpochs === 0) {
      throw new ValueError('--epochs and --imitation-epochs are both 0: give at least one epoch of PPO or of imitation.');
    }
    const recipeLr = recipe.ppo.actorLearningRate ?? DEFAULT_PPO_CONFIG.actorLearningRate;
    const lr = numberFlag(args, 'lr', recipeLr, { min: 0, minExclusive: true });
    const update = updateFlag(args);
    const t0 = Date.now();
    const data = await openModelData(dir, args);
    const tsuEntry = data.manifest.tsu as TsuManifestEntry | undefined;
    if (!tsuEntry) {
      data.close();
      throw new DataError(`The model directory '${dir}' holds no f_S; run 'sasha train tsu --model ${dir}' first.`);
    }
    const fS = await loadModelComponent(dir, tsuEntry.path, 'f_S', (io) => StateMlp.load(io));
    const bars = progressBars(io.interactive);
    const key = policySlot(budget, update);
    try {
      const env = resolveWsiEnvConfig({ budget, tau: tsuTau(tsuEntry), update });
      const ppo = resolvePpoConfig({ ...recipe.ppo, ...preset.ppo, actorLearningRate: lr, criticLearningRate: lr, seed });
      io.log(
        `Training the policy for f = ${budget} (${update} update, tau = ${env.tau}, preset ${presetName}) on ${data.split.train.length} slides, ` +
          `validating on ${data.split.val.length}, ${epochs} epochs; it goes to policy-${key}/.`,
      );
      const result = await trainPolicy({
        classifier: data.hafed,
        fS,
        dataset: data.withV,
        split: data.split,
        env,
        recipe: preset.policyRecipe,
        imitation: { teacher: recipe.imitation.teacher, epochs: imitationEpochs },
        ppo,
        epochs,
        seed,
        checkpoint: fileCheckpointStore(path.join(dir, 'checkpoints', `policy-${key}`)),
        resume: Boolean(args.values.resume),
        onProgress: bars.onProgress,
      });
      try {
        await result.model.save(fileIO(path.join(dir, `policy-${key}`)));
        const entry: PolicyManifestEntry = {
          path: `policy-${key}`,
          budget,
          update,
          env: { ...env },
          ppo: { ...ppo },
          epochs,
          imitationEpochs,
          seed,
          bestEpoch: result.bestEpoch,
          bestScore: result.bestScore,
          flags: recordedFlags(args),
        };
        // read again: policies of other budgets may have been saved while this one trained
        const prev = (readModelManifest(dir).policies ?? {}) as Record<string, PolicyManifestEntry>;
        await updateModelManifest(dir, { policies: { ...prev, [key]: entry } });
        const best = result.history[result.bestEpoch];
        return {
          model: dir,
          budget,
          update,
          slot: key,
          preset: presetName,
          // PPO epochs and imitation epochs run (a resumed run counts the restored ones)
          epochs: result.history.filter((h) => h.phase !== 'imitation').length,
          imitationEpochs: result.history.filter((h) => h.phase === 'imitation').length,
          bestEpoch: result.bestEpoch + 1,
          valAccuracy: best?.val?.accuracy ?? null,
          valAuc: best?.val?.auc ?? null,
          valF1: best?.val?.f1 ?? null,
          valCrossEntropy: best?.val?.meanCrossEntropy ?? null,
          score: result.bestScore,
          seconds: (Date.now() - t0) / 1000,
        };
      } finally {
        result.model.dispose();
      }
    } finally {
      bars.stop();
      fS.dispose();
      data.close();
    }
  },
};

/** Runs another command's `run` with the given flag values. */
function runWith(spec: CommandSpec, values: Record<string, string | boolean | undefined>, io: CommandIO): Promise<Record<string, unknown>> {
  return spec.run({ values, positionals: [], json: false }, io);
}

/** `sasha train all`. */
export const trainAllCommand: CommandSpec = {
  name: 'train all',
  summary: 'train HAFED, then f_S, then the zoom policy (each stage skipped with --resume once done)',
  flags: {
    'lr-h5': { type: 'string', help: 'low-res features Z (reference h5 layout, with labels)' },
    'hr-h5': { type: 'string', help: 'high-res features U (reference h5 layout)' },
    split: { type: 'string', help: 'split JSON (train_names/val_names/test_names) or CLAM split CSV' },
    out: { type: 'string', help: 'model directory to write (created if missing)' },
    budget: { type: 'string', help: 'fraction f of the patches zoomed into', default: String(DEFAULT_WSI_ENV_CONFIG.budget) },
    seed: { type: 'string', help: 'seed of every stage', default: '5' },
    'hafed-epochs': { type: 'string', help: presetDefaultHelp('HAFED epochs', (p) => p.hafedTrain.epochs) },
    'num-classes': { type: 'string', help: 'number of classes C; every label must be a class index 0..C-1', default: '2' },
    'tsu-epochs': { type: 'string', help: presetDefaultHelp('f_S epochs', (p) => p.tsu.epochs) },
    'policy-epochs': { type: 'string', help: presetDefaultHelp('PPO passes over the training slides', (p) => p.policyEpochs) },
    tau: { type: 'string', help: presetDefaultHelp('cosine threshold of the targeted update', (p) => p.tsu.tau) },
    preset: PRESET_FLAG,
    resume: { type: 'boolean', help: 'skip finished stages and continue an interrupted one from its checkpoint' },
  },
  lock: (args) => folderLockOf(args, 'out', 'train all'),
  async run(args, io) {
    const out = path.resolve(requireString(args, 'out', 'train all'));
    const budget = numberFlag(args, 'budget', DEFAULT_WSI_ENV_CONFIG.budget, { min: 0, minExclusive: true, max: 1 });
    const resume = Boolean(args.values.resume);
    const str = (name: string) => (typeof args.values[name] === 'string' ? (args.values[name] as string) : undefined);
    const t0 = Date.now();
    const done = (): ModelManifest | null => {
      try {
        return readModelManifest(out);
      } catch {
        return null;
      }
    };
    const results: Record<string, unknown> = { model: out, budget };
    let m = resume ? done() : null;
    if (m?.hafed) {
      io.log('HAFED: already trained, skipping (--resume).');
    } else {
      results.hafed = await runWith(
        trainHafedCommand,
        {
          'lr-h5': str('lr-h5'),
          'hr-h5': str('hr-h5'),
          split: str('split'),
          out,
          epochs: str('hafed-epochs'),
          seed: str('seed'),
          preset: str('preset'),
          'num-classes': str('num-classes'),
          resume,
        },
        io,
      );
    }
    m = resume ? done() : null;
    if (m?.tsu) {
      io.log('TSU: already trained, skipping (--resume).');
    } else {
      results.tsu = await runWith(trainTsuCommand, { model: out, epochs: str('tsu-epochs'), seed: str('seed'), tau: str('tau'), preset: str('preset'), resume }, io);
    }
    m = resume ? done() : null;
    if ((m?.policies as Record<string, unknown> | undefined)?.[policySlot(budget)]) {
      io.log(`Policy for f = ${budget}: already trained, skipping (--resume).`);
    } else {
      results.policy = await runWith(
        trainPolicyCommand,
        { model: out, budget: String(budget), epochs: str('policy-epochs'), seed: str('seed'), preset: str('preset'), resume },
        io,
      );
    }
    results.seconds = (Date.now() - t0) / 1000;
    return results;
  },
};
