/**
 * A slide read in a worker thread. In Node, a wasm or cpu encoder runs synchronously on the
 * main thread; reading there (file reads, geotiff, decode callbacks, copies) would wait until
 * each batch is encoded. Reading in a worker lets it proceed while the encoder works, so that
 * extraction time approaches the encoder's time alone.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../core/errors.js';
import { checkLevel, checkRegion, type SlideLevel, type SlideSource } from '../wsi/slide_source.js';
import type { OpenSlideOptions } from './open_slide.js';
import type { SlideWorkerReply, SlideWorkerRequest } from './slide_worker.js';

const ERRORS: Record<string, new (m: string) => SashaError> = { DataError, ValueError, ShapeError, StateError };

/**
 * The directory of this module, in CommonJS (`__dirname`) and in ES modules (from the first
 * frame of a stack trace: `import.meta` would be a syntax error in the CommonJS build).
 */
function moduleDir(): string {
  if (typeof __dirname === 'string') return __dirname;
  // The first frame is this function: "at moduleDir (file:///x/y.js:1:2)" or "at /x/y.ts:1:2".
  const frame = (new Error().stack ?? '').split('\n').find((l) => /^\s*at /.test(l)) ?? '';
  const m = /((?:file:\/\/)?(?:[A-Za-z]:)?[/\\][^\s()]*?):\d+:\d+\)?\s*$/.exec(frame);
  if (!m) throw new StateError(`Cannot locate the slide worker module from the stack frame '${frame.trim()}'.`);
  return dirname(m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1]);
}

/**
 * Whether {@link openSlideInWorker} can start its worker (the worker module ships next to this
 * one; a bundle that left it out cannot).
 * @category WSI
 */
export function canReadInWorker(): boolean {
  try {
    workerScript();
    return true;
  } catch {
    return false;
  }
}

/** Finds the worker module next to this one (source, built ESM or CommonJS, split chunks). */
function workerScript(): { file: string; ts: boolean } {
  const here = moduleDir();
  const candidates = [
    'slide_worker.js',
    'slide_worker.cjs',
    'slide_worker.ts',
    join('node', 'slide_worker.js'),
    join('node', 'slide_worker.cjs'),
  ].map((f) => join(here, f));
  const esm = typeof __dirname !== 'string';
  const ordered = esm ? candidates : [candidates[1], candidates[0], ...candidates.slice(2)];
  const file = ordered.find((f) => existsSync(f));
  if (!file) throw new StateError(`Cannot find the slide worker module next to '${here}'; use openSlide instead of openSlideInWorker.`);
  return { file, ts: file.endsWith('.ts') };
}

/**
 * A {@link SlideSource} whose reads run in a worker thread (see {@link openSlideInWorker}).
 * @category WSI
 */
export class WorkerSlideSource implements SlideSource {
  readonly name: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp?: number;
  readonly magnification?: number;
  readonly description?: string;
  readonly warnings: readonly string[];
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(d: Uint8Array): void; reject(e: Error): void }>();
  private nextId = 0;
  private closed = false;

  private constructor(worker: Worker, info: Extract<SlideWorkerReply, { type: 'opened' }>) {
    this.worker = worker;
    this.name = info.name;
    this.levels = info.levels.map((l) => Object.freeze({ ...l }));
    this.mpp = info.mpp;
    this.magnification = info.magnification;
    this.description = info.description;
    this.warnings = Object.freeze([...(info.warnings ?? [])]);
    worker.on('message', (msg: SlideWorkerReply) => {
      if (msg.type === 'data') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.resolve(msg.data);
      } else if (msg.type === 'error') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.reject(toError(msg));
      }
      this.refIfBusy();
    });
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => this.failAll(new StateError(`The reader of slide '${this.name}' stopped.`)));
    this.refIfBusy();
  }

  /** Starts a worker and opens the slide in it (see {@link openSlideInWorker}). */
  static async open(path: string, options: OpenSlideOptions = {}): Promise<WorkerSlideSource> {
    const { file, ts } = workerScript();
    // TypeScript sources (tests, tsx) are loaded through tsx's loader, registered in the worker.
    const worker = ts
      ? new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`, {
          eval: true,
          workerData: { sashaSlideWorker: true },
        })
      : new Worker(file, { workerData: { sashaSlideWorker: true } });
    try {
      let onMessage: (msg: SlideWorkerReply) => void = () => {};
      let onError: (e: Error) => void = () => {};
      let onExit: (code: number) => void = () => {};
      const info = await new Promise<Extract<SlideWorkerReply, { type: 'opened' }>>((resolve, reject) => {
        onMessage = (msg) => {
          if (msg.type === 'opened') resolve(msg);
          else if (msg.type === 'error') reject(toError(msg));
        };
        onError = reject;
        onExit = (code) => reject(new StateError(`The slide reader stopped (exit code ${code}) while opening '${path}'.`));
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        worker.postMessage({ type: 'open', path, options } satisfies SlideWorkerRequest);
      }).finally(() => {
        // Only our listeners: the worker keeps internal ones that start its message port.
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      });
      return new WorkerSlideSource(worker, info);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new DataError(`Slide '${this.name}' is closed.`));
    try {
      checkLevel(this, level);
      checkRegion(width, height);
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.refIfBusy();
      this.worker.postMessage({ type: 'read', id, level, x, y, width, height } satisfies SlideWorkerRequest);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage({ type: 'close' } satisfies SlideWorkerRequest);
    });
    await this.worker.terminate();
  }

  /** Keeps the process alive only while reads are pending. */
  private refIfBusy(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

function toError(msg: { name: string; message: string }): Error {
  const E = ERRORS[msg.name];
  return E ? new E(msg.message) : new DataError(msg.message);
}

/**
 * Opens a slide like {@link openSlide}, in a worker thread: reads run there, beside an encoder
 * that keeps the main thread busy. Close it when done (it also stops the worker).
 *
 * @example
 * ```ts
 * const slide = await openSlideInWorker('data/tumor_001.tif');
 * const f = await extractFeatures(slide, plan, encoder);   // reading overlaps encoding
 * await slide.close();
 * ```
 * @category WSI
 */
export function openSlideInWorker(path: string, options: OpenSlideOptions = {}): Promise<WorkerSlideSource> {
  return WorkerSlideSource.open(path, options);
}
