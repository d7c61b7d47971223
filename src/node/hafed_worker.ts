/**
 * Worker-thread side of {@link createHafedWorkerPool}: runs the forward and backward passes of
 * one shard of HAFED stage 1 on its own tfjs backend.
 *
 * The module starts serving when it is loaded as a worker with `workerData.sashaHafedWorker`;
 * imported anywhere else it does nothing.
 *
 * @packageDocumentation
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendName } from '../core/backend.js';
import { SubPatchShard, type ShardForwardTask } from '../hafed/sharded.js';

/** Messages from the main thread. */
export type HafedWorkerRequest =
  | { type: 'forward'; id: number; task: ShardForwardTask }
  | { type: 'backward'; id: number; dFeatures: Float32Array; dAttention: Float32Array };

/** Messages to the main thread. */
export type HafedWorkerReply =
  | { type: 'ready'; backend: string }
  | { type: 'forward'; id: number; features: Float32Array; attention: Float32Array }
  | { type: 'backward'; id: number; grads: Float32Array[] }
  | { type: 'error'; id: number; name: string; message: string };

/** Serves shard passes on `port` until the worker is terminated. */
export async function serveHafedShard(port: NonNullable<typeof parentPort>, backend: BackendName[]): Promise<void> {
  const name = await initBackend(backend);
  const shard = new SubPatchShard();
  port.on('message', (msg: HafedWorkerRequest) => {
    try {
      if (msg.type === 'forward') {
        const r = shard.forward(msg.task);
        port.postMessage({ type: 'forward', id: msg.id, ...r } satisfies HafedWorkerReply, [r.features.buffer as ArrayBuffer, r.attention.buffer as ArrayBuffer]);
      } else {
        const grads = shard.backward(msg.dFeatures, msg.dAttention);
        port.postMessage({ type: 'backward', id: msg.id, grads } satisfies HafedWorkerReply, grads.map((g) => g.buffer as ArrayBuffer));
      }
    } catch (e) {
      port.postMessage({ type: 'error', id: msg.id, name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) } satisfies HafedWorkerReply);
    }
  });
  port.postMessage({ type: 'ready', backend: name } satisfies HafedWorkerReply);
}

const data = workerData as { sashaHafedWorker?: boolean; backend?: BackendName[] } | null;
if (!isMainThread && parentPort && data?.sashaHafedWorker) {
  void serveHafedShard(parentPort, data.backend ?? ['wasm', 'cpu']);
}
