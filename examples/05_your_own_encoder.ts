/**
 * Example 5: bring your own patch encoder.
 *
 * Everything that reads pixels (`extractFeatures`, `extractCohort`, `analyzeSlide`, the CLI)
 * takes a `PatchEncoder`: `{ dim, inputSize, name, encode(batch [B, h, w, 3] in 0..255) ->
 * [B, dim], dispose() }`. Three ways to get one:
 *
 * 1. A TensorFlow.js LayersModel: yours, trained in tfjs or converted from Keras
 *    (`tensorflowjs_converter --input_format keras`), loaded from a folder with `loadEncoder`
 *    (or `layersModelEncoder(model)`). Resizing to the model's input and ImageNet
 *    normalisation are applied for you. A GraphModel works the same (`graphModelEncoder`).
 * 2. A plain function of the prepared batch (`functionEncoder`).
 * 3. The interface written by hand, for anything else (a remote service, a worker pool).
 *
 * A PyTorch model (UNI, CONCH, a timm ViT) exported to ONNX runs through ONNX Runtime:
 * `npm install onnxruntime-node`, then
 *   `const encoder = await loadOnnxEncoder('vit_s16.onnx', { inputSize: 224, normalization: 'imagenet' });`
 * from `sasha-wsi/node` (`onnxEncoder(bytes)` in browsers); docs/guides/encoders.md has the
 * export recipes.
 *
 * Each encoder here encodes the patches of one synthetic slide; the example prints the feature
 * shapes and how well each feature set tells lesion patches from normal ones (the AUC of the
 * best single feature; the synthetic slide knows which patches hold lesion).
 *
 * Run: npx tsx examples/05_your_own_encoder.ts
 * (SASHA_EXAMPLE_QUICK=1 draws a smaller slide.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { InMemorySlideSource, binaryAuc, extractFeatures, functionEncoder, initBackend, tf, type PatchEncoder } from 'sasha-wsi';
import { planFromTiling, tileSlide } from 'sasha-wsi/wsi';
import { generateSyntheticSlideImage, syntheticLesionFraction } from 'sasha-wsi/synthetic';
import { loadEncoder } from 'sasha-wsi/node'; // also registers file:// with tf.io

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const [WIDTH, HEIGHT] = QUICK ? [2048, 1536] : [4096, 3072];

await initBackend();
const dir = mkdtempSync(join(tmpdir(), 'sasha-example-05-'));

// 1. A LayersModel saved in a folder, as your trained encoder would be.
const cnn = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [32, 32, 3], filters: 8, kernelSize: 3, strides: 2, activation: 'relu' }),
    tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu' }),
    tfl.layers.globalAveragePooling2d({}),
  ],
});
await cnn.save(`file://${join(dir, 'my_encoder')}`);
cnn.dispose();
const fromFolder = await loadEncoder({ encoder: join(dir, 'my_encoder') });

// 2. A function: mean and standard deviation of each colour channel (inputs scaled to 0..1).
const colour = functionEncoder(
  (x) => {
    const mean = tf.mean(x, [1, 2]);
    const std = tf.sqrt(tf.mean(tf.square(tf.sub(x, tf.reshape(mean, [-1, 1, 1, 3]))), [1, 2]));
    return tf.concat([mean, std], 1);
  },
  { dim: 6, inputSize: 32, normalization: 'unit', name: 'colour-stats' },
);

// 3. The interface by hand: the darkest 10 % of pixels per patch (stained nuclei), in 0..255.
const handWritten: PatchEncoder = {
  dim: 1,
  inputSize: 32,
  name: 'dark-fraction',
  encode: (batch) =>
    tf.tidy(() => {
      const grey = tf.mean(batch, 3); // [B, h, w]
      return tf.reshape(tf.mean(tf.cast(tf.less(grey, 100), 'float32'), [1, 2]), [-1, 1]) as tf.Tensor2D; // [B, 1]
    }),
  dispose: () => {},
};

// One synthetic slide, its patch grid, and which patches hold lesion.
const drawn = generateSyntheticSlideImage({ width: WIDTH, height: HEIGHT, seed: 11, numLesions: 3 });
const slide = InMemorySlideSource.fromImage(drawn.image, { mpp: 0.5, levels: 5 });
const tiled = await tileSlide(slide, { tissue: { aT: 1, aH: 1 }, lowRes: { mpp: 2 }, highRes: { mpp: 1 }, grid: { patchSize: 64 } });
const plan = planFromTiling(tiled);

try {
  for (const encoder of [fromFolder, colour, handWritten]) {
    const f = await extractFeatures(slide, plan, encoder);
    const side = tiled.grid.patchSizeLevel0;
    const lesion = Array.from({ length: f.n }, (_, i) => (syntheticLesionFraction(drawn, f.coords[2 * i], f.coords[2 * i + 1], side, side) > 0.1 ? 1 : 0));
    let best = 0.5;
    for (let j = 0; j < f.dim; j++) {
      const column = Array.from({ length: f.n }, (_, i) => f.lowRes[i * f.dim + j]);
      const auc = binaryAuc(lesion, column);
      best = Math.max(best, auc, 1 - auc);
    }
    console.log(
      `${encoder.name.padEnd(14)} d = ${String(f.dim).padStart(2)}: Z [${f.n}, ${f.dim}], U [${f.n}, ${f.k}, ${f.dim}]; ` +
        `${lesion.filter(Boolean).length} lesion patches; best single-feature AUC lesion vs normal ${best.toFixed(3)}`,
    );
  }
} finally {
  for (const encoder of [fromFolder, colour, handWritten]) encoder.dispose();
  rmSync(dir, { recursive: true, force: true });
}
