// The packed package in a fresh strict TypeScript project, as a user installs it: npm ci from the
// registry through the project's lockfile, type checks (ESM and CommonJS, with and without
// checking declaration files), the compiled programs run, and the `sasha` bin answers.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeConsumer } from '../../scripts/consumer.js';

// `npm test` builds first (the `pretest` script), so dist/ holds the package as published.
const root = new URL('../../', import.meta.url).pathname;
const version = (JSON.parse(readFileSync(root + 'package.json', 'utf8')) as { version: string }).version;
let app = '';

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(cmd, args, { cwd: app, encoding: 'utf8', env: { ...process.env, SASHA_BACKEND: '' } });
}

describe('the packed package in a fresh project', () => {
  beforeAll(() => {
    try {
      app = makeConsumer({ install: true });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(
        `Installing the packed package failed: ${err.stderr ?? err.message}\n` +
          'If the package dependencies changed, run `npm run pack:lock` and commit test/package/consumer/package-lock.json.',
      );
    }
  }, 600_000);

  it('installs without sharp, onnxruntime or tfjs-node, and links the sasha bin', () => {
    for (const absent of ['sharp', 'onnxruntime-node', '@tensorflow/tfjs-node']) expect(existsSync(path.join(app, 'node_modules', absent)), absent).toBe(false);
    const r = run(path.join(app, 'node_modules', '.bin', 'sasha'), ['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  });

  it('type-checks in strict mode (ESM and CommonJS), and the declaration files of sasha-wsi check too', () => {
    const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    const strict = run(process.execPath, [tsc, '-p', 'tsconfig.json']);
    expect(strict.stdout + strict.stderr).toBe('');
    expect(strict.status).toBe(0);
    // without skipLibCheck tfjs's own declarations report DOM names; none of sasha-wsi's may fail
    const libs = run(process.execPath, [tsc, '-p', 'tsconfig.libcheck.json']);
    const errors = libs.stdout.split('\n').filter((l) => /error TS/.test(l));
    expect(errors.length).toBeGreaterThan(0); // the check ran over the declarations of the dependencies
    expect(errors.filter((l) => l.startsWith('node_modules/sasha-wsi/') || l.startsWith('src/'))).toEqual([]);
  }, 300_000);

  it('runs the compiled ESM and CommonJS programs against the installed package', () => {
    const esm = run(process.execPath, ['out/app.js']);
    expect(esm.status, esm.stderr).toBe(0);
    expect(JSON.parse(esm.stdout.trim().split('\n').pop()!)).toEqual({
      backend: 'wasm',
      version,
      epochs: 1,
      reloaded: 16,
      product: 2,
      layer: 'function',
      openSlide: 'function',
    });
    const cjs = run(process.execPath, ['out/app.cjs']);
    expect(cjs.status, cjs.stderr).toBe(0);
    expect(JSON.parse(cjs.stdout.trim().split('\n').pop()!)).toEqual({ backend: 'wasm', version, classes: 2, io: 'function' });
  }, 300_000);
});

// The numbered examples, as a user runs them: copied into the fresh project, type-checked in
// strict mode against the installed package, compiled, and run at their small sizes
// (SASHA_EXAMPLE_QUICK=1).
describe('the examples against the installed package', () => {
  const examples = readdirSync(root + 'examples').filter((f) => /^\d\d_.+\.ts$/.test(f)).sort();
  let compiled = false;

  /** Runs a compiled example and returns its stdout (stderr on failure). */
  function example(name: string, args: string[] = []): string {
    if (!compiled) {
      cpSync(root + 'examples', path.join(app, 'examples'), { recursive: true });
      const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = run(process.execPath, [tsc, '-p', 'tsconfig.examples.json']);
      expect(r.stdout + r.stderr, 'the examples type-check against the installed package').toBe('');
      compiled = true;
    }
    const r = spawnSync(process.execPath, [path.join('out', 'examples', name.replace(/\.ts$/, '.js')), ...args], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, SASHA_BACKEND: '', SASHA_EXAMPLE_QUICK: '1' },
      timeout: 600_000,
    });
    expect(r.status, `${name}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }
  const num = (text: string, re: RegExp): number[] => {
    const m = re.exec(text);
    expect(m, `${re} in:\n${text}`).not.toBeNull();
    return m!.slice(1).map(Number);
  };

  it('are numbered 01 to 07, each linked from the README, importing sasha-wsi as a user does', () => {
    expect(examples.map((f) => f.slice(0, 2))).toEqual(['01', '02', '03', '04', '05', '06', '07']);
    const readme = readFileSync(root + 'README.md', 'utf8');
    for (const f of examples) {
      expect(readme, f).toContain(`](examples/${f})`);
      const source = readFileSync(root + 'examples/' + f, 'utf8');
      expect(source).toMatch(/from 'sasha-wsi'/);
      expect(source).not.toMatch(/from '\.\.?\//);
    }
    expect(readdirSync(root + 'examples').filter((f) => !examples.includes(f))).toEqual([]);
  });

  it('01: HAFED trained on bags made from arrays, evaluated, saved and loaded back unchanged', () => {
    const out = example('01_hafed_on_your_bags.ts');
    const [accuracy, auc] = num(out, /test: accuracy ([\d.]+), AUC ([\d.]+)/);
    expect(accuracy).toBeGreaterThanOrEqual(0);
    expect(auc).toBeGreaterThan(0.5);
    const [before, after] = num(out, /P\(tumour\) ([\d.]+) before, ([\d.]+) after/);
    expect(after).toBe(before);
  }, 600_000);
  it('02: the targeted state update and an episode of T steps with negative rewards', () => {
    const out = example('02_environment_and_tsu.ts');
    const [T] = num(out, /T = (\d+) steps/);
    expect(T).toBeGreaterThan(0);
    expect(out).toContain(`t = ${String(T).padStart(3)}:`);
    const [ret] = num(out, /return (-?[\d.]+);/);
    expect(ret).toBeLessThan(0); // a sum of -CE rewards
  }, 600_000);

  it('03: a CleanRL-shaped PPO loop with finite losses, then the learned and the random policy on the test slides', () => {
    const out = example('03_custom_ppo_loop.ts');
    const lines = out.split('\n').filter((l) => l.startsWith('iteration'));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      const [, pl, vl, ent] = num(l, /episodic_return (-?[\d.]+), losses\/policy_loss (-?[\d.]+), losses\/value_loss ([\d.]+), losses\/entropy ([\d.]+)/);
      expect(Number.isFinite(pl) && Number.isFinite(vl)).toBe(true);
      expect(ent).toBeGreaterThan(0);
    }
    const [accL] = num(out, /learned policy accuracy ([\d.]+)/);
    const [accR] = num(out, /random policy  accuracy ([\d.]+)/);
    for (const a of [accL, accR]) expect(a >= 0 && a <= 1).toBe(true);
  }, 600_000);

  it('04: Z and U of one slide, and three slides into h5 files read back with their shapes', () => {
    const out = example('04_slide_to_features.ts');
    const [n, d, nu, k, du] = num(out, /Z: \[(\d+), (\d+)\], U: \[(\d+), (\d+), (\d+)\]/);
    expect([nu, du, k]).toEqual([n, d, 4]);
    expect(out).toMatch(/extracted 3 slides \(0 failed\)/);
    const bags = [...out.matchAll(/label (\d), Z \[(\d+), 64\], U \[(\d+), 4, 64\]/g)];
    expect(bags.length).toBe(3);
    for (const b of bags) expect(b[3]).toBe(b[2]);
  }, 600_000);

  it('05: three encoders of different widths on the same patches', () => {
    const out = example('05_your_own_encoder.ts');
    const widths = [...out.matchAll(/d = +(\d+): Z \[(\d+), (\d+)\]/g)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
    expect(widths.map((w) => w[0])).toEqual([16, 6, 1]);
    for (const [d, , zd] of widths) expect(zd).toBe(d);
    expect(new Set(widths.map((w) => w[1])).size).toBe(1); // the same N patches
  }, 600_000);

  it('06: the staged recipe, its three rows, and the bundle loaded back with the same result', () => {
    const out = example('06_staged_recipe.ts');
    expect(out).toMatch(/HAFED-100%.*\n.*SASHA-0\.2.*\n.*random-0\.2/);
    const [acc, auc, trained] = num(out, /reloaded bundle: SASHA-0\.2 accuracy ([\d.]+), AUC ([\d.]+) \(as trained: ([\d.]+)\)/);
    expect(acc >= 0 && acc <= 1).toBe(true);
    expect(auc).toBe(trained);
  }, 600_000);

  it('07: a new slide from its pixels with fewer patches encoded than every sub-patch, and a heatmap file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sasha-example-07-'));
    const out = example('07_inference_heatmaps.ts', [dir]);
    const [patches, encoded, steps, all] = num(out, /read (\d+) low-res patches and (\d+) high-res sub-patches in (\d+) zooms \(every sub-patch would be (\d+)/);
    expect(steps).toBe(Math.ceil(0.2 * patches));
    expect(encoded).toBe(4 * steps);
    expect(patches + encoded).toBeLessThan(all);
    const [w, h] = num(out, /heatmap (\d+) x (\d+): /);
    const file = /heatmap \d+ x \d+: (\S+)/.exec(out)![1];
    const header = readFileSync(file).subarray(0, 20).toString('latin1');
    expect(header.startsWith(`P6\n${w} ${h}\n255\n`) || header.startsWith('\x89PNG')).toBe(true);
  }, 600_000);
});
