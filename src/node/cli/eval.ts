/**
 * `sasha eval`: evaluates a trained model directory on a subset of the split and prints the
 * metrics (`--json`: `accuracy`, `balancedAccuracy`, `auc`, `f1`, `ece`, `n`, `budget`,
 * `seconds`, ...).
 *
 * With `--budget 1` the model reads every high-resolution patch (HAFED, the upper bound of
 * SASHA). Below 1, a zoom policy (`--policy`) chooses the patches and f_S (`--update tsu`) or
 * the global update rewrites the state (`eval_sasha.ts`).
 *
 * @packageDocumentation
 */
import path from 'node:path';
import { DataError, ShapeError, ValueError } from '../../core/errors.js';
import { subsetDataset, type SplitSubset } from '../../core/data.js';
import { Hafed, evaluateHafed } from '../../hafed/index.js';
import { H5FeatureDataset, readSplitFile } from '../h5/index.js';
import { writeFileAtomic } from '../io/file_io.js';
import { loadModelComponent, readModelManifest } from '../model_dir.js';
import { dataPaths, numberFlag, requireString, type CommandSpec } from './args.js';
import { progressBars } from './progress_bar.js';
import { evalAtBudget } from './eval_sasha.js';
import { evalSweep, renderSweep } from './eval_sweep.js';
import { metricFields } from './model_eval.js';

/** `sasha eval`. */
export const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'evaluate a trained model directory on a subset of the split (accuracy, AUC, F1, ECE), at one budget or several',
  flags: {
    model: { type: 'string', help: "model directory written by 'sasha train hafed'" },
    'lr-h5': { type: 'string', help: 'low-res features Z (default: the file the model was trained on)' },
    'hr-h5': { type: 'string', help: 'high-res features U (default: the file the model was trained on)' },
    split: { type: 'string', help: 'split file (default: the one the model was trained with)' },
    subset: { type: 'string', help: "which subset to evaluate: 'train', 'val' or 'test'", default: 'test' },
    budget: { type: 'string', help: 'fraction of high-res patches read; 1 = all (HAFED)', default: '1' },
    budgets: { type: 'string', help: 'several budgets in one run, e.g. 0.05,0.1,0.2,0.3,0.5,1 (the nearest trained policy when one is missing)' },
    plots: { type: 'string', help: 'with --budgets: write accuracy and ECE against the budget and a reliability diagram per budget (SVG, PNG) to this folder' },
    policy: { type: 'string', help: "zoom policy for budgets < 1: 'learned', 'random', 'top-attention', 'greedy-attention'", default: 'learned' },
    seed: { type: 'string', help: 'seed of the random policy', default: '0' },
    update: { type: 'string', help: "state update for budgets < 1: 'tsu' or 'global'", default: 'tsu' },
    predictions: { type: 'string', help: 'also write per-slide predictions to this CSV file' },
  },
  async run(args, io) {
    const cmd = 'eval';
    const dir = path.resolve(requireString(args, 'model', cmd));
    const manifest = readModelManifest(dir);
    const budget = numberFlag(args, 'budget', 1, { min: 0, minExclusive: true, max: 1 });
    const subset = (args.values.subset ?? 'test') as SplitSubset;
    if (!['train', 'val', 'test'].includes(subset)) throw new ValueError(`Expected --subset to be 'train', 'val' or 'test', but got '${String(subset)}'.`);
    if (args.values.budgets !== undefined) {
      if (args.values.budget !== undefined) throw new ValueError('Pass either --budget (one budget) or --budgets (a sweep), not both.');
      return evalSweep(dir, args, io, subset);
    }
    if (args.values.plots !== undefined) throw new ValueError('--plots needs --budgets (e.g. --budgets 0.1,0.2,1).');
    if (budget < 1) return evalAtBudget(dir, args, io, budget, subset);
    if (!manifest.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one with 'sasha train hafed --out ${dir}'.`);
    const { lrH5, hrH5, splitPath } = dataPaths(args, manifest.data);
    const input = manifest.hafed.input;
    if (input === 'highRes' && !hrH5) throw new ValueError("This HAFED reads high-res features: pass --hr-h5.");

    const t0 = Date.now();
    const model = await loadModelComponent(dir, manifest.hafed.path, 'HAFED', (io) => Hafed.load(io));
    // A high-res file (given or recorded) is opened with --input lowRes too, so that it is checked against the low-res file.
    const dataset = await H5FeatureDataset.open({ lrH5, ...(hrH5 ? { hrH5 } : {}) });
    const bars = progressBars(io.interactive);
    try {
      if (dataset.dim !== model.dim || (input === 'highRes' && dataset.k !== model.k)) {
        throw new ShapeError(
          `The model was trained on features with d = ${model.dim}${input === 'highRes' ? `, k = ${model.k}` : ''}, ` +
            `but '${input === 'highRes' ? hrH5 : lrH5}' has d = ${dataset.dim}${input === 'highRes' ? `, k = ${dataset.k}` : ''}. ` +
            'Evaluate on features extracted with the same encoder and levels.',
        );
      }
      const split = readSplitFile(splitPath, dataset);
      const ids = split[subset];
      if (ids.length === 0) throw new DataError(`The split '${splitPath}' has no ${subset} slides.`);
      io.log(`Evaluating HAFED (input ${input}) on ${ids.length} ${subset} slides.`);
      const { metrics, predictions } = await evaluateHafed(model, subsetDataset(dataset, ids), { onProgress: bars.onProgress });
      if (typeof args.values.predictions === 'string' && args.values.predictions !== '') {
        const c = model.numClasses;
        const header = ['slide_id', 'label', 'pred', ...Array.from({ length: c }, (_, j) => `prob_${j}`)].join(',');
        const lines = predictions.map((p) => [p.id, p.label, p.pred, ...p.probs.map((x) => x.toPrecision(6))].join(','));
        await writeFileAtomic(path.resolve(args.values.predictions), [header, ...lines].join('\n') + '\n');
      }
      return {
        ...metricFields(metrics),
        budget,
        seconds: (Date.now() - t0) / 1000,
        subset,
        model: dir,
        confusion: metrics.confusion,
      };
    } finally {
      bars.stop();
      dataset.close();
      model.dispose();
    }
  },
  render(result) {
    return Array.isArray(result.budgets) ? renderSweep(result) : undefined;
  },
};
