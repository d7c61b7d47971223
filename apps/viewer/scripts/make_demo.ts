/**
 * Makes the viewer's demo: a small SASHA model and one slide it was not trained on, both made
 * by the project's own generators and trainers, small enough to ship with the page.
 *
 * 1. The digit encoder (bench/digit_encoder.ts): a small CNN trained apart on its own MNIST
 *    digits, d = 64, 32 x 32 patches.
 * 2. A cohort of digit slides (writeDigitCohort: MNIST digits on stroma as pyramidal JPEG TIFFs;
 *    tumour = a 9 on lesion stroma, a benign look-alike 4 on the same stroma, normal = others).
 * 3. `sasha tile`, `sasha extract` (Z at level 2, U at level 0: r = 4, k = 16), `sasha train
 *    hafed`, `sasha train tsu`, `sasha train policy --budget 0.2`, as the digit benchmark.
 * 4. `packModelDir`: the model, its extraction settings and its encoder in one directory.
 * 5. The demo slide: a positive test slide that SASHA classifies right, of 60-160 patches, read
 *    as the page reads it (TiffSlideSource over a Blob); its Node analysis (wasm) is recorded
 *    in demo.json.
 *
 * Run: `nice -n 10 npx tsx apps/viewer/scripts/make_demo.ts [--work /tmp/sasha-viewer-demo]
 *   [--out apps/viewer/public/demo] [--encoder-epochs 8] [--slides 40]`
 * Steps whose output exists in the work directory are not redone.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TiffSlideSource, analysisToJson, initBackend, loadSashaModelFrom, type AnalyzeSlideConfig } from '../../../src/index.js';
import { analyzeConfigFromSettings, loadModelEncoder, readModelExtractSettings } from '../../../src/pipeline/index.js';
import { loadMnistDigits, modelFilesFromDir, packModelDir, readDigitTruth, writeDigitCohort } from '../../../src/node/index.js';
import { DIGIT_SLIDE_PRESETS, digitTruthAt } from '../../../src/wsi/synthetic/index.js';
import { trainDigitEncoder } from '../../../bench/digit_encoder.js';

const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const work = resolve(arg('work', '/tmp/sasha-viewer-demo'));
const out = resolve(arg('out', join(ROOT, 'apps/viewer/public/demo')));
const encoderEpochs = Number(arg('encoder-epochs', '8'));
const numSlides = Number(arg('slides', '40'));
const log = (m: string) => process.stderr.write(`[demo ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** Runs the `sasha` CLI from source; throws on a non-zero exit. */
function sasha(args: string[]): void {
  log(`sasha ${args.join(' ')}`);
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'src/node/cli/main.ts'), ...args, '--quiet'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`sasha ${args.slice(0, 2).join(' ')} exited with code ${r.status}`);
}

await initBackend('wasm');
const t0 = performance.now();
await mkdir(work, { recursive: true });

// 1. The encoder.
const encoderDir = join(work, 'encoder');
if (!existsSync(join(encoderDir, 'model.json'))) {
  log(`training the digit encoder (${encoderEpochs} epochs)`);
  const r = await trainDigitEncoder({ out: encoderDir, epochs: encoderEpochs, log });
  log(`encoder: 10-digit accuracy ${r.digitAccuracy.toFixed(3)}, 9 vs 4 at high res ${r.tumourVsMimicHighRes.toFixed(3)}, at low res ${r.tumourVsMimicLowRes.toFixed(3)}`);
}

// 2. The slides.
const cohortDir = join(work, 'cohort');
const cohortConfig = { ...DIGIT_SLIDE_PRESETS.small, numSlides, minPatches: 60, maxPatches: 160 };
const files = await writeDigitCohort(cohortDir, await loadMnistDigits(), cohortConfig);
const { cohort } = files;
log(`${cohort.size} slides, ${cohort.labels.filter((l) => l === 1).length} positive; test slides ${cohort.split.test.length}`);

// 3. Tiling, features, training.
const wsi = ['--patch-size', '32', '--a-t', '0.5', '--a-h', '0.5'];
const featDir = join(work, 'features');
const model = join(work, 'model');
if (!existsSync(join(featDir, 'hr.h5'))) {
  sasha(['extract', join(cohortDir, 'slides'), '--out', featDir, '--encoder', encoderDir, '--lr-level', '2', '--hr-level', '0', '--labels', files.labels, '--batch-size', '128', ...wsi]);
}
const manifest = () => (existsSync(join(model, 'sasha.json')) ? (JSON.parse(readFileSync(join(model, 'sasha.json'), 'utf8')) as Record<string, unknown>) : {});
if (!manifest().hafed) {
  sasha(['train', 'hafed', '--lr-h5', join(featDir, 'lr.h5'), '--hr-h5', join(featDir, 'hr.h5'), '--split', files.split, '--out', model, '--epochs', '30', '--lr', '2e-3']);
}
if (!manifest().tsu) sasha(['train', 'tsu', '--model', model, '--epochs', '200']);
if (!existsSync(join(model, 'policy-0.2', 'model.json'))) sasha(['train', 'policy', '--model', model, '--budget', '0.2', '--epochs', '8', '--lr', '1e-4']);

// 4. The self-contained model directory.
await rm(join(out, 'model'), { recursive: true, force: true });
const packed = await packModelDir(model, join(out, 'model'), { budgets: [0.2] });
log(`packed model: ${packed.files.length} files, ${(packed.bytes / 1024).toFixed(0)} KiB`);

// 5. The demo slide: analysed from the packed directory, as the page does.
const modelFiles = modelFilesFromDir(join(out, 'model'));
const sashaModel = await loadSashaModelFrom(modelFiles);
const settings = (await readModelExtractSettings(modelFiles))!;
const encoder = await loadModelEncoder(modelFiles, settings, { dim: sashaModel.hafed!.dim });
const config: Partial<AnalyzeSlideConfig> = analyzeConfigFromSettings(settings);
const candidates: { id: string; n: number; p: number; tumourZoomed: number; tumourPatches: number }[] = [];
for (const id of cohort.split.test) {
  const i = cohort.ids.indexOf(id);
  if (cohort.labels[i] !== 1) continue;
  const path = files.slides[i];
  const slide = await TiffSlideSource.open(new Blob([await readFile(path)]), { name: `${id}.tif` });
  try {
    const res = await analyzeOrNull(() => sashaModel.analyzeSlide(slide, { encoder, config }));
    if (!res) continue;
    const truth = readDigitTruth(join(cohortDir, 'truth', `${id}.json`));
    const perPatch = digitTruthAt(truth, res.coords, truth.cellSize * truth.ratio);
    const tumourPatches = perPatch.tumour.reduce((a, t) => a + (t > 0 ? 1 : 0), 0);
    const tumourZoomed = res.visited.filter((a) => perPatch.tumour[a] > 0).length;
    log(`${id}: N = ${res.counts.patches}, p(tumour) = ${res.prediction.probs[1].toFixed(3)}, tumour patches ${tumourPatches}, zoomed ${tumourZoomed}`);
    candidates.push({ id, n: res.counts.patches, p: res.prediction.probs[1], tumourZoomed, tumourPatches });
  } finally {
    await slide.close?.();
  }
}
const fit = candidates.filter((c) => c.p > 0.5 && c.n >= 60 && c.n <= 160 && c.tumourZoomed > 0);
if (fit.length === 0) throw new Error('No positive test slide of 60-160 patches is classified right with a tumour patch zoomed; train longer or use more slides.');
fit.sort((a, b) => b.tumourZoomed / b.tumourPatches - a.tumourZoomed / a.tumourPatches || b.p - a.p);
const pick = fit[0];
const i = cohort.ids.indexOf(pick.id);
await copyFile(files.slides[i], join(out, 'slide.tif'));

// The Node reference of the browser test: the same model files, slide bytes and settings, on wasm.
const slide = await TiffSlideSource.open(new Blob([await readFile(join(out, 'slide.tif'))]), { name: 'slide.tif' });
const res = await sashaModel.analyzeSlide(slide, { encoder, config });
await slide.close?.();
const json = analysisToJson(res);
await writeFile(
  join(out, 'demo.json'),
  JSON.stringify(
    {
      slide: 'slide.tif',
      source: pick.id,
      label: 1,
      classes: ['normal', 'tumour'],
      made: 'npx tsx apps/viewer/scripts/make_demo.ts',
      cohort: { slides: numSlides, minPatches: 60, maxPatches: 160, preset: 'small' },
      tumourPatches: pick.tumourPatches,
      tumourPatchesZoomed: pick.tumourZoomed,
      node: { backend: 'wasm', prediction: json.prediction, visited: json.visited.map((v) => v.index), patches: json.counts.patches },
    },
    null,
    2,
  ) + '\n',
);
encoder.dispose();
sashaModel.dispose();
log(`demo slide ${pick.id} (N = ${pick.n}, p(tumour) ${pick.p.toFixed(3)}, ${pick.tumourZoomed}/${pick.tumourPatches} tumour patches zoomed); ${((performance.now() - t0) / 1000).toFixed(0)} s`);

async function analyzeOrNull<T>(run: () => Promise<T>): Promise<T | null> {
  try {
    return await run();
  } catch (e) {
    log(`skipped: ${(e as Error).message}`);
    return null;
  }
}
