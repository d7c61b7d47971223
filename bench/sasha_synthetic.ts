/**
 * SASHA on the synthetic feature benchmark, over several cohorts: each cohort seed draws its
 * own cohort and split (written as feature files in the reference layout), and the recipe runs
 * through the `sasha` CLI as a user runs it (`bench/policy_table.ts`): HAFED, f_S, the policy
 * for f = 0.2 and 0.1 with the default recipe and with `--preset reference`, the baselines, the
 * ablations; then the pooled table with intervals and paired tests, and where each policy
 * zoomed (from the generator's truth).
 *
 * Run: `nice -n 10 npx tsx bench/sasha_synthetic.ts [--dir bench/out/synthetic] [--preset small]
 *   [--slides 240] [--split 0.4,0.1,0.5] [--cohorts 0,1,2,3,4] [--hafed-epochs 30] [--hafed-lr 2e-3]
 *   [--tsu-epochs 200] [--rows all|core|policy|ablation|base|ROW,ROW] [--section sasha-synthetic] [--no-record] [--sweep [0.05,0.1,0.2,0.3,0.5,1]] [--sweep-only]`
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SYNTHETIC_PRESETS, SyntheticDataset, type SyntheticPresetName } from '../src/wsi/synthetic/index.js';
import { writeSyntheticCohortFiles } from '../src/node/index.js';
import { ablationTraining, parseRows, pooledTable, runCohort, stageTimeTable, zoomTable, type Cohort, type Row, type SlidePrediction, recordSweep, sweepOptions } from './policy_table.js';
import { writeResults } from './results.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = resolve(arg('dir', 'bench/out/synthetic'));
const preset = arg('preset', 'small') as SyntheticPresetName;
const numSlides = Number(arg('slides', '240'));
const splitFractions = arg('split', '0.4,0.1,0.5').split(',').map(Number) as [number, number, number];
const cohortSeeds = arg('cohorts', '0,1,2,3,4').split(',').map(Number);
const settings = { hafedEpochs: arg('hafed-epochs', '30'), hafedLr: arg('hafed-lr', '2e-3'), tsuEpochs: arg('tsu-epochs', '200'), policyFlags: [] as string[] };
const rowArg = arg('rows', 'all');
const rows = parseRows(rowArg);
const section = arg('section', 'sasha-synthetic');
const record = !process.argv.includes('--no-record');
const { budgets: sweepBudgets, only: sweepOnly } = sweepOptions(process.argv);
const log = (m: string) => process.stderr.write(`[synthetic ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

async function main(): Promise<void> {
  const t0 = performance.now();
  const cohorts: Cohort[] = [];
  const results: Partial<Record<Row, SlidePrediction[]>>[] = [];
  for (const seed of cohortSeeds) {
    const cdir = join(dir, `c${seed}`);
    const fdir = join(cdir, 'features');
    mkdirSync(fdir, { recursive: true });
    const config = { ...SYNTHETIC_PRESETS[preset], numSlides, splitFractions, seed };
    const ds = new SyntheticDataset(config);
    if (!existsSync(join(fdir, 'split.json'))) {
      log(`cohort ${seed}: writing ${numSlides} slides`);
      await writeSyntheticCohortFiles(fdir, ds);
    }
    const tumour = ds.config.numTissueTypes + 1;
    const cohort: Cohort = {
      name: `c${seed}`,
      seed,
      dir: cdir,
      lrH5: join(fdir, 'lr.h5'),
      hrH5: join(fdir, 'hr.h5'),
      split: join(fdir, 'split.json'),
      tumourPatches: async (id) => {
        const s = ds.slide(id);
        const set = new Set<number>();
        for (let i = 0; i < s.n; i++) for (let j = 0; j < s.k; j++) if (s.truth.subPatchClass[i * s.k + j] === tumour) set.add(i);
        return set;
      },
    };
    cohorts.push(cohort);
    if (!sweepOnly) results.push(await runCohort(cohort, settings, rows, log));
  }
  if (sweepBudgets) await recordSweep(cohorts, sweepBudgets, { section, script: 'sasha_synthetic.ts', benchmark: 'SASHA on the synthetic benchmark', record, log });
  if (sweepOnly) return;
  const main = pooledTable(results);
  const zoom = await zoomTable(results, cohorts);
  const n = results[0]['HAFED-100%']?.length ?? 0;
  const body = [
    `Cohorts: preset \`${preset}\` (d = ${SYNTHETIC_PRESETS[preset].dim}, N ${SYNTHETIC_PRESETS[preset].minPatches}-${SYNTHETIC_PRESETS[preset].maxPatches}, k 16) with ${numSlides} slides, ` +
      `split ${splitFractions.join(' / ')}, one cohort per seed (${cohortSeeds.join(', ')}): ${main.summary.slides} test slides in all (${n} in the first cohort).`,
    `Training per cohort, through the CLI: HAFED ${settings.hafedEpochs} epochs at peak lr ${settings.hafedLr}, f_S ${settings.tsuEpochs} epochs, ` +
      `the policies with the default recipe (\`sasha train policy\`: 15 PPO epochs)${rows.has('SASHA-0.2 (reference recipe)') ? ' and with `--preset reference`' : ''}${rows.has('SASHA-0.2 (imitation warm start)') ? ' and with an imitation warm start (`--imitation-epochs 3 --epochs 6`, the earlier default)' : ''}; every stage seeded with the cohort seed.${ablationTraining(rows)}`,
    'Accuracy and AUC over the pooled test slides with 95 % percentile-bootstrap intervals (10 000 resamples for accuracy, 2 000 for AUC and the ratio); ' +
      '"x HAFED" is accuracy over HAFED-100 % accuracy on the same slides. The paired tests compare each baseline with the learned policy at the same budget on the same slides: ' +
      'exact McNemar on per-slide correctness ("a vs b slides right only": the learned policy, then the baseline) and the paired, label-stratified bootstrap of the AUC difference (learned minus baseline).',
    '',
    main.body,
    '',
    'Where the policies zoomed (positive test slides; a tumour patch holds at least one tumour sub-patch):',
    '',
    zoom.body,
    '',
    'Time per stage (mean over the cohorts that ran it):',
    '',
    stageTimeTable(cohorts),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min.`,
  ].join('\n');
  console.log(body);
  if (record) {
    const cmd = `nice -n 10 npx tsx bench/sasha_synthetic.ts ${process.argv.slice(2).join(' ')}`.trim();
    const title =
      section === 'sasha-synthetic'
        ? 'SASHA on the synthetic benchmark: the policy against the heuristics, over cohort seeds'
        : `SASHA on the synthetic benchmark: ${rowArg} rows on cohorts ${cohortSeeds.join(', ')}`;
    writeResults(section, title, cmd, 'wasm', body);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
