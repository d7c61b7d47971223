// The public surface is deliberate: what the built package exports equals the checked-in
// api/public-surface.txt, the root entry stays small, and nothing internal or bench-only leaks.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { formatSurface, readSurface, SURFACE_FILE, type SurfaceRow } from '../../scripts/api_surface.js';

// `npm test` builds first (the `pretest` script), so dist/ holds the package as published.
const rows: SurfaceRow[] = readSurface();
const root = new URL('../../', import.meta.url).pathname;

/** Names that are internal helpers, global switches or references kept for benchmarks. */
const NOT_PUBLIC = [
  'NaiveWsiEnv',
  'denseSlideLogits',
  'densePpoLoss',
  'evaluateDense',
  'setMatMulGradMode',
  'setAttentionGradMode',
  'getAttentionGradMode',
  'averageRanks',
  'normalizeModelPath',
  'parseBuiltinEncoderName',
  'LogitTree',
  'fastTanh',
  'resolveConfig',
  'checkNumber',
  'checkOneOf',
  'float16Bits',
  'float16Value',
  'readEnv',
  'assertNoFailures',
  'pickPrefixed',
  'withPrefix',
];

describe('public surface', () => {
  it('equals api/public-surface.txt', () => {
    // `entry: kind name` lines of a surface file
    const qualified = (text: string) => {
      let entry = '';
      const out: string[] = [];
      for (const line of text.split('\n')) {
        if (line.startsWith('## ')) entry = line.slice(3).split(' ')[0];
        else if (line && !line.startsWith('#')) out.push(`${entry}: ${line}`);
      }
      return out;
    };
    const built = qualified(formatSurface(rows));
    const saved = qualified(readFileSync(SURFACE_FILE, 'utf8'));
    const added = built.filter((l) => !saved.includes(l));
    const removed = saved.filter((l) => !built.includes(l));
    expect(
      { added, removed },
      'The exports of the package changed. If the change is deliberate, run `npm run api:update` and commit api/public-surface.txt.',
    ).toEqual({ added: [], removed: [] });
    expect(built.length).toBeGreaterThan(200);
  });

  it('the root entry exports at most 150 run-time values, as many as the ESM and CJS builds hold', async () => {
    const values = rows.filter((r) => r.entry === 'sasha-wsi' && r.kind === 'value').map((r) => r.name);
    expect(values.length).toBeGreaterThan(50);
    expect(values.length).toBeLessThanOrEqual(150);
    const esm = Object.keys(await import(root + 'dist/index.js')).sort();
    expect(esm).toEqual([...values].sort());
    const cjs = Object.keys(createRequire(import.meta.url)(root + 'dist/index.cjs')).sort();
    expect(cjs).toEqual([...values].sort());
  });

  it('exports nothing tagged @internal and none of the internal or bench-only names', () => {
    expect(rows.filter((r) => r.internal).map((r) => `${r.entry}: ${r.name}`)).toEqual([]);
    expect(rows.filter((r) => NOT_PUBLIC.includes(r.name)).map((r) => `${r.entry}: ${r.name}`)).toEqual([]);
  });

  it('keeps synthetic generators out of sasha-wsi/wsi and the root entry', () => {
    const synthetic = rows.filter((r) => r.entry === 'sasha-wsi/synthetic').map((r) => r.name);
    expect(synthetic).toContain('generateSyntheticCohort');
    const leaked = rows.filter((r) => (r.entry === 'sasha-wsi' || r.entry === 'sasha-wsi/wsi') && synthetic.includes(r.name));
    expect(leaked.map((r) => `${r.entry}: ${r.name}`)).toEqual([]);
  });

  it('the README and the docs import only names their entry point exports', () => {
    const exported = new Map<string, Set<string>>();
    for (const r of rows) {
      if (!exported.has(r.entry)) exported.set(r.entry, new Set());
      exported.get(r.entry)!.add(r.name);
    }
    const markdown = (dir: string): string[] =>
      readdirSync(root + dir).flatMap((f) => {
        const rel = `${dir}/${f}`;
        if (rel === 'docs/api') return [];
        return statSync(root + rel).isDirectory() ? markdown(rel) : f.endsWith('.md') ? [rel] : [];
      });
    const bad: string[] = [];
    let checked = 0;
    for (const file of ['README.md', ...markdown('docs'), ...markdown('src')]) {
      const text = readFileSync(root + file, 'utf8');
      for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*'(sasha-wsi[^']*)'/g)) {
        for (const item of m[1].split(',').map((x) => x.trim()).filter(Boolean)) {
          const name = item.replace(/^type\s+/, '').split(/\s+as\s+/)[0];
          checked++;
          if (!exported.get(m[2])?.has(name)) bad.push(`${file}: ${name} from '${m[2]}'`);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(bad).toEqual([]);
  });
});
