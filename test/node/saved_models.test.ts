// Models and checkpoints saved by sasha-wsi 0.1.0 (test/fixtures/models/v0.1, written by
// test/fixtures/make_model_fixture.ts) load and resume with the current code.
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf, type SashaModel } from '../../src/index.js';
import { loadSashaModel, writeSyntheticCohortFiles } from '../../src/node/index.js';
import { fixtureInputs } from '../fixtures/model_fixture_inputs.js';
import { lastJson, sasha } from './cli_capture.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/features.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'models', 'v0.1');
const expected = JSON.parse(readFileSync(path.join(fixture, 'expected.json'), 'utf8'));

function expectClose(got: ArrayLike<number>, want: number[], tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThan(tol);
}

function checkOutputs(model: SashaModel): void {
  const { hafed, fS, policy } = model;
  expect(hafed && fS && policy).toBeTruthy();
  const { u, v, x, state } = fixtureInputs(hafed!.dim, hafed!.config.k);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const pred = hafed!.classify(tf.tensor2d(v.data, v.shape));
    expectClose(hafed!.aggregate(tf.tensor3d(u.data, u.shape)).dataSync(), expected.hafed.aggregate);
    expectClose(pred.probs.dataSync(), expected.hafed.probs);
    expectClose(pred.attention.dataSync(), expected.hafed.attention);
    expectClose(fS!.apply(tf.tensor2d(x.data, x.shape)).dataSync(), expected.tsu);
    expectClose(policy!.actorLogits(tf.tensor2d(state.data, state.shape)).dataSync(), expected.policy.logits);
    expectClose([policy!.value(tf.tensor2d(state.data, state.shape)).dataSync()[0]], [expected.policy.value]);
  });
  expect(tf.memory().numTensors).toBe(before);
  expect({ ...model.env }).toEqual(expected.env);
}

describe('models saved by release 0.1', () => {
  it('the CLI model directory loads and computes what it computed when saved', async () => {
    const model = await loadSashaModel(path.join(fixture, 'cli'), { budget: 0.2 });
    try {
      checkOutputs(model);
    } finally {
      model.dispose();
    }
  });

  it('the SashaModel bundle loads and computes what it computed when saved', async () => {
    const model = await loadSashaModel(path.join(fixture, 'bundle'));
    try {
      checkOutputs(model);
    } finally {
      model.dispose();
    }
  });

  describe('training checkpoints of 0.1 resume', () => {
    let files: { lrH5: string; hrH5: string; split: string };
    let dir: string;
    beforeAll(async () => {
      const work = mkdtempSync(path.join(tmpdir(), 'sasha-saved-'));
      files = await writeSyntheticCohortFiles(work, generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, seed: 5 }));
      dir = path.join(work, 'model');
      cpSync(path.join(fixture, 'cli'), dir, { recursive: true });
    });
    const history = (stage: string) =>
      JSON.parse(readFileSync(path.join(dir, 'checkpoints', stage, 'last', 'model.json'), 'utf8')).modelTopology;
    const savedHistory = (stage: string) =>
      JSON.parse(readFileSync(path.join(fixture, 'cli', 'checkpoints', stage, 'last', 'model.json'), 'utf8')).modelTopology;

    it('HAFED, f_S and the policy each continue from their 0.1 checkpoint for one more epoch', async () => {
      const data = ['--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split];
      const hafed = await sasha('train', 'hafed', ...data, '--out', dir, '--epochs', '3', '--seed', '3', '--resume', '--json', '--quiet');
      expect(hafed.code, hafed.stderr).toBe(0);
      expect(lastJson(hafed.stdout).epochs).toBe(3);
      // the two restored epochs are the saved ones (their recorded durations included), not re-run
      expect(history('hafed').progress.history.slice(0, 2)).toEqual(savedHistory('hafed').history);

      const tsu = await sasha('train', 'tsu', '--model', dir, '--epochs', '4', '--seed', '3', '--resume', '--json', '--quiet');
      expect(tsu.code, tsu.stderr).toBe(0);
      expect(lastJson(tsu.stdout).epochs).toBe(4);
      expect(history('tsu').progress.history.slice(0, 3)).toEqual(savedHistory('tsu').history);

      // release 0.1 trained the policy as the reference recipe does (PPO alone, no attention input)
      const policy = await sasha('train', 'policy', '--model', dir, '--budget', '0.2', '--epochs', '3', '--seed', '3', '--preset', 'reference', '--resume', '--json', '--quiet');
      expect(policy.code, policy.stderr).toBe(0);
      expect(lastJson(policy.stdout).epochs).toBe(3);
      expect(history('policy-0.2').metadata.progress.history.slice(0, 2)).toEqual(savedHistory('policy-0.2').metadata.history);
    });
  });
});
