/**
 * `sasha ablate --model DIR --budget 0.2`: the paper's ablation table on the user's cohort.
 * It trains what the model directory lacks, each variant with the flags the default model was
 * trained with and one setting changed, then evaluates every row on the same slides and
 * compares each with SASHA:
 * ```
 * DIR/policy-<f>/                       default: the SASHA policy (trained if missing)
 * DIR/policy-<f>-global/                global-update: a policy trained under the global update
 * DIR/ablations/single-branch/          single-branch: a model directory with HAFED M2 = 1, its f_S and policy
 * DIR/ablations/z-only/                 z-only: HAFED stage 2 on Z alone
 * ```
 * random and top-attention need no training. Finished parts are skipped; interrupted ones
 * continue from their checkpoints, so the same command resumes a stopped run.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import { subsetDataset, type SplitSubset } from '../../core/data.js';
import { comparePredictions, type PairedComparison } from '../../eval/index.js';
import { Hafed, evaluateHafed } from '../../hafed/index.js';
import { ABLATION_DESCRIPTIONS, ABLATION_ROWS, summarizeEvaluation, type AblationRowName, type SashaEvaluation } from '../../pipeline/index.js';
import { H5FeatureDataset } from '../h5/index.js';
import { loadModelComponent, readModelManifest, type ModelManifest } from '../model_dir.js';
import { dataPaths, numberFlag, requireString, type CommandSpec, type ParsedArgs } from './args.js';
import { evaluateAtBudget, metricFields } from './model_eval.js';
import { progressBars } from './progress_bar.js';
import { trainHafedCommand } from './train_hafed.js';
import { openModelData, policySlot, trainPolicyCommand, type PolicyManifestEntry } from './train_sasha.js';
import { trainTsuCommand, type TsuManifestEntry } from './train_tsu.js';
import { alignTo } from '../../pipeline/ablation.js';

/** Where the ablated model directories go, under the model directory. */
export const ABLATIONS_DIR = 'ablations';

type Flags = Record<string, string | boolean | undefined>;

function manifestOrNull(dir: string): ModelManifest | null {
  return existsSync(path.join(dir, 'sasha.json')) ? readModelManifest(dir) : null;
}

/** The flags HAFED was trained with: recorded ones, else rebuilt from its recorded config. */
function hafedFlags(m: ModelManifest): Flags {
  const h = m.hafed!;
  if (h.flags) return { ...h.flags };
  const train = h.train as { epochs?: number; lr?: number; weightDecay?: number };
  const config = h.config as { numBranches2?: number; maskDrop?: number };
  const f: Flags = { seed: String(h.seed) };
  if (train.epochs !== undefined) f.epochs = String(train.epochs);
  if (train.lr !== undefined) f.lr = String(train.lr);
  if (train.weightDecay !== undefined) f['weight-decay'] = String(train.weightDecay);
  if (config.numBranches2 !== undefined) f.branches = String(config.numBranches2);
  if (config.maskDrop !== undefined) f['mask-drop'] = String(config.maskDrop);
  if (typeof m.preset === 'string') f.preset = m.preset;
  return f;
}

/** The flags f_S was trained with. */
function tsuFlags(m: ModelManifest): Flags {
  const t = m.tsu as TsuManifestEntry | undefined;
  if (!t) return {};
  if (t.flags) return { ...t.flags };
  const c = t.train as { epochs?: number; learningRate?: number; weightDecay?: number; tau?: number; seed?: number };
  const f: Flags = {};
  if (c.epochs !== undefined) f.epochs = String(c.epochs);
  if (c.learningRate !== undefined) f.lr = String(c.learningRate);
  if (c.weightDecay !== undefined) f['weight-decay'] = String(c.weightDecay);
  if (c.tau !== undefined) f.tau = String(c.tau);
  if (c.seed !== undefined) f.seed = String(c.seed);
  return f;
}

/** The flags a policy was trained with (budget and update left to the caller). */
function policyFlags(entry: PolicyManifestEntry | undefined, m: ModelManifest): Flags {
  if (!entry) return typeof m.preset === 'string' ? { preset: m.preset } : {};
  const f: Flags = entry.flags ? { ...entry.flags } : { epochs: String(entry.epochs), seed: String(entry.seed), lr: String(entry.ppo.actorLearningRate ?? 1e-5) };
  delete f.budget;
  delete f.update;
  return f;
}

/** Parses `--rows` (default: every row). */
function rowsFlag(args: ParsedArgs): AblationRowName[] {
  const raw = args.values.rows;
  if (raw === undefined) return [...ABLATION_ROWS];
  const names = String(raw)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = names.filter((n) => !(ABLATION_ROWS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length) throw new ValueError(`Expected --rows to list rows among ${ABLATION_ROWS.join(', ')}, but got '${String(raw)}'.`);
  return ABLATION_ROWS.filter((r) => r === 'default' || names.includes(r));
}

/** One row of the printed table / JSON. */
interface RowResult {
  name: AblationRowName;
  description: string;
  status: 'evaluated' | 'missing';
  /** What produced it: the model directory and policy slot. */
  source?: string;
  /** Parts trained by this run. */
  trainedNow?: string[];
  accuracy?: number;
  balancedAccuracy?: number;
  auc?: number;
  /** One-vs-rest AUC of each class. */
  perClassAuc?: number[];
  f1?: number;
  ece?: number;
  n?: number;
  /** SASHA (A) against this row (B) on the same slides. */
  vsDefault?: {
    accuracyDifference: number;
    defaultOnlyRight: number;
    rowOnlyRight: number;
    mcnemarP: number;
    aucDifference: number;
    aucLow: number;
    aucHigh: number;
    aucP: number;
  };
  /** For a missing row: the command that trains it. */
  command?: string;
}

function comparisonFields(c: PairedComparison): NonNullable<RowResult['vsDefault']> {
  return {
    accuracyDifference: c.accuracyA - c.accuracyB,
    defaultOnlyRight: c.mcnemar.aOnly,
    rowOnlyRight: c.mcnemar.bOnly,
    mcnemarP: c.mcnemar.pValue,
    aucDifference: c.auc.difference,
    aucLow: c.auc.low,
    aucHigh: c.auc.high,
    aucP: c.auc.pValue,
  };
}

/** `sasha ablate`. */
export const ablateCommand: CommandSpec = {
  name: 'ablate',
  summary: "the paper's ablation table (default, single branch, global update retrained, random, top-attention, Z only); trains what is missing",
  flags: {
    model: { type: 'string', help: "model directory with HAFED and f_S ('sasha train all')" },
    'lr-h5': { type: 'string', help: 'low-res features Z (default: the file the model was trained on)' },
    'hr-h5': { type: 'string', help: 'high-res features U (default: the file the model was trained on)' },
    split: { type: 'string', help: 'split file (default: the one the model was trained with)' },
    budget: { type: 'string', help: 'budget f of every zooming row', default: '0.2' },
    subset: { type: 'string', help: "slides to evaluate: 'train', 'val' or 'test'", default: 'test' },
    rows: { type: 'string', help: `rows to produce, comma-separated (default every row: ${ABLATION_ROWS.join(',')})` },
    seed: { type: 'string', help: 'seed of the random policy and of the bootstrap', default: '0' },
    resamples: { type: 'string', help: 'bootstrap resamples of the AUC comparison', default: '10000' },
    'no-train': { type: 'boolean', help: 'train nothing: evaluate the rows that exist, list the others with the command that trains them (exit code 3)' },
  },
  async run(args, io) {
    const cmd = 'ablate';
    const dir = path.resolve(requireString(args, 'model', cmd));
    const budget = numberFlag(args, 'budget', 0.2, { min: 0, minExclusive: true, max: 1 });
    if (budget >= 1) throw new ValueError('Expected --budget < 1: the ablation compares ways of zooming into a fraction of the patches.');
    const subset = (args.values.subset ?? 'test') as SplitSubset;
    if (!['train', 'val', 'test'].includes(subset)) throw new ValueError(`Expected --subset to be 'train', 'val' or 'test', but got '${String(subset)}'.`);
    const seed = numberFlag(args, 'seed', 0, { integer: true });
    const resamples = numberFlag(args, 'resamples', 10000, { min: 1, integer: true });
    const rows = rowsFlag(args);
    const train = !args.values['no-train'];
    const t0 = Date.now();

    const main = readModelManifest(dir);
    if (!main.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one with 'sasha train all --out ${dir}'.`);
    if (main.hafed.input !== 'highRes') throw new DataError(`The HAFED in '${dir}' reads Z only; the ablation needs SASHA's HAFED trained on U ('sasha train hafed' with --hr-h5).`);
    if (!main.tsu) throw new DataError(`The model directory '${dir}' holds no f_S; run 'sasha train tsu --model ${dir}' first.`);
    const paths = dataPaths(args, main.data);
    if (!paths.hrH5) throw new ValueError('The ablation needs the high-res features U: pass --hr-h5.');
    const data = { lrH5: paths.lrH5, hrH5: paths.hrH5, split: paths.splitPath };
    const slot = policySlot(budget);
    const globalSlot = policySlot(budget, 'global');
    const singleDir = path.join(dir, ABLATIONS_DIR, 'single-branch');
    const zDir = path.join(dir, ABLATIONS_DIR, 'z-only');
    const branches = Number((main.hafed.config as { numBranches2?: number }).numBranches2 ?? 5);
    const trainedNow = new Map<AblationRowName, string[]>();
    const note = (row: AblationRowName, part: string) => trainedNow.set(row, [...(trainedNow.get(row) ?? []), part]);
    const run = (spec: CommandSpec, values: Flags) => spec.run({ values: { ...values, resume: true }, positionals: [], json: false }, io);
    const policies = () => (readModelManifest(dir).policies ?? {}) as Record<string, PolicyManifestEntry>;
    const defaultEntry = () => policies()[slot] ?? Object.values(policies()).find((p) => (p.update ?? 'tsu') === 'tsu');
    const missing: { row: AblationRowName; command: string }[] = [];

    // 1. Train what is missing (each part skipped when its output exists).
    const have = {
      default: () => Boolean(policies()[slot]),
      'global-update': () => Boolean(policies()[globalSlot]),
      'single-branch': () => {
        const m = manifestOrNull(singleDir);
        return Boolean(m?.hafed && m.tsu && (m.policies as Record<string, unknown> | undefined)?.[slot]);
      },
      'z-only': () => Boolean(manifestOrNull(zDir)?.hafed),
    };
    const commands: Record<string, string> = {
      default: `sasha train policy --model ${dir} --budget ${budget}`,
      'global-update': `sasha train policy --model ${dir} --budget ${budget} --update global`,
      'single-branch': `sasha ablate --model ${dir} --budget ${budget} --rows single-branch`,
      'z-only': `sasha ablate --model ${dir} --budget ${budget} --rows z-only`,
    };
    for (const row of rows) {
      if (!(row in have) || (row === 'single-branch' && branches === 1)) continue;
      const key = row as keyof typeof have;
      if (have[key]()) continue;
      if (!train) {
        missing.push({ row, command: commands[row] });
        continue;
      }
      if (row === 'default') {
        io.log(`ablate: training the SASHA policy for f = ${budget}.`);
        await run(trainPolicyCommand, { ...policyFlags(defaultEntry(), main), model: dir, budget: String(budget) });
        note(row, `policy-${slot}`);
      } else if (row === 'global-update') {
        io.log(`ablate: training a policy for f = ${budget} under the global update (policy-${globalSlot}).`);
        await run(trainPolicyCommand, { ...policyFlags(defaultEntry(), main), model: dir, budget: String(budget), update: 'global' });
        note(row, `policy-${globalSlot}`);
      } else if (row === 'single-branch') {
        let m = manifestOrNull(singleDir);
        if (!m?.hafed) {
          io.log(`ablate: training HAFED with one stage-2 branch into ${singleDir}.`);
          await run(trainHafedCommand, { ...hafedFlags(main), 'lr-h5': data.lrH5, 'hr-h5': data.hrH5, split: data.split, out: singleDir, branches: '1', input: 'highRes' });
          note(row, 'hafed');
        }
        m = readModelManifest(singleDir);
        if (!m.tsu) {
          io.log('ablate: training f_S on the single-branch HAFED.');
          await run(trainTsuCommand, { ...tsuFlags(main), model: singleDir });
          note(row, 'tsu');
        }
        if (!(readModelManifest(singleDir).policies as Record<string, unknown> | undefined)?.[slot]) {
          io.log(`ablate: training the policy for f = ${budget} on the single-branch model.`);
          await run(trainPolicyCommand, { ...policyFlags(defaultEntry(), main), model: singleDir, budget: String(budget) });
          note(row, `policy-${slot}`);
        }
      } else if (row === 'z-only') {
        io.log(`ablate: training HAFED stage 2 on Z alone into ${zDir}.`);
        await run(trainHafedCommand, { ...hafedFlags(main), 'lr-h5': data.lrH5, split: data.split, out: zDir, input: 'lowRes' });
        note(row, 'hafed');
      }
    }

    // 2. Evaluate every row that exists on the same slides.
    const evaluations = new Map<AblationRowName, { ev: SashaEvaluation; source: string }>();
    const bars = progressBars(io.interactive);
    const mainData = await openModelData(dir, { values: { 'lr-h5': data.lrH5, 'hr-h5': data.hrH5, split: data.split }, positionals: [], json: false });
    try {
      const ids = mainData.split[subset];
      if (ids.length === 0) throw new DataError(`The split '${data.split}' has no ${subset} slides.`);
      io.log(`ablate: evaluating ${rows.length} rows at f = ${budget} on ${ids.length} ${subset} slides.`);
      const progress = (row: string) => (e: { done: number; total?: number }) => bars.onProgress({ ...e, task: `eval ${row}` });
      const atBudget = async (row: AblationRowName, policy: 'learned' | 'random' | 'top-attention', update: 'tsu' | 'global', source: string) => {
        const r = await evaluateAtBudget(mainData, { budget, policy, update, ids, seed, onProgress: progress(row), log: io.log });
        evaluations.set(row, { ev: r.evaluation, source });
      };
      if (!missing.some((m) => m.row === 'default')) await atBudget('default', 'learned', 'tsu', `${dir} policy-${slot}`);
      if (rows.includes('random')) await atBudget('random', 'random', 'tsu', `${dir} (random policy, seed ${seed})`);
      if (rows.includes('top-attention')) await atBudget('top-attention', 'top-attention', 'tsu', `${dir} (HAFED attention on Z)`);
      if (rows.includes('global-update') && policies()[globalSlot]) await atBudget('global-update', 'learned', 'global', `${dir} policy-${globalSlot}`);
      if (rows.includes('single-branch')) {
        if (branches === 1) {
          const d = evaluations.get('default');
          if (d) evaluations.set('single-branch', { ev: d.ev, source: `${dir} (its HAFED already has M2 = 1)` });
        } else if (have['single-branch']()) {
          const single = await openModelData(singleDir, { values: { 'lr-h5': data.lrH5, 'hr-h5': data.hrH5, split: data.split }, positionals: [], json: false });
          try {
            const r = await evaluateAtBudget(single, { budget, policy: 'learned', update: 'tsu', ids, seed, onProgress: progress('single-branch'), log: io.log });
            evaluations.set('single-branch', { ev: r.evaluation, source: `${singleDir} policy-${slot}` });
          } finally {
            single.close();
          }
        }
      }
      if (rows.includes('z-only') && have['z-only']()) {
        const t1 = performance.now();
        const zm = readModelManifest(zDir);
        const model = await loadModelComponent(zDir, zm.hafed!.path, 'HAFED', (io) => Hafed.load(io));
        const ds = await H5FeatureDataset.open({ lrH5: data.lrH5 });
        try {
          const { predictions } = await evaluateHafed(model, subsetDataset(ds, ids), { onProgress: progress('z-only') });
          const slides = predictions.map((p) => ({ id: p.id, label: p.label, probs: p.probs, crossEntropy: -Math.log(Math.max(p.probs[p.label], 1e-30)), actions: [] }));
          evaluations.set('z-only', { ev: summarizeEvaluation(slides, t1), source: zDir });
        } finally {
          ds.close();
          model.dispose();
        }
      }
    } finally {
      bars.stop();
      mainData.close();
    }

    // 3. The table, each row against SASHA on the same slides.
    const base = evaluations.get('default');
    const out: RowResult[] = rows.map((name) => {
      const e = evaluations.get(name);
      if (!e) {
        const m = missing.find((x) => x.row === name);
        return { name, description: ABLATION_DESCRIPTIONS[name], status: 'missing', command: m?.command ?? commands[name] };
      }
      const mt = e.ev.metrics;
      const row: RowResult = {
        name,
        description: ABLATION_DESCRIPTIONS[name],
        status: 'evaluated',
        source: e.source,
        ...(trainedNow.get(name) ? { trainedNow: trainedNow.get(name) } : {}),
        ...(metricFields(mt) as Pick<RowResult, 'accuracy' | 'balancedAccuracy' | 'auc' | 'perClassAuc' | 'f1' | 'ece' | 'n'>),
      };
      if (base && name !== 'default') {
        const labels = base.ev.slides.map((s) => s.label);
        const c = comparePredictions(
          labels,
          base.ev.slides.map((s) => s.probs),
          alignTo(base.ev.slides, e.ev.slides).map((s) => s.probs),
          { seed, resamples },
        );
        row.vsDefault = comparisonFields(c);
      }
      return row;
    });
    const complete = out.every((r) => r.status === 'evaluated');
    return { model: dir, budget, subset, n: base?.ev.metrics.n ?? null, complete, rows: out, seconds: (Date.now() - t0) / 1000 };
  },
  render(result) {
    const rows = result.rows as RowResult[];
    const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
    const p = (v: number | undefined) => (v === undefined ? '' : v < 0.001 ? '<0.001' : v.toFixed(3));
    const lines = [
      `Ablation at f = ${String(result.budget)} on ${String(result.n ?? '?')} ${String(result.subset)} slides (p: SASHA vs the row on the same slides)`,
      '',
      `${'row'.padEnd(15)}${'accuracy'.padEnd(10)}${'AUC'.padEnd(7)}${'F1'.padEnd(7)}${'McNemar p'.padEnd(11)}${'AUC diff [95% CI]'.padEnd(26)}AUC p`,
    ];
    for (const r of rows) {
      if (r.status === 'missing') {
        lines.push(`${r.name.padEnd(15)}not trained: ${r.command ?? ''}`);
        continue;
      }
      const v = r.vsDefault;
      const ci = v ? `${v.aucDifference >= 0 ? '+' : ''}${v.aucDifference.toFixed(3)} [${v.aucLow.toFixed(3)}, ${v.aucHigh.toFixed(3)}]` : '';
      lines.push(`${r.name.padEnd(15)}${f(r.accuracy).padEnd(10)}${f(r.auc).padEnd(7)}${f(r.f1).padEnd(7)}${p(v?.mcnemarP).padEnd(11)}${ci.padEnd(26)}${p(v?.aucP)}`);
    }
    return lines.join('\n');
  },
};
