/**
 * ViT-S/16 speed through `onnxEncoder` (onnxruntime-node) against PyTorch on the same model and
 * the same threads, and against the built-in CNN's rate per multiply-add on the tfjs wasm
 * backend.
 *
 * The model (random weights, dim 384, 12 layers, 6 heads, 224 px) is exported by
 * `bench/vit_s16_torch.py export` into bench/out (not committed); PyTorch runs the same weights
 * in a child process (`vit_s16_torch.py serve`). For each repetition and thread count (1, 2) the
 * two contenders run back to back, the order alternating between repetitions; each time is one
 * batch of `--batch` patches (onnxEncoder: raw 224 x 224 RGB patches, normalised and laid out by
 * the encoder; PyTorch: the normalised tensor, forward pass only). The ratio ONNX Runtime /
 * PyTorch is taken per repetition, then the median is reported with the range.
 *
 * Run (niced, on an idle machine; needs Debian's python3-torch and python3-onnx):
 *   /usr/bin/python3 bench/vit_s16_torch.py export
 *   nice -n 10 npx tsx bench/onnx_encoder.ts [--reps 7] [--batch 8] [--python /usr/bin/python3]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '../src/core/index.js';
import { DEFAULT_BUILTIN_ENCODER_CONFIG, builtinEncoder, type PatchEncoder } from '../src/wsi/index.js';
import { loadOnnxEncoder } from '../src/node/index.js';
import { median, table, writeResults } from './results.js';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    batch: { type: 'string', default: '8' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'no-write': { type: 'boolean', default: false },
  },
});
const reps = Number(values.reps);
const batch = Number(values.batch);
const log = (m: string) => process.stderr.write(m + '\n');
const here = new URL('.', import.meta.url).pathname;
const onnxPath = join(here, 'out', 'vit_s16.onnx');
if (!existsSync(onnxPath)) {
  log(`No ${onnxPath}: run '/usr/bin/python3 bench/vit_s16_torch.py export' first.`);
  process.exit(1);
}

/** Multiply-adds of ViT-S/16 at 224 px: patch embedding, then 12 blocks of qkv, attention (QK^T and AV), projection and MLP. */
function vitMacs(): number {
  const d = 384;
  const n = 197;
  const block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * 4 * d;
  return 196 * (16 * 16 * 3) * d + 12 * block;
}
/** Multiply-adds of the built-in CNN: 3 x 3 stride-2 'same' convolutions, then the dense layer. */
function builtinMacs(): number {
  const { inputSize, filters, dim } = DEFAULT_BUILTIN_ENCODER_CONFIG;
  let side = inputSize;
  let cin = 3;
  let macs = 0;
  for (const f of filters) {
    side = Math.ceil(side / 2);
    macs += side * side * 9 * cin * f;
    cin = f;
  }
  return macs + cin * dim;
}

const backend = await initBackend('wasm');
const load0 = loadavg()[0];

// PyTorch in a child process, driven line by line.
const py = spawn(values.python!, [join(here, 'vit_s16_torch.py'), 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
const nextJson = async () => JSON.parse(((await lines.next()).value as string) ?? 'null');
const ready = await nextJson();
log(`PyTorch ${ready.torch} ready (mkldnn ${ready.mkldnn})`);
const torchSeconds = async (threads: number, passes: number): Promise<number[]> => {
  py.stdin.write(JSON.stringify({ threads, batch, reps: passes }) + '\n');
  return (await nextJson()).seconds as number[];
};

const encoders: Record<number, PatchEncoder & { encodeAsync(b: tf.Tensor4D): Promise<tf.Tensor2D>; release(): Promise<void> }> = {
  1: await loadOnnxEncoder(onnxPath, { threads: 1, batchSize: batch }),
  2: await loadOnnxEncoder(onnxPath, { threads: 2, batchSize: batch }),
};
const patches = tf.randomUniform([batch, 224, 224, 3], 0, 255, 'float32', 5) as tf.Tensor4D;
const ortSeconds = async (threads: number): Promise<number> => {
  const t = performance.now();
  const y = await encoders[threads].encodeAsync(patches);
  await y.data();
  y.dispose();
  return (performance.now() - t) / 1000;
};

// Warm-up: the first runs allocate and plan.
for (const t of [1, 2]) {
  await ortSeconds(t);
  await torchSeconds(t, 1);
}

const res: Record<number, { ort: number[]; torch: number[]; ratio: number[] }> = { 1: { ort: [], torch: [], ratio: [] }, 2: { ort: [], torch: [], ratio: [] } };
for (let r = 0; r < reps; r++) {
  for (const t of [1, 2]) {
    let o: number;
    let p: number;
    if (r % 2 === 0) {
      o = await ortSeconds(t);
      p = (await torchSeconds(t, 1))[0];
    } else {
      p = (await torchSeconds(t, 1))[0];
      o = await ortSeconds(t);
    }
    res[t].ort.push(batch / o);
    res[t].torch.push(batch / p);
    res[t].ratio.push(p / o);
    log(`rep ${r + 1}/${reps}, ${t} thread(s): ONNX Runtime ${(batch / o).toFixed(2)} patches/s, PyTorch ${(batch / p).toFixed(2)} patches/s, ratio ${(p / o).toFixed(3)}, load ${loadavg()[0].toFixed(1)}`);
  }
}
py.stdin.end();
for (const e of Object.values(encoders)) await e.release();

// The built-in CNN on tfjs wasm: patches/s at the same batch, as multiply-adds per second.
const cnn = builtinEncoder({ seed: 0 });
const cnnRates: number[] = [];
for (let r = 0; r < reps + 1; r++) {
  const t = performance.now();
  const y = cnn.encode(patches);
  await y.data();
  y.dispose();
  if (r > 0) cnnRates.push(batch / ((performance.now() - t) / 1000));
}
cnn.dispose();
patches.dispose();
const load1 = loadavg()[0];

const spread = (xs: number[], digits = 2) => `${Math.min(...xs).toFixed(digits)} – ${Math.max(...xs).toFixed(digits)}`;
const vit = vitMacs();
const small = builtinMacs();
const rows: (string | number)[][] = [];
for (const t of [1, 2]) {
  rows.push([`${t}`, median(res[t].ort).toFixed(2), spread(res[t].ort), median(res[t].torch).toFixed(2), spread(res[t].torch), `**${median(res[t].ratio).toFixed(3)}**`, spread(res[t].ratio, 3)]);
}
const cnnRate = median(cnnRates);
const perMac = [
  ['ViT-S/16 via onnxEncoder, 2 threads (onnxruntime-node)', (vit / 1e9).toFixed(2), median(res[2].ort).toFixed(2), ((median(res[2].ort) * vit) / 1e9).toFixed(1)],
  ['ViT-S/16 in PyTorch, 2 threads', (vit / 1e9).toFixed(2), median(res[2].torch).toFixed(2), ((median(res[2].torch) * vit) / 1e9).toFixed(1)],
  ['built-in CNN on tfjs wasm', (small / 1e9).toFixed(3), cnnRate.toFixed(1), ((cnnRate * small) / 1e9).toFixed(1)],
];
const body = [
  `ViT-S/16 (dim 384, 12 layers, 6 heads, 224 px, random weights; ${(vit / 1e9).toFixed(2)} G multiply-adds per patch), exported to ONNX (opset 14) ` +
    `from PyTorch ${ready.torch} (Debian python3-torch; oneDNN ${ready.mkldnn ? 'available' : 'not available'}). ` +
    `Batches of ${batch} patches; ${reps} repetitions per thread count, ONNX Runtime and PyTorch back to back in alternating order. ` +
    'onnxEncoder times include its preprocessing (normalisation and NCHW layout of raw 224 x 224 patches on the tfjs backend) and the copy of the features back; PyTorch times are the forward pass alone. ' +
    `Machine load average (1 min) ${load0.toFixed(1)} at the start and ${load1.toFixed(1)} at the end, on ${cpus().length} cores.`,
  '',
  table(['threads', 'onnxEncoder patches/s (median)', 'range', 'PyTorch patches/s (median)', 'range', 'ONNX Runtime / PyTorch (median of per-repetition ratios)', 'range'], rows),
  '',
  `Target: ONNX Runtime >= 0.9 x PyTorch at equal threads: ${[1, 2].map((t) => `${t} thread(s) ${median(res[t].ratio).toFixed(3)} (${median(res[t].ratio) >= 0.9 ? 'met' : 'NOT met'})`).join(', ')}.`,
  '',
  'Rate per multiply-add against the built-in CNN on the tfjs wasm backend (same batches):',
  '',
  table(['encoder', 'G multiply-adds per patch', 'patches/s', 'G multiply-adds/s'], perMac),
  '',
  `At the built-in CNN's wasm rate per multiply-add, ViT-S/16 would run at ${((cnnRate * small) / vit).toFixed(2)} patches/s; onnxEncoder at 2 threads runs it ` +
    `${(median(res[2].ort) / ((cnnRate * small) / vit)).toFixed(1)} x faster.`,
].join('\n');
process.stdout.write(body + '\n');
if (!values['no-write']) writeResults('onnx-encoder', 'ViT-S/16 through onnxEncoder vs PyTorch', `nice -n 10 npx tsx bench/onnx_encoder.ts --reps ${reps} --batch ${batch}`, backend, body);
