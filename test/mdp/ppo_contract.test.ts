import { describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { WsiEnv, type WsiInfo } from '../../src/mdp/index.js';
import type { ZoomEnv } from '../../src/ppo/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { GatedAttentionClassifier, clusteredFeatures } from './stand_in_classifier.js';

// WsiEnv must satisfy the structural environment contract the PPO trainer is written against.
describe('WsiEnv and the PPO environment contract', () => {
  it('is a ZoomEnv (type-checked) and reports its changes as the PPO buffer expects', () => {
    const d = 8;
    const n = 20;
    const classifier = new GatedAttentionClassifier({ dim: d, seed: 1 });
    const fS = new StateMlp({ dim: d, seed: 2 });
    const f = clusteredFeatures(n, d, 3);
    const z = tf.tensor2d(f.z, [n, d]);
    const v = tf.tensor2d(f.v, [n, d]);
    const env: ZoomEnv<WsiInfo, WsiInfo> = new WsiEnv({ classifier, fS, lowRes: z, aggregated: v, label: 0 });
    const { observation } = env.reset({ seed: 0 });
    const r = env.step(3, f.v.slice(3 * d, 4 * d));
    expect(observation.t).toBe(0);
    expect(r.observation.t).toBe(1);
    expect(r.info.changedValues.length).toBe(r.info.changedRows.length * d);
    expect(new Set(r.info.changedRows).size).toBe(r.info.changedRows.length);
    classifier.dispose();
    fS.dispose();
    tf.dispose([z, v]);
  });
});
