import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, StateError, ValueError, tf } from '../../src/core/index.js';
import {
  Discrete,
  EnvCheckError,
  SyncVectorEnv,
  WsiEnv,
  checkEnv,
  type Env,
  type StepResult,
} from '../../src/mdp/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { GatedAttentionClassifier, clusteredFeatures } from './stand_in_classifier.js';

describe('Discrete', () => {
  it('samples only allowed actions, reproducibly per seed', () => {
    const space = new Discrete(5, { seed: 1 });
    const mask = new Uint8Array([0, 1, 0, 1, 0]);
    const draws = Array.from({ length: 200 }, () => space.sample(mask));
    expect(new Set(draws)).toEqual(new Set([1, 3]));
    space.seed(7);
    const a = Array.from({ length: 20 }, () => space.sample());
    space.seed(7);
    expect(Array.from({ length: 20 }, () => space.sample())).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(2);
    expect(space.sample(new Uint8Array([0, 0, 0, 0, 1]))).toBe(4);
  });

  it('tests membership and rejects bad masks', () => {
    const space = new Discrete(3, { start: 1 });
    expect([0, 1, 3, 4, 1.5, '1'].map((x) => space.contains(x))).toEqual([false, true, true, false, false, false]);
    expect(() => space.sample(new Uint8Array(2))).toThrow(ShapeError);
    expect(() => space.sample(new Uint8Array(3))).toThrow(/allows none/);
    expect(() => new Discrete(0)).toThrow(ValueError);
  });
});

/** A tiny counting env: observation = t, reward = action, ends after `len` steps. */
class CountEnv implements Env<number, number, { actionMask: Uint8Array }> {
  actionSpace = new Discrete(3);
  observationSpace = {
    contains: (x: unknown): x is number => typeof x === 'number',
    sample: () => 0,
    seed: () => {},
  };
  t = -1;
  constructor(
    private readonly len: number,
    private readonly broken: 'none' | 'no-throw-after-end' | 'random-reward' = 'none',
  ) {}
  reset() {
    this.t = 0;
    return { observation: 0, info: { actionMask: new Uint8Array([1, 1, 1]) } };
  }
  step(action: number): StepResult<number, { actionMask: Uint8Array }> {
    if (this.t < 0 || (this.t >= this.len && this.broken !== 'no-throw-after-end')) throw new StateError('reset first');
    if (!this.actionSpace.contains(action)) throw new ValueError('bad action');
    this.t++;
    const reward = this.broken === 'random-reward' ? Math.random() : action;
    return { observation: this.t, reward, terminated: this.t >= this.len, truncated: false, info: { actionMask: new Uint8Array([1, 1, 1]) } };
  }
  close() {}
}

describe('checkEnv', () => {
  it('passes a correct env and names the problems of broken ones', () => {
    expect(checkEnv(new CountEnv(4))).toEqual({ steps: 4, warnings: [] });
    expect(() => checkEnv(new CountEnv(4, 'no-throw-after-end'))).toThrow(/after the episode ended must throw a StateError/);
    expect(() => checkEnv(new CountEnv(4, 'random-reward'))).toThrow(/not deterministic/);
    expect(() => checkEnv({} as never)).toThrow(EnvCheckError);
    expect(checkEnv(new CountEnv(50), { maxSteps: 10 }).warnings).toEqual(['The episode did not end within 10 steps.']);
  });
});

describe('SyncVectorEnv', () => {
  const d = 8;
  let classifier: GatedAttentionClassifier;
  let fS: StateMlp;
  const slides: { z: tf.Tensor2D; v: tf.Tensor2D; label: number }[] = [];
  beforeAll(() => {
    classifier = new GatedAttentionClassifier({ dim: d, numClasses: 2, seed: 5 });
    fS = new StateMlp({ dim: d, hiddenDim: 8, seed: 6 });
    for (const [n, seed] of [[10, 1], [25, 2], [17, 3]]) {
      const f = clusteredFeatures(n, d, seed);
      slides.push({ z: tf.tensor2d(f.z, [n, d]), v: tf.tensor2d(f.v, [n, d]), label: seed % 2 });
    }
  });
  afterAll(() => {
    classifier.dispose();
    fS.dispose();
    slides.forEach((s) => tf.dispose([s.z, s.v]));
  });
  const makeEnvs = () =>
    slides.map((s) => new WsiEnv({ classifier, fS, lowRes: s.z, aggregated: s.v, label: s.label, config: { budget: 0.3 } }));

  it('runs slides of different N side by side, each like its own env, with next-step autoreset', () => {
    const venv = new SyncVectorEnv(makeEnvs());
    const singles = makeEnvs();
    let { observations } = venv.reset({ seed: 10 });
    singles.forEach((e, i) => e.reset({ seed: 10 + i }));
    expect(observations.map((o) => o.budget)).toEqual([3, 8, 6]); // ceil(0.3 N) for N = 10, 25, 17
    const firstDone = [false, false, false];
    const returns = [0, 0, 0];
    const singleReturns = [0, 0, 0];
    let resets = 0;
    let prevEnded = [false, false, false];
    for (let t = 0; t < 9; t++) {
      const actions = observations.map((o, i) => (prevEnded[i] ? null : venv.envs[i].actionSpace.sample(o.actionMask)));
      const r = venv.step(actions);
      for (let i = 0; i < 3; i++) {
        if (prevEnded[i]) {
          // the step after termination resets the sub-env: reward 0, t = 0, flags false
          expect([r.observations[i].t, r.rewards[i], r.terminations[i], r.truncations[i]]).toEqual([0, 0, false, false]);
          resets++;
        } else if (!firstDone[i]) {
          const s = singles[i].step(actions[i]!);
          expect(r.rewards[i]).toBe(s.reward);
          expect(r.terminations[i]).toBe(s.terminated);
          returns[i] += r.rewards[i];
          singleReturns[i] += s.reward;
          firstDone[i] = s.terminated;
        }
      }
      prevEnded = r.terminations.map((x, i) => x || r.truncations[i]);
      observations = r.observations;
    }
    expect(firstDone).toEqual([true, true, true]);
    expect(resets).toBeGreaterThanOrEqual(3); // sub-env 0 (T = 3) restarts at steps 4 and 8, sub-env 2 (T = 6) at 7
    expect(returns).toEqual(singleReturns);
    venv.close();
    singles.forEach((e) => e.close());
  });

  it('waits for a masked reset when autoreset is disabled', () => {
    const venv = new SyncVectorEnv(makeEnvs(), { autoreset: 'disabled' });
    expect(() => venv.step([0, 0, 0])).toThrow(StateError);
    venv.reset({ seed: 0 });
    for (let t = 0; t < 3; t++) venv.step([t, t, t]);
    // sub-env 0 (T = 3) has finished: it needs null, and keeps reporting terminated
    expect(() => venv.step([0, 3, 3])).toThrow(/Sub-env 0 has finished/);
    const r = venv.step([null, 3, 3]);
    expect(r.terminations[0]).toBe(true);
    expect(r.rewards[0]).toBe(0);
    expect(r.observations[0].t).toBe(3);
    const again = venv.reset({ options: { resetMask: [true, false, false] } });
    expect(again.observations.map((o) => o.t)).toEqual([0, 4, 4]);
    expect(() => venv.step([0, 4])).toThrow(ShapeError);
    venv.close();
  });
});
