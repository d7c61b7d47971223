import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, ShapeError, ValueError, modelFilesFromPicked, tf, tfl } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { resolveWsiEnvConfig } from '../../src/mdp/index.js';
import { ActorCritic } from '../../src/ppo/index.js';
import {
  SashaModel,
  analyzeConfigFromSettings,
  analyzeSlide,
  loadModelEncoder,
  loadSashaModelFrom,
  readModelExtractSettings,
  type SlideAnalysisJson,
} from '../../src/pipeline/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { builtinEncoder } from '../../src/wsi/index.js';
import {
  fileCheckpointStore,
  fileIO,
  loadEncoder,
  loadSashaModel,
  modelFilesFromDir,
  openSlide,
  packModelDir,
  readModelDirExtractSettings,
  readTrainingExtractSettings,
  trainedBudgets,
  updateModelManifest,
  writeSyntheticSlide,
} from '../../src/node/index.js';
import { readModelManifest } from '../../src/node/model_dir.js';
import { cli } from './cli_capture.js';
import { expectAllclose } from '../helpers.js';
import { tempDir } from '../wsi/fixtures.js';

// A model directory laid out as 'sasha train' writes it (sasha.json, hafed/, tsu/, policy-<f>/),
// trained on features that 'sasha extract' wrote (extract.json next to lr.h5).
const tmp = tempDir();
const dir = tmp.path('model');
const slidePath = tmp.path('slides/slide_0.tif');
const EXTRACT = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '16', '--input-size', '16', '--seed', '1'];

const env = (budget: number) => resolveWsiEnvConfig({ budget, tau: 0.5 });
const policies = { 0.2: new ActorCritic({ dim: 16, hiddenDim: 8, seed: 20 }), 0.1: new ActorCritic({ dim: 16, hiddenDim: 8, seed: 10 }) };

beforeAll(async () => {
  await writeSyntheticSlide(slidePath, { width: 1024, height: 768, seed: 7 });
  const ex = await cli(['extract', slidePath, '--out', tmp.path('features'), '--reader', 'main', '--quiet', '--json', ...EXTRACT]);
  expect(ex.code).toBe(0);
  const hafed = new Hafed({ dim: 16, k: 4, numClasses: 2, attentionDim: 8, seed: 1 });
  const fS = new StateMlp({ dim: 16, seed: 1 });
  await hafed.save(fileIO(join(dir, 'hafed')));
  await fS.save(fileIO(join(dir, 'tsu')));
  for (const [f, p] of Object.entries(policies)) await p.save(fileIO(join(dir, `policy-${f}`)));
  await updateModelManifest(dir, {
    dim: 16,
    k: 4,
    numClasses: 2,
    data: { lrH5: tmp.path('features/lr.h5'), hrH5: tmp.path('features/hr.h5'), split: tmp.path('split.json') },
    hafed: { path: 'hafed', input: 'highRes', config: {}, train: {}, seed: 1, best: {} },
    tsu: { path: 'tsu', train: { tau: 0.5 }, bestEpoch: 0, bestValMse: 0, identityValMse: 0 },
    policies: Object.fromEntries(
      Object.keys(policies).map((f) => [f, { path: `policy-${f}`, budget: Number(f), env: env(Number(f)), ppo: {}, epochs: 1, seed: 0, bestEpoch: 0, bestScore: 0 }]),
    ),
  });
  hafed.dispose();
  fS.dispose();
});
afterAll(() => {
  policies[0.2].dispose();
  policies[0.1].dispose();
  tmp.cleanup();
});

describe('loadSashaModel', () => {
  it('loads HAFED, f_S and the policy of the budget asked for, with the settings it was trained with', async () => {
    expect(trainedBudgets(readModelManifest(dir))).toEqual([0.1, 0.2]);
    const x = tf.randomNormal([6, 16], 0, 1, 'float32', 3) as tf.Tensor2D;
    for (const f of [0.1, 0.2] as const) {
      const model = await loadSashaModel(dir, { budget: f });
      expect(model.env).toEqual(env(f));
      expect(model.hafed!.dim).toBe(16);
      expect(model.fS!.dim).toBe(16);
      tf.tidy(() => expectAllclose(model.policy!.actorLogits(x), policies[f].actorLogits(x), { rtol: 0, atol: 0 }));
      model.dispose();
    }
    x.dispose();
    const bare = await loadSashaModel(dir, { withoutPolicy: true });
    expect(bare.policy).toBeNull();
    bare.dispose();
  });

  it('names the budgets it holds and the command that trains another', async () => {
    await expect(loadSashaModel(dir)).rejects.toThrow(/holds policies for budgets 0.1, 0.2; choose one \(--budget\)/);
    await expect(loadSashaModel(dir, { budget: 0.3 })).rejects.toThrow(DataError);
    await expect(loadSashaModel(dir, { budget: 0.3 })).rejects.toThrow(/No policy trained for budget 0.3 .*\(trained for: 0.1, 0.2\).*sasha train policy --model .* --budget 0.3/s);
    await expect(loadSashaModel(dir, { budget: 1.2 })).rejects.toThrow(ValueError);
    await expect(loadSashaModel(tmp.path('nothing_here'))).rejects.toThrow(/holds no SASHA model.*sasha train all --out/s);
  });

  it('loads a bundle saved with SashaModel.save, and refuses its policy at another budget', async () => {
    const bundleDir = tmp.path('bundle');
    const m = new SashaModel({ hafed: new Hafed({ dim: 16, k: 4, seed: 2 }), fS: new StateMlp({ dim: 16 }), policy: new ActorCritic({ dim: 16, hiddenDim: 8 }), env: env(0.2) });
    await m.save(fileCheckpointStore(bundleDir));
    m.dispose();
    const back = await loadSashaModel(bundleDir);
    expect(back.env).toEqual(env(0.2));
    back.dispose();
    await expect(loadSashaModel(bundleDir, { budget: 0.1 })).rejects.toThrow(/holds a policy for budget 0.2, not 0.1/);
    const baseline = await loadSashaModel(bundleDir, { budget: 0.1, withoutPolicy: true });
    expect(baseline.env.budget).toBe(0.1);
    baseline.dispose();
  });

  it('finds the extraction settings of the training features', () => {
    const s = readTrainingExtractSettings(readModelManifest(dir));
    expect(s).toMatchObject({ encoder: 'builtin-cnn(d=16,in=16,seed=1)', lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 } });
  });
});

describe('sasha infer on a model directory', () => {
  it('reads slides with the encoder, levels and tissue settings of the training features by default', async () => {
    const out = tmp.path('infer');
    const { code, result, stderr } = await cli(['infer', slidePath, '--model', dir, '--budget', '0.1', '--out', out, '--reader', 'main', '--quiet', '--json', '--no-heatmap']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result).toMatchObject({ analysed: 1, budget: 0.1, encoder: 'builtin-cnn(d=16,in=16,seed=1)' });
    const json = JSON.parse(readFileSync(join(out, 'slides', 'slide_0.json'), 'utf8')) as SlideAnalysisJson;
    const model = await loadSashaModel(dir, { budget: 0.1 });
    const encoder = builtinEncoder({ dim: 16, inputSize: 16, seed: 1 });
    const slide = await openSlide(slidePath);
    const res = await analyzeSlide(model, slide, { encoder, config: { lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 }, tissue: { aT: 0.1, aH: 0.1 } } });
    expect(json.visited.map((v) => v.index)).toEqual(res.visited);
    expect(json.visited.length).toBe(Math.ceil(0.1 * res.counts.patches));
    expectAllclose(json.prediction.probs, res.prediction.probs, { rtol: 1e-6, atol: 0 });
    await slide.close();
    encoder.dispose();
    model.dispose();
  });
});

/** The files of a directory as a browser's folder picker gives them (webkitRelativePath under `top`). */
function pickedFiles(root: string, top: string): { name: string; webkitRelativePath: string; arrayBuffer(): Promise<ArrayBuffer> }[] {
  const out: { name: string; webkitRelativePath: string; arrayBuffer(): Promise<ArrayBuffer> }[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else {
        const bytes = readFileSync(join(root, r));
        out.push({ name: e.name, webkitRelativePath: `${top}/${r}`, arrayBuffer: async () => new Blob([bytes]).arrayBuffer() });
      }
    }
  };
  walk('');
  return out;
}

describe('packModelDir and loading from any files', () => {
  it('packs the model, its extraction settings and no checkpoints; the packed directory loads from disk and from picked files', async () => {
    const packedDir = tmp.path('packed');
    const packed = await packModelDir(dir, packedDir, { budgets: [0.2] });
    expect(packed.files).toEqual(
      expect.arrayContaining(['sasha.json', 'extract.json', 'hafed/model.json', 'tsu/model.json', 'policy-0.2/model.json']),
    );
    expect(packed.files.some((f) => f.startsWith('policy-0.1/') || f.startsWith('checkpoints/'))).toBe(false);
    expect(packed.encoder).toBe('builtin-cnn(d=16,in=16,seed=1)');
    const manifest = readModelManifest(packedDir);
    expect(manifest.data).toEqual({ lrH5: 'lr.h5', hrH5: 'hr.h5', split: 'split.json' });
    expect(trainedBudgets(manifest)).toEqual([0.2]);

    const x = tf.randomNormal([5, 16], 0, 1, 'float32', 4) as tf.Tensor2D;
    const fromDisk = await loadSashaModel(packedDir);
    // the folder the user picked is 'models' around the model directory 'c16'
    const picked = modelFilesFromPicked(pickedFiles(packedDir, 'models/c16'));
    expect(picked.name).toBe('models/c16');
    const fromPicked = await loadSashaModelFrom(picked);
    for (const m of [fromDisk, fromPicked]) {
      expect(m.env).toEqual(env(0.2));
      tf.tidy(() => expectAllclose(m.policy!.actorLogits(x), policies[0.2].actorLogits(x), { rtol: 0, atol: 0 }));
    }
    const settings = await readModelExtractSettings(picked);
    expect(analyzeConfigFromSettings(settings)).toEqual({ lowRes: { level: 2 }, highRes: { level: 1 }, tissue: expect.objectContaining({ aT: 0.1, aH: 0.1 }), grid: expect.objectContaining({ patchSize: 32 }) });
    const encoder = await loadModelEncoder(picked, settings!, { dim: 16 });
    expect(encoder.name).toBe('builtin-cnn(d=16,in=16,seed=1)');

    // the packed directory analyses a slide as the original does
    const slide = await openSlide(slidePath);
    const a = await analyzeSlide(fromPicked, slide, { encoder, config: analyzeConfigFromSettings(settings) });
    const original = await loadSashaModel(dir, { budget: 0.2 });
    const b = await analyzeSlide(original, slide, { encoder, config: { lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 }, tissue: { aT: 0.1, aH: 0.1 } } });
    expect(a.visited).toEqual(b.visited);
    expectAllclose(a.prediction.probs, b.prediction.probs, { rtol: 0, atol: 0 });
    await slide.close();
    for (const m of [fromDisk, fromPicked, original]) m.dispose();
    encoder.dispose();
    x.dispose();
    await expect(loadModelEncoder(picked, settings!, { dim: 32 })).rejects.toThrow(ShapeError);
    await expect(loadModelEncoder(picked, settings!, { dim: 32 })).rejects.toThrow(/gives features of width d = 16, but the model was trained on d = 32/);
  });

  it('copies a tfjs encoder into the packed directory, and loads it from there', async () => {
    const encDir = tmp.path('my_encoder');
    const net = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [8, 8, 3] }), tfl.layers.dense({ units: 16, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) })] });
    await net.save(fileIO(encDir));
    const settings = { ...readTrainingExtractSettings(readModelManifest(dir))!, encoder: encDir, inputSize: 8, normalization: 'unit' };
    const packedDir = tmp.path('packed_enc');
    const packed = await packModelDir(dir, packedDir, { budgets: [0.1], extract: settings });
    expect(packed.encoder).toBe('encoder');
    expect(packed.files).toEqual(expect.arrayContaining(['encoder/model.json']));
    const files = modelFilesFromDir(packedDir);
    const encoder = await loadModelEncoder(files, (await readModelExtractSettings(files))!, { dim: 16 });
    expect(encoder.dim).toBe(16);
    const px = tf.randomUniform([2, 8, 8, 3], 0, 255, 'float32', 5) as tf.Tensor4D;
    tf.tidy(() => expectAllclose(encoder.encode(px), net.predict(tf.div(px, 255)) as tf.Tensor, { rtol: 1e-6, atol: 1e-6 }));
    // the CLI finds the packed encoder too (a path relative to the directory)
    expect(readModelDirExtractSettings(packedDir)?.encoder).toBe(join(packedDir, 'encoder'));
    px.dispose();
    encoder.dispose();
    net.dispose();
    await expect(packModelDir(dir, tmp.path('packed_bad'), { budgets: [0.3] })).rejects.toThrow(/No policy trained for budget 0.3/);
    await expect(packModelDir(dir, tmp.path('packed_bad'), { extract: { ...settings, encoder: tmp.path('missing_encoder') } })).rejects.toThrow(/is not a tfjs model directory here/);
    await expect(packModelDir(dir, dir)).rejects.toThrow(ValueError);
  });
});

describe('packModelDir with an ONNX encoder', () => {
  it('copies the .onnx file into encoder/, and loads it from the packed files with the recorded patch preparation', async () => {
    const onnxFile = join(new URL('../fixtures/onnx/', import.meta.url).pathname, 'cnn.onnx'); // [B, 3, 32, 32] -> [B, 8]
    const settings = { ...readTrainingExtractSettings(readModelManifest(dir))!, encoder: onnxFile, dim: 8, inputSize: 32, onnx: { layout: 'NCHW' } };
    const packedDir = tmp.path('packed_onnx');
    const packed = await packModelDir(dir, packedDir, { budgets: [0.2], extract: settings });
    expect(packed.encoder).toBe('encoder/cnn.onnx');
    expect(readFileSync(join(packedDir, 'encoder/cnn.onnx'))).toEqual(readFileSync(onnxFile));
    const picked = modelFilesFromPicked(pickedFiles(packedDir, 'c16'));
    const encoder = await loadModelEncoder(picked, (await readModelExtractSettings(picked))!, { dim: 8 });
    const direct = await loadEncoder({ encoder: onnxFile, inputSize: 32 });
    const px = tf.randomUniform([2, 32, 32, 3], 0, 255, 'float32', 6) as tf.Tensor4D;
    const a = await (encoder as unknown as { encodeAsync(x: tf.Tensor4D): Promise<tf.Tensor> }).encodeAsync(px);
    const b = await (direct as unknown as { encodeAsync(x: tf.Tensor4D): Promise<tf.Tensor> }).encodeAsync(px);
    expect(a.shape).toEqual([2, 8]);
    expectAllclose(a, b, { rtol: 0, atol: 0 });
    tf.dispose([a, b, px]);
    encoder.dispose();
    direct.dispose();
    // the CLI reads the packed directory's encoder too
    expect(readModelDirExtractSettings(packedDir)?.encoder).toBe(join(packedDir, 'encoder/cnn.onnx'));
  });
});
