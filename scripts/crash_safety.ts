/**
 * The full crash-safety run: children writing a model directory, training checkpoints
 * (`sasha train hafed --resume`) and feature files (`sasha extract`) are killed with SIGKILL at
 * random points; after each kill every file on disk must load as the previous or the new
 * version, and resumed runs must end with the uninterrupted result. Needs the build (`npm run
 * build`). Prints a table and writes it to docs/reliability.md.
 *
 *   npx tsx scripts/crash_safety.ts --model-kills 200 --train-kills 20 --extract-kills 30
 */
import '@tensorflow/tfjs-backend-cpu';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/core/backend.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../src/wsi/synthetic/index.js';
import { writeSyntheticCohortFiles, writeSyntheticSlide } from '../src/node/index.js';
import { table } from '../bench/results.js';
import { crashExtraction, crashModelDirectory, crashTraining, type CrashReport } from '../test/reliability/crash.js';
import { writeReliability } from './reliability_doc.js';

const { values } = parseArgs({
  options: {
    'model-kills': { type: 'string', default: '200' },
    'train-kills': { type: 'string', default: '20' },
    'extract-kills': { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    'no-record': { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);
await initBackend('cpu');
const dir = mkdtempSync(join(tmpdir(), 'sasha-crash-'));
const reports: CrashReport[] = [];
try {
  mkdirSync(join(dir, 'model'));
  reports.push(await crashModelDirectory(join(dir, 'model'), Number(values['model-kills']), seed));
  console.log(reports.at(-1));
  mkdirSync(join(dir, 'cohort'));
  const files = await writeSyntheticCohortFiles(join(dir, 'cohort'), generateSyntheticCohort(SYNTHETIC_PRESETS.tiny));
  reports.push(await crashTraining(files, join(dir, 'train'), Number(values['train-kills']), seed + 1, 8));
  console.log(reports.at(-1));
  for (const s of [0, 1, 2]) await writeSyntheticSlide(join(dir, 'slides', `s${s}.tif`), { width: 1024, height: 768, seed: s });
  const flags = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '8', '--input-size', '16', '--reader', 'main'];
  reports.push(await crashExtraction(join(dir, 'slides'), join(dir, 'extract'), Number(values['extract-kills']), seed + 2, flags));
  console.log(reports.at(-1));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const rows = reports.map((r) => [r.scenario, r.kills, r.killsWithFiles, r.checks, r.lost, r.resumedEqual === null ? 'n/a' : r.resumedEqual ? 'yes' : '**no**', (r.seconds / 60).toFixed(1)]);
const kills = reports.reduce((a, r) => a + r.kills, 0);
const lost = reports.reduce((a, r) => a + r.lost, 0);
const body = [
  'Each kill is a SIGKILL of the writing child at a random time (seeded). "Model directory": a child saves two HAFED models A and B in turn into one folder ' +
    '(about 3 MB of weights) and updates `sasha.json` after each save; after every kill the folder must load as A or B exactly and the manifest must parse. ' +
    '"Training checkpoints": `sasha train hafed --epochs 8 --resume` on the tiny synthetic cohort, killed and restarted; after every kill each checkpoint, ' +
    'model folder and manifest on disk must load; at the end the resumed run\'s weights file must equal the uninterrupted run\'s byte for byte. ' +
    '"Feature files": `sasha extract` of three synthetic slides, killed and restarted; after every kill each per-slide part and cohort file on disk must read ' +
    '(every dataset and attribute); at the end `lr.h5` and `hr.h5` must hold what an uninterrupted run writes.',
  '',
  table(['scenario', 'kills', 'kills with files on disk', 'files checked after kills', 'files lost or loading wrongly', 'resumed result = uninterrupted', 'minutes'], rows),
  '',
  `**${kills} kills, ${lost} files lost** (target 0).` + (reports.some((r) => r.problems.length) ? `\n\nProblems:\n${reports.flatMap((r) => r.problems.map((p) => `- ${r.scenario}: ${p}`)).join('\n')}` : ''),
].join('\n');
console.log(body);
if (!values['no-record']) writeReliability('crash', 'Crash safety: SIGKILL while writing', `npx tsx scripts/crash_safety.ts ${process.argv.slice(2).join(' ')}`.trim(), 'cpu', body);
