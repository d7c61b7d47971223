import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelManifest, writeSyntheticCohortFiles } from '../../src/node/index.js';
import { lastJson, sasha } from './cli_capture.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/features.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'sasha-cli-'));
let files: { lrH5: string; hrH5: string; split: string };

beforeAll(async () => {
  files = await writeSyntheticCohortFiles(tmp(), generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, seed: 5 }));
});

describe('sasha train all / train tsu / train policy / eval --budget < 1', () => {
  it('trains the three stages into one directory, resumes, and evaluates every policy and update', async () => {
    const out = path.join(tmp(), 'model');
    const common = ['--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--budget', '0.2'];
    const quick = ['--hafed-epochs', '2', '--tsu-epochs', '3', '--policy-epochs', '2', '--seed', '3'];
    const all = await sasha('train', 'all', ...common, ...quick, '--json', '--quiet');
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    const r = lastJson(all.stdout);
    expect(r.hafed).toMatchObject({ epochs: 2 });
    expect(r.tsu).toMatchObject({ epochs: 3 });
    expect(r.policy).toMatchObject({ budget: 0.2, update: 'tsu', epochs: 2 });
    const manifest = readModelManifest(out);
    expect(manifest.tsu).toMatchObject({ path: 'tsu', train: { tau: 0.95, epochs: 3 } });
    expect(manifest.policies).toMatchObject({ '0.2': { path: 'policy-0.2', budget: 0.2, env: { budget: 0.2, tau: 0.95, rewriteOnce: true, update: 'tsu' } } });
    expect(readdirSync(out).sort()).toEqual(['checkpoints', 'hafed', 'policy-0.2', 'sasha.json', 'tsu', 'v.h5']);
    expect(readdirSync(path.join(out, 'checkpoints')).sort()).toEqual(['hafed', 'policy-0.2', 'tsu']);

    // --resume: every stage is found done
    const again = await sasha('train', 'all', ...common, ...quick, '--resume', '--json');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/HAFED: already trained[\s\S]*TSU: already trained[\s\S]*Policy for f = 0.2: already trained/);
    expect(lastJson(again.stdout)).not.toHaveProperty('hafed');

    // eval at f = 0.2 with each policy and both updates
    for (const policy of ['learned', 'random', 'top-attention', 'greedy-attention']) {
      const ev = await sasha('eval', '--model', out, '--budget', '0.2', '--policy', policy, '--json', '--quiet');
      expect(ev.code, ev.stderr).toBe(0);
      const e = lastJson(ev.stdout);
      for (const key of ['accuracy', 'balancedAccuracy', 'auc', 'f1', 'ece', 'n', 'budget', 'seconds']) expect(e).toHaveProperty(key);
      expect(e).toMatchObject({ budget: 0.2, policy, update: 'tsu', n: 3, subset: 'test' });
      expect(e.zoomedFraction).toBeGreaterThanOrEqual(0.2);
      expect(e.zoomedFraction).toBeLessThan(0.3);
    }
    const global = lastJson((await sasha('eval', '--model', out, '--budget', '0.2', '--update', 'global', '--json', '--quiet')).stdout);
    expect(global).toMatchObject({ update: 'global', policy: 'learned' });

    // a second policy for f = 0.1 sits next to the first
    const p01 = await sasha('train', 'policy', '--model', out, '--budget', '0.1', '--epochs', '1', '--json', '--quiet');
    expect(p01.code, p01.stderr).toBe(0);
    expect(Object.keys(readModelManifest(out).policies as object).sort()).toEqual(['0.1', '0.2']);
    expect(lastJson((await sasha('eval', '--model', out, '--budget', '0.1', '--json', '--quiet')).stdout).budget).toBe(0.1);

    // two budgets trained at the same time into the same directory: both policies stay
    const both = await Promise.all(
      ['0.3', '0.05'].map((f) => sasha('train', 'policy', '--model', out, '--budget', f, '--epochs', '1', '--imitation-epochs', '0', '--json', '--quiet')),
    );
    for (const b of both) expect(b.code, b.stderr).toBe(0);
    expect(Object.keys(readModelManifest(out).policies as object).sort()).toEqual(['0.05', '0.1', '0.2', '0.3']);
  });

  it('bad input: no policy for the budget, a budget outside (0, 1], unknown policy, no f_S', async () => {
    const out = path.join(tmp(), 'm');
    expect((await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '1', '--quiet')).code).toBe(0);
    const noTsu = await sasha('train', 'policy', '--model', out, '--budget', '0.2');
    expect(noTsu.code).toBe(2);
    expect(noTsu.stderr).toMatch(/holds no f_S; run 'sasha train tsu --model/);
    expect((await sasha('train', 'tsu', '--model', out, '--epochs', '1', '--quiet')).code).toBe(0);
    const noPolicy = await sasha('eval', '--model', out, '--budget', '0.1');
    expect(noPolicy.stderr).toMatch(/No policy trained for budget 0.1.*sasha train policy --model .* --budget 0.1/);
    // baselines need no trained policy
    expect((await sasha('eval', '--model', out, '--budget', '0.1', '--policy', 'random', '--quiet')).code).toBe(0);
    for (const bad of ['0', '1.5', 'x']) {
      const r = await sasha('train', 'policy', '--model', out, '--budget', bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/Expected --budget to be a number > 0 <= 1/);
    }
    const badPolicy = await sasha('eval', '--model', out, '--budget', '0.2', '--policy', 'smart');
    expect(badPolicy.stderr).toMatch(/--policy to be one of learned, random, top-attention, greedy-attention/);
    const badUpdate = await sasha('train', 'policy', '--model', out, '--budget', '0.2', '--update', 'all');
    expect(badUpdate.stderr).toMatch(/--update to be 'tsu' or 'global'/);
    expect(existsSync(path.join(out, 'policy-0.2'))).toBe(false);
  });
});
