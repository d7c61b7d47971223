/**
 * Example 4: from a slide to features.
 *
 * 1. A slide: here a synthetic one drawn in memory (tissue, holes and lesions, with its ground
 *    truth) as a pyramid of levels. Your own slides come from `openSlide('slide.svs')`
 *    (`sasha-wsi/node`, pyramidal TIFF / Aperio SVS) or any object with the `SlideSource`
 *    interface.
 * 2. Tissue segmentation (CLAM's method) and the patch grid: low-resolution patches at
 *    2 µm/px, each with its 2 x 2 high-resolution sub-patches at 1 µm/px.
 * 3. Z [N, d] and U [N, k, d] from a patch encoder (the built-in CNN with random weights
 *    stands in for a pathology encoder: see example 5), and how far lesion patches sit from
 *    normal ones in feature space.
 * 4. A small cohort extracted into h5 feature files in the official code's layout (`lr.h5`,
 *    `hr.h5`: what `sasha train` and `H5FeatureDataset` read), resumable slide by slide.
 *
 * Run: npx tsx examples/04_slide_to_features.ts
 * (SASHA_EXAMPLE_QUICK=1 draws smaller slides.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySlideSource, builtinEncoder, disposeBag, extractCohort, extractFeatures, initBackend } from 'sasha-wsi';
import { planFromTiling, tileSlide, type TilingConfig } from 'sasha-wsi/wsi';
import { generateSyntheticSlideImage, syntheticLesionFraction } from 'sasha-wsi/synthetic';
import { H5FeatureDataset, H5FeatureSink } from 'sasha-wsi/node';

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const [WIDTH, HEIGHT] = QUICK ? [2048, 1536] : [4096, 3072];

await initBackend();

// 1. A slide at 0.5 µm/px; levels by 2 x 2 averaging (downsamples 1, 2, 4, ...).
const drawn = generateSyntheticSlideImage({ width: WIDTH, height: HEIGHT, seed: 4, numLesions: 3, mpp: 0.5 });
const slide = InMemorySlideSource.fromImage(drawn.image, { mpp: 0.5, name: 'synthetic_4', levels: 5 });
console.log(`${slide.name}: levels ${slide.levels.map((l) => `${l.width}x${l.height}`).join(', ')}; ${slide.mpp} µm/px`);

// 2. Tissue and patches (small aT and aH because the slide is small).
const tiling: Partial<TilingConfig> = { tissue: { aT: 1, aH: 1 }, lowRes: { mpp: 2 }, highRes: { mpp: 1 }, grid: { patchSize: 64 } };
const tiled = await tileSlide(slide, tiling);
console.log(
  `tissue: ${tiled.tissue.regions.length} regions, ${(100 * tiled.tissue.tissueFraction).toFixed(1)} % of the slide; ` +
    `${tiled.grid.count} patches at level ${tiled.grid.level}, k = ${tiled.subPatches?.k} sub-patches each at level ${tiled.subPatches?.level}`,
);

// 3. Features.
const encoder = builtinEncoder({ dim: 64, inputSize: 64 });
const t0 = performance.now();
const f = await extractFeatures(slide, planFromTiling(tiled), encoder);
console.log(`Z: [${f.n}, ${f.dim}], U: [${f.n}, ${f.k}, ${f.dim}] in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// Lesion patches (by the ground truth) against normal ones: distance between mean features.
const side = tiled.grid.patchSizeLevel0;
const isLesion = Array.from({ length: f.n }, (_, i) => syntheticLesionFraction(drawn, f.coords[2 * i], f.coords[2 * i + 1], side, side) > 0.1);
function meanOf(lesion: boolean): { mean: Float64Array; count: number } {
  const mean = new Float64Array(f.dim);
  let count = 0;
  for (let i = 0; i < f.n; i++) {
    if (isLesion[i] !== lesion) continue;
    count++;
    for (let j = 0; j < f.dim; j++) mean[j] += f.lowRes[i * f.dim + j];
  }
  return { mean: mean.map((v) => v / Math.max(1, count)), count };
}
const lesion = meanOf(true);
const normal = meanOf(false);
const distance = Math.sqrt(lesion.mean.reduce((s, v, j) => s + (v - normal.mean[j]) ** 2, 0));
let spread = 0;
for (let i = 0; i < f.n; i++) {
  if (isLesion[i]) continue;
  for (let j = 0; j < f.dim; j++) spread += (f.lowRes[i * f.dim + j] - normal.mean[j]) ** 2;
}
spread = Math.sqrt(spread / Math.max(1, normal.count));
console.log(
  `${lesion.count} lesion patches, ${normal.count} normal patches; distance between their mean features ${distance.toFixed(3)} ` +
    `(normal patches lie ${spread.toFixed(3)} from their mean, root mean square)`,
);

// 4. A cohort of three slides into h5 feature files, read back as a dataset.
const dir = mkdtempSync(join(tmpdir(), 'sasha-example-04-'));
try {
  const cohort = [5, 6, 7].map((seed) => ({
    id: `synthetic_${seed}`,
    label: seed % 2,
    open: async () => InMemorySlideSource.fromImage(generateSyntheticSlideImage({ width: WIDTH, height: HEIGHT, seed }).image, { mpp: 0.5, levels: 5 }),
  }));
  const sink = new H5FeatureSink(join(dir, 'features'));
  const res = await extractCohort(cohort, { encoder, sink, tiling, onWarning: (m) => console.warn(m) });
  const ids = cohort.map((s) => s.id);
  const files = await sink.merge(ids);
  console.log(`extracted ${res.extracted.length} slides (${res.failed.length} failed) into ${files.lrH5.slice(dir.length + 1)} and ${files.hrH5!.slice(dir.length + 1)}`);
  const dataset = await H5FeatureDataset.open(files);
  for (const id of dataset.ids) {
    const bag = await dataset.load(id, ['lowRes', 'highRes']);
    console.log(`  ${id}: label ${bag.label}, Z [${bag.lowRes!.shape.join(', ')}], U [${bag.highRes!.shape.join(', ')}]`);
    disposeBag(bag);
  }
  dataset.close();
} finally {
  encoder.dispose();
  rmSync(dir, { recursive: true, force: true });
}
