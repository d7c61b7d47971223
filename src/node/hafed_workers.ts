/**
 * A pool of worker threads for HAFED stage 1: each worker runs one shard of a slide's patches
 * on its own tfjs backend (`hafedTrainStepSharded`, `predictHafedSharded`, and `trainHafed`'s
 * `workers` option use it). On the wasm backend, which runs one thread per process in Node,
 * this is how HAFED uses more than one core.
 *
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import { tf } from '../core/tf.js';
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../core/errors.js';
import type { BackendName } from '../core/backend.js';
import type { ShardForwardResult, ShardForwardTask, SubPatchWorkers } from '../hafed/sharded.js';
import type { HafedWorkerReply, HafedWorkerRequest } from './hafed_worker.js';
import { startWorker } from './worker_module.js';

const ERRORS: Record<string, new (m: string) => SashaError> = { DataError, ValueError, ShapeError, StateError };

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve(reply: HafedWorkerReply): void;
  reject(e: Error): void;
}

/** One worker and its outstanding requests. */
class ShardWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(readonly worker: Worker) {
    worker.on('message', (msg: HafedWorkerReply) => {
      if (msg.type === 'ready') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      this.refIfBusy();
      if (msg.type === 'error') p.reject(new (ERRORS[msg.name] ?? Error)(msg.message));
      else p.resolve(msg);
    });
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => this.failAll(new StateError('A HAFED worker thread stopped.')));
    this.refIfBusy();
  }

  request(msg: DistributiveOmit<HafedWorkerRequest, 'id'>, transfer: ArrayBuffer[]): Promise<HafedWorkerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.refIfBusy();
      this.worker.postMessage({ ...msg, id } as HafedWorkerRequest, transfer);
    });
  }

  /** Idle workers do not keep the process alive. */
  private refIfBusy(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/**
 * Worker threads that run shards of HAFED stage 1 ({@link SubPatchWorkers}); create with
 * {@link createHafedWorkerPool}, release with {@link HafedWorkerPool.close}.
 * @category HAFED
 */
export class HafedWorkerPool implements SubPatchWorkers {
  private readonly workers: ShardWorker[];
  private closed = false;

  private constructor(workers: ShardWorker[]) {
    this.workers = workers;
  }

  /** Number of worker threads (the calling thread runs one more shard). */
  get size(): number {
    return this.workers.length;
  }

  /** @internal */
  static async start(size: number, backend: BackendName[]): Promise<HafedWorkerPool> {
    const threads = Array.from({ length: size }, () => startWorker('hafed_worker', { sashaHafedWorker: true, backend }));
    try {
      await Promise.all(
        threads.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              const onMessage = (msg: HafedWorkerReply) => {
                if (msg.type === 'ready') {
                  w.off('message', onMessage);
                  resolve();
                }
              };
              w.on('message', onMessage);
              w.once('error', reject);
              w.once('exit', (code) => reject(new StateError(`A HAFED worker thread stopped while starting (exit code ${code}).`)));
            }),
        ),
      );
    } catch (e) {
      await Promise.all(threads.map((w) => w.terminate()));
      throw e;
    }
    return new HafedWorkerPool(threads.map((w) => new ShardWorker(w)));
  }

  async forward(shard: number, task: ShardForwardTask): Promise<ShardForwardResult> {
    const reply = await this.worker(shard).request({ type: 'forward', task }, [task.u.buffer as ArrayBuffer]);
    if (reply.type !== 'forward') throw new StateError(`Expected a forward reply from worker ${shard}, but got '${reply.type}'.`);
    return { features: reply.features, attention: reply.attention };
  }

  async backward(shard: number, dFeatures: Float32Array, dAttention: Float32Array): Promise<Float32Array[]> {
    const reply = await this.worker(shard).request({ type: 'backward', dFeatures, dAttention }, [dFeatures.buffer as ArrayBuffer, dAttention.buffer as ArrayBuffer]);
    if (reply.type !== 'backward') throw new StateError(`Expected a backward reply from worker ${shard}, but got '${reply.type}'.`);
    return reply.grads;
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private worker(shard: number): ShardWorker {
    if (this.closed) throw new StateError('This HafedWorkerPool was closed; create a new one.');
    const w = this.workers[shard];
    if (!w) throw new ValueError(`Expected a shard index in [0, ${this.workers.length}), but got ${shard}.`);
    return w;
  }
}

/**
 * Starts `size` worker threads for HAFED stage 1, each with its own tfjs backend (by default
 * the one this thread uses, if it is `wasm` or `cpu`). Pass the pool to `trainHafed`
 * (`workers`), `hafedTrainStepSharded` or `predictHafedSharded`: a slide's patches are then
 * split over this thread and the workers. On 2 cores, `size` 1 uses both.
 *
 * @example
 * ```ts
 * const pool = await createHafedWorkerPool(1);
 * const { model } = await trainHafed({ train, val, workers: pool });
 * await pool.close();
 * ```
 * @category HAFED
 */
export async function createHafedWorkerPool(size: number, options: { backend?: BackendName | BackendName[] } = {}): Promise<HafedWorkerPool> {
  if (!(Number.isInteger(size) && size >= 1)) throw new ValueError(`Expected the number of HAFED workers to be an integer >= 1, but got ${size}.`);
  const current = tf.getBackend();
  const backend = options.backend ?? (current === 'cpu' ? 'cpu' : 'wasm');
  return HafedWorkerPool.start(size, Array.isArray(backend) ? backend : [backend]);
}
