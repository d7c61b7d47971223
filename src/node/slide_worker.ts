/**
 * Worker-thread side of {@link openSlideInWorker}: opens a slide with {@link openSlide} and
 * serves `readRegion` requests, so that tile reads, JPEG decodes and copies run beside the
 * encoder instead of on its thread.
 *
 * The module starts serving when it is loaded as a worker with `workerData.sashaSlideWorker`;
 * imported anywhere else it does nothing.
 *
 * @packageDocumentation
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { TiffSlideSource } from '../wsi/tiff_source.js';
import { openSlide, type OpenSlideOptions } from './open_slide.js';

/** Messages from the main thread. */
export type SlideWorkerRequest =
  | { type: 'open'; path: string; options: OpenSlideOptions }
  | { type: 'read'; id: number; level: number; x: number; y: number; width: number; height: number }
  | { type: 'close' };

/** Messages to the main thread. */
export type SlideWorkerReply =
  | {
      type: 'opened';
      name: string;
      levels: { width: number; height: number; downsample: number }[];
      mpp?: number;
      magnification?: number;
      description?: string;
      warnings: string[];
    }
  | { type: 'data'; id: number; data: Uint8Array }
  | { type: 'error'; id: number; name: string; message: string }
  | { type: 'closed' };

/** Serves one slide on `port` until it is closed. */
export function serveSlide(port: NonNullable<typeof parentPort>): void {
  let slide: TiffSlideSource | undefined;
  const fail = (id: number, e: unknown) =>
    port.postMessage({ type: 'error', id, name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) } satisfies SlideWorkerReply);
  port.on('message', (msg: SlideWorkerRequest) => {
    if (msg.type === 'open') {
      openSlide(msg.path, msg.options).then(
        (s) => {
          slide = s;
          port.postMessage({
            type: 'opened',
            name: s.name,
            levels: s.levels.map((l) => ({ ...l })),
            mpp: s.mpp,
            magnification: s.magnification,
            description: s.description,
            warnings: [...s.warnings],
          } satisfies SlideWorkerReply);
        },
        (e) => fail(-1, e),
      );
    } else if (msg.type === 'read') {
      if (!slide) {
        fail(msg.id, new Error('the slide is not open'));
        return;
      }
      slide.readRegion(msg.level, msg.x, msg.y, msg.width, msg.height).then(
        (data) => port.postMessage({ type: 'data', id: msg.id, data } satisfies SlideWorkerReply, [data.buffer as ArrayBuffer]),
        (e) => fail(msg.id, e),
      );
    } else if (msg.type === 'close') {
      Promise.resolve(slide?.close())
        .catch(() => undefined)
        .then(() => {
          port.postMessage({ type: 'closed' } satisfies SlideWorkerReply);
          port.close();
        });
    }
  });
}

if (!isMainThread && parentPort && (workerData as { sashaSlideWorker?: boolean } | null)?.sashaSlideWorker) serveSlide(parentPort);
