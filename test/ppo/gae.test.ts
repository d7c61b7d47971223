import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/index.js';
import { computeGae, explainedVariance, normalizeAdvantages } from '../../src/ppo/index.js';
import { expectAllclose } from '../helpers.js';

/** Closed form: A_t = sum_l (gamma lambda)^l delta_{t+l}, delta_t = r_t + gamma V_{t+1} - V_t, V_T = bootstrap. */
function closedForm(r: number[], v: number[], boot: number, gamma: number, lam: number): number[] {
  const T = r.length;
  const delta = r.map((rt, t) => rt + gamma * (t + 1 < T ? v[t + 1] : boot) - v[t]);
  return r.map((_, t) => {
    let a = 0;
    for (let l = 0; t + l < T; l++) a += (gamma * lam) ** l * delta[t + l];
    return a;
  });
}

describe('computeGae', () => {
  const rewards = [-0.7, -0.5, -0.2, -0.05, -0.01];
  const values = [-1.2, -0.9, -0.4, 0.1, -0.02];

  for (const [gamma, lam] of [
    [1, 0.94],
    [1, 0.95],
    [0.99, 0.95],
    [0.9, 0.5],
    [1, 1],
    [1, 0],
    [0, 0.7],
  ]) {
    it(`matches the closed form for gamma ${gamma}, lambda ${lam}`, () => {
      const { advantages, returns } = computeGae({ rewards, values, gamma, gaeLambda: lam });
      const expected = closedForm(rewards, values, 0, gamma, lam);
      expectAllclose(advantages, expected, { rtol: 1e-12, atol: 1e-12 });
      expectAllclose(returns, expected.map((a, t) => a + values[t]), { rtol: 1e-12, atol: 1e-12 });
    });
  }

  it('bootstraps a truncated episode from the given value', () => {
    const { advantages } = computeGae({ rewards, values, bootstrapValue: 0.8, gamma: 0.99, gaeLambda: 0.9 });
    expectAllclose(advantages, closedForm(rewards, values, 0.8, 0.99, 0.9), { rtol: 1e-12, atol: 1e-12 });
  });

  it('hand values: gamma = lambda = 1 gives Monte-Carlo returns, lambda = 0 gives one-step TD', () => {
    // rewards [1, 2, 3], values [0.5, 0.5, 0.5]: returns-to-go [6, 5, 3], A = [5.5, 4.5, 2.5]
    const mc = computeGae({ rewards: [1, 2, 3], values: [0.5, 0.5, 0.5], gamma: 1, gaeLambda: 1 });
    expectAllclose(mc.advantages, [5.5, 4.5, 2.5]);
    expectAllclose(mc.returns, [6, 5, 3]);
    // lambda 0: A_t = r_t + V_{t+1} - V_t = [1 + 0.5 - 0.5, 2 + 0.5 - 0.5, 3 + 0 - 0.5] = [1, 2, 2.5]
    const td = computeGae({ rewards: [1, 2, 3], values: [0.5, 0.5, 0.5], gamma: 1, gaeLambda: 0 });
    expectAllclose(td.advantages, [1, 2, 2.5]);
  });

  it('rejects mismatched lengths and bad coefficients', () => {
    expect(() => computeGae({ rewards: [1, 2], values: [1], gamma: 1, gaeLambda: 0.9 })).toThrow(ShapeError);
    expect(() => computeGae({ rewards: [1], values: [1], gamma: 1.5, gaeLambda: 0.9 })).toThrow(/gamma to be in \[0, 1\]/);
    expect(() => computeGae({ rewards: [1], values: [1], gamma: 1, gaeLambda: -1 })).toThrow(ValueError);
  });
});

describe('normalizeAdvantages', () => {
  it('uses the unbiased std plus 1e-8', () => {
    // [1, 2, 3, 6]: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, unbiased var 14/3
    const s = Math.sqrt(14 / 3) + 1e-8;
    expectAllclose(normalizeAdvantages([1, 2, 3, 6]), [-2 / s, -1 / s, 0, 3 / s], { rtol: 1e-12, atol: 1e-12 });
  });
  it('only centres a single sample and maps equal values to 0', () => {
    expectAllclose(normalizeAdvantages([4]), [0]);
    expectAllclose(normalizeAdvantages([2, 2, 2]), [0, 0, 0]);
  });
});

describe('explainedVariance', () => {
  it('is 1 for perfect predictions, 0 for the mean, NaN for constant targets', () => {
    expect(explainedVariance([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(explainedVariance([2, 2, 2], [1, 2, 3])).toBeCloseTo(0, 12);
    // y = [1, 3], yPred = [0, 0]: Var[y] = 1, Var[y - yPred] = 1 -> 0; yPred = [1, 2]: residual [0, 1], Var 0.25 -> 0.75
    expect(explainedVariance([1, 2], [1, 3])).toBeCloseTo(0.75, 12);
    expect(explainedVariance([1, 2], [5, 5])).toBeNaN();
  });
});
