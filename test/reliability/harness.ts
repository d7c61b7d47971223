/**
 * Runs fuzz cases in child processes under a time bound and a memory cap, and tallies the
 * outcomes: `accepted` (the damage left the input readable), `error` (the library's own error
 * class), `foreign` (any other error), `crash` (the process died), `hang` (the case ran past
 * its time bound) and `memory` (the process grew past the cap). The child is killed and
 * restarted after a crash, a hang or a memory kill; the next case goes on.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUZZ_TARGETS, fuzzTarget } from './fuzz_targets.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

/** The outcome of one case. */
export type Outcome = 'accepted' | 'error' | 'foreign' | 'crash' | 'hang' | 'memory';

/** One finished case. */
export interface CaseResult {
  case: number;
  outcome: Outcome;
  ms?: number;
  kind?: string;
  file?: string;
  leaked?: number;
  message?: string;
  /** Growth of the child's peak resident memory during the case (bytes). */
  peakGrowth?: number;
}

/** The tally of one target. */
export interface FuzzReport {
  target: string;
  reader: string;
  seed: number;
  cases: number;
  counts: Record<Outcome, number>;
  /** Tensors left alive by cases (must be 0). */
  leakedCases: number;
  /** Slowest case, milliseconds of wall-clock time (as the child measured it). */
  maxMs: number;
  /** Most CPU time one case used, milliseconds (from /proc; 10 ms resolution). */
  maxCpuMs: number;
  /** Peak resident memory of a child process (bytes, from /proc VmHWM). */
  peakRss: number;
  /** Peak resident memory of the child once loaded, before the first case (bytes). */
  baselineRss: number;
  /** The case that raised a child's peak resident memory the most, and by how much (bytes). */
  maxGrowth: { case: number; bytes: number; kind?: string };
  /** Child processes started. */
  children: number;
  /** The cases that are not `accepted` or `error`, and the first few of each error kind. */
  findings: CaseResult[];
  /** Cases per mutation kind. */
  kinds: Record<string, number>;
  /** Time spent in the target's cases (the sum of their wall-clock times). */
  seconds: number;
}

/** Limits of a run. */
export interface FuzzLimits {
  /** CPU-time bound of one case (ms): a parser that loops burns CPU. */
  caseCpuMs: number;
  /** Wall-clock bound of one case (ms): a reader that waits forever burns none (generous: the machine may be shared). */
  caseTimeoutMs: number;
  /** Resident memory cap of the child (MiB). */
  rssCapMb: number;
  /** JavaScript heap limit of the child (MiB, --max-old-space-size). */
  heapMb: number;
}

/** The limits the reliability figures are stated under. */
export const DEFAULT_FUZZ_LIMITS: FuzzLimits = { caseCpuMs: 10_000, caseTimeoutMs: 120_000, rssCapMb: 1536, heapMb: 512 };

/** Writes the seeds of every target (or those named) under `dir`, with one index file per target. */
export async function makeSeeds(dir: string, targets: readonly string[] = FUZZ_TARGETS.map((t) => t.name)): Promise<void> {
  for (const name of targets) {
    const t = fuzzTarget(name);
    const out = join(dir, name);
    mkdirSync(out, { recursive: true });
    const bundles = await t.makeSeeds(out);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(bundles));
  }
}

/** CPU time (user + system) of process `pid` in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

function readStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** A report with no cases yet. */
function emptyReport(target: string, seed: number): FuzzReport {
  return {
    target,
    reader: fuzzTarget(target).reader,
    seed,
    cases: 0,
    counts: { accepted: 0, error: 0, foreign: 0, crash: 0, hang: 0, memory: 0 },
    leakedCases: 0,
    maxMs: 0,
    maxCpuMs: 0,
    peakRss: 0,
    baselineRss: 0,
    maxGrowth: { case: -1, bytes: 0 },
    children: 0,
    findings: [],
    kinds: {},
    seconds: 0,
  };
}

/**
 * Runs `count` cases of each target of `plan` (cases `from` to `from + count - 1`) on the seeds
 * in `seedsDir`, in one child process at a time (restarted after a crash, a hang or a memory kill).
 * @param onCase called with every finished case (progress, logs).
 * @returns one report per target, in plan order.
 */
export async function runFuzz(
  plan: readonly { target: string; count: number; from?: number }[],
  opts: { seedsDir: string; workDir: string; seed: number; limits?: Partial<FuzzLimits>; onCase?: (r: CaseResult & { target: string }) => void },
): Promise<FuzzReport[]> {
  const limits = { ...DEFAULT_FUZZ_LIMITS, ...opts.limits };
  const reports = new Map(plan.map((p) => [p.target, emptyReport(p.target, opts.seed)] as const));
  const errorSamples = new Map<string, number>();
  const record = (target: string, r: CaseResult) => {
    const report = reports.get(target)!;
    report.cases++;
    report.counts[r.outcome]++;
    if (r.kind) report.kinds[r.kind] = (report.kinds[r.kind] ?? 0) + 1;
    if (r.ms !== undefined) report.maxMs = Math.max(report.maxMs, r.ms);
    report.seconds += (r.ms ?? 0) / 1000;
    if (r.leaked) report.leakedCases++;
    if ((r.peakGrowth ?? 0) > report.maxGrowth.bytes) report.maxGrowth = { case: r.case, bytes: r.peakGrowth!, kind: r.kind };
    const key = `${target}:${r.message?.slice(0, 40) ?? ''}`;
    const notable = r.outcome !== 'accepted' && r.outcome !== 'error';
    const firstOfError = r.outcome === 'error' && !errorSamples.has(key);
    if (r.outcome === 'error') errorSamples.set(key, (errorSamples.get(key) ?? 0) + 1);
    if (notable || r.leaked || (firstOfError && report.findings.length < 60)) report.findings.push(r);
    opts.onCase?.({ ...r, target });
  };
  // The queue of cases still to run, as [target, from, to) jobs.
  let queue = plan.map((p) => ({ target: p.target, from: p.from ?? 0, to: (p.from ?? 0) + p.count }));
  const advance = (target: string, nextCase: number) => {
    queue = queue.map((j) => (j.target === target ? { ...j, from: Math.max(j.from, nextCase) } : j)).filter((j) => j.from < j.to);
  };
  while (queue.length > 0) {
    for (const j of queue) reports.get(j.target)!.children++;
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${limits.heapMb}`, '--import', 'tsx', join(HERE, 'fuzz_child.ts'), JSON.stringify({ jobs: queue, seedsDir: opts.seedsDir, workDir: opts.workDir, seed: opts.seed })],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SASHA_BACKEND: 'cpu' } },
    );
    let current: { target: string; case: number } | null = null;
    let caseStart = 0;
    let caseCpu = 0;
    let caseHwm = 0;
    let baseline = 0;
    let progressed = false;
    let killedFor: Outcome | null = null;
    let stderr = '';
    let buf = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const msg = JSON.parse(line) as { ready?: boolean; begin?: number; target: string } & CaseResult;
        if (msg.ready) {
          baseline = readStatus(child.pid!)?.hwm ?? 0;
        } else if (msg.begin !== undefined) {
          current = { target: msg.target, case: msg.begin };
          caseStart = performance.now();
          caseCpu = cpuMs(child.pid!) ?? 0;
          caseHwm = readStatus(child.pid!)?.hwm ?? 0;
        } else if (msg.case !== undefined) {
          const report = reports.get(msg.target)!;
          report.maxCpuMs = Math.max(report.maxCpuMs, (cpuMs(child.pid!) ?? caseCpu) - caseCpu);
          const hwm = readStatus(child.pid!)?.hwm ?? caseHwm;
          report.peakRss = Math.max(report.peakRss, hwm);
          report.baselineRss = Math.max(report.baselineRss, baseline);
          const { target, ...rest } = msg;
          record(target, { ...rest, peakGrowth: hwm - caseHwm });
          current = null;
          progressed = true;
          advance(target, msg.case + 1);
        }
      }
    });
    const watch = setInterval(() => {
      if (child.pid === undefined || killedFor) return;
      const st = readStatus(child.pid);
      if (st && st.rss > limits.rssCapMb * 2 ** 20) {
        killedFor = 'memory';
        child.kill('SIGKILL');
      } else if (current !== null) {
        const cpu = (cpuMs(child.pid) ?? caseCpu) - caseCpu;
        if (cpu > limits.caseCpuMs || performance.now() - caseStart > limits.caseTimeoutMs) {
          killedFor = 'hang';
          child.kill('SIGKILL');
        }
      }
    }, 20);
    const { code, signal } = await exited;
    clearInterval(watch);
    const cur = current as { target: string; case: number } | null;
    if (cur !== null) {
      const outcome: Outcome = killedFor ?? 'crash';
      record(cur.target, { case: cur.case, outcome, message: outcome === 'crash' ? `exit ${code ?? signal}: ${stderr.trim().split('\n').slice(-6).join('\n')}` : undefined });
      advance(cur.target, cur.case + 1);
    } else if (queue.length > 0 && code !== 0) {
      throw new Error(`the fuzz child ${progressed ? 'stopped between cases' : 'failed before its first case'} (exit ${code ?? signal}):\n${stderr}`);
    }
  }
  return plan.map((p) => reports.get(p.target)!);
}
