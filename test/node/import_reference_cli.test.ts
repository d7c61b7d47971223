import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { analyzeSlide } from '../../src/pipeline/index.js';
import { H5FeatureDataset, fileIO, loadOnnxEncoder, loadSashaModel, openSlide, readModelManifest, writeSyntheticSlide } from '../../src/node/index.js';
import { cli } from './cli_capture.js';
import { expectAllclose } from '../helpers.js';
import { tempDir } from '../wsi/fixtures.js';

// The parity fixture (checkpoints of the official modules, d = 8) and an ONNX encoder of width 8
// taking 32 px patches: slides -> 'sasha extract --encoder cnn.onnx' -> features; the official
// checkpoints -> 'sasha import-reference' -> a model directory -> 'sasha eval' and 'sasha infer'.
const REF = join(import.meta.dirname, '../fixtures/reference');
const ONNX = join(import.meta.dirname, '../fixtures/onnx/cnn.onnx');
const expected = JSON.parse(readFileSync(join(REF, 'expected.json'), 'utf8'));
const tmp = tempDir();
const slides = [0, 1, 2, 3].map((s) => tmp.path(`slides/slide_${s}.tif`));
const EXTRACT = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--reader', 'main', '--quiet', '--json'];

beforeAll(async () => {
  for (const [i, f] of slides.entries()) await writeSyntheticSlide(f, { width: 1024, height: 768, seed: 20 + i });
  writeFileSync(tmp.path('labels.csv'), 'slide_id,label\nslide_0,0\nslide_1,1\nslide_2,2\nslide_3,1\n');
  writeFileSync(tmp.path('split.json'), JSON.stringify({ train_names: ['slide_0'], val_names: ['slide_1'], test_names: ['slide_2', 'slide_3'] }));
});
afterAll(() => tmp.cleanup());

describe('ONNX encoders and models of the official code in the CLI', () => {
  it('sasha extract --encoder model.onnx writes the features the ONNX encoder gives', async () => {
    const out = tmp.path('features');
    const r = await cli(['extract', ...slides, '--out', out, '--encoder', ONNX, '--labels', tmp.path('labels.csv'), ...EXTRACT]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.result).toMatchObject({ extracted: 4, dim: 8, encoder: ONNX });
    expect(JSON.parse(readFileSync(join(out, 'extract.json'), 'utf8'))).toMatchObject({ encoder: ONNX, dim: 8, inputSize: 32, normalization: 'imagenet', onnx: {} });
    // the first low-res patch of slide 0, encoded directly
    const ds = await H5FeatureDataset.open({ lrH5: join(out, 'lr.h5'), hrH5: join(out, 'hr.h5') });
    expect([ds.dim, ds.k]).toEqual([8, 4]);
    const bag = await ds.load('slide_0', ['lowRes', 'highRes', 'coords']);
    const slide = await openSlide(slides[0]);
    const enc = await loadOnnxEncoder(ONNX);
    const px = await slide.readRegion(2, bag.coords![0], bag.coords![1], 32, 32);
    const x = tf.tensor4d(Float32Array.from(px), [1, 32, 32, 3]);
    const z = await enc.encodeAsync(x);
    // stored as float16
    const row = tf.slice(bag.lowRes!, [0, 0], [1, 8]);
    expectAllclose(row, z, { rtol: 2e-3, atol: 2e-3 });
    tf.dispose([z, x, row]);
    await enc.release();
    await slide.close?.();
    tf.dispose([bag.lowRes!, bag.highRes!]);
    await ds.close?.();
    // a width the model does not give: a clear error naming both
    const bad = await cli(['extract', slides[0], '--out', tmp.path('bad'), '--encoder', ONNX, '--dim', '16', ...EXTRACT]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/gives features of width 8 .* but d = 16 was expected/);
  });

  it('sasha import-reference writes a model directory whose HAFED gives the official outputs; eval and infer use it', async () => {
    const dir = tmp.path('model');
    const imp = await cli([
      'import-reference', '--hafed', join(REF, 'hafed.pt'), '--tsu', join(REF, 'tsu.pt'), '--policy', join(REF, 'policy.pt'),
      '--out', dir, '--k', '4', '--budget', '0.5', '--lr-h5', tmp.path('features/lr.h5'), '--hr-h5', tmp.path('features/hr.h5'),
      '--split', tmp.path('split.json'), '--json', '--quiet',
    ]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.result).toMatchObject({ dim: 8, k: 4, numClasses: 3, branches: 2, tsu: true, budget: 0.5, tau: 0.95 });
    const manifest = readModelManifest(dir);
    expect(Object.keys(manifest.policies as object)).toEqual(['0.5']);
    // the saved HAFED still gives the reference outputs
    const hafed = await Hafed.load(fileIO(join(dir, 'hafed')));
    const x = tf.tensor3d(expected.hafed.x, [expected.sizes.N, 4, 8]);
    const out = hafed.forward(x);
    expectAllclose(out.logits, expected.hafed.logits, { rtol: 1e-5, atol: 1e-6 });
    tf.dispose([x, ...Object.values(out)]);
    hafed.dispose();

    const full = await cli(['eval', '--model', dir, '--json', '--quiet']);
    expect(full.code, full.stderr).toBe(0);
    expect(full.result).toMatchObject({ n: 2, budget: 1, subset: 'test' });
    const zoom = await cli(['eval', '--model', dir, '--budget', '0.5', '--json', '--quiet']);
    expect(zoom.code, zoom.stderr).toBe(0);
    expect(zoom.result).toMatchObject({ n: 2, budget: 0.5, policy: 'learned' });

    // infer from pixels with the encoder recorded at extraction (the .onnx file)
    const inf = await cli(['infer', slides[2], '--model', dir, '--out', tmp.path('infer'), '--reader', 'main', '--no-heatmap', '--json', '--quiet']);
    expect(inf.code, inf.stderr).toBe(0);
    const slideJson = JSON.parse(readFileSync(tmp.path('infer/slides/slide_2.json'), 'utf8'));
    // the same analysis in-process: loadSashaModel + analyzeSlide with the ONNX encoder
    const model = await loadSashaModel(dir, { budget: 0.5 });
    const enc = await loadOnnxEncoder(ONNX);
    const src = await openSlide(slides[2]);
    const settings = JSON.parse(readFileSync(tmp.path('features/extract.json'), 'utf8'));
    const res = await analyzeSlide(model, src, { encoder: enc, config: { budget: 0.5, lowRes: settings.lowRes, highRes: settings.highRes, tissue: settings.tissue, grid: settings.grid } });
    expect(slideJson.visited.map((v: { index: number }) => v.index)).toEqual(res.visited);
    expectAllclose(slideJson.prediction.probs, res.prediction.probs, { rtol: 1e-5, atol: 1e-6 });
    await enc.release();
    await src.close?.();
    model.dispose();
  });

  it('import-reference names a missing file, a foreign file and a model directory that exists', async () => {
    const none = await cli(['import-reference', '--hafed', tmp.path('none.pt'), '--out', tmp.path('m2'), '--quiet']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`No checkpoint at '${tmp.path('none.pt')}' (--hafed).`);
    const foreign = await cli(['import-reference', '--hafed', ONNX, '--out', tmp.path('m3'), '--quiet']);
    expect(foreign.stderr).toContain(`'${ONNX}' is not a PyTorch checkpoint`);
    const swapped = await cli(['import-reference', '--hafed', join(REF, 'policy.pt'), '--out', tmp.path('m4'), '--quiet']);
    expect(swapped.stderr).toMatch(/is not a checkpoint of the official HAFED/);
    const again = await cli(['import-reference', '--hafed', join(REF, 'hafed.pt'), '--out', tmp.path('model'), '--k', '4', '--quiet']);
    expect(again.stderr).toMatch(/already holds a model/);
  });
});
