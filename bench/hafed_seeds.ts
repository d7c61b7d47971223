/**
 * How much HAFED training depends on its seed, with five stage-2 branches (the default) and with
 * one (the single-branch ablation): `sasha train hafed` on cohorts of the synthetic policy
 * benchmark (`bench/sasha_synthetic.ts` writes their feature files), once per training seed and
 * branch count, then `sasha eval --budget 1` on the cohort's test slides. A run "learned" when
 * its test accuracy is at least 0.9 (HAFED-100 % reached 1.000 on all five cohorts in the
 * benchmark); the others stay near the share of the larger class.
 *
 * Run: `nice -n 10 npx tsx bench/hafed_seeds.ts [--dir bench/out/synthetic] [--cohorts 0,1,2,3,4]
 *   [--seeds 3,13,23,33,43] [--branches 5,1] [--epochs 30] [--lr 2e-3] [--jobs 2] [--no-record]`
 * A model already trained in `DIR/hafed-seeds/c<cohort>/m<branches>_s<seed>/` is evaluated, not
 * trained again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { mcnemarExact } from '../src/eval/index.js';
import { sasha } from './policy_table.js';
import { table, writeResults } from './results.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const list = (s: string) => s.split(',').map(Number);

const dir = resolve(arg('dir', 'bench/out/synthetic'));
const cohorts = list(arg('cohorts', '0,1,2,3,4'));
const seeds = list(arg('seeds', '3,13,23,33,43'));
const branchCounts = list(arg('branches', '5,1'));
const epochs = arg('epochs', '30');
const lr = arg('lr', '2e-3');
const jobs = Number(arg('jobs', '2'));
const record = !process.argv.includes('--no-record');
const LEARNED = 0.9;
const log = (m: string) => process.stderr.write(`[hafed-seeds ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface Run {
  cohort: number;
  branches: number;
  seed: number;
  out: string;
  val?: { accuracy: number; auc: number; bestEpoch: number };
  test?: { accuracy: number; auc: number };
}

/** The trained HAFED's entry of a model directory's manifest, or null before training ends. */
function hafedEntry(out: string): { best: { epoch: number; val: { accuracy: number; auc: number } } } | null {
  const f = join(out, 'sasha.json');
  return existsSync(f) ? ((JSON.parse(readFileSync(f, 'utf8')) as { hafed?: { best: { epoch: number; val: { accuracy: number; auc: number } } } }).hafed ?? null) : null;
}

async function runOne(r: Run): Promise<void> {
  const features = join(dir, `c${r.cohort}`, 'features');
  const label = `c${r.cohort} M2=${r.branches} seed ${r.seed}`;
  if (!hafedEntry(r.out)) {
    log(`${label}: train hafed...`);
    await sasha(
      ['train', 'hafed', '--lr-h5', join(features, 'lr.h5'), '--hr-h5', join(features, 'hr.h5'), '--split', join(features, 'split.json'),
        '--out', r.out, '--seed', String(r.seed), '--epochs', epochs, '--lr', lr, '--branches', String(r.branches)],
      label,
    );
  }
  const { best } = hafedEntry(r.out)!;
  r.val = { accuracy: best.val.accuracy, auc: best.val.auc, bestEpoch: best.epoch };
  const ev = await sasha(['eval', '--model', r.out, '--budget', '1', '--subset', 'test'], label);
  r.test = { accuracy: Number(ev.accuracy), auc: Number(ev.auc) };
  log(`${label}: val ${r.val.accuracy.toFixed(3)}, test ${r.test.accuracy.toFixed(3)}`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg()[0];
  const runs: Run[] = [];
  for (const cohort of cohorts) {
    if (!existsSync(join(dir, `c${cohort}`, 'features', 'split.json'))) {
      throw new Error(`No feature files for cohort ${cohort} in ${dir}: run bench/sasha_synthetic.ts --dir ${dir} --cohorts ${cohort} first.`);
    }
    for (const branches of branchCounts) for (const seed of seeds) runs.push({ cohort, branches, seed, out: join(dir, 'hafed-seeds', `c${cohort}`, `m${branches}_s${seed}`) });
  }
  const queue = [...runs];
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(jobs, cpus().length)) }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) await runOne(r);
    }),
  );
  const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');
  const perRun = runs.map((r) => [`c${r.cohort}`, r.branches, r.seed, f3(r.val!.accuracy), f3(r.val!.auc), r.val!.bestEpoch, f3(r.test!.accuracy), f3(r.test!.auc), r.test!.accuracy >= LEARNED ? 'yes' : 'no']);
  const summary = branchCounts.map((b) => {
    const mine = runs.filter((r) => r.branches === b);
    const learned = mine.filter((r) => r.test!.accuracy >= LEARNED).length;
    const byCohort = cohorts.map((c) => `c${c}: ${mine.filter((r) => r.cohort === c && r.test!.accuracy >= LEARNED).length} of ${mine.filter((r) => r.cohort === c).length}`).join(', ');
    return [b, `${learned} of ${mine.length}`, byCohort];
  });
  // the branch counts compared pairwise on the same cohort and training seed
  const learnedOf = (b: number) => runs.filter((r) => r.branches === b).map((r) => r.test!.accuracy >= LEARNED);
  const pairs: string[] = [];
  for (let i = 0; i < branchCounts.length; i++) {
    for (let j = i + 1; j < branchCounts.length; j++) {
      const m = mcnemarExact(learnedOf(branchCounts[i]), learnedOf(branchCounts[j]));
      pairs.push(`M2 = ${branchCounts[i]} against M2 = ${branchCounts[j]} on the same cohort and seed: ${m.aOnly} runs learned only with ${branchCounts[i]}, ${m.bOnly} only with ${branchCounts[j]} (exact McNemar p = ${m.pValue < 0.001 ? m.pValue.toExponential(1) : m.pValue.toFixed(3)}).`);
    }
  }
  const minutes = (performance.now() - t0) / 60000;
  const body = [
    `Cohorts ${cohorts.map((c) => `c${c}`).join(', ')} of the synthetic policy benchmark (preset \`small\`, 96 training, 24 validation and 120 test slides each), training seeds ${seeds.join(', ')}; \`sasha train hafed --epochs ${epochs} --lr ${lr} --branches M2\`, otherwise the defaults; the model kept is the one of the best validation epoch. A run counts as learned when its test accuracy is at least ${LEARNED}.`,
    '',
    table(['M2 (stage-2 branches)', 'runs that learned', 'per cohort'], summary),
    '',
    ...pairs,
    '',
    table(['cohort', 'M2', 'seed', 'val accuracy', 'val AUC', 'best epoch', 'test accuracy', 'test AUC', 'learned'], perRun),
    '',
    `Total ${minutes.toFixed(1)} min on ${cpus().length} cores (load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end).`,
  ].join('\n');
  process.stdout.write(body + '\n');
  if (record) {
    const command = `nice -n 10 npx tsx bench/hafed_seeds.ts ${process.argv.slice(2).join(' ')}`.trim();
    writeResults('hafed-seeds', 'HAFED training against its seed, five branches and one, on the synthetic benchmark', command, 'wasm', body);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
