/**
 * The digit benchmark: SASHA through the whole pixel pipeline, on slides assembled from real
 * handwritten digits (MNIST) and encoded by a CNN trained separately, over several cohorts.
 * Every step is what a user runs: the `sasha` CLI on files.
 *
 * 1. encoder: `bench/digit_encoder.ts` (trained once, on its own digit pool; shared by the cohorts);
 * 2. per cohort seed (a new cohort and split each): `writeDigitCohort` (pyramidal JPEG-tiled
 *    TIFFs, labels.csv, split.json, truth), `sasha tile`, `sasha extract` (Z at level 2, U at
 *    level 0, r = 4, k = 16, the trained encoder);
 * 3. per cohort: the recipe and every row of the table (`bench/policy_table.ts`): HAFED, f_S,
 *    the policies for f = 0.2 and 0.1 with the default recipe and with `--preset reference`,
 *    top-attention, greedy attention and random zooming, the global update retrained, a
 *    single-branch HAFED, Z alone;
 * 4. the pooled table with 95 % intervals and paired tests, and where each policy zoomed (from
 *    the slides' ground truth).
 *
 * Stages whose output exists are skipped, and an interrupted policy stage continues from its last
 * epoch checkpoint (`--resume`), so an interrupted run resumes with the same command.
 *
 * Run: `nice -n 10 npx tsx bench/digits_table.ts [--dir bench/out/digits] [--cohorts 0,1,2,3,4]
 *   [--slides 160] [--split 0.5,0.1,0.4] [--min-patches 100] [--max-patches 300] [--hafed-epochs 30]
 *   [--hafed-lr 2e-3] [--tsu-epochs 200] [--rows all|core|policy|ablation|base|ROW,ROW] [--section digits-table]
 *   [--data-only] [--no-record] [--sweep [0.05,0.1,0.2,0.3,0.5,1]] [--sweep-only]`
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { digitTruthAt, DEFAULT_DIGIT_SLIDE_CONFIG } from '../src/wsi/synthetic/index.js';
import { H5FeatureDataset, loadMnistDigits, readDigitTruth, writeDigitCohort } from '../src/node/index.js';
import { encoderTable, trainDigitEncoder, type DigitEncoderReport } from './digit_encoder.js';
import { ablationTraining, parseRows, pooledTable, runCohort, sasha, stageTimeTable, stageTimes, zoomTable, type Cohort, type Row, type SlidePrediction, recordSweep, sweepOptions } from './policy_table.js';
import { table, writeResults } from './results.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = resolve(arg('dir', 'bench/out/digits'));
const cohortSeeds = arg('cohorts', '0,1,2,3,4').split(',').map(Number);
const numSlides = Number(arg('slides', '160'));
const splitFractions = arg('split', '0.5,0.1,0.4').split(',').map(Number) as [number, number, number];
const minPatches = Number(arg('min-patches', '100'));
const maxPatches = Number(arg('max-patches', '300'));
const settings = { hafedEpochs: arg('hafed-epochs', '30'), hafedLr: arg('hafed-lr', '2e-3'), tsuEpochs: arg('tsu-epochs', '200'), policyFlags: [] as string[] };
const rowArg = arg('rows', 'all');
const rows = parseRows(rowArg);
const section = arg('section', 'digits-table');
const dataOnly = process.argv.includes('--data-only');
const record = !process.argv.includes('--no-record');
const { budgets: sweepBudgets, only: sweepOnly } = sweepOptions(process.argv);
const log = (m: string) => process.stderr.write(`[digits ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

interface CohortSummary {
  slides: { label: number; tumourCells: number; mimicCells: number; tissuePatches: number }[];
  lookalikes: { test: { lowResAccuracyKept: number } };
}

/** Slides, tiling and extraction of one cohort (each skipped when its output exists). */
async function prepareCohort(seed: number, encoderDir: string): Promise<{ cohort: Cohort; summary: CohortSummary }> {
  const cdir = join(dir, `c${seed}`);
  const slidesDir = join(cdir, 'cohort');
  const tilesDir = join(cdir, 'tiles');
  const featDir = join(cdir, 'features');
  const lrH5 = join(featDir, 'lr.h5');
  const hrH5 = join(featDir, 'hr.h5');
  await mkdir(cdir, { recursive: true });
  const config = { ...DEFAULT_DIGIT_SLIDE_CONFIG, numSlides, minPatches, maxPatches, seed, splitFractions };
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    log(`c${seed}: ${name}...`);
    const t0 = performance.now();
    const out = await run();
    stageTimes.push({ cohort: `c${seed}`, stage: name, seconds: (performance.now() - t0) / 1000 });
    return out;
  };
  const last = join(slidesDir, 'slides', `digits_${String(numSlides - 1).padStart(3, '0')}.tif`);
  const files =
    existsSync(join(slidesDir, 'cohort.json')) && existsSync(last)
      ? { manifest: join(slidesDir, 'cohort.json'), labels: join(slidesDir, 'labels.csv'), split: join(slidesDir, 'split.json') }
      : await timed('write the slides', async () => writeDigitCohort(slidesDir, await loadMnistDigits(), config));
  const wsiFlags = ['--patch-size', '32', '--a-t', '0.5', '--a-h', '0.5'];
  if (!existsSync(join(tilesDir, 'tiling.json'))) {
    await timed('sasha tile', () => sasha(['tile', join(slidesDir, 'slides'), '--out', tilesDir, '--level', '2', ...wsiFlags], `c${seed} tile`));
  }
  if (!(existsSync(lrH5) && existsSync(hrH5))) {
    await timed('sasha extract', () =>
      sasha(
        ['extract', join(slidesDir, 'slides'), '--out', featDir, '--encoder', encoderDir, '--lr-level', '2', '--hr-level', '0', '--labels', files.labels, '--batch-size', '128', ...wsiFlags],
        `c${seed} extract`,
      ),
    );
  }
  const truthDir = join(slidesDir, 'truth');
  let ds: H5FeatureDataset | null = null;
  const cohort: Cohort = {
    name: `c${seed}`,
    seed,
    dir: cdir,
    lrH5,
    hrH5,
    split: files.split,
    tumourPatches: async (id) => {
      ds ??= await H5FeatureDataset.open({ lrH5 });
      const truth = readDigitTruth(join(truthDir, `${id}.json`));
      const bag = await ds.load(id, ['coords']);
      const per = digitTruthAt(truth, bag.coords!, truth.cellSize * truth.ratio);
      const set = new Set<number>();
      per.tumour.forEach((v, i) => v > 0 && set.add(i));
      return set;
    },
  };
  return { cohort, summary: JSON.parse(readFileSync(files.manifest, 'utf8')) as CohortSummary };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg()[0];
  await mkdir(dir, { recursive: true });
  const encoderDir = resolve(arg('encoder', join(dir, 'encoder')));
  const encoder = existsSync(join(encoderDir, 'model.json'))
    ? (JSON.parse(readFileSync(join(encoderDir, 'encoder.json'), 'utf8')) as { report: DigitEncoderReport }).report
    : await trainDigitEncoder({ out: encoderDir, log });
  const prepared = [];
  for (const seed of cohortSeeds) prepared.push(await prepareCohort(seed, encoderDir));
  if (dataOnly) return;
  if (sweepBudgets) await recordSweep(prepared.map((p) => p.cohort), sweepBudgets, { section, script: 'digits_table.ts', benchmark: 'SASHA on digit slides', record, log });
  if (sweepOnly) return;
  const results: Partial<Record<Row, SlidePrediction[]>>[] = [];
  for (const { cohort } of prepared) results.push(await runCohort(cohort, settings, rows, log));

  const main = pooledTable(results);
  const zoom = await zoomTable(results, prepared.map((p) => p.cohort));
  const slides = prepared.flatMap((p) => p.summary.slides);
  const pos = slides.filter((x) => x.label === 1);
  const share = pos.map((x) => x.tumourCells / (x.tissuePatches * 16)).sort((a, b) => a - b);
  const cohortRows = prepared.map(({ cohort, summary }) => {
    const split = JSON.parse(readFileSync(cohort.split, 'utf8')) as { train_names: string[]; val_names: string[]; test_names: string[] };
    return [cohort.name, summary.slides.length, summary.slides.filter((x) => x.label === 1).length, `${split.train_names.length} / ${split.val_names.length} / ${split.test_names.length}`];
  });
  const body = [
    `Cohorts: ${cohortSeeds.length} digit cohorts (seeds ${cohortSeeds.join(', ')}), each ${numSlides} slides of ${minPatches}-${maxPatches} patches of 32 px at level 2 ` +
      `(r = 4, k = 16 cells of 32 px at level 0) with its own split ${splitFractions.join(' / ')}; tumour = 9, mimic = 4 on lesion stroma, normal = other digits. ` +
      `Tumour covers ${(100 * share[0]).toFixed(2)}%-${(100 * share[share.length - 1]).toFixed(1)}% of a positive slide's cells (median ${(100 * share[Math.floor(share.length / 2)]).toFixed(1)}%); ` +
      `${slides.filter((x) => x.label === 0 && x.mimicCells > 0).length} of ${slides.length - pos.length} negatives hold mimic. ${main.summary.slides} test slides in all.`,
    `Encoder: d = ${encoder.dim}, trained apart on its own digits; 10-digit accuracy ${encoder.digitAccuracy.toFixed(3)}, ` +
      `9 vs 4 at high res ${encoder.tumourVsMimicHighRes.toFixed(3)}, at low res ${encoder.tumourVsMimicLowRes.toFixed(3)} (unseen digits).`,
    `Training per cohort, through the CLI: HAFED ${settings.hafedEpochs} epochs at peak lr ${settings.hafedLr} (also the Z-only classifier), f_S ${settings.tsuEpochs} epochs, ` +
      `the policies with the default recipe (\`sasha train policy\`: 15 PPO epochs)${rows.has('SASHA-0.2 (reference recipe)') ? ' and with `--preset reference`' : ''}${rows.has('SASHA-0.2 (imitation warm start)') ? ' and with an imitation warm start (`--imitation-epochs 3 --epochs 6`, the earlier default)' : ''}; every stage seeded with the cohort seed.${ablationTraining(rows)}`,
    'Accuracy and AUC over the pooled test slides with 95 % percentile-bootstrap intervals (10 000 resamples for accuracy, 2 000 for AUC and the ratio); ' +
      '"x HAFED" is accuracy over HAFED-100 % accuracy on the same slides. The paired tests compare each row with the learned policy at the same budget on the same slides: ' +
      'exact McNemar on per-slide correctness ("a vs b slides right only": the learned policy, then the row) and the paired, label-stratified bootstrap of the AUC difference (learned minus the row).',
    '',
    table(['cohort', 'slides', 'positive', 'train / val / test'], cohortRows),
    '',
    main.body,
    '',
    'Where the policies zoomed (positive test slides; a tumour patch is a low-res patch holding at least one tumour cell):',
    '',
    zoom.body,
    '',
    'Time per stage (mean over the cohorts that ran it):',
    '',
    stageTimeTable(prepared.map((p) => p.cohort)),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min on ${cpus().length} cores (load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end).`,
  ].join('\n');
  console.log(body);
  console.log('\n' + encoderTable(encoder));
  if (record) {
    const cmd = `nice -n 10 npx tsx bench/digits_table.ts ${process.argv.slice(2).join(' ')}`.trim();
    const title =
      section === 'digits-table'
        ? 'SASHA on digit slides through the whole pixel pipeline: the policy against the heuristics, over cohort seeds'
        : `SASHA on digit slides: ${rowArg} rows on cohorts ${cohortSeeds.join(', ')}`;
    writeResults(section, title, cmd, 'wasm', body);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
