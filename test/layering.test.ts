// The layering of src/: a folder imports only folders below it, and only src/node imports
// Node modules or Node-only packages (the rest must bundle for a browser).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Rank of each folder: an import must go to the same folder or to a lower rank. */
const RANK: Record<string, number> = { core: 0, eval: 1, wsi: 1, hafed: 2, tsu: 3, mdp: 4, ppo: 5, pipeline: 6, node: 7 };
/** Packages code outside src/node may import (browser-safe). */
const BROWSER_PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', 'geotiff'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Module specifiers of static imports / re-exports and of dynamic imports with a literal, comments removed. */
export function importSpecifiers(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g)) out.push(m[1]);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  for (const m of text.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out;
}

const all = files(src).map((file) => ({
  file: path.relative(src, file),
  folder: path.relative(src, file).split(path.sep)[0],
  imports: importSpecifiers(readFileSync(file, 'utf8')),
}));

describe('layering of src/', () => {
  it('finds the imports it checks (the parser sees static, type-only, re-export and dynamic imports)', () => {
    expect(importSpecifiers("import { a } from './a.js';\nimport type { B } from '../b/x.js';\nexport * from './c.js';\nconst m = await import('node:fs');\n// import { no } from 'x';")).toEqual([
      './a.js',
      '../b/x.js',
      './c.js',
      'node:fs',
    ]);
    expect(all.length).toBeGreaterThan(100);
    expect(all.find((f) => f.file === path.join('hafed', 'hafed.ts'))!.imports).toContain('../core/tf.js');
  });

  it('every folder is ranked', () => {
    const folders = new Set(all.filter((f) => f.file.includes(path.sep)).map((f) => f.folder));
    expect([...folders].filter((f) => !(f in RANK))).toEqual([]);
  });

  it('a folder imports only itself and folders of lower rank', () => {
    const bad: string[] = [];
    for (const { file, folder, imports } of all) {
      if (!file.includes(path.sep)) continue; // src/index.ts gathers every folder
      for (const spec of imports.filter((s) => s.startsWith('.'))) {
        const target = path.relative(src, path.resolve(src, path.dirname(file), spec)).split(path.sep)[0];
        if (target !== folder && !(RANK[target] < RANK[folder])) bad.push(`${file} imports ${spec} (${folder} may not import ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('only src/node imports Node modules or Node-only packages', () => {
    const bad: string[] = [];
    for (const { file, folder, imports } of all) {
      if (folder === 'node') continue;
      for (const spec of imports.filter((s) => !s.startsWith('.'))) {
        if (!BROWSER_PACKAGES.includes(spec)) bad.push(`${file} imports '${spec}'`);
      }
    }
    expect(bad).toEqual([]);
  });
});
