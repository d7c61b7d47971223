/**
 * Example 2: the environment and the targeted state update (TSU).
 *
 * The targeted state update and the SASHA environment on one synthetic slide, step by step.
 * Prints the similar set of one zoom, what f_S wrote, then one episode of the environment with
 * a random policy: the reward (-CE of HAFED stage 2 on the state) at a few steps, the rows each
 * step rewrote, and the slide probability before and after.
 *
 * HAFED and f_S have random weights here (see `sasha train hafed` / `sasha train tsu` for
 * trained ones), so the numbers show the mechanics, not accuracy.
 *
 * Run: npx tsx examples/02_environment_and_tsu.ts
 */
import { Hafed, StateMlp, WsiEnv, checkEnv, createRng, createTsuState, initBackend, similarSet, targetedStateUpdate, tf } from 'sasha-wsi';
import { SYNTHETIC_PRESETS, syntheticSlide } from 'sasha-wsi/synthetic';

await initBackend();
const slide = syntheticSlide(SYNTHETIC_PRESETS.small, 3);
const { n, k, dim: d } = slide;
console.log(`slide ${slide.id}: N = ${n} patches, k = ${k}, d = ${d}, label ${slide.label}`);

const hafed = new Hafed({ dim: d, k, seed: 1 });
const fS = new StateMlp({ dim: d, seed: 2 });
const z = tf.tensor2d(slide.lowRes, [n, d]);
const u = tf.tensor3d(slide.highRes, [n, k, d]);
const v = hafed.aggregate(u); // V = HAFED stage 1, [N, d]
const vArr = v.dataSync() as Float32Array;

// 1. One targeted state update by hand.
const s0 = createTsuState(z);
const a = 0;
const c = similarSet(s0, a, { tau: 0.95 });
console.log(`\nzoom into patch ${a}: ${c.length} rows have |cos| >= 0.95 with it: [${Array.from(c).join(', ')}]`);
const step = targetedStateUpdate(s0, a, vArr.subarray(a * d, a * d + d), fS, { tau: 0.95 });
const moved = (i: number) => {
  let s = 0;
  for (let j = 0; j < d; j++) s += (step.state.values[i * d + j] - s0.values[i * d + j]) ** 2;
  return Math.sqrt(s).toFixed(3);
};
console.log(`rows changed: [${Array.from(step.rows).join(', ')}]; distance moved: ${Array.from(step.rows).map(moved).join(', ')}`);

// 2. An episode of the environment with a random policy, f = 0.2.
const env = new WsiEnv({ classifier: hafed, fS, lowRes: z, aggregated: v, label: slide.label, config: { budget: 0.2 } });
console.log(`\ncheckEnv: ${JSON.stringify(checkEnv(env))}`);
let { observation, info } = env.reset({ seed: 0 });
console.log(`T = ${env.budget} steps; P(label) on S_0 = Z: ${info.probs[slide.label].toFixed(3)}`);
const rng = createRng(0);
let ret = 0;
let rewritten = 0;
for (let done = false; !done; ) {
  const allowed = [...observation.actionMask.keys()].filter((i) => observation.actionMask[i] === 1);
  const r = env.step(allowed[rng.int(allowed.length)]);
  ret += r.reward;
  rewritten += r.info.similarSet.length;
  if (r.observation.t % 10 === 0 || r.terminated) {
    console.log(`  t = ${String(r.observation.t).padStart(3)}: reward ${r.reward.toFixed(4)}, rows rewritten this step ${r.info.similarSet.length}`);
  }
  observation = r.observation;
  info = r.info;
  done = r.terminated;
}
console.log(`return ${ret.toFixed(3)}; rows rewritten in all ${rewritten}; P(label) at the end ${info.probs[slide.label].toFixed(3)}`);

env.close();
hafed.dispose();
fS.dispose();
tf.dispose([z, u, v]);
