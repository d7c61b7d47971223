/**
 * Pyramidal TIFF and Aperio SVS slides through `geotiff` (pure JavaScript: works in browsers
 * from an `ArrayBuffer`, a `Blob` or a URL, and in Node; `openSlide` in `sasha-wsi/node` opens a
 * file from disk with a faster native JPEG decoder).
 *
 * Only the tiles a region touches are read and decoded; decoded tiles stay in a bounded LRU
 * cache, so neighbouring patches and the sub-patches of one patch share their tiles.
 *
 * @packageDocumentation
 */
import { fromArrayBuffer, fromBlob, fromUrl, getDecoder, type GeoTIFF, type GeoTIFFImage, type Pool } from 'geotiff';
import { DataError, ValueError } from '../core/errors.js';
import {
  blitRgb,
  checkLevel,
  checkRegion,
  levelsFromSizes,
  toLevelCoord,
  type SlideLevel,
  type SlideSource,
} from './slide_source.js';
import { checkTiffStructure } from './tiff_structure.js';

/** TIFF compression codes this reader knows to be unsupported, with what to do. */
const UNSUPPORTED_COMPRESSION: Record<number, string> = {
  6: 'old-style JPEG',
  33003: 'Aperio JPEG 2000 (YCbCr)',
  33005: 'Aperio JPEG 2000 (RGB)',
  34712: 'JPEG 2000',
};

/** What a tile decoder needs to know about one pyramid level. @category WSI */
export interface TiffTileInfo {
  /** TIFF `Compression` code (1 none, 5 LZW, 7 JPEG, 8 deflate, ...). */
  compression: number;
  /** TIFF `PhotometricInterpretation` (1 grey, 2 RGB, 6 YCbCr). */
  photometric: number;
  /** TIFF `JPEGTables` (the shared quantisation and Huffman tables of JPEG tiles), if any. */
  jpegTables?: Uint8Array;
  /** Tile (or strip) width in pixels. */
  tileWidth: number;
  /** Tile height (or rows per strip) in pixels. */
  tileHeight: number;
  /** Samples per pixel (3 for RGB). */
  samplesPerPixel: number;
}

/**
 * Decodes the stored bytes of one tile to RGB.
 * `decode` returns `tileWidth * rows * 3` bytes (rows = tile height, or the rows of a strip).
 * @category WSI
 */
export interface TileDecoder {
  decode(bytes: ArrayBuffer): Promise<Uint8Array>;
}

/**
 * Chooses a {@link TileDecoder} for a level, or returns undefined to use geotiff's own
 * decoders (pure JavaScript). `openSlide` in `sasha-wsi/node` passes a libjpeg-turbo decoder
 * (WebAssembly, or sharp) for JPEG tiles.
 * @category WSI
 */
export type TileDecoderFactory = (info: TiffTileInfo) => TileDecoder | undefined;

/** Options of {@link TiffSlideSource.open}. @category WSI */
export interface TiffSlideOptions {
  /** Name used in messages (default: the URL, or `'slide.tif'`). */
  name?: string;
  /** Budget of the decoded-tile cache in bytes (default 64 MiB; 0 disables the cache). */
  cacheBytes?: number;
  /** Value of pixels outside the image and of missing tiles (default 255, white glass). */
  background?: number;
  /** Custom tile decoders (see {@link TileDecoderFactory}). */
  decoder?: TileDecoderFactory;
  /** A geotiff decoder `Pool` (web workers) used where no custom decoder applies. */
  pool?: Pool;
  /**
   * Size of the file in bytes. When given, opening checks that every tile lies inside the file,
   * so a truncated file fails at once with a clear message instead of decoding garbage.
   */
  byteLength?: number;
}

/** Default budget of the decoded-tile cache. */
export const DEFAULT_TILE_CACHE_BYTES = 64 * 2 ** 20;

/**
 * Bounds on what a TIFF may ask the reader to allocate: a level at most `maxSide` pixels on a
 * side, a tile (or strip) at most `maxTileSide` pixels on a side and `maxTileBytes` decoded.
 * Scanners write tiles of 240 to 1024 pixels; larger values come from damaged files.
 * @category WSI
 */
export const TIFF_READER_LIMITS = Object.freeze({ maxSide: 2 ** 24, maxTileSide: 16384, maxTileBytes: 64 * 2 ** 20 });

interface LevelReader {
  image: GeoTIFFImage;
  info: TiffTileInfo;
  tilesAcross: number;
  tilesDown: number;
  isTiled: boolean;
  /** 'rgb' when a custom decoder already returns RGB; else how to convert geotiff's samples. */
  mode: 'rgb' | 'ycbcr' | 'samples';
  decoder: { decode(buffer: ArrayBuffer): Promise<ArrayBufferLike> } | null;
}

/** Pixel size and magnification found in a TIFF's tags. */
export interface TiffResolution {
  /** Micrometres per pixel. */
  mpp?: number;
  /** Objective magnification (Aperio `AppMag`). */
  magnification?: number;
}

/**
 * Reads the pixel size of a TIFF: the Aperio `ImageDescription` (`MPP = 0.2502`, `AppMag = 20`),
 * an OME-XML `PhysicalSizeX`, or the `XResolution` / `YResolution` tags with `ResolutionUnit`
 * inch (2) or centimetre (3): `mpp = 10000 / XResolution` for centimetres. Values outside
 * [0.01, 100] µm (such as the 72 dpi many programs write by default) are treated as unknown.
 *
 * @example
 * ```ts
 * parseTiffResolution({ description: 'Aperio Image Library v12 |AppMag = 40|MPP = 0.2499' });
 * // { mpp: 0.2499, magnification: 40 }
 * parseTiffResolution({ xResolution: 40000, yResolution: 40000, resolutionUnit: 3 }); // { mpp: 0.25 }
 * ```
 * @category WSI
 */
export function parseTiffResolution(tags: {
  description?: string;
  xResolution?: number;
  yResolution?: number;
  resolutionUnit?: number;
}): TiffResolution {
  const out: TiffResolution = {};
  const sane = (v: number) => Number.isFinite(v) && v >= 0.01 && v <= 100;
  const d = tags.description ?? '';
  if (/^\s*Aperio/i.test(d)) {
    for (const part of d.split('|')) {
      const m = /^\s*([A-Za-z]+)\s*=\s*([-+0-9.eE]+)\s*$/.exec(part);
      if (!m) continue;
      const v = Number(m[2]);
      if (m[1] === 'MPP' && sane(v)) out.mpp = v;
      if (m[1] === 'AppMag' && v > 0) out.magnification = v;
    }
  } else {
    const m = /PhysicalSizeX\s*=\s*"([-+0-9.eE]+)"/.exec(d);
    if (m) {
      const unit = /PhysicalSizeXUnit\s*=\s*"([^"]*)"/.exec(d)?.[1] ?? 'µm';
      const scale: Record<string, number> = { µm: 1, um: 1, 'μm': 1, nm: 1e-3, mm: 1e3, cm: 1e4 };
      const v = Number(m[1]) * (scale[unit] ?? NaN);
      if (sane(v)) out.mpp = v;
    }
  }
  if (out.mpp === undefined && tags.xResolution && (tags.resolutionUnit === 2 || tags.resolutionUnit === 3)) {
    const perUnit = tags.resolutionUnit === 3 ? 10000 : 25400;
    const mx = perUnit / tags.xResolution;
    const my = tags.yResolution ? perUnit / tags.yResolution : mx;
    const v = (mx + my) / 2;
    if (sane(v)) out.mpp = v;
  }
  return out;
}

/**
 * Converts JPEG-decoded YCbCr samples to RGB in place (JFIF / ITU-R BT.601 full range):
 * `R = Y + 1.402 (Cr - 128)`, `G = Y - 0.344136 (Cb - 128) - 0.714136 (Cr - 128)`,
 * `B = Y + 1.772 (Cb - 128)`, rounded and clamped to [0, 255].
 * @param data interleaved Y, Cb, Cr bytes.
 * @category WSI
 */
export function ycbcrToRgb(data: Uint8Array): Uint8Array {
  for (let i = 0; i + 2 < data.length; i += 3) {
    const y = data[i];
    const cb = data[i + 1] - 128;
    const cr = data[i + 2] - 128;
    const r = y + 1.402 * cr;
    const g = y - 0.344136 * cb - 0.714136 * cr;
    const b = y + 1.772 * cb;
    data[i] = r < 0 ? 0 : r > 255 ? 255 : Math.round(r);
    data[i + 1] = g < 0 ? 0 : g > 255 ? 255 : Math.round(g);
    data[i + 2] = b < 0 ? 0 : b > 255 ? 255 : Math.round(b);
  }
  return data;
}

/** Reads a TIFF rational (geotiff gives `[numerator, denominator]` or a number). */
function rational(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  const a = v as ArrayLike<number>;
  if (a.length >= 2 && a[1] !== 0) return Number(a[0]) / Number(a[1]);
  if (a.length === 1) return Number(a[0]);
  return undefined;
}

function firstNumber(v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number') return v;
  const a = v as ArrayLike<number>;
  return a.length > 0 ? Number(a[0]) : fallback;
}

function isGeoTiff(x: unknown): x is GeoTIFF {
  return typeof x === 'object' && x !== null && typeof (x as GeoTIFF).getImageCount === 'function';
}

/**
 * A pyramidal TIFF or Aperio SVS slide read through geotiff.
 *
 * Levels are the tiled images of the file whose aspect ratio matches the largest image (the
 * Aperio thumbnail, label and macro images are stripped, so they are left out). JPEG (RGB or
 * YCbCr), uncompressed, LZW, deflate and other geotiff codecs with 8-bit samples are read;
 * JPEG 2000 SVS files must be converted first (docs/guides/slides.md).
 *
 * @example
 * ```ts
 * const src = await TiffSlideSource.open(await (await fetch(url)).arrayBuffer(), { name: 'slide.svs' });
 * src.levels;   // [{ width: 46000, height: 32914, downsample: 1 }, ...]
 * src.mpp;      // 0.2499
 * const rgb = await src.readRegion(1, 8192, 4096, 256, 256);
 * ```
 * @category WSI
 */
export class TiffSlideSource implements SlideSource {
  readonly name: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp?: number;
  readonly magnification?: number;
  /** The raw `ImageDescription` of level 0 (Aperio metadata lives here). */
  readonly description?: string;
  /**
   * What opening found odd but readable, one message each: tiles stored with no data (byte
   * count 0), which read as background. Commands print these.
   */
  readonly warnings: readonly string[];
  private readonly tiff: GeoTIFF;
  private readonly readers: LevelReader[];
  private readonly background: number;
  private readonly cacheBytes: number;
  private readonly cache = new Map<string, Promise<Uint8Array>>();
  private cachedBytes = 0;
  private closed = false;

  private constructor(
    tiff: GeoTIFF,
    readers: LevelReader[],
    name: string,
    res: TiffResolution,
    description: string | undefined,
    warnings: string[],
    options: TiffSlideOptions,
  ) {
    this.tiff = tiff;
    this.readers = readers;
    this.name = name;
    this.levels = levelsFromSizes(readers.map((r) => [r.image.getWidth(), r.image.getHeight()] as const));
    this.mpp = res.mpp;
    this.magnification = res.magnification;
    this.description = description;
    this.warnings = Object.freeze(warnings);
    this.background = options.background ?? 255;
    this.cacheBytes = options.cacheBytes ?? DEFAULT_TILE_CACHE_BYTES;
  }

  /**
   * Opens a slide from a geotiff `GeoTIFF`, an `ArrayBuffer`, a `Blob` / `File`, or a URL.
   * @throws DataError naming the slide when the input is not a TIFF, has no readable image,
   *   uses an unsupported codec or sample layout, or is truncated (with `byteLength`).
   */
  static async open(input: GeoTIFF | ArrayBuffer | Blob | string, options: TiffSlideOptions = {}): Promise<TiffSlideSource> {
    const name = options.name ?? (typeof input === 'string' ? input : 'slide.tif');
    let tiff: GeoTIFF;
    let byteLength = options.byteLength;
    try {
      if (isGeoTiff(input)) tiff = input;
      else if (typeof input === 'string') tiff = await fromUrl(input);
      else if (input instanceof ArrayBuffer) {
        checkTiffSignature(new Uint8Array(input, 0, Math.min(132, input.byteLength)), name);
        byteLength ??= input.byteLength;
        tiff = await fromArrayBuffer(input);
      } else if (typeof Blob !== 'undefined' && input instanceof Blob) {
        checkTiffSignature(new Uint8Array(await input.slice(0, 132).arrayBuffer()), name);
        byteLength ??= input.size;
        // geotiff reads Blobs lazily through FileReader (browsers, Web Workers); where there is
        // none (Node), the Blob is read whole.
        tiff = typeof FileReader === 'undefined' ? await fromArrayBuffer(await input.arrayBuffer()) : await fromBlob(input);
      } else throw new ValueError('Expected a GeoTIFF, ArrayBuffer, Blob or URL.');
    } catch (e) {
      if (e instanceof ValueError || e instanceof DataError) throw e;
      throw notTiff(name, e);
    }
    try {
      return await TiffSlideSource.fromGeoTiff(tiff, name, byteLength, options);
    } catch (e) {
      await Promise.resolve(tiff.close?.()).catch(() => undefined);
      if (e instanceof DataError) throw e;
      throw new DataError(`Cannot read slide '${name}': ${(e as Error).message}. The file may be truncated or corrupt.`);
    }
  }

  private static async fromGeoTiff(
    tiff: GeoTIFF,
    name: string,
    byteLength: number | undefined,
    options: TiffSlideOptions,
  ): Promise<TiffSlideSource> {
    // Walk the directory chain first: geotiff would loop on a cyclic chain and allocate what
    // a damaged tag count claims.
    await checkTiffStructure(
      async (offset, length) => {
        const [buf] = await tiff.source.fetch([{ offset, length }]);
        return new Uint8Array(buf as ArrayBuffer);
      },
      byteLength,
      name,
    );
    let count: number;
    try {
      count = await tiff.getImageCount();
    } catch (e) {
      throw notTiff(name, e);
    }
    if (count < 1) throw new DataError(`Slide '${name}' holds no image.`);
    const images: GeoTIFFImage[] = [];
    for (let i = 0; i < count; i++) images.push(await tiff.getImage(i));
    // Level 0 is the largest image; further levels are tiled images of the same aspect ratio.
    let main = images[0];
    for (const im of images) if (im.getWidth() * im.getHeight() > main.getWidth() * main.getHeight()) main = im;
    const w0 = main.getWidth();
    const h0 = main.getHeight();
    const chosen = images
      .filter((im) => {
        if (im === main) return true;
        if (!im.isTiled) return false;
        const w = im.getWidth();
        const h = im.getHeight();
        if (w >= w0) return false;
        const expectH = h0 * (w / w0);
        return Math.abs(h - expectH) <= Math.max(2, 0.02 * h);
      })
      .sort((a, b) => b.getWidth() - a.getWidth());
    // Drop images of equal width (keep the first), so levels strictly shrink.
    const levelsImages = chosen.filter((im, i) => i === 0 || im.getWidth() < chosen[i - 1].getWidth());
    const readers: LevelReader[] = [];
    for (let i = 0; i < levelsImages.length; i++) readers.push(await makeReader(levelsImages[i], i, name, options));
    const fd = main.getFileDirectory();
    const description = (await fd.loadValue('ImageDescription')) as string | undefined;
    const res = parseTiffResolution({
      description: typeof description === 'string' ? description : undefined,
      xResolution: rational(await fd.loadValue('XResolution')),
      yResolution: rational(await fd.loadValue('YResolution')),
      resolutionUnit: firstNumber(await fd.loadValue('ResolutionUnit'), 2),
    });
    const warnings = await checkTileTables(readers, byteLength, name);
    return new TiffSlideSource(tiff, readers, name, res, typeof description === 'string' ? description : undefined, warnings, options);
  }

  /** Tile size of each level (`[width, height]`; strips count as tiles of full width). */
  get tileSizes(): [number, number][] {
    return this.readers.map((r) => [r.info.tileWidth, r.info.tileHeight]);
  }

  /** TIFF compression code of each level. */
  get compressions(): number[] {
    return this.readers.map((r) => r.info.compression);
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    if (this.closed) throw new DataError(`Slide '${this.name}' is closed.`);
    checkLevel(this, level);
    checkRegion(width, height);
    const lv = this.levels[level];
    const r = this.readers[level];
    const lx = toLevelCoord(x, lv.downsample);
    const ly = toLevelCoord(y, lv.downsample);
    const out = new Uint8Array(width * height * 3).fill(this.background);
    const { tileWidth: tw, tileHeight: th } = r.info;
    const tx0 = Math.max(0, Math.floor(lx / tw));
    const ty0 = Math.max(0, Math.floor(ly / th));
    const tx1 = Math.min(r.tilesAcross - 1, Math.floor((lx + width - 1) / tw));
    const ty1 = Math.min(r.tilesDown - 1, Math.floor((ly + height - 1) / th));
    const jobs: Promise<void>[] = [];
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        jobs.push(
          this.tile(level, tx, ty).then((rgb) => {
            const rows = rgb.length / (tw * 3);
            // Clip to the image: edge tiles are padded beyond the level's size.
            const vw = Math.min(tw, lv.width - tx * tw);
            const vh = Math.min(rows, lv.height - ty * th);
            blitClipped(rgb, tw, vw, vh, tx * tw, ty * th, out, width, height, lx, ly);
          }),
        );
      }
    }
    await Promise.all(jobs);
    return out;
  }

  /** Empties the decoded-tile cache. */
  clearCache(): void {
    this.cache.clear();
    this.cachedBytes = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearCache();
    await Promise.resolve(this.tiff.close?.());
  }

  private tile(level: number, tx: number, ty: number): Promise<Uint8Array> {
    const key = `${level}:${tx}:${ty}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const p = this.loadTile(level, tx, ty);
    if (this.cacheBytes > 0) {
      const r = this.readers[level];
      const bytes = r.info.tileWidth * r.info.tileHeight * 3;
      this.cache.set(key, p);
      this.cachedBytes += bytes;
      p.catch(() => {
        if (this.cache.get(key) === p) {
          this.cache.delete(key);
          this.cachedBytes -= bytes;
        }
      });
      for (const [k] of this.cache) {
        if (this.cachedBytes <= this.cacheBytes || this.cache.size <= 1) break;
        const [lv] = k.split(':');
        const rr = this.readers[Number(lv)];
        this.cache.delete(k);
        this.cachedBytes -= rr.info.tileWidth * rr.info.tileHeight * 3;
      }
    }
    return p;
  }

  private async loadTile(level: number, tx: number, ty: number): Promise<Uint8Array> {
    const r = this.readers[level];
    const { tileWidth: tw } = r.info;
    const rows = r.isTiled ? r.info.tileHeight : r.image.getBlockHeight(ty);
    try {
      const index = ty * r.tilesAcross + tx;
      const fd = r.image.getFileDirectory();
      const count = Number(await fd.loadValueIndexed(r.isTiled ? 'TileByteCounts' : 'StripByteCounts', index));
      if (count === 0) return new Uint8Array(tw * rows * 3).fill(this.background);
      if (!r.decoder) throw new DataError('no decoder');
      const res = await r.image.getTileOrStrip(tx, ty, 0, r.decoder as never);
      let px = res.data instanceof Uint8Array ? res.data : new Uint8Array(res.data as ArrayBuffer);
      if (r.mode === 'rgb') {
        if (px.length !== tw * rows * 3) throw new Error(`decoder returned ${px.length} bytes, expected ${tw * rows * 3}`);
        return px;
      }
      const spp = r.info.samplesPerPixel;
      if (px.length < tw * rows * spp) throw new Error(`decoded ${px.length} bytes, expected ${tw * rows * spp}`);
      if (r.mode === 'ycbcr') return ycbcrToRgb(px.slice(0, tw * rows * 3));
      if (spp === 3) return px.length === tw * rows * 3 ? px : px.slice(0, tw * rows * 3);
      const out = new Uint8Array(tw * rows * 3);
      blitRgb(px, tw, rows, spp, 0, 0, out, tw, rows, 0, 0);
      if (r.info.photometric === 0) for (let i = 0; i < out.length; i++) out[i] = 255 - out[i];
      px = out;
      return px;
    } catch (e) {
      throw new DataError(
        `Cannot decode tile (${tx}, ${ty}) of level ${level} of slide '${this.name}': ${(e as Error).message}. ` +
          'The file may be truncated or corrupt.',
      );
    }
  }
}

/** Names the format of a non-TIFF file from its first bytes, for the error message. */
function sniffFormat(head: Uint8Array, name: string): string | undefined {
  const ascii = (a: number, b: number) => String.fromCharCode(...head.subarray(a, b));
  if (head[0] === 0xff && head[1] === 0xd8) return 'a JPEG image';
  if (ascii(1, 4) === 'PNG') return 'a PNG image';
  if (ascii(0, 10) === 'ZISRAWFILE') return 'a Zeiss CZI file';
  if (head.length >= 132 && ascii(128, 132) === 'DICM') return 'a DICOM file';
  if (ascii(0, 4) === 'PK\u0003\u0004') return 'a ZIP archive';
  if (/\.mrxs$/i.test(name)) return 'a MIRAX index file';
  return undefined;
}

/**
 * Checks the first bytes of a file against the TIFF and BigTIFF signatures (`II*\0`, `MM\0*`,
 * `II+\0`, `MM\0+`).
 * @param head the file's first bytes (132 are enough to name DICOM files in the message).
 * @param name the slide's name, for the message (its extension helps name MIRAX files).
 * @throws DataError saying what the file looks like and the vips command that converts it.
 * @example
 * ```ts
 * checkTiffSignature(new Uint8Array(await file.slice(0, 132).arrayBuffer()), file.name);
 * ```
 * @category WSI
 */
export function checkTiffSignature(head: Uint8Array, name: string): void {
  const le = head[0] === 0x49 && head[1] === 0x49 && (head[2] === 42 || head[2] === 43) && head[3] === 0;
  const be = head[0] === 0x4d && head[1] === 0x4d && head[2] === 0 && (head[3] === 42 || head[3] === 43);
  if (le || be) return;
  const what = sniffFormat(head, name);
  throw new DataError(
    `Slide '${name}' is not a TIFF file${what ? ` (it looks like ${what})` : head.length < 8 ? ' (it is too short to be one)' : ''}. ` +
      'sasha-wsi reads pyramidal TIFF and Aperio SVS; convert other formats with ' +
      '`vips tiffsave in.ext out.tif --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85` ' +
      '(vips reads vendor formats through openslideload; see docs/guides/slides.md).',
  );
}

function notTiff(name: string, cause: unknown): DataError {
  return new DataError(
    `Slide '${name}' is not a readable TIFF (${(cause as Error)?.message ?? String(cause)}). ` +
      'sasha-wsi reads pyramidal TIFF and Aperio SVS files; convert other formats with ' +
      '`vips tiffsave in.ext out.tif --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85` (docs/guides/slides.md).',
  );
}

async function makeReader(image: GeoTIFFImage, level: number, name: string, options: TiffSlideOptions): Promise<LevelReader> {
  const fd = image.getFileDirectory();
  const compression = firstNumber(await fd.loadValue('Compression'), 1);
  const photometric = firstNumber(await fd.loadValue('PhotometricInterpretation'), 2);
  const spp = image.getSamplesPerPixel();
  const planar = firstNumber(await fd.loadValue('PlanarConfiguration'), 1);
  const bitsRaw = (await fd.loadValue('BitsPerSample')) as number | ArrayLike<number> | undefined;
  const bits = bitsRaw === undefined ? [8] : typeof bitsRaw === 'number' ? [bitsRaw] : Array.from(bitsRaw);
  const where = `level ${level} of slide '${name}'`;
  if (UNSUPPORTED_COMPRESSION[compression]) {
    throw new DataError(
      `The ${UNSUPPORTED_COMPRESSION[compression]} compression of ${where} is not supported. ` +
        'Convert it to JPEG tiles with a libvips built with OpenSlide: ' +
        '`vips tiffsave in.svs out.tif --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85` ' +
        '(docs/guides/slides.md).',
    );
  }
  if (bits.some((b) => b !== 8)) {
    throw new DataError(`Expected 8-bit samples in ${where}, but got ${bits.join(', ')} bits. Convert the slide to 8-bit RGB with vips.`);
  }
  if (!(spp === 1 || spp === 3 || spp === 4)) {
    throw new DataError(`Expected 1, 3 or 4 samples per pixel in ${where}, but got ${spp}.`);
  }
  if (planar !== 1 && spp > 1) {
    throw new DataError(`Expected interleaved samples (PlanarConfiguration 1) in ${where}, but got ${planar}. Convert the slide with vips.`);
  }
  if (photometric === 6 && compression !== 7) {
    throw new DataError(`Expected YCbCr images of ${where} to be JPEG-compressed, but got compression ${compression}. Convert the slide with vips.`);
  }
  if (![0, 1, 2, 6].includes(photometric)) {
    throw new DataError(`Expected a grey, RGB or YCbCr image in ${where}, but got PhotometricInterpretation ${photometric}.`);
  }
  const jpegTables = compression === 7 ? ((await fd.loadValue('JPEGTables')) as Uint8Array | undefined) : undefined;
  if (jpegTables && jpegTables.length > 0) {
    const t = jpegTables;
    if (t.length < 4 || t[0] !== 0xff || t[1] !== 0xd8 || t[t.length - 2] !== 0xff || t[t.length - 1] !== 0xd9) {
      throw new DataError(`The JPEG tables of ${where} are damaged (they must start with SOI and end with EOI). Copy or convert the slide again.`);
    }
  }
  const isTiled = image.isTiled;
  const tileWidth = image.getTileWidth();
  const tileHeight = image.getTileHeight();
  const { maxSide, maxTileSide, maxTileBytes } = TIFF_READER_LIMITS;
  const w = image.getWidth();
  const h = image.getHeight();
  if (!(Number.isSafeInteger(w) && Number.isSafeInteger(h) && w >= 1 && h >= 1 && w <= maxSide && h <= maxSide)) {
    throw new DataError(`Expected the size of ${where} to be 1 to ${maxSide} pixels on a side, but got ${w} x ${h}. The file is damaged.`);
  }
  if (!(Number.isSafeInteger(tileWidth) && Number.isSafeInteger(tileHeight) && tileWidth >= 1 && tileHeight >= 1)) {
    const show = (v: unknown) => (typeof v === 'number' ? String(v) : `${JSON.stringify(v)}`.slice(0, 24));
    throw new DataError(`Expected the tiles of ${where} to be at least 1 x 1 pixels, but got ${show(tileWidth)} x ${show(tileHeight)}. The file is damaged.`);
  }
  if ((isTiled && (tileWidth > maxTileSide || tileHeight > maxTileSide)) || tileWidth * tileHeight * Math.max(3, spp) > maxTileBytes) {
    throw new DataError(
      `The ${isTiled ? 'tiles' : 'strips'} of ${where} are ${tileWidth} x ${tileHeight} pixels, more than this reader decodes at once ` +
        `(${isTiled ? `${maxTileSide} pixels a side, ` : ''}${maxTileBytes / 2 ** 20} MiB). The file is damaged, or convert it to 256-pixel tiles: ` +
        '`vips tiffsave in.tif out.tif --tile --tile-width 256 --tile-height 256 --pyramid --compression jpeg --Q 85`.',
    );
  }
  const info: TiffTileInfo = {
    compression,
    photometric,
    jpegTables: jpegTables ? Uint8Array.from(jpegTables) : undefined,
    tileWidth,
    tileHeight,
    samplesPerPixel: spp,
  };
  const tilesAcross = Math.ceil(image.getWidth() / tileWidth);
  const tilesDown = Math.ceil(image.getHeight() / tileHeight);
  const custom = options.decoder?.(info);
  if (custom) {
    return {
      image,
      info,
      tilesAcross,
      tilesDown,
      isTiled,
      mode: 'rgb',
      decoder: { decode: (buffer: ArrayBuffer) => custom.decode(buffer).then((u) => u as unknown as ArrayBufferLike) },
    };
  }
  const params = {
    tileWidth,
    tileHeight,
    planarConfiguration: planar,
    bitsPerSample: bits,
    predictor: firstNumber(await fd.loadValue('Predictor'), 1),
    ...(jpegTables ? { JPEGTables: jpegTables } : {}),
  };
  let decoder: LevelReader['decoder'];
  try {
    decoder = options.pool ? options.pool.bindParameters(compression, params) : await getDecoder(compression, params);
  } catch (e) {
    throw new DataError(`Cannot decode ${where}: ${(e as Error).message}. Convert the slide to JPEG tiles with vips (docs/guides/slides.md).`);
  }
  return { image, info, tilesAcross, tilesDown, isTiled, mode: photometric === 6 ? 'ycbcr' : 'samples', decoder };
}

/** Copies the valid `vw x vh` part of a decoded tile placed at level pixel (`px`, `py`). */
function blitClipped(
  rgb: Uint8Array,
  tw: number,
  vw: number,
  vh: number,
  px: number,
  py: number,
  out: Uint8Array,
  width: number,
  height: number,
  lx: number,
  ly: number,
): void {
  if (vw <= 0 || vh <= 0) return;
  const x0 = Math.max(px, lx);
  const y0 = Math.max(py, ly);
  const x1 = Math.min(px + vw, lx + width);
  const y1 = Math.min(py + vh, ly + height);
  if (x1 <= x0 || y1 <= y0) return;
  const n = (x1 - x0) * 3;
  for (let yy = y0; yy < y1; yy++) {
    const si = ((yy - py) * tw + (x0 - px)) * 3;
    out.set(rgb.subarray(si, si + n), ((yy - ly) * width + (x0 - lx)) * 3);
  }
}

/**
 * Checks the tile table of every level: it has an offset and a byte count for every tile the
 * level's size needs, and (when the file size is known) every tile lies inside the file.
 * @returns warnings about tiles stored with no data (byte count 0), which read as background.
 */
async function checkTileTables(readers: LevelReader[], byteLength: number | undefined, name: string): Promise<string[]> {
  const warnings: string[] = [];
  for (let i = 0; i < readers.length; i++) {
    const r = readers[i];
    const fd = r.image.getFileDirectory();
    let offsets: ArrayLike<number | bigint> | undefined;
    let counts: ArrayLike<number | bigint> | undefined;
    try {
      offsets = (await fd.loadValue(r.isTiled ? 'TileOffsets' : 'StripOffsets')) as ArrayLike<number | bigint> | undefined;
      counts = (await fd.loadValue(r.isTiled ? 'TileByteCounts' : 'StripByteCounts')) as ArrayLike<number | bigint> | undefined;
    } catch {
      offsets = undefined;
    }
    if (!offsets || !counts || offsets.length === 0) {
      throw new DataError(
        `Slide '${name}' is truncated or corrupt: the tile table of level ${i} cannot be read${byteLength !== undefined ? ` (file of ${byteLength} bytes)` : ''}. Copy or download the file again.`,
      );
    }
    const need = r.tilesAcross * r.tilesDown;
    if (offsets.length < need || counts.length < need) {
      throw new DataError(
        `Slide '${name}' is corrupt: level ${i} (${r.image.getWidth()} x ${r.image.getHeight()} pixels in ${r.info.tileWidth} x ${r.info.tileHeight} tiles) ` +
          `needs ${need} tiles, but its tile table lists ${Math.min(offsets.length, counts.length)}. Copy or convert the file again.`,
      );
    }
    let end = 0;
    let empty = 0;
    for (let j = 0; j < need; j++) {
      const c = Number(counts[j]);
      if (c === 0) {
        empty++;
        continue;
      }
      const e = Number(offsets[j]) + c;
      if (e > end) end = e;
    }
    if (byteLength !== undefined && end > byteLength) {
      throw new DataError(
        `Slide '${name}' is truncated: level ${i} needs ${end} bytes but the file has ${byteLength}. Copy or download the file again.`,
      );
    }
    if (empty > 0) {
      warnings.push(
        `Slide '${name}': ${empty} of ${need} tiles of level ${i} are stored with no data (byte count 0); they read as background. ` +
          'A scanner leaves empty tiles out on purpose; otherwise the file is damaged.',
      );
    }
  }
  return warnings;
}
