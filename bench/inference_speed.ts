/**
 * Inference speed from pixels: SASHA with lazy zoom (f = 0.2 and 0.1) against full-resolution
 * HAFED, with the same built-in encoder, on the same synthetic pyramidal TIFF, in one process.
 *
 * Full resolution reads and encodes the N k high-resolution sub-patches and classifies V. SASHA
 * reads and encodes the N low-resolution patches, then only the k sub-patches of each of the
 * T = ceil(f N) patches the policy zooms into: `N + T k` encodes instead of `N k`. When the
 * encoder dominates, the time ratio full / SASHA approaches the encoder-bound limit
 * `N k / (N + f N k)`, printed next to the measured ratio.
 *
 * The model is trained in this script, quickly (a few epochs on the features of a few small
 * generated slides): its weights are not meant to classify well. Only speed is measured here.
 * Each repetition runs every mode once on a freshly opened slide (read in a worker thread, as
 * `sasha infer` does), the order rotating between repetitions; the ratios are taken within a
 * repetition and their median reported, for wall-clock time and for the process's CPU time
 * (all threads; steadier when other jobs load the machine). SASHA runs with its default
 * read-ahead of the next candidates' sub-patches, and once more without it.
 *
 * Run: npx tsx bench/inference_speed.ts [--size 8192x6144] [--reps 4] [--input 224]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InMemoryDataset, initBackend, tf, type SlideBag } from '../src/core/index.js';
import { SashaModel, analyzeSlide, trainPolicy, trainSasha, type AnalyzeSlideConfig, type SlideAnalysis } from '../src/pipeline/index.js';
import { builtinEncoder, extractFeatures, planFromTiling, tileSlide, type PatchEncoder } from '../src/wsi/index.js';
import { openSlide, openSlideInWorker, writeSyntheticSlide } from '../src/node/index.js';
import { median, table, writeResults } from './results.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '8192x6144' },
    reps: { type: 'string', default: '4' },
    input: { type: 'string', default: '224' },
    'no-write': { type: 'boolean', default: false },
  },
});
const [W, H] = values.size!.split('x').map(Number);
const reps = Number(values.reps);
const inputSize = Number(values.input);
const log = (m: string) => process.stderr.write(m + '\n');

// Low-res level 2 (downsample 4), high-res level 0: r = 4, k = 16 (the reference's levels 3 / 1
// have the same ratio); 128-pixel patches and sub-patches.
const PATCH = 128;
const TILING = { tissue: { aT: 1, aH: 1 }, lowRes: { level: 2 }, highRes: { level: 0 }, grid: { patchSize: PATCH } };
const CONFIG: Partial<AnalyzeSlideConfig> = { lowRes: { level: 2 }, highRes: { level: 0 }, grid: { patchSize: PATCH }, tissue: { aT: 1, aH: 1 }, batchSize: 32 };

const backend = await initBackend();
const loadStart = loadavg()[0];
const t00 = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'sasha-bench-infer-'));
/** Counts the patches it encodes. */
function counting(inner: PatchEncoder): PatchEncoder & { encoded: number } {
  const enc = {
    dim: inner.dim,
    inputSize: inner.inputSize,
    name: inner.name,
    encoded: 0,
    encode(batch: tf.Tensor4D): tf.Tensor2D {
      enc.encoded += batch.shape[0];
      return inner.encode(batch);
    },
    dispose: () => inner.dispose(),
  };
  return enc;
}

const encoder = counting(builtinEncoder({ inputSize, seed: 0 }));
try {
  // 1. A quickly trained model: features of four small slides (2048 x 1536), a few epochs per stage.
  let t = performance.now();
  const bags: SlideBag[] = [];
  for (let i = 0; i < 4; i++) {
    const label = i % 2;
    const s = await writeSyntheticSlide(join(dir, `train_${i}.tif`), { seed: 100 + i, numLesions: label ? 2 : 0 });
    const src = await openSlide(s.path);
    const f = await extractFeatures(src, planFromTiling(await tileSlide(src, TILING)), encoder);
    await src.close();
    bags.push({
      id: `train_${i}`,
      label,
      lowRes: tf.tensor2d(f.lowRes, [f.n, f.dim]),
      highRes: tf.tensor3d(f.highRes!, [f.n, f.k, f.dim]),
    });
  }
  const dataset = new InMemoryDataset(bags);
  const split = { train: ['train_0', 'train_1'], val: ['train_2', 'train_3'], test: [] as string[] };
  const trained = await trainSasha({
    dataset,
    split,
    seed: 1,
    config: { hafedTrain: { epochs: 3 }, tsu: { epochs: 3 }, policyEpochs: 2, env: { budget: 0.2 } },
  });
  const model02 = trained.model;
  const p01 = await trainPolicy({ classifier: model02.hafed!, fS: model02.fS, dataset: trained.withV, split, env: { ...model02.env, budget: 0.1 }, epochs: 2, seed: 1 });
  const model01 = new SashaModel({ hafed: model02.hafed, fS: model02.fS, policy: p01.model, env: { ...model02.env, budget: 0.1 } });
  const trainSeconds = (performance.now() - t) / 1000;
  log(`model trained on ${bags.length} small slides (${dataset.k} sub-patches per patch, d = ${dataset.dim}) in ${trainSeconds.toFixed(1)} s`);

  // 2. The bench slide.
  t = performance.now();
  const slide = await writeSyntheticSlide(join(dir, 'bench_slide.tif'), { width: W, height: H, seed: 11, numTissue: 3, numLesions: 4, tissueRadius: [0.28, 0.36] });
  log(`wrote ${W} x ${H} synthetic slide in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  type Mode = 'full' | 'sasha-0.2' | 'sasha-0.1' | 'sasha-0.2-no-read-ahead';
  const MODES: Mode[] = ['full', 'sasha-0.2', 'sasha-0.1', 'sasha-0.2-no-read-ahead'];
  const run = async (mode: Mode): Promise<{ seconds: number; cpu: number; res: SlideAnalysis; encoded: number }> => {
    const src = await openSlideInWorker(slide.path);
    const before = encoder.encoded;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const res =
      mode === 'full'
        ? await analyzeSlide(model02, src, { encoder, config: { ...CONFIG, mode: 'fullResolution' } })
        : await analyzeSlide(mode === 'sasha-0.1' ? model01 : model02, src, { encoder, config: { ...CONFIG, ...(mode === 'sasha-0.2-no-read-ahead' ? { speculate: 0 } : {}) } });
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    await src.close();
    return { seconds, cpu: (c.user + c.system) / 1e6, res, encoded: encoder.encoded - before };
  };

  // Warm-up: kernels of every batch shape, OS page cache.
  await run('sasha-0.2');
  const empty = (): Record<Mode, number[]> => ({ full: [], 'sasha-0.2': [], 'sasha-0.1': [], 'sasha-0.2-no-read-ahead': [] });
  const times = empty();
  const ratios = empty();
  const cpuTimes = empty();
  const cpuRatios = empty();
  const last = {} as Record<Mode, { res: SlideAnalysis; encoded: number }>;
  for (let r = 0; r < reps; r++) {
    const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]);
    const got = {} as Record<Mode, number>;
    const gotCpu = {} as Record<Mode, number>;
    for (const mode of order) {
      const out = await run(mode);
      got[mode] = out.seconds;
      gotCpu[mode] = out.cpu;
      times[mode].push(out.seconds);
      cpuTimes[mode].push(out.cpu);
      last[mode] = { res: out.res, encoded: out.encoded };
    }
    for (const mode of MODES) {
      ratios[mode].push(got.full / got[mode]);
      cpuRatios[mode].push(gotCpu.full / gotCpu[mode]);
    }
    log(`rep ${r + 1}/${reps}: ` + MODES.map((m) => `${m} ${got[m].toFixed(2)} s (CPU ${gotCpu[m].toFixed(2)} s)`).join(', '));
  }

  const N = last.full.res.counts.patches;
  const k = last.full.res.counts.k;
  const limit = (f: number) => (N * k) / (N + Math.ceil(f * N) * k);
  const budgetOf = (m: Mode) => (m === 'full' ? 1 : m === 'sasha-0.1' ? 0.1 : 0.2);
  const label: Record<Mode, string> = {
    full: 'HAFED, full resolution (every sub-patch)',
    'sasha-0.2': 'SASHA-0.2, lazy zoom',
    'sasha-0.1': 'SASHA-0.1, lazy zoom',
    'sasha-0.2-no-read-ahead': 'SASHA-0.2, lazy zoom, no read-ahead (speculate 0)',
  };
  const rows = MODES.map((m) => {
    const { res, encoded } = last[m];
    const tm = res.timings;
    const split =
      m === 'full'
        ? `tissue ${tm.tissue.toFixed(2)}, read + encode ${tm.highResEncode.toFixed(2)}`
        : `tissue ${tm.tissue.toFixed(2)}, low-res ${tm.lowResEncode.toFixed(2)}, zoom read wait ${tm.zoomRead.toFixed(2)}, zoom encode ${tm.zoomEncode.toFixed(2)}, policy + TSU ${tm.policy.toFixed(2)}`;
    return [
      label[m],
      m === 'full' ? 0 : res.counts.steps,
      encoded,
      res.counts.highResRead,
      median(times[m]).toFixed(2),
      m === 'full' ? '1.00' : `**${median(ratios[m]).toFixed(2)}**`,
      median(cpuTimes[m]).toFixed(2),
      m === 'full' ? '1.00' : median(cpuRatios[m]).toFixed(2),
      m === 'full' ? '1.00' : limit(budgetOf(m)).toFixed(2),
      split,
    ];
  });
  const body = [
    `Synthetic ${W} x ${H} slide (JPEG q90, 256-pixel tiles, 2x pyramid), read in a worker thread. Low-res level 2, high-res level 0 ` +
      `(r = 4, k = ${k}), ${PATCH}-pixel patches: N = ${N} tissue patches, N k = ${N * k} sub-patches. Built-in CNN encoder ` +
      `(d = ${encoder.dim}, input ${inputSize}, random weights), batch 32 in the low-res and full-resolution passes, one batch of k per zoom step. ` +
      `The SASHA model (HAFED, f_S, a policy for f = 0.2 and one for f = 0.1) was **trained quickly in the script** (${bags.length} small slides, ` +
      `2-3 epochs per stage, ${trainSeconds.toFixed(0)} s): its weights are not meant to classify well; only speed is measured. ` +
      `${reps} repetitions, each running every mode once on a freshly opened slide (order rotated); speed-ups are full-resolution time / SASHA time ` +
      `within a repetition, median over repetitions. Machine load average (1 min) ${loadStart.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} ` +
      `at the end, on ${cpus().length} cores.`,
    '',
    table(
      [
        'run',
        'zoom steps T',
        'patches encoded',
        'sub-patches read',
        'wall seconds (median)',
        'wall-clock speed-up vs full (median)',
        'CPU seconds (median)',
        'CPU-time speed-up vs full (median)',
        'encoder-bound limit N k / (N + T k)',
        'wall seconds by phase (last repetition)',
      ],
      rows,
    ),
    '',
    ...MODES.filter((m) => m !== 'full').map(
      (m) => `Per-repetition speed-ups, ${m}: wall ${ratios[m].map((v) => v.toFixed(2)).join(', ')}; CPU time ${cpuRatios[m].map((v) => v.toFixed(2)).join(', ')}.`,
    ),
    '',
    `Wall clock: SASHA-0.2 reaches ${((100 * median(ratios['sasha-0.2'])) / limit(0.2)).toFixed(0)} % of its encoder-bound limit, ` +
      `SASHA-0.1 ${((100 * median(ratios['sasha-0.1'])) / limit(0.1)).toFixed(0)} %; CPU time: ${((100 * median(cpuRatios['sasha-0.2'])) / limit(0.2)).toFixed(0)} % and ` +
      `${((100 * median(cpuRatios['sasha-0.1'])) / limit(0.1)).toFixed(0)} % (CPU time counts every thread of the process, the slide reader's included, ` +
      `and is less disturbed by other load on the machine). Whole script: ${((performance.now() - t00) / 60000).toFixed(1)} min.`,
  ].join('\n');
  process.stdout.write(body + '\n');
  if (!values['no-write']) {
    writeResults('inference-speed', 'Inference from pixels: SASHA lazy zoom vs full-resolution HAFED', `npx tsx bench/inference_speed.ts --size ${W}x${H} --reps ${reps} --input ${inputSize}`, backend, body);
  }
  model01.policy?.dispose();
  model02.dispose();
} finally {
  encoder.dispose();
  rmSync(dir, { recursive: true, force: true });
}
