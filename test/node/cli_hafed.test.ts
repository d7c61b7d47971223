import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelManifest, writeSyntheticCohortFiles } from '../../src/node/index.js';
import { lastJson, sasha } from './cli_capture.js';
import { Hafed } from '../../src/hafed/index.js';
import { fileIO } from '../../src/node/index.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/features.js';

let files: { lrH5: string; hrH5: string; split: string };
let files32: { lrH5: string; hrH5: string; split: string };
const tmp = () => mkdtempSync(path.join(tmpdir(), 'sasha-cli-'));

beforeAll(async () => {
  files = await writeSyntheticCohortFiles(tmp(), generateSyntheticCohort(SYNTHETIC_PRESETS.tiny));
  files32 = await writeSyntheticCohortFiles(tmp(), generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 32 }));
});

describe('sasha train hafed / sasha eval --budget 1', () => {
  it('trains into a model directory and evaluates it, with --json as the last stdout line', async () => {
    const out = path.join(tmp(), 'model');
    const train = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '2', '--seed', '3', '--json', '--quiet');
    expect(train.stderr).toBe('');
    expect(train.code).toBe(0);
    const t = lastJson(train.stdout);
    expect(t).toMatchObject({ model: out, input: 'highRes', epochs: 2, trainSlides: 6, valSlides: 3 });
    expect(t.bestEpoch).toBeGreaterThanOrEqual(1);
    const manifest = readModelManifest(out);
    expect(manifest).toMatchObject({ format: 'sasha-model', dim: 16, k: 16, numClasses: 2, data: files });
    expect(manifest.hafed).toMatchObject({ path: 'hafed', input: 'highRes', seed: 3 });
    expect(readdirSync(path.join(out, 'checkpoints', 'hafed')).sort()).toEqual(['best', 'last']);
    const model = await Hafed.load(fileIO(path.join(out, 'hafed')));
    expect(model.config).toMatchObject({ dim: 16, k: 16, numBranches2: 5, maskDrop: 0.24, seed: 3 });
    model.dispose();

    const csv = path.join(out, 'pred.csv');
    const ev = await sasha('eval', '--model', out, '--subset', 'test', '--budget', '1', '--predictions', csv, '--json', '--quiet');
    expect(ev.code).toBe(0);
    const e = lastJson(ev.stdout);
    for (const key of ['accuracy', 'balancedAccuracy', 'auc', 'f1', 'ece', 'n', 'budget', 'seconds']) expect(e).toHaveProperty(key);
    expect(e.n).toBe(3);
    expect(e.budget).toBe(1);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('slide_id,label,pred,prob_0,prob_1');
    expect(lines).toHaveLength(4);
    // accuracy printed equals the CSV's
    const right = lines.slice(1).filter((l) => l.split(',')[1] === l.split(',')[2]).length;
    expect(e.accuracy).toBeCloseTo(right / 3, 12);

    // resume: the finished run is picked up from its last checkpoint, nothing more to train
    const again = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '2', '--seed', '3', '--resume', '--json', '--quiet');
    expect(again.code).toBe(0);
    expect(lastJson(again.stdout).epochs).toBe(2);
  });

  it('trains the same model with --workers 1 (stage 1 split over two threads) and with --native-stage1', async () => {
    const run = async (name: string, extra: string[]) => {
      const r = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', path.join(tmp(), name), '--epochs', '2', '--seed', '3', ...extra, '--json', '--quiet');
      expect(r.code).toBe(0);
      return lastJson(r.stdout);
    };
    const one = await run('one', []);
    const two = await run('two', ['--workers', '1']);
    expect(two.trainLoss).toBeCloseTo(one.trainLoss as number, 4);
    expect(two.bestEpoch).toBe(one.bestEpoch);
    // stage 1 on ONNX Runtime's kernels: the same training up to float rounding
    const native = await run('native', ['--native-stage1']);
    expect(native.trainLoss).toBeCloseTo(one.trainLoss as number, 4);
    expect(native.bestEpoch).toBe(one.bestEpoch);
    const both = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', path.join(tmp(), 'both'), '--native-stage1', '--workers', '1', '--quiet');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/either --native-stage1 or --workers/);
  });

  it('trains the Z-only baseline with --input lowRes', async () => {
    const out = path.join(tmp(), 'z');
    const r = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--split', files.split, '--out', out, '--epochs', '1', '--input', 'lowRes', '--json', '--quiet');
    expect(r.code).toBe(0);
    expect(lastJson(r.stdout).input).toBe('lowRes');
    const ev = await sasha('eval', '--model', out, '--json', '--quiet');
    expect(ev.code).toBe(0);
    expect(lastJson(ev.stdout).n).toBe(3);
  });

  it('bad input: clear errors, exit code 2, nothing half-written', async () => {
    const out = path.join(tmp(), 'bad');
    const noHr = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--split', files.split, '--out', out);
    expect(noHr.code).toBe(2);
    expect(noHr.stderr).toMatch(/needs --hr-h5/);
    const noOut = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split);
    expect(noOut.stderr).toMatch(/needs --out/);
    const badEpochs = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '0');
    expect(badEpochs.stderr).toMatch(/--epochs to be an integer >= 1/);
    const missing = await sasha('train', 'hafed', '--lr-h5', '/nonexistent/lr.h5', '--hr-h5', files.hrH5, '--split', files.split, '--out', out);
    expect(missing.code).toBe(2);
    expect(existsSync(out)).toBe(false);

    const model = path.join(tmp(), 'm16');
    expect((await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', model, '--epochs', '1', '--quiet')).code).toBe(0);
    const wrongD = await sasha('eval', '--model', model, '--lr-h5', files32.lrH5, '--hr-h5', files32.hrH5, '--split', files32.split);
    expect(wrongD.code).toBe(2);
    expect(wrongD.stderr).toMatch(/trained on features with d = 16, k = 16, but .* has d = 32/);
    const budget = await sasha('eval', '--model', model, '--budget', '0.2');
    expect(budget.stderr).toMatch(/holds no f_S; run 'sasha train tsu/);
    const notModel = await sasha('eval', '--model', tmp());
    expect(notModel.stderr).toMatch(/is not a model directory: sasha.json is missing/);
  });
});
