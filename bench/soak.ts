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

const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--n', String(values.n)], { encoding: 'utf8', maxBuffer: 1 << 26 });
const line = out.stdout.trim().split('\n').pop() ?? '';
if (out.status !== 0 || !line.startsWith('{')) throw new Error(`the N = ${values.n} child failed (status ${out.status}): ${out.stderr.slice(-2000)}`);
const large = JSON.parse(line) as LargeSlideReport;
console.log(large);

const row = (label: string, s: MemorySample) => [label, s.numTensors, mib(s.numBytes), mib(s.wasmHeap), mib(s.rss), mib(s.heapUsed), mib(s.arrayBuffers)];
const tensorBound = SOAK_LARGE_SLIDE_BOUNDS.peakTensorBytes(large.n, large.d);
const flat = soak.last.numTensors === soak.first.numTensors && soak.last.numBytes === soak.first.numBytes;
const body = [
  `**Long training.** \`trainPolicy\` (as \`sasha train policy\` runs it) on a synthetic cohort of ${soak.slides.train} training and ${soak.slides.val} validation slides ` +
    `(N = ${soak.slides.n[0]} to ${soak.slides.n[1]} patches, d = ${soak.slides.d}, HAFED and f_S with random weights, f = 0.2): ` +
    `${soak.updates} PPO updates of ${episodes} episodes, **${soak.episodes} training episodes** (plus the greedy validation episodes after each epoch), ` +
    `${soak.seconds.toFixed(0)} s on the ${backend} backend. Memory after the first update, the last update, and once the model is disposed:`,
  '',
  table(['when', 'live tensors', 'tensor MiB', 'wasm heap MiB', 'RSS MiB', 'JS heap MiB', 'ArrayBuffers MiB'], [
    row('before training', soak.before),
    row('after update 1', soak.first),
    row(`after update ${soak.updates}`, soak.last),
    row('model disposed', soak.after),
  ]),
  '',
  `Live tensors and their bytes after update ${soak.updates} ${flat ? '**equal** those after update 1' : '**differ** from those after update 1'} ` +
    `(${soak.first.numTensors} -> ${soak.last.numTensors} tensors, ${soak.first.numBytes} -> ${soak.last.numBytes} bytes; the same after every update: ` +
    `${soak.samples.every((s) => s.numTensors === soak.first.numTensors) ? 'yes' : 'no'}). Peaks over the run: ${soak.peak.numTensors} tensors, ${mib(soak.peak.numBytes)} MiB of tensors, ` +
    `RSS ${mib(soak.peak.rss)} MiB, wasm heap ${mib(soak.peak.wasmHeap)} MiB.`,
  '',
  `**A large slide.** One PPO update on a slide of N = ${large.n} patches, d = ${large.d} (two episodes of f = 0.2, ${large.steps} steps, then the update of actor and critic), ` +
    `in its own process: episodes ${large.seconds.episodes.toFixed(0)} s, update ${large.seconds.update.toFixed(0)} s.`,
  '',
  table(['measure', 'value', 'bound', 'within'], [
    ['peak live tensor bytes (sampled at every allocation)', `${mib(large.peakTensorBytes)} MiB`, `${mib(tensorBound)} MiB (64 MiB + 4 N d float32)`, large.peakTensorBytes <= tensorBound ? 'yes' : '**no**'],
    ['process peak RSS', `${mib(large.maxRss)} MiB`, `${mib(SOAK_LARGE_SLIDE_BOUNDS.maxRssBytes)} MiB`, large.maxRss <= SOAK_LARGE_SLIDE_BOUNDS.maxRssBytes ? 'yes' : '**no**'],
    ['wasm heap after', `${mib(large.after.wasmHeap)} MiB`, '', ''],
    ['live tensors before / after', `${large.before.numTensors} / ${large.after.numTensors}`, 'equal', large.before.numTensors === large.after.numTensors ? 'yes' : '**no**'],
  ]),
].join('\n');
console.log(body);
if (!values['no-record']) writeReliability('soak', 'Soak: long training and a large slide', `npx tsx bench/soak.ts ${process.argv.slice(2).join(' ')}`.trim(), backend, body);
