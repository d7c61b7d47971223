/**
 * Opening slides from disk: pyramidal TIFF and Aperio SVS files, read through geotiff with
 * JPEG tiles decoded by libjpeg-turbo (WebAssembly, or sharp when installed).
 *
 * @packageDocumentation
 */
import { open as openFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { fromFile } from 'geotiff';
import type sharpFn from 'sharp';
import { DataError } from '../core/errors.js';
import { TiffSlideSource, checkTiffSignature, type TiffSlideOptions, type TileDecoderFactory } from '../wsi/tiff_source.js';
import { loadWasmJpeg, rgbJpegDecoders, wasmJpegDecoders } from './jpeg_wasm.js';

/** Which JPEG decoder {@link openSlide} uses. */
export type JpegDecoderChoice = 'auto' | 'wasm' | 'sharp' | 'geotiff';

/** Options of {@link openSlide}. @category WSI */
export interface OpenSlideOptions extends Omit<TiffSlideOptions, 'byteLength' | 'decoder'> {
  /**
   * JPEG tile decoder: `'wasm'` (libjpeg-turbo in WebAssembly through its strict TurboJPEG
   * interface, synchronous in the calling thread: the fastest per tile, and a tile with damaged
   * data is an error), `'sharp'` (libjpeg-turbo in libvips's thread pool: asynchronous, so a
   * main-thread reader overlaps a synchronous encoder, but libvips decodes some damaged tiles
   * to wrong pixels without an error: use it for files you trust), `'geotiff'` (pure
   * JavaScript, slowest), or `'auto'` (the default: wasm, else sharp when the wasm codec is
   * missing). With the default, `sasha tile`, `sasha extract` and `sasha infer` read a slide
   * the same way on either thread.
   */
  jpegDecoder?: JpegDecoderChoice;
  /**
   * At most this many tiles are handed to sharp at once (default: no limit; libuv's thread
   * pool, 4 threads unless `UV_THREADPOOL_SIZE` says otherwise, bounds the decodes that run).
   * A limit is enforced on the main thread, so while a synchronous encoder runs, finished
   * decodes cannot start new ones: keep the default when extracting.
   */
  decodeConcurrency?: number;
}

/** The slide id of a file: its name without directory and extension (`/data/tumor_001.tif` -> `tumor_001`). */
export function slideIdFromPath(path: string): string {
  const b = basename(path);
  const e = extname(b);
  return e ? b.slice(0, -e.length) : b;
}

export type SharpModule = typeof sharpFn;
let sharpPromise: Promise<SharpModule | null> | undefined;

/** Loads sharp once (an optional peer); null when it is not installed. */
export function loadSharp(): Promise<SharpModule | null> {
  // A variable specifier keeps bundlers from resolving the optional peer at build time.
  const spec = 'sharp';
  sharpPromise ??= import(spec).then(
    (m: { default?: SharpModule }) => (m.default ?? (m as unknown as SharpModule)) as SharpModule,
    () => null,
  );
  return sharpPromise;
}

/**
 * A {@link TileDecoderFactory} that decodes JPEG tiles with sharp (libjpeg-turbo in libvips's
 * thread pool, off the calling thread). Tiles are completed into full JPEG streams by
 * {@link jpegTileStream}. Other codecs fall back to geotiff.
 * @param sharp the sharp module ({@link loadSharp}).
 * @param concurrency at most this many decodes handed to sharp at once.
 * @category WSI
 */
export function sharpJpegDecoders(sharp: SharpModule, concurrency = Infinity): TileDecoderFactory {
  const limit = semaphore(concurrency);
  return rgbJpegDecoders(async (full) => {
    const { data, info } = await limit(() => sharp(full).raw().toBuffer({ resolveWithObject: true }));
    if (info.channels !== 3) throw new Error(`expected 3 channels from the JPEG decoder, got ${info.channels}`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  });
}

/** Runs at most `n` of the given tasks at once (FIFO). */
function semaphore(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Opens a pyramidal TIFF or Aperio SVS file.
 *
 * The file's size is checked against its tile table (a truncated copy fails at once), its first
 * bytes against the TIFF signature (another format fails with the vips command that converts
 * it), and JPEG tiles are decoded with sharp when it is installed.
 *
 * @param path the slide file.
 * @returns a {@link TiffSlideSource}; call `close()` when done.
 * @throws DataError naming the file when it is missing, not a TIFF, truncated or unsupported.
 * @example
 * ```ts
 * const slide = await openSlide('data/tumor_001.tif');
 * slide.levels.length;  // 9
 * slide.mpp;            // 0.243
 * await slide.close();
 * ```
 * @category WSI
 */
export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<TiffSlideSource> {
  const name = options.name ?? basename(path);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    throw new DataError(`Slide file '${path}' does not exist or is not a file.`);
  }
  const head = new Uint8Array(132);
  const fh = await openFile(path, 'r');
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  checkTiffSignature(head, name);
  const choice = options.jpegDecoder ?? 'auto';
  let decoder: TileDecoderFactory | undefined;
  const wasm = async () => {
    const codec = await loadWasmJpeg();
    if (!codec && choice === 'wasm') {
      throw new DataError("jpegDecoder 'wasm' was asked for, but @cornerstonejs/codec-libjpeg-turbo-8bit is not installed: npm install @cornerstonejs/codec-libjpeg-turbo-8bit.");
    }
    return codec ? wasmJpegDecoders(codec) : undefined;
  };
  // auto: the strict wasm decoder on both threads, so that every command refuses the same damaged tiles
  if (choice === 'wasm' || choice === 'auto') decoder = await wasm();
  if (!decoder && (choice === 'sharp' || choice === 'auto')) {
    const sharp = await loadSharp();
    if (sharp) decoder = sharpJpegDecoders(sharp, options.decodeConcurrency ?? Infinity);
    else if (choice === 'sharp') throw new DataError("jpegDecoder 'sharp' was asked for, but sharp is not installed: npm install sharp.");
  }
  let tiff;
  try {
    tiff = await fromFile(path);
  } catch (e) {
    throw new DataError(`Slide '${name}' is not a readable TIFF: ${(e as Error).message}. The file may be truncated or corrupt.`);
  }
  const { jpegDecoder: _decoder, decodeConcurrency: _concurrency, ...rest } = options;
  return TiffSlideSource.open(tiff, { ...rest, name, byteLength: size, decoder });
}
