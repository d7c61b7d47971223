import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// `npm test` builds first (the `pretest` script), so dist/ holds the package as published.
const root = new URL('../../', import.meta.url).pathname;

function run(file: string, code: string): string {
  return execFileSync(process.execPath, [file === 'esm' ? '--input-type=module' : '--input-type=commonjs', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SASHA_BACKEND: '' },
  }).trim();
}

describe('built package', () => {
  it('emits ESM, CJS and type declarations', () => {
    for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) {
      expect(existsSync(root + f), f).toBe(true);
    }
  });

  it('imports from ESM and chooses wasm', () => {
    const out = run('esm', "import { initBackend, matMul, tf } from 'sasha-wsi'; const b = await initBackend(); const y = matMul(tf.ones([1,2]), tf.ones([2,1])); console.log(b, y.dataSync()[0]);");
    expect(out).toBe('wasm 2');
  });

  it('requires from CJS and chooses wasm', () => {
    const out = run('cjs', "const { initBackend, matMul, tf } = require('sasha-wsi'); initBackend().then((b) => { const y = matMul(tf.ones([1,2]), tf.ones([2,1])); console.log(b, y.dataSync()[0]); });");
    expect(out).toBe('wasm 2');
  });

  it('loads the Node entry from ESM and CJS, and the CLI runs', () => {
    const esm = run('esm', "const n = await import('sasha-wsi/node'); console.log(typeof n.H5FeatureDataset, typeof n.openSlide);");
    expect(esm).toBe('function function');
    const cjs = run('cjs', "const n = require('sasha-wsi/node'); console.log(typeof n.H5FeatureDataset, typeof n.openSlide);");
    expect(cjs).toBe('function function');
    const help = execFileSync(process.execPath, ['dist/node/cli/main.js', '--help'], { cwd: root, encoding: 'utf8' });
    expect(help).toMatch(/train hafed/);
    for (const f of ['dist/node/slide_worker.js', 'dist/node/slide_worker.cjs', 'dist/hafed/index.js', 'dist/ppo/index.cjs']) {
      expect(existsSync(root + f), f).toBe(true);
    }
  });
});
