/**
 * HAFED training and inference speed, measured side by side in one process:
 * - `fused`: our path (hand-written gradient of the gated attention scores, no input gradient
 *   for the features U, explicit-transpose matMul gradient on wasm);
 * - `autodiff + explicit`: tfjs differentiates the composed ops, with the explicit-transpose
 *   matMul gradient;
 * - `autodiff + built-in`: tfjs differentiates the composed ops with its built-in matMul
 *   gradient (transposed operands; the slow path of wasm).
 * Modes are interleaved within every repetition so that machine load hits them alike.
 *
 * Run: npx tsx bench/hafed_speed.ts [--reps 3] [--dim 384] [--k 16]
 */
import { parseArgs } from 'node:util';
import { createRng, initBackend, tf, InMemoryDataset, type SlideBag } from '../src/core/index.js';
import { setAttentionGradMode } from '../src/core/gated_attention.js';
import { Hafed, hafedLoss, trainHafed } from '../src/hafed/index.js';
import { median, table, writeResults } from './results.js';
import { setMatMulGradMode } from '../src/core/ops.js';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    dim: { type: 'string', default: '384' },
    k: { type: 'string', default: '16' },
    'no-write': { type: 'boolean', default: false },
  },
});
const reps = Number(values.reps);
const d = Number(values.dim);
const k = Number(values.k);
const backend = await initBackend();
const log = (m: string) => process.stderr.write(m + '\n');

type Mode = { name: string; attention: 'fused' | 'autodiff'; matMul: 'auto' | 'explicit' | 'builtin' };
const MODES: Mode[] = [
  { name: 'fused', attention: 'fused', matMul: 'auto' },
  { name: 'autodiff + explicit matMul grad', attention: 'autodiff', matMul: 'explicit' },
  { name: 'autodiff + built-in matMul grad', attention: 'autodiff', matMul: 'builtin' },
];
function withMode<T>(mode: Mode, fn: () => T): T {
  const a = setAttentionGradMode(mode.attention);
  const m = setMatMulGradMode(mode.matMul);
  try {
    return fn();
  } finally {
    setAttentionGradMode(a);
    setMatMulGradMode(m);
  }
}
async function withModeAsync<T>(mode: Mode, fn: () => Promise<T>): Promise<T> {
  const a = setAttentionGradMode(mode.attention);
  const m = setMatMulGradMode(mode.matMul);
  try {
    return await fn();
  } finally {
    setAttentionGradMode(a);
    setMatMulGradMode(m);
  }
}

const rng = createRng(1);
const randomU = (n: number) => {
  const v = new Float32Array(n * k * d);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();
  return tf.tensor3d(v, [n, k, d]);
};

// One training step and one inference pass per slide size.
const model = new Hafed({ dim: d, k });
const vars = model.trainableVariables();
const stepRng = createRng(2);
const trainStep = (u: tf.Tensor3D) => {
  const { value, grads } = tf.variableGrads(() => hafedLoss(model.forward(u, { training: true, rng: stepRng }), 1).total, vars);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
};
const infer = (u: tf.Tensor3D) => {
  const p = model.predict(u);
  p.probs.dataSync();
  tf.dispose([p.logits, p.probs, p.attention]);
};
const time = (fn: () => void) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};

const sizes = [1000, 3000];
const stepMs = new Map<string, number[]>();
const inferMs = new Map<number, number[]>();
for (const n of sizes) {
  const u = randomU(n);
  for (const mode of MODES) withMode(mode, () => trainStep(u)); // warm-up
  infer(u);
  for (let r = 0; r < reps; r++) {
    for (const mode of MODES) {
      const ms = withMode(mode, () => time(() => trainStep(u)));
      const key = `${mode.name}|${n}`;
      stepMs.set(key, [...(stepMs.get(key) ?? []), ms]);
      log(`N=${n} ${mode.name}: train step ${ms.toFixed(0)} ms`);
    }
    const ms = time(() => infer(u));
    inferMs.set(n, [...(inferMs.get(n) ?? []), ms]);
    log(`N=${n} inference ${ms.toFixed(0)} ms`);
  }
  u.dispose();
}
model.dispose();

// One training epoch (trainHafed, 6 slides of N = 1000..3000).
const bags: SlideBag[] = [1000, 1400, 1800, 2200, 2600, 3000].map((n, i) => ({ id: `s${i}`, label: i % 2, highRes: randomU(n) }));
const cohort = new InMemoryDataset(bags);
const epochMs = new Map<string, number[]>();
for (let r = 0; r < reps; r++) {
  for (const mode of MODES) {
    const t0 = performance.now();
    const { model: m } = await withModeAsync(mode, () => trainHafed({ train: cohort, config: { epochs: 1 }, seed: 1 }));
    const ms = performance.now() - t0;
    m.dispose();
    epochMs.set(mode.name, [...(epochMs.get(mode.name) ?? []), ms]);
    log(`epoch ${mode.name}: ${(ms / 1000).toFixed(1)} s`);
  }
}
cohort.dispose();

const base = (m: Map<string, number[]>, key: string) => median(m.get(key)!);
const ref = MODES[0].name;
const stepRows = MODES.map((mode) => [
  mode.name,
  ...sizes.flatMap((n) => {
    const ms = base(stepMs, `${mode.name}|${n}`);
    return [ms.toFixed(0), (ms / base(stepMs, `${ref}|${n}`)).toFixed(2)];
  }),
  (base(epochMs, mode.name) / 1000).toFixed(1),
  (base(epochMs, mode.name) / base(epochMs, ref)).toFixed(2),
]);
const body = [
  `HAFED with the reference defaults (M1 = 1, M2 = 5, D = 128) at d = ${d}, k = ${k}, one slide per step; medians of ${reps} interleaved repetitions.`,
  'Ratios are relative to the fused path (higher = slower).',
  '',
  table(
    ['gradient path', ...sizes.flatMap((n) => [`train step N=${n} (ms)`, 'ratio']), 'epoch of 6 slides, N 1000-3000 (s)', 'ratio'],
    stepRows,
  ),
  '',
  table(
    ['N', 'inference ms per slide (stage 1 + stage 2, eval mode)'],
    sizes.map((n) => [n, median(inferMs.get(n)!).toFixed(0)]),
  ),
].join('\n');
console.log(body);
if (!values['no-write']) {
  writeResults('hafed-speed', 'HAFED training and inference speed', `npx tsx bench/hafed_speed.ts ${process.argv.slice(2).join(' ')}`.trim(), backend, body);
}
