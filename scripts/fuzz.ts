/**
 * The full fuzzing run of every reader of untrusted bytes: `--cases` damaged inputs per target
 * (fixed `--seed`), each in a child process under a CPU-time bound, a wall-clock bound and a
 * resident-memory cap. Prints a table and writes it to docs/reliability.md.
 *
 *   npx tsx scripts/fuzz.ts --cases 2000 --seed 20261127
 *   npx tsx scripts/fuzz.ts --targets tiff --cases 1 --from 1234 --no-record   # replay one case
 */
import '@tensorflow/tfjs-backend-cpu';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/core/backend.js';
import { table } from '../bench/results.js';
import { FUZZ_TARGETS } from '../test/reliability/fuzz_targets.js';
import { DEFAULT_FUZZ_LIMITS, makeSeeds, runFuzz } from '../test/reliability/harness.js';
import { writeReliability } from './reliability_doc.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '20261127' },
    from: { type: 'string', default: '0' },
    targets: { type: 'string', default: FUZZ_TARGETS.map((t) => t.name).join(',') },
    'no-record': { type: 'boolean', default: false },
  },
});
const cases = Number(values.cases);
const seed = Number(values.seed);
const from = Number(values.from);
const targets = values.targets!.split(',');

await initBackend('cpu');
const dir = mkdtempSync(join(tmpdir(), 'sasha-fuzz-'));
const t0 = performance.now();
try {
  await makeSeeds(join(dir, 'seeds'), targets);
  let done = 0;
  const total = cases * targets.length;
  const reports = await runFuzz(
    targets.map((target) => ({ target, count: cases, from })),
    {
      seedsDir: join(dir, 'seeds'),
      workDir: join(dir, 'work'),
      seed,
      onCase: (c) => {
        done++;
        if (c.outcome !== 'accepted' && c.outcome !== 'error') console.log(`  ${c.target} case ${c.case}: ${c.outcome} (${c.kind ?? ''}) ${c.message ?? ''}`);
        if (done % 500 === 0) console.log(`${done} / ${total} cases`);
      },
    },
  );
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  const rows = reports.map((r) => [
    `\`${r.target}\``,
    r.reader,
    r.cases,
    r.counts.accepted,
    r.counts.error,
    r.counts.foreign,
    r.counts.crash,
    r.counts.hang,
    r.counts.memory,
    r.leakedCases,
    r.maxCpuMs,
    r.maxMs.toFixed(0),
    `${mib(r.baselineRss)} / ${mib(r.peakRss)}`,
    mib(r.maxGrowth.bytes),
  ]);
  const header = [
    'target',
    'reader',
    'cases',
    'accepted',
    'own error',
    'foreign error',
    'crash',
    'hang',
    'memory cap',
    'tensors left',
    'max CPU ms / case',
    'max wall ms / case',
    'child RSS MiB: loaded / peak',
    'max peak growth in one case, MiB',
  ];
  const all = reports.reduce((a, r) => a + r.cases, 0);
  const sum = (k: 'foreign' | 'crash' | 'hang' | 'memory') => reports.reduce((a, r) => a + r.counts[k], 0);
  const kinds = new Map<string, number>();
  for (const r of reports) for (const [k, n] of Object.entries(r.kinds)) kinds.set(k, (kinds.get(k) ?? 0) + n);
  const samples = reports.flatMap((r) => r.findings.filter((f) => f.outcome === 'error').slice(0, 3).map((f) => `- \`${r.target}\` case ${f.case} (${f.kind}): ${f.message?.replace(/\/tmp\/[^ ']+\/case\//g, '…/')}`));
  const body = [
    `${all} damaged inputs (${cases} per target, seed ${seed}), each read in a child process with a ${DEFAULT_FUZZ_LIMITS.heapMb} MiB JavaScript heap, ` +
      `a ${DEFAULT_FUZZ_LIMITS.rssCapMb} MiB resident-memory cap, a ${DEFAULT_FUZZ_LIMITS.caseCpuMs / 1000} s CPU-time bound and a ${DEFAULT_FUZZ_LIMITS.caseTimeoutMs / 1000} s wall-clock bound per case. ` +
      '"Accepted" means the damage left the input readable (a flipped bit in a weight or a pixel); "own error" is a `SashaError` (`DataError`, `ValueError`, ...) with a message naming the file.',
    '',
    table(header, rows),
    '',
    `**Totals: ${sum('crash')} crashes, ${sum('hang')} hangs, ${sum('foreign')} foreign errors, ${sum('memory')} memory kills** ` +
      `(targets: 0, 0, 0, 0). Mutations: ${[...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}.`,
    '',
    'Sample messages (the first cases of a few error kinds):',
    '',
    ...samples.slice(0, 14),
    '',
    `Run time ${((performance.now() - t0) / 60000).toFixed(1)} min. Replay one case: \`npx tsx scripts/fuzz.ts --targets TARGET --from CASE --cases 1 --seed ${seed} --no-record\`.`,
  ].join('\n');
  console.log(body);
  if (!values['no-record']) {
    writeReliability('fuzz', 'Fuzzing the readers of untrusted bytes', `npx tsx scripts/fuzz.ts ${process.argv.slice(2).join(' ')}`.trim(), 'cpu', body);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
