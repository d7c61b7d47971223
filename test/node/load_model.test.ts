import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DataError, ValueError, tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { resolveWsiEnvConfig } from '../../src/mdp/index.js';
import { ActorCritic } from '../../src/ppo/index.js';
import { SashaModel, analyzeSlide, type SlideAnalysisJson } from '../../src/pipeline/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { builtinEncoder } from '../../src/wsi/index.js';
import { fileCheckpointStore, fileIO, loadSashaModel, openSlide, readTrainingExtractSettings, trainedBudgets, updateModelManifest, writeSyntheticSlide } from '../../src/node/index.js';
import { readModelManifest } from '../../src/node/model_dir.js';
import { runCli } from '../../src/node/cli/main.js';
import { expectAllclose } from '../helpers.js';
import { tempDir } from '../wsi/fixtures.js';

// A model directory laid out as 'sasha train' writes it (sasha.json, hafed/, tsu/, policy-<f>/),
// trained on features that 'sasha extract' wrote (extract.json next to lr.h5).
const tmp = tempDir();
const dir = tmp.path('model');
const slidePath = tmp.path('slides/slide_0.tif');
const EXTRACT = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '16', '--input-size', '16', '--seed', '1'];

async function cli(argv: string[]): Promise<{ code: number; result: Record<string, unknown> | undefined; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await runCli(argv);
    const last = out.join('').trim().split('\n').pop();
    return { code, result: last?.startsWith('{') ? JSON.parse(last) : undefined, stderr: err.join('') };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

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
