import { describe, expect, it } from 'vitest';
import { createRng, tf } from '../../src/core/index.js';
import { ActorCritic, ActorCriticPolicy, selectFromLogits } from '../../src/ppo/index.js';
import { LogitTree } from '../../src/ppo/logit_tree.js';
import { FakeZoomEnv } from './fake_env.js';
import { expectAllclose } from '../helpers.js';

/** The row at cumulative weight u * total, scanning allowed rows in order (float64). */
function scan(logits: ArrayLike<number>, mask: ArrayLike<number>, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (mask[i]) max = Math.max(max, logits[i]);
  let total = 0;
  for (let i = 0; i < logits.length; i++) if (mask[i]) total += Math.exp(logits[i] - max);
  let r = u * total;
  let last = -1;
  for (let i = 0; i < logits.length; i++) {
    if (!mask[i]) continue;
    last = i;
    r -= Math.exp(logits[i] - max);
    if (r < 0) return i;
  }
  return last;
}

describe('LogitTree', () => {
  it('gives the argmax, the log-normaliser and the sampled row of a scan, through changes of logits and mask', () => {
    const rng = createRng(2);
    for (const n of [1, 5, 37, 300]) {
      const logits = Float64Array.from({ length: n }, () => 3 * rng.normal());
      const mask = Uint8Array.from({ length: n }, () => (rng.uniform() < 0.8 ? 1 : 0));
      mask[0] = 1;
      const tree = new LogitTree(logits, mask);
      for (let step = 0; step < 60; step++) {
        // a few changes per step, some far above the current logits (a rebuild of the shift)
        for (let c = 0; c < 3; c++) {
          const i = rng.int(n);
          if (rng.uniform() < 0.5) {
            logits[i] = rng.uniform() < 0.1 ? 80 + 10 * rng.normal() : 3 * rng.normal();
            tree.setLogit(i, logits[i]);
          } else {
            mask[i] = mask[i] ? 0 : 1;
            tree.setAllowed(i, mask[i] === 1);
          }
        }
        if (!mask.some((m) => m === 1)) {
          expect(tree.argmax()).toBe(-1);
          continue;
        }
        const ref = selectFromLogits(logits, mask, { mode: 'argmax' });
        expect(tree.argmax()).toBe(ref.action);
        expect(logits[tree.argmax()] - tree.logNormalizer()).toBeCloseTo(ref.logProb, 10);
        for (let k = 0; k < 20; k++) {
          const u = rng.uniform();
          expect(tree.sample(u)).toBe(scan(logits, mask, u));
        }
      }
    }
  });

  it('keeps the first of tied best rows, and a tiny allowed mass far below the shift', () => {
    const tree = new LogitTree([1, 5, 5, 2], [1, 1, 1, 1]);
    expect(tree.argmax()).toBe(1);
    tree.setAllowed(1, false);
    expect(tree.argmax()).toBe(2);
    // only rows 600 nats below the shift remain: the normaliser is still exact
    const t2 = new LogitTree([0, -600, -601], [1, 1, 1]);
    t2.setAllowed(0, false);
    expect(t2.logNormalizer()).toBeCloseTo(-600 + Math.log(1 + Math.exp(-1)), 10);
    expect(() => t2.setLogit(1, NaN)).toThrow(/finite/);
  });
});

describe('ActorCriticPolicy', () => {
  it('chooses what scoring every row at every step would choose (argmax and sampling), with its log-probability', () => {
    const model = new ActorCritic({ dim: 6, hiddenDim: 8, seed: 4 });
    for (const mode of ['argmax', 'sample'] as const) {
      const env = new FakeZoomEnv({ numPatches: 30, dim: 6, budget: 12, rewrites: [1, 4] });
      const policy = new ActorCriticPolicy(model);
      const rngA = createRng(9);
      const rngB = createRng(9);
      let { observation } = env.reset({ seed: 3 });
      policy.startEpisode(observation);
      let finalState = new Float32Array(0);
      for (;;) {
        const fast = policy.selectAction(observation, { mode, rng: rngA });
        // the reference: score all N rows of S_t now, then choose by scanning
        const all = tf.tidy(() => model.actorLogits(tf.tensor2d(observation.state, [30, 6])).dataSync() as Float32Array);
        const ref = selectFromLogits(all, observation.actionMask, { mode, rng: rngB });
        expect(fast.action).toBe(ref.action);
        expect(fast.logProb).toBeCloseTo(ref.logProb, 5);
        const r = env.step(fast.action);
        policy.observeStep(r.info);
        if (r.terminated) {
          finalState = r.observation.state.slice();
          break;
        }
        observation = r.observation;
      }
      // the inspected logits are those of the final state, every row (masked ones too) re-scored
      const last = policy.currentLogits() as Float32Array;
      const all = tf.tidy(() => model.actorLogits(tf.tensor2d(finalState, [30, 6])).dataSync() as Float32Array);
      expectAllclose(last, all, { rtol: 1e-5, atol: 1e-6 });
      policy.dispose();
    }
    model.dispose();
  });
});
