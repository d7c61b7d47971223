/**
 * Writes synthetic slides as real pyramidal TIFF files (through sharp / libvips), for tests,
 * examples and benchmarks.
 *
 * @packageDocumentation
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DataError } from '../core/errors.js';
import { generateSyntheticSlideImage, type SyntheticSlideImage, type SyntheticImageConfig } from '../wsi/synthetic/slide_image.js';
import { commitTempFile, tempPathFor } from './io/file_io.js';
import { loadSharp } from './open_slide.js';

/** How {@link writeSyntheticSlide} encodes the TIFF. @category WSI */
export interface SyntheticTiffOptions {
  /** Tile codec: `'jpeg'` (as scanners write) or `'none'` (exact pixels). Default `'jpeg'`. */
  compression?: 'jpeg' | 'none';
  /** JPEG quality (default 90). */
  quality?: number;
  /** Tile side in pixels (default 256). */
  tileSize?: number;
}

/** A synthetic slide written to disk. @category WSI */
export interface WrittenSyntheticSlide extends SyntheticSlideImage {
  /** Path of the TIFF file. */
  path: string;
}

/**
 * Generates a synthetic slide ({@link generateSyntheticSlideImage}) and writes it as a tiled,
 * pyramidal TIFF with 2x levels (libvips halves each level by 2 x 2 averaging until a level fits
 * in one tile) and its pixel size in the resolution tags. The file is written to a temporary
 * name and renamed.
 *
 * @param path destination `.tif` file (folders are created).
 * @param config slide content (size, regions, seed, mpp).
 * @returns the slide's pixels and ground truth, and the path.
 * @throws DataError when sharp is not installed.
 * @example
 * ```ts
 * const s = await writeSyntheticSlide('tmp/slide_0.tif', { seed: 0, numLesions: 2 });
 * const src = await openSlide(s.path);   // 4 levels, mpp 0.5
 * ```
 * @category WSI
 */
export async function writeSyntheticSlide(
  path: string,
  config: Partial<SyntheticImageConfig> = {},
  options: SyntheticTiffOptions = {},
): Promise<WrittenSyntheticSlide> {
  const slide = generateSyntheticSlideImage(config);
  await writeRgbTiff(path, slide.image.data, slide.image.width, slide.image.height, slide.config.mpp, options);
  return { ...slide, path };
}

/**
 * Writes interleaved RGB bytes as a tiled pyramidal TIFF (temporary name, then rename).
 * @param mpp micrometres per pixel, written as `XResolution = YResolution = 10000 / mpp` per cm.
 * @category WSI
 */
export async function writeRgbTiff(
  path: string,
  rgb: Uint8Array,
  width: number,
  height: number,
  mpp: number,
  options: SyntheticTiffOptions = {},
): Promise<void> {
  const sharp = await loadSharp();
  if (!sharp) throw new DataError('Writing TIFF slides needs sharp: npm install sharp.');
  const tile = options.tileSize ?? 256;
  const pxPerMm = 1000 / mpp;
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.length), {
      raw: { width, height, channels: 3 },
      limitInputPixels: false,
    })
      .tiff({
        tile: true,
        tileWidth: tile,
        tileHeight: tile,
        pyramid: true,
        compression: options.compression ?? 'jpeg',
        quality: options.quality ?? 90,
        xres: pxPerMm,
        yres: pxPerMm,
        resolutionUnit: 'cm',
      })
      .toFile(tmp);
    commitTempFile(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
