import { describe, expect, it } from 'vitest';
import { MemoryCheckpointStore, tf } from '../../src/core/index.js';
import { ABLATION_ROWS, presetConfig, runAblation, sashaPreset, SASHA_PRESETS } from '../../src/pipeline/index.js';
import { PPO_PRESETS } from '../../src/ppo/index.js';
import { SyntheticDataset, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/features.js';

const quick = { hafedTrain: { epochs: 2, lr: 2e-3 }, tsu: { epochs: 2 }, policyEpochs: 1 };

describe('runAblation', () => {
  it('trains every variant once, evaluates the rows on the same test slides and compares them with SASHA', async () => {
    const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS.tiny, seed: 4 });
    const store = new MemoryCheckpointStore();
    const before = tf.memory().numTensors;
    const log: string[] = [];
    const r = await runAblation({ dataset: ds, split: ds.split, budget: 0.2, config: quick, seed: 2, store, resamples: 200, log: (m) => log.push(m) });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.rows.map((x) => x.name)).toEqual([...ABLATION_ROWS]);
    const n = ds.split.test.length;
    for (const row of r.rows) {
      expect(row.evaluation.metrics.n).toBe(n);
      expect(row.evaluation.slides.map((s) => s.id)).toEqual(ds.split.test);
      if (row.name === 'default') {
        expect(row.vsDefault).toBeUndefined();
        continue;
      }
      const v = row.vsDefault!;
      expect(v.accuracyA).toBe(r.rows[0].evaluation.metrics.accuracy);
      expect(v.accuracyB).toBe(row.evaluation.metrics.accuracy);
      expect((v.accuracyA - v.accuracyB) * n).toBeCloseTo(v.mcnemar.aOnly - v.mcnemar.bOnly, 9);
    }
    // zooming rows zoom T = ceil(0.2 N) patches; Z only zooms none
    const z = r.rows.find((x) => x.name === 'z-only')!;
    expect(z.evaluation.slides.every((s) => s.actions.length === 0)).toBe(true);
    const rnd = r.rows.find((x) => x.name === 'random')!;
    expect(rnd.evaluation.slides.every((s) => s.actions.length >= 1)).toBe(true);
    // each variant has its own stages in the store
    for (const key of ['default/hafed', 'default/tsu', 'default/policy', 'single-branch/hafed', 'single-branch/policy', 'global-update/best', 'z-only/best']) {
      expect(await store.load(key), key).not.toBeNull();
    }
    // resuming with the same store trains nothing and gives the same table
    const again = await runAblation({ dataset: ds, split: ds.split, budget: 0.2, config: quick, seed: 2, store, resume: true, resamples: 200, rows: ['single-branch'] });
    expect(again.rows.map((x) => x.name)).toEqual(['default', 'single-branch']);
    expect(again.rows[1].evaluation.metrics).toEqual(r.rows[1].evaluation.metrics);
    expect(again.rows[0].evaluation.metrics).toEqual(r.rows[0].evaluation.metrics);
  }, 180_000);

  it('rejects a budget of 1 and unknown rows', async () => {
    const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS.tiny, seed: 4 });
    await expect(runAblation({ dataset: ds, split: ds.split, budget: 1 })).rejects.toThrow(/budget f in \(0, 1\)/);
    await expect(runAblation({ dataset: ds, split: ds.split, budget: 0.2, rows: ['nope' as never] })).rejects.toThrow(/ablation rows among/);
  });
});

describe('presets', () => {
  it('hold the official configs per dataset and merge under explicit settings', () => {
    expect(sashaPreset('tcga')).toMatchObject({ hafed: { numBranches2: 1, maskDrop: 0.4 }, hafedTrain: { lr: 4e-4, weightDecay: 1e-4 }, tsu: { learningRate: 3e-4, weightDecay: 5e-3, epochs: 500 }, policyEpochs: 25 });
    expect(sashaPreset('camelyon16')).toMatchObject({ hafed: { numBranches2: 5, maskDrop: 0.24 }, hafedTrain: { lr: 4.14e-4, weightDecay: 1e-5 }, tsu: { learningRate: 4e-5, weightDecay: 4e-4, epochs: 1000 }, policyEpochs: 15 });
    expect(SASHA_PRESETS.tcga.ppo).toBe(PPO_PRESETS.tcga);
    const c = presetConfig('tcga', { hafed: { numBranches2: 3 }, policyEpochs: 2, tsu: { epochs: 7 } });
    expect(c.hafed).toEqual({ numBranches2: 3, maskDrop: 0.4 });
    expect(c.tsu).toEqual({ learningRate: 3e-4, weightDecay: 5e-3, epochs: 7, tau: 0.95 });
    expect(c.policyEpochs).toBe(2);
    expect(c.ppo).toEqual({ gaeLambda: 0.95, clipCoef: 0.1 });
    expect(() => sashaPreset('c16')).toThrow(/preset in default, reference, camelyon16, tcga/);
  });
});
