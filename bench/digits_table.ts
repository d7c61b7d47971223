/**
 * The digit benchmark: SASHA through the whole pixel pipeline, on slides assembled from real
 * handwritten digits (MNIST) and encoded by a CNN trained separately. Every step is what a user
 * runs: the `sasha` CLI on files.
 *
 * 1. encoder: `bench/digit_encoder.ts` (trained once; reused when its directory exists);
 * 2. slides: `writeDigitCohort` (pyramidal JPEG-tiled TIFFs, labels.csv, split.json, truth);
 * 3. `sasha tile` (tissue segmentation, 32-pixel patches at level 2);
 * 4. `sasha extract` (Z at level 2, U at level 0, r = 4, k = 16, the trained encoder);
 * 5. per seed: `sasha train hafed`, `sasha train tsu`, `sasha train policy --budget 0.2` and
 *    `--budget 0.1`, and `sasha train hafed --input lowRes` (a classifier on Z alone, no zoom);
 * 6. per seed, on the test slides: `sasha eval` for HAFED-100%, SASHA-0.2, SASHA-0.1,
 *    random-0.2, top-attention-0.2, global-update-0.2, and the Z-only classifier;
 * 7. the table (mean +- std over seeds), the time of each stage, and where the policies zoomed
 *    (share of tumour patches visited, from the slides' ground truth).
 *
 * Stages whose output exists are skipped (their time is then reported as cached), so an
 * interrupted run can be resumed with the same command.
 *
 * Run: `nice -n 10 npx tsx bench/digits_table.ts [--dir bench/out/digits] [--slides 120]
 *   [--min-patches 100] [--max-patches 500] [--seeds 0,1,2] [--hafed-epochs 30] [--hafed-lr 2e-3] [--tsu-epochs 200]
 *   [--policy-epochs 10] [--policy-lr 1e-4] [--no-record]`
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { meanStd } from '../src/index.js';
import { digitTruthAt, DEFAULT_DIGIT_SLIDE_CONFIG } from '../src/wsi/synthetic/index.js';
import { H5FeatureDataset, loadMnistDigits, readDigitTruth, writeDigitCohort } from '../src/node/index.js';
import { encoderTable, trainDigitEncoder, type DigitEncoderReport } from './digit_encoder.js';
import { table, writeResults } from './results.js';
import { sashaCli } from './sasha_cli.js';


function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = resolve(arg('dir', 'bench/out/digits'));
const numSlides = Number(arg('slides', '120'));
const minPatches = Number(arg('min-patches', '100'));
const maxPatches = Number(arg('max-patches', '500'));
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const hafedEpochs = arg('hafed-epochs', '30');
const hafedLr = arg('hafed-lr', '2e-3');
const tsuEpochs = arg('tsu-epochs', '200');
const policyEpochs = arg('policy-epochs', '10');
const policyLr = arg('policy-lr', '1e-4');
const record = !process.argv.includes('--no-record');
const log = (m: string) => process.stderr.write(`[digits ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** Runs `sasha <args> --json` (the CLI from source) and returns its JSON result. */
async function sasha(args: string[], label: string): Promise<Record<string, unknown>> {
  return (await sashaCli(args, label)).result!;
}

const stageTimes: { stage: string; seconds: number | null; note: string }[] = [];
async function stage<T>(name: string, cached: boolean, run: () => Promise<T>, note = ''): Promise<T> {
  log(`${name}${cached ? ' (cached)' : ''}...`);
  const t0 = performance.now();
  const out = await run();
  const s = (performance.now() - t0) / 1000;
  stageTimes.push({ stage: name, seconds: cached ? null : s, note });
  log(`${name}: ${s.toFixed(1)} s`);
  return out;
}

const METHODS = ['HAFED-100%', 'SASHA-0.2', 'SASHA-0.1', 'random-0.2', 'top-attention-0.2', 'global-update-0.2', 'Z only (no zoom)'] as const;
type Method = (typeof METHODS)[number];
interface EvalResult {
  accuracy: number;
  auc: number;
  f1: number;
  seconds: number;
  zoomedFraction?: number;
  predictions?: string;
}

/** Where a policy zoomed: over the positive test slides, the share of tumour patches visited and of slides with one visited. */
async function zoomStats(predictionsCsv: string, lrH5: string, truthDir: string): Promise<{ tumourPatchRecall: number; slideHitRate: number }> {
  const rows = readFileSync(predictionsCsv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const ds = await H5FeatureDataset.open({ lrH5 });
  let found = 0;
  let total = 0;
  let hit = 0;
  let positives = 0;
  try {
    for (const r of rows) {
      const [id, label] = r;
      if (label !== '1') continue;
      const truth = readDigitTruth(join(truthDir, `${id}.json`));
      const bag = await ds.load(id, ['coords']);
      const perPatch = digitTruthAt(truth, bag.coords!, truth.cellSize * truth.ratio);
      const zoomed = new Set((r[r.length - 1] ?? '').split(' ').filter((s) => s !== '').map(Number));
      let any = false;
      for (let i = 0; i < perPatch.tumour.length; i++) {
        if (perPatch.tumour[i] === 0) continue;
        total++;
        if (zoomed.has(i)) {
          found++;
          any = true;
        }
      }
      positives++;
      if (any) hit++;
    }
  } finally {
    ds.close();
  }
  return { tumourPatchRecall: total ? found / total : NaN, slideHitRate: positives ? hit / positives : NaN };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg()[0];
  await mkdir(dir, { recursive: true });
  const encoderDir = join(dir, 'encoder');
  const cohortDir = join(dir, 'cohort');
  const tilesDir = join(dir, 'tiles');
  const featDir = join(dir, 'features');
  const lrH5 = join(featDir, 'lr.h5');
  const hrH5 = join(featDir, 'hr.h5');

  // 1. The encoder, trained apart from the slides (its own digit pool).
  const encoderCached = existsSync(join(encoderDir, 'model.json'));
  const encoder = await stage('train the encoder (bench/digit_encoder.ts)', encoderCached, async () => {
    if (encoderCached) return (JSON.parse(readFileSync(join(encoderDir, 'encoder.json'), 'utf8')) as { report: DigitEncoderReport }).report;
    return trainDigitEncoder({ out: encoderDir, log });
  });

  // 2. The slides.
  const cohortConfig = { ...DEFAULT_DIGIT_SLIDE_CONFIG, numSlides, minPatches, maxPatches };
  const slidesCached = existsSync(join(cohortDir, 'cohort.json')) && existsSync(join(cohortDir, 'slides', `digits_${String(numSlides - 1).padStart(3, '0')}.tif`));
  const files = await stage('write the slides (writeDigitCohort)', slidesCached, async () =>
    writeDigitCohort(cohortDir, await loadMnistDigits(), cohortConfig, {
      onProgress: (e) => {
        if (e.done % 20 === 0 || e.done === e.total) log(`slides ${e.done}/${e.total}`);
      },
    }),
  );
  const summary = JSON.parse(readFileSync(files.manifest, 'utf8')) as {
    slides: { label: number; tumourCells: number; mimicCells: number; tissuePatches: number; width: number; height: number }[];
    lookalikes: { test: { lowResAccuracyKept: number } };
  };

  // 3-4. Tiling and extraction with the CLI.
  const wsiFlags = ['--patch-size', '32', '--a-t', '0.5', '--a-h', '0.5'];
  const tiled = await stage('sasha tile', existsSync(join(tilesDir, 'tiling.json')), () =>
    existsSync(join(tilesDir, 'tiling.json'))
      ? Promise.resolve({ patches: null })
      : sasha(['tile', join(cohortDir, 'slides'), '--out', tilesDir, '--level', '2', ...wsiFlags], 'tile'),
  );
  const extracted = await stage('sasha extract', existsSync(lrH5) && existsSync(hrH5), () =>
    existsSync(lrH5) && existsSync(hrH5)
      ? Promise.resolve({ patches: null, subPatches: null })
      : sasha(
          [
            'extract',
            join(cohortDir, 'slides'),
            '--out',
            featDir,
            '--encoder',
            encoderDir,
            '--lr-level',
            '2',
            '--hr-level',
            '0',
            '--labels',
            files.labels,
            '--batch-size',
            '128',
            ...wsiFlags,
          ],
          'extract',
        ),
  );

  // 5-6. Training and evaluation per seed.
  const results: Record<Method, EvalResult>[] = [];
  const zoom: Record<string, { tumourPatchRecall: number; slideHitRate: number }[]> = {};
  for (const seed of seeds) {
    const model = join(dir, 'models', `seed-${seed}`);
    const zModel = join(dir, 'models', `seed-${seed}-lowres`);
    const manifest = () => (existsSync(join(model, 'sasha.json')) ? (JSON.parse(readFileSync(join(model, 'sasha.json'), 'utf8')) as Record<string, unknown>) : {});
    const hasHafed = Boolean(manifest().hafed);
    await stage(`seed ${seed}: sasha train hafed`, hasHafed, () =>
      hasHafed
        ? Promise.resolve({})
        : sasha(
            ['train', 'hafed', '--lr-h5', lrH5, '--hr-h5', hrH5, '--split', files.split, '--out', model, '--seed', String(seed), '--epochs', hafedEpochs, '--lr', hafedLr],
            `seed ${seed} hafed`,
          ),
    );
    const hasTsu = Boolean(manifest().tsu);
    await stage(`seed ${seed}: sasha train tsu`, hasTsu, () =>
      hasTsu ? Promise.resolve({}) : sasha(['train', 'tsu', '--model', model, '--seed', String(seed), '--epochs', tsuEpochs], `seed ${seed} tsu`),
    );
    for (const budget of ['0.2', '0.1']) {
      const has = existsSync(join(model, `policy-${budget}`, 'model.json'));
      await stage(`seed ${seed}: sasha train policy --budget ${budget}`, has, () =>
        has
          ? Promise.resolve({})
          : sasha(
              ['train', 'policy', '--model', model, '--budget', budget, '--seed', String(seed), '--epochs', policyEpochs, '--lr', policyLr],
              `seed ${seed} policy ${budget}`,
            ),
      );
    }
    const trainedZ = existsSync(join(zModel, 'sasha.json'));
    await stage(`seed ${seed}: sasha train hafed --input lowRes`, trainedZ, () =>
      trainedZ
        ? Promise.resolve({})
        : sasha(
            ['train', 'hafed', '--input', 'lowRes', '--lr-h5', lrH5, '--split', files.split, '--out', zModel, '--seed', String(seed), '--epochs', hafedEpochs, '--lr', hafedLr],
            `seed ${seed} Z only`,
          ),
    );
    const evalOne = async (name: Method, m: string, flags: string[]): Promise<EvalResult> => {
      const predictions = join(dir, 'predictions', `seed-${seed}`, `${name.replace(/[^a-z0-9.]+/gi, '_')}.csv`);
      await mkdir(join(dir, 'predictions', `seed-${seed}`), { recursive: true });
      const r = await sasha(['eval', '--model', m, '--subset', 'test', '--predictions', predictions, ...flags], `seed ${seed} eval ${name}`);
      return { accuracy: Number(r.accuracy), auc: Number(r.auc), f1: Number(r.f1), seconds: Number(r.seconds), zoomedFraction: r.zoomedFraction as number | undefined, predictions };
    };
    const out = await stage(`seed ${seed}: sasha eval (7 rows)`, false, async () => {
      const o = {} as Record<Method, EvalResult>;
      o['HAFED-100%'] = await evalOne('HAFED-100%', model, ['--budget', '1']);
      o['SASHA-0.2'] = await evalOne('SASHA-0.2', model, ['--budget', '0.2']);
      o['SASHA-0.1'] = await evalOne('SASHA-0.1', model, ['--budget', '0.1']);
      o['random-0.2'] = await evalOne('random-0.2', model, ['--budget', '0.2', '--policy', 'random', '--seed', String(seed)]);
      o['top-attention-0.2'] = await evalOne('top-attention-0.2', model, ['--budget', '0.2', '--policy', 'top-attention']);
      o['global-update-0.2'] = await evalOne('global-update-0.2', model, ['--budget', '0.2', '--update', 'global']);
      o['Z only (no zoom)'] = await evalOne('Z only (no zoom)', zModel, ['--budget', '1']);
      return o;
    });
    results.push(out);
    for (const name of ['SASHA-0.2', 'SASHA-0.1', 'random-0.2', 'top-attention-0.2'] as const) {
      (zoom[name] ??= []).push(await zoomStats(out[name].predictions!, lrH5, join(cohortDir, 'truth')));
    }
    log(`seed ${seed}: ` + METHODS.map((m) => `${m} ${out[m].accuracy.toFixed(3)}`).join(', '));
  }

  // 7. The table.
  const fmt = (xs: number[]) => {
    const { mean, std } = meanStd(xs);
    return `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
  };
  const hafedAcc = meanStd(results.map((r) => r['HAFED-100%'].accuracy)).mean;
  const rows = METHODS.map((m) => {
    const acc = results.map((r) => r[m].accuracy);
    return [m, fmt(acc), fmt(results.map((r) => r[m].auc)), fmt(results.map((r) => r[m].f1)), (meanStd(acc).mean / hafedAcc).toFixed(3), acc.map((a) => a.toFixed(3)).join(' / ')];
  });
  const zoomRows = Object.entries(zoom).map(([m, z]) => [m, fmt(z.map((v) => v.tumourPatchRecall)), fmt(z.map((v) => v.slideHitRate))]);
  const s = summary.slides;
  const pos = s.filter((x) => x.label === 1);
  const cells = (x: { tissuePatches: number }) => x.tissuePatches * 16;
  const tumourShare = pos.map((x) => x.tumourCells / cells(x));
  const nTest = JSON.parse(readFileSync(files.split, 'utf8')).test_names.length as number;
  const fmtS = (v: number | null) => (v === null ? 'cached' : v < 120 ? `${v.toFixed(0)} s` : `${(v / 60).toFixed(1)} min`);
  const body = [
    `Cohort: ${numSlides} digit slides (N ${minPatches}-${maxPatches} patches of 32 px at level 2, r = 4, k = 16 cells of 32 px at level 0; ` +
      `${pos.length} positive; ${nTest} test slides; tumour = 9, mimic = 4 on lesion stroma, normal = other digits). ` +
      `Tumour covers ${(100 * Math.min(...tumourShare)).toFixed(2)}%-${(100 * Math.max(...tumourShare)).toFixed(1)}% of a positive slide's cells ` +
      `(median ${(100 * tumourShare.sort((a, b) => a - b)[Math.floor(tumourShare.length / 2)]).toFixed(1)}%); ` +
      `${s.filter((x) => x.label === 0 && x.mimicCells > 0).length} of ${s.length - pos.length} negatives hold mimic. ` +
      `Low-res pixel classifier on the kept 9s and 4s (test pool): ${summary.lookalikes.test.lowResAccuracyKept.toFixed(3)}.`,
    `Encoder: d = ${encoder.dim}, trained apart on its own digits; 10-digit accuracy ${encoder.digitAccuracy.toFixed(3)}, ` +
      `9 vs 4 at high res ${encoder.tumourVsMimicHighRes.toFixed(3)}, at low res ${encoder.tumourVsMimicLowRes.toFixed(3)} (unseen digits).`,
    `Training per seed: HAFED ${hafedEpochs} epochs with peak lr ${hafedLr} (also the Z-only classifier), f_S ${tsuEpochs} epochs, PPO ${policyEpochs} epochs with lr ${policyLr} (actor and critic), ` +
      `otherwise the CLI defaults (CAMELYON16 column, tau 0.95, each row rewritten at most once). Seeds ${seeds.join(', ')}.`,
    'Mean ± std over seeds (population std); "x HAFED" is the mean accuracy over the mean HAFED-100% accuracy.',
    '',
    table(['method', 'accuracy', 'AUC', 'F1', 'x HAFED', 'accuracy per seed'], rows),
    '',
    'Where the policies zoomed (positive test slides; a tumour patch is a low-res patch holding a tumour cell):',
    '',
    table(['policy', 'share of tumour patches zoomed', 'share of positive slides with a tumour patch zoomed'], zoomRows),
    '',
    'Time per stage:',
    '',
    table(['stage', 'time'], stageTimes.map((t) => [t.stage, fmtS(t.seconds)])),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min on ${cpus().length} cores (load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at the end); ` +
      `extraction: ${String(extracted.patches ?? '?')} patches and ${String(extracted.subPatches ?? '?')} sub-patches; tiling: ${String(tiled.patches ?? '?')} patches.`,
  ].join('\n');
  console.log(body);
  console.log('\n' + encoderTable(encoder));
  if (record) {
    const cmd = `nice -n 10 npx tsx bench/digits_table.ts ${process.argv.slice(2).join(' ')}`.trim();
    writeResults('digits-table', 'SASHA on digit slides through the whole pixel pipeline (Table 1 and ablation)', cmd, 'wasm', body);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
