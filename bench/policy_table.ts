/**
 * The policy-quality table shared by the digit and the synthetic benchmarks: per cohort (a new
 * cohort and split per seed), the whole recipe through the `sasha` CLI as a user runs it, then
 * every row evaluated on the cohort's test slides with per-slide predictions; over all cohorts,
 * the pooled table with 95 % bootstrap intervals and paired tests of SASHA against each
 * baseline on the same slides (exact McNemar on per-slide correctness, paired label-stratified
 * bootstrap of the AUC difference).
 *
 * Model directories per cohort (every stage is skipped when its output exists, so an
 * interrupted run resumes):
 * ```
 * <cohort>/model/            sasha train hafed|tsu (preset default); policy-0.2, policy-0.1 (default recipe);
 *                            policy-0.2-global (--update global); ablations/single-branch (sasha ablate)
 * <cohort>/model-reference/  HAFED and f_S of model/, policies trained with --preset reference
 * <cohort>/model-imitation/  HAFED and f_S of model/, policies with an imitation warm start
 *                            (--imitation-epochs 3 --epochs 6: the recipe's earlier default)
 * <cohort>/model-z/          HAFED stage 2 on Z alone (the no-zoom baseline)
 * <cohort>/predictions/      one CSV per row (sasha eval --predictions)
 * ```
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binaryAuc, bootstrapInterval, calibrationErrorOfBins, f1Score, mcnemarExact, pairedBootstrapAuc } from '../src/eval/index.js';
import { budgetSweepSvg } from '../src/pipeline/index.js';
import { writePlot } from '../src/node/plots.js';
import { table, writeResults } from './results.js';
import { sashaCli } from './sasha_cli.js';

/** One cohort's feature files. */
export interface Cohort {
  name: string;
  /** Seed of every training stage of this cohort (the cohort's own seed). */
  seed: number;
  dir: string;
  lrH5: string;
  hrH5: string;
  split: string;
  /** Tumour patches of a slide (for where the policies zoomed), when the truth is known. */
  tumourPatches?: (id: string) => Promise<Set<number>>;
}

/** Settings of the training stages. */
export interface StageSettings {
  hafedEpochs: string;
  hafedLr: string;
  tsuEpochs: string;
  /** Extra flags of `sasha train policy` for every policy (e.g. `--epochs`), default none. */
  policyFlags: string[];
}

/** The rows of the table, in order. */
export const ROWS = [
  'HAFED-100%',
  'SASHA-0.2',
  'SASHA-0.1',
  'SASHA-0.2 (reference recipe)',
  'SASHA-0.1 (reference recipe)',
  'SASHA-0.2 (imitation warm start)',
  'SASHA-0.1 (imitation warm start)',
  'top-attention-0.2',
  'top-attention-0.1',
  'greedy-attention-0.2',
  'greedy-attention-0.1',
  'random-0.2',
  'random-0.1',
  'global update retrained-0.2',
  'single branch-0.2',
  'Z only (no zoom)',
] as const;
export type Row = (typeof ROWS)[number];

const BASE_ROWS: readonly Row[] = ['HAFED-100%', 'top-attention-0.2', 'top-attention-0.1', 'greedy-attention-0.2', 'greedy-attention-0.1', 'random-0.2', 'random-0.1', 'Z only (no zoom)'];

/** Named sets of rows for `--rows`. */
export const ROW_SETS: Readonly<Record<string, readonly Row[]>> = {
  all: ROWS,
  base: BASE_ROWS,
  // the default recipe against the heuristics at both budgets
  core: ['SASHA-0.2', 'SASHA-0.1', ...BASE_ROWS],
  // the core rows with the reference recipe beside them
  policy: ROWS.filter((r) => !['global update retrained-0.2', 'single branch-0.2', 'SASHA-0.2 (imitation warm start)', 'SASHA-0.1 (imitation warm start)'].includes(r)),
  // the paper's ablation table at f = 0.2
  ablation: ['HAFED-100%', 'SASHA-0.2', 'SASHA-0.2 (reference recipe)', 'top-attention-0.2', 'random-0.2', 'global update retrained-0.2', 'single branch-0.2', 'Z only (no zoom)'],
};

/**
 * How the ablation rows among `rows` were trained, as a sentence for a table's header ('' when
 * there are none).
 */
export function ablationTraining(rows: Set<Row>): string {
  const parts: string[] = [];
  if (rows.has('global update retrained-0.2')) {
    parts.push('the global update retrained (`sasha train policy --budget 0.2 --update global`: the default recipe with every unvisited row rewritten by f_S after each zoom, its own policy in `policy-0.2-global/`, evaluated with the global update)');
  }
  if (rows.has('single branch-0.2')) {
    parts.push('a single attention branch (`sasha ablate --rows single-branch`: HAFED with M2 = 1, then f_S and the f = 0.2 policy trained on it, the whole recipe)');
  }
  return parts.length ? ` Ablations at f = 0.2: ${parts.join('; ')}.` : '';
}

/** The rows of a `--rows` value: a set's name or a comma-separated list of rows. */
export function parseRows(value: string): Set<Row> {
  const set = ROW_SETS[value];
  if (set) return new Set(set);
  return new Set(
    value.split(',').map((r) => {
      if (!(ROWS as readonly string[]).includes(r)) throw new Error(`--rows: '${r}' is neither a set (${Object.keys(ROW_SETS).join(', ')}) nor a row (${ROWS.join(', ')})`);
      return r as Row;
    }),
  );
}

/** The learned policy each baseline is compared with. */
export const COMPARE: Partial<Record<Row, Row>> = {
  'SASHA-0.2 (reference recipe)': 'SASHA-0.2',
  'SASHA-0.1 (reference recipe)': 'SASHA-0.1',
  'SASHA-0.2 (imitation warm start)': 'SASHA-0.2',
  'SASHA-0.1 (imitation warm start)': 'SASHA-0.1',
  'top-attention-0.2': 'SASHA-0.2',
  'top-attention-0.1': 'SASHA-0.1',
  'greedy-attention-0.2': 'SASHA-0.2',
  'greedy-attention-0.1': 'SASHA-0.1',
  'random-0.2': 'SASHA-0.2',
  'random-0.1': 'SASHA-0.1',
  'global update retrained-0.2': 'SASHA-0.2',
  'single branch-0.2': 'SASHA-0.2',
  'Z only (no zoom)': 'SASHA-0.2',
};

/** One slide's prediction by one row. */
export interface SlidePrediction {
  cohort: string;
  id: string;
  label: number;
  probs: number[];
  zoomed: number[];
}

type Log = (m: string) => void;

/** Runs `sasha <args> --json` from source (stderr relayed with a label) and returns its JSON result. */
export async function sasha(args: string[], label: string): Promise<Record<string, unknown>> {
  return (await sashaCli(args, label)).result!;
}

/**
 * Time of every stage run (not cached), for the table's time section. `resumed`: the stage
 * continued from a checkpoint of an interrupted run, so its time covers only the part after it.
 */
export const stageTimes: StageTime[] = [];

/** One stage's wall time on one cohort. */
export interface StageTime {
  cohort: string;
  stage: string;
  seconds: number;
  resumed?: boolean;
}

function manifest(dir: string): Record<string, unknown> {
  const f = join(dir, 'sasha.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>) : {};
}

function policies(dir: string): Record<string, unknown> {
  return (manifest(dir).policies ?? {}) as Record<string, unknown>;
}

/** Copies HAFED, f_S and cached V of a model directory into a new one without its policies. */
function copyModel(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  const m = manifest(from) as Record<string, { path?: string } | unknown>;
  for (const key of ['hafed', 'tsu', 'aggregated']) {
    const p = (m[key] as { path?: string } | undefined)?.path;
    if (p && existsSync(join(from, p))) cpSync(join(from, p), join(to, p), { recursive: true });
  }
  const next = { ...m };
  delete next.policies;
  writeFileSync(join(to, 'sasha.json'), JSON.stringify(next, null, 2));
}

/** Which rows to produce. */
export type RowSelection = ReadonlySet<Row>;

/**
 * Trains what a cohort lacks and evaluates the selected rows on its test slides.
 * @returns per row, the per-slide predictions in the order of the predictions file.
 */
export async function runCohort(c: Cohort, s: StageSettings, rows: RowSelection, log: Log): Promise<Partial<Record<Row, SlidePrediction[]>>> {
  const M = join(c.dir, 'model');
  const R = join(c.dir, 'model-reference');
  const I = join(c.dir, 'model-imitation');
  const Z = join(c.dir, 'model-z');
  const seed = String(c.seed);
  const data = ['--lr-h5', c.lrH5, '--hr-h5', c.hrH5, '--split', c.split];
  // `checkpoints`: the folders a resumable stage continues from; one holding `last` means it resumes
  const stage = async (name: string, done: boolean, args: string[], checkpoints: string[] = []) => {
    if (done) return;
    const resumed = checkpoints.some((d) => existsSync(join(d, 'last')));
    log(`${c.name}: ${name}${resumed ? ' (resumed from its checkpoint)' : ''}...`);
    const t0 = performance.now();
    await sasha(args, `${c.name} ${name}`);
    const seconds = (performance.now() - t0) / 1000;
    const time: StageTime = { cohort: c.name, stage: name, seconds, ...(resumed ? { resumed } : {}) };
    stageTimes.push(time);
    // kept with the cohort, so that a later run that finds the stage done still reports its time
    appendFileSync(join(c.dir, 'stage_times.jsonl'), JSON.stringify({ ...time, date: new Date().toISOString(), load: loadavg()[0] }) + '\n');
    log(`${c.name}: ${name}: ${seconds.toFixed(0)} s`);
  };
  const ckpt = (model: string, ...names: string[]) => names.map((n) => join(model, 'checkpoints', n));
  const has = (row: Row) => rows.has(row);
  // Training
  await stage('train hafed', Boolean(manifest(M).hafed), ['train', 'hafed', ...data, '--out', M, '--seed', seed, '--epochs', s.hafedEpochs, '--lr', s.hafedLr]);
  await stage('train tsu', Boolean(manifest(M).tsu), ['train', 'tsu', '--model', M, '--seed', seed, '--epochs', s.tsuEpochs]);
  for (const f of ['0.2', '0.1']) {
    if (has(`SASHA-${f}` as Row)) await stage(`train policy ${f}`, Boolean(policies(M)[f]), ['train', 'policy', '--resume', '--model', M, '--budget', f, '--seed', seed, ...s.policyFlags], ckpt(M, `policy-${f}`));
  }
  if (has('SASHA-0.2 (reference recipe)') || has('SASHA-0.1 (reference recipe)')) {
    if (!existsSync(join(R, 'sasha.json'))) copyModel(M, R);
    for (const f of ['0.2', '0.1']) {
      if (has(`SASHA-${f} (reference recipe)` as Row)) {
        await stage(`train policy ${f} (reference)`, Boolean(policies(R)[f]), ['train', 'policy', '--resume', '--model', R, '--budget', f, '--seed', seed, '--preset', 'reference'], ckpt(R, `policy-${f}`));
      }
    }
  }
  if (has('SASHA-0.2 (imitation warm start)') || has('SASHA-0.1 (imitation warm start)')) {
    if (!existsSync(join(I, 'sasha.json'))) copyModel(M, I);
    for (const f of ['0.2', '0.1']) {
      if (has(`SASHA-${f} (imitation warm start)` as Row)) {
        await stage(`train policy ${f} (imitation)`, Boolean(policies(I)[f]), ['train', 'policy', '--resume', '--model', I, '--budget', f, '--seed', seed, '--imitation-epochs', '3', '--epochs', '6'], ckpt(I, `policy-${f}`));
      }
    }
  }
  if (has('global update retrained-0.2')) {
    await stage('train policy 0.2 --update global', Boolean(policies(M)['0.2-global']), ['train', 'policy', '--resume', '--model', M, '--budget', '0.2', '--update', 'global', '--seed', seed, ...s.policyFlags], ckpt(M, 'policy-0.2-global'));
  }
  const single = join(M, 'ablations', 'single-branch');
  if (has('single branch-0.2')) {
    await stage('ablate single branch', Boolean(policies(single)['0.2']), ['ablate', '--model', M, '--budget', '0.2', '--rows', 'single-branch'], ckpt(single, 'hafed', 'tsu', 'policy-0.2'));
  }
  if (has('Z only (no zoom)')) {
    await stage('train hafed --input lowRes', Boolean(manifest(Z).hafed), [
      'train', 'hafed', '--input', 'lowRes', '--lr-h5', c.lrH5, '--split', c.split, '--out', Z, '--seed', seed, '--epochs', s.hafedEpochs, '--lr', s.hafedLr,
    ]);
  }
  // Evaluation
  const evalArgs: Record<Row, string[]> = {
    'HAFED-100%': ['--model', M, '--budget', '1'],
    'SASHA-0.2': ['--model', M, '--budget', '0.2'],
    'SASHA-0.1': ['--model', M, '--budget', '0.1'],
    'SASHA-0.2 (reference recipe)': ['--model', R, '--budget', '0.2'],
    'SASHA-0.1 (reference recipe)': ['--model', R, '--budget', '0.1'],
    'SASHA-0.2 (imitation warm start)': ['--model', I, '--budget', '0.2'],
    'SASHA-0.1 (imitation warm start)': ['--model', I, '--budget', '0.1'],
    'top-attention-0.2': ['--model', M, '--budget', '0.2', '--policy', 'top-attention'],
    'top-attention-0.1': ['--model', M, '--budget', '0.1', '--policy', 'top-attention'],
    'greedy-attention-0.2': ['--model', M, '--budget', '0.2', '--policy', 'greedy-attention'],
    'greedy-attention-0.1': ['--model', M, '--budget', '0.1', '--policy', 'greedy-attention'],
    'random-0.2': ['--model', M, '--budget', '0.2', '--policy', 'random', '--seed', seed],
    'random-0.1': ['--model', M, '--budget', '0.1', '--policy', 'random', '--seed', seed],
    'global update retrained-0.2': ['--model', M, '--budget', '0.2', '--update', 'global'],
    'single branch-0.2': ['--model', single, '--budget', '0.2', ...data],
    'Z only (no zoom)': ['--model', Z, '--budget', '1'],
  };
  const out: Partial<Record<Row, SlidePrediction[]>> = {};
  mkdirSync(join(c.dir, 'predictions'), { recursive: true });
  for (const row of ROWS) {
    if (!has(row)) continue;
    const file = join(c.dir, 'predictions', `${row.replace(/[^a-z0-9.]+/gi, '_')}.csv`);
    await stage(`eval ${row}`, existsSync(file), ['eval', ...evalArgs[row], '--subset', 'test', '--predictions', file]);
    out[row] = readPredictions(file, c.name);
  }
  return out;
}

/** Reads a `sasha eval --predictions` CSV. */
export function readPredictions(file: string, cohort: string): SlidePrediction[] {
  const [header, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const cols = header.split(',');
  const probCols = cols.map((c, i) => (c.startsWith('prob_') ? i : -1)).filter((i) => i >= 0);
  const zoomCol = cols.indexOf('zoomed');
  return lines.map((l) => {
    const f = l.split(',');
    return {
      cohort,
      id: f[0],
      label: Number(f[1]),
      probs: probCols.map((i) => Number(f[i])),
      zoomed: zoomCol >= 0 && f[zoomCol] ? f[zoomCol].split(' ').filter((x) => x !== '').map(Number) : [],
    };
  });
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));
const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const fmtP = (p: number) => (p < 1e-4 ? p.toExponential(1) : p < 0.01 ? p.toFixed(4) : p.toFixed(3));

/**
 * The pooled table: per row, accuracy and AUC over all cohorts' test slides with 95 % bootstrap
 * intervals, the ratio to HAFED-100 % (with its interval), per-cohort accuracy, and for each
 * baseline the paired tests against its learned policy.
 */
export function pooledTable(results: Partial<Record<Row, SlidePrediction[]>>[], options: { resamples?: number } = {}): { body: string; summary: Record<string, unknown> } {
  const resamples = options.resamples ?? 10000;
  const rows = ROWS.filter((r) => results.every((c) => c[r] !== undefined));
  const pooled = (r: Row) => results.flatMap((c) => c[r] as SlidePrediction[]);
  const key = (p: SlidePrediction) => `${p.cohort}/${p.id}`;
  // every row in the order of the HAFED row (or the first row)
  const ref = pooled(rows.includes('HAFED-100%') ? 'HAFED-100%' : rows[0]);
  const order = new Map(ref.map((p, i) => [key(p), i] as const));
  const aligned = (r: Row) => {
    const out = new Array<SlidePrediction>(ref.length);
    for (const p of pooled(r)) out[order.get(key(p))!] = p;
    return out;
  };
  const labels = ref.map((p) => p.label);
  const idx = ref.map((_, i) => i);
  const correct = (r: Row) => aligned(r).map((p) => (argmax(p.probs) === p.label ? 1 : 0));
  const score = (r: Row) => aligned(r).map((p) => p.probs[1] ?? 0);
  const hafed = rows.includes('HAFED-100%') ? correct('HAFED-100%') : null;
  const summary: Record<string, unknown> = { slides: ref.length, cohorts: results.length, rows: {} as Record<string, unknown> };
  const lines: (string | number)[][] = [];
  for (const r of rows) {
    const c = correct(r);
    const sc = score(r);
    const acc = bootstrapInterval(c, { resamples, seed: 1 });
    const auc = bootstrapInterval(idx, {
      resamples: Math.min(resamples, 2000),
      seed: 2,
      statistic: (ix) => binaryAuc(ix.map((i) => labels[i]), ix.map((i) => sc[i])),
    });
    const predicted = aligned(r).map((p) => argmax(p.probs));
    const f1 = bootstrapInterval(idx, {
      resamples: Math.min(resamples, 2000),
      seed: 7,
      statistic: (ix) => f1Score(ix.map((i) => labels[i]), ix.map((i) => predicted[i])),
    });
    let ratio = { estimate: NaN, low: NaN, high: NaN };
    if (hafed) {
      ratio = bootstrapInterval(idx, {
        resamples: Math.min(resamples, 2000),
        seed: 3,
        statistic: (ix) => ix.reduce((a, i) => a + c[i], 0) / Math.max(1, ix.reduce((a, i) => a + hafed[i], 0)),
      });
    }
    const perCohort = results.map((cr) => {
      const ps = cr[r] as SlidePrediction[];
      return ps.filter((p) => argmax(p.probs) === p.label).length / ps.length;
    });
    let test = '';
    const vs = COMPARE[r];
    const entry: Record<string, unknown> = { accuracy: acc, auc, f1, ratioToHafed: ratio, perCohort };
    if (vs && rows.includes(vs)) {
      const m = mcnemarExact(correct(vs), c);
      const a = pairedBootstrapAuc(labels, aligned(vs).map((p) => p.probs), aligned(r).map((p) => p.probs), { resamples, seed: 4 });
      test = `${vs}: ${m.aOnly} vs ${m.bOnly} slides right only, McNemar p = ${fmtP(m.pValue)}; AUC ${a.difference >= 0 ? '+' : ''}${fmt(a.difference)} [${fmt(a.low)}, ${fmt(a.high)}], p = ${fmtP(a.pValue)}`;
      entry.vs = { row: vs, mcnemar: m, auc: a };
    }
    (summary.rows as Record<string, unknown>)[r] = entry;
    lines.push([
      r,
      `${fmt(acc.estimate)} [${fmt(acc.low)}, ${fmt(acc.high)}]`,
      `${fmt(auc.estimate)} [${fmt(auc.low)}, ${fmt(auc.high)}]`,
      `${fmt(f1.estimate)} [${fmt(f1.low)}, ${fmt(f1.high)}]`,
      hafed ? `${fmt(ratio.estimate)} [${fmt(ratio.low)}, ${fmt(ratio.high)}]` : 'n/a',
      perCohort.map((x) => fmt(x)).join(' / '),
      test,
    ]);
  }
  const body = table(['method', 'accuracy [95% CI]', 'AUC [95% CI]', 'F1 [95% CI]', 'x HAFED [95% CI]', 'accuracy per cohort', 'paired test against the learned policy (same slides)'], lines);
  return { body, summary };
}

/**
 * Where each zooming row zoomed, on the positive test slides: the share of tumour patches
 * zoomed and the share of positive slides with at least one tumour patch zoomed, each with a
 * 95 % bootstrap interval over slides.
 */
export async function zoomTable(results: Partial<Record<Row, SlidePrediction[]>>[], cohorts: Cohort[]): Promise<{ body: string; summary: Record<string, unknown> }> {
  const rows = ROWS.filter((r) => !['HAFED-100%', 'Z only (no zoom)'].includes(r) && results.every((c) => c[r] !== undefined));
  const lines: string[][] = [];
  const summary: Record<string, unknown> = {};
  const truth = new Map<string, Set<number>>();
  for (const c of cohorts) {
    if (!c.tumourPatches) return { body: '', summary };
    const preds = results[cohorts.indexOf(c)][rows[0]] as SlidePrediction[];
    for (const p of preds) if (p.label === 1) truth.set(`${c.name}/${p.id}`, await c.tumourPatches(p.id));
  }
  for (const r of rows) {
    const found: number[] = [];
    const totals: number[] = [];
    const hits: number[] = [];
    for (const c of results) {
      for (const p of c[r] as SlidePrediction[]) {
        const t = truth.get(`${p.cohort}/${p.id}`);
        if (p.label !== 1 || !t || t.size === 0) continue;
        const f = p.zoomed.filter((a) => t.has(a)).length;
        found.push(f);
        totals.push(t.size);
        hits.push(f > 0 ? 1 : 0);
      }
    }
    const ix = found.map((_, i) => i);
    const recall = bootstrapInterval(ix, { resamples: 2000, seed: 5, statistic: (s) => s.reduce((a, i) => a + found[i], 0) / s.reduce((a, i) => a + totals[i], 0) });
    const hit = bootstrapInterval(hits, { resamples: 2000, seed: 6 });
    summary[r] = { tumourPatchesZoomed: recall, positiveSlidesHit: hit, positives: hits.length };
    lines.push([r, `${fmt(recall.estimate)} [${fmt(recall.low)}, ${fmt(recall.high)}]`, `${fmt(hit.estimate)} [${fmt(hit.low)}, ${fmt(hit.high)}]`]);
  }
  return {
    body: table(['policy', 'share of tumour patches zoomed [95% CI]', 'share of positive slides with a tumour patch zoomed [95% CI]'], lines),
    summary,
  };
}

/**
 * Mean seconds of each stage over the cohorts that ran it whole. A run resumed from the
 * checkpoint of an interrupted one timed only its last part: it is left out of the mean and
 * named below the table.
 */
export function stageTimeTable(cohorts: readonly Cohort[] = []): string {
  // the times recorded with each cohort (the last run of each stage), else this run's
  const recorded = new Map<string, StageTime>();
  for (const c of cohorts) {
    const f = join(c.dir, 'stage_times.jsonl');
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
      const t = JSON.parse(line) as StageTime;
      recorded.set(`${t.cohort}/${t.stage}`, t);
    }
  }
  for (const t of stageTimes) recorded.set(`${t.cohort}/${t.stage}`, t);
  const by = new Map<string, { whole: number[]; resumed: string[] }>();
  for (const t of recorded.values()) {
    const e = by.get(t.stage) ?? { whole: [], resumed: [] };
    if (t.resumed) e.resumed.push(t.cohort);
    else e.whole.push(t.seconds);
    by.set(t.stage, e);
  }
  const lines = [...by.entries()].map(([stage, { whole }]) => [
    stage,
    whole.length > 0 ? (whole.reduce((a, b) => a + b, 0) / whole.length).toFixed(0) : '-',
    String(whole.length),
  ]);
  const resumed = [...by.entries()].filter(([, e]) => e.resumed.length > 0).map(([stage, e]) => `${stage} (${e.resumed.join(', ')})`);
  const note = resumed.length > 0 ? `\n\nLeft out of the means, as they went on from the checkpoint of an interrupted run and timed only that part: ${resumed.join('; ')}.` : '';
  return table(['stage', 'mean seconds per cohort', 'cohorts timed'], lines) + note;
}


/** The budgets of the benchmarks' sweep (`--sweep`). */
export const SWEEP_BUDGETS = '0.05,0.1,0.2,0.3,0.5,1';

/** One budget of a cohort's `sasha eval --budgets --json` result (the fields the pooled sweep reads). */
interface SweepEntry {
  budget: number;
  method: string;
  policyBudget?: number;
  accuracy: number;
  auc: number;
  f1: number;
  ece: number;
  n: number;
  confusion: number[][];
  reliability: { lower: number; upper: number; count: number; accuracy: number | null; confidence: number | null }[];
}

/**
 * `sasha eval --model M --budgets B --subset test --json` on one cohort (the learned policies of
 * the default recipe; a budget without a trained policy uses the nearest trained one, named in
 * the result), cached in the cohort's `sweep.json`.
 */
export async function runSweep(c: Cohort, budgets: string, log: Log): Promise<SweepEntry[]> {
  const file = join(c.dir, 'sweep.json');
  if (existsSync(file)) {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { budgets: string; result: { budgets: SweepEntry[] } };
    if (cached.budgets === budgets) return cached.result.budgets;
  }
  log(`${c.name}: sasha eval --budgets ${budgets}...`);
  const t0 = performance.now();
  const result = (await sasha(['eval', '--model', join(c.dir, 'model'), '--budgets', budgets, '--subset', 'test'], `${c.name} eval --budgets`)) as { budgets: SweepEntry[] };
  const seconds = (performance.now() - t0) / 1000;
  appendFileSync(join(c.dir, 'stage_times.jsonl'), JSON.stringify({ cohort: c.name, stage: 'eval --budgets', seconds, date: new Date().toISOString(), load: loadavg()[0] }) + '\n');
  writeFileSync(file, JSON.stringify({ budgets, result }, null, 2));
  return result.budgets;
}

/**
 * The cohorts' sweeps pooled over their test slides: per budget the accuracy with a 95 %
 * bootstrap interval, F1 of the summed confusion matrices, the ECE of the summed reliability
 * bins (both exact for the pooled slides), the mean and range of the per-cohort AUC, and which
 * trained policy ran; plus the plot of accuracy and ECE against the budget (SVG and PNG) in
 * `plotDir`.
 */
export async function pooledSweep(sweeps: SweepEntry[][], plotDir: string, plotLink: string): Promise<{ body: string; summary: Record<string, unknown>[] }> {
  const lines: string[][] = [];
  const summary: Record<string, unknown>[] = [];
  const points: { budget: number; accuracy: number; ece: number }[] = [];
  for (let b = 0; b < sweeps[0].length; b++) {
    const entries = sweeps.map((s) => s[b]);
    const budget = entries[0].budget;
    if (entries.some((e) => e.budget !== budget)) throw new Error('pooledSweep: the cohorts were swept over different budgets');
    // the pooled slides as (truth, prediction) pairs from the summed confusion matrices (rows:
    // truth, columns: prediction): accuracy and F1 as the library computes them
    const yTrue: number[] = [];
    const yPred: number[] = [];
    entries.forEach((e) => e.confusion.forEach((row, i) => row.forEach((count, j) => {
      for (let c = 0; c < count; c++) {
        yTrue.push(i);
        yPred.push(j);
      }
    })));
    const n = yTrue.length;
    const acc = bootstrapInterval(yTrue.map((t, i) => (t === yPred[i] ? 1 : 0)), { resamples: 10000, seed: 8 });
    const f1 = f1Score(yTrue, yPred, { numClasses: entries[0].confusion.length });
    // the pooled reliability bins (counts summed, accuracy and confidence count-weighted)
    const ece = calibrationErrorOfBins(entries[0].reliability.map((_, k) => {
      const count = entries.reduce((a, e) => a + e.reliability[k].count, 0);
      const mean = (key: 'accuracy' | 'confidence') => (count === 0 ? NaN : entries.reduce((a, e) => a + e.reliability[k].count * (e.reliability[k][key] ?? 0), 0) / count);
      return { lower: entries[0].reliability[k].lower, upper: entries[0].reliability[k].upper, count, accuracy: mean('accuracy'), confidence: mean('confidence') };
    }));
    const aucs = entries.map((e) => e.auc);
    const aucMean = aucs.reduce((a, x) => a + x, 0) / aucs.length;
    const trained = [...new Set(entries.map((e) => (budget >= 1 ? 'HAFED, every high-res patch' : e.policyBudget !== undefined && e.policyBudget !== budget ? `policy of f = ${e.policyBudget}` : `policy of f = ${budget}`)))].join('; ');
    points.push({ budget, accuracy: acc.estimate, ece });
    summary.push({ budget, accuracy: acc, f1, ece, aucMean, aucRange: [Math.min(...aucs), Math.max(...aucs)], n, policy: trained });
    lines.push([String(budget), trained, `${fmt(acc.estimate)} [${fmt(acc.low)}, ${fmt(acc.high)}]`, fmt(f1), fmt(ece), `${fmt(aucMean)} (${fmt(Math.min(...aucs))}-${fmt(Math.max(...aucs))})`, String(n)]);
  }
  const svg = budgetSweepSvg(points, `Accuracy and calibration against the budget (${points.length} budgets, ${summary[0].n} test slides over ${sweeps.length} cohort${sweeps.length === 1 ? "" : "s"})`);
  await writePlot(join(plotDir, 'accuracy_ece_vs_budget'), svg);
  const body = [
    table(['budget f', 'what ran', 'accuracy [95% CI]', 'F1', 'ECE (15 bins)', 'AUC, mean over cohorts (range)', 'test slides'], lines),
    '',
    `![accuracy and ECE against the budget](${plotLink}/accuracy_ece_vs_budget.svg)`,
    '',
    `(PNG version: ${plotLink}/accuracy_ece_vs_budget.png.)`,
  ].join('\n');
  return { body, summary };
}

/**
 * The `--sweep [BUDGETS]` and `--sweep-only` options of a policy benchmark: the budgets to sweep
 * (null: no sweep) and whether to skip the tables.
 */
export function sweepOptions(argv: readonly string[]): { budgets: string | null; only: boolean } {
  const only = argv.includes('--sweep-only');
  const i = argv.indexOf('--sweep');
  if (i < 0) return { budgets: only ? SWEEP_BUDGETS : null, only };
  const value = argv[i + 1];
  return { budgets: value && !value.startsWith('--') ? value : SWEEP_BUDGETS, only };
}

/**
 * The budget sweep of the default recipe's model on every cohort ({@link runSweep}), pooled
 * ({@link pooledSweep}), printed and, with `record`, written to the section `<section>-sweep`
 * of bench/RESULTS.md with its plot in bench/figures/<section>-sweep.
 */
export async function recordSweep(
  cohorts: readonly Cohort[],
  budgets: string,
  o: { section: string; script: string; benchmark: string; record: boolean; log: Log },
): Promise<void> {
  const sweeps = [];
  for (const c of cohorts) sweeps.push(await runSweep(c, budgets, o.log));
  const name = `${o.section}-sweep`;
  const sweep = await pooledSweep(sweeps, join(dirname(fileURLToPath(import.meta.url)), 'figures', name), `figures/${name}`);
  const body = [
    `\`sasha eval --model MODEL --budgets ${budgets} --subset test\` on the default recipe's model of each cohort (${cohorts.map((c) => c.name).join(', ')}), pooled over their test slides. ` +
      'Budgets without a trained policy of their own run the nearest trained one (the command names it), as `sasha eval --budgets` does; f = 1 is HAFED on every high-res patch. ' +
      'Accuracy with a 95 % percentile-bootstrap interval (10 000 resamples); F1 of the summed confusion matrices and ECE (15 bins) of the summed reliability bins, both exact for the pooled slides; AUC per cohort (the command reports no per-slide scores).',
    '',
    sweep.body,
  ].join('\n');
  console.log(body);
  if (o.record) {
    const cmd = `nice -n 10 npx tsx bench/${o.script} ${process.argv.slice(2).join(' ')}`.trim();
    writeResults(name, `${o.benchmark}: accuracy and calibration against the budget, over cohort seeds`, cmd, 'wasm', body);
  }
}
