import { describe, expect, it } from 'vitest';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  builtinEncoder,
  builtinEncoderModel,
  functionEncoder,
  graphModelEncoder,
  layersModelEncoder,
  preprocessPatches,
  toFeatureMatrix,
  type GraphModelLike,
} from '../../src/wsi/index.js';
import { tf, tfl, ShapeError, ValueError } from '../../src/core/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** Patches with a constant colour per image: image b has RGB (10 b, 20 b, 30 b). */
function colourBatch(b: number, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const rows = Array.from({ length: b }, (_, i) => [10 * i, 20 * i, 30 * i]);
    return tf.mul(tf.ones([b, size, size, 3]), tf.reshape(tf.tensor2d(rows), [b, 1, 1, 3])) as tf.Tensor4D;
  });
}

describe('preprocessPatches', () => {
  it('normalises with ImageNet statistics', () => {
    const x = tf.fill([1, 4, 4, 3], 255) as tf.Tensor4D;
    const y = preprocessPatches(x, { inputSize: 4 });
    // (1 - 0.485) / 0.229 = 2.24891, (1 - 0.456) / 0.224 = 2.42857, (1 - 0.406) / 0.225 = 2.64
    expectAllclose(tf.slice(y, [0, 0, 0, 0], [1, 1, 1, 3]), [2.24891, 2.42857, 2.64], { rtol: 1e-4 });
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
    tf.dispose([x, y]);
  });

  it('resizes, scales to [0, 1] and moves channels first', () => {
    const x = colourBatch(2, 8);
    const y = preprocessPatches(x, { inputSize: 4, normalization: 'unit', dataFormat: 'channelsFirst' });
    expect(y.shape).toEqual([2, 3, 4, 4]);
    // image 1 is (10, 20, 30) everywhere -> channel planes 10/255, 20/255, 30/255
    expectAllclose(tf.mean(tf.slice(y, [1, 0, 0, 0], [1, 3, 4, 4]), [2, 3]), [10 / 255, 20 / 255, 30 / 255]);
    const z = preprocessPatches(x, { inputSize: 8, normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } });
    expectAllclose(tf.slice(z, [1, 0, 0, 0], [1, 1, 1, 3]), [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1], { rtol: 1e-5 });
    tf.dispose([x, y, z]);
  });

  it('rejects bad batches and normalisations', () => {
    const x = tf.zeros([1, 4, 4, 4]) as tf.Tensor4D;
    expect(() => preprocessPatches(x, { inputSize: 4 })).toThrow(/\[B, h, w, 3\], but got \[1, 4, 4, 4\]/);
    expect(() => preprocessPatches(x, { inputSize: 4, normalization: { mean: [0], std: [1] } })).toThrow(ValueError);
    x.dispose();
  });
});

describe('toFeatureMatrix', () => {
  it('flattens unit axes and pools tokens', () => {
    const a = tf.ones([2, 1, 1, 5]);
    expect(toFeatureMatrix(a).shape).toEqual([2, 5]);
    const t = tf.tensor3d([[[1, 2], [3, 4], [5, 6]]]); // [1, 3, 2]
    expectAllclose(toFeatureMatrix(t, 'cls'), [1, 2]);
    expectAllclose(toFeatureMatrix(t, 'mean'), [3, 4]);
    expect(() => toFeatureMatrix(t)).toThrow(/tokenPooling/);
    expect(() => toFeatureMatrix(tf.ones([2, 3, 4, 5]))).toThrow(ShapeError);
  });
});

describe('builtinEncoder', () => {
  it('gives [B, d] and is deterministic given its seed', () => {
    const a = builtinEncoder({ dim: 16, inputSize: 32, seed: 3 });
    const b = builtinEncoder({ dim: 16, inputSize: 32, seed: 3 });
    const c = builtinEncoder({ dim: 16, inputSize: 32, seed: 4 });
    expect([a.dim, a.inputSize]).toEqual([16, 32]);
    const x = tf.randomUniform([3, 64, 64, 3], 0, 255, 'float32', 1) as tf.Tensor4D;
    const [ya, yb, yc] = [a.encode(x), b.encode(x), c.encode(x)];
    expect(ya.shape).toEqual([3, 16]);
    expectAllclose(ya, yb, { rtol: 0, atol: 0 });
    expect(tf.max(tf.abs(tf.sub(ya, yc))).dataSync()[0]).toBeGreaterThan(1e-3);
    tf.dispose([x, ya, yb, yc]);
    [a, b, c].forEach((e) => e.dispose());
  });

  it('has documented defaults (d 384, input 224)', () => {
    const e = builtinEncoder();
    expect([e.dim, e.inputSize]).toEqual([384, 224]);
    e.dispose();
  });

  it('leaks no tensors when encoding', async () => {
    const e = builtinEncoder({ dim: 8, inputSize: 16 });
    const x = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
    await expectNoLeak(() => {
      for (let i = 0; i < 3; i++) e.encode(x).dispose();
    });
    x.dispose();
    e.dispose();
  });
});

describe('layersModelEncoder', () => {
  it('wraps a saved and reloaded (converted) LayersModel', async () => {
    const model = builtinEncoderModel({ dim: 12, inputSize: 24, seed: 7 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
    const enc = layersModelEncoder(loaded); // input size and d read from the model
    expect([enc.dim, enc.inputSize, enc.name]).toEqual([12, 24, 'LayersModel']);
    const x = colourBatch(2, 24);
    const direct = tf.tidy(() => model.predict(preprocessPatches(x, { inputSize: 24 })) as tf.Tensor);
    const y = enc.encode(x);
    expectAllclose(y, direct, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([x, y, direct]);
    enc.dispose();
    model.dispose();
  });
});

/** A stand-in for a converted PyTorch GraphModel: NCHW input, two outputs. */
function fakeGraphModel(): GraphModelLike & { seen: number[][] } {
  const seen: number[][] = [];
  return {
    seen,
    inputs: [{ name: 'input', shape: [-1, 3, 16, 16] }],
    outputs: [
      { name: 'logits', shape: [-1, 2] },
      { name: 'features', shape: [-1, 3] },
    ],
    execute(inputs, outputs) {
      const x = inputs as tf.Tensor4D;
      seen.push(x.shape);
      if (outputs === 'features') return tf.mean(x, [2, 3]); // channel means of NCHW input
      return tf.zeros([x.shape[0], 2]);
    },
    dispose() {},
  };
}

describe('graphModelEncoder', () => {
  it('detects channels-first input and selects the named output', () => {
    const g = fakeGraphModel();
    const enc = graphModelEncoder(g, { outputName: 'features', normalization: 'unit' });
    expect([enc.dim, enc.inputSize]).toEqual([3, 16]);
    const x = colourBatch(3, 32);
    const y = enc.encode(x);
    expect(g.seen.at(-1)).toEqual([3, 3, 16, 16]);
    // image 2 is (20, 40, 60) -> means 20/255, 40/255, 60/255
    expectAllclose(tf.slice(y, [2, 0], [1, 3]), [20 / 255, 40 / 255, 60 / 255], { rtol: 1e-5 });
    tf.dispose([x, y]);
  });

  it('names the outputs when the requested one is missing', () => {
    expect(() => graphModelEncoder(fakeGraphModel(), { outputName: 'cls' })).toThrow(/no output 'cls'; its outputs are logits, features/);
  });
});

describe('functionEncoder', () => {
  it('runs a function on preprocessed input', () => {
    const enc = functionEncoder((x) => tf.mean(x, [1, 2]), { dim: 3, inputSize: 8, normalization: 'none' });
    const x = colourBatch(2, 8);
    expectAllclose(enc.encode(x), [0, 0, 0, 10, 20, 30]);
    x.dispose();
  });

  it('finds d by encoding one blank patch when the model does not declare it', () => {
    const g = fakeGraphModel();
    const undeclared: GraphModelLike = { ...g, outputs: [{ name: 'features' }], execute: g.execute };
    const enc = graphModelEncoder(undeclared);
    expect(enc.dim).toBe(3);
    expect(g.seen).toEqual([[1, 3, 16, 16]]); // one probe
  });
});
