/**
 * Feature extraction speed on a synthetic pyramidal JPEG TIFF written by the generator.
 *
 * Measured side by side in one process, on the same patches:
 * - end-to-end extraction (`extractFeatures`: tile reads, JPEG decodes, encoding) with the
 *   built-in CNN, the slide read in a worker thread (`openSlideInWorker`) and on the main thread
 *   (`openSlide`);
 * - encoder only: the same batches read beforehand, then only tensor creation + encode;
 * - reading only: the same batches read with no encoder.
 * The ratio end-to-end / encoder-only shows how much of the reading is hidden behind encoding
 * (target <= 1.15); it is taken per repetition against the encoder-only runs just before and
 * after, then the median is reported. The JPEG decoder is openSlide's default (`auto`: libjpeg-turbo
 * in WebAssembly in the worker, sharp on the main thread) unless `--decoder` names one.
 *
 * `--encoder model.onnx` runs the same measurement with an ONNX encoder through `onnxEncoder`
 * (onnxruntime-node, `--threads` intra-op threads) instead of the built-in CNN; its section is
 * `extraction-onnx` (bench/onnx_encoder.ts exports the ViT-S/16 it is run with).
 *
 * Run: npx tsx bench/extraction.ts [--size 8192x6144] [--reps 3] [--decoder auto|wasm|sharp|geotiff] [--input 224]
 *      [--encoder builtin|PATH.onnx] [--threads 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '../src/core/index.js';
import {
  builtinEncoder,
  encodePatches,
  extractFeatures,
  planFromTiling,
  resolveExtractConfig,
  tileSlide,
  type ExtractionPlan,
  type PatchEncoder,
  type SlideSource,
} from '../src/wsi/index.js';
import { openSlide, type JpegDecoderChoice } from '../src/node/open_slide.js';
import { openSlideInWorker } from '../src/node/worker_slide_source.js';
import { writeSyntheticSlide } from '../src/node/synthetic_slide.js';
import { loadOnnxEncoder } from '../src/node/onnx_encoder.js';
import { median, table, writeResults } from './results.js';
import { batchStarts } from '../src/wsi/extract.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '8192x6144' },
    reps: { type: 'string', default: '3' },
    decoder: { type: 'string', default: 'auto' },
    input: { type: 'string', default: '224' },
    'batch-size': { type: 'string', default: '32' },
    encoder: { type: 'string', default: 'builtin' },
    threads: { type: 'string', default: '2' },
    'no-write': { type: 'boolean', default: false },
  },
});
const [W, H] = values.size!.split('x').map(Number);
const reps = Number(values.reps);
const decoder = values.decoder as JpegDecoderChoice;
const inputSize = Number(values.input);
const batchSize = Number(values['batch-size']);
const encoderArg = values.encoder!;
const onnx = encoderArg !== 'builtin';
const threads = Number(values.threads);
const log = (m: string) => process.stderr.write(m + '\n');

const backend = await initBackend();
const loadStart = loadavg()[0];
const dir = mkdtempSync(join(tmpdir(), 'sasha-bench-extract-'));
try {
  const t0 = performance.now();
  const slide = await writeSyntheticSlide(join(dir, 'bench_slide.tif'), { width: W, height: H, seed: 11, numTissue: 3, numLesions: 4, tissueRadius: [0.28, 0.36] });
  log(`wrote ${W} x ${H} synthetic slide in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Low-res level 1 (downsample 2) and high-res level 0: r = 2, k = 4; 256-pixel patches, one tile each.
  const open = () => openSlide(slide.path, { jpegDecoder: decoder });
  const openWorker = () => openSlideInWorker(slide.path, { jpegDecoder: decoder });
  const src0 = await open();
  const tiling = await tileSlide(src0, { tissue: { aT: 1, aH: 1 }, lowRes: { level: 1 }, highRes: { level: 0 } });
  await src0.close();
  const plan = planFromTiling(tiling);
  const N = tiling.grid.count;
  const k = tiling.subPatches!.k;
  const images = N * (1 + k);
  const encoder: PatchEncoder = onnx ? await loadOnnxEncoder(encoderArg, { threads, batchSize }) : builtinEncoder({ inputSize, seed: 0 });
  const encoderLabel = onnx
    ? `ONNX encoder \`${basename(encoderArg)}\` through onnxEncoder (onnxruntime-node, ${threads} intra-op threads, d = ${encoder.dim}, input ${encoder.inputSize})`
    : `Built-in CNN (d = ${encoder.dim}, input ${inputSize}, random weights)`;
  log(`N = ${N} low-res patches, k = ${k}: ${images} patches to encode; ${encoderLabel}, batch ${batchSize}`);

  /** Reads the plan's batches exactly as extractFeatures does (same order and batching). */
  async function readAll(src: SlideSource, p: ExtractionPlan): Promise<Uint8Array[]> {
    const per = 1 + k;
    const size = p.patchSize;
    const out: Uint8Array[] = [];
    const starts = batchStarts(images, resolveExtractConfig({ batchSize }));
    for (let b = 0; b + 1 < starts.length; b++) {
      const start = starts[b];
      const count = starts[b + 1] - start;
      const buf = new Uint8Array(count * size * size * 3);
      await Promise.all(
        Array.from({ length: count }, async (_, t) => {
          const m = start + t;
          const i = Math.floor(m / per);
          const j = m % per;
          const px =
            j === 0
              ? await src.readRegion(p.lowResLevel, p.coords[2 * i], p.coords[2 * i + 1], size, size)
              : await src.readRegion(p.highResLevel!, p.highResCoords![(i * k + j - 1) * 2], p.highResCoords![(i * k + j - 1) * 2 + 1], size, size);
          buf.set(px, t * size * size * 3);
        }),
      );
      out.push(buf);
    }
    return out;
  }

  async function encodeAll(batches: Uint8Array[], enc: PatchEncoder): Promise<void> {
    const size = plan.patchSize;
    for (const b of batches) {
      const count = b.length / (size * size * 3);
      const x = tf.tensor4d(new Float32Array(b), [count, size, size, 3]);
      const y = await encodePatches(enc, x);
      await y.data();
      tf.dispose([x, y]);
    }
  }

  // Warm-up: compile kernels and fill the OS page cache.
  {
    const src = await open();
    const pre = await readAll(src, plan);
    await encodeAll(pre.slice(0, 2), encoder);
    await src.close();
  }

  // Each repetition times the encoder alone right before and right after the two end-to-end
  // runs, and each end-to-end time is divided by the mean of those two: on a shared machine the
  // load drifts, and a ratio of neighbouring runs is steadier than a ratio of medians.
  const times = { e2e: [] as number[], e2eMain: [] as number[], encoder: [] as number[], read: [] as number[] };
  const ratios = { e2e: [] as number[], e2eMain: [] as number[] };
  const timeEncoder = async (pre: Uint8Array[]) => {
    const t = performance.now();
    await encodeAll(pre, encoder);
    return (performance.now() - t) / 1000;
  };
  for (let r = 0; r < reps; r++) {
    let src: SlideSource = await openWorker();
    let t = performance.now();
    const pre = await readAll(src, plan);
    times.read.push((performance.now() - t) / 1000);
    await src.close?.();

    const before = await timeEncoder(pre);

    // Alternate the order of the two readers between repetitions.
    const order = r % 2 === 0 ? (['worker', 'main'] as const) : (['main', 'worker'] as const);
    const got: Record<string, number> = {};
    for (const which of order) {
      src = which === 'worker' ? await openWorker() : await open();
      t = performance.now();
      await extractFeatures(src, plan, encoder, { config: { batchSize } });
      got[which] = (performance.now() - t) / 1000;
      await src.close?.();
    }
    const after = await timeEncoder(pre);
    const enc = (before + after) / 2;
    times.encoder.push(enc);
    times.e2e.push(got.worker);
    times.e2eMain.push(got.main);
    ratios.e2e.push(got.worker / enc);
    ratios.e2eMain.push(got.main / enc);
    log(
      `rep ${r + 1}/${reps}: encoder only ${before.toFixed(2)} / ${after.toFixed(2)} s, end-to-end ${got.worker.toFixed(2)} s ` +
        `(ratio ${ratios.e2e[r].toFixed(3)}), reader on the main thread ${got.main.toFixed(2)} s (ratio ${ratios.e2eMain[r].toFixed(3)}), ` +
        `reading only ${times.read[r].toFixed(2)} s`,
    );
  }
  encoder.dispose();

  const m = {
    e2e: median(times.e2e),
    e2eMain: median(times.e2eMain),
    encoder: median(times.encoder),
    read: median(times.read),
  };
  const ratio = median(ratios.e2e);
  const ratioMain = median(ratios.e2eMain);
  const rows: (string | number)[][] = [
    ['end-to-end extraction, slide read in a worker thread (`openSlideInWorker`)', m.e2e.toFixed(2), (images / m.e2e).toFixed(1), (N / m.e2e).toFixed(1), ratio.toFixed(3)],
    ['end-to-end extraction, slide read on the main thread (`openSlide`)', m.e2eMain.toFixed(2), (images / m.e2eMain).toFixed(1), (N / m.e2eMain).toFixed(1), ratioMain.toFixed(3)],
    ['encoder only (patches read beforehand)', m.encoder.toFixed(2), (images / m.encoder).toFixed(1), (N / m.encoder).toFixed(1), '1.000'],
    ['reading only (worker, no encoder)', m.read.toFixed(2), (images / m.read).toFixed(1), (N / m.read).toFixed(1), (m.read / m.encoder).toFixed(3)],
  ];
  const body = [
    `Synthetic ${W} x ${H} slide (JPEG q90, 256-pixel tiles, 2x pyramid), low-res level 1 and high-res level 0 (r = 2, k = ${k}), ` +
      `256-pixel patches: N = ${N} low-res patches and ${N * k} sub-patches (${images} encoded). ${encoderLabel}, ` +
      `batches of ${batchSize} after a first batch of ${resolveExtractConfig({}).firstBatchSize} (doubling), JPEG decoder \`${decoder}\`. Median of ${reps} runs; OS page cache warm. ` +
      `Machine load average (1 min) ${loadStart.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end, on ${cpus().length} cores: ` +
      'hiding the reading needs a core the encoder does not use.',
    '',
    table(['run', 'seconds (median)', 'patches/s (all)', 'low-res patches/s', 'time / encoder-only (median of per-repetition ratios)'], rows),
    '',
    `Per-repetition ratios, worker reader: ${ratios.e2e.map((v) => v.toFixed(3)).join(', ')}; main-thread reader: ${ratios.e2eMain.map((v) => v.toFixed(3)).join(', ')}.`,
    '',
    `End-to-end / encoder-only: **${ratio.toFixed(3)}** with the worker reader (target <= 1.15); ${ratioMain.toFixed(3)} with the main-thread reader.`,
  ].join('\n');
  process.stdout.write(body + '\n');
  if (!values['no-write']) {
    const cmd = onnx
      ? `nice -n 10 npx tsx bench/extraction.ts --size ${W}x${H} --reps ${reps} --decoder ${decoder} --batch-size ${batchSize} --encoder ${encoderArg.replace(/^.*?bench\//, 'bench/')} --threads ${threads}`
      : `npx tsx bench/extraction.ts --size ${W}x${H} --reps ${reps} --decoder ${decoder} --input ${inputSize} --batch-size ${batchSize}`;
    const section = onnx ? 'extraction-onnx' : decoder === 'auto' ? 'extraction' : `extraction-${decoder}`;
    const title = onnx ? 'Feature extraction speed with an ONNX encoder (ViT-S/16)' : `Feature extraction speed (${decoder} JPEG decoder)`;
    writeResults(section, title, cmd, backend, body);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
