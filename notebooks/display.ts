/**
 * Display helpers of the notebooks, for Deno's Jupyter kernel: RGB images as PNG, SVG plots,
 * and the attention map of a synthetic feature slide (which has patch coordinates but no
 * pixels) drawn with the library's `renderHeatmap` on a blank canvas.
 *
 * Everything here uses the public API of sasha-wsi and web APIs that Deno provides
 * (`CompressionStream`); copy the file next to your own notebooks to reuse it.
 *
 * @module
 */
import { InMemorySlideSource, renderHeatmap, type HeatmapConfig, type RgbImage } from 'sasha-wsi';
import { tumourClass, type SyntheticFeatureConfig, type SyntheticSlide } from 'sasha-wsi/synthetic';

/** CRC-32 (IEEE) of PNG chunks, table-driven. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC over type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes an RGB image (`width * height * 3` bytes) as a PNG: 8-bit RGB, each row with
 * filter 0, compressed with the zlib stream of `CompressionStream('deflate')`.
 *
 * @returns the PNG file's bytes.
 * @example
 * ```ts
 * const png = await encodePng({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
 * ```
 */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  const { width, height, data } = img;
  if (data.length !== width * height * 3) {
    throw new Error(`Expected ${width} x ${height} x 3 = ${width * height * 3} bytes of RGB, but got ${data.length}.`);
  }
  const raw = new Uint8Array(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * 3 * width, (y + 1) * 3 * width), y * (1 + 3 * width) + 1);
  const zlib = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', zlib), chunk('IEND', new Uint8Array(0))];
  const png = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    png.set(p, at);
    at += p.length;
  }
  return png;
}

/**
 * Shows an RGB image in the notebook as a PNG (a `display_data` output with `image/png`).
 * @example
 * ```ts
 * await showImage(await renderHeatmap(slide, res, { maxSide: 512 }));
 * ```
 */
export async function showImage(img: RgbImage): Promise<void> {
  await Deno.jupyter.display(Deno.jupyter.image(await encodePng(img)));
}

/**
 * Shows SVG text in the notebook (a `display_data` output with `image/svg+xml`), e.g. a
 * `lineChartSvg` plot.
 * @example
 * ```ts
 * await showSvg(lineChartSvg({ title: 'loss', xLabel: 'epoch', yLabel: 'loss', series: [{ name: 'train', x: [1, 2], y: [0.7, 0.4] }] }));
 * ```
 */
export async function showSvg(svg: string): Promise<void> {
  await Deno.jupyter.display({ 'image/svg+xml': svg }, { raw: true });
}

/** Options of {@link syntheticSlideHeatmap}. */
export interface SyntheticHeatmapOptions {
  /** Attention (or any score) per patch, `[N]`; default: the share of tumour sub-patches (the ground truth). */
  attention?: ArrayLike<number>;
  /** Patches zoomed into, in order (outlined and numbered). Default none. */
  visited?: readonly number[];
  /** Outline the patches that hold tumour sub-patches (in green). Default true. */
  outlineTumour?: boolean;
  /** Side of a patch in pixels. Default 24. */
  cell?: number;
  /** Further settings of `renderHeatmap` (colour map, scale, opacity, number size). */
  heatmap?: Partial<HeatmapConfig>;
}

/**
 * Draws a synthetic feature slide's patches on a light grey canvas (one `cell`-pixel square
 * per patch, at its grid position) coloured by `attention` with `renderHeatmap`, with the
 * zoomed patches outlined and numbered in visit order and the patches holding tumour
 * outlined in green.
 *
 * @param slide a slide of `syntheticSlide` / `generateSyntheticCohort` (its `coords` and `truth`).
 * @param config the cohort's settings (`dataset.config`): patch side and tissue types.
 * @returns the RGB image, `gridCols * cell` x `gridRows * cell` pixels.
 * @example
 * ```ts
 * await showImage(await syntheticSlideHeatmap(slide, dataset.config, { attention, visited }));
 * ```
 */
export async function syntheticSlideHeatmap(
  slide: SyntheticSlide,
  config: Pick<SyntheticFeatureConfig, 'patchSizeLevel0' | 'numTissueTypes'>,
  options: SyntheticHeatmapOptions = {},
): Promise<RgbImage> {
  const { n, k, truth } = slide;
  const cell = options.cell ?? 24;
  const tumour = tumourClass(config);
  const tumourShare = Array.from({ length: n }, (_, i) => truth.subPatchClass.subarray(i * k, (i + 1) * k).filter((c) => c >= tumour).length / k);
  const coords = Int32Array.from(slide.coords, (v) => (v / config.patchSizeLevel0) * cell);
  const width = truth.gridCols * cell;
  const height = truth.gridRows * cell;
  const canvas = InMemorySlideSource.fromImage({ width, height, data: new Uint8Array(width * height * 3).fill(235) }, { levels: 1 });
  const square = (i: number) => {
    const [x, y] = [coords[2 * i], coords[2 * i + 1]];
    return [x, y, x + cell, y, x + cell, y + cell, x, y + cell];
  };
  const outlines = (options.outlineTumour ?? true) ? tumourShare.flatMap((s, i) => (s > 0 ? [square(i)] : [])) : [];
  return renderHeatmap(
    canvas,
    { coords, attention: options.attention ?? tumourShare, visited: options.visited ?? [], patchSizeLevel0: cell, outlines },
    // the ground truth is a share (linear colours); attention is shown by percentile, as CLAM's heatmaps
    { alpha: 1, lineWidth: 2, numberScale: 2, scale: options.attention ? 'percentile' : 'linear', ...options.heatmap },
  );
}
