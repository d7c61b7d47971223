// The packed package in a fresh strict TypeScript project, as a user installs it: npm ci from the
// registry through the project's lockfile, type checks (ESM and CommonJS, with and without
// checking declaration files), the compiled programs run, and the `sasha` bin answers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
