import { describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { balancedAccuracy, perClassAuc } from '../../src/eval/index.js';
import { ActorCriticPolicy } from '../../src/ppo/index.js';
import { evaluateFullResolution, evaluateSasha, trainSasha } from '../../src/pipeline/index.js';
import { lesionClass, mimicClass, SyntheticDataset, SYNTHETIC_PRESETS, syntheticLabels, syntheticSlide, syntheticSplit } from '../../src/wsi/synthetic/index.js';

describe('the multi-class synthetic preset', () => {
  it('has three balanced classes, each lesion slide holding its own lesion type, split stratified by class', () => {
    const c = SYNTHETIC_PRESETS.multiclass;
    const labels = syntheticLabels(c);
    expect([0, 1, 2].map((k) => labels.filter((y) => y === k).length)).toEqual([30, 30, 30]);
    const split = syntheticSplit(c);
    for (const subset of [split.train, split.val, split.test]) {
      const counts = [0, 1, 2].map((k) => subset.filter((id) => labels[Number(id.split('_')[1])] === k).length);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    const small = { ...c, numSlides: 9, minPatches: 20, maxPatches: 30 };
    for (let i = 0; i < 9; i++) {
      const s = syntheticSlide(small, i);
      const present = new Set(s.truth.subPatchClass);
      for (const k of [1, 2]) expect(present.has(lesionClass(small, k)), `slide ${i} label ${s.label}`).toBe(s.label === k);
      expect(s.truth.tumourFraction > 0).toBe(s.label > 0);
      expect(lesionClass(small, 1)).toBe(mimicClass(small) + 1);
    }
  });
});

describe('SASHA on three classes, end to end', () => {
  it('trains HAFED, f_S and the policy, and reports per-class AUC, balanced accuracy, F1 and the confusion matrix', async () => {
    // normal and two lesion types alike at low resolution; lesions made easy enough to learn in a test
    const ds = new SyntheticDataset({
      ...SYNTHETIC_PRESETS.tiny,
      numClasses: 3,
      positiveFraction: 2 / 3,
      numSlides: 54,
      minPatches: 20,
      maxPatches: 36,
      splitFractions: [0.5, 0.25, 0.25],
      microLesionRate: 0,
      macroLesionFraction: [0.08, 0.2],
      detailNorm: 3,
      highResNoise: 0.2,
      infiltrationRange: [0.4, 0.45],
      mimicInNegative: 0.3,
      seed: 4,
    });
    const before = tf.memory().numTensors;
    const { model, withV } = await trainSasha({
      dataset: ds,
      split: ds.split,
      seed: 4,
      config: { hafedTrain: { epochs: 12, lr: 2e-3 }, tsu: { epochs: 3 }, policyEpochs: 1, env: { budget: 0.2 } },
    });
    try {
      expect(model.hafed!.numClasses).toBe(3);
      const ids = ds.split.test;
      const full = await evaluateFullResolution({ classifier: model.hafed!, dataset: withV, ids });
      const sasha = await evaluateSasha({ classifier: model.hafed!, fS: model.fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: model.env });
      for (const ev of [full, sasha]) {
        const m = ev.metrics;
        const y = ev.slides.map((s) => s.label);
        const p = ev.slides.map((s) => s.probs);
        expect(m.confusion).toHaveLength(3);
        expect(m.confusion.flat().reduce((a, b) => a + b, 0)).toBe(ids.length);
        expect(m.perClassAuc).toEqual(perClassAuc(y, p));
        expect(m.auc).toBeCloseTo((m.perClassAuc[0] + m.perClassAuc[1] + m.perClassAuc[2]) / 3, 12);
        const recalls = m.confusion.map((row, k) => row[k] / row.reduce((a, b) => a + b, 0));
        expect(m.balancedAccuracy).toBeCloseTo((recalls[0] + recalls[1] + recalls[2]) / 3, 12);
        expect(m.balancedAccuracy).toBeCloseTo(balancedAccuracy(y, p.map((r) => r.indexOf(Math.max(...r)))), 12);
      }
      // HAFED on every high-res patch tells the two lesion types apart; SASHA-0.2 is well above chance (1/3)
      expect(Math.min(...full.metrics.perClassAuc)).toBeGreaterThan(0.9);
      expect(full.metrics.accuracy).toBeGreaterThanOrEqual(0.8);
      expect(sasha.metrics.accuracy).toBeGreaterThan(0.5);
      expect(sasha.slides.every((s) => s.probs.length === 3)).toBe(true);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});
