/**
 * Feature extraction on a real SLURM cluster: starts a one-node cluster on this machine from
 * Debian's `slurm-wlm` and `munge` (its own config, ports, socket and state in a temporary
 * folder), writes a synthetic cohort of slides, submits `sasha extract` as an array job of 4
 * tasks (each task picks its shard from SLURM_ARRAY_TASK_ID), kills one task with SIGKILL in the
 * middle of its shard, resubmits that task alone, runs `sasha merge` as a job, and checks that
 * the merged `lr.h5` and `hr.h5` hold exactly what one `sasha extract` process writes. Stops the
 * cluster at the end. Writes the outcome to docs/reliability.md.
 *
 * Needs: `apt-get install slurm-wlm munge`, the build (`npm run build`), and rights to start the
 * daemons (root, or the user named in the config). CI does not run it.
 *
 *   npx tsx bench/slurm_extraction.ts [--slides 12 --keep]
 */
import '@tensorflow/tfjs-backend-cpu';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { initBackend } from '../src/core/backend.js';
import { writeSyntheticSlide } from '../src/node/index.js';
import { h5Contents } from '../test/reliability/crash.js';
import { writeReliability } from '../scripts/reliability_doc.js';
import { table } from './results.js';

const { values } = parseArgs({
  options: {
    slides: { type: 'string', default: '12' },
    keep: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'node', 'cli', 'main.js');
const SHARDS = 4;
const KILLED = 2;
const FLAGS = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '16', '--input-size', '16'];
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const bin of ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel']) {
  if (spawnSync('which', [bin]).status !== 0) throw new Error(`'${bin}' is missing: apt-get install slurm-wlm munge`);
}
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build`);

const work = mkdtempSync(join(os.tmpdir(), 'sasha-slurm-'));
const c = (name: string) => join(work, 'cluster', name);
mkdirSync(c('state'), { recursive: true });
mkdirSync(c('spool'), { recursive: true });
const env = { ...process.env, SLURM_CONF: c('slurm.conf') };
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const events: string[] = [];
const note = (m: string) => {
  events.push(m);
  log(m);
};

/** Starts munge and a one-node SLURM cluster with its own config; returns the SLURM version. */
async function startCluster(): Promise<string> {
  const host = os.hostname();
  const user = os.userInfo().username;
  writeFileSync(c('munge.key'), randomBytes(1024));
  chmodSync(c('munge.key'), 0o400);
  run('munged', ['--force', `--socket=${c('munge.sock')}`, `--key-file=${c('munge.key')}`, `--log-file=${c('munged.log')}`, `--pid-file=${c('munged.pid')}`, `--seed-file=${c('munged.seed')}`]);
  const port = 20000 + (process.pid % 20000);
  writeFileSync(
    c('slurm.conf'),
    [
      'ClusterName=sasha',
      `SlurmctldHost=${host}`,
      `SlurmUser=${user}`,
      `SlurmdUser=${user}`,
      `SlurmctldPort=${port}`,
      `SlurmdPort=${port + 1}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${c('munge.sock')}`,
      'CredType=cred/munge',
      `StateSaveLocation=${c('state')}`,
      `SlurmdSpoolDir=${c('spool')}`,
      `SlurmctldPidFile=${c('slurmctld.pid')}`,
      `SlurmdPidFile=${c('slurmd.pid')}`,
      `SlurmctldLogFile=${c('slurmctld.log')}`,
      `SlurmdLogFile=${c('slurmd.log')}`,
      'ProctrackType=proctrack/pgid',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'SchedulerType=sched/backfill',
      'ReturnToService=2',
      'MpiDefault=none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      `NodeName=${host} CPUs=${Math.max(2, os.cpus().length)} State=UNKNOWN`,
      'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
    ].join('\n') + '\n',
  );
  run('slurmctld', ['-f', c('slurm.conf'), '-i']);
  run('slurmd', ['-f', c('slurm.conf')]);
  for (let i = 0; i < 60; i++) {
    const state = spawnSync('sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' }).stdout.trim();
    if (state === 'idle') return run('sinfo', ['--version']).trim();
    await sleep(500);
  }
  throw new Error(`the SLURM node did not come up; see ${c('slurmctld.log')} and ${c('slurmd.log')}`);
}

/** Cancels the jobs, stops the daemons and waits until they are gone (they write state while stopping). */
async function stopCluster(): Promise<void> {
  spawnSync('scancel', ['--user', os.userInfo().username], { env });
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const p of ['slurmd', 'slurmctld', 'munged']) {
    const f = c(`${p}.pid`);
    if (!existsSync(f)) continue;
    const pid = Number(readFileSync(f, 'utf8').trim());
    if (!alive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

/** Array tasks of a job still known to SLURM: `{ '<job>_<task>': state }`. */
function tasks(job: string): Record<string, string> {
  const out = spawnSync('squeue', ['-h', '-r', '-j', job, '-o', '%i %T'], { env, encoding: 'utf8' }).stdout.trim();
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]));
}

async function waitEmpty(jobs: string[], timeoutS = 3600): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const left = jobs.flatMap((j) => Object.keys(tasks(j)));
    if (left.length === 0) return;
    if (Date.now() - t0 > timeoutS * 1000) throw new Error(`jobs still queued after ${timeoutS} s: ${left.join(', ')}`);
    await sleep(1000);
  }
}

const jobScript = (slides: string, out: string) =>
  [
    '#!/bin/bash',
    '#SBATCH --job-name=sasha-extract',
    '#SBATCH --cpus-per-task=1',
    `#SBATCH --output=${join(work, 'logs', 'extract_%A_%a.out')}`,
    '# the shard comes from SLURM_ARRAY_TASK_ID; SASHA_SHARD_COUNT keeps a resubmitted task in the same 4 shards',
    'export SASHA_SHARD_COUNT=4',
    `exec ${process.execPath} ${CLI} extract ${slides} --out ${out} ${FLAGS.join(' ')} --no-merge --quiet --json`,
    '',
  ].join('\n');

const t0 = performance.now();
let version = '';
try {
  await initBackend('cpu');
  const n = Number(values.slides);
  const slidesDir = join(work, 'slides');
  for (let s = 0; s < n; s++) await writeSyntheticSlide(join(slidesDir, `slide_${String(s).padStart(2, '0')}.tif`), { width: 1536, height: 1024, seed: s });
  note(`${n} synthetic slides of 1536 x 1024 pixels written`);

  // The reference: one process, the whole cohort.
  const single = join(work, 'single');
  const ts = performance.now();
  execFileSync(process.execPath, [CLI, 'extract', slidesDir, '--out', single, ...FLAGS, '--quiet', '--json'], { encoding: 'utf8' });
  const singleSeconds = (performance.now() - ts) / 1000;
  note(`single-process sasha extract: ${singleSeconds.toFixed(1)} s`);

  version = await startCluster();
  note(`one-node cluster up (${version}, ${Math.max(2, os.cpus().length)} CPUs)`);
  const out = join(work, 'sharded');
  mkdirSync(join(work, 'logs'));
  writeFileSync(join(work, 'extract.sbatch'), jobScript(slidesDir, out));
  const array = run('sbatch', ['--parsable', '--array=0-3', join(work, 'extract.sbatch')]).trim();
  note(`array job ${array} submitted: tasks 0-3`);

  // Kill task 2 in the middle of its shard: once some but not all of its slides are written.
  const ids = readdirSync(slidesDir).filter((f) => f.endsWith('.tif')).sort().map((f) => f.replace(/\.tif$/, ''));
  const mine = ids.filter((_, i) => i % SHARDS === KILLED);
  const doneOf = (dir: string) => mine.filter((id) => existsSync(join(dir, 'parts', 'lr', `${id}.h5`))).length;
  let killedAt = -1;
  for (let i = 0; i < 3600 && killedAt < 0; i++) {
    const st = tasks(array)[`${array}_${KILLED}`];
    const done = doneOf(out);
    if (st === undefined) throw new Error(`task ${KILLED} ended before it could be killed (${done} of ${mine.length} slides done); use more --slides`);
    if (st === 'RUNNING' && done >= 1 && done < mine.length) {
      run('scancel', ['--full', '--signal=KILL', `${array}_${KILLED}`]);
      killedAt = done;
    } else await sleep(200);
  }
  note(`task ${array}_${KILLED} killed with SIGKILL after ${killedAt} of its ${mine.length} slides`);
  await waitEmpty([array]);
  const afterKill = doneOf(out);
  const partsBefore = ids.filter((id) => existsSync(join(out, 'parts', 'lr', `${id}.h5`))).length;
  note(`array finished: ${partsBefore} of ${n} slides extracted; shard ${KILLED}: ${afterKill} of ${mine.length}`);
  const leftovers = existsSync(join(out, `.sasha-shard-${KILLED}-of-4.lock`));

  const again = run('sbatch', ['--parsable', `--array=${KILLED}`, join(work, 'extract.sbatch')]).trim();
  note(`task ${KILLED} resubmitted alone as job ${again} (array of one: SASHA_SHARD_COUNT=4 keeps it shard ${KILLED} of 4)`);
  await waitEmpty([again]);
  const resumed = readFileSync(join(work, 'logs', `extract_${again}_${KILLED}.out`), 'utf8').trim().split('\n').pop() ?? '{}';
  const r = JSON.parse(resumed) as { extracted: number; skipped: number };
  note(`resubmitted task: ${r.extracted} extracted, ${r.skipped} skipped (done before the kill)`);

  writeFileSync(join(work, 'merge.sbatch'), ['#!/bin/bash', `#SBATCH --output=${join(work, 'logs', 'merge_%j.out')}`, `exec ${process.execPath} ${CLI} merge ${out} --json --quiet`, ''].join('\n'));
  const merge = run('sbatch', ['--parsable', join(work, 'merge.sbatch')]).trim();
  await waitEmpty([merge]);
  const merged = JSON.parse(readFileSync(join(work, 'logs', `merge_${merge}.out`), 'utf8').trim().split('\n').pop() ?? '{}') as { slides: number };
  note(`sasha merge (job ${merge}): ${merged.slides} slides into lr.h5 and hr.h5`);

  const same: Record<string, boolean> = {};
  for (const f of ['lr.h5', 'hr.h5']) same[f] = (await h5Contents(join(single, f))) === (await h5Contents(join(out, f)));
  const identical = same['lr.h5'] && same['hr.h5'];
  note(`merged features identical to the single-process run: lr.h5 ${same['lr.h5'] ? 'yes' : 'NO'}, hr.h5 ${same['hr.h5'] ? 'yes' : 'NO'}`);

  const body = [
    `A one-node SLURM cluster (${version}, munge, \`select/cons_tres\`, ${Math.max(2, os.cpus().length)} CPUs) started on this machine by the script, ` +
      `${n} synthetic slides (1536 x 1024, JPEG tiles), \`sasha extract\` with the built-in encoder (d = 16) as an array job of ${SHARDS} tasks, ` +
      'each task taking its shard from `SLURM_ARRAY_TASK_ID` (the job script sets `SASHA_SHARD_COUNT=4`).',
    '',
    table(['step', 'outcome'], events.map((e, i) => [String(i + 1), e])),
    '',
    `Lock file of the killed shard left behind: ${leftovers ? 'yes (taken over by the resubmitted task: its pid was gone)' : 'no'}. ` +
      `**Result: the merged \`lr.h5\` and \`hr.h5\` are ${identical ? 'identical' : 'NOT identical'} to a single-process run** ` +
      '(every dataset, byte for byte, every attribute, slide order). ' +
      `Total ${((performance.now() - t0) / 60000).toFixed(1)} min.`,
  ].join('\n');
  console.log(body);
  if (!values['no-record']) writeReliability('slurm', 'A real cluster scheduler: SLURM array job, a killed task, resubmission, merge', `npx tsx bench/slurm_extraction.ts ${process.argv.slice(2).join(' ')}`.trim(), 'cpu', body);
  if (!identical) process.exitCode = 1;
} finally {
  await stopCluster();
  if (!values.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
