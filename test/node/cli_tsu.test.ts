import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { H5FeatureDataset, fileIO, readModelManifest, writeSyntheticCohortFiles } from '../../src/node/index.js';
import { lastJson, sasha } from './cli_capture.js';
import { StateMlp } from '../../src/tsu/index.js';
import { expectAllclose } from '../helpers.js';
import { SYNTHETIC_PRESETS, generateSyntheticCohort } from '../../src/wsi/synthetic/features.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'sasha-tsu-cli-'));

let files: { lrH5: string; hrH5: string; split: string };
let modelDir: string;

beforeAll(async () => {
  files = await writeSyntheticCohortFiles(tmp(), generateSyntheticCohort(SYNTHETIC_PRESETS.tiny));
  modelDir = path.join(tmp(), 'model');
  const r = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', modelDir, '--epochs', '1', '--quiet', '--json');
  expect(r.code).toBe(0);
});

describe('sasha train tsu', () => {
  it('writes V and f_S into the model directory and records them in sasha.json', async () => {
    const r = await sasha('train', 'tsu', '--model', modelDir, '--epochs', '3', '--seed', '1', '--lr', '1e-3', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Computing V \(HAFED stage 1\) for 12 slides/);
    const out = lastJson(r.stdout);
    expect(out).toMatchObject({ model: modelDir, epochs: 3, trainSlides: 6, valSlides: 3, params: 3 * 16 * 32 + 32 + 32 * 16 + 16 + 32 });
    expect(out.bestValMse).toBeGreaterThan(0);
    expect(out.identityValMse).toBeGreaterThan(0);

    const manifest = readModelManifest(modelDir);
    expect(manifest.tsu).toMatchObject({ path: 'tsu', bestEpoch: out.bestEpoch, train: { epochs: 3, seed: 1, learningRate: 1e-3, tau: 0.95 } });
    expect(manifest.aggregated).toMatchObject({ path: 'v.h5', slides: 12 });
    expect(existsSync(path.join(modelDir, 'checkpoints', 'tsu', 'best', 'model.json'))).toBe(true);
    expect(existsSync(path.join(modelDir, 'checkpoints', 'tsu', 'last', 'model.json'))).toBe(true);

    // the saved f_S loads; V in v.h5 is HAFED stage 1 of U
    const fS = await StateMlp.load(fileIO(path.join(modelDir, 'tsu')));
    expect(fS.dim).toBe(16);
    fS.dispose();
    const hafed = await Hafed.load(fileIO(path.join(modelDir, 'hafed')));
    const withV = await H5FeatureDataset.open({ lrH5: files.lrH5, hrH5: files.hrH5, vH5: path.join(modelDir, 'v.h5') });
    const bag = await withV.load(withV.ids[0], ['highRes', 'aggregated']);
    const v = hafed.aggregate(bag.highRes!);
    expectAllclose(bag.aggregated!, v, { rtol: 1e-6, atol: 1e-7 });
    tf.dispose([v, bag.highRes!, bag.aggregated!]);
    withV.close();
    hafed.dispose();

    // a second run reuses V while the HAFED is the same, and --resume continues the finished run
    const again = await sasha('train', 'tsu', '--model', modelDir, '--epochs', '4', '--seed', '1', '--lr', '1e-3', '--resume', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Reusing V from/);
    expect(lastJson(again.stdout).epochs).toBe(4);
  });

  it('explains what is missing', async () => {
    const empty = tmp();
    const r = await sasha('train', 'tsu', '--model', empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a model directory.*sasha train hafed/);
    const noHafed = tmp();
    writeFileSync(path.join(noHafed, 'sasha.json'), JSON.stringify({ format: 'sasha-model', formatVersion: 1, dim: 16, k: 16, numClasses: 2, data: files }));
    expect((await sasha('train', 'tsu', '--model', noHafed)).stderr).toMatch(/holds no HAFED/);
    expect((await sasha('train', 'tsu')).stderr).toMatch(/needs --model/);
    expect((await sasha('train', 'tsu', '--model', modelDir, '--tau', '1.5')).stderr).toMatch(/--tau to be a number > 0 <= 1/);
  });
});
