import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { WsiEnv, checkEnv, type WsiEnvOptions } from '../../src/mdp/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { expectAllclose } from '../helpers.js';
import { NaiveWsiEnv } from '../../src/mdp/naive_wsi_env.js';
import { SYNTHETIC_PRESETS, syntheticSlide } from '../../src/wsi/synthetic/features.js';

// The environment with a real (untrained) HAFED on a slide of the synthetic `tiny` cohort.
describe('WsiEnv with a Hafed', () => {
  let hafed: Hafed;
  let fS: StateMlp;
  let z: tf.Tensor2D;
  let v: tf.Tensor2D;
  let label: number;

  beforeAll(() => {
    const slide = syntheticSlide(SYNTHETIC_PRESETS.tiny, 1);
    const { n, k, dim: d } = slide;
    hafed = new Hafed({ dim: d, k, seed: 3 });
    fS = new StateMlp({ dim: d, seed: 4 });
    z = tf.tensor2d(slide.lowRes, [n, d]);
    const u = tf.tensor3d(slide.highRes, [n, k, d]);
    v = hafed.aggregate(u);
    u.dispose();
    label = slide.label;
  });

  afterAll(() => {
    hafed.dispose();
    fS.dispose();
    tf.dispose([z, v]);
  });

  const options = (budget: number): WsiEnvOptions => ({ classifier: hafed, fS, lowRes: z, aggregated: v, label, config: { budget } });

  it("scores S_0 = Z like Hafed.classify, and S_T = V like Hafed.classify(V) after visiting every patch", () => {
    const env = new WsiEnv(options(1));
    const { info } = env.reset({ seed: 0 });
    const onZ = hafed.classify(z);
    expectAllclose(info.slideLogits, onZ.logits, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(info.probs, onZ.probs, { rtol: 1e-5, atol: 1e-6 });
    const rng = createRng(1);
    let last = info;
    for (const a of rng.permutation(env.numPatches)) last = env.step(a).info;
    const onV = hafed.classify(v);
    expectAllclose(last.slideLogits, onV.logits, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([onZ.logits, onZ.probs, onZ.attention, onV.logits, onV.probs, onV.attention]);
    env.close();
  });

  it('gives the rewards of the naive env over a full episode, and passes checkEnv', () => {
    const fast = new WsiEnv(options(0.5));
    const naive = new NaiveWsiEnv(options(0.5));
    fast.reset({ seed: 2 });
    naive.reset({ seed: 2 });
    const rng = createRng(2);
    let rewritten = 0;
    for (const a of rng.sample(fast.numPatches, fast.budget)) {
      const rf = fast.step(a);
      const rn = naive.step(a);
      expect(Array.from(rf.info.similarSet)).toEqual(Array.from(rn.info.similarSet));
      expectAllclose([rf.reward], [rn.reward], { rtol: 1e-5, atol: 1e-7 });
      expectAllclose(rf.observation.state, rn.observation.state, { rtol: 1e-5, atol: 1e-5 });
      rewritten += rf.info.similarSet.length;
    }
    expect(rewritten).toBeGreaterThan(0);
    expect(checkEnv(fast).steps).toBe(fast.budget);
    fast.close();
    naive.close();
  });
});
