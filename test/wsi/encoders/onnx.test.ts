import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, ShapeError, StateError, ValueError, tf } from '../../../src/core/index.js';
import { encodePatches, onnxEncoder, preprocessPatches, setOnnxRuntime, type OnnxRuntimeLike } from '../../../src/wsi/index.js';
import { loadOnnxEncoder, registerNodeOnnxRuntime } from '../../../src/node/onnx_encoder.js';
import { expectAllclose, tempDirs } from '../../helpers.js';

const DIR = join(import.meta.dirname, '../../fixtures/onnx');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<string, number[]>;
const bytes = (f: string) => new Uint8Array(readFileSync(join(DIR, f)));
const node = ortNode as unknown as OnnxRuntimeLike;
const web = ortWeb as unknown as OnnxRuntimeLike;

/** The fixture patches, as make_onnx_fixtures.py draws them: [b, s, s, 3] in [0, 255]. */
function patches(b: number, s: number): tf.Tensor4D {
  const v = new Float32Array(b * s * s * 3);
  let i = 0;
  for (let bb = 0; bb < b; bb++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++) for (let c = 0; c < 3; c++) v[i++] = (53 * bb + 37 * y + 11 * x + 101 * c + 13 * ((x * y) % 7)) % 256;
  return tf.tensor4d(v, [b, s, s, 3]);
}

const mkdir = tempDirs();
const dir = () => mkdir('onnx-encoder-');
afterAll(() => setOnnxRuntime(null));

describe('onnxEncoder', () => {
  it('gives the outputs PyTorch gives on the same patches (onnxruntime-node), and the session run by hand', async () => {
    const enc = await onnxEncoder(bytes('cnn.onnx'), { runtime: node, name: 'cnn.onnx' });
    expect(enc.dim).toBe(8);
    expect(enc.inputSize).toBe(32);
    expect(enc.info).toMatchObject({ inputName: 'pixel_values', outputName: 'features', layout: 'NCHW', dtype: 'float32', output: 'pooled' });
    const x = patches(3, 32);
    const before = tf.memory().numTensors;
    const z = await enc.encodeAsync(x);
    expect(z.shape).toEqual([3, 8]);
    expectAllclose(z, expected.cnn32, { rtol: 1e-5, atol: 1e-6 });
    // the same session run directly on the library's preprocessing
    const session = await ortNode.InferenceSession.create(bytes('cnn.onnx'));
    const pre = preprocessPatches(x, { inputSize: 32, dataFormat: 'channelsFirst' });
    const direct = await session.run({ pixel_values: new ortNode.Tensor('float32', pre.dataSync() as Float32Array, [3, 3, 32, 32]) });
    expectAllclose(z, direct.features.data as Float32Array, { rtol: 1e-6, atol: 1e-7 });
    tf.dispose([z, pre]);
    expect(tf.memory().numTensors).toBe(before);
    await session.release();
    x.dispose();
    await enc.release();
  });

  it('resizes (bilinear, half-pixel) and centre-crops as torchvision does', async () => {
    const enc = await onnxEncoder(bytes('cnn.onnx'), { runtime: node });
    const x = patches(3, 40);
    const z = await enc.encodeAsync(x);
    expectAllclose(z, expected.cnn40, { rtol: 1e-4, atol: 1e-5 });
    z.dispose();
    await enc.release();
    const crop = await onnxEncoder(bytes('cnn.onnx'), { runtime: node, resizeSize: 36 });
    const zc = await crop.encodeAsync(x);
    expectAllclose(zc, expected.cnn40crop36, { rtol: 1e-4, atol: 1e-5 });
    tf.dispose([zc, x]);
    await crop.release();
  });

  it('splits batches into runs of batchSize with the same result', async () => {
    const enc = await onnxEncoder(bytes('cnn.onnx'), { runtime: node, batchSize: 2 });
    const x = patches(3, 32);
    const z = await encodePatches(enc, x);
    expectAllclose(z, expected.cnn32, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([z, x]);
    await enc.release();
  });

  it('feeds a model with a fixed batch axis of 1 patch by patch', async () => {
    const enc = await onnxEncoder(bytes('cnn_b1.onnx'), { runtime: node, batchSize: 32 });
    expect(enc.info.batchSize).toBe(1);
    const x = patches(3, 32);
    const z = await enc.encodeAsync(x);
    expectAllclose(z, expected.cnn32, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([z, x]);
    await enc.release();
  });

  it('reduces token outputs to the CLS token or the mean of the tokens after the prefix', async () => {
    const x = patches(3, 32);
    await expect(onnxEncoder(bytes('vit.onnx'), { runtime: node })).rejects.toThrow(/token features.*output: 'cls'/);
    const cls = await onnxEncoder(bytes('vit.onnx'), { runtime: node, output: 'cls' });
    expect(cls.dim).toBe(12);
    const zc = await cls.encodeAsync(x);
    expectAllclose(zc, expected.vitCls, { rtol: 1e-4, atol: 1e-5 });
    const mean = await onnxEncoder(bytes('vit.onnx'), { runtime: node, output: 'mean', prefixTokens: 1 });
    const zm = await mean.encodeAsync(x);
    expectAllclose(zm, expected.vitMean, { rtol: 1e-4, atol: 1e-5 });
    tf.dispose([zc, zm, x]);
    await cls.release();
    await mean.release();
  });

  it('feeds float16 input and reads float16 output', async () => {
    const enc = await onnxEncoder(bytes('cnn_fp16.onnx'), { runtime: node });
    expect(enc.info.dtype).toBe('float16');
    const x = patches(3, 32);
    const z = await enc.encodeAsync(x);
    // float16 rounding of the input and the output: half-precision tolerance
    expectAllclose(z, expected.cnnFp16, { rtol: 2e-3, atol: 2e-3 });
    tf.dispose([z, x]);
    await enc.release();
  });

  it('runs on onnxruntime-web (wasm) with the same outputs', async () => {
    const enc = await onnxEncoder(bytes('cnn.onnx'), { runtime: web, threads: 1 });
    const x = patches(3, 32);
    const z = await enc.encodeAsync(x);
    expectAllclose(z, expected.cnn32, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([z, x]);
    await enc.release();
  });

  it('rejects a wrong input size, a wrong output width and a corrupt or foreign file, naming the model', async () => {
    await expect(onnxEncoder(bytes('cnn.onnx'), { runtime: node, inputSize: 224, name: 'cnn.onnx' })).rejects.toThrow(
      new ShapeError("The ONNX model 'cnn.onnx' takes input [batch, 3, 32, 32] (side 32), but inputSize 224 was asked for. Drop inputSize or export the model for 224 px."),
    );
    await expect(onnxEncoder(bytes('cnn.onnx'), { runtime: node, dim: 384, name: 'cnn.onnx' })).rejects.toThrow(
      /^The ONNX model 'cnn.onnx' gives features of width 8 \(output 'features', pooled\), but d = 384 was expected/,
    );
    await expect(onnxEncoder(bytes('cnn.onnx'), { runtime: node, layout: 'NHWC', name: 'cnn.onnx' })).rejects.toThrow(
      /'cnn.onnx' takes 32-channel input \[batch, 3, 32, 32\] \(layout NHWC\); expected 3-channel RGB/,
    );
    const good = bytes('cnn.onnx');
    const cut = good.slice(0, Math.floor(good.length / 2));
    const err = await onnxEncoder(cut, { runtime: node, name: 'cut.onnx' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/^ONNX Runtime cannot load the model 'cut.onnx': .*corrupt, truncated or not an ONNX model\.$/);
    const zip = new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0]);
    await expect(onnxEncoder(zip, { runtime: node, name: 'model.pt' })).rejects.toThrow(
      new DataError("'model.pt' is not an ONNX model: it is a zip archive (a PyTorch .pt / .pth checkpoint?). Export the encoder with torch.onnx.export (docs/guides/encoders.md)."),
    );
    await expect(onnxEncoder(new Uint8Array(0), { runtime: node, name: 'empty.onnx' })).rejects.toThrow(/'empty.onnx' is empty/);
    await expect(onnxEncoder(new Uint8Array([0xff, 1, 2, 3]), { runtime: node, name: 'x.onnx' })).rejects.toThrow(DataError);
    await expect(onnxEncoder(good, { runtime: node, outputName: 'logits', name: 'cnn.onnx' })).rejects.toThrow(
      new ValueError("The ONNX model 'cnn.onnx' has no output 'logits'; its outputs are features."),
    );
    await expect(onnxEncoder(good, { runtime: node, batchSize: 0 })).rejects.toThrow(/batchSize to be an integer >= 1/);
  });

  it('gives a wrong patch batch shape a clear error, refuses the synchronous encode and use after dispose', async () => {
    const enc = await onnxEncoder(bytes('cnn.onnx'), { runtime: node, name: 'cnn.onnx' });
    const rgba = tf.zeros([2, 32, 32, 4]) as tf.Tensor4D;
    await expect(enc.encodeAsync(rgba)).rejects.toThrow(new ShapeError('Expected a patch batch of shape [B, h, w, 3], but got [2, 32, 32, 4].'));
    expect(() => enc.encode(rgba)).toThrow(StateError);
    enc.dispose();
    await expect(enc.encodeAsync(rgba)).rejects.toThrow(/disposed/);
    rgba.dispose();
  });

  it('loads a file in Node with the registered runtime; a missing file names the path', async () => {
    registerNodeOnnxRuntime();
    const enc = await loadOnnxEncoder(join(DIR, 'cnn.onnx'));
    expect(enc.name).toBe(join(DIR, 'cnn.onnx'));
    const x = patches(3, 32);
    const z = await enc.encodeAsync(x);
    expectAllclose(z, expected.cnn32, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([z, x]);
    await enc.release();
    const missing = join(dir(), 'none.onnx');
    await expect(loadOnnxEncoder(missing)).rejects.toThrow(new DataError(`No ONNX model at '${missing}'. Export one with torch.onnx.export (docs/guides/encoders.md).`));
    const junk = join(dir(), 'junk.onnx');
    writeFileSync(junk, 'not a model at all');
    await expect(loadOnnxEncoder(junk)).rejects.toThrow(DataError);
  });
});
