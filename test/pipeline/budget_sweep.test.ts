import { describe, expect, it } from 'vitest';
import { expectedCalibrationError } from '../../src/eval/index.js';
import { budgetSweepSvg, evaluateBudgetSweep, evaluateFullResolution, evaluateSasha, trainSasha } from '../../src/pipeline/index.js';
import { ActorCriticPolicy } from '../../src/ppo/index.js';
import { SyntheticDataset, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/index.js';

describe('evaluateBudgetSweep', () => {
  it('evaluates HAFED at 1 and SASHA below, on the same slides, with reliability bins and the plot', async () => {
    const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS.tiny, seed: 6 });
    const { model, withV } = await trainSasha({ dataset: ds, split: ds.split, seed: 1, config: { hafedTrain: { epochs: 2 }, tsu: { epochs: 2 }, policyEpochs: 1 } });
    try {
      const ids = ds.split.test;
      const asked: number[] = [];
      const rows = await evaluateBudgetSweep({
        classifier: model.hafed!,
        fS: model.fS,
        dataset: withV,
        ids,
        budgets: [1, 0.2, 0.1, 0.2],
        policyFor: (f) => {
          asked.push(f);
          return { policy: new ActorCriticPolicy(model.policy!), trainedFor: 0.2 };
        },
        env: model.env,
      });
      expect(rows.map((r) => r.budget)).toEqual([0.1, 0.2, 1]);
      expect(asked).toEqual([0.1, 0.2]);
      expect(rows.map((r) => r.policyTrainedFor)).toEqual([0.2, undefined, undefined]);
      const full = await evaluateFullResolution({ classifier: model.hafed!, dataset: withV, ids });
      expect(rows[2].evaluation.metrics).toEqual(full.metrics);
      const at02 = await evaluateSasha({ classifier: model.hafed!, fS: model.fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: { ...model.env, budget: 0.2 } });
      expect(rows[1].evaluation.metrics).toEqual(at02.metrics);
      for (const r of rows) {
        expect(r.reliability.reduce((a, b) => a + b.count, 0)).toBe(ids.length);
        const y = r.evaluation.slides.map((s) => s.label);
        const p = r.evaluation.slides.map((s) => s.probs);
        expect(r.evaluation.metrics.ece).toBeCloseTo(expectedCalibrationError(y, p), 12);
      }
      const svg = budgetSweepSvg(rows);
      expect(svg.match(/<circle /g)).toHaveLength(6);
      expect(svg).toContain(`(${ids.length} slides)`);
      await expect(evaluateBudgetSweep({ classifier: model.hafed!, fS: model.fS, dataset: withV, ids, budgets: [0], policyFor: () => new ActorCriticPolicy(model.policy!) })).rejects.toThrow(/budgets in \(0, 1\]/);
    } finally {
      model.dispose();
    }
  }, 120_000);
});
