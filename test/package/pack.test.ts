// What `npm pack` puts in the tarball, and `npm publish --dry-run` without a warning.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm test` builds first (the `pretest` script), so dist/ holds the package as published.
const root = new URL('../../', import.meta.url).pathname;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const pkg = JSON.parse(readFileSync(root + 'package.json', 'utf8')) as {
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, Record<string, string>>>;
};

function packedFiles(): string[] {
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  return (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
}

describe('npm package', () => {
  const files = packedFiles();

  it('holds every export target and the bin, and no source maps, API pages or tests', () => {
    const targets = Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e).flatMap((c) => Object.values(c))));
    expect(targets.length).toBeGreaterThan(30);
    for (const t of targets) expect(files, t).toContain(t.replace(/^\.\//, ''));
    expect(pkg.bin.sasha).toBe('dist/node/cli/main.js');
    expect(files).toContain(pkg.bin.sasha);
    expect(readFileSync(root + pkg.bin.sasha, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(files.filter((f) => f.endsWith('.map') || f.startsWith('docs/api/') || f.startsWith('test/'))).toEqual([]);
    expect(files).toContain('src/wsi/synthetic/README.md'); // the README links to it
    expect(files.filter((f) => f.startsWith('src/') && !f.endsWith('/README.md'))).toEqual([]);
  });

  it('holds every file the README and the shipped docs link to', () => {
    const missing: string[] = [];
    let links = 0;
    for (const doc of files.filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(root + doc, 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue; // absolute URL
        links++;
        const rel = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target));
        if (!files.includes(rel) && !files.some((f) => f.startsWith(rel + '/'))) missing.push(`${doc} -> ${target}`);
      }
    }
    expect(links).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  it('npm publish --dry-run prints no warning', () => {
    // A placeholder token stands for a logged-in maintainer: without one npm warns that publishing
    // needs a login. A dry run sends nothing.
    const r = spawnSync(npm, ['publish', '--dry-run', '--ignore-scripts', '--registry=https://registry.npmjs.org/', '--//registry.npmjs.org/:_authToken=unused-in-dry-run'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const output = `${r.stdout}\n${r.stderr}`;
    expect(output).toMatch(/\+ sasha-wsi@/);
    expect(output.split('\n').filter((l) => /\bwarn\b/i.test(l))).toEqual([]);
  });
});
