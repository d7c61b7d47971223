/**
 * From a slide file to features: write a synthetic pyramidal TIFF, segment its tissue, lay the
 * patch grid with 2 x 2 high-res sub-patches per patch, and extract Z and U with the built-in
 * CNN. Prints the tiling, the feature shapes, and how far lesion patches sit from normal ones in
 * feature space (the synthetic slide knows which patches hold lesion).
 *
 * The built-in CNN has random weights: it stands in for a pathology encoder (see
 * docs/guides/encoders.md).
 *
 * Run: npx tsx examples/slide_to_features.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/core/index.js';
import { builtinEncoder, extractFeatures, planFromTiling, tileSlide } from '../src/wsi/index.js';
import { openSlide, writeSyntheticSlide } from '../src/node/index.js';
import { syntheticLesionFraction } from '../src/wsi/synthetic/slide_image.js';

await initBackend();
const dir = mkdtempSync(join(tmpdir(), 'sasha-example-'));
try {
  // 1. A 4096 x 3072 slide at 0.5 µm/px: levels 1, 2, 4, 8, 16 (libvips halves until a level fits a tile).
  const truth = await writeSyntheticSlide(join(dir, 'slide.tif'), { width: 4096, height: 3072, seed: 4, numLesions: 3 });
  const slide = await openSlide(truth.path);
  console.log(`${slide.name}: ${slide.levels.map((l) => `${l.width}x${l.height}`).join(', ')}; mpp ${slide.mpp?.toFixed(3)}`);

  // 2. Tissue (CLAM method; small aT because the slide is small) and patches: low-res 2 µm/px, high-res 1 µm/px.
  const tiling = await tileSlide(slide, {
    tissue: { aT: 1, aH: 1 },
    lowRes: { mpp: 2 },
    highRes: { mpp: 1 },
    grid: { patchSize: 64 },
  });
  console.log(
    `tissue: ${tiling.tissue.regions.length} regions, ${(100 * tiling.tissue.tissueFraction).toFixed(1)} % of the slide; ` +
      `${tiling.grid.count} patches at level ${tiling.grid.level}, k = ${tiling.subPatches?.k} sub-patches each at level ${tiling.subPatches?.level}`,
  );

  // 3. Features: Z [N, d] and U [N, k, d].
  const encoder = builtinEncoder({ dim: 64, inputSize: 64 });
  const t0 = performance.now();
  const f = await extractFeatures(slide, planFromTiling(tiling), encoder, {
    onProgress: (e) => process.stderr.write(`\r${e.task}: ${e.done}/${e.total}`),
  });
  process.stderr.write('\n');
  console.log(`Z: [${f.n}, ${f.dim}], U: [${f.n}, ${f.k}, ${f.dim}] in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // 4. Lesion patches (by the ground truth) against normal ones: distance between the mean features.
  const side = tiling.grid.patchSizeLevel0;
  const isLesion = Array.from({ length: f.n }, (_, i) => syntheticLesionFraction(truth, f.coords[2 * i], f.coords[2 * i + 1], side, side) > 0.1);
  const mean = (sel: boolean) => {
    const m = new Float64Array(f.dim);
    let c = 0;
    for (let i = 0; i < f.n; i++) {
      if (isLesion[i] !== sel) continue;
      c++;
      for (let j = 0; j < f.dim; j++) m[j] += f.lowRes[i * f.dim + j];
    }
    return { m: m.map((v) => v / Math.max(1, c)), c };
  };
  const a = mean(true);
  const b = mean(false);
  const dist = Math.sqrt(a.m.reduce((s, v, j) => s + (v - b.m[j]) ** 2, 0));
  let spread = 0;
  for (let i = 0; i < f.n; i++) {
    if (isLesion[i]) continue;
    let d2 = 0;
    for (let j = 0; j < f.dim; j++) d2 += (f.lowRes[i * f.dim + j] - b.m[j]) ** 2;
    spread += d2;
  }
  spread = Math.sqrt(spread / Math.max(1, b.c));
  console.log(
    `${a.c} lesion patches, ${b.c} normal patches; distance between their mean features ${dist.toFixed(3)} ` +
      `(normal patches lie ${spread.toFixed(3)} from their mean, root mean square)`,
  );
  encoder.dispose();
  await slide.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
