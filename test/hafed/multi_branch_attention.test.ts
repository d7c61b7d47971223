import { describe, expect, it } from 'vitest';
import { createRng, tf, tfl, ShapeError, ValueError } from '../../src/core/index.js';
import { MultiBranchAttention, attentionPool, multiBranchAttention } from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';
import { refAttention, toMat, type AttentionWeights } from './reference.js';

function weightsOf(layer: MultiBranchAttention): AttentionWeights {
  const w = layer.weightMap();
  const mat = (t: tf.Tensor) => toMat(t.dataSync(), t.shape[0], t.shape[1] as number);
  return {
    kernelV: mat(w.kernelV),
    biasV: Array.from(w.biasV.dataSync()),
    kernelU: w.kernelU ? mat(w.kernelU) : undefined,
    biasU: w.biasU ? Array.from(w.biasU.dataSync()) : undefined,
    kernelW: mat(w.kernelW),
    biasW: Array.from(w.biasW.dataSync()),
  };
}

function randomMatrix(seed: number, rows: number, cols: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
}

describe('MultiBranchAttention', () => {
  it('matches a float64 reference of gated attention on one bag', () => {
    const layer = multiBranchAttention({ numBranches: 3, attentionDim: 4, seed: 11 });
    const xs = randomMatrix(1, 6, 5);
    const x = tf.tensor2d(xs);
    const { attention, pooled, logits } = layer.forward(x);
    expect(attention.shape).toEqual([3, 6]);
    expect(pooled!.shape).toEqual([3, 5]);
    expect(logits.shape).toEqual([3, 6]);
    const ref = refAttention(xs, weightsOf(layer));
    expectAllclose(attention, ref, { rtol: 1e-4, atol: 1e-6 });
    // pooled_m = sum_i a_mi x_i
    const refPooled = ref.map((a) => xs[0].map((_, j) => a.reduce((s, ai, i) => s + ai * xs[i][j], 0)));
    expectAllclose(pooled!, refPooled, { rtol: 1e-4, atol: 1e-5 });
    // each branch's attention sums to 1
    expectAllclose(tf.sum(attention, 1), [1, 1, 1], { rtol: 1e-5 });
  });

  it('treats leading axes as separate bags (stage-1 layout [N, k, d])', () => {
    const layer = multiBranchAttention({ numBranches: 2, attentionDim: 3, seed: 2, gated: false });
    const bags = [randomMatrix(3, 4, 5), randomMatrix(4, 4, 5), randomMatrix(5, 4, 5)];
    const { attention, pooled } = layer.forward(tf.tensor3d(bags));
    expect(attention.shape).toEqual([3, 2, 4]);
    expect(pooled!.shape).toEqual([3, 2, 5]);
    const w = weightsOf(layer);
    expect(w.kernelU).toBeUndefined();
    const refAtt = bags.map((b) => refAttention(b, w));
    expectAllclose(attention, refAtt.flat(2), { rtol: 1e-4, atol: 1e-6 });
    const refPooled = bags.map((b, i) => refAtt[i].map((a) => b[0].map((_, j) => a.reduce((s, ai, r) => s + ai * b[r][j], 0))));
    expectAllclose(pooled!, refPooled.flat(2), { rtol: 1e-4, atol: 1e-5 });
  });

  it('rowScores depend on each row alone', () => {
    const layer = multiBranchAttention({ numBranches: 2, attentionDim: 4, seed: 3 });
    const x = tf.tensor2d(randomMatrix(6, 5, 3));
    const all = layer.rowScores(x);
    const some = layer.rowScores(tf.slice(x, [2, 0], [2, 3]) as tf.Tensor2D);
    expect(all.shape).toEqual([5, 2]);
    expectAllclose(some, tf.slice(all, [2, 0], [2, 2]), { rtol: 1e-6 });
  });

  it('attentionPool computes a weighted sum by hand', () => {
    // [0.25, 0.75] . [[4, 0], [0, 4]] = [1, 3]
    expectAllclose(attentionPool(tf.tensor2d([[0.25, 0.75]]), tf.tensor2d([[4, 0], [0, 4]])), [1, 3]);
    // batched: bag 0 all weight on row 1, bag 1 half-half
    const a = tf.tensor3d([[[0, 1]], [[0.5, 0.5]]]);
    const x = tf.tensor3d([[[1, 2], [3, 4]], [[2, 0], [0, 6]]]);
    expectAllclose(attentionPool(a, x), [3, 4, 1, 3]);
    expect(() => attentionPool(tf.ones([1, 3]), tf.ones([2, 2]))).toThrow(ShapeError);
  });

  describe('STKIM', () => {
    const countMasked = (logits: tf.Tensor) => {
      const v = logits.dataSync();
      const n = logits.shape[logits.rank - 1];
      const perRow: number[] = [];
      for (let r = 0; r < v.length / n; r++) {
        let c = 0;
        for (let i = 0; i < n; i++) if (v[r * n + i] <= -1e8) c++;
        perRow.push(c);
      }
      return perRow;
    };

    it('masks exactly floor(min(topK, n) * maskDrop) of the top-k logits per branch, in training only', () => {
      const layer = multiBranchAttention({ numBranches: 5, attentionDim: 8, maskTopK: 20, maskDrop: 0.24, seed: 4 });
      const x = tf.tensor2d(randomMatrix(7, 50, 6));
      const raw = tf.transpose(layer.rowScores(x)); // [5, 50]
      const rng = createRng(9);
      const train = layer.forward(x, { training: true, rng });
      // int(20 * 0.24) = int(4.8) = 4 per branch
      expect(countMasked(train.logits)).toEqual([4, 4, 4, 4, 4]);
      // the masked instances are among the 20 highest raw logits of their branch
      const r = raw.arraySync() as number[][];
      const l = train.logits.arraySync() as number[][];
      for (let m = 0; m < 5; m++) {
        const top20 = new Set([...r[m].keys()].sort((a, b) => r[m][b] - r[m][a]).slice(0, 20));
        for (let i = 0; i < 50; i++) {
          if (l[m][i] <= -1e8) expect(top20.has(i)).toBe(true);
          else expect(l[m][i]).toBeCloseTo(r[m][i], 5);
        }
      }
      // masked instances have zero attention
      const a = train.attention.arraySync() as number[][];
      for (let m = 0; m < 5; m++) for (let i = 0; i < 50; i++) if (l[m][i] <= -1e8) expect(a[m][i]).toBe(0);
      // evaluation: no masking at all
      expect(countMasked(layer.forward(x).logits)).toEqual([0, 0, 0, 0, 0]);
      expect(countMasked(layer.forward(x, { training: false, rng }).logits)).toEqual([0, 0, 0, 0, 0]);
    });

    it('uses min(topK, n) when the bag is small, per bag of a batch, and keeps one instance', () => {
      // stage-1 layout: 7 bags of k = 16, topK 10, maskDrop 0.24 -> int(2.4) = 2 per bag
      const s1 = multiBranchAttention({ numBranches: 1, attentionDim: 4, maskTopK: 10, maskDrop: 0.24, seed: 5 });
      const u = tf.randomNormal([7, 16, 3], 0, 1, 'float32', 1);
      expect(countMasked(s1.forward(u, { training: true, rng: createRng(1) }).logits)).toEqual([2, 2, 2, 2, 2, 2, 2]);
      // n = 6 < topK = 20: int(6 * 0.5) = 3
      const s2 = multiBranchAttention({ numBranches: 2, attentionDim: 4, maskTopK: 20, maskDrop: 0.5, seed: 6 });
      expect(countMasked(s2.forward(tf.randomNormal([6, 3], 0, 1, 'float32', 2), { training: true }).logits)).toEqual([3, 3]);
      // maskDrop 1 on a bag of 4: int(4 * 1) = 4 is capped at n - 1 = 3
      const s3 = multiBranchAttention({ numBranches: 1, attentionDim: 4, maskTopK: 10, maskDrop: 1, seed: 7 });
      expect(countMasked(s3.forward(tf.randomNormal([4, 3], 0, 1, 'float32', 3), { training: true }).logits)).toEqual([3]);
    });

    it('draws reproducibly from a seeded generator and differently across calls', () => {
      const layer = multiBranchAttention({ numBranches: 2, attentionDim: 4, maskTopK: 10, maskDrop: 0.5, seed: 8 });
      const x = tf.randomNormal([30, 4], 0, 1, 'float32', 4);
      const a = layer.forward(x, { training: true, rng: createRng(3) }).logits.dataSync();
      const b = layer.forward(x, { training: true, rng: createRng(3) }).logits.dataSync();
      expect(Array.from(a)).toEqual(Array.from(b));
      const rng = createRng(3);
      const c1 = layer.forward(x, { training: true, rng }).logits.dataSync();
      const c2 = layer.forward(x, { training: true, rng }).logits.dataSync();
      expect(Array.from(c1)).not.toEqual(Array.from(c2));
    });
  });

  it('applies an instance mask and never picks masked instances for STKIM', () => {
    const layer = multiBranchAttention({ numBranches: 2, attentionDim: 4, maskTopK: 4, maskDrop: 0.5, seed: 9 });
    const x = tf.randomNormal([8, 3], 0, 1, 'float32', 5);
    const mask = tf.tensor1d([1, 1, 0, 1, 1, 0, 1, 1]);
    const evalOut = layer.forward(x, { mask });
    const a = evalOut.attention.arraySync() as number[][];
    for (const row of a) {
      expect(row[2]).toBe(0);
      expect(row[5]).toBe(0);
      expect(row.reduce((s, z) => s + z, 0)).toBeCloseTo(1, 5);
    }
    const train = layer.forward(x, { mask, training: true, rng: createRng(2) }).logits.arraySync() as number[][];
    // 2 masked by the instance mask + int(4 * 0.5) = 2 by STKIM among the kept ones
    for (const row of train) expect(row.filter((z) => z <= -1e8).length).toBe(4);
    expect(() => layer.forward(x, { mask: tf.ones([7]) })).toThrow(ShapeError);
  });

  it('serialization round trip: config, and a LayersModel saved and loaded', async () => {
    const layer = new MultiBranchAttention({ numBranches: 3, attentionDim: 6, maskTopK: 5, maskDrop: 0.4, seed: 12, name: 'mba' });
    const config = layer.getConfig();
    expect(config).toMatchObject({ numBranches: 3, attentionDim: 6, gated: true, maskTopK: 5, maskDrop: 0.4, seed: 12, name: 'mba' });
    const again = MultiBranchAttention.fromConfig(MultiBranchAttention, config) as MultiBranchAttention;
    expect(again.getConfig()).toEqual(config);

    const input = tfl.input({ shape: [7, 4] });
    const outputs = layer.apply(input) as tfl.SymbolicTensor[];
    expect(outputs.map((o) => o.shape)).toEqual([
      [null, 3, 4],
      [null, 3, 7],
    ]);
    const model = tfl.model({ inputs: input, outputs });
    const x = tf.randomNormal([2, 7, 4], 0, 1, 'float32', 6);
    const before = model.predict(x) as tf.Tensor[];
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    expect(tf.serialization.getRegisteredName(MultiBranchAttention)).toBe('sasha>MultiBranchAttention');
    expect(JSON.stringify(saved!.modelTopology)).toContain('"class_name":"MultiBranchAttention"');
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const after = loaded.predict(x) as tf.Tensor[];
    expectAllclose(after[0], before[0], { rtol: 1e-6 });
    expectAllclose(after[1], before[1], { rtol: 1e-6 });
    const restored = loaded.layers[1] as MultiBranchAttention;
    expect(restored).toBeInstanceOf(MultiBranchAttention);
    expect(restored.maskTopK).toBe(5);
    model.dispose();
    loaded.dispose();
  });

  it('rejects bad arguments with a clear message', () => {
    expect(() => multiBranchAttention({ numBranches: 0 })).toThrow(/numBranches.*integer >= 1.*got 0/);
    expect(() => multiBranchAttention({ maskDrop: 1.5 })).toThrow(ValueError);
    expect(() => multiBranchAttention({ attentionDim: 2.5 })).toThrow(/attentionDim/);
    const layer = multiBranchAttention({ seed: 1 });
    layer.forward(tf.ones([3, 4]));
    expect(() => layer.forward(tf.ones([3, 5]))).toThrow(/built for features of width 4, but got width 5/);
    expect(() => layer.forward(tf.ones([0, 4]))).toThrow(/at least one instance/);
  });

  it('leaks no tensors in training and evaluation', async () => {
    const layer = multiBranchAttention({ numBranches: 2, attentionDim: 4, maskTopK: 4, maskDrop: 0.5, seed: 10 });
    const x = tf.randomNormal([9, 3]);
    layer.forward(x); // builds
    await expectNoLeak(() => {
      for (let i = 0; i < 3; i++) {
        const out = layer.forward(x, { training: i % 2 === 0 });
        tf.dispose([out.logits, out.attention, out.pooled!]);
      }
    });
  });
});
