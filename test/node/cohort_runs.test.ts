// Runs that share folders: output-folder locks, crash-safe writes and their leftovers, shards
// picked up from SLURM and Kubernetes, and `sasha merge`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateError } from '../../src/core/index.js';
import { lockFolder, removeStaleTempFiles, writeFileAtomic, writeFileAtomicSync, writeSyntheticSlide } from '../../src/node/index.js';
import { tempPathFor } from '../../src/node/io/file_io.js';
import { h5Contents } from '../reliability/crash.js';
import { tempDir } from '../wsi/fixtures.js';
import { cli, cliWithEnv as withEnv } from './cli_capture.js';

const tmp = tempDir('sasha-cohort-');
const DIST = join(import.meta.dirname, '..', '..', 'dist', 'node', 'index.js');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

/** A child process that takes the lock `name` of `dir` for `purpose` and holds it until killed. */
async function holder(dir: string, purpose: string, name?: string): Promise<ChildProcess> {
  const code = `import { lockFolder } from ${JSON.stringify(DIST)}; lockFolder(${JSON.stringify(dir)}, ${JSON.stringify(purpose)}${name ? `, ${JSON.stringify(name)}` : ''}); console.log('held'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`the lock holder exited with ${c}`)));
  });
  return child;
}

const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.on('exit', () => resolve())));

describe('output-folder locks', () => {
  it('a second run is refused with a message naming the first; a killed holder is taken over', async () => {
    const dir = tmp.path('locked');
    const child = await holder(dir, 'sasha train hafed');
    expect(() => lockFolder(dir, 'sasha train tsu')).toThrow(StateError);
    expect(() => lockFolder(dir, 'sasha train tsu')).toThrow(
      new RegExp(`in use by 'sasha train hafed' \\(pid ${child.pid} on host ${os.hostname()}, since .*\\), alive \\d+ s ago\\. .*delete '.*\\.sasha\\.lock'`),
    );
    child.kill('SIGKILL');
    await exited(child);
    const lock = lockFolder(dir, 'sasha train tsu');
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'sasha train tsu' });
    // nested locks of one process (train all runs train hafed) count, and the last release removes the file
    const inner = lockFolder(dir, 'sasha train hafed');
    inner.release();
    expect(existsSync(lock.file)).toBe(true);
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
  });

  it("a lock of another host is kept while it is touched, and taken over once idle for 120 s", () => {
    const dir = tmp.path('other-host');
    mkdirSync(dir);
    const file = join(dir, '.sasha.lock');
    writeFileSync(file, JSON.stringify({ pid: 1, host: 'node-17', purpose: 'sasha extract (shard 2 of 4)', since: new Date().toISOString(), token: 'x' }));
    expect(() => lockFolder(dir, 'sasha extract')).toThrow(/in use by 'sasha extract \(shard 2 of 4\)' \(pid 1 on host node-17/);
    const old = new Date(Date.now() - 121_000);
    utimesSync(file, old, old);
    const lock = lockFolder(dir, 'sasha extract');
    lock.release();
  });

  it('sasha train hafed into a folder another run holds stops at once, and writes nothing', async () => {
    const out = tmp.path('model-locked');
    const child = await holder(out, 'sasha train all');
    const r = await cli(['train', 'hafed', '--lr-h5', '/nonexistent/lr.h5', '--hr-h5', '/nonexistent/hr.h5', '--split', '/nonexistent/s.json', '--out', out, '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sasha train hafed: The folder '.*model-locked' is in use by 'sasha train all' \(pid \d+/);
    expect(readdirSync(out)).toEqual(['.sasha.lock']);
    child.kill('SIGKILL');
    await exited(child);
  });
});

describe('crash-safe writes', () => {
  it('leave no temporary file, and the stale ones of dead processes of this host are removed', async () => {
    const dir = tmp.path('writes');
    mkdirSync(dir);
    await writeFileAtomic(join(dir, 'a.json'), '{"a":1}');
    writeFileAtomicSync(join(dir, 'b.json'), '{"b":2}');
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'b.json']);
    expect(readFileSync(join(dir, 'b.json'), 'utf8')).toBe('{"b":2}');
    // leftovers: a dead process of this host (pid 2^22 + 1 is above Linux's pid_max), a live one (us), another host
    const host = /\/x\.(.+)-\d+-[0-9a-f]{8}\.tmp$/.exec(tempPathFor(join(dir, 'x')))![1];
    const dead = join(dir, `lr.h5.${host}-4194305-0123abcd.tmp`);
    const live = tempPathFor(join(dir, 'hr.h5'));
    const foreign = join(dir, 'lr.h5.node17-4194305-0123abcd.tmp');
    for (const f of [dead, live, foreign]) writeFileSync(f, 'partial');
    expect(removeStaleTempFiles(dir)).toBe(1);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(foreign)).toBe(true);
  });
});

describe('shards on a cluster, and sasha merge', () => {
  const FLAGS = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '8', '--input-size', '16', '--reader', 'main', '--quiet', '--json'];
  const slides = tmp.path('slides');

  beforeAll(async () => {
    for (const seed of [0, 1, 2, 3, 4]) await writeSyntheticSlide(join(slides, `s${seed}.tif`), { width: 1024, height: 768, seed });
  });

  it('SLURM array tasks and Kubernetes indexes pick their shard; sasha merge gives the single-process files', async () => {
    const single = tmp.path('single');
    expect((await cli(['extract', slides, '--out', single, ...FLAGS])).code).toBe(0);
    const out = tmp.path('sharded');
    const slurm = { SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_STEP: '1' };
    // task 0 of 3 from SLURM, task 1 from a Kubernetes indexed Job of 3 completions; task 2 not run yet
    const t0 = await withEnv({ ...slurm, SLURM_ARRAY_TASK_ID: '0' }, ['extract', slides, '--out', out, '--no-merge', ...FLAGS]);
    expect(t0.result).toMatchObject({ slides: 2, extracted: 2, merged: null });
    const k1 = await withEnv({ JOB_COMPLETION_INDEX: '1', SASHA_SHARD_COUNT: '3' }, ['extract', slides, '--out', out, '--no-merge', ...FLAGS]);
    expect(k1.result).toMatchObject({ slides: 2, extracted: 2 });
    const early = await cli(['merge', out, '--quiet']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/1 of 5 slides of '.*sharded' have no features yet: s2\. Run \(or resubmit\) the shards that hold them, or merge the others with --allow-missing/);
    // task 2 resubmitted alone: an array of one, so the count comes from SASHA_SHARD_COUNT
    const t2 = await withEnv({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '1', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_MAX: '2', SASHA_SHARD_COUNT: '3' }, [
      'extract',
      slides,
      '--out',
      out,
      '--no-merge',
      ...FLAGS,
    ]);
    expect(t2.result).toMatchObject({ slides: 1, extracted: 1 });
    const merged = await cli(['merge', out, '--json', '--quiet']);
    expect(merged.code).toBe(0);
    expect(merged.result).toMatchObject({ kind: 'extract', slides: 5, missing: [] });
    for (const f of ['lr.h5', 'hr.h5']) expect(await h5Contents(join(out, f))).toBe(await h5Contents(join(single, f)));
  });

  it('names a scheduler variable or count that cannot give a shard', async () => {
    const out = tmp.path('bad-shard');
    const noCount = await withEnv({ JOB_COMPLETION_INDEX: '1' }, ['extract', slides, '--out', out, ...FLAGS]);
    expect(noCount.stderr).toMatch(/JOB_COMPLETION_INDEX is set \(a Kubernetes indexed Job\) but the number of shards is not: pass --shard-count/);
    const outside = await withEnv({ SLURM_ARRAY_TASK_ID: '4', SASHA_SHARD_COUNT: '4' }, ['extract', slides, '--out', out, ...FLAGS]);
    expect(outside.stderr).toMatch(/SLURM_ARRAY_TASK_ID is 4, outside the 4 shards \(0 to 3\)\. Submit the array as --array=0-3/);
    const stepped = await withEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '5', SLURM_ARRAY_TASK_STEP: '4' }, [
      'extract',
      slides,
      '--out',
      out,
      ...FLAGS,
    ]);
    expect(stepped.stderr).toMatch(/is not a plain range; give the number of shards with --shard-count/);
    expect(existsSync(out)).toBe(false);
  });
});
