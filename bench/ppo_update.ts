/**
 * Event-sourced vs dense PPO update, side by side in one run.
 *
 * One update = what the reference does per training slide: the old values of 2 episodes of
 * T = ceil(f N) steps (f = 0.2), GAE, then 4 full-batch epochs of actor and critic loss,
 * gradients, per-network clipping and AdamW steps. d = 384, hidden 128 (the reference sizes).
 * The episodes are random: S_0 ~ N(0, 1) shared by both episodes (one slide), and each step
 * changes the chosen row and |C| ~ U{2..7} other rows (the |C| measured on real data at
 * tau = 0.95, docs/implementation-details.md P21).
 *
 * Each configuration runs in its own child process, so that peak memory is measured honestly
 * per method:
 * - peak tensor memory: the high-water mark of tfjs's allocated tensor bytes during the update
 *   (sampled at every tensor allocation), minus what was allocated before it;
 * - peak process RSS (`process.resourceUsage().maxRSS`) and the wasm heap size (which only
 *   grows), both including the JS-side episode data.
 *
 * Run: `npx tsx bench/ppo_update.ts` (add `--quick` for N = 200/400 only, no record).
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { AdamW, createRng, initBackend, tf } from '../src/core/index.js';
import { ActorCritic, RolloutBuffer, resolvePpoConfig, runPpoUpdate, type PpoUpdateMode, type VersionTable } from '../src/ppo/index.js';
import { median, table, writeResults } from './results.js';

const D = 384;
const FRAC = 0.2;
const EPISODES = 2;

/** Two random episodes on one slide of N patches (see the file doc). */
export function randomTable(N: number, seed: number): VersionTable {
  const rng = createRng(seed);
  const T = Math.ceil(FRAC * N);
  const state = new Float32Array(N * D);
  for (let i = 0; i < state.length; i++) state[i] = rng.normal();
  const buffer = new RolloutBuffer();
  for (let e = 0; e < EPISODES; e++) {
    const mask = new Uint8Array(N).fill(1);
    buffer.startEpisode({ numPatches: N, dim: D, t: 0, budget: T, actionMask: mask, state });
    const free = Array.from({ length: N }, (_, i) => i);
    rng.shuffle(free);
    for (let t = 0; t < T; t++) {
      const a = free[t];
      const others: number[] = [];
      const k = 2 + rng.int(6);
      while (others.length < k) {
        const r = free[T + rng.int(N - T)]; // a row not chosen in this episode
        if (r !== a && !others.includes(r)) others.push(r);
      }
      const rows = Int32Array.from([a, ...others]);
      const values = new Float32Array(rows.length * D);
      for (let i = 0; i < values.length; i++) values[i] = rng.normal();
      buffer.recordStep({ actionMask: mask.slice(), action: a, logProb: -Math.log(N - t), reward: -0.5 + 0.1 * rng.normal(), changes: { changedRows: rows, changedValues: values } });
      mask[a] = 0;
    }
    buffer.finishEpisode({ terminated: true, truncated: false });
  }
  return buffer.versionTable();
}

/** Tracks the high-water mark of tfjs's allocated tensor bytes (every allocation). */
export function trackPeakBytes(): { reset(): void; peak(): number } {
  const engine = tf.engine() as unknown as { trackTensor: (...a: unknown[]) => void; state: { numBytes: number } };
  const original = engine.trackTensor.bind(engine);
  let peak = engine.state.numBytes;
  engine.trackTensor = (...args: unknown[]) => {
    original(...args);
    if (engine.state.numBytes > peak) peak = engine.state.numBytes;
  };
  return {
    reset: () => void (peak = engine.state.numBytes),
    peak: () => peak,
  };
}

interface ChildResult {
  mode: PpoUpdateMode;
  N: number;
  T: number;
  samples: number;
  versions: number;
  seconds: number[];
  /** Process CPU seconds (user + system) of each update: less sensitive to other load than wall time. */
  cpuSeconds: number[];
  peakTensorBytes: number;
  wasmHeapBytes: number;
  maxRssBytes: number;
  backend: string;
}

async function child(mode: PpoUpdateMode, N: number, reps: number, chunkElements?: number): Promise<ChildResult> {
  const backend = await initBackend('wasm');
  const config = resolvePpoConfig({ updateMode: mode, chunkElements });
  const model = new ActorCritic({ dim: D });
  const actorOptimizer = new AdamW({ learningRate: 1e-5, weightDecay: 1e-4 });
  const criticOptimizer = new AdamW({ learningRate: 1e-5, weightDecay: 1e-4 });
  // warm-up on a small slide: kernels, optimiser moments
  await runPpoUpdate({ model, actorOptimizer, criticOptimizer, table: randomTable(50, 1), config });
  const data = randomTable(N, 2);
  const tracker = trackPeakBytes();
  const base = tf.memory().numBytes;
  tracker.reset();
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await runPpoUpdate({ model, actorOptimizer, criticOptimizer, table: data, config });
    const c = process.cpuUsage(c0);
    seconds.push((performance.now() - t0) / 1000);
    cpuSeconds.push((c.user + c.system) / 1e6);
  }
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm;
  return {
    mode,
    N,
    T: data.episodes[0].length,
    samples: data.numSamples,
    versions: data.numVersions,
    seconds,
    cpuSeconds,
    peakTensorBytes: tracker.peak() - base,
    wasmHeapBytes: wasm ? wasm.HEAPU8.length : NaN,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    backend,
  };
}

function runChild(mode: PpoUpdateMode, N: number, reps: number): ChildResult {
  const script = fileURLToPath(import.meta.url);
  const out = spawnSync(process.execPath, [...process.execArgv, script, '--child', mode, String(N), String(reps)], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) {
    throw new Error(`child ${mode} N=${N} failed (status ${out.status}): ${out.stderr.slice(-2000)}`);
  }
  return JSON.parse(line) as ChildResult;
}

const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const startLoad = os.loadavg()[0];
const loadLine = () => startLoad.toFixed(1);

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const res = await child(argv[1] as PpoUpdateMode, Number(argv[2]), Number(argv[3]), argv[4] ? Number(argv[4]) : undefined);
    process.stdout.write(JSON.stringify(res) + '\n');
    return;
  }
  const quick = argv.includes('--quick');
  const pairs = quick ? [200, 400] : [500, 1000];
  const alone = quick ? [] : [3000, 10000];
  const rows: (string | number)[][] = [];
  const ratioRows: (string | number)[][] = [];
  let backend = 'wasm';
  const describe = (r: ChildResult) => {
    backend = r.backend;
    const s = median(r.seconds);
    const cpu = median(r.cpuSeconds);
    console.error(`${r.mode} N=${r.N}: ${cpu.toFixed(2)} CPU s (${s.toFixed(2)} s wall), peak tensors ${mb(r.peakTensorBytes)} MB, RSS ${mb(r.maxRssBytes)} MB, wasm heap ${mb(r.wasmHeapBytes)} MB`);
    rows.push([r.mode, r.N, r.T, r.samples, r.versions, `${cpu.toFixed(2)} (${r.cpuSeconds.length})`, s.toFixed(2), mb(r.peakTensorBytes), mb(r.wasmHeapBytes), mb(r.maxRssBytes)]);
  };
  for (const N of pairs) {
    const es = runChild('event-sourced', N, 3);
    describe(es);
    const dense = runChild('dense', N, 1);
    describe(dense);
    ratioRows.push([
      N,
      (median(dense.cpuSeconds) / median(es.cpuSeconds)).toFixed(1) + 'x',
      (median(dense.seconds) / median(es.seconds)).toFixed(1) + 'x',
      (dense.peakTensorBytes / es.peakTensorBytes).toFixed(1) + 'x',
      (dense.wasmHeapBytes / es.wasmHeapBytes).toFixed(1) + 'x',
      (dense.maxRssBytes / es.maxRssBytes).toFixed(1) + 'x',
    ]);
  }
  for (const N of alone) describe(runChild('event-sourced', N, 1));
  const body = [
    'One PPO update (old values, GAE, 4 full-batch epochs of both networks with clipping and AdamW) on 2 random',
    `episodes of one slide, f = ${FRAC}, d = ${D}, hidden 128, |C| ~ U{2..7} per step. Each row ran in its own process.`,
    '"peak tensors" is the high-water mark of allocated tfjs tensor bytes during the update; "wasm heap" and "max RSS"',
    'are process-wide high-water marks (the RSS includes the runtime, about 100-200 MB, and the JS-side episode data).',
    'Times are the process CPU seconds of an update (the wasm backend runs on one thread), which other load on this',
    'shared 2-core machine disturbs less than wall-clock time; wall-clock seconds are shown too. The machine load',
    `(1-minute load average) was ${loadLine()} at the start of the run.`,
    '',
    table(['method', 'N', 'T', 'samples', 'row versions R', 'CPU s per update (runs, median)', 'wall s', 'peak tensors MB', 'wasm heap MB', 'max RSS MB'], rows),
    '',
    'Dense / event-sourced, measured side by side:',
    '',
    table(['N', 'CPU time', 'wall time', 'peak tensor memory', 'wasm heap', 'max RSS'], ratioRows),
  ].join('\n');
  console.log(body);
  if (!quick) writeResults('ppo-update', 'PPO update: event-sourced vs dense', 'npx tsx bench/ppo_update.ts', backend, body);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main().catch((err) => {
  console.error(err);
  process.exit(1);
});
