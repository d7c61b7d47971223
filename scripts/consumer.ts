// The fresh consumer project of test/package/install.test.ts: packs this package as
// `sasha-wsi.tgz` next to a copy of test/package/consumer/, and installs it there from the npm
// registry through the consumer's lockfile.
//
// `npm run pack:lock` regenerates test/package/consumer/package-lock.json (after a change of the
// package's dependencies): it installs without the lockfile and copies the new one back.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONSUMER = path.join(root, 'test', 'package', 'consumer');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packs the built package into `dir/sasha-wsi.tgz` (dist/ must be built). */
export function packInto(dir: string): string {
  const out = execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
  const name = (JSON.parse(out) as { filename: string }[])[0].filename;
  const tgz = path.join(dir, 'sasha-wsi.tgz');
  renameSync(path.join(dir, name), tgz);
  return tgz;
}

/** A fresh copy of the consumer project with the packed package beside it; `install` runs npm ci. */
export function makeConsumer(options: { install: boolean }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sasha-consumer-'));
  packInto(dir);
  const app = path.join(dir, 'app');
  cpSync(CONSUMER, app, { recursive: true, filter: (src) => !/node_modules|[/\\]out$/.test(src) });
  if (options.install) {
    execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
  return app;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const app = makeConsumer({ install: false });
  rmSync(path.join(app, 'package-lock.json'), { force: true });
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, stdio: 'inherit' });
  const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { integrity?: string }> };
  // the tarball changes with every build: no integrity for it, so that npm ci installs the new one
  delete lock.packages['node_modules/sasha-wsi'].integrity;
  writeFileSync(path.join(CONSUMER, 'package-lock.json'), JSON.stringify(lock, null, 2) + '\n');
  console.log(`wrote ${path.relative(root, path.join(CONSUMER, 'package-lock.json'))}${existsSync(app) ? '' : ''}`);
}
