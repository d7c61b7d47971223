/**
 * The TSU similar-set search of the environment, with and without the index's buckets, side by
 * side in one run.
 *
 * Per slide size N (d = 384, f = 0.2, tau = 0.95, rewriteOnce as in the environment): Z with 50
 * clusters of near-duplicate rows (each row = its centre + sigma noise, sigma in [0.1, 0.35] per
 * cluster, the inputs of `bench/vs_reference`), an episode of T = f N steps at random unvisited
 * rows, each step searching the similar set (`CosineIndex.similar`), rewriting it (a fixed linear
 * stand-in for f_S, not timed) and re-indexing the rewritten rows (`updateRows`). Timed per
 * episode: building the index, and the searches plus re-indexing. The two settings
 * (`{ buckets: true }` and `{ buckets: false }`, a pass over every row per search; the default `'auto'` picks buckets from 5000 rows on)
 * alternate, `--reps` episodes each (default 3), on the same slide and actions; every search's
 * result is checked to be the same in both.
 *
 * Run: `npx tsx bench/cosine_index.ts [--reps 3] [--sizes 1000,3000,10000]`
 */
import { cpus, loadavg } from 'node:os';
import { createRng, initBackend, tf } from '../src/core/index.js';
import { applyStateUpdate, computeStateUpdate, CosineIndex, createTsuState, type StateUpdateNet } from '../src/tsu/index.js';
import { median, table, writeResults } from './results.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const D = 384;
const FRAC = 0.2;
const TAU = 0.95;
const CLUSTERS = 50;
const reps = Number(arg('reps', '3'));
const sizes = arg('sizes', '1000,3000,10000').split(',').map(Number);

/** Z [n, d]: 50 clusters, row = centre + sigma_c noise, sigma_c in [0.1, 0.35]. */
function clusteredZ(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const centres = Array.from({ length: CLUSTERS }, () => Float32Array.from({ length: D }, () => rng.normal()));
  const sigma = Array.from({ length: CLUSTERS }, () => rng.uniform(0.1, 0.35));
  const z = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    const c = rng.int(CLUSTERS);
    for (let j = 0; j < D; j++) z[i * D + j] = centres[c][j] + sigma[c] * rng.normal();
  }
  return z;
}

const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

interface EpisodeTime {
  build: number;
  search: number;
  sets: number[][];
}

/** One episode at the given actions; returns the CPU seconds of the index's work and the similar sets. */
function episode(z: Float32Array, actions: number[], buckets: boolean, net: StateUpdateNet, v: Float32Array): EpisodeTime {
  const state = createTsuState(z, D);
  let t0 = cpuSeconds();
  const index = new CosineIndex(state, { buckets });
  const build = cpuSeconds() - t0;
  let search = 0;
  const sets: number[][] = [];
  for (const a of actions) {
    t0 = cpuSeconds();
    const set = index.similar(state, a, TAU, true);
    search += cpuSeconds() - t0;
    sets.push(Array.from(set));
    // the state update itself (the stand-in for f_S) is not timed; re-indexing its rows is
    const change = computeStateUpdate(state, a, v, net, { tau: TAU, rewriteOnce: true }, index);
    applyStateUpdate(state, a, change);
    t0 = cpuSeconds();
    index.updateRows(state, change.rows);
    search += cpuSeconds() - t0;
  }
  return { build, search, sets };
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const load0 = loadavg()[0];
  const net: StateUpdateNet = { dim: D, apply: (x) => tf.tidy(() => tf.mul(tf.slice(x, [0, 0], [-1, D]), 0.5) as tf.Tensor2D) };
  const rows: string[][] = [];
  const ratioRows: string[][] = [];
  for (const n of sizes) {
    const z = clusteredZ(n, n);
    const rng = createRng(n + 1);
    const v = Float32Array.from({ length: D }, () => rng.normal());
    // T = ceil(f N) distinct random rows (the actions), the same for both settings
    const actions = rng.sample(n, Math.ceil(FRAC * n));
    episode(z, actions.filter((a) => a < 1000).slice(0, 50), true, net, v); // warm-up
    const times: Record<'on' | 'off', EpisodeTime[]> = { on: [], off: [] };
    for (let r = 0; r < reps; r++) {
      for (const which of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        times[which].push(episode(z, actions, which === 'on', net, v));
      }
    }
    // both settings found the same sets at every step
    const ref = times.off[0].sets;
    for (const t of [...times.on, ...times.off]) {
      t.sets.forEach((s, i) => {
        if (s.join(',') !== ref[i].join(',')) throw new Error(`N = ${n}: the similar sets differ at step ${i}`);
      });
    }
    const sizesC = ref.map((s) => s.length);
    const meanC = sizesC.reduce((a, b) => a + b, 0) / sizesC.length;
    const fmt = (xs: number[]) => `${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)})`;
    for (const which of ['on', 'off'] as const) {
      const ts = times[which];
      rows.push([String(n), which === 'on' ? 'buckets' : 'a pass over every row', fmt(ts.map((t) => t.build)), fmt(ts.map((t) => t.search)), fmt(ts.map((t) => t.build + t.search))]);
    }
    const total = (w: 'on' | 'off') => median(times[w].map((t) => t.build + t.search));
    const search = (w: 'on' | 'off') => median(times[w].map((t) => t.search));
    ratioRows.push([String(n), String(actions.length), meanC.toFixed(1), `${(search('off') / search('on')).toFixed(2)}x`, `${(total('off') / total('on')).toFixed(2)}x`]);
    console.error(`N = ${n}: search ${search('off').toFixed(3)} -> ${search('on').toFixed(3)} CPU s; with building ${total('off').toFixed(3)} -> ${total('on').toFixed(3)}`);
  }
  const body = [
    `d = ${D}, f = ${FRAC}, tau = ${TAU}, rewriteOnce; Z with ${CLUSTERS} clusters of near-duplicate rows (sigma 0.1-0.35 per cluster), an episode of T = f N random unvisited rows per setting and repetition, the rows of each similar set rewritten by a fixed linear stand-in for f_S (not timed). Process CPU seconds per episode, median (range) of ${reps} alternating repetitions; the similar sets of every step were checked equal in both settings. Machine load (1-minute average, ${cpus().length} cores) ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end.`,
    '',
    table(['N', 'index', 'build CPU s', 'searches + re-indexing CPU s', 'total CPU s'], rows),
    '',
    'A pass over every row / buckets, medians:',
    '',
    table(['N', 'steps', 'mean |C|', 'searches + re-indexing', 'with building'], ratioRows),
  ].join('\n');
  console.log(body);
  writeResults('cosine-index', 'TSU similar-set search: the index with and without buckets', `npx tsx bench/cosine_index.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`, backend, body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
