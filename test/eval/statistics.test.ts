import { describe, expect, it } from 'vitest';
import { Rng, ShapeError, ValueError } from '../../src/core/index.js';
import { binaryAuc, bootstrapInterval, comparePredictions, rocAuc, mannWhitneyU, mcnemarExact, pairedBootstrapAuc } from '../../src/eval/index.js';
import { normalSurvival } from '../../src/eval/statistics.js';

/** Exact two-sided binomial(n, 1/2) p-value by BigInt sums: min(1, 2 sum_{i<=k} C(n, i) / 2^n). */
function exactBinomialP(k: number, n: number): number {
  let c = 1n;
  let sum = 0n;
  for (let i = 0; i <= k; i++) {
    sum += c;
    c = (c * BigInt(n - i)) / BigInt(i + 1);
  }
  return Math.min(1, (2 * Number(sum)) / 2 ** n);
}

describe('normalSurvival', () => {
  it('matches standard normal quantiles and the far tail', () => {
    expect(normalSurvival(0)).toBeCloseTo(0.5, 15);
    expect(normalSurvival(1.959963984540054)).toBeCloseTo(0.025, 14);
    expect(normalSurvival(-1.6448536269514722)).toBeCloseTo(0.95, 14);
    expect(normalSurvival(2.5758293035489004)).toBeCloseTo(0.005, 14);
    // P(Z > 6) = 9.865876450377e-10, P(Z > 10) = 7.619853024160527e-24 (tables)
    expect(normalSurvival(6) / 9.865876450376946e-10).toBeCloseTo(1, 10);
    expect(normalSurvival(10) / 7.619853024160527e-24).toBeCloseTo(1, 10);
  });
});

describe('bootstrapInterval', () => {
  it('gives a zero-width interval for a constant sample', () => {
    expect(bootstrapInterval([0.75, 0.75, 0.75], { resamples: 200 })).toEqual({ estimate: 0.75, low: 0.75, high: 0.75 });
  });

  it('follows the exact bootstrap distribution of a small sample', () => {
    // values [0, 0, 1]: the resample mean is K/3 with K ~ Binomial(3, 1/3):
    // P(0) = 8/27, P(1/3) = 12/27, P(2/3) = 6/27, P(1) = 1/27, so the CDF at 2/3 is 26/27 = 0.963.
    // The 0.95 quantile is 2/3 (0.963 > 0.95), the 0.975 quantile is 1 (0.963 < 0.975), the
    // 0.025 and 0.05 quantiles are 0 (8/27 = 0.296 > 0.05). With B = 20000 each count is
    // within a few dozen of its expectation, far from those margins.
    const v = [0, 0, 1];
    const i95 = bootstrapInterval(v, { resamples: 20000, seed: 3 });
    expect(i95.estimate).toBeCloseTo(1 / 3, 15);
    expect(i95.low).toBe(0);
    expect(i95.high).toBe(1);
    const i90 = bootstrapInterval(v, { resamples: 20000, seed: 3, level: 0.9 });
    expect(i90.low).toBe(0);
    expect(i90.high).toBeCloseTo(2 / 3, 15);
  });

  it('is reproducible by seed and takes any statistic', () => {
    const v = [3, 1, 4, 1, 5, 9, 2, 6];
    const a = bootstrapInterval(v, { seed: 7, resamples: 500 });
    expect(bootstrapInterval(v, { seed: 7, resamples: 500 })).toEqual(a);
    expect(bootstrapInterval(v, { seed: 8, resamples: 500 })).not.toEqual(a);
    const median = (xs: number[]) => {
      const s = [...xs].sort((p, q) => p - q);
      return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
    };
    const m = bootstrapInterval(v, { seed: 7, resamples: 500, statistic: median });
    expect(m.estimate).toBe(3.5); // sorted 1 1 2 3 4 5 6 9
    // a resample median is the mean of two of the values, so it stays in [1, 9]
    expect(m.low).toBeGreaterThanOrEqual(1);
    expect(m.high).toBeLessThanOrEqual(9);
    expect(m.low).toBeLessThan(3.5);
    expect(m.high).toBeGreaterThan(3.5);
  });

  it('covers a normal mean at about the nominal level', () => {
    // 200 samples of n = 30 from N(0, 1): the 90 % interval holds 0 about 90 % of the time
    // (the percentile bootstrap under-covers slightly at n = 30; 0.8 to 0.97 excludes a broken one).
    let covered = 0;
    let state = 12345;
    const uniform = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return (state + 0.5) / 4294967296;
    };
    const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    for (let r = 0; r < 200; r++) {
      const xs = Array.from({ length: 30 }, normal);
      const { low, high } = bootstrapInterval(xs, { seed: r, resamples: 400, level: 0.9 });
      if (low <= 0 && 0 <= high) covered++;
    }
    expect(covered / 200).toBeGreaterThan(0.8);
    expect(covered / 200).toBeLessThan(0.97);
  });

  it('rejects bad input with the fix', () => {
    expect(() => bootstrapInterval([])).toThrow(/at least one value/);
    expect(() => bootstrapInterval([1, NaN])).toThrow(ValueError);
    expect(() => bootstrapInterval([1], { level: 95 })).toThrow(/level to be in \(0, 1\)/);
    expect(() => bootstrapInterval([1], { resamples: 0 })).toThrow(/resamples/);
  });
});

describe('mcnemarExact', () => {
  it('matches hand-computed binomial sums', () => {
    // discordant: A alone right once, B alone right 5 times: 2 (1 + 6) / 64
    expect(mcnemarExact([1, 0, 0, 0, 0, 0, 1, 0], [0, 1, 1, 1, 1, 1, 1, 0])).toEqual({ aOnly: 1, bOnly: 5, pValue: 0.21875 });
    // 0 vs 6: 2 / 64
    const six = mcnemarExact([false, false, false, false, false, false], [true, true, true, true, true, true]);
    expect(six).toEqual({ aOnly: 0, bOnly: 6, pValue: 0.03125 });
    // balanced discordance and no discordance both give 1
    expect(mcnemarExact([1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]).pValue).toBe(1);
    expect(mcnemarExact([1, 0, 1], [1, 0, 1])).toEqual({ aOnly: 0, bOnly: 0, pValue: 1 });
  });

  it('matches exact BigInt binomial sums for larger counts', () => {
    for (const [a, b] of [
      [10, 30],
      [3, 17],
      [40, 60],
      [200, 260],
      [1, 1500],
    ]) {
      const correctA = [...new Array(a).fill(1), ...new Array(b).fill(0), 1, 1, 0];
      const correctB = [...new Array(a).fill(0), ...new Array(b).fill(1), 1, 1, 0];
      const r = mcnemarExact(correctA, correctB);
      expect(r.aOnly).toBe(a);
      expect(r.bOnly).toBe(b);
      const want = exactBinomialP(Math.min(a, b), a + b);
      if (want > 1e-300) expect(r.pValue / want).toBeCloseTo(1, 10);
      else expect(r.pValue).toBeLessThan(1e-300);
    }
    // 10 vs 30: scipy.stats.binomtest(10, 40).pvalue = 0.0022214337732293643
    expect(mcnemarExact([...new Array(10).fill(1), ...new Array(30).fill(0)], [...new Array(10).fill(0), ...new Array(30).fill(1)]).pValue).toBeCloseTo(
      0.0022214337732293643,
      15,
    );
  });

  it('rejects unpaired or non-boolean input', () => {
    expect(() => mcnemarExact([1, 0], [1])).toThrow(ShapeError);
    expect(() => mcnemarExact([1, 2], [1, 0])).toThrow(/correctA\[1\] to be true\/false or 1\/0/);
  });
});

describe('pairedBootstrapAuc', () => {
  const labels = [0, 0, 0, 1, 1, 1];
  const good = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];

  it('reports no difference between identical models', () => {
    const r = pairedBootstrapAuc(labels, good, good, { resamples: 300 });
    expect(r).toEqual({ aucA: 1, aucB: 1, difference: 0, low: 0, high: 0, pValue: 1 });
  });

  it('gives the smallest p-value when A beats B in every resample', () => {
    // B ranks every negative above every positive: AUC 0 on every stratified resample
    const reversed = good.map((p) => 1 - p);
    const r = pairedBootstrapAuc(labels, good, reversed, { resamples: 999 });
    expect(r).toEqual({ aucA: 1, aucB: 0, difference: 1, low: 1, high: 1, pValue: 2 / 1000 });
  });

  it('matches the enumerated exact bootstrap distribution of a small cohort', () => {
    // 2 negatives and 2 positives; stratified resampling draws 2 of each with replacement, so
    // the 4 x 4 = 16 ordered draws are equally likely. Enumerate them for the exact law of d*.
    const y = [0, 0, 1, 1];
    const a = [0.2, 0.6, 0.5, 0.9];
    const b = [0.4, 0.3, 0.35, 0.8];
    const diffs: number[] = [];
    for (const n1 of [0, 1]) for (const n2 of [0, 1]) for (const p1 of [2, 3]) for (const p2 of [2, 3]) {
      const idx = [n1, n2, p1, p2];
      const yy = idx.map((i) => y[i]);
      diffs.push(binaryAuc(yy, idx.map((i) => a[i])) - binaryAuc(yy, idx.map((i) => b[i])));
    }
    const pLe0 = diffs.filter((d) => d <= 0).length / 16;
    const pGe0 = diffs.filter((d) => d >= 0).length / 16;
    const exactP = Math.min(1, 2 * Math.min(pLe0, pGe0));
    // A: pairs (0.5>0.2) (0.5<0.6) (0.9>0.2) (0.9>0.6) -> 3/4; B: (0.35<0.4) (0.35>0.3) (0.8>0.4) (0.8>0.3) -> 3/4
    const r = pairedBootstrapAuc(y, a, b, { resamples: 40000, seed: 11 });
    expect(r.aucA).toBe(0.75);
    expect(r.aucB).toBe(0.75);
    expect(r.difference).toBe(0);
    // standard error of a frequency at B = 40000 is below 0.0025; allow 4 of them (x2 for the doubling)
    expect(Math.abs(r.pValue - exactP)).toBeLessThan(0.02);
    const sorted = [...diffs].sort((p, q) => p - q);
    expect(r.low).toBe(sorted[0]);
    expect(r.high).toBe(sorted[15]);
  });

  it('takes class-probability rows (macro one-vs-rest for three classes)', () => {
    const y3 = [0, 1, 2, 0, 1, 2];
    const rows = [
      [0.8, 0.1, 0.1],
      [0.1, 0.8, 0.1],
      [0.1, 0.1, 0.8],
      [0.7, 0.2, 0.1],
      [0.2, 0.7, 0.1],
      [0.2, 0.1, 0.7],
    ];
    const r = pairedBootstrapAuc(y3, rows, rows, { resamples: 100 });
    expect(r.aucA).toBe(1);
    expect(r.pValue).toBe(1);
  });

  it('equals the AUC of the expanded resamples, with ties and three classes', () => {
    // A naive bootstrap that materialises each resample (same seed, same draw order: strata in
    // order of first appearance) and calls rocAuc must give the same interval.
    const rng = new Rng(5);
    const y = Array.from({ length: 30 }, (_, i) => i % 3);
    const round = (v: number) => Math.round(v * 10) / 10; // coarse scores: many ties
    const rowsOf = () =>
      y.map((c) => {
        const r = [rng.next(), rng.next(), rng.next()];
        r[c] += 0.5;
        const s = r[0] + r[1] + r[2];
        return r.map((v) => round(v / s));
      });
    const a = rowsOf();
    const b = rowsOf();
    const B = 200;
    const r = pairedBootstrapAuc(y, a, b, { resamples: B, seed: 9 });
    const draw = new Rng(9);
    const strata = [0, 1, 2].map((c) => y.flatMap((v, i) => (v === c ? [i] : [])));
    const diffs: number[] = [];
    for (let k = 0; k < B; k++) {
      const idx = strata.flatMap((m) => m.map(() => m[draw.int(m.length)]));
      const yy = idx.map((i) => y[i]);
      diffs.push(rocAuc(yy, idx.map((i) => a[i])) - rocAuc(yy, idx.map((i) => b[i])));
    }
    diffs.sort((p, q) => p - q);
    const q = (f: number) => {
      const h = (B - 1) * f;
      const lo = Math.floor(h);
      return diffs[lo] + (h - lo) * (diffs[lo + 1] - diffs[lo]);
    };
    expect(r.aucA).toBeCloseTo(rocAuc(y, a), 14);
    expect(r.low).toBeCloseTo(q(0.025), 12);
    expect(r.high).toBeCloseTo(q(0.975), 12);
    const le = diffs.filter((d) => d <= 1e-12).length;
    const ge = diffs.filter((d) => d >= -1e-12).length;
    expect(r.pValue).toBeCloseTo(Math.min(1, (2 * Math.min(1 + le, 1 + ge)) / (B + 1)), 12);
  });

  it('rejects single-class labels and mismatched lengths', () => {
    expect(() => pairedBootstrapAuc([1, 1], [0.2, 0.3], [0.1, 0.4])).toThrow(/at least two classes/);
    expect(() => pairedBootstrapAuc([0, 1], [0.2], [0.1, 0.4])).toThrow(ShapeError);
    expect(() => pairedBootstrapAuc([0, 1.5], [0.2, 0.3], [0.1, 0.4])).toThrow(/labels\[1\]/);
  });
});

describe('mannWhitneyU', () => {
  it('computes exact p-values of small samples without ties', () => {
    // every x below every y: U = 0, P(U' <= 0) = 1 / C(6,3) = 1/20, doubled
    expect(mannWhitneyU([1, 2, 3], [4, 5, 6])).toEqual({ u: 0, pValue: 0.1, method: 'exact' });
    // ranks of x 1, 3, 5: U = 9 - 6 = 3; counts of U' = 0..9 for n = m = 3 are
    // 1 1 2 3 3 3 3 2 1 1, so P(U' >= 6) = 7/20 and p = 0.7
    const r = mannWhitneyU([1, 3, 5], [2, 4, 6]);
    expect(r.u).toBe(3);
    expect(r.pValue).toBeCloseTo(0.7, 14);
    // one x: U' is uniform on 0..6; U = 4, P(U' >= 4) = 3/7 -> p = 6/7
    expect(mannWhitneyU([5], [1, 2, 3, 4, 6, 7]).pValue).toBeCloseTo(6 / 7, 14);
    // 3 vs 30: U = 1 (only 2 > 1.5), P(U' <= 1) = 2 / C(33, 3) = 2 / 5456 -> p = 4/5456
    const y30 = Array.from({ length: 30 }, (_, i) => i + 1.5);
    const s = mannWhitneyU([0, 1, 2], y30);
    expect(s.u).toBe(1);
    expect(s.pValue).toBeCloseTo(4 / 5456, 15);
    // the test is symmetric in its samples
    expect(mannWhitneyU(y30, [0, 1, 2]).pValue).toBeCloseTo(4 / 5456, 15);
  });

  it('uses the tie-corrected normal approximation with ties', () => {
    // pooled ranks: 1 -> 1; 2,2,2 -> 3; 3,3 -> 5.5; 4,4 -> 7.5; 5 -> 9.
    // R_x = 1 + 3 + 3 + 5.5 = 12.5, U = 12.5 - 10 = 2.5; ties sum(t^3 - t) = 24 + 6 + 6 = 36;
    // sigma^2 = 20/12 (10 - 36/72) = 15.8333; z = (17.5 - 10 - 0.5) / 3.97911 = 1.75918
    // p = 2 P(Z > 1.75918) = 0.0785458509 (scipy.stats.mannwhitneyu: 0.07854585095119067)
    const r = mannWhitneyU([1, 2, 2, 3], [2, 3, 4, 4, 5]);
    expect(r.u).toBe(2.5);
    expect(r.method).toBe('asymptotic');
    expect(r.pValue).toBeCloseTo(0.07854585095119067, 12);
  });

  it('uses the normal approximation for two samples larger than 8', () => {
    const x = Array.from({ length: 12 }, (_, i) => 0.1 * i);
    const y = Array.from({ length: 10 }, (_, i) => 0.1 * i + 0.35);
    const r = mannWhitneyU(x, y);
    // x_i > y_j iff i - j >= 4 (i - j > 3.5): sum over i = 4..11 of (i - 3) capped at 10 -> 1+2+...+8 = 36
    expect(r.u).toBe(36);
    // mu = 60, sigma^2 = 120 * 23 / 12 = 230; z = (84 - 60 - 0.5) / sqrt(230) = 1.549557
    // p = 2 P(Z > 1.549557) = 0.121250976 (scipy: 0.12125097588073802)
    expect(r.method).toBe('asymptotic');
    expect(r.pValue).toBeCloseTo(0.12125097588073802, 12);
  });

  it('gives p = 1 when every value is tied and rejects empty samples', () => {
    expect(mannWhitneyU([1, 1, 1], [1, 1])).toEqual({ u: 3, pValue: 1, method: 'asymptotic' });
    expect(() => mannWhitneyU([], [1])).toThrow(/non-empty samples/);
    expect(() => mannWhitneyU([1, Infinity], [1])).toThrow(/x\[1\]/);
  });
});

describe('comparePredictions', () => {
  it('combines accuracy, McNemar on argmax correctness and the paired AUC bootstrap', () => {
    const y = [0, 0, 1, 1, 1, 0];
    const a = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]]; // all right
    const b = [[0.4, 0.6], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.6, 0.4]]; // wrong on slides 0 and 3
    const c = comparePredictions(y, a, b, { resamples: 500, seed: 2 });
    expect(c.accuracyA).toBe(1);
    expect(c.accuracyB).toBeCloseTo(4 / 6, 12);
    // discordant: A alone right twice, B never: p = 2 / 2^2 = 0.5
    expect(c.mcnemar).toEqual({ aOnly: 2, bOnly: 0, pValue: 0.5 });
    expect(c.auc.aucA).toBe(1);
    // B's P(class 1): negatives 0.6, 0.2, 0.4; positives 0.7, 0.4, 0.6 -> wins 3 + (1 + tie 0.5) + (2 + tie 0.5) = 7/9
    expect(c.auc.aucB).toBeCloseTo(7 / 9, 12);
    expect(c.auc.difference).toBeCloseTo(2 / 9, 12);
    expect(() => comparePredictions(y, a, b.slice(1))).toThrow(ShapeError);
  });
});
