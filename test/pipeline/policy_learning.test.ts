/**
 * PPO learns on the real environment: the lesion cohort of `lesion_cohort.ts` (a small WsiEnv
 * cohort where a lesion can be found only by zooming, and where the classifier's
 * low-resolution attention points to decoys), trained by PPO with the library's default recipe.
 *
 * Expected on positive slides (share with a tumour patch zoomed): random 1 - C(22,6)/C(24,6)
 * = 0.446; top-attention spends 4 zooms on the decoys and 2 on near-ties among the other 20
 * patches (about 0.2); a policy that zooms the lesion stroma finds the tumour every time (1.0).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { ActorCriticPolicy, RandomPolicy, TopAttentionPolicy } from '../../src/ppo/index.js';
import { trainPolicy } from '../../src/pipeline/index.js';
import { lesionCohort, type LesionCohort } from './lesion_cohort.js';

describe('PPO on WsiEnv learns where the lesion is', () => {
  let cohort: LesionCohort;
  beforeAll(() => {
    cohort = lesionCohort(1000);
  });
  afterAll(() => cohort.dispose());

  it('finds tumour patches on held-out slides far more often than random and top-attention zooming', async () => {
    const before = tf.memory().numTensors;
    const random = await cohort.hitRate(new RandomPolicy({ seed: 3 }));
    const top = await cohort.hitRate(new TopAttentionPolicy(cohort.classifier));
    const { classifier, dataset, split, env } = cohort;
    // the library's default recipe (PPO alone, from an attention prior), with 30 epochs instead of
    // 15: on this cohort the prior points at the decoys by construction, and leaving it takes
    // longer (measured at 15 epochs: 0.47 on this cohort seed, 1.0 on seeds 2000 and 3000)
    const { model } = await trainPolicy({ classifier, fS: null, dataset, split, env, seed: 1, epochs: 30 });
    const learned = await cohort.hitRate(new ActorCriticPolicy(model));
    model.dispose();
    if (process.env.SASHA_TEST_REPORT) console.log(`policy learning: random ${random}, top-attention ${top}, learned ${learned}`);
    // measured: random 0.30 (9 of the 30 positive test slides; 0.446 expected), top-attention
    // 0.20; the learned policy finds the tumour on every positive slide (1.0)
    expect(random).toBeGreaterThan(0.25);
    expect(random).toBeLessThan(0.65);
    expect(top).toBeLessThan(0.4);
    expect(learned).toBeGreaterThanOrEqual(0.9);
    expect(learned - Math.max(random, top)).toBeGreaterThanOrEqual(0.3);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000); // 39-46 s measured on 2 cores while other work ran (wasm); the bound leaves room for a loaded machine
});
