/**
 * Speed of one environment step: WsiEnv (incremental scoring, typed-array state) against the
 * naive env that re-computes the cosine and the classifier's attention over all N rows at every
 * step (the reference code's way). Same slide, same classifier, same f_S, same actions, one
 * process. HAFED (d = 384, gated attention hidden 128, M = 5, C = 2) and f_S
 * (1152 -> 768 -> 384) with random weights; Z with clusters of near-duplicate rows
 * so that similar sets are not empty; f = 0.2.
 *
 * Run: npx tsx bench/env_speed.ts [--steps K]
 */
import { initBackend, tf, createRng } from '../src/core/index.js';
import { WsiEnv, type WsiEnvOptions } from '../src/mdp/index.js';
import { StateMlp } from '../src/tsu/index.js';
import { Hafed } from '../src/hafed/index.js';
import { clusteredFeatures } from '../test/mdp/stand_in_classifier.js';
import os from 'node:os';
import { median, table, writeResults } from './results.js';
import { NaiveWsiEnv } from '../src/mdp/naive_wsi_env.js';

const SIZES = [1000, 3000, 10000];
const D = 384;
const BUDGET = 0.2;
const argSteps = process.argv.indexOf('--steps');
const STEPS = argSteps > 0 ? Number(process.argv[argSteps + 1]) : 40;
const WARMUP = 3;

interface Timing {
  ms: number[];
  meanC: number;
  rewards: number[];
}

/**
 * Runs the same actions in several envs, interleaved step by step (env 0 step t, env 1 step
 * t, ...) so that every env sees the same machine load.
 */
function runInterleaved(envs: (WsiEnv | NaiveWsiEnv)[], actions: number[]): Timing[] {
  const out: Timing[] = envs.map(() => ({ ms: [], meanC: 0, rewards: [] }));
  envs.forEach((e) => e.reset({ seed: 0 }));
  for (let t = 0; t < actions.length; t++) {
    envs.forEach((env, k) => {
      const t0 = performance.now();
      const r = env.step(actions[t]);
      const dt = performance.now() - t0;
      if (t >= WARMUP) {
        out[k].ms.push(dt);
        out[k].meanC += r.info.similarSet.length;
      }
      out[k].rewards.push(r.reward);
    });
  }
  for (const o of out) o.meanC /= o.ms.length;
  return out;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const loadBefore = os.loadavg()[0];
  // HAFED with the CAMELYON16 shape (d = 384, gated attention hidden 128, M = 5, C = 2), random weights
  const classifier = new Hafed({ dim: D, seed: 1 });
  const fS = new StateMlp({ dim: D, seed: 2 });
  const rows: (string | number)[][] = [];
  // Warm-up (JIT, wasm kernels) on a small slide, so that the first size is not penalised.
  {
    const f = clusteredFeatures(500, D, 1);
    const z = tf.tensor2d(f.z, [500, D]);
    const v = tf.tensor2d(f.v, [500, D]);
    const opts: WsiEnvOptions = { classifier, fS, lowRes: z, aggregated: v, label: 1, config: { budget: BUDGET } };
    const envs = [new WsiEnv(opts), new NaiveWsiEnv(opts)];
    runInterleaved(envs, createRng(1).sample(500, 30));
    envs.forEach((e) => e.close());
    tf.dispose([z, v]);
  }
  for (const n of SIZES) {
    const f = clusteredFeatures(n, D, n, { clusterSize: 5, sigmaLo: 0.1, sigmaHi: 0.3 });
    const z = tf.tensor2d(f.z, [n, D]);
    const v = tf.tensor2d(f.v, [n, D]);
    const opts: WsiEnvOptions = { classifier, fS, lowRes: z, aggregated: v, label: 1, config: { budget: BUDGET } };
    const fast = new WsiEnv(opts);
    const naive = new NaiveWsiEnv(opts);
    const rng = createRng(n);
    const k = Math.min(fast.budget, STEPS + WARMUP);
    const actions = rng.sample(n, k);
    const [inc, ref] = runInterleaved([fast, naive], actions);
    // the two envs must agree on what they computed
    let maxRel = 0;
    for (let t = 0; t < k; t++) maxRel = Math.max(maxRel, Math.abs(inc.rewards[t] - ref.rewards[t]) / Math.abs(ref.rewards[t]));
    // a whole episode of the incremental env (T steps), for the per-step cost over an episode
    const t0 = performance.now();
    let { observation } = fast.reset({ seed: 1 });
    for (let done = false; !done; ) {
      const r = fast.step(fast.actionSpace.sample(observation.actionMask));
      observation = r.observation;
      done = r.terminated;
    }
    const episodeMsPerStep = (performance.now() - t0) / fast.budget;
    const mi = median(inc.ms);
    const mn = median(ref.ms);
    const row = [
      n,
      fast.budget,
      inc.meanC.toFixed(2),
      mi.toFixed(2),
      mn.toFixed(2),
      `${(mn / mi).toFixed(1)}x`,
      episodeMsPerStep.toFixed(2),
      maxRel.toExponential(1),
    ];
    rows.push(row);
    console.log(row.join('  '));
    fast.close();
    naive.close();
    tf.dispose([z, v]);
  }
  classifier.dispose();
  fS.dispose();
  const header = [
    'N',
    'T = ceil(0.2 N)',
    'mean abs(C)',
    'incremental ms/step',
    'naive ms/step',
    'naive / incremental',
    'incremental ms/step, whole episode',
    'max rel. reward diff',
  ];
  const body = [
    `Median milliseconds per \`step\` over steps ${WARMUP + 1}-${WARMUP + STEPS} of the same random action sequence, ` +
      'the two envs stepped alternately so that both see the same machine load ' +
      '(d = 384, f = 0.2, tau = 0.95, rewriteOnce; a Hafed with hidden 128 and M = 5, ' +
      'f_S 1152 -> 768 -> 384, random weights; Z with clusters of near-duplicate rows). The naive env re-computes ' +
      'the cosine, the classifier attention and the pooling over all N rows at every step; the incremental env ' +
      're-scores only the changed rows. The last column checks that both envs return the same rewards.',
    `Machine load average (1 min) ${loadBefore.toFixed(1)} at the start and ${os.loadavg()[0].toFixed(1)} at the end of the run ` +
      `(${os.cpus().length} cores shared with other jobs): absolute times are inflated accordingly; the ratio is measured under the same load.`,
    '',
    table(header, rows),
  ].join('\n');
  writeResults('env-speed', 'WSI environment step: incremental vs naive', `npx tsx bench/env_speed.ts --steps ${STEPS}`, backend, body);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
