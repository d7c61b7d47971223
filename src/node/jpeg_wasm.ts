/**
 * JPEG tiles decoded by libjpeg-turbo compiled to WebAssembly
 * (`@cornerstonejs/codec-libjpeg-turbo-8bit`): synchronous, in the calling thread, with no
 * per-call thread hand-off. In a worker thread ({@link openSlideInWorker}) it decodes a 256 x 256
 * tile about three times faster than sharp's asynchronous pipeline, and leaves the other cores
 * to the encoder.
 *
 * @packageDocumentation
 */
import type { TileDecoder, TileDecoderFactory, TiffTileInfo } from '../wsi/tiff_source.js';

/** The decoder class of the libjpeg-turbo wasm module (one stream at a time). @category WSI */
export interface WasmJpegDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; componentCount: number; bitsPerSample: number };
}
/** The instantiated libjpeg-turbo wasm module. @category WSI */
export interface WasmJpegCodec {
  JPEGDecoder: new () => WasmJpegDecoder;
}

let codecPromise: Promise<WasmJpegCodec | null> | undefined;

/**
 * Loads the libjpeg-turbo wasm module once per thread; null when the package is missing.
 * @returns the codec, shared by every slide opened in this thread.
 * @category WSI
 */
export function loadWasmJpeg(): Promise<WasmJpegCodec | null> {
  codecPromise ??= (async () => {
    try {
      // A variable specifier keeps bundlers from inlining the module (it loads its .wasm itself).
      const spec = '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs';
      const m = (await import(spec)) as { default?: () => Promise<WasmJpegCodec> };
      const factory = (m.default ?? m) as () => Promise<WasmJpegCodec>;
      return await factory();
    } catch {
      return null;
    }
  })();
  return codecPromise;
}

/** APP14 "Adobe" marker with transform 0: tells libjpeg the components are RGB, not YCbCr. */
const ADOBE_RGB = Uint8Array.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

/**
 * Whether a level's tiles are 8-bit 3-channel JPEG that {@link jpegTileStream} can complete.
 * @category WSI
 */
export function isRgbJpegLevel(info: TiffTileInfo): boolean {
  return info.compression === 7 && info.samplesPerPixel === 3 && (info.photometric === 2 || info.photometric === 6);
}

/**
 * A function that turns one stored tile of the level into a complete JPEG stream. A TIFF JPEG
 * tile is an abbreviated stream whose tables live in the `JPEGTables` tag: the result is
 * `SOI + tables + (Adobe RGB marker) + tile without its SOI`. For `PhotometricInterpretation`
 * RGB (Aperio, libvips) the Adobe marker declares the components as RGB so that no YCbCr
 * conversion is applied (a marker in the tile itself, written after ours, takes precedence).
 * @param info the level's tile layout; must satisfy {@link isRgbJpegLevel}.
 * @returns a function of the tile bytes; it throws when the tile is not a JPEG stream.
 * @category WSI
 */
export function jpegTileStream(info: TiffTileInfo): (tile: Uint8Array) => Uint8Array {
  const tables = info.jpegTables && info.jpegTables.length > 4 ? info.jpegTables : undefined;
  const head = tables ? tables.subarray(0, tables.length - 2) : Uint8Array.from([0xff, 0xd8]);
  const marker = info.photometric === 2 ? ADOBE_RGB : new Uint8Array(0);
  return (tile: Uint8Array) => {
    if (tile[0] !== 0xff || tile[1] !== 0xd8) throw new Error('tile is not a JPEG stream');
    const out = new Uint8Array(head.length + marker.length + tile.length - 2);
    out.set(head, 0);
    out.set(marker, head.length);
    out.set(tile.subarray(2), head.length + marker.length);
    return out;
  };
}

/**
 * The frame size a JPEG stream declares in its start-of-frame header, read without decoding.
 * @returns `{ width, height }`, or undefined when the stream has no frame header before its scan.
 * @example
 * ```ts
 * jpegFrameSize(stream); // { width: 256, height: 256 }
 * ```
 * @category WSI
 */
export function jpegFrameSize(stream: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 4 <= stream.length) {
    if (stream[i] !== 0xff) return undefined;
    const marker = stream[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame header
    const len = (stream[i + 2] << 8) | stream[i + 3];
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (sof) {
      if (i + 9 > stream.length) return undefined;
      return { height: (stream[i + 5] << 8) | stream[i + 6], width: (stream[i + 7] << 8) | stream[i + 8] };
    }
    if (len < 2) return undefined;
    i += 2 + len;
  }
  return undefined;
}

/**
 * Pads decoded rows of width `width` to the tile width (a JPEG frame narrower than the tile).
 * @returns `tileWidth * height * 3` bytes, a new array.
 */
export function padToTileWidth(data: Uint8Array, width: number, height: number, tileWidth: number): Uint8Array {
  const padded = new Uint8Array(tileWidth * height * 3);
  for (let y = 0; y < height; y++) padded.set(data.subarray(y * width * 3, (y + 1) * width * 3), y * tileWidth * 3);
  return padded;
}

/**
 * A {@link TileDecoderFactory} that decodes 8-bit RGB / YCbCr JPEG tiles with libjpeg-turbo in
 * WebAssembly, synchronously in the calling thread. Other codecs fall back to geotiff.
 * @param codec from {@link loadWasmJpeg}.
 * @returns the factory; each decode returns a new `tileWidth * rows * 3` array owned by the caller.
 * @example
 * ```ts
 * const codec = await loadWasmJpeg();
 * const slide = await TiffSlideSource.open(await fromFile(path), { decoder: wasmJpegDecoders(codec!) });
 * ```
 * @category WSI
 */
export function wasmJpegDecoders(codec: WasmJpegCodec): TileDecoderFactory {
  const decoder = new codec.JPEGDecoder();
  return rgbJpegDecoders(async (full) => {
    decoder.getEncodedBuffer(full.length).set(full);
    try {
      decoder.decode();
    } catch (e) {
      // libjpeg errors surface as C++ exceptions (a number); the decoder stays usable.
      throw new Error(e instanceof Error ? e.message : 'libjpeg-turbo could not decode the tile: corrupt or truncated JPEG data');
    }
    const frame = decoder.getFrameInfo();
    if (frame.componentCount !== 3 || frame.bitsPerSample !== 8) {
      throw new Error(`expected 8-bit RGB from the JPEG decoder, got ${frame.componentCount} components of ${frame.bitsPerSample} bits`);
    }
    // The decoded buffer is a view into wasm memory, reused by the next decode: copy it.
    return { rgb: decoder.getDecodedBuffer().slice(0, frame.width * frame.height * 3), width: frame.width, height: frame.height };
  });
}

/**
 * A {@link TileDecoderFactory} for 8-bit RGB / YCbCr JPEG levels (other codecs fall back to
 * geotiff) from a function that decodes one complete JPEG stream ({@link jpegTileStream}) to
 * interleaved RGB. Frames narrower than the tile are padded to the tile width.
 * @param decodeStream decodes a complete JPEG stream; its `rgb` is handed to the caller.
 * @returns the factory.
 * @category WSI
 */
export function rgbJpegDecoders(
  decodeStream: (stream: Uint8Array) => Promise<{ rgb: Uint8Array; width: number; height: number }>,
): TileDecoderFactory {
  return (info: TiffTileInfo): TileDecoder | undefined => {
    if (!isRgbJpegLevel(info)) return undefined;
    const stream = jpegTileStream(info);
    return {
      async decode(bytes: ArrayBuffer): Promise<Uint8Array> {
        const full = stream(new Uint8Array(bytes));
        // The frame must fit the tile: a damaged header could ask the decoder for gigapixels.
        const frame = jpegFrameSize(full);
        if (!frame) throw new Error('the JPEG tile has no frame header');
        if (frame.width < 1 || frame.height < 1 || frame.width > info.tileWidth || frame.height > info.tileHeight) {
          throw new Error(`the JPEG frame is ${frame.width} x ${frame.height} pixels, but the tiles are ${info.tileWidth} x ${info.tileHeight}`);
        }
        const { rgb, width, height } = await decodeStream(full);
        if (width !== frame.width || height !== frame.height || rgb.length !== width * height * 3) {
          throw new Error(`the JPEG decoder returned ${width} x ${height} pixels (${rgb.length} bytes) for a ${frame.width} x ${frame.height} frame`);
        }
        return width === info.tileWidth ? rgb : padToTileWidth(rgb, width, height, info.tileWidth);
      },
    };
  };
}
