import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');

// Every example runs at its small size against the packed package in
// test/package/install.test.ts. The full-size staged recipe (npm run demo) trains for minutes:
// it runs from the repository with the slow tests.
describe('examples at full size', () => {
  it.runIf(process.env.SASHA_SLOW_TESTS === '1')('demo: HAFED-100%, SASHA-0.2 and random-0.2 side by side', async () => {
    const { stdout } = await run(tsx, [join('examples', '06_staged_recipe.ts')], { cwd: root, timeout: 1_800_000 });
    expect(stdout).toMatch(/HAFED-100%.*\n.*SASHA-0\.2.*\n.*random-0\.2/);
  }, 1_900_000);
});
