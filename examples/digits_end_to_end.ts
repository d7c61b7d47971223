/**
 * SASHA end to end on real images, with the library API: a small cohort of digit slides
 * (MNIST digits assembled into pyramidal TIFFs; tumour = a 9 on lesion stroma, a benign
 * look-alike 4 on the same stroma, normal = other digits), tiled and encoded with a trained
 * digit CNN, then HAFED, f_S and the zoom policy trained, and the test slides classified with
 * every high-res patch (HAFED) and with 20% of them (SASHA).
 *
 * It needs the digit encoder: `nice -n 10 npx tsx bench/digit_encoder.ts --out bench/out/digits/encoder`
 * (or pass `--encoder DIR` with another tfjs LayersModel that takes 32 x 32 patches).
 * The benchmark with the CLI, 3 seeds and the full table is `bench/digits_table.ts`.
 *
 * Run: npx tsx examples/digits_end_to_end.ts [--encoder bench/out/digits/encoder] [--out bench/out/digits-example]
 */
import { join } from 'node:path';
import { InMemoryDataset, initBackend, tf, type SlideBag } from '../src/core/index.js';
import { extractFeatures, planFromTiling, tileSlide } from '../src/wsi/index.js';
import { ActorCriticPolicy } from '../src/ppo/index.js';
import { evaluateFullResolution, evaluateSasha, trainSasha } from '../src/pipeline/index.js';
import { loadEncoder, loadMnistDigits, openSlide, writeDigitCohort } from '../src/node/index.js';
import { DIGIT_SLIDE_PRESETS } from '../src/wsi/synthetic/digit_slide.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
await initBackend();

// 1. Slides: 24 digit slides of 40-120 patches, with labels, a split and the ground truth.
const out = arg('out', 'bench/out/digits-example');
const files = await writeDigitCohort(join(out, 'cohort'), await loadMnistDigits(), {
  ...DIGIT_SLIDE_PRESETS.small,
  numSlides: 24,
  minPatches: 40,
  maxPatches: 120,
  splitFractions: [0.5, 0.2, 0.3],
});
const { cohort } = files;
console.log(`${cohort.size} slides, ${cohort.labels.filter((l) => l === 1).length} positive; split ${cohort.split.train.length} / ${cohort.split.val.length} / ${cohort.split.test.length}`);

// 2. Tiling and features: 32-px patches at level 2 (Z), their 4 x 4 cells at level 0 (U).
const encoder = await loadEncoder({ encoder: arg('encoder', 'bench/out/digits/encoder') });
const bags: SlideBag[] = [];
for (const [i, path] of files.slides.entries()) {
  const slide = await openSlide(path);
  const tiling = await tileSlide(slide, { lowRes: { level: 2 }, highRes: { level: 0 }, grid: { patchSize: 32 }, tissue: { aT: 0.5, aH: 0.5 } });
  const f = await extractFeatures(slide, planFromTiling(tiling), encoder, { config: { batchSize: 128 } });
  await slide.close();
  bags.push({
    id: cohort.ids[i],
    label: cohort.labels[i],
    lowRes: tf.tensor2d(f.lowRes, [f.n, f.dim]),
    highRes: tf.tensor3d(f.highRes!, [f.n, f.k, f.dim]),
  });
  process.stderr.write(`\rfeatures: ${i + 1}/${files.slides.length} slides (N = ${f.n})`);
}
process.stderr.write('\n');
encoder.dispose();
const dataset = new InMemoryDataset(bags);

// 3. The staged recipe: HAFED on U, then f_S, then the policy for f = 0.2 (short runs).
const { model, withV } = await trainSasha({
  dataset,
  split: cohort.split,
  seed: 0,
  config: { hafedTrain: { epochs: 15 }, tsu: { epochs: 100 }, env: { budget: 0.2 }, policyEpochs: 5, ppo: { actorLearningRate: 1e-4, criticLearningRate: 1e-4 } },
  log: (m) => console.log(m),
});

// 4. Test slides: every high-res patch (HAFED) against 20% of them (SASHA).
const ids = cohort.split.test;
const full = await evaluateFullResolution({ classifier: model.hafed!, dataset: withV, ids });
const sasha = await evaluateSasha({ classifier: model.hafed!, fS: model.fS!, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: model.env });
console.log(`HAFED-100%: accuracy ${full.metrics.accuracy.toFixed(3)}, AUC ${full.metrics.auc.toFixed(3)} on ${ids.length} test slides`);
console.log(`SASHA-0.2:  accuracy ${sasha.metrics.accuracy.toFixed(3)}, AUC ${sasha.metrics.auc.toFixed(3)}`);
model.dispose();
