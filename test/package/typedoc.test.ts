// The API reference builds over every entry point with no warning (typedoc.json lists them).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

describe('API reference', () => {
  it('typedoc documents every entry point of package.json without a warning', () => {
    const config = JSON.parse(readFileSync(root + 'typedoc.json', 'utf8')) as { entryPoints: string[] };
    const pkg = JSON.parse(readFileSync(root + 'package.json', 'utf8')) as { exports: Record<string, unknown> };
    const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    expect(config.entryPoints.length).toBe(entries.length);
    // --emit none: check everything, write nothing; warnings fail the run
    const out = execFileSync(process.execPath, [root + 'node_modules/typedoc/bin/typedoc', '--emit', 'none', '--treatWarningsAsErrors'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).not.toMatch(/\[warning\]|\[error\]/);
  }, 600_000);
});
