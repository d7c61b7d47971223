/**
 * Example 7: inference on a slide from its pixels, with an attention heatmap.
 *
 * 1. A training cohort of synthetic slides (half of them with lesions), tiled and encoded
 *    with a patch encoder into Z and U (`extractCohort`), then SASHA trained on the features.
 * 2. `analyzeSlide` on a new slide: the N low-resolution patches are read and encoded, the
 *    policy chooses T = ceil(f N) patches one at a time, and only their k sub-patches are read
 *    at high resolution and encoded (lazy zoom); HAFED classifies the final state.
 * 3. The heatmap: attention over the thumbnail, the zoomed patches outlined and numbered in
 *    visit order. With `sharp` installed it is written as a PNG (`writeHeatmap`); without,
 *    `renderHeatmap` gives the RGB pixels, written here as a PPM file.
 *
 * The built-in CNN has random weights, so the features are weak: the example shows the
 * mechanics and the reading saved; use your own encoder (example 5) for accuracy. Your
 * slides come from `openSlide('slide.svs')` and a trained model from
 * `loadSashaModel('models/run', { budget: 0.2 })` (`sasha-wsi/node`).
 *
 * Run: npx tsx examples/07_inference_heatmaps.ts [output folder, default: a temporary one]
 * (SASHA_EXAMPLE_QUICK=1 uses fewer slides and short training.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DataError,
  InMemoryDataset,
  InMemorySlideSource,
  MemoryFeatureSink,
  analyzeSlide,
  builtinEncoder,
  extractCohort,
  initBackend,
  renderHeatmap,
  tf,
  trainSasha,
  type SlideBag,
} from 'sasha-wsi';
import type { TilingConfig } from 'sasha-wsi/wsi';
import { generateSyntheticSlideImage, syntheticLesionFraction, type SyntheticSlideImage } from 'sasha-wsi/synthetic';
import { writeHeatmap } from 'sasha-wsi/node';

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const SLIDES = QUICK ? 10 : 30;
const [WIDTH, HEIGHT] = [2048, 1536];
const out = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'sasha-example-07-'));

await initBackend();

/** Slide `seed`: lesions in odd seeds, none in even ones. */
function draw(seed: number): SyntheticSlideImage {
  return generateSyntheticSlideImage({ width: WIDTH, height: HEIGHT, seed, numLesions: seed % 2 === 1 ? 3 : 0 });
}
const open = (drawn: SyntheticSlideImage, name: string) => InMemorySlideSource.fromImage(drawn.image, { mpp: 0.5, levels: 4, name });

// 1. Features of the training cohort: 64-px patches at 2 µm/px, 2 x 2 sub-patches at 1 µm/px.
const tiling: Partial<TilingConfig> = { tissue: { aT: 1, aH: 1 }, lowRes: { mpp: 2 }, highRes: { mpp: 1 }, grid: { patchSize: 64 } };
const encoder = builtinEncoder({ dim: 32, inputSize: 32, seed: 3 });
const sink = new MemoryFeatureSink();
const cohort = Array.from({ length: SLIDES }, (_, seed) => ({ id: `slide_${seed}`, label: seed % 2, open: async () => open(draw(seed), `slide_${seed}`) }));
const extracted = await extractCohort(cohort, { encoder, sink, tiling });
const bags: SlideBag[] = [...sink.slides].map(([id, { features: f, label }]) => ({
  id,
  label,
  lowRes: tf.tensor2d(f.lowRes, [f.n, f.dim]),
  highRes: tf.tensor3d(f.highRes!, [f.n, f.k, f.dim]),
}));
const dataset = new InMemoryDataset(bags);
const ids = dataset.ids;
const split = { train: ids.filter((_, i) => i % 5 < 3), val: ids.filter((_, i) => i % 5 >= 3), test: [] };
console.log(`${extracted.extracted.length} slides encoded (N = ${Math.min(...bags.map((b) => b.lowRes!.shape[0]))}-${Math.max(...bags.map((b) => b.lowRes!.shape[0]))}); train ${split.train.length}, val ${split.val.length}`);

const { model } = await trainSasha({
  dataset,
  split,
  seed: 1,
  config: {
    hafedTrain: { epochs: QUICK ? 4 : 30, lr: 2e-3 },
    tsu: { epochs: QUICK ? 10 : 100 },
    env: { budget: 0.2 },
    ppo: { actorLearningRate: 1e-4, criticLearningRate: 1e-4 },
    policyEpochs: QUICK ? 1 : 10,
  },
});
dataset.dispose();

// 2. A new slide, analysed from its pixels.
const drawn = draw(101);
const slide = open(drawn, 'new_slide');
const res = await analyzeSlide(model, slide, { encoder, config: { lowRes: { mpp: 2 }, highRes: { mpp: 1 }, grid: { patchSize: 64 }, tissue: { aT: 1, aH: 1 } } });
const { prediction, counts, visited } = res;
console.log(`${res.slide}: class ${prediction.label}, P(lesion) ${prediction.probs[1].toFixed(3)} (truth: ${(100 * drawn.lesionFraction).toFixed(1)} % of the slide is lesion)`);
console.log(
  `read ${counts.patches} low-res patches and ${counts.highResEncoded} high-res sub-patches in ${counts.steps} zooms ` +
    `(every sub-patch would be ${counts.patches * counts.k}: ${((100 * (counts.patches + counts.highResEncoded)) / (counts.patches * counts.k)).toFixed(0)} % of the encoder work)`,
);
const side = res.patchSizeLevel0;
const isLesion = (i: number) => syntheticLesionFraction(drawn, res.coords[2 * i], res.coords[2 * i + 1], side, side) > 0.1;
const lesionPatches = Array.from({ length: counts.patches }, (_, i) => i).filter(isLesion).length;
console.log(`zoomed patches holding lesion: ${visited.filter(isLesion).length} of ${visited.length} (the slide: ${lesionPatches} of ${counts.patches})`);

// 3. The heatmap.
try {
  const png = join(out, 'new_slide_heatmap.png');
  const written = await writeHeatmap(png, slide, res);
  console.log(`heatmap ${written.width} x ${written.height}: ${png}`);
} catch (e) {
  if (!(e instanceof DataError)) throw e; // sharp is not installed
  const img = await renderHeatmap(slide, res);
  const ppm = join(out, 'new_slide_heatmap.ppm');
  writeFileSync(ppm, Buffer.concat([Buffer.from(`P6\n${img.width} ${img.height}\n255\n`), Buffer.from(img.data)]));
  console.log(`heatmap ${img.width} x ${img.height}: ${ppm} (npm install sharp for PNG)`);
}
encoder.dispose();
model.dispose();
