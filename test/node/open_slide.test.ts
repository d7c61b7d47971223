import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { InMemorySlideSource, TiffSlideSource, parseTiffResolution, tileSlide, type TileDecoderFactory } from '../../src/wsi/index.js';
import { DataError } from '../../src/core/index.js';
import { loadSharp, openSlide, sharpJpegDecoders, slideIdFromPath } from '../../src/node/open_slide.js';
import { loadWasmJpeg, wasmJpegDecoders } from '../../src/node/jpeg_wasm.js';
import { writeRgbTiff, writeSyntheticSlide, type WrittenSyntheticSlide } from '../../src/node/synthetic_slide.js';
import { tempDir } from '../wsi/fixtures.js';
import { ycbcrToRgb } from '../../src/wsi/tiff_source.js';

const tmp = tempDir();
let jpeg: WrittenSyntheticSlide;
let raw: WrittenSyntheticSlide;
beforeAll(async () => {
  jpeg = await writeSyntheticSlide(tmp.path('jpeg.tif'), { seed: 7 });
  raw = await writeSyntheticSlide(tmp.path('raw.tif'), { seed: 7 }, { compression: 'none' });
});
afterAll(() => tmp.cleanup());

/** Mean and max absolute difference of two byte arrays. */
function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  let s = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d;
    if (d > m) m = d;
  }
  return { mean: s / a.length, max: m };
}

describe('openSlide on generated pyramidal TIFFs', () => {
  it('reads back level sizes, downsamples and mpp', async () => {
    const s = await openSlide(jpeg.path);
    expect(s.name).toBe('jpeg.tif');
    expect(s.levels.map((l) => [l.width, l.height, l.downsample])).toEqual([
      [2048, 1536, 1],
      [1024, 768, 2],
      [512, 384, 4],
      [256, 192, 8],
    ]);
    expect(s.mpp).toBeCloseTo(0.5, 4);
    expect(s.tileSizes).toEqual([
      [256, 256],
      [256, 256],
      [256, 256],
      [256, 256],
    ]);
    expect(s.compressions).toEqual([7, 7, 7, 7]);
    await s.close();
  });

  it('reads uncompressed tiles exactly at every level (libvips 2x2 means)', async () => {
    const s = await openSlide(raw.path);
    const ref = InMemorySlideSource.fromImage(raw.image, { levels: 4 });
    for (let l = 0; l < 4; l++) {
      const { width, height } = s.levels[l];
      const a = await s.readRegion(l, 0, 0, width, height);
      const b = await ref.readRegion(l, 0, 0, width, height);
      expect(diff(a, b).max, `level ${l}`).toBe(0);
    }
    await s.close();
  });

  it('reads JPEG tiles within JPEG error at every level, with every decoder', async () => {
    const ref = InMemorySlideSource.fromImage(jpeg.image, { levels: 4 });
    for (const jpegDecoder of ['wasm', 'sharp', 'geotiff'] as const) {
      const s = await openSlide(jpeg.path, { jpegDecoder });
      for (let l = 0; l < 4; l++) {
        // a region that straddles tile borders and runs past the slide's right edge
        const x = 1000;
        const y = 200;
        const w = 300;
        const h = 180;
        const a = await s.readRegion(l, x, y, w, h);
        const b = await ref.readRegion(l, x, y, w, h);
        const d = diff(a, b);
        expect(d.mean, `${jpegDecoder} level ${l}`).toBeLessThan(3); // quality 90
      }
      await s.close();
    }
  });

  it('decodes the same pixels with sharp and with geotiff', async () => {
    const a = await openSlide(jpeg.path, { jpegDecoder: 'sharp' });
    const b = await openSlide(jpeg.path, { jpegDecoder: 'geotiff' });
    const ra = await a.readRegion(0, 512, 512, 256, 256);
    const rb = await b.readRegion(0, 512, 512, 256, 256);
    expect(diff(ra, rb).max).toBeLessThanOrEqual(2); // IDCT rounding differences only
    await Promise.all([a.close(), b.close()]);
  });

  it('decodes the same pixels with libjpeg-turbo in wasm and in sharp', async () => {
    const a = await openSlide(jpeg.path, { jpegDecoder: 'wasm' });
    const b = await openSlide(jpeg.path, { jpegDecoder: 'sharp' });
    for (let l = 0; l < 3; l++) {
      const ra = await a.readRegion(l, 300, 200, 600, 400);
      const rb = await b.readRegion(l, 300, 200, 600, 400);
      expect(diff(ra, rb).max, `level ${l}`).toBeLessThanOrEqual(1); // the same library: 0 measured
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('wasm decoder: RGB-photometric tiles as sharp decodes them, a corrupt tile is an error and the decoder goes on', async () => {
    const codec = await loadWasmJpeg();
    const sharpMod = await loadSharp();
    const pixels = new Uint8Array(64 * 48 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (i % 3) * 50) & 255;
    const bytes = await sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const tile = new Uint8Array(bytes).slice().buffer;
    for (const photometric of [2, 6]) {
      const info = { compression: 7, photometric, samplesPerPixel: 3, tileWidth: 64, tileHeight: 48 };
      const w = await wasmJpegDecoders(codec!)(info)!.decode(tile.slice(0));
      const s = await sharpJpegDecoders(sharpMod!)(info)!.decode(tile.slice(0));
      expect(w.length).toBe(64 * 48 * 3);
      expect(diff(w, s).max, `photometric ${photometric}`).toBeLessThanOrEqual(1);
    }
    // photometric 2 skips the YCbCr conversion, so its pixels differ from the YCbCr reading
    const info6 = { compression: 7, photometric: 6, samplesPerPixel: 3, tileWidth: 64, tileHeight: 48 };
    const info2 = { ...info6, photometric: 2 };
    const dec = wasmJpegDecoders(codec!);
    expect(diff(await dec(info2)!.decode(tile.slice(0)), await dec(info6)!.decode(tile.slice(0))).mean).toBeGreaterThan(5);
    // other codecs are left to geotiff
    expect(dec({ ...info6, compression: 5 })).toBeUndefined();
    const corrupt = new Uint8Array(500).map((_, i) => (i * 37) & 255);
    corrupt[0] = 0xff;
    corrupt[1] = 0xd8;
    await expect(dec(info6)!.decode(corrupt.buffer)).rejects.toThrow(/no frame header/);
    // a valid header with its entropy-coded data cut short: libjpeg-turbo reports it
    const cut = Uint8Array.from([...new Uint8Array(bytes).subarray(0, bytes.length - 400), 0xff, 0xd9]);
    await expect(dec(info6)!.decode(cut.buffer)).rejects.toThrow(/corrupt or truncated/);
    await expect(dec(info6)!.decode(new Uint8Array([1, 2, 3, 4]).buffer)).rejects.toThrow(/not a JPEG stream/);
    const again = await dec(info6)!.decode(tile.slice(0));
    expect(diff(again, await sharpJpegDecoders(sharpMod!)(info6)!.decode(tile.slice(0))).max).toBeLessThanOrEqual(1);
  });

  it('reads only the tiles a region touches, and caches them', async () => {
    const sharpMod = await loadSharp();
    const inner = sharpJpegDecoders(sharpMod!);
    const decoded: number[] = [];
    const counting: TileDecoderFactory = (info) => {
      const d = inner(info);
      return d && { decode: (b) => (decoded.push(info.tileWidth), d.decode(b)) };
    };
    const buf = readFileSync(jpeg.path);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    const s = await TiffSlideSource.open(ab, { decoder: counting, name: 'mem.tif' });
    await s.readRegion(0, 256, 256, 256, 256); // exactly tile (1, 1)
    expect(decoded.length).toBe(1);
    await s.readRegion(0, 300, 300, 256, 256); // tiles (1..2, 1..2): three new ones
    expect(decoded.length).toBe(4);
    await s.readRegion(0, 260, 260, 100, 100); // inside tile (1, 1): cached
    expect(decoded.length).toBe(4);
    await s.readRegion(1, 0, 0, 64, 64); // level 1, tile (0, 0)
    expect(decoded.length).toBe(5);
    const off = await s.readRegion(0, 5000, 5000, 8, 8); // outside: no tile, white
    expect(decoded.length).toBe(5);
    expect(off.every((v) => v === 255)).toBe(true);
    await s.close();
  });

  it('keeps the tile cache within its budget', async () => {
    const s = await openSlide(jpeg.path, { cacheBytes: 2 * 256 * 256 * 3 });
    await s.readRegion(0, 0, 0, 1024, 256); // 4 tiles
    const cache = (s as unknown as { cache: Map<string, unknown>; cachedBytes: number }).cache;
    expect(cache.size).toBe(2);
    await s.close();
  });

  it('writes files atomically (no temporary file is left)', () => {
    expect(readdirSync(tmp.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('derives slide ids from paths', () => {
    expect(slideIdFromPath('/data/c16/tumor_001.tif')).toBe('tumor_001');
    expect(slideIdFromPath('TCGA-AB.svs')).toBe('TCGA-AB');
  });
});

describe('openSlide on bad input', () => {
  it('names a file that is not a TIFF and gives the vips command', async () => {
    const txt = tmp.path('notes.svs');
    writeFileSync(txt, 'this is not a slide');
    await expect(openSlide(txt)).rejects.toThrow(DataError);
    await expect(openSlide(txt)).rejects.toThrow(/Slide 'notes.svs' is not a TIFF file.*vips tiffsave/s);
    const png = tmp.path('photo.tif');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toFile(png);
    await expect(openSlide(png)).rejects.toThrow(/'photo.tif' is not a TIFF file \(it looks like a PNG image\)/);
    await expect(openSlide(tmp.path('missing.tif'))).rejects.toThrow(/'.*missing.tif' does not exist/);
  });

  it('names a truncated file', async () => {
    const full = readFileSync(jpeg.path);
    for (const keep of [0.3, 0.6, 0.95, 0.999]) {
      const cut = tmp.path('cut.tif');
      writeFileSync(cut, full.subarray(0, Math.floor(full.length * keep)));
      await expect(openSlide(cut), `kept ${keep}`).rejects.toThrow(DataError);
      await expect(openSlide(cut), `kept ${keep}`).rejects.toThrow(/'cut.tif'.*truncated/);
    }
  });

  it('opens a one-level TIFF, and tiling at a missing level names the slide and the fix', async () => {
    const flat = tmp.path('flat.tif');
    const sharpMod = await loadSharp();
    await sharpMod!(Buffer.from(jpeg.image.data), { raw: { width: 2048, height: 1536, channels: 3 } })
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'jpeg' })
      .toFile(flat);
    const s = await openSlide(flat);
    expect(s.levels).toHaveLength(1);
    await expect(tileSlide(s, { lowRes: { level: 2 }, tissue: { aT: 1 } })).rejects.toThrow(/slide 'flat.tif'.*single level.*vips tiffsave/s);
    await s.close();
  });

  it('writes a TIFF from RGB bytes with its mpp', async () => {
    const p = tmp.path('small.tif');
    await writeRgbTiff(p, new Uint8Array(300 * 200 * 3).fill(128), 300, 200, 0.25);
    const s = await openSlide(p);
    expect(s.mpp).toBeCloseTo(0.25, 4);
    expect(s.levels.map((l) => l.width)).toEqual([300, 150]);
    await s.close();
  });
});

describe('TIFF metadata', () => {
  it('parses Aperio descriptions, OME sizes and resolution tags', () => {
    expect(parseTiffResolution({ description: 'Aperio Image Library v12.0.15 \r\n46000x32914 [0,100 46000x32814] (240x240) JPEG/RGB Q=70|AppMag = 20|MPP = 0.4990|Filename = x' })).toEqual({
      mpp: 0.499,
      magnification: 20,
    });
    expect(parseTiffResolution({ description: '<OME><Pixels PhysicalSizeX="0.325" PhysicalSizeXUnit="µm"/></OME>' })).toEqual({ mpp: 0.325 });
    expect(parseTiffResolution({ xResolution: 40000, yResolution: 40000, resolutionUnit: 3 })).toEqual({ mpp: 0.25 });
    expect(parseTiffResolution({ xResolution: 101600, resolutionUnit: 2 })).toEqual({ mpp: 0.25 });
    expect(parseTiffResolution({ xResolution: 72, resolutionUnit: 2 })).toEqual({}); // 352 µm: a default, not a scan
  });

  it('converts YCbCr to RGB (JFIF)', () => {
    // Y 128, Cb 128, Cr 128 -> grey 128; Y 76, Cb 85, Cr 255 -> about pure red (255, 0, 0)
    expect(Array.from(ycbcrToRgb(Uint8Array.from([128, 128, 128, 76, 85, 255])))).toEqual([128, 128, 128, 254, 0, 0]);
  });
});
