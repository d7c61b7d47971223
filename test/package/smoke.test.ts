import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
    const out = run('esm', "import { initBackend } from 'sasha-wsi'; import { matMul, tf } from 'sasha-wsi/core'; const b = await initBackend(); const y = matMul(tf.ones([1,2]), tf.ones([2,1])); console.log(b, y.dataSync()[0]);");
    expect(out).toBe('wasm 2');
  });

  it('requires from CJS and chooses wasm', () => {
    const out = run('cjs', "const { initBackend } = require('sasha-wsi'); const { matMul, tf } = require('sasha-wsi/core'); initBackend().then((b) => { const y = matMul(tf.ones([1,2]), tf.ones([2,1])); console.log(b, y.dataSync()[0]); });");
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

  it('an error thrown in user code after initBackend() is reported from the user code, not from tfjs-wasm', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sasha-crash-'));
    const cases = {
      'throw.mjs': "import { initBackend } from 'sasha-wsi';\nawait initBackend();\nthrow new Error('boom from user code');\n",
      'reject.cjs': "const { initBackend } = require('sasha-wsi');\ninitBackend().then(() => Promise.reject(new Error('boom from user code')));\n",
    };
    for (const [file, code] of Object.entries(cases)) {
      const script = path.join(dir, file);
      // the script lives outside the package: it imports the built entry by path
      writeFileSync(script, code.replace("'sasha-wsi'", JSON.stringify(root + (file.endsWith('.mjs') ? 'dist/index.js' : 'dist/index.cjs'))));
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, SASHA_BACKEND: 'wasm' } });
      expect(r.status, file).not.toBe(0);
      const lines = r.stderr.split('\n');
      // Node's report starts at the throwing line of the user's script, then the message
      expect(lines[0], file).toMatch(new RegExp(`${file.replace('.', '\\.')}:\\d+$`));
      expect(lines.slice(0, 6).join('\n'), file).toMatch(/Error: boom from user code/);
      expect(r.stderr, file).not.toMatch(/tfjs-backend-wasm/);
      expect(r.stderr.length, file).toBeLessThan(2000);
    }
  });
});
