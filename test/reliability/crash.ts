/**
 * Crash safety: a child process that writes (a model directory, training checkpoints, feature
 * files) is killed with SIGKILL at random points, many times. After every kill, whatever is on
 * disk must load correctly (the previous good file or the new complete one, never a mix or a
 * half-written file), and a resumed run must end with the same result as an uninterrupted one.
 *
 * The children run the built package (`dist/`, made by `npm test`'s pretest step).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/random.js';
import { tf } from '../../src/core/tf.js';
import { Hafed } from '../../src/hafed/index.js';
import { fileIO, readModelManifest } from '../../src/node/index.js';
import { openH5, readRaw } from '../../src/node/h5/h5file.js';
// @ts-expect-error a plain JavaScript module shared with the save loop
import { MODELS } from './save_loop_models.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const CLI = join(ROOT, 'dist', 'node', 'cli', 'main.js');

/** What one scenario found. */
export interface CrashReport {
  scenario: string;
  /** Kills injected. */
  kills: number;
  /** Kills after which there were files of the run on disk to check (the others hit the start-up). */
  killsWithFiles: number;
  /** Checks of the files on disk after the kills (one per file that exists). */
  checks: number;
  /** Files that did not load, or loaded as something neither old nor new. Target 0. */
  lost: number;
  /** Whether the resumed run ended with the same result as the uninterrupted one (null: not applicable). */
  resumedEqual: boolean | null;
  /** What went wrong, one line each. */
  problems: string[];
  seconds: number;
}

interface Killed {
  /** The child printed its ready line (or ran past its start-up) before the kill. */
  inWork: boolean;
  /** Lines the child printed. */
  lines: string[];
}

/** Starts `argv` with node and kills it with SIGKILL `delayMs` after `ready` (a line, or the start). */
function runAndKill(argv: string[], delayMs: number, readyLine?: string): Promise<Killed> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SASHA_BACKEND: 'cpu' } });
    const lines: string[] = [];
    let inWork = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      inWork = true;
      timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (readyLine && line === readyLine && !timer) arm();
      }
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    if (!readyLine) arm();
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL' || code === 0) resolve({ inWork, lines });
      else reject(new Error(`${argv.join(' ')} exited with ${code}: ${stderr}`));
    });
  });
}

/** Runs `argv` with node to the end; returns its wall-clock seconds. */
async function runToEnd(argv: string[]): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SASHA_BACKEND: 'cpu' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited with ${code}: ${stderr}`))));
  });
  return (performance.now() - t0) / 1000;
}

/** The logits of a model on a fixed bag, as a string (a fingerprint of its weights). */
function fingerprint(model: Hafed): string {
  return tf.tidy(() => {
    const u = tf.randomNormal([6, model.k, model.dim], 0, 1, 'float32', 7) as tf.Tensor3D;
    return Array.from(model.predict(u).logits.dataSync()).join(',');
  });
}

/**
 * Scenario "model directory": a child saves models A and B in turn into one folder (and
 * updates `sasha.json` after each save); it is killed at a random point `kills` times. After
 * each kill the folder must load as A or B exactly, and the manifest must parse.
 */
export async function crashModelDirectory(dir: string, kills: number, seed: number): Promise<CrashReport> {
  const t0 = performance.now();
  const report: CrashReport = { scenario: 'model directory', kills: 0, killsWithFiles: 0, checks: 0, lost: 0, resumedEqual: null, problems: [], seconds: 0 };
  const [a, b] = (MODELS as object[]).map((c) => new Hafed(c));
  const known = new Map([
    [fingerprint(a), 'A'],
    [fingerprint(b), 'B'],
  ]);
  await a.save(fileIO(join(dir, 'hafed')));
  a.dispose();
  b.dispose();
  const rng = new Rng(seed);
  // Time one save, to spread the kills over a few saves.
  const first = await runAndKill([join(HERE, 'save_loop.mjs'), dir], 1500, 'ready');
  const saves = Math.max(1, first.lines.filter((l) => l.startsWith('saved')).length);
  const perSave = 1500 / saves;
  for (let k = 0; k < kills; k++) {
    const killed = await runAndKill([join(HERE, 'save_loop.mjs'), dir], rng.next() * 3 * perSave, 'ready');
    report.kills++;
    if (killed.inWork) report.killsWithFiles++;
    report.checks += 2;
    try {
      const m = await Hafed.load(fileIO(join(dir, 'hafed')));
      const which = known.get(fingerprint(m));
      m.dispose();
      if (!which) {
        report.lost++;
        report.problems.push(`kill ${k}: the model loads as neither A nor B`);
      }
    } catch (e) {
      report.lost++;
      report.problems.push(`kill ${k}: the model does not load: ${(e as Error).message}`);
    }
    try {
      if (existsSync(join(dir, 'sasha.json'))) readModelManifest(dir);
    } catch (e) {
      report.lost++;
      report.problems.push(`kill ${k}: sasha.json does not load: ${(e as Error).message}`);
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Checks every saved model folder under `dir` (model.json present) loads as a HAFED. */
async function checkModelFolders(dir: string, report: CrashReport, k: number): Promise<void> {
  const folders: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    if (existsSync(join(d, 'model.json'))) folders.push(d);
    for (const f of readdirSync(d, { withFileTypes: true })) if (f.isDirectory()) walk(join(d, f.name));
  };
  walk(dir);
  for (const f of folders) {
    report.checks++;
    try {
      if (f.includes(`${sep}checkpoints${sep}`)) {
        // a training checkpoint: the artifacts and every weight must decode
        const artifacts = await fileIO(f).load();
        const tensors = tf.io.decodeWeights(tf.io.CompositeArrayBuffer.join(artifacts.weightData!), artifacts.weightSpecs!);
        Object.values(tensors).forEach((t) => t.dispose());
      } else (await Hafed.load(fileIO(f))).dispose();
    } catch (e) {
      report.lost++;
      report.problems.push(`kill ${k}: '${f}' does not load: ${(e as Error).message}`);
    }
  }
  if (existsSync(join(dir, 'sasha.json'))) {
    report.checks++;
    try {
      readModelManifest(dir);
    } catch (e) {
      report.lost++;
      report.problems.push(`kill ${k}: sasha.json does not load: ${(e as Error).message}`);
    }
  }
}

/**
 * Scenario "training checkpoints": `sasha train hafed --resume` is killed at random points
 * `kills` times, then run to its end. After each kill the checkpoints, the model and the
 * manifest that exist must load; the final model must equal the one of an uninterrupted run
 * (the same weights file, byte for byte).
 */
export async function crashTraining(files: { lrH5: string; hrH5: string; split: string }, work: string, kills: number, seed: number, epochs = 8): Promise<CrashReport> {
  const t0 = performance.now();
  const report: CrashReport = { scenario: 'training checkpoints (sasha train hafed --resume)', kills: 0, killsWithFiles: 0, checks: 0, lost: 0, resumedEqual: null, problems: [], seconds: 0 };
  const argv = (out: string) => [CLI, 'train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', String(epochs), '--seed', '3', '--resume', '--quiet'];
  const ref = join(work, 'reference');
  const full = await runToEnd(argv(ref));
  const out = join(work, 'killed');
  const rng = new Rng(seed);
  for (let k = 0; k < kills; k++) {
    // past the start-up (about the first fifth of a run), so that most kills land in the work
    await runAndKill(argv(out), (0.2 + 0.8 * rng.next()) * full * 1000);
    report.kills++;
    const before = report.checks;
    await checkModelFolders(out, report, k);
    if (report.checks > before) report.killsWithFiles++;
  }
  await runToEnd(argv(out));
  const weights = (d: string) => readFileSync(join(d, 'hafed', readdirSync(join(d, 'hafed')).find((f) => f.endsWith('.bin'))!));
  report.resumedEqual = Buffer.compare(weights(ref), weights(out)) === 0;
  if (!report.resumedEqual) report.problems.push('the resumed model differs from the uninterrupted one');
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Every dataset and numeric attribute of every slide group of an h5 feature file, as one string (slide order included). */
export async function h5Contents(path: string): Promise<string> {
  const f = await openH5(path);
  try {
    const out: Record<string, unknown> = {};
    for (const id of f.keys()) {
      const feat = await readRaw(f, `${id}/feat`);
      const coords = await readRaw(f, `${id}/coords`);
      const g = f.get(id) as unknown as { attrs: Record<string, { value: unknown }> };
      out[id] = [feat.type, feat.shape, Buffer.from(feat.bytes).toString('base64'), coords.shape, Buffer.from(coords.bytes).toString('base64'), Object.entries(g.attrs).map(([k, v]) => `${k}=${String(v.value)}`)];
    }
    return JSON.stringify(out);
  } finally {
    f.close();
  }
}

/**
 * Scenario "feature files": `sasha extract` is killed at random points `kills` times, then run
 * to its end. After each kill every per-slide part and every cohort file that exists must
 * open and read (every dataset and attribute); the final `lr.h5` and `hr.h5` must hold exactly what an uninterrupted run writes.
 */
export async function crashExtraction(slidesDir: string, work: string, kills: number, seed: number, flags: string[]): Promise<CrashReport> {
  const t0 = performance.now();
  const report: CrashReport = { scenario: 'feature files (sasha extract)', kills: 0, killsWithFiles: 0, checks: 0, lost: 0, resumedEqual: null, problems: [], seconds: 0 };
  const argv = (out: string) => [CLI, 'extract', slidesDir, '--out', out, ...flags, '--quiet'];
  const ref = join(work, 'reference');
  const full = await runToEnd(argv(ref));
  const out = join(work, 'killed');
  const rng = new Rng(seed);
  for (let k = 0; k < kills; k++) {
    // the first part is written about a third into a run of three slides
    await runAndKill(argv(out), (0.3 + 0.7 * rng.next()) * full * 1000);
    report.kills++;
    const before = report.checks;
    const files = ['lr.h5', 'hr.h5'].map((f) => join(out, f));
    for (const res of ['lr', 'hr']) {
      const d = join(out, 'parts', res);
      if (existsSync(d)) for (const f of readdirSync(d)) if (f.endsWith('.h5')) files.push(join(d, f));
    }
    for (const f of files) {
      if (!existsSync(f)) continue;
      report.checks++;
      try {
        await h5Contents(f);
      } catch (e) {
        report.lost++;
        report.problems.push(`kill ${k}: '${f}' does not read: ${(e as Error).message}`);
      }
    }
    if (report.checks > before) report.killsWithFiles++;
  }
  await runToEnd(argv(out));
  report.resumedEqual = true;
  for (const f of ['lr.h5', 'hr.h5']) {
    if ((await h5Contents(join(ref, f))) !== (await h5Contents(join(out, f)))) {
      report.resumedEqual = false;
      report.problems.push(`the resumed ${f} differs from the uninterrupted one`);
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
