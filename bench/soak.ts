/**
 * Soak on the wasm backend: `trainPolicy` for 50 PPO updates of 20 episodes (1000 episodes) with
 * tf.memory() and the process memory sampled after every update; then one PPO update on a slide
 * of N = 20 000 patches (d = 384, f = 0.2: two episodes of 4000 steps) in its own process, with
 * its peak memory. Writes the figures to docs/reliability.md.
 *
 *   npx tsx bench/soak.ts [--updates 50 --episodes 20 --slides 10 --n 20000]
 */
import '@tensorflow/tfjs-backend-wasm';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/core/backend.js';
import { largeSlideUpdate, soakPolicyTraining, type LargeSlideReport, type MemorySample } from '../test/reliability/soak.js';
import { SOAK_LARGE_SLIDE_BOUNDS } from '../test/reliability/soak_bounds.js';
import { writeReliability } from '../scripts/reliability_doc.js';
import { table } from './results.js';

const { values } = parseArgs({
  options: {
    updates: { type: 'string', default: '50' },
    episodes: { type: 'string', default: '20' },
    slides: { type: 'string', default: '10' },
    n: { type: 'string', default: '20000' },
    scale: { type: 'string', default: '2000,5000,10000' },
    child: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

if (values.child) {
  await initBackend('wasm');
  const r = await largeSlideUpdate(Number(values.n));
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}

const backend = await initBackend('wasm');
const updates = Number(values.updates);
const episodes = Number(values.episodes);
const soak = await soakPolicyTraining({
  updates,
  episodesPerUpdate: episodes,
  trainSlides: Number(values.slides),
  onSample: (s) => {
    if (s.update % 10 === 0) console.log(`update ${s.update}: ${s.numTensors} tensors, ${mib(s.numBytes)} MiB, RSS ${mib(s.rss)} MiB`);
  },
});
console.log(`soak: ${soak.episodes} episodes in ${soak.seconds.toFixed(0)} s`);

/** One PPO update on a slide of n patches, in its own process. */
function largeSlide(n: number): LargeSlideReport {
  const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--n', String(n)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) throw new Error(`the N = ${n} child failed (status ${out.status}): ${out.stderr.slice(-2000)}`);
  const r = JSON.parse(line) as LargeSlideReport;
  console.log(r);
  return r;
}
// the peak's growth with N, then the large slide itself
const scale = values.scale!.split(',').filter(Boolean).map(Number).map(largeSlide);
const large = largeSlide(Number(values.n));
const points = [...scale, large];

const row = (label: string, s: MemorySample) => [label, s.numTensors, mib(s.numBytes), mib(s.wasmHeap), mib(s.rss), mib(s.heapUsed), mib(s.arrayBuffers)];
const tensorBound = SOAK_LARGE_SLIDE_BOUNDS.peakTensorBytes(large.n, large.d);
const flat = soak.last.numTensors === soak.first.numTensors && soak.last.numBytes === soak.first.numBytes;
// from the end of the first epoch on, the best policy kept for model selection is live too
const firstEnd = soak.epochEnds[0];
const lastEnd = soak.epochEnds[soak.epochEnds.length - 1];
const endsFlat = soak.epochEnds.every((e) => e.numTensors === firstEnd.numTensors && e.numBytes === firstEnd.numBytes);
const perEpoch = Number(values.slides);
const laterUpdates = soak.samples.slice(perEpoch);
const laterFlat = laterUpdates.every((s) => s.numTensors === laterUpdates[0].numTensors);
const slope = (a: LargeSlideReport, b: LargeSlideReport) => (b.peakTensorBytes - a.peakTensorBytes) / ((b.n - a.n) * b.d * 4);
const body = [
  `**Long training.** \`trainPolicy\` (as \`sasha train policy\` runs it) on a synthetic cohort of ${soak.slides.train} training and ${soak.slides.val} validation slides ` +
    `(N = ${soak.slides.n[0]} to ${soak.slides.n[1]} patches, d = ${soak.slides.d}, HAFED and f_S with random weights, f = 0.2): ` +
    `${soak.updates} PPO updates of ${episodes} episodes, **${soak.episodes} training episodes** (plus the greedy validation episodes after each epoch), ` +
    `${soak.seconds.toFixed(0)} s on the ${backend} backend. Memory after the first update, at the end of the first and the last epoch, after the last update, and once the model is disposed:`,
  '',
  table(['when', 'live tensors', 'tensor MiB', 'wasm heap MiB', 'RSS MiB', 'JS heap MiB', 'ArrayBuffers MiB'], [
    row('before training', soak.before),
    row('after update 1', soak.first),
    row('end of epoch 1', firstEnd),
    row(`end of epoch ${soak.epochEnds.length}`, lastEnd),
    row(`after update ${soak.updates}`, soak.last),
    row('model disposed', soak.after),
  ]),
  '',
  `Live tensors and bytes at the end of every epoch ${endsFlat ? '**equal** those at the end of epoch 1' : '**differ** from those at the end of epoch 1'} ` +
    `(${firstEnd.numTensors} tensors, ${firstEnd.numBytes} bytes; at the end of epoch ${soak.epochEnds.length}: ${lastEnd.numTensors}, ${lastEnd.numBytes}), and after every update from the second epoch on ` +
    `the count is ${laterFlat ? `the same (${laterUpdates[0]?.numTensors})` : '**not** the same'}. ` +
    `After update 1 there are ${soak.first.numTensors} (${flat ? 'as many as' : 'fewer than'} after update ${soak.updates}, ${soak.last.numTensors}): from the end of the first epoch on, ` +
    'the best policy kept for model selection is live as well. Peaks over the run: ' +
    `${soak.peak.numTensors} tensors, ${mib(soak.peak.numBytes)} MiB of tensors, RSS ${mib(soak.peak.rss)} MiB, wasm heap ${mib(soak.peak.wasmHeap)} MiB.`,
  '',
  `**A large slide.** One PPO update on a slide of N = ${large.n} patches, d = ${large.d} (two episodes of f = 0.2, ${large.steps} steps, then the update of actor and critic), ` +
    `in its own process: episodes ${large.seconds.episodes.toFixed(0)} s, update ${large.seconds.update.toFixed(0)} s. ` +
    'The same at smaller N first, for how the peak grows: it is in the update, which keeps the actor\'s and critic\'s inputs and activations of every row version of the two episodes.',
  '',
  table(['N', 'steps', 'peak live tensor MiB', 'peak / (N d float32)', 'growth from the previous N, in N d float32', 'bound MiB'], points.map((p, i) => [
    p.n,
    p.steps,
    mib(p.peakTensorBytes),
    (p.peakTensorBytes / (p.n * p.d * 4)).toFixed(2),
    i === 0 ? '' : slope(points[i - 1], p).toFixed(2),
    mib(SOAK_LARGE_SLIDE_BOUNDS.peakTensorBytes(p.n, p.d)),
  ])),
  '',
  table(['measure', 'value', 'bound', 'within'], [
    ['peak live tensor bytes (sampled at every allocation)', `${mib(large.peakTensorBytes)} MiB`, `${mib(tensorBound)} MiB (64 MiB + 10 N d float32)`, large.peakTensorBytes <= tensorBound ? 'yes' : '**no**'],
    ['process peak RSS', `${mib(large.maxRss)} MiB`, `${mib(SOAK_LARGE_SLIDE_BOUNDS.maxRssBytes)} MiB`, large.maxRss <= SOAK_LARGE_SLIDE_BOUNDS.maxRssBytes ? 'yes' : '**no**'],
    ['wasm heap after', `${mib(large.after.wasmHeap)} MiB`, '', ''],
    ['live tensors before / after', `${large.before.numTensors} / ${large.after.numTensors}`, 'equal', large.before.numTensors === large.after.numTensors ? 'yes' : '**no**'],
  ]),
].join('\n');
console.log(body);
if (!values['no-record']) writeReliability('soak', 'Soak: long training and a large slide', `npx tsx bench/soak.ts ${process.argv.slice(2).join(' ')}`.trim(), backend, body);
