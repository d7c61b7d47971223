import { describe, expect, it } from 'vitest';
import { DataError, InMemoryDataset, ValueError, createRng, tf, type SlideBag } from '../../src/core/index.js';
import { MemoryCheckpointStore } from '../../src/core/index.js';
import { StateMlp, trainTsu, type TsuEpochRecord } from '../../src/tsu/index.js';
import { clusteredFeatures } from '../mdp/stand_in_classifier.js';
import { expectAllclose } from '../helpers.js';

const D = 8;

// V(i) = standardise(tanh(A Z(i))) for a fixed random A: a non-linear map of the row, with the
// row statistics a LayerNorm output can express.
const A = (() => {
  const rng = createRng(42);
  return Float64Array.from({ length: D * D }, () => rng.normal() / Math.sqrt(D) * 2);
})();
function targetOf(z: Float32Array, n: number): Float32Array {
  const v = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: D }, (_, j) => {
      let s = 0;
      for (let q = 0; q < D; q++) s += A[j * D + q] * z[i * D + q];
      return Math.tanh(s);
    });
    const mean = row.reduce((a, b) => a + b, 0) / D;
    const sd = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / D) + 1e-6;
    row.forEach((x, j) => (v[i * D + j] = (x - mean) / sd));
  }
  return v;
}

function makeBags(count: number, n: number, seed: number, withV = true, k = 0): SlideBag[] {
  return Array.from({ length: count }, (_, s) => {
    const f = clusteredFeatures(n, D, seed + s, { clusterSize: 6, sigmaLo: 0.05, sigmaHi: 0.25 });
    f.v = targetOf(f.z, n);
    const bag: SlideBag = { id: `slide_${seed + s}`, label: s % 2, lowRes: tf.tensor2d(f.z, [n, D]) };
    if (withV) bag.aggregated = tf.tensor2d(f.v, [n, D]);
    if (k > 0) {
      // U whose mean over k is V: V +- a per-sub-patch offset that cancels out
      const u = new Float32Array(n * k * D);
      for (let i = 0; i < n; i++)
        for (let q = 0; q < k; q++)
          for (let j = 0; j < D; j++) u[(i * k + q) * D + j] = f.v[i * D + j] + (q % 2 === 0 ? 0.5 : -0.5);
      bag.highRes = tf.tensor3d(u, [n, k, D]);
    }
    return bag;
  });
}

describe('trainTsu', () => {
  it('lowers validation MSE well below the identity map, keeps the best epoch, frees its tensors', async () => {
    const dataset = new InMemoryDataset([...makeBags(8, 30, 0), ...makeBags(3, 30, 100)]);
    const split = { train: dataset.ids.slice(0, 8), val: dataset.ids.slice(8) };
    const before = tf.memory().numTensors;
    const events: number[] = [];
    const bests: TsuEpochRecord[] = [];
    let saved = 0;
    const store = new MemoryCheckpointStore();
    const { model, history, bestEpoch, bestValMse, identityValMse, config } = await trainTsu({
      dataset,
      split,
      config: { epochs: 60, learningRate: 3e-3, weightDecay: 1e-4, seed: 1 },
      onProgress: (e) => events.push(e.done),
      onBest: (_m, r) => void bests.push(r),
      checkpoint: {
        save: async (name, artifacts) => {
          if (name === 'best') saved++;
          await store.save(name, artifacts);
        },
        load: (name) => store.load(name),
      },
    });
    expect(config.tau).toBe(0.95);
    expect(history).toHaveLength(60);
    expect(events).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // the learned f_S beats predicting V(i) by Z(i) by a wide margin
    expect(identityValMse).toBeGreaterThan(0.3);
    expect(bestValMse).toBeLessThan(0.5 * identityValMse);
    expect(history[59].trainMse).toBeLessThan(history[0].trainMse);
    // selection: the best epoch has the lowest validation MSE; improvements were checkpointed
    expect(Math.min(...history.map((h) => h.valMse))).toBe(bestValMse);
    expect(history[bestEpoch - 1].valMse).toBe(bestValMse);
    expect(bests.at(-1)!.epoch).toBe(bestEpoch);
    expect(saved).toBe(bests.length);
    // the 'best' checkpoint is a loadable f_S holding the selected weights
    const fromBest = StateMlp.fromArtifacts((await store.load('best'))!);
    expectAllclose(fromBest.getWeights()['fc2/kernel'], model.getWeights()['fc2/kernel'], { rtol: 0, atol: 0 });
    fromBest.dispose();
    // the learning rate follows the half cosine down to 0
    expect(history[59].learningRate).toBeLessThan(1e-5);
    // only the model's 6 variables stay alive
    expect(tf.memory().numTensors - before).toBe(6);
    model.dispose();
    dataset.dispose();
  });

  it('computes V with an aggregator when the dataset has only U, and stops when onEpoch says so', async () => {
    const withV = new InMemoryDataset(makeBags(3, 20, 7));
    const withU = new InMemoryDataset(makeBags(3, 20, 7, false, 4));
    const split = { train: withV.ids.slice(0, 2), val: withV.ids.slice(2) };
    const aggregator = { aggregate: (u: tf.Tensor3D) => tf.mean(u, 1) as tf.Tensor2D };
    const run = (dataset: InMemoryDataset, extra = {}) =>
      trainTsu({ dataset, split, config: { epochs: 3, seed: 2 }, model: new StateMlp({ dim: D, seed: 3 }), ...extra });
    const a = await run(withV);
    const b = await run(withU, { aggregator });
    expectAllclose(
      b.history.map((h) => h.valMse),
      a.history.map((h) => h.valMse),
      { rtol: 1e-5 },
    );
    expectAllclose([b.identityValMse], [a.identityValMse], { rtol: 1e-6 });
    const c = await run(withV, { onEpoch: (r: TsuEpochRecord) => r.epoch < 2 });
    expect(c.history).toHaveLength(2);
    await expect(run(withU)).rejects.toThrow(DataError);
    await expect(run(withU)).rejects.toThrow(/cached V \(aggregated\), or one with highRes features together with `aggregator`/);
    [a, b, c].forEach((r) => r.model.dispose());
    withV.dispose();
    withU.dispose();
  });

  it('resumes from its last checkpoint exactly as if never interrupted', async () => {
    const dataset = new InMemoryDataset(makeBags(4, 20, 11));
    const split = { train: dataset.ids.slice(0, 3), val: dataset.ids.slice(3) };
    const config = { epochs: 6, learningRate: 2e-3, seed: 3, checkpointEvery: 1 };
    const whole = await trainTsu({ dataset, split, config });
    const store = new MemoryCheckpointStore();
    const first = await trainTsu({ dataset, split, config, checkpoint: store, onEpoch: (r) => r.epoch < 3 });
    expect(first.history).toHaveLength(3);
    const resumed = await trainTsu({ dataset, split, config, checkpoint: store, resume: true });
    expect(resumed.history).toEqual(whole.history);
    expect(resumed.bestEpoch).toBe(whole.bestEpoch);
    for (const name of ['fc1/kernel', 'layer_norm/gamma'] as const) {
      expectAllclose(resumed.model.getWeights()[name], whole.model.getWeights()[name], { rtol: 0, atol: 0 });
    }
    // another config (other than a longer run) is refused
    await expect(trainTsu({ dataset, split, config: { ...config, tau: 0.9 }, checkpoint: store, resume: true })).rejects.toThrow(
      /other settings: train \(checkpoint: .*"tau":0.95/,
    );
    [whole, first, resumed].forEach((r) => r.model.dispose());
    dataset.dispose();
  });

  it('rejects a bad config or an empty training list', async () => {
    const dataset = new InMemoryDataset(makeBags(1, 10, 3));
    const split = { train: [...dataset.ids], val: [] };
    await expect(trainTsu({ dataset, split, config: { tau: 1.5 } })).rejects.toThrow(/TrainTsuConfig.tau/);
    await expect(trainTsu({ dataset, split, config: { epochs: 0 } })).rejects.toThrow(/TrainTsuConfig.epochs/);
    await expect(trainTsu({ dataset, split: { train: [], val: [] } })).rejects.toThrow(ValueError);
    await expect(trainTsu({ dataset, split, model: new StateMlp({ dim: 4 }) })).rejects.toThrow(/width d = 8/);
    dataset.dispose();
  });
});
