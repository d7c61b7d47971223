/**
 * Slides read on the other side of a message port: in a browser, a Web Worker opens the slide
 * (a `File` the user picked, a URL, or bytes) and decodes its tiles, while the page's thread
 * runs the encoder and stays responsive. Browser-safe; works over any object with
 * `postMessage` and `addEventListener('message')`: a `Worker`, the worker's global scope, a
 * `MessagePort` (also Node's).
 *
 * Page side: {@link openSlideOverPort} (or {@link PortSlideSource.open}); worker side:
 * {@link serveSlides}. A worker module is two lines:
 * ```ts
 * import { serveSlides } from 'sasha-wsi';
 * serveSlides(self);
 * ```
 *
 * @packageDocumentation
 */
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../core/errors.js';
import { checkLevel, checkRegion, type SlideLevel, type SlideSource } from './slide_source.js';
import { TiffSlideSource, type TiffSlideOptions } from './tiff_source.js';

/**
 * The part of `Worker`, `MessagePort` and a worker's global scope that slide ports use.
 * @category WSI
 */
export interface SlidePort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** `'message'` events carry the replies; a `Worker` also sends `'error'` when its script fails. */
  addEventListener(type: string, listener: (event: Event) => void): void;
  removeEventListener(type: string, listener: (event: Event) => void): void;
}

/** What can be opened over a port: a `Blob` / `File`, the bytes of a file, or a URL. @category WSI */
export type SlidePortInput = Blob | ArrayBuffer | string;

/** Options of a slide opened over a port (those of {@link TiffSlideOptions} that can be sent). @category WSI */
export type PortSlideOptions = Pick<TiffSlideOptions, 'name' | 'cacheBytes' | 'background'>;

/** Messages from the page to the worker. @category WSI */
export type SlidePortRequest =
  | { sashaSlide: 'open'; id: number; input: SlidePortInput; options: PortSlideOptions }
  | { sashaSlide: 'read'; id: number; slide: number; level: number; x: number; y: number; width: number; height: number }
  | { sashaSlide: 'close'; id: number; slide: number };

/** What the page learns of an opened slide. @category WSI */
export interface PortSlideInfo {
  name: string;
  levels: SlideLevel[];
  mpp?: number;
  magnification?: number;
  description?: string;
}

/** Messages from the worker to the page. @category WSI */
export type SlidePortReply =
  | { sashaSlide: 'opened'; id: number; slide: number; info: PortSlideInfo }
  | { sashaSlide: 'data'; id: number; data: Uint8Array }
  | { sashaSlide: 'closed'; id: number }
  | { sashaSlide: 'error'; id: number; name: string; message: string };

const ERRORS: Record<string, new (m: string) => SashaError> = { DataError, ValueError, ShapeError, StateError };

/** Rebuilds the library's error class from its name (plain `Error`s become DataErrors). */
function toError(msg: { name: string; message: string }): Error {
  const E = ERRORS[msg.name];
  return E ? new E(msg.message) : new DataError(msg.message);
}

function start(port: SlidePort): void {
  (port as { start?: () => void }).start?.();
}

/**
 * Serves slides on `port` (the worker side of {@link openSlideOverPort}): opens each slide asked
 * for with `open` (default: {@link TiffSlideSource.open}, pyramidal TIFF and SVS through
 * geotiff) and answers its region reads, transferring the pixel buffers. Errors are sent back
 * with their class name and message.
 * @param port the worker's global scope (`self`), or a `MessagePort`.
 * @param open opens one slide (e.g. with a custom tile decoder).
 * @returns a function that stops serving and closes the open slides.
 * @example
 * ```ts
 * // slide_worker.ts, loaded with new Worker(new URL('./slide_worker.ts', import.meta.url), { type: 'module' })
 * import { serveSlides } from 'sasha-wsi';
 * serveSlides(self);
 * ```
 * @category WSI
 */
export function serveSlides(
  port: SlidePort,
  open: (input: SlidePortInput, options: PortSlideOptions) => Promise<SlideSource> = (input, options) => TiffSlideSource.open(input, options),
): () => Promise<void> {
  const slides = new Map<number, SlideSource>();
  let nextSlide = 1;
  const reply = (msg: SlidePortReply, transfer?: Transferable[]) => port.postMessage(msg, transfer);
  const fail = (id: number, e: unknown) =>
    reply({ sashaSlide: 'error', id, name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) });
  const onMessage = (event: Event) => {
    const msg = (event as MessageEvent).data as SlidePortRequest;
    if (!msg || typeof msg !== 'object' || !('sashaSlide' in msg)) return;
    if (msg.sashaSlide === 'open') {
      open(msg.input, msg.options ?? {}).then(
        (s) => {
          const slide = nextSlide++;
          slides.set(slide, s);
          const info: PortSlideInfo = { name: s.name, levels: s.levels.map((l) => ({ ...l })), mpp: s.mpp, magnification: s.magnification };
          const description = (s as { description?: unknown }).description;
          if (typeof description === 'string') info.description = description;
          reply({ sashaSlide: 'opened', id: msg.id, slide, info });
        },
        (e) => fail(msg.id, e),
      );
    } else if (msg.sashaSlide === 'read') {
      const s = slides.get(msg.slide);
      if (!s) {
        fail(msg.id, new StateError('The slide is not open (closed, or opened on another port).'));
        return;
      }
      s.readRegion(msg.level, msg.x, msg.y, msg.width, msg.height).then(
        (data) => reply({ sashaSlide: 'data', id: msg.id, data }, [data.buffer as ArrayBuffer]),
        (e) => fail(msg.id, e),
      );
    } else if (msg.sashaSlide === 'close') {
      const s = slides.get(msg.slide);
      slides.delete(msg.slide);
      Promise.resolve(s?.close?.())
        .catch(() => undefined)
        .then(() => reply({ sashaSlide: 'closed', id: msg.id }));
    }
  };
  port.addEventListener('message', onMessage);
  start(port);
  return async () => {
    port.removeEventListener('message', onMessage);
    const open = [...slides.values()];
    slides.clear();
    await Promise.allSettled(open.map((s) => Promise.resolve(s.close?.())));
  };
}

/**
 * The requests of one port: ids, pending replies, one listener. Shared by every slide opened
 * on the port.
 */
class PortClient {
  private readonly pending = new Map<number, { resolve(m: SlidePortReply): void; reject(e: Error): void }>();
  private nextId = 1;
  private users = 0;
  private readonly onMessage = (event: Event) => {
    const msg = (event as MessageEvent).data as SlidePortReply;
    if (!msg || typeof msg !== 'object' || !('sashaSlide' in msg)) return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.sashaSlide === 'error') p.reject(toError(msg));
    else p.resolve(msg);
    if (this.pending.size === 0 && this.users === 0) this.detach();
  };
  private attached = false;

  constructor(readonly port: SlidePort) {}

  private attach(): void {
    if (this.attached) return;
    this.attached = true;
    this.port.addEventListener('message', this.onMessage);
    start(this.port);
  }

  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.port.removeEventListener('message', this.onMessage);
  }

  request(msg: Omit<SlidePortRequest, 'id'> & { sashaSlide: SlidePortRequest['sashaSlide'] }): Promise<SlidePortReply> {
    this.attach();
    const id = this.nextId++;
    return new Promise<SlidePortReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.port.postMessage({ ...msg, id });
      } catch (e) {
        this.pending.delete(id);
        reject(new DataError(`Cannot send the request to the slide reader: ${(e as Error).message}.`));
      }
    });
  }

  acquire(): void {
    this.users++;
    this.attach();
  }

  release(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0 && this.pending.size === 0) this.detach();
  }

  /** Fails every pending request (the worker died). */
  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

const clients = new WeakMap<SlidePort, PortClient>();

function clientOf(port: SlidePort): PortClient {
  let c = clients.get(port);
  if (!c) {
    c = new PortClient(port);
    clients.set(port, c);
    // A Worker whose script fails to load or throws reports it as an 'error' event (a
    // MessagePort never sends one).
    const client = c;
    port.addEventListener('error', (ev) => client.failAll(new StateError(`The slide reader stopped: ${(ev as ErrorEvent).message ?? 'the worker failed'}.`)));
  }
  return c;
}

/**
 * A {@link SlideSource} whose slide is opened and read on the other side of a port (a Web
 * Worker running {@link serveSlides}). Region reads are sent as messages and their pixels come
 * back as transferred buffers.
 * @category WSI
 */
export class PortSlideSource implements SlideSource {
  readonly name: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp?: number;
  readonly magnification?: number;
  readonly description?: string;
  private closed = false;

  private constructor(
    private readonly client: PortClient,
    private readonly slide: number,
    info: PortSlideInfo,
  ) {
    this.name = info.name;
    this.levels = info.levels.map((l) => Object.freeze({ ...l }));
    this.mpp = info.mpp;
    this.magnification = info.magnification;
    this.description = info.description;
    client.acquire();
  }

  /**
   * Opens a slide on the worker behind `port`.
   * @param input a `File` / `Blob`, the bytes of the file, or a URL the worker can fetch.
   * @param options the slide's name (default: the `File`'s name), tile cache budget, background.
   * @throws the worker's error, as its class (DataError for a file that is not a TIFF, ...).
   */
  static async open(port: SlidePort, input: SlidePortInput, options: PortSlideOptions = {}): Promise<PortSlideSource> {
    const client = clientOf(port);
    const name = options.name ?? (typeof input === 'string' ? input : ((input as { name?: string }).name ?? undefined));
    const reply = await client.request({ sashaSlide: 'open', input, options: { ...options, ...(name ? { name } : {}) } } as SlidePortRequest);
    if (reply.sashaSlide !== 'opened') throw new StateError(`The slide reader answered '${reply.sashaSlide}' to an open request.`);
    return new PortSlideSource(client, reply.slide, reply.info);
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    if (this.closed) throw new DataError(`Slide '${this.name}' is closed.`);
    checkLevel(this, level);
    checkRegion(width, height);
    const reply = await this.client.request({ sashaSlide: 'read', slide: this.slide, level, x, y, width, height } as SlidePortRequest);
    if (reply.sashaSlide !== 'data') throw new StateError(`The slide reader answered '${reply.sashaSlide}' to a read request.`);
    return reply.data;
  }

  /** Closes the slide on the worker (the worker itself keeps running). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.request({ sashaSlide: 'close', slide: this.slide } as SlidePortRequest);
    } finally {
      this.client.release();
    }
  }
}

/**
 * Opens a slide in a Web Worker (or over any port) that runs {@link serveSlides}: the worker
 * reads and decodes tiles while the page's thread encodes patches.
 * @param port the `Worker` (or a `MessagePort`).
 * @param input a `File` / `Blob`, the file's bytes, or a URL.
 * @returns the slide; `close()` it when done (the worker keeps running for the next slide).
 * @throws DataError naming the file when it is not a readable pyramidal TIFF or SVS.
 * @example
 * ```ts
 * const worker = new Worker(new URL('./slide_worker.ts', import.meta.url), { type: 'module' });
 * const slide = await openSlideOverPort(worker, fileInput.files![0]);
 * const res = await analyzeSlide(model, slide, { encoder });
 * await slide.close();
 * ```
 * @category WSI
 */
export function openSlideOverPort(port: SlidePort, input: SlidePortInput, options: PortSlideOptions = {}): Promise<PortSlideSource> {
  return PortSlideSource.open(port, input, options);
}
