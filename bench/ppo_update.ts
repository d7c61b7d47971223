/**
 * Event-sourced vs dense PPO update, side by side in one run.
 *
 * One update = what the reference does per training slide: the old values of 2 episodes of
 * T = ceil(f N) steps (f = 0.2), GAE, then 4 full-batch epochs of actor and critic loss,
 * gradients, per-network clipping and AdamW steps. d = 384, hidden 128 (the reference sizes).
 * The episodes are episodes of the real environment: `WsiEnv` on a slide of N patches (Z with
 * clusters of near-duplicate rows, HAFED stage 2 with M = 5 and f_S 1152 -> 768 -> 384, random
 * weights), the actor sampling its actions, as PPO's rollouts do (docs/implementation-details.md P21).
 *
 * Each measurement runs in its own child process (the episodes are regenerated there, from the
 * same seeds), so that peak memory is measured honestly per method, and the two methods
 * alternate, run for run, `--reps` times each (default 3):
 * - peak tensor memory: the high-water mark of tfjs's allocated tensor bytes during the update
 *   (sampled at every tensor allocation), minus what was allocated before it;
 * - peak process RSS (`process.resourceUsage().maxRSS`) and the wasm heap size (which only
 *   grows), both including the JS-side episode data.
 *
 * Run: `npx tsx bench/ppo_update.ts [--reps 3]` (add `--quick` for N = 200/400 only, no record).
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { AdamW, createRng, initBackend, tf } from '../src/core/index.js';
import { Hafed } from '../src/hafed/index.js';
import { WsiEnv } from '../src/mdp/index.js';
import { StateMlp } from '../src/tsu/index.js';
import { ActorCritic, ActorCriticPolicy, RolloutBuffer, resolvePpoConfig, runPpoUpdate, type PpoUpdateMode, type VersionTable } from '../src/ppo/index.js';
import { clusteredFeatures } from '../test/mdp/stand_in_classifier.js';
import { median, table, writeResults } from './results.js';

const D = 384;
const FRAC = 0.2;
const EPISODES = 2;

/**
 * Two episodes of the actor on `WsiEnv` on one slide of N patches (see the file doc); the same
 * seed gives the same episodes.
 */
export function envEpisodes(N: number, seed: number, policyModel: ActorCritic): VersionTable {
  const f = clusteredFeatures(N, D, seed, { clusterSize: 5, sigmaLo: 0.1, sigmaHi: 0.3 });
  const classifier = new Hafed({ dim: D, seed: seed + 1 });
  const fS = new StateMlp({ dim: D, seed: seed + 2 });
  const z = tf.tensor2d(f.z, [N, D]);
  const v = tf.tensor2d(f.v, [N, D]);
  const env = new WsiEnv({ classifier, fS, lowRes: z, aggregated: v, label: 1, config: { budget: FRAC } });
  tf.dispose([z, v]);
  const policy = new ActorCriticPolicy(policyModel, { seed });
  const rng = createRng(seed + 3);
  const buffer = new RolloutBuffer();
  try {
    for (let e = 0; e < EPISODES; e++) {
      let { observation } = env.reset({ seed: seed + e });
      policy.startEpisode(observation);
      buffer.startEpisode(observation);
      for (;;) {
        const actionMask = observation.actionMask.slice();
        const choice = policy.selectAction(observation, { mode: 'sample', rng });
        const r = env.step(choice.action);
        buffer.recordStep({ actionMask, action: choice.action, logProb: choice.logProb, reward: r.reward, changes: r.info });
        policy.observeStep(r.info);
        if (r.terminated) break;
        observation = r.observation;
      }
      buffer.finishEpisode({ terminated: true, truncated: false });
    }
  } finally {
    env.close();
    classifier.dispose();
    fS.dispose();
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
  await runPpoUpdate({ model, actorOptimizer, criticOptimizer, table: envEpisodes(50, 1, model), config });
  const data = envEpisodes(N, 2, model);
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const res = await child(argv[1] as PpoUpdateMode, Number(argv[2]), Number(argv[3]), argv[4] ? Number(argv[4]) : undefined);
    process.stdout.write(JSON.stringify(res) + '\n');
    return;
  }
  const quick = argv.includes('--quick');
  const repsArg = argv.indexOf('--reps');
  const reps = repsArg >= 0 ? Number(argv[repsArg + 1]) : 3;
  const pairs = quick ? [200, 400] : [500, 1000];
  const alone = quick ? [] : [3000, 10000, 20000];
  const rows: (string | number)[][] = [];
  const ratioRows: (string | number)[][] = [];
  let backend = 'wasm';
  const merge = (rs: ChildResult[]): ChildResult => ({
    ...rs[0],
    seconds: rs.flatMap((r) => r.seconds),
    cpuSeconds: rs.flatMap((r) => r.cpuSeconds),
    peakTensorBytes: Math.max(...rs.map((r) => r.peakTensorBytes)),
    wasmHeapBytes: Math.max(...rs.map((r) => r.wasmHeapBytes)),
    maxRssBytes: Math.max(...rs.map((r) => r.maxRssBytes)),
  });
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  const describe = (r: ChildResult) => {
    backend = r.backend;
    const s = median(r.seconds);
    const cpu = median(r.cpuSeconds);
    console.error(`${r.mode} N=${r.N}: ${cpu.toFixed(2)} CPU s (${s.toFixed(2)} s wall), peak tensors ${mb(r.peakTensorBytes)} MB, RSS ${mb(r.maxRssBytes)} MB, wasm heap ${mb(r.wasmHeapBytes)} MB`);
    rows.push([r.mode, r.N, r.T, r.samples, r.versions, `${cpu.toFixed(2)} (${range(r.cpuSeconds)}, ${r.cpuSeconds.length})`, s.toFixed(2), mb(r.peakTensorBytes), mb(r.wasmHeapBytes), mb(r.maxRssBytes)]);
  };
  const loads: number[] = [os.loadavg()[0]];
  for (const N of pairs) {
    const es: ChildResult[] = [];
    const dense: ChildResult[] = [];
    for (let r = 0; r < reps; r++) {
      // alternate, and alternate which goes first
      const order: PpoUpdateMode[] = r % 2 === 0 ? ['event-sourced', 'dense'] : ['dense', 'event-sourced'];
      for (const mode of order) {
        const res = runChild(mode, N, 1);
        (mode === 'dense' ? dense : es).push(res);
        loads.push(os.loadavg()[0]);
        console.error(`  ${mode} N=${N} run ${r + 1}: ${res.cpuSeconds[0].toFixed(2)} CPU s, ${res.seconds[0].toFixed(2)} s wall`);
      }
    }
    const e = merge(es);
    const dn = merge(dense);
    describe(e);
    describe(dn);
    ratioRows.push([
      N,
      (median(dn.cpuSeconds) / median(e.cpuSeconds)).toFixed(1) + 'x',
      (median(dn.seconds) / median(e.seconds)).toFixed(1) + 'x',
      (dn.peakTensorBytes / e.peakTensorBytes).toFixed(1) + 'x',
      (dn.wasmHeapBytes / e.wasmHeapBytes).toFixed(1) + 'x',
      (dn.maxRssBytes / e.maxRssBytes).toFixed(1) + 'x',
    ]);
  }
  for (const N of alone) {
    describe(runChild('event-sourced', N, 1));
    loads.push(os.loadavg()[0]);
  }
  const body = [
    'One PPO update (old values, GAE, 4 full-batch epochs of both networks with clipping and AdamW) on 2 episodes of',
    `one slide sampled by the actor on \`WsiEnv\` (f = ${FRAC}, d = ${D}, hidden 128; Z with clusters of near-duplicate rows, HAFED`,
    'stage 2 and f_S with random weights). Each measurement ran in its own process; for N = ' + pairs.join(' and ') + ' the two methods',
    `alternated, ${reps} updates each. "peak tensors" is the high-water mark of allocated tfjs tensor bytes during the update;`,
    '"wasm heap" and "max RSS" are process-wide high-water marks (the RSS includes the runtime, about 100-200 MB, and the',
    'JS-side episode data). Times are process CPU seconds per update, median (range, runs) (the wasm backend runs on one',
    'thread), which other load on this shared 2-core machine disturbs less than wall-clock time; median wall-clock',
    `seconds are shown too. Machine load (1-minute average): ${loads[0].toFixed(1)} at the start, ${loads[loads.length - 1].toFixed(1)} at the end,`,
    `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} between runs.`,
    '',
    table(['method', 'N', 'T', 'samples', 'row versions R', 'CPU s per update (range, runs)', 'wall s', 'peak tensors MB', 'wasm heap MB', 'max RSS MB'], rows),
    '',
    'Dense / event-sourced, medians measured side by side:',
    '',
    table(['N', 'CPU time', 'wall time', 'peak tensor memory', 'wasm heap', 'max RSS'], ratioRows),
  ].join('\n');
  console.log(body);
  if (!quick) writeResults('ppo-update', 'PPO update: event-sourced vs dense', `npx tsx bench/ppo_update.ts${reps !== 3 ? ` --reps ${reps}` : ''}`, backend, body);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main().catch((err) => {
  console.error(err);
  process.exit(1);
});
