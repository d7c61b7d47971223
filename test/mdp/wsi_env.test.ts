import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, ShapeError, StateError, ValueError, createRng, tf } from '../../src/core/index.js';
import { WsiEnv, budgetSteps, checkEnv, type WsiEnvConfig, type WsiEnvOptions } from '../../src/mdp/index.js';
import { StateMlp, createTsuState, rowChangesToState, targetedStateUpdate } from '../../src/tsu/index.js';
import { expectAllclose } from '../helpers.js';
import { GatedAttentionClassifier, clusteredFeatures } from './stand_in_classifier.js';
import { NaiveWsiEnv, denseSlideLogits } from '../../src/mdp/naive_wsi_env.js';

const N = 80;
const D = 16;

let classifier: GatedAttentionClassifier;
let sharp: GatedAttentionClassifier;
let fS: StateMlp;
let z: tf.Tensor2D;
let v: tf.Tensor2D;
let zArr: Float32Array;
let vArr: Float32Array;

beforeAll(() => {
  classifier = new GatedAttentionClassifier({ dim: D, hidden: 8, numBranches: 5, numClasses: 3, seed: 1 });
  // large attention logits (differences of tens): exercises the shift and recompute paths of the pool
  sharp = new GatedAttentionClassifier({ dim: D, hidden: 8, numBranches: 3, numClasses: 2, seed: 2, logitScale: 60 });
  fS = new StateMlp({ dim: D, hiddenDim: 24, seed: 3 });
  const f = clusteredFeatures(N, D, 4);
  zArr = f.z;
  vArr = f.v;
  z = tf.tensor2d(zArr.slice(), [N, D]);
  v = tf.tensor2d(vArr.slice(), [N, D]);
});

afterAll(() => {
  classifier.dispose();
  sharp.dispose();
  fS.dispose();
  tf.dispose([z, v]);
});

function options(config: Partial<WsiEnvConfig> = {}, extra: Partial<WsiEnvOptions> = {}): WsiEnvOptions {
  return { classifier, fS, lowRes: z, aggregated: v, label: 2, config: { budget: 0.5, ...config }, ...extra };
}

/** Runs the same random episode in both envs and compares every step. */
function compareEpisode(config: Partial<WsiEnvConfig>, seed: number, extra: Partial<WsiEnvOptions> = {}): number {
  const fast = new WsiEnv(options(config, extra));
  const naive = new NaiveWsiEnv(options(config, extra));
  const rf = fast.reset({ seed });
  const rn = naive.reset({ seed });
  expectAllclose(rf.observation.state, rn.observation.state, { rtol: 0, atol: 0 });
  expectAllclose(rf.info.slideLogits, rn.info.slideLogits, { rtol: 1e-5, atol: 1e-6 });
  expectAllclose([rf.info.crossEntropy], [rn.info.crossEntropy], { rtol: 1e-5, atol: 1e-7 });
  const rng = createRng(seed);
  let totalC = 0;
  let mask = rf.observation.actionMask;
  for (let t = 0; t < fast.budget; t++) {
    const allowed = [...mask.keys()].filter((i) => mask[i] === 1);
    const a = allowed[rng.int(allowed.length)];
    const sf = fast.step(a);
    const sn = naive.step(a);
    expect(Array.from(sf.info.similarSet), `C at step ${t + 1}`).toEqual(Array.from(sn.info.similarSet));
    expect(Array.from(sf.info.changedRows)).toEqual(Array.from(sn.info.changedRows));
    expectAllclose(sf.observation.state, sn.observation.state, { rtol: 1e-5, atol: 1e-5 });
    expectAllclose(sf.info.changedValues, sn.info.changedValues, { rtol: 1e-5, atol: 1e-5 });
    expectAllclose([sf.reward], [sn.reward], { rtol: 1e-5, atol: 1e-7 });
    expectAllclose(sf.info.slideLogits, sn.info.slideLogits, { rtol: 1e-5, atol: 1e-5 });
    expectAllclose(sf.info.probs, sn.info.probs, { rtol: 1e-5, atol: 1e-6 });
    expect(sf.observation.actionMask).toEqual(sn.observation.actionMask);
    expect(sf.terminated).toBe(sn.terminated);
    expect(sf.terminated).toBe(t === fast.budget - 1);
    totalC += sf.info.similarSet.length;
    mask = sf.observation.actionMask;
  }
  fast.close();
  naive.close();
  return totalC;
}

describe('WsiEnv vs the naive env that re-scores everything', () => {
  it('gives the same states and rewards over a full episode (TSU, rewrite once)', () => {
    const totalC = compareEpisode({}, 0);
    expect(totalC, 'the episode must rewrite some rows').toBeGreaterThan(5);
  });

  it('gives the same states and rewards with rewriteOnce false, global and no update', () => {
    expect(compareEpisode({ rewriteOnce: false }, 1)).toBeGreaterThan(5);
    expect(compareEpisode({ update: 'global', budget: 0.2 }, 2)).toBeGreaterThan(100);
    expect(compareEpisode({ update: 'none' }, 3)).toBe(0);
    expect(compareEpisode({ tau: 0.8, budget: 1 }, 4)).toBeGreaterThan(5);
  });

  it('stays equal with sharp attention (large logits move the pooling shift)', () => {
    expect(compareEpisode({ budget: 1 }, 5, { classifier: sharp, label: 1 })).toBeGreaterThan(5);
  });
});

describe('WsiEnv semantics', () => {
  it('passes checkEnv in every mode', () => {
    for (const config of [{}, { rewriteOnce: false }, { update: 'global' as const }, { update: 'none' as const }]) {
      const env = new WsiEnv(options(config));
      const report = checkEnv(env);
      expect(report.steps).toBe(40);
      expect(report.warnings).toEqual([]);
      env.close();
    }
    const naive = new NaiveWsiEnv(options({ budget: 0.1 }));
    expect(checkEnv(naive).steps).toBe(8);
    naive.close();
  });

  it('has T = ceil(f N), the Gymnasium result shape and the reward -CE at every step', () => {
    expect(budgetSteps(0.2, 1000)).toBe(200);
    expect(budgetSteps(0.2, 1001)).toBe(201);
    expect(budgetSteps(0.1, 30)).toBe(3); // 0.1 * 30 = 3.0000000000000004 in floating point
    expect(budgetSteps(1, 7)).toBe(7);
    expect(budgetSteps(0.001, 7)).toBe(1);
    const env = new WsiEnv(options({ budget: 0.1 }));
    expect(env.budget).toBe(8);
    const { observation, info } = env.reset({ seed: 3 });
    expect(observation).toMatchObject({ numPatches: N, dim: D, t: 0, budget: 8 });
    expect(Array.from(observation.actionMask)).toEqual(new Array(N).fill(1));
    expect(info.changedRows.length).toBe(0);
    // the reset info holds the classifier's output on S_0 = Z, computed densely here
    const dense = denseSlideLogits(classifier, z);
    expectAllclose(info.slideLogits, dense, { rtol: 1e-5, atol: 1e-6 });
    dense.dispose();
    const r = env.step(5);
    expect(Object.keys(r).sort()).toEqual(['info', 'observation', 'reward', 'terminated', 'truncated']);
    expect(r.observation.t).toBe(1);
    expect(r.observation.actionMask[5]).toBe(0);
    expect(r.info.changedRows[0]).toBe(5);
    // S(5) = V(5), and the reward is -CE of the dense classifier on the new state
    expectAllclose(r.observation.state.subarray(5 * D, 6 * D), vArr.subarray(5 * D, 6 * D), { rtol: 0, atol: 0 });
    const s1 = tf.tensor2d(r.observation.state.slice(), [N, D]);
    const logits = denseSlideLogits(classifier, s1);
    const l = Array.from(logits.dataSync());
    const ce = Math.log(l.reduce((s, x) => s + Math.exp(x), 0)) - l[2];
    expectAllclose([r.reward], [-ce], { rtol: 1e-5 });
    expectAllclose(r.info.probs.reduce((a, b) => a + b, 0), 1, { rtol: 1e-6 });
    tf.dispose([s1, logits]);
    // the env's state equals the TSU pure function applied to Z
    const pure = targetedStateUpdate(createTsuState(z), 5, vArr.subarray(5 * D, 6 * D), fS);
    expectAllclose(r.observation.state, pure.state.values, { rtol: 1e-6, atol: 1e-6 });
    env.close();
  });

  it('rebuilds S_t from S_0 and the changed rows of every step', () => {
    const env = new WsiEnv(options({ rewriteOnce: false }));
    const { observation } = env.reset({ seed: 1 });
    const s0 = observation.state.slice();
    const changes = [];
    let last = observation;
    for (let t = 0; t < 10; t++) {
      const r = env.step(env.actionSpace.sample(last.actionMask));
      changes.push({ rows: r.info.changedRows, values: r.info.changedValues });
      last = r.observation;
    }
    expectAllclose(rowChangesToState(s0, D, changes), last.state, { rtol: 0, atol: 0 });
    env.close();
  });

  it('takes V(a) from step(a, v) or a zoom callback when there is no cached V', () => {
    const cached = new WsiEnv(options());
    const onDemand = new WsiEnv(options({}, { aggregated: undefined }));
    const calls: number[] = [];
    const zoomed = new WsiEnv(
      options({}, { aggregated: undefined, zoom: (a) => (calls.push(a), vArr.subarray(a * D, a * D + D)) }),
    );
    cached.reset();
    onDemand.reset();
    zoomed.reset();
    for (const a of [3, 17, 40, 41]) {
      const rc = cached.step(a);
      const rd = onDemand.step(a, Array.from(vArr.subarray(a * D, a * D + D)));
      const rz = zoomed.step(a);
      expect(rd.reward).toBe(rc.reward);
      expect(rz.reward).toBe(rc.reward);
      expectAllclose(rz.observation.state, rc.observation.state, { rtol: 0, atol: 0 });
    }
    expect(calls).toEqual([3, 17, 40, 41]);
    expect(() => onDemand.step(50)).toThrow(/No V\(50\) is available: pass it as step\(action, v\)/);
    [cached, onDemand, zoomed].forEach((e) => e.close());
  });

  it('has reward 0 and NaN cross-entropy without a label', () => {
    const env = new WsiEnv(options({}, { label: undefined }));
    env.reset();
    const r = env.step(0);
    expect(r.reward).toBe(0);
    expect(r.info.crossEntropy).toBeNaN();
    expect(r.info.probs.length).toBe(3);
    env.close();
  });

  it('throws StateError before reset, after termination and after close', () => {
    const env = new WsiEnv(options({ budget: 0.025 })); // T = 2
    expect(() => env.step(0)).toThrow(StateError);
    expect(() => env.step(0)).toThrow(/Call reset\(\) before step\(\)/);
    env.reset();
    env.step(0);
    expect(env.step(1).terminated).toBe(true);
    expect(() => env.step(2)).toThrow(/terminated after T = 2 steps; call reset\(\)/);
    env.reset();
    expect(env.step(0).terminated).toBe(false);
    env.close();
    expect(() => env.reset()).toThrow(StateError);
  });

  it('rejects bad actions, V and config with clear errors', () => {
    const env = new WsiEnv(options());
    env.reset();
    env.step(4);
    expect(() => env.step(4)).toThrow(ValueError);
    expect(() => env.step(4)).toThrow(/patch 4 was already visited.*actionMask/);
    expect(() => env.step(N)).toThrow(/integer in \[0, 80\), but got 80/);
    expect(() => env.step(-1)).toThrow(ValueError);
    expect(() => env.step(2.5)).toThrow(ValueError);
    expect(() => env.step(5, new Float32Array(D + 1))).toThrow(ShapeError);
    expect(() => env.step(5, new Float32Array(D + 1))).toThrow(/width d = 16, but got 17 values/);
    expect(() => env.step(5, new Float32Array(D).fill(NaN))).toThrow(DataError);
    const bad = vArr.slice();
    bad[7 * D + 3] = NaN;
    const badV = tf.tensor2d(bad, [N, D]);
    expect(() => new WsiEnv(options({}, { aggregated: badV }))).toThrow(/aggregated \(V\) to be finite, but row 7 holds NaN/);
    badV.dispose();
    // a failed step changes nothing: the episode goes on
    expect(env.step(5).observation.t).toBe(2);
    env.close();

    for (const tau of [0, 1.5, -1, NaN]) {
      expect(() => new WsiEnv(options({ tau }))).toThrow(/WsiEnvConfig.tau to be a finite number in \(0, 1\]/);
    }
    expect(() => new WsiEnv(options({ budget: 0 }))).toThrow(/budget/);
    expect(() => new WsiEnv(options({ budget: 1.2 }))).toThrow(/budget/);
    expect(() => new WsiEnv(options({ update: 'all' as never }))).toThrow(/one of "tsu", "global", "none"/);
    expect(() => new WsiEnv(options({}, { label: 3 }))).toThrow(/label to be an integer in \[0, 3\)/);
    expect(() => new WsiEnv(options({}, { fS: null, config: { update: 'tsu' } }))).toThrow(/needs f_S/);
    expect(new WsiEnv(options({}, { fS: null })).config.update).toBe('none');
    const wide = tf.zeros([N, D + 2]) as tf.Tensor2D;
    expect(() => new WsiEnv(options({}, { lowRes: wide }))).toThrow(/width d = 16 \(the classifier's\)/);
    expect(() => new WsiEnv(options({}, { aggregated: wide }))).toThrow(/aggregated \(V\) to have the shape/);
    wide.dispose();
    const f8 = new StateMlp({ dim: 8 });
    expect(() => new WsiEnv(options({}, { fS: f8 }))).toThrow(/f_S of width d = 16/);
    f8.dispose();
    expect(() => new WsiEnv(options({}, { classifier: {} as never }))).toThrow(/stage2RowLogits/);
  });

  it('holds no tensor: tf memory does not grow over 10 episodes (incremental and naive)', () => {
    for (const Env of [WsiEnv, NaiveWsiEnv]) {
      const env = new Env(options({ budget: 0.25 }));
      const rng = createRng(9);
      let before = 0;
      for (let ep = 0; ep < 10; ep++) {
        let { observation } = env.reset({ seed: ep });
        if (ep === 1) before = tf.memory().numTensors;
        for (let done = false; !done; ) {
          const allowed = [...observation.actionMask.keys()].filter((i) => observation.actionMask[i] === 1);
          const r = env.step(allowed[rng.int(allowed.length)]);
          observation = r.observation;
          done = r.terminated;
        }
      }
      expect(tf.memory().numTensors, Env.name).toBe(before);
      const held = tf.memory().numTensors;
      env.close();
      // the incremental env holds no tensor at all; the naive one frees S_t
      expect(held - tf.memory().numTensors, Env.name).toBe(Env === WsiEnv ? 0 : 1);
    }
  });

  it('zoomLookahead: the cross-entropy after zooming each allowed patch alone equals the dense classification', () => {
    for (const cls of [classifier, sharp]) {
      const env = new WsiEnv(options({ budget: 0.5 }, { classifier: cls, label: 1 }));
      env.reset({ seed: 3 });
      let obs = env.step(5).observation;
      obs = env.step(40).observation;
      const ce = env.zoomLookahead();
      expect(ce[5]).toBe(Infinity);
      expect(ce[40]).toBe(Infinity);
      for (const i of [0, 1, 17, 39, 79]) {
        const state = obs.state.slice();
        state.set(vArr.subarray(i * D, (i + 1) * D), i * D);
        const s = tf.tensor2d(state, [N, D]);
        const logits = denseSlideLogits(cls, s);
        const want = -tf.tidy(() => tf.logSoftmax(logits).dataSync()[1]);
        expectAllclose(ce[i], want, { rtol: 1e-5, atol: 1e-6 });
        tf.dispose([s, logits]);
      }
      // the env is unchanged: the next step gives the same reward as in a fresh run
      const r = env.step(0);
      const again = new WsiEnv(options({ budget: 0.5 }, { classifier: cls, label: 1 }));
      again.reset({ seed: 3 });
      again.step(5);
      again.step(40);
      expectAllclose(r.reward, again.step(0).reward, { rtol: 0, atol: 0 });
      env.close();
      again.close();
    }
    const unlabelled = new WsiEnv(options({}, { label: undefined }));
    unlabelled.reset();
    expect(() => unlabelled.zoomLookahead()).toThrow(/needs the slide label and the cached V/);
  });

  it('reports the attention weights abar of the current state', () => {
    const env = new WsiEnv(options());
    env.reset();
    const r = env.step(0);
    const abar = env.attention();
    expectAllclose(abar.reduce((a, b) => a + b, 0), 1, { rtol: 1e-5 });
    const s = tf.tensor2d(r.observation.state.slice(), [N, D]);
    const dense = tf.tidy(() => tf.mean(tf.softmax(tf.transpose(classifier.stage2RowLogits(s))), 0));
    expectAllclose(abar, dense, { rtol: 1e-4, atol: 1e-7 });
    tf.dispose([s, dense]);
    env.close();
  });
});
