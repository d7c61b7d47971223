// The browser-safe entries bundle for a browser without pulling any Node-only package or module.
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

// `npm test` builds first (the `pretest` script), so dist/ holds the package as published.
const root = new URL('../../', import.meta.url).pathname;
const BROWSER_ENTRIES = ['index', 'core/index', 'wsi/index', 'hafed/index', 'tsu/index', 'mdp/index', 'ppo/index', 'pipeline/index', 'synthetic/index'];
const NODE_ONLY = /node_modules\/(h5wasm|cli-progress|@cornerstonejs|sharp|onnxruntime-node|@tensorflow\/tfjs-node)/;

describe('browser bundle', () => {
  it('bundles every browser-safe entry with platform browser, and includes no Node-only dependency', async () => {
    const result = await build({
      entryPoints: Object.fromEntries(BROWSER_ENTRIES.map((e) => [e.replace('/index', ''), `${root}dist/${e}.js`])),
      bundle: true,
      platform: 'browser',
      format: 'esm',
      splitting: true,
      outdir: '/nonexistent-out',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.some((i) => i.includes('node_modules/@tensorflow/tfjs-core'))).toBe(true);
    expect(inputs.some((i) => i.includes('dist/hafed/'))).toBe(true);
    expect(inputs.filter((i) => NODE_ONLY.test(i) || i.startsWith('node:') || i.includes('dist/node/'))).toEqual([]);
  }, 300_000);
});
