import { describe, expect, it } from 'vitest';
import { disposeBag, tf, ValueError } from '../../../src/core/index.js';
import { expectNoLeak } from '../../helpers.js';
import { formatCohortSummary, generateSyntheticCohort, mimicClass, resolveSyntheticConfig, summarizeCohort, SYNTHETIC_PRESETS, SyntheticDataset, syntheticLabels, syntheticSlide, syntheticSplit, tumourClass } from '../../../src/wsi/synthetic/features.js';

const tiny = SYNTHETIC_PRESETS.tiny;

describe('synthetic cohort: shapes and determinism', () => {
  it('gives identical slides for equal seeds and different ones for other seeds', () => {
    const a = syntheticSlide(tiny, 3);
    const b = syntheticSlide({ ...tiny }, 3);
    expect(a.n).toBe(b.n);
    expect(a.lowRes).toEqual(b.lowRes);
    expect(a.highRes).toEqual(b.highRes);
    expect(a.coords).toEqual(b.coords);
    expect(a.truth.subPatchClass).toEqual(b.truth.subPatchClass);
    const c = syntheticSlide({ ...tiny, seed: 1 }, 3);
    expect(c.lowRes.length === a.lowRes.length && c.lowRes.every((v, i) => v === a.lowRes[i])).toBe(false);
    // Slide i does not depend on how many slides the cohort has.
    const d = syntheticSlide({ ...tiny, numSlides: 40 }, 3);
    expect(d.id).toBe('slide_003');
  });

  it('has the documented shapes, coords and labels', () => {
    const cohort = generateSyntheticCohort(tiny);
    try {
      expect(cohort.bags).toHaveLength(12);
      // round(0.4 * 12) = 5 positives.
      expect(cohort.bags.filter((b) => b.label === 1)).toHaveLength(5);
      expect(syntheticLabels(tiny)).toEqual(cohort.bags.map((b) => b.label));
      for (const [i, bag] of cohort.bags.entries()) {
        const n = bag.lowRes!.shape[0];
        expect(n).toBeGreaterThanOrEqual(30);
        expect(n).toBeLessThanOrEqual(80);
        expect(bag.lowRes!.shape).toEqual([n, 16]);
        expect(bag.highRes!.shape).toEqual([n, 16, 16]);
        expect(bag.coords).toHaveLength(2 * n);
        // Coords sit on the 2048-px patch grid, with no patch twice.
        const seen = new Set<string>();
        for (let p = 0; p < n; p++) {
          expect(bag.coords![2 * p] % 2048).toBe(0);
          expect(bag.coords![2 * p + 1] % 2048).toBe(0);
          seen.add(`${bag.coords![2 * p]},${bag.coords![2 * p + 1]}`);
        }
        expect(seen.size).toBe(n);
        // The in-memory cohort equals the lazy generator.
        const lazy = syntheticSlide(tiny, i);
        expect(bag.lowRes!.dataSync()).toEqual(lazy.lowRes);
        const t = cohort.truth[i];
        expect(t.subPatchClass).toHaveLength(n * 16);
        expect(t.tumourFraction > 0).toBe(bag.label === 1);
      }
    } finally {
      cohort.bags.forEach(disposeBag);
    }
  });

  it('splits stratified, disjoint and complete', () => {
    const cfg = { ...SYNTHETIC_PRESETS.small };
    const split = syntheticSplit(cfg);
    const labels = syntheticLabels(cfg);
    const all = [...split.train, ...split.val, ...split.test];
    expect(new Set(all).size).toBe(60);
    // 24 positives, 36 negatives; val 0.12 and test 0.28 of each class, rounded:
    // positives 3 val, 7 test, 14 train; negatives 4 val, 10 test, 22 train.
    const pos = (ids: string[]) => ids.filter((id) => labels[Number(id.slice(6))] === 1).length;
    expect([split.train.length, split.val.length, split.test.length]).toEqual([36, 7, 17]);
    expect([pos(split.train), pos(split.val), pos(split.test)]).toEqual([14, 3, 7]);
  });

  it('rejects bad configs with the key name', () => {
    expect(() => resolveSyntheticConfig({ k: 12 })).toThrow(/k to be a perfect square/);
    expect(() => resolveSyntheticConfig({ dimm: 3 } as never)).toThrow(/Did you mean 'dim'/);
    expect(() => resolveSyntheticConfig({ splitFractions: [0.5, 0.5, 0.5] })).toThrow(/sum to 1/);
    expect(() => syntheticSlide(tiny, 12)).toThrow(ValueError);
  });
});

describe('synthetic cohort: lesions', () => {
  it('keeps tumour a minority of each patch, in the documented amounts', () => {
    const cfg = { ...SYNTHETIC_PRESETS.small, numSlides: 60 };
    const T = tumourClass(cfg);
    const M = mimicClass(cfg);
    const fractions: number[] = [];
    let negativesWithMimic = 0;
    for (let i = 0; i < cfg.numSlides; i++) {
      const s = syntheticSlide(cfg, i);
      const k = s.k;
      let tum = 0;
      for (let p = 0; p < s.n; p++) {
        let perPatch = 0;
        for (let j = 0; j < k; j++) if (s.truth.subPatchClass[p * k + j] === T) perPatch++;
        // floor((16 - 1) / 2) = 7 of 16 at most.
        expect(perPatch).toBeLessThanOrEqual(7);
        tum += perPatch;
      }
      expect(tum / (s.n * k)).toBeCloseTo(s.truth.tumourFraction, 12);
      if (s.label === 1) {
        // A micro-lesion of 3..24 sub-patches, or a macro-lesion of 1%..10% of the sub-patches.
        const macro = s.truth.tumourFraction >= 0.0099 && s.truth.tumourFraction <= 0.1001;
        expect(macro || (tum >= 3 && tum <= 24)).toBe(true);
        fractions.push(s.truth.tumourFraction);
      } else {
        expect(tum).toBe(0);
        if (s.truth.subPatchClass.includes(M)) negativesWithMimic++;
      }
    }
    fractions.sort((a, b) => a - b);
    expect(fractions[0]).toBeLessThan(0.01);
    expect(fractions[fractions.length - 1]).toBeLessThanOrEqual(0.1001);
    expect(fractions[fractions.length - 1]).toBeGreaterThan(0.03);
    // mimicInNegative = 0.7 of 36 negatives: about 25.
    expect(negativesWithMimic).toBeGreaterThan(15);
    expect(negativesWithMimic).toBeLessThan(33);
  });
});

/** Per-slide patch categories: 0 normal, 1 mimic (no tumour), 2 tumour. */
function patchCategories(cls: Uint8Array, n: number, k: number, T: number, M: number): Int8Array {
  const cat = new Int8Array(n);
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < k; j++) {
      const c = cls[p * k + j];
      if (c === T) cat[p] = 2;
      else if (c === M && cat[p] === 0) cat[p] = 1;
    }
  }
  return cat;
}

describe('synthetic cohort: zooming matters (closed-form statistics)', () => {
  // Train = the split's train slides; statistics are measured on the val + test slides.
  const cfg = resolveSyntheticConfig({ ...SYNTHETIC_PRESETS.small, numSlides: 120 });
  const d = cfg.dim;
  const k = cfg.k;
  const T = tumourClass(cfg);
  const M = mimicClass(cfg);
  const slides = Array.from({ length: cfg.numSlides }, (_, i) => syntheticSlide(cfg, i));
  const split = syntheticSplit(cfg);
  const index = (ids: string[]) => ids.map((id) => Number(id.slice(6)));
  const train = index(split.train);
  const held = index([...split.val, ...split.test]);

  // Class centroids from the training slides: Z by patch category, U by sub-patch class.
  const zc = [new Float64Array(d), new Float64Array(d), new Float64Array(d)];
  const zn = [0, 0, 0];
  const uc = { tumour: new Float64Array(d), mimic: new Float64Array(d), other: new Float64Array(d) };
  const un = { tumour: 0, mimic: 0, other: 0 };
  for (const i of train) {
    const s = slides[i];
    const cat = patchCategories(s.truth.subPatchClass, s.n, k, T, M);
    for (let p = 0; p < s.n; p++) {
      for (let e = 0; e < d; e++) zc[cat[p]][e] += s.lowRes[p * d + e];
      zn[cat[p]]++;
      for (let j = 0; j < k; j++) {
        const c = s.truth.subPatchClass[p * k + j];
        const key = c === T ? 'tumour' : c === M ? 'mimic' : 'other';
        for (let e = 0; e < d; e++) uc[key][e] += s.highRes[(p * k + j) * d + e];
        un[key]++;
      }
    }
  }
  zc.forEach((v, c) => v.forEach((_, e) => (v[e] /= zn[c])));
  for (const key of ['tumour', 'mimic', 'other'] as const) uc[key].forEach((_, e) => (uc[key][e] /= un[key]));
  const dist2 = (x: Float32Array, off: number, c: Float64Array) => {
    let q = 0;
    for (let e = 0; e < d; e++) q += (x[off + e] - c[e]) ** 2;
    return q;
  };
  // LR suspicion score: projection on (mean of suspicious patches - mean of normal patches).
  const sdir = zc[0].map((v, e) => (zc[1][e] + zc[2][e]) / 2 - v);
  const suspicion = (s: (typeof slides)[number]) =>
    Array.from({ length: s.n }, (_, p) => {
      let q = 0;
      for (let e = 0; e < d; e++) q += s.lowRes[p * d + e] * sdir[e];
      return q;
    });
  // HR detector: a patch is found tumour when one of its sub-patches is nearest the tumour centroid.
  const hasTumour = (s: (typeof slides)[number], p: number) => {
    for (let j = 0; j < k; j++) {
      const off = (p * k + j) * d;
      const t = dist2(s.highRes, off, uc.tumour);
      if (t < dist2(s.highRes, off, uc.mimic) && t < dist2(s.highRes, off, uc.other)) return true;
    }
    return false;
  };

  it('tumour and mimic patches look alike at low res and differ at high res', () => {
    // Nearest centroid, tumour vs mimic: on Z patches it is near chance, on U sub-patches near perfect.
    let zOk = 0;
    let zAll = 0;
    let uOk = 0;
    let uAll = 0;
    for (const i of held) {
      const s = slides[i];
      const cat = patchCategories(s.truth.subPatchClass, s.n, k, T, M);
      for (let p = 0; p < s.n; p++) {
        if (cat[p] !== 0) {
          const saysTumour = dist2(s.lowRes, p * d, zc[2]) < dist2(s.lowRes, p * d, zc[1]);
          zOk += Number(saysTumour === (cat[p] === 2));
          zAll++;
        }
        for (let j = 0; j < k; j++) {
          const c = s.truth.subPatchClass[p * k + j];
          if (c !== T && c !== M) continue;
          const off = (p * k + j) * d;
          uOk += Number(dist2(s.highRes, off, uc.tumour) < dist2(s.highRes, off, uc.mimic) === (c === T));
          uAll++;
        }
      }
    }
    expect(zAll).toBeGreaterThan(200);
    expect(zOk / zAll).toBeLessThan(0.62);
    expect(uOk / uAll).toBeGreaterThan(0.99);
  });

  it('a few well-chosen patches recover the full-resolution accuracy; random ones do not', () => {
    const acc = (predict: (s: (typeof slides)[number]) => number) =>
      held.reduce((ok, i) => ok + Number(predict(slides[i]) === slides[i].label), 0) / held.length;
    const anyFound = (s: (typeof slides)[number], patches: number[]) => (patches.some((p) => hasTumour(s, p)) ? 1 : 0);
    const topShare = (f: number) => (s: (typeof slides)[number]) => {
      const sc = suspicion(s);
      const order = sc.map((v, p) => [v, p]).sort((a, b) => b[0] - a[0]).map((x) => x[1]);
      return anyFound(s, order.slice(0, Math.ceil(f * s.n)));
    };
    let seed = 1;
    const randomShare = (f: number) => (s: (typeof slides)[number]) => {
      // Deterministic shuffle (LCG) so the test is stable.
      const order = Array.from({ length: s.n }, (_, p) => p);
      for (let q = s.n - 1; q > 0; q--) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        const r = seed % (q + 1);
        [order[q], order[r]] = [order[r], order[q]];
      }
      return anyFound(s, order.slice(0, Math.ceil(f * s.n)));
    };
    const full = acc((s) => anyFound(s, Array.from({ length: s.n }, (_, p) => p)));
    const top10 = acc(topShare(0.1));
    const top20 = acc(topShare(0.2));
    let random20 = 0;
    for (let rep = 0; rep < 5; rep++) random20 += acc(randomShare(0.2)) / 5;
    // Z alone: the best threshold on the largest suspicion score, chosen on the held-out slides
    // themselves (an upper bound for any rule on that statistic).
    const maxS = held.map((i) => Math.max(...suspicion(slides[i])));
    let zBest = 0;
    for (const th of maxS) {
      zBest = Math.max(zBest, held.reduce((ok, i, q) => ok + Number((maxS[q] >= th ? 1 : 0) === slides[i].label), 0) / held.length);
    }
    expect(full).toBeGreaterThanOrEqual(0.97);
    expect(top20).toBeGreaterThanOrEqual(full - 0.03);
    expect(top10).toBeGreaterThanOrEqual(full - 0.05);
    expect(random20).toBeLessThanOrEqual(full - 0.05);
    expect(zBest).toBeLessThanOrEqual(full - 0.15);
  });
});

/** Mean over rows of the number of other rows with |cos| >= tau. */
function meanNeighbours(z: Float32Array, n: number, d: number, tau: number): number {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let q = 0;
    for (let e = 0; e < d; e++) q += z[i * d + e] ** 2;
    norms[i] = Math.sqrt(q);
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let q = 0;
      for (let e = 0; e < d; e++) q += z[i * d + e] * z[j * d + e];
      if (Math.abs(q / (norms[i] * norms[j])) >= tau) total += 2;
    }
  }
  return total / n;
}

describe('synthetic cohort: cosine structure at low res', () => {
  it.each([
    ['tiny', SYNTHETIC_PRESETS.tiny, 12],
    ['small', SYNTHETIC_PRESETS.small, 20],
  ] as const)('%s: a row has a handful of neighbours with cos >= 0.95', (_, cfg, count) => {
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const s = syntheticSlide(cfg, i);
      sum += meanNeighbours(s.lowRes, s.n, s.dim, 0.95);
    }
    const mean = sum / count;
    expect(mean).toBeGreaterThanOrEqual(2);
    expect(mean).toBeLessThanOrEqual(10);
  });

  it.runIf(process.env.SASHA_SLOW_TESTS === '1')('default (d 64 and 384): a handful of neighbours too', () => {
    for (const dim of [64, 384]) {
      const cfg = { ...SYNTHETIC_PRESETS.default, dim, maxPatches: 1500 };
      let sum = 0;
      for (let i = 0; i < 8; i++) {
        const s = syntheticSlide(cfg, i);
        sum += meanNeighbours(s.lowRes, s.n, s.dim, 0.95);
      }
      expect(sum / 8).toBeGreaterThanOrEqual(2);
      expect(sum / 8).toBeLessThanOrEqual(10);
    }
  });
});

describe('SyntheticDataset and summaries', () => {
  it('loads only the requested parts, lazily and without leaks', async () => {
    const ds = new SyntheticDataset(tiny);
    expect(ds.ids).toHaveLength(12);
    expect(ds.dim).toBe(16);
    expect(ds.k).toBe(16);
    expect(ds.split).toEqual(syntheticSplit(tiny));
    await expectNoLeak(async () => {
      const bag = await ds.load('slide_002', ['lowRes']);
      expect(bag.highRes).toBeUndefined();
      expect(bag.coords).toBeUndefined();
      expect(bag.label).toBe(ds.labels[2]);
      expect(Array.from(bag.lowRes!.dataSync())).toEqual(Array.from(syntheticSlide(tiny, 2).lowRes));
      disposeBag(bag);
    });
    await expect(ds.load('nope')).rejects.toThrow(/not in this synthetic cohort/);
    await expect(ds.load('slide_000', ['aggregated'])).rejects.toThrow(/derived from highRes/);
  });

  it('summarises counts per class and split, N and tumour fractions', () => {
    const cohort = generateSyntheticCohort(tiny);
    try {
      const s = summarizeCohort(cohort);
      const ns = cohort.bags.map((b) => b.lowRes!.shape[0]);
      expect(s.numSlides).toBe(12);
      expect(s.perClass).toEqual({ 0: 7, 1: 5 });
      expect(s.patches.min).toBe(Math.min(...ns));
      expect(s.patches.max).toBe(Math.max(...ns));
      expect(s.patches.total).toBe(ns.reduce((a, b) => a + b, 0));
      const sub = s.perSplit!;
      expect(sub.train.total + sub.val.total + sub.test.total).toBe(12);
      const fr = cohort.truth.filter((t) => t.tumourFraction > 0).map((t) => t.tumourFraction);
      expect(s.tumourFraction!.min).toBe(Math.min(...fr));
      expect(s.tumourFraction!.max).toBe(Math.max(...fr));
      expect(formatCohortSummary(s)).toMatch(/^12 slides \(7 x label 0, 5 x label 1\), d = 16, k = 16/);
      expect(tf.memory().numTensors).toBeGreaterThan(0);
    } finally {
      cohort.bags.forEach(disposeBag);
    }
  });
});
