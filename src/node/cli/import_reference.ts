/**
 * `sasha import-reference --hafed A.pt [--tsu B.pt] [--policy C.pt] --out DIR`: models trained
 * with the official SASHA code (its PyTorch checkpoints) as a model directory that
 * `sasha eval`, `sasha infer` and `loadSashaModel` use.
 *
 * @packageDocumentation
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import { DEFAULT_WSI_ENV_CONFIG, resolveWsiEnvConfig } from '../../mdp/index.js';
import { actorCriticFromReference, hafedFromReference, stateMlpFromReference } from '../../pipeline/index.js';
import { fileIO } from '../io/file_io.js';
import { MODEL_MANIFEST, updateModelManifest, type ModelManifest } from '../model_dir.js';
import { numberFlag, requireString, type CommandSpec } from './args.js';
import { budgetKey, type PolicyManifestEntry } from './train_sasha.js';
import type { TsuManifestEntry } from './train_tsu.js';

async function readCheckpointFile(file: string, flag: string): Promise<{ bytes: Uint8Array; name: string }> {
  if (!existsSync(file)) throw new DataError(`No checkpoint at '${file}' (--${flag}).`);
  return { bytes: new Uint8Array(await readFile(file)), name: file };
}

function configNumber(config: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = config?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The `sasha import-reference` command. */
export const importReferenceCommand: CommandSpec = {
  name: 'import-reference',
  summary: 'import checkpoints of the official SASHA code (HAFED, TSU f_S, actor / critic .pt files) into a model directory',
  flags: {
    hafed: { type: 'string', help: 'HAFED checkpoint (step3_WSI_classification_HAFED.py, checkpoint-best.pt)' },
    tsu: { type: 'string', help: 'TSU f_S checkpoint (step5_tsu_training.py, FGlobal)' },
    policy: { type: 'string', help: 'actor / critic checkpoint (step6_rl_training.py)' },
    out: { type: 'string', help: 'model directory to write (must not hold a model yet)' },
    k: { type: 'string', help: 'sub-patches per patch of the features (16: LR level 3 over HR level 1)', default: '16' },
    budget: { type: 'string', help: "budget f the policy was trained for", default: "the policy checkpoint's frac_visit" },
    tau: { type: 'string', help: 'cosine threshold of the TSU similar set', default: "the checkpoints' cosine_threshold, else 0.95" },
    'lr-h5': { type: 'string', help: 'low-res feature file to record for sasha eval' },
    'hr-h5': { type: 'string', help: 'high-res feature file to record' },
    split: { type: 'string', help: 'split file to record' },
  },
  async run(args, io) {
    const cmd = 'import-reference';
    const out = path.resolve(requireString(args, 'out', cmd));
    const hafedFile = requireString(args, 'hafed', cmd);
    if (existsSync(path.join(out, MODEL_MANIFEST))) {
      throw new DataError(`'${out}' already holds a model (${MODEL_MANIFEST}); import into a new directory.`);
    }
    const k = numberFlag(args, 'k', 16, { integer: true, min: 1 });
    const hafed = hafedFromReference(await readCheckpointFile(hafedFile, 'hafed'), { k });
    const tsu = typeof args.values.tsu === 'string' ? stateMlpFromReference(await readCheckpointFile(args.values.tsu, 'tsu')) : null;
    const policy = typeof args.values.policy === 'string' ? actorCriticFromReference(await readCheckpointFile(args.values.policy, 'policy')) : null;
    try {
      const d = hafed.model.dim;
      if (tsu && tsu.model.dim !== d) throw new DataError(`The f_S in '${String(args.values.tsu)}' has width d = ${tsu.model.dim}, but the HAFED in '${hafedFile}' has d = ${d}.`);
      if (policy && policy.model.config.dim !== d) {
        throw new DataError(`The policy in '${String(args.values.policy)}' has width d = ${policy.model.config.dim}, but the HAFED in '${hafedFile}' has d = ${d}.`);
      }
      if (policy && !tsu) throw new ValueError('A policy needs its f_S: pass --tsu with --policy.');
      const tau =
        args.values.tau !== undefined
          ? numberFlag(args, 'tau', 0, { min: 0, minExclusive: true, max: 1 })
          : (configNumber(policy?.config, 'cosine_threshold') ?? configNumber(tsu?.config, 'cosine_threshold') ?? DEFAULT_WSI_ENV_CONFIG.tau);
      const recordedBudget = configNumber(policy?.config, 'frac_visit');
      const budget = args.values.budget !== undefined ? numberFlag(args, 'budget', 0, { min: 0, minExclusive: true, max: 1 }) : recordedBudget;
      if (policy && budget === undefined) throw new ValueError(`The policy checkpoint records no frac_visit; pass the budget it was trained for (--budget, e.g. 0.2).`);

      const lr = typeof args.values['lr-h5'] === 'string' ? path.resolve(args.values['lr-h5']) : undefined;
      const split = typeof args.values.split === 'string' ? path.resolve(args.values.split) : undefined;
      const hr = typeof args.values['hr-h5'] === 'string' ? path.resolve(args.values['hr-h5']) : undefined;
      if ((lr === undefined) !== (split === undefined)) throw new ValueError('Pass --lr-h5 and --split together (with --hr-h5) to record the feature files, or none of them.');

      mkdirSync(out, { recursive: true });
      await hafed.model.save(fileIO(path.join(out, 'hafed')));
      const source = (file: string, info: { epoch?: number; config?: Record<string, unknown> }) => ({ file: path.resolve(file), epoch: info.epoch ?? null, config: info.config ?? null });
      const update: Partial<ModelManifest> = {
        dim: d,
        k,
        numClasses: hafed.model.numClasses,
        ...(lr && split ? { data: { lrH5: lr, ...(hr ? { hrH5: hr } : {}), split } } : {}),
        hafed: {
          path: 'hafed',
          input: 'highRes',
          config: { ...hafed.model.config },
          train: { importedFrom: source(hafedFile, hafed) },
          seed: hafed.model.config.seed,
          best: { epoch: hafed.epoch ?? null, importedFrom: path.resolve(hafedFile) },
        },
      };
      if (tsu) {
        await tsu.model.save(fileIO(path.join(out, 'tsu')));
        update.tsu = {
          path: 'tsu',
          train: { tau, importedFrom: source(String(args.values.tsu), tsu) },
          bestEpoch: tsu.epoch ?? -1,
          bestValMse: NaN,
          identityValMse: NaN,
        } satisfies TsuManifestEntry;
      }
      if (policy && budget !== undefined) {
        const key = budgetKey(budget);
        await policy.model.save(fileIO(path.join(out, `policy-${key}`)));
        const entry: PolicyManifestEntry = {
          path: `policy-${key}`,
          budget,
          env: { ...resolveWsiEnvConfig({ budget, tau }) },
          ppo: { importedFrom: source(String(args.values.policy), policy) },
          epochs: policy.epoch ?? 0,
          seed: policy.model.config.seed,
          bestEpoch: policy.epoch ?? -1,
          bestScore: NaN,
        };
        update.policies = { [key]: entry };
      }
      await updateModelManifest(out, update);
      io.log(`Imported HAFED${tsu ? ', f_S' : ''}${policy ? ` and the policy for f = ${budget}` : ''} into '${out}'.`);
      return {
        out,
        dim: d,
        k,
        numClasses: hafed.model.numClasses,
        branches: hafed.model.numBranches,
        tsu: Boolean(tsu),
        budget: policy ? budget! : null,
        tau,
        ignoredKeys: [...hafed.ignored, ...(policy?.ignored ?? [])],
      };
    } finally {
      hafed.model.dispose();
      tsu?.model.dispose();
      policy?.model.dispose();
    }
  },
};
