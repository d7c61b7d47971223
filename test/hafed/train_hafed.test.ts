import { describe, expect, it } from 'vitest';
import {
  createRng,
  halfCosineLr,
  tf,
  DataError,
  InMemoryDataset,
  ShapeError,
  MemoryCheckpointStore,
  type SlideBag,
  type SlideDataset,
} from '../../src/core/index.js';
import {
  Hafed,
  hafedLoss,
  hafedTrainStep,
  evaluateHafed,
  predictHafed,
  trainHafed,
  type HafedConfig,
} from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';
import { AdamW } from '../../src/core/index.js';

const D = 8;
const K = 4;

/**
 * A tiny cohort: every sub-patch is noise; in a positive slide, 2 of the N patches have one
 * sub-patch shifted by +2.5 on feature 0. Z is the mean of each patch's sub-patches (the
 * signal is diluted k-fold there).
 */
function makeBags(seed: number, count: number, prefix: string, n = 10): SlideBag[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, s) => {
    const label = s % 2;
    const u = new Float32Array(n * K * D);
    for (let i = 0; i < u.length; i++) u[i] = rng.normal(0, 0.5);
    if (label === 1) {
      for (const p of rng.sample(n, 2)) u[(p * K + rng.int(K)) * D] += 2.5;
    }
    const z = new Float32Array(n * D);
    for (let p = 0; p < n; p++) for (let j = 0; j < K; j++) for (let c = 0; c < D; c++) z[p * D + c] += u[(p * K + j) * D + c] / K;
    return { id: `${prefix}${s}`, label, highRes: tf.tensor3d(u, [n, K, D]), lowRes: tf.tensor2d(z, [n, D]) };
  });
}

const MODEL: Partial<HafedConfig> = { numBranches2: 3, attentionDim: 8, maskTopK1: 2, maskTopK2: 4, maskDrop: 0.5 };

describe('trainHafed', () => {
  it('learns a small cohort, selects the best epoch on val F1 + AUC and returns its weights', async () => {
    const train = new InMemoryDataset(makeBags(1, 16, 't'));
    const val = new InMemoryDataset(makeBags(2, 8, 'v'));
    const lrs: number[] = [];
    const { model, history, best } = await trainHafed({
      train,
      val,
      model: MODEL,
      config: { epochs: 12, lr: 5e-3 },
      seed: 3,
      callbacks: { onStep: (s) => void lrs.push(s.lr) },
    });
    expect(model.dim).toBe(D);
    expect(model.k).toBe(K);
    expect(history).toHaveLength(12);
    expect(history[11].loss).toBeLessThan(history[0].loss);
    expect(best.val!.accuracy).toBeGreaterThanOrEqual(0.875);
    // best = the highest F1 + AUC; among tied epochs the lowest validation cross-entropy
    const scores = history.map((h) => h.score!);
    const top = Math.max(...scores);
    const tied = history.filter((h) => h.score === top);
    const expected = tied.reduce((a, b) => (b.valLoss! < a.valLoss! ? b : a));
    expect(best.epoch).toBe(expected.epoch);
    expect(best.valLoss).toBe(expected.valLoss);
    // the returned model holds the best epoch's weights
    const { metrics } = await evaluateHafed(model, val);
    expect(metrics.f1 + metrics.auc).toBeCloseTo(best.score, 6);
    // learning rate set every step from the half cosine at e + i / n
    expect(lrs).toHaveLength(12 * 16);
    expect(lrs[0]).toBeCloseTo(5e-3, 12);
    expect(lrs[16 * 6 + 8]).toBeCloseTo(halfCosineLr(6 + 8 / 16, { lr: 5e-3, epochs: 12 }), 12);
    model.dispose();
    train.dispose();
    val.dispose();
  });

  it("keeps the earliest of tied epochs with selectionTieBreak 'earliest' (the reference rule)", async () => {
    const train = new InMemoryDataset(makeBags(1, 16, 't'));
    const val = new InMemoryDataset(makeBags(2, 8, 'v'));
    const { model, history, best } = await trainHafed({ train, val, model: MODEL, config: { epochs: 5, lr: 5e-3, selectionTieBreak: 'earliest' }, seed: 3 });
    const scores = history.map((h) => h.score!);
    expect(best.epoch).toBe(scores.indexOf(Math.max(...scores)));
    // the validation loss is the mean -log p(label) of the validation predictions
    const preds = await predictHafed(model, val);
    const loss = preds.reduce((s, p) => s - Math.log(p.probs[p.label]), 0) / preds.length;
    expect(history[best.epoch].valLoss).toBeCloseTo(loss, 5);
    model.dispose();
  });

  it("trains stage 2 on Z alone with input 'lowRes'", async () => {
    const train = new InMemoryDataset(makeBags(3, 8, 't'));
    const { model, history, best } = await trainHafed({ train, model: { ...MODEL, input: 'lowRes' }, config: { epochs: 2 } });
    expect(model.aggregator).toBeNull();
    expect(history).toHaveLength(2);
    expect(best.epoch).toBe(1); // no validation: the last epoch
    const preds = await predictHafed(model, train);
    expect(preds).toHaveLength(8);
    expect(preds[0].probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    model.dispose();
    train.dispose();
  });

  it('resumes from a checkpoint and reproduces the uninterrupted run', async () => {
    const bags = () => new InMemoryDataset(makeBags(4, 6, 't'));
    const vbags = () => new InMemoryDataset(makeBags(5, 4, 'v'));
    const cfg = { epochs: 4, lr: 3e-3 };
    const straight = await trainHafed({ train: bags(), val: vbags(), model: MODEL, config: cfg, seed: 9 });

    const store = new MemoryCheckpointStore();
    const first = await trainHafed({
      train: bags(),
      val: vbags(),
      model: MODEL,
      config: cfg,
      seed: 9,
      checkpoint: store,
      callbacks: { onEpochEnd: (log) => log.epoch < 1 },
    });
    expect(first.history).toHaveLength(2);
    expect(store.names().sort()).toEqual(['best', 'last']);
    first.model.dispose();
    let startEpoch = -1;
    const resumed = await trainHafed({
      train: bags(),
      val: vbags(),
      model: MODEL,
      config: cfg,
      seed: 9,
      checkpoint: store,
      resume: true,
      callbacks: { onTrainingStart: (i) => void (startEpoch = i.startEpoch) },
    });
    expect(startEpoch).toBe(2);
    expect(resumed.history.map((h) => h.loss)).toEqual(straight.history.map((h) => h.loss));
    expect(resumed.best.epoch).toBe(straight.best.epoch);
    const a = straight.model.weightMap();
    const b = resumed.model.weightMap();
    for (const name of Object.keys(a)) expectAllclose(b[name], a[name], { rtol: 0, atol: 0 });
    // the 'best' checkpoint is a loadable HAFED
    const bestModel = Hafed.fromArtifacts((await store.load('best'))!);
    expect(bestModel.config).toEqual(straight.model.config);
    bestModel.dispose();
    straight.model.dispose();
    resumed.model.dispose();
  });

  it('refuses to resume a checkpoint of another config', async () => {
    const store = new MemoryCheckpointStore();
    const r = await trainHafed({ train: new InMemoryDataset(makeBags(6, 4, 't')), model: MODEL, config: { epochs: 1 }, checkpoint: store });
    r.model.dispose();
    await expect(
      trainHafed({ train: new InMemoryDataset(makeBags(6, 4, 't')), model: { ...MODEL, numBranches2: 2 }, config: { epochs: 2 }, checkpoint: store, resume: true }),
    ).rejects.toThrow(/other settings: model/);
    await expect(
      trainHafed({ train: new InMemoryDataset(makeBags(6, 5, 't')), model: MODEL, config: { epochs: 2 }, checkpoint: store, resume: true }),
    ).rejects.toThrow(/other settings: trainIds/);
  });

  describe('bad input: clear errors, no checkpoint written', () => {
    /** A dataset whose slide `bad` is replaced by `bad()` when loaded. */
    function withBadSlide(bags: SlideBag[], badId: string, bad: () => SlideBag, label?: number): SlideDataset {
      const base = new InMemoryDataset(bags);
      return {
        ids: base.ids,
        labels: base.ids.map((id, i) => (id === badId && label !== undefined ? label : base.labels[i])),
        dim: base.dim,
        k: base.k,
        parts: base.parts,
        load: (id, parts) => (id === badId ? Promise.resolve(bad()) : base.load(id, parts)),
      };
    }

    it('NaN features', async () => {
      const bags = makeBags(7, 6, 't');
      const nan = new Float32Array(10 * K * D).fill(0.1);
      nan[17] = NaN;
      const train = withBadSlide(bags, 't3', () => ({ id: 't3', label: 1, highRes: tf.tensor3d(nan, [10, K, D]) }));
      const store = new MemoryCheckpointStore();
      await expect(trainHafed({ train, model: MODEL, config: { epochs: 2 }, checkpoint: store })).rejects.toThrow(
        /highRes features of slide 't3'.*element 17 is NaN/,
      );
      expect(store.names()).toEqual([]);
    });

    it('an empty bag', async () => {
      const train = withBadSlide(makeBags(8, 4, 't'), 't1', () => ({ id: 't1', label: 1, highRes: tf.zeros([0, K, D]) as tf.Tensor3D }));
      const store = new MemoryCheckpointStore();
      await expect(trainHafed({ train, model: MODEL, config: { epochs: 1 }, checkpoint: store })).rejects.toThrow(/'t1' has an empty bag/);
      expect(store.names()).toEqual([]);
    });

    it('d or k different from the model', async () => {
      const train = new InMemoryDataset(makeBags(9, 4, 't'));
      await expect(trainHafed({ train, model: { ...MODEL, dim: 16 } })).rejects.toThrow(/d = 8, but the model expects d = 16/);
      await expect(trainHafed({ train, model: { ...MODEL, k: 16 } })).rejects.toThrow(ShapeError);
      // a slide whose k differs from the dataset's
      const mixed = withBadSlide(makeBags(9, 4, 't'), 't2', () => ({ id: 't2', label: 0, highRes: tf.ones([3, 2, D]) as tf.Tensor3D }));
      const store = new MemoryCheckpointStore();
      await expect(trainHafed({ train: mixed, model: MODEL, config: { epochs: 1 }, checkpoint: store })).rejects.toThrow(/expected k = 4/);
      expect(store.names()).toEqual([]);
    });

    it('a label outside the classes, or none', async () => {
      const bags = makeBags(10, 4, 't');
      const train = withBadSlide(bags, 't0', () => ({ ...bags[0], label: 2 }), 2);
      await expect(trainHafed({ train, model: MODEL })).rejects.toThrow(/'t0' of the training set has label 2, outside the model's classes \[0, 2\)/);
      const unlabeled = withBadSlide(makeBags(10, 4, 'u'), 'u1', () => ({ id: 'u1', highRes: tf.ones([3, K, D]) as tf.Tensor3D }), -1);
      await expect(trainHafed({ train: unlabeled, model: MODEL })).rejects.toThrow(/'u1' of the training set has no label/);
      await expect(trainHafed({ train: new InMemoryDataset(makeBags(10, 2, 'w')), model: { ...MODEL, input: 'lowRes' }, config: { epochs: 0 } })).rejects.toThrow(/epochs/);
    });

    it('a dataset without the features the model reads', async () => {
      const bags = makeBags(11, 4, 't').map((b) => ({ id: b.id, label: b.label, lowRes: b.lowRes }));
      await expect(trainHafed({ train: new InMemoryDataset(bags), model: MODEL })).rejects.toThrow(DataError);
    });
  });

  it('holds no extra tensors after training (and disposes what it created on error)', async () => {
    const train = new InMemoryDataset(makeBags(12, 6, 't'));
    const val = new InMemoryDataset(makeBags(13, 4, 'v'));
    const before = tf.memory().numTensors;
    const { model } = await trainHafed({ train, val, model: MODEL, config: { epochs: 3 }, checkpoint: new MemoryCheckpointStore() });
    const modelTensors = model.trainableVariables().length;
    expect(tf.memory().numTensors).toBe(before + modelTensors);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(trainHafed({ train, val, model: { ...MODEL, dim: 3 } })).rejects.toThrow(ShapeError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops when onStep returns false, and reports progress', async () => {
    const train = new InMemoryDataset(makeBags(14, 6, 't'));
    const events: number[] = [];
    const { model, history, best } = await trainHafed({
      train,
      model: MODEL,
      config: { epochs: 3 },
      onProgress: (e) => {
        expect(e.total).toBe(18);
        events.push(e.done);
      },
      callbacks: { onStep: (s) => s.globalStep < 8 },
    });
    expect(events).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(history).toHaveLength(1); // the partial second epoch is not logged
    expect(best.epoch).toBe(0);
    model.dispose();
  });
});

describe('hafedTrainStep', () => {
  it('takes one AdamW step on the gradient of hafedLoss, with the STKIM draws of the given generator', async () => {
    const [bag] = makeBags(4, 2, 's').slice(1); // a positive slide
    const stepped = new Hafed({ dim: D, k: K, ...MODEL, seed: 7 });
    const manual = new Hafed({ dim: D, k: K, ...MODEL, seed: 7 });
    const initial = stepped.getWeights();
    const optA = new AdamW({ learningRate: 1e-2, weightDecay: 1e-3 });
    const optB = new AdamW({ learningRate: 1e-2, weightDecay: 1e-3 });
    // the same computation written out: loss, gradients, one AdamW step
    const rng = createRng(11);
    const vars = manual.trainableVariables();
    let parts: number[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const l = hafedLoss(manual.forward(bag.highRes as tf.Tensor3D, { training: true, rng }), 1);
      parts = [l.slide, l.branch].map((t) => t.dataSync()[0]);
      return l.total;
    }, vars);
    const expectedLoss = value.dataSync()[0];
    optB.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);

    const r = hafedTrainStep(stepped, optA, bag.highRes as tf.Tensor3D, 1, createRng(11));
    expect(r.loss).toBeCloseTo(expectedLoss, 6);
    expect(r.slideLoss).toBeCloseTo(parts[0], 6);
    expect(r.branchLoss).toBeCloseTo(parts[1], 6);
    expect(r.loss).toBeCloseTo(r.slideLoss + r.branchLoss + r.similarityLoss, 5);
    expect([0, 1]).toContain(r.pred);
    const a = stepped.getWeights();
    const b = manual.getWeights();
    for (const name of Object.keys(b)) {
      expectAllclose(a[name], b[name], { rtol: 1e-5, atol: 1e-7 });
      // every weight moved (the attention biases before a softmax only by the weight decay)
      const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(a[name], initial[name]))).dataSync()[0]);
      expect(moved, name).toBeGreaterThan(0);
    }
    tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(initial)]);
    // later steps (the optimiser state exists now) hold no tensor
    await expectNoLeak(() => hafedTrainStep(stepped, optA, bag.highRes as tf.Tensor3D, 1, createRng(12)));
    for (const m of [stepped, manual]) m.dispose();
    optA.dispose();
    optB.dispose();
    tf.dispose([bag.highRes!, bag.lowRes!]);
  });
});
