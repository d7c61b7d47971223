/**
 * Heatmap PNGs (Node): {@link renderHeatmap} on a thumbnail level of the slide, encoded by
 * sharp and written atomically.
 *
 * @packageDocumentation
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DataError } from '../core/errors.js';
import { renderHeatmap, type Heatmap, type HeatmapConfig, type HeatmapData } from '../pipeline/heatmap.js';
import type { SlideSource } from '../wsi/slide_source.js';
import { commitTempFile, tempPathFor } from './io/file_io.js';
import { loadSharp } from './open_slide.js';

/**
 * Writes the attention heatmap of an analysed slide as a PNG: the thumbnail level (the
 * highest-resolution level whose longer side is at most `maxSide`, 2048 by default) with the
 * attention blended as a colour map, and the zoomed patches outlined and numbered in the order
 * visited. Only that level is read (in strips). Written to a temporary name, then renamed.
 *
 * @param file destination `.png` (folders are created).
 * @param source the analysed slide; not closed.
 * @param data the analysis (or its JSON fields `coords`, `attention`, `visited`, `patchSizeLevel0`).
 * @returns the image's size, level and downsamples (the pixels are not kept).
 * @throws DataError when sharp is not installed.
 * @example
 * ```ts
 * const res = await analyzeSlide(model, slide, { encoder });
 * await writeHeatmap('out/heatmaps/test_001.png', slide, res);
 * ```
 * @category Node
 */
export async function writeHeatmap(
  file: string,
  source: SlideSource,
  data: HeatmapData,
  config: Partial<HeatmapConfig> = {},
): Promise<Omit<Heatmap, 'data'>> {
  const sharp = await loadSharp();
  if (!sharp) throw new DataError('Writing heatmap PNGs needs sharp: npm install sharp.');
  const img = await renderHeatmap(source, data, config);
  await mkdir(dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  try {
    await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), { raw: { width: img.width, height: img.height, channels: 3 }, limitInputPixels: false })
      .png()
      .toFile(tmp);
    commitTempFile(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const { data: _pixels, ...info } = img;
  return info;
}
