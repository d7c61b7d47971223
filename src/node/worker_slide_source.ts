/**
 * A slide read in a worker thread. In Node, a wasm or cpu encoder runs synchronously on the
 * main thread; reading there (file reads, geotiff, decode callbacks, copies) would wait until
 * each batch is encoded. Reading in a worker lets it proceed while the encoder works, so that
 * extraction time approaches the encoder's time alone.
 *
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import { WorkerRequests, startWorker, workerModule } from './worker_module.js';
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../core/errors.js';
import { checkLevel, checkRegion, type SlideLevel, type SlideSource } from '../wsi/slide_source.js';
import type { OpenSlideOptions } from './open_slide.js';
import type { SlideWorkerReply, SlideWorkerRequest } from './slide_worker.js';

const ERRORS: Record<string, new (m: string) => SashaError> = { DataError, ValueError, ShapeError, StateError };

/**
 * Whether {@link openSlideInWorker} can start its worker (the worker module ships next to this
 * one; a bundle that left it out cannot).
 * @category WSI
 */
export function canReadInWorker(): boolean {
  try {
    workerModule('slide_worker');
    return true;
  } catch {
    return false;
  }
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
  private readonly requests: WorkerRequests<Uint8Array>;
  private closed = false;

  private constructor(worker: Worker, info: Extract<SlideWorkerReply, { type: 'opened' }>) {
    this.worker = worker;
    this.name = info.name;
    this.levels = info.levels.map((l) => Object.freeze({ ...l }));
    this.mpp = info.mpp;
    this.magnification = info.magnification;
    this.description = info.description;
    this.warnings = Object.freeze([...(info.warnings ?? [])]);
    // Keeps the process alive only while reads are pending.
    this.requests = new WorkerRequests(worker, () => new StateError(`The reader of slide '${this.name}' stopped.`));
    worker.on('message', (msg: SlideWorkerReply) => {
      if (msg.type === 'data') this.requests.settle(msg.id, { value: msg.data });
      else if (msg.type === 'error') this.requests.settle(msg.id, { error: toError(msg) });
    });
  }

  /** Starts a worker and opens the slide in it (see {@link openSlideInWorker}). */
  static async open(path: string, options: OpenSlideOptions = {}): Promise<WorkerSlideSource> {
    const worker = startWorker('slide_worker', { sashaSlideWorker: true });
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
    return this.requests.start((id) => this.worker.postMessage({ type: 'read', id, level, x, y, width, height } satisfies SlideWorkerRequest));
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
