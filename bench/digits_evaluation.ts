/**
 * The paper's evaluation with the CLI on a small digit cohort: every command a researcher runs
 * on their own slides, end to end, with their printed results recorded.
 *
 * 1. encoder (`bench/digit_encoder.ts`, reused when its directory exists), slides
 *    (`writeDigitCohort`), `sasha tile`, `sasha extract`;
 * 2. `sasha train hafed`, `sasha train tsu`, `sasha train policy` for every budget of the sweep;
 * 3. `sasha ablate --budget 0.2` (trains the global-update policy, the single-branch model and
 *    the Z-only classifier, then the table);
 * 4. `sasha eval --budgets ... --plots` (accuracy, AUC, F1, ECE per budget; plots);
 * 5. `sasha compression` (state vs high-res features and pixels, from the files);
 * 6. `sasha interpret` with the slides' truth files as annotations (tumour fraction and
 *    attention of zoomed vs other patches, Mann-Whitney p; heatmaps with the tumour outlined).
 *
 * Stages whose output exists are skipped, so a stopped run resumes with the same command. One
 * cohort and one training seed: this shows the commands work and what they print; the
 * multi-seed statistics belong to the policy benchmarks (`bench/digits_table.ts`).
 *
 * `--cohort DIR` evaluates a cohort of `bench/digits_table.ts` instead of writing one (DIR holds
 * `cohort/`, `tiles/` and `features/`, which are only read; the encoder is the one named in
 * `features/extract.json`). Models already in `--dir`/model (e.g. a copy of that benchmark's
 * HAFED, f_S and policies) are kept; only the missing ones are trained. `--train-budgets` lists
 * the budgets whose policies are trained when missing (the sweep names the nearest trained
 * policy for the others), `--sweep` the budgets evaluated, and `--no-ablate` leaves the ablation
 * table to the policy benchmarks. The section of bench/RESULTS.md is `digits-evaluation`, or
 * `digits-evaluation-<name of DIR>` with `--cohort`.
 *
 * Run: `nice -n 15 npx tsx bench/digits_evaluation.ts [--dir bench/out/digits-eval] [--slides 60]
 *   [--min-patches 60] [--max-patches 200] [--seed 0] [--hafed-epochs 30] [--hafed-lr 2e-3]
 *   [--tsu-epochs 200] [--policy-epochs 8] [--policy-lr 1e-4] [--encoder-epochs 8] [--cohort DIR]
 *   [--train-budgets 0.05,0.1,0.2,0.3,0.5] [--sweep 0.05,0.1,0.2,0.3,0.5,1] [--no-ablate] [--no-record]`
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import sharp from 'sharp';
import { DEFAULT_DIGIT_SLIDE_CONFIG } from '../src/wsi/synthetic/index.js';
import { loadMnistDigits, writeDigitCohort } from '../src/node/index.js';
import { ablateCommand } from '../src/node/cli/ablate.js';
import { compressionCommand } from '../src/node/cli/compression.js';
import { evalCommand } from '../src/node/cli/eval.js';
import { interpretCommand } from '../src/node/cli/interpret.js';
import { encoderTable, trainDigitEncoder, type DigitEncoderReport } from './digit_encoder.js';
import { writeResults } from './results.js';
import { sashaCli } from './sasha_cli.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = resolve(arg('dir', 'bench/out/digits-eval'));
const numSlides = Number(arg('slides', '60'));
const minPatches = Number(arg('min-patches', '60'));
const maxPatches = Number(arg('max-patches', '200'));
const seed = arg('seed', '0');
const hafedEpochs = arg('hafed-epochs', '30');
const hafedLr = arg('hafed-lr', '2e-3');
const tsuEpochs = arg('tsu-epochs', '200');
const policyEpochs = arg('policy-epochs', '8');
const policyLr = arg('policy-lr', '1e-4');
const encoderEpochs = Number(arg('encoder-epochs', '8'));
const cohortFrom = process.argv.includes('--cohort') ? resolve(arg('cohort', '')) : undefined;
const budgets = arg('train-budgets', '0.05,0.1,0.2,0.3,0.5').split(',').filter(Boolean);
const sweepBudgets = arg('sweep', [...budgets, '1'].join(',')).split(',').filter(Boolean);
const ablation = !process.argv.includes('--no-ablate');
const record = !process.argv.includes('--no-record');
const section = cohortFrom ? `digits-evaluation-${basename(cohortFrom)}` : 'digits-evaluation';
const FIGURES = resolve(new URL(`figures/${section}`, import.meta.url).pathname);
const log = (m: string) => process.stderr.write(`[digits-eval ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

// Stage times are kept in DIR/times.json, so that a rerun that finds a stage done still reports
// the time the stage took when it ran.
mkdirSync(dir, { recursive: true });
const timesFile = join(dir, 'times.json');
const recorded: Record<string, number> = existsSync(timesFile) ? (JSON.parse(readFileSync(timesFile, 'utf8')) as Record<string, number>) : {};
const times: [string, string][] = [];
const fmtTime = (s: number) => (s < 120 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`);
async function stage<T>(name: string, cached: boolean, run: () => Promise<T>): Promise<T> {
  log(`${name}${cached ? ' (cached)' : ''}...`);
  const t0 = performance.now();
  const out = await run();
  const s = (performance.now() - t0) / 1000;
  if (!cached) {
    recorded[name] = s;
    writeFileSync(timesFile, JSON.stringify(recorded, null, 2));
  }
  times.push([name, cached ? (recorded[name] !== undefined ? `${fmtTime(recorded[name])} (an earlier run)` : 'done earlier') : fmtTime(s)]);
  return out;
}

const fence = (text: string) => '```\n' + text.trim() + '\n```';

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg()[0];
  mkdirSync(dir, { recursive: true });
  const root = cohortFrom ?? dir;
  const cohortDir = join(root, 'cohort');
  const tilesDir = join(root, 'tiles');
  const featDir = join(root, 'features');
  if (cohortFrom && !['cohort.json', 'split.json', 'labels.csv'].every((f) => existsSync(join(cohortDir, f)))) {
    throw new Error(`--cohort ${cohortFrom}: expected a digit cohort of bench/digits_table.ts there (cohort/cohort.json, split.json, labels.csv).`);
  }
  // the cohort of another benchmark is only read: every stage that would write into it must be done
  const missing = ['features/lr.h5', 'features/hr.h5', 'features/extract.json', 'tiles/tiling.json'].filter((f) => !existsSync(join(root, f)));
  if (cohortFrom && missing.length) throw new Error(`--cohort ${cohortFrom}: missing ${missing.join(', ')}; run bench/digits_table.ts --data-only first.`);
  const encoderDir = cohortFrom ? (JSON.parse(readFileSync(join(featDir, 'extract.json'), 'utf8')) as { encoder: string }).encoder : join(dir, 'encoder');
  const model = join(dir, 'model');
  const lrH5 = join(featDir, 'lr.h5');
  const hrH5 = join(featDir, 'hr.h5');
  const manifest = () => (existsSync(join(model, 'sasha.json')) ? (JSON.parse(readFileSync(join(model, 'sasha.json'), 'utf8')) as Record<string, unknown>) : {});

  // 1. Encoder, slides, tiles, features.
  const encoderCached = existsSync(join(encoderDir, 'model.json'));
  if (cohortFrom && !encoderCached) throw new Error(`--cohort ${cohortFrom}: the encoder '${encoderDir}' named in features/extract.json is gone.`);
  const encoder: DigitEncoderReport = await stage('train the encoder (bench/digit_encoder.ts)', encoderCached, async () =>
    encoderCached
      ? (JSON.parse(readFileSync(join(encoderDir, 'encoder.json'), 'utf8')) as { report: DigitEncoderReport }).report
      : trainDigitEncoder({ out: encoderDir, epochs: encoderEpochs, log }),
  );
  const cohortConfig = { ...DEFAULT_DIGIT_SLIDE_CONFIG, numSlides, minPatches, maxPatches };
  const slidesCached = Boolean(cohortFrom) || (existsSync(join(cohortDir, 'cohort.json')) && existsSync(join(cohortDir, 'slides', `digits_${String(numSlides - 1).padStart(3, '0')}.tif`)));
  const files = cohortFrom
    ? { labels: join(cohortDir, 'labels.csv'), split: join(cohortDir, 'split.json'), manifest: join(cohortDir, 'cohort.json') }
    : await stage('write the slides (writeDigitCohort)', slidesCached, async () => writeDigitCohort(cohortDir, await loadMnistDigits(), cohortConfig));
  const cohortSummary = JSON.parse(readFileSync(files.manifest, 'utf8')) as {
    config: { numSlides: number; minPatches: number; maxPatches: number };
    slides: { id: string; label: number; tumourCells: number }[];
  };
  const wsiFlags = ['--patch-size', '32', '--a-t', '0.5', '--a-h', '0.5'];
  const tiled = existsSync(join(tilesDir, 'tiling.json'));
  await stage('sasha tile', tiled, () => (tiled ? Promise.resolve(null) : sashaCli(['tile', join(cohortDir, 'slides'), '--out', tilesDir, '--level', '2', ...wsiFlags], 'tile')));
  const extracted = existsSync(lrH5) && existsSync(hrH5);
  await stage('sasha extract', extracted, () =>
    extracted
      ? Promise.resolve(null)
      : sashaCli(['extract', join(cohortDir, 'slides'), '--out', featDir, '--encoder', encoderDir, '--lr-level', '2', '--hr-level', '0', '--labels', files.labels, '--batch-size', '128', ...wsiFlags], 'extract'),
  );

  // 2. SASHA: HAFED, f_S, a policy per budget.
  const hasHafed = Boolean(manifest().hafed);
  await stage('sasha train hafed', hasHafed, () =>
    hasHafed ? Promise.resolve(null) : sashaCli(['train', 'hafed', '--lr-h5', lrH5, '--hr-h5', hrH5, '--split', files.split, '--out', model, '--seed', seed, '--epochs', hafedEpochs, '--lr', hafedLr], 'hafed'),
  );
  const hasTsu = Boolean(manifest().tsu);
  await stage('sasha train tsu', hasTsu, () => (hasTsu ? Promise.resolve(null) : sashaCli(['train', 'tsu', '--model', model, '--seed', seed, '--epochs', tsuEpochs], 'tsu')));
  for (const b of budgets) {
    const has = Boolean((manifest().policies as Record<string, unknown> | undefined)?.[b]);
    await stage(`sasha train policy --budget ${b}`, has, () =>
      has ? Promise.resolve(null) : sashaCli(['train', 'policy', '--model', model, '--budget', b, '--seed', seed, '--epochs', policyEpochs, '--lr', policyLr], `policy ${b}`),
    );
  }

  // 3-6. The evaluation commands.
  const ablate = ablation ? await stage('sasha ablate --budget 0.2', false, () => sashaCli(['ablate', '--model', model, '--budget', '0.2', '--seed', seed], 'ablate')) : undefined;
  const plots = join(dir, 'plots');
  const sweep = await stage('sasha eval --budgets', false, () => sashaCli(['eval', '--model', model, '--budgets', sweepBudgets.join(','), '--plots', plots], 'eval sweep'));
  const compression = await stage('sasha compression', false, () => sashaCli(['compression', '--model', model, '--subset', 'test'], 'compression'));
  const heatmaps = join(dir, 'heatmaps');
  const interpret = await stage('sasha interpret', false, () =>
    sashaCli(['interpret', '--model', model, '--budget', '0.2', '--annotations', join(cohortDir, 'truth'), '--slides', join(cohortDir, 'slides'), '--heatmaps', heatmaps, '--heatmap-limit', '6'], 'interpret'),
  );

  // The record: each command's printed table, and the figures.
  mkdirSync(FIGURES, { recursive: true });
  const fig = (name: string) => `figures/${section}/${name}`;
  for (const f of ['accuracy_ece_vs_budget', 'reliability_f0.2']) {
    for (const ext of ['svg', 'png']) if (existsSync(join(plots, `${f}.${ext}`))) copyFileSync(join(plots, `${f}.${ext}`), join(FIGURES, `${f}.${ext}`));
  }
  // the figure: the learned policy's heatmap of the slide with the most tumour among those drawn
  const tumourCells = new Map(cohortSummary.slides.map((x) => [x.id, x.tumourCells] as const));
  const slideOf = (h: string) => basename(h, '.png');
  const heat = (interpret.result!.heatmaps as string[])
    .filter((h) => h.includes('/learned/'))
    .sort((a, b) => (tumourCells.get(slideOf(b)) ?? 0) - (tumourCells.get(slideOf(a)) ?? 0))[0];
  // a palette PNG keeps the figure small in the repository
  if (heat) await sharp(heat).png({ palette: true, quality: 90 }).toFile(join(FIGURES, 'heatmap_learned.png'));
  const split = JSON.parse(readFileSync(files.split, 'utf8')) as { train_names: string[]; val_names: string[]; test_names: string[] };
  const m = manifest() as {
    hafed: { train: { epochs: number; lr: number } };
    tsu: { train: { epochs: number } };
    policies: Record<string, { epochs: number; ppo: { actorLearningRate: number } }>;
  };
  const trained = Object.keys(m.policies).filter((b) => !b.includes('-'));
  const c = cohortSummary.config;
  const body = [
    `Cohort${cohortFrom ? ` ${basename(cohortFrom)} of bench/digits_table.ts` : ''}: ${c.numSlides} digit slides (N ${c.minPatches}-${c.maxPatches} patches of 32 px at level 2, k = 16), ` +
      `${cohortSummary.slides.filter((s) => s.label === 1).length} positive; split ${split.train_names.length} / ${split.val_names.length} / ${split.test_names.length}. ` +
      `Encoder d = ${encoder.dim} (9 vs 4: ${encoder.tumourVsMimicHighRes.toFixed(3)} at high res, ${encoder.tumourVsMimicLowRes.toFixed(3)} at low res, unseen digits). ` +
      `Training seed ${seed}: HAFED ${m.hafed.train.epochs} epochs (peak lr ${m.hafed.train.lr}), f_S ${m.tsu.train.epochs} epochs, PPO ` +
      trained.map((b) => `${m.policies[b].epochs} epochs (lr ${m.policies[b].ppo.actorLearningRate}) at f = ${b}`).join(', ') +
      (cohortFrom ? ' (the models of that benchmark where it trained them, copied; the others trained here)' : '') +
      (ablate ? '; the ablated models were trained by `sasha ablate` with the same flags and one change each' : '') +
      '. One cohort and one seed: this records what the commands print; the intervals over cohort seeds come from the policy benchmarks' +
      (ablate ? '' : ', which also hold the ablation table') +
      '.',
    '',
    ...(ablate
      ? [
          `\`sasha ablate --model ${'$'}MODEL --budget 0.2\` (p: SASHA against the row on the same test slides; McNemar exact on correctness, paired bootstrap of the AUC):`,
          '',
          fence(ablateCommand.render!(ablate.result!) ?? ''),
          '',
        ]
      : []),
    `\`sasha eval --model ${'$'}MODEL --budgets ${sweepBudgets.join(',')} --plots plots\`:`,
    '',
    fence(evalCommand.render!(sweep.result!)?.split('\nplots:')[0] ?? ''),
    '',
    `![accuracy and ECE against the budget](${fig('accuracy_ece_vs_budget.svg')})`,
    `![reliability diagram at f = 0.2](${fig('reliability_f0.2.svg')})`,
    '',
    `(PNG versions: ${fig('accuracy_ece_vs_budget.png')}, ${fig('reliability_f0.2.png')}.)`,
    '',
    `\`sasha compression --model ${'$'}MODEL --subset test\`:`,
    '',
    fence(compressionCommand.render!(compression.result!) ?? ''),
    '',
    `\`sasha interpret --model ${'$'}MODEL --budget 0.2 --annotations cohort/truth --slides cohort/slides --heatmaps heatmaps\` (the digit slides' truth files are the annotations; attention: HAFED's with every patch at high resolution):`,
    '',
    fence(interpretCommand.render!(interpret.result!) ?? ''),
    '',
    ...(heat ? [`![heatmap of the learned policy on ${slideOf(heat)} (final-state attention, zoomed patches numbered in visit order, tumour cells outlined in green)](${fig('heatmap_learned.png')})`, ''] : []),
    'Time per stage:',
    '',
    '| stage | time |',
    '| --- | --- |',
    ...times.map(([s, t]) => `| ${s} | ${t} |`),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min on ${cpus().length} cores (load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end).`,
  ].join('\n');
  console.log(body);
  console.log('\n' + encoderTable(encoder));
  if (record) {
    const cmd = `nice -n 15 npx tsx bench/digits_evaluation.ts ${process.argv.slice(2).join(' ')}`.trim();
    writeResults(
      section,
      cohortFrom
        ? `The paper's evaluation with the CLI on digit cohort ${basename(cohortFrom)} (budget sweep, compression, interpretability)`
        : "The paper's evaluation with the CLI on a small digit cohort (ablate, budget sweep, compression, interpretability)", cmd, 'wasm', body);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
