/**
 * Starting the library's own worker-thread modules: found next to the calling module (source,
 * built ESM or CommonJS, split chunks), TypeScript sources loaded through tsx's loader.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StateError } from '../core/errors.js';

/**
 * The directory of this module, in CommonJS (`__dirname`) and in ES modules (from the first
 * frame of a stack trace: `import.meta` would be a syntax error in the CommonJS build).
 */
function moduleDir(): string {
  if (typeof __dirname === 'string') return __dirname;
  // The first frame is this function: "at moduleDir (file:///x/y.js:1:2)" or "at /x/y.ts:1:2".
  const frame = (new Error().stack ?? '').split('\n').find((l) => /^\s*at /.test(l)) ?? '';
  const m = /((?:file:\/\/)?(?:[A-Za-z]:)?[/\\][^\s()]*?):\d+:\d+\)?\s*$/.exec(frame);
  if (!m) throw new StateError(`Cannot locate the worker modules from the stack frame '${frame.trim()}'.`);
  return dirname(m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1]);
}

/**
 * Finds the worker module `name` (without extension) next to this one.
 * @throws StateError when a bundle left it out.
 */
export function workerModule(name: string): { file: string; ts: boolean } {
  const here = moduleDir();
  const candidates = [`${name}.js`, `${name}.cjs`, `${name}.ts`, join('node', `${name}.js`), join('node', `${name}.cjs`)].map((f) => join(here, f));
  const esm = typeof __dirname !== 'string';
  const ordered = esm ? candidates : [candidates[1], candidates[0], ...candidates.slice(2)];
  const file = ordered.find((f) => existsSync(f));
  if (!file) throw new StateError(`Cannot find the worker module '${name}' next to '${here}'.`);
  return { file, ts: file.endsWith('.ts') };
}

/** Starts the worker module `name` with `workerData` (TypeScript sources through tsx's loader). */
export function startWorker(name: string, workerData: unknown): Worker {
  const { file, ts } = workerModule(name);
  return ts
    ? new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`, {
        eval: true,
        workerData,
      })
    : new Worker(file, { workerData });
}
