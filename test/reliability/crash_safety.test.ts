// Crash safety with a reduced number of kills (the full run is `npx tsx
// scripts/crash_safety.ts`, whose counts are in docs/reliability.md): children that write a
// model directory, training checkpoints and feature files are killed with SIGKILL at random
// points; nothing on disk may load wrongly, and a resumed run must end with the same result.
import { mkdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/index.js';
import { writeSyntheticCohortFiles, writeSyntheticSlide } from '../../src/node/index.js';
import { tempDir } from '../wsi/fixtures.js';
import { crashExtraction, crashModelDirectory, crashTraining, type CrashReport } from './crash.js';

const tmp = tempDir('sasha-crash-');
afterAll(() => tmp.cleanup());

function expectSafe(r: CrashReport, kills: number): void {
  expect(r.problems).toEqual([]);
  expect(r.kills).toBe(kills);
  expect(r.lost).toBe(0);
  expect(r.checks).toBeGreaterThan(0);
}

describe('crash safety (SIGKILL at random points)', () => {
  it('a model directory being rewritten always loads as the previous or the new model', async () => {
    mkdirSync(tmp.path('model'));
    const r = await crashModelDirectory(tmp.path('model'), 8, 1);
    expectSafe(r, 8);
    expect(r.killsWithFiles).toBe(8);
  }, 300_000);

  it('sasha train hafed killed twice and resumed ends with the uninterrupted weights, byte for byte', async () => {
    mkdirSync(tmp.path('cohort'));
    const files = await writeSyntheticCohortFiles(tmp.path('cohort'), generateSyntheticCohort(SYNTHETIC_PRESETS.tiny));
    const r = await crashTraining(files, tmp.path('train'), 2, 2, 4);
    expectSafe(r, 2);
    expect(r.resumedEqual).toBe(true);
  }, 600_000);

  it('sasha extract killed twice and resumed writes the same cohort files', async () => {
    for (const seed of [0, 1, 2]) await writeSyntheticSlide(tmp.path(`slides/s${seed}.tif`), { width: 1024, height: 768, seed });
    const flags = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '8', '--input-size', '16', '--reader', 'main'];
    const r = await crashExtraction(tmp.path('slides'), tmp.path('extract'), 2, 3, flags);
    expect(r.problems).toEqual([]);
    expect(r.lost).toBe(0);
    expect(r.resumedEqual).toBe(true);
  }, 600_000);
});
