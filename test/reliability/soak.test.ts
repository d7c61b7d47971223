// The reduced soak (the full one is `npx tsx bench/soak.ts`: 1000 episodes, 50 updates, and
// N = 20 000, in docs/reliability.md): policy training must come back to the same live tensors
// and tensor bytes at the end of every epoch, keep the same number of live tensors after every
// update, and leave nothing behind.
import { describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { largeSlideUpdate, soakPolicyTraining } from './soak.js';
import { SOAK_LARGE_SLIDE_BOUNDS } from './soak_bounds.js';

describe('soak (reduced)', () => {
  it('120 episodes in 6 PPO updates (2 epochs) of trainPolicy: no growth of tensors or tensor bytes', async () => {
    const r = await soakPolicyTraining({ updates: 6, episodesPerUpdate: 20, trainSlides: 3 });
    expect(r.updates).toBe(6);
    expect(r.episodes).toBe(120);
    expect(r.epochEnds).toHaveLength(2);
    expect(r.epochEnds[1].numTensors).toBe(r.epochEnds[0].numTensors);
    expect(r.epochEnds[1].numBytes).toBe(r.epochEnds[0].numBytes);
    // after each update of an epoch the count is the same (the bytes vary with the slide trained
    // on, its N); from the second epoch on it includes the kept best policy
    const epochs = [r.samples.slice(0, 3), r.samples.slice(3)];
    for (const e of epochs) for (const s of e) expect(s.numTensors).toBe(e[0].numTensors);
    // nothing of the run is left once the model is disposed
    expect(r.after.numTensors).toBe(r.before.numTensors);
    expect(r.after.numBytes).toBe(r.before.numBytes);
  }, 600_000);

  it('one PPO update on a slide of N = 2000 stays within the documented peak (the full soak measures N = 20 000)', async () => {
    const r = await largeSlideUpdate(2000);
    expect(r.steps).toBe(2 * 400);
    expect(r.after.numTensors).toBe(r.before.numTensors);
    expect(r.peakTensorBytes).toBeLessThan(SOAK_LARGE_SLIDE_BOUNDS.peakTensorBytes(2000, 384));
    expect(tf.memory().numTensors).toBe(r.before.numTensors);
  }, 600_000);
});
