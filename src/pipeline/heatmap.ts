/**
 * Attention heatmaps over a slide thumbnail: the final state's attention over the patches as a
 * colour map blended onto a low-resolution level, and the patches zoomed into outlined and
 * numbered in the order visited. Renders RGB bytes (browser-safe); `writeHeatmap` in
 * `sasha-wsi/node` writes them as a PNG.
 *
 * @packageDocumentation
 */
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { describeLevels, type RgbImage, type SlideSource } from '../wsi/slide_source.js';

/**
 * Colour maps of {@link renderHeatmap}: `'jet'` (CLAM's heatmaps) or `'viridis'`
 * (perceptually uniform, readable in grey).
 * @example
 * ```ts
 * await renderHeatmap(slide, res, { colormap: 'viridis' });
 * ```
 * @category Pipeline
 */
export type HeatmapColormap = 'jet' | 'viridis';

/**
 * Settings of {@link renderHeatmap}; defaults in {@link DEFAULT_HEATMAP_CONFIG}.
 * @example
 * ```ts
 * const config: Partial<HeatmapConfig> = { maxSide: 1024, scale: 'linear', alpha: 0.4, outlineColor: [255, 0, 255] };
 * ```
 * @category Pipeline
 */
export interface HeatmapConfig {
  /**
   * The thumbnail is the highest-resolution level whose longer side is at most this many
   * pixels (the lowest-resolution level when none is that small).
   */
  maxSide: number;
  /** A thumbnail level with more pixels than this is refused (the slide lacks small levels). */
  maxPixels: number;
  /** Colour map of the attention. */
  colormap: HeatmapColormap;
  /**
   * How attention becomes a colour: `'percentile'` (the rank of each patch among the N, as
   * CLAM's heatmaps; spreads the colours evenly) or `'linear'` (min to max).
   */
  scale: 'percentile' | 'linear';
  /** Opacity of the colour over the thumbnail, in [0, 1]. */
  alpha: number;
  /** Width of the outlines of zoomed patches, in thumbnail pixels (0: no outlines). */
  lineWidth: number;
  /** Outline and number colour, RGB. */
  outlineColor: [number, number, number];
  /** Colour of the annotation outlines ({@link HeatmapData.outlines}), RGB. */
  annotationColor: [number, number, number];
  /** Number the zoomed patches in the order visited. */
  numbers: boolean;
  /** Size of a digit's pixel in thumbnail pixels (0: from the patch size, at least 1). */
  numberScale: number;
  /** Rows read from the slide per request (bounds the memory of a read). */
  stripRows: number;
}

/**
 * Defaults of {@link HeatmapConfig}: a thumbnail of at most 2048 pixels a side, jet colours by
 * percentile at half opacity, black 2-pixel outlines, numbers on.
 * @example
 * ```ts
 * DEFAULT_HEATMAP_CONFIG.maxSide; // 2048
 * ```
 * @category Pipeline
 */
export const DEFAULT_HEATMAP_CONFIG: Readonly<HeatmapConfig> = Object.freeze({
  maxSide: 2048, // a screen-sized thumbnail; a CAMELYON16 slide's level 6 or 7
  maxPixels: 64 * 2 ** 20, // 64 Mpixel (192 MB of RGB): never a full-resolution level of a real slide
  colormap: 'jet' as HeatmapColormap, // the colour map of CLAM's attention heatmaps (docs/reference-code.md §13.3)
  scale: 'percentile' as const, // CLAM's heatmaps convert scores to percentiles
  alpha: 0.5,
  lineWidth: 2,
  outlineColor: [0, 0, 0] as [number, number, number],
  annotationColor: [0, 170, 0] as [number, number, number],
  numbers: true,
  numberScale: 0,
  stripRows: 512,
});

/**
 * Resolves a partial {@link HeatmapConfig} over {@link DEFAULT_HEATMAP_CONFIG}.
 * @returns a frozen, complete config.
 * @throws ValueError naming the bad key.
 * @example
 * ```ts
 * resolveHeatmapConfig({ alpha: 0.3 }).colormap; // 'jet'
 * resolveHeatmapConfig({ alpha: 2 });            // ValueError: Expected HeatmapConfig.alpha ...
 * ```
 * @category Pipeline
 */
export function resolveHeatmapConfig(config: Partial<HeatmapConfig> = {}): Readonly<HeatmapConfig> {
  const name = 'HeatmapConfig';
  return resolveConfig(name, DEFAULT_HEATMAP_CONFIG, config, (c) => {
    checkNumber(name, c, 'maxSide', { min: 1, integer: true });
    checkNumber(name, c, 'maxPixels', { min: 1 });
    checkOneOf(name, c, 'colormap', ['jet', 'viridis']);
    checkOneOf(name, c, 'scale', ['percentile', 'linear']);
    checkNumber(name, c, 'alpha', { min: 0, max: 1 });
    checkNumber(name, c, 'lineWidth', { min: 0, integer: true });
    checkNumber(name, c, 'numberScale', { min: 0, integer: true });
    checkNumber(name, c, 'stripRows', { min: 1, integer: true });
    for (const key of ['outlineColor', 'annotationColor'] as const) {
      const col = c[key];
      if (!Array.isArray(col) || col.length !== 3 || !col.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
        throw new ValueError(`Expected HeatmapConfig.${key} to be [r, g, b] with integers in [0, 255], but got ${JSON.stringify(col)}.`);
      }
    }
  });
}

/**
 * What a heatmap is drawn from: a {@link SlideAnalysis}, or the same fields read back from its
 * JSON with {@link heatmapDataFromJson}.
 * @example
 * ```ts
 * const data: HeatmapData = { coords: new Int32Array([0, 0, 512, 0]), attention: [0.3, 0.7], visited: [1], patchSizeLevel0: 512 };
 * ```
 * @category Pipeline
 */
export interface HeatmapData {
  /** Level-0 corners of the N patches, `[N, 2]` row-major. */
  coords: ArrayLike<number>;
  /** Attention of each patch, `[N]`. */
  attention: ArrayLike<number>;
  /** Indices of the patches zoomed into, in order. */
  visited: readonly number[];
  /** Side of a patch in level-0 pixels. */
  patchSizeLevel0: number;
  /**
   * Closed outlines to draw over the heatmap, e.g. the tumour annotations: each a flat list
   * `[x0, y0, x1, y1, ...]` of level-0 vertices (the last joins the first).
   */
  outlines?: ReadonlyArray<ArrayLike<number>>;
}

/**
 * A rendered heatmap: RGB bytes `[height, width, 3]` of the thumbnail level, and that level's
 * downsamples (a level-0 point (x, y) is at pixel (x / downsampleX, y / downsampleY)).
 * @example
 * ```ts
 * const img: Heatmap = await renderHeatmap(slide, res);
 * img.data.length === img.width * img.height * 3; // true
 * ```
 * @category Pipeline
 */
export interface Heatmap extends RgbImage {
  /** The slide level used as thumbnail. */
  level: number;
  /** Its downsample (level-0 pixels per thumbnail pixel, per axis). */
  downsampleX: number;
  downsampleY: number;
}

/**
 * The level {@link renderHeatmap} draws on: the highest-resolution level whose longer side is at
 * most `maxSide`, else the lowest-resolution level.
 * @param source the slide's levels and name.
 * @param maxSide the longest side wanted, in pixels.
 * @param maxPixels refuse a level with more pixels than this.
 * @returns a level index.
 * @throws ValueError when that level has more than `maxPixels` pixels.
 * @example
 * ```ts
 * // levels 1024 x 768, 512 x 384, 256 x 192
 * thumbnailLevel(slide, 600); // 1
 * thumbnailLevel(slide, 100); // 2 (none fits: the smallest)
 * ```
 * @category Pipeline
 */
export function thumbnailLevel(source: Pick<SlideSource, 'levels' | 'name'>, maxSide: number, maxPixels = DEFAULT_HEATMAP_CONFIG.maxPixels): number {
  const { levels } = source;
  let level = levels.length - 1;
  for (let i = 0; i < levels.length; i++) {
    if (Math.max(levels[i].width, levels[i].height) <= maxSide) {
      level = i;
      break;
    }
  }
  const l = levels[level];
  if (l.width * l.height > maxPixels) {
    throw new ValueError(
      `Slide '${source.name}' has no level small enough for a thumbnail (${describeLevels(levels)}; the smallest is ${l.width} x ${l.height}). ` +
        'Write the slide as a full pyramid (vips tiffsave --pyramid), or raise maxPixels.',
    );
  }
  return level;
}

/** Anchor colours of the colour maps, evenly spaced on [0, 1]. */
const COLORMAPS: Record<HeatmapColormap, readonly (readonly [number, number, number])[]> = {
  // matplotlib 'jet': dark blue, blue, cyan, yellow, red, dark red
  jet: [
    [0, 0, 128],
    [0, 0, 255],
    [0, 255, 255],
    [255, 255, 0],
    [255, 0, 0],
    [128, 0, 0],
  ],
  // matplotlib 'viridis' at 0, 0.25, 0.5, 0.75, 1
  viridis: [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ],
};

/**
 * The colour of `t` in [0, 1] on a colour map (piecewise-linear between its anchors; `t` is
 * clamped to [0, 1], a non-finite `t` counts as 0).
 * @returns `[r, g, b]` integers in [0, 255].
 * @example
 * ```ts
 * colormapColor(0);         // [0, 0, 128]   (jet: dark blue)
 * colormapColor(0.5);       // [128, 255, 128] (halfway between cyan and yellow)
 * colormapColor(1);         // [128, 0, 0]   (dark red)
 * ```
 * @category Pipeline
 */
export function colormapColor(t: number, map: HeatmapColormap = 'jet'): [number, number, number] {
  const anchors = COLORMAPS[map];
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(x));
  const f = x - i;
  const a = anchors[i];
  const b = anchors[i + 1];
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
}

/**
 * Scores in [0, 1]: the percentile rank `rank / (N - 1)` (ties share their mean rank), or
 * `(a - min) / (max - min)`. A single patch, or equal scores, give 0.5.
 * @param scores attention `[N]`.
 * @returns a new array `[N]`.
 * @example
 * ```ts
 * normalizeScores([0.1, 0.5, 0.2, 0.2], 'percentile'); // [0, 1, 0.5, 0.5]
 * normalizeScores([1, 3, 2], 'linear');                 // [0, 1, 0.5]
 * ```
 * @category Pipeline
 */
export function normalizeScores(scores: ArrayLike<number>, scale: 'percentile' | 'linear'): Float32Array {
  const n = scores.length;
  const out = new Float32Array(n);
  if (n === 0) return out;
  if (scale === 'linear') {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      lo = Math.min(lo, scores[i]);
      hi = Math.max(hi, scores[i]);
    }
    for (let i = 0; i < n; i++) out[i] = hi > lo ? (scores[i] - lo) / (hi - lo) : 0.5;
    return out;
  }
  if (n === 1) return out.fill(0.5);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  for (let s = 0; s < n; ) {
    let e = s;
    while (e + 1 < n && scores[order[e + 1]] === scores[order[s]]) e++;
    const rank = (s + e) / 2 / (n - 1);
    for (let j = s; j <= e; j++) out[order[j]] = rank;
    s = e + 1;
  }
  return out;
}

/** 3 x 5 bitmaps of the digits 0-9, row by row. */
const DIGITS = [
  '111101101101111',
  '010110010010111',
  '111001111100111',
  '111001111001111',
  '101101111001001',
  '111100111001111',
  '111100111101111',
  '111001001001001',
  '111101111101111',
  '111101111001111',
];

/** Rectangle `[x0, x1) x [y0, y1)` in thumbnail pixels of a patch. */
function patchBox(x: number, y: number, side0: number, dsx: number, dsy: number, w: number, h: number): [number, number, number, number] {
  const x0 = Math.max(0, Math.floor(x / dsx));
  const y0 = Math.max(0, Math.floor(y / dsy));
  const x1 = Math.min(w, Math.max(x0 + 1, Math.floor((x + side0) / dsx)));
  const y1 = Math.min(h, Math.max(y0 + 1, Math.floor((y + side0) / dsy)));
  return [x0, y0, x1, y1];
}

function fillRect(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: readonly number[]): void {
  const { width: w, height: h, data } = img;
  for (let y = Math.max(0, y0); y < Math.min(h, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(w, x1); x++) {
      const o = (y * w + x) * 3;
      data[o] = c[0];
      data[o + 1] = c[1];
      data[o + 2] = c[2];
    }
  }
}

/** Draws the closed polygon `pts` (thumbnail pixels, flat x, y) with lines `lw` pixels wide. */
function drawPolygon(img: RgbImage, pts: ArrayLike<number>, lw: number, c: readonly number[]): void {
  const m = Math.floor(pts.length / 2);
  const half = Math.floor(lw / 2);
  for (let i = 0; i < m; i++) {
    const ax = pts[2 * i];
    const ay = pts[2 * i + 1];
    const bx = pts[2 * ((i + 1) % m)];
    const by = pts[2 * ((i + 1) % m) + 1];
    const steps = Math.max(1, Math.ceil(2 * Math.max(Math.abs(bx - ax), Math.abs(by - ay))));
    for (let t = 0; t <= steps; t++) {
      const x = Math.round(ax + ((bx - ax) * t) / steps) - half;
      const y = Math.round(ay + ((by - ay) * t) / steps) - half;
      fillRect(img, x, y, x + lw, y + lw, c);
    }
  }
}

/** Draws `text` (digits) at (x, y) on a white box, `s` pixels per font pixel. */
function drawNumber(img: RgbImage, text: string, x: number, y: number, s: number, color: readonly number[]): void {
  const pad = s;
  const boxW = text.length * 4 * s - s + 2 * pad;
  const boxH = 5 * s + 2 * pad;
  fillRect(img, x, y, x + boxW, y + boxH, [255, 255, 255]);
  for (let c = 0; c < text.length; c++) {
    const bits = DIGITS[text.charCodeAt(c) - 48];
    for (let r = 0; r < 5; r++) {
      for (let q = 0; q < 3; q++) {
        if (bits[r * 3 + q] === '1') {
          const px = x + pad + (c * 4 + q) * s;
          const py = y + pad + r * s;
          fillRect(img, px, py, px + s, py + s, color);
        }
      }
    }
  }
}

/**
 * Renders the attention heatmap of an analysed slide on a thumbnail level.
 *
 * Each patch's rectangle is blended with its colour: `out = (1 - alpha) thumb + alpha
 * colormap(score)`, with `score` the percentile rank (or min-max scaling) of its attention.
 * The annotation outlines (`data.outlines`, e.g. tumour polygons) are drawn over the colours
 * in `annotationColor`; the zoomed patches are then outlined (`lineWidth` pixels inside the
 * rectangle) and numbered 1, 2, ... in the order visited (digits on a white box at the
 * top-left corner). The thumbnail is read in strips of `stripRows` rows; only that level is
 * ever read.
 *
 * @param source the slide (the one analysed); not closed.
 * @param data the analysis (or its JSON): coordinates, attention, visited, patch side.
 * @returns the image (the thumbnail level's size) with its level and downsamples.
 * @throws ShapeError when the attention and coordinates disagree; ValueError when the slide
 *   has no small level.
 * @example
 * ```ts
 * const res = await analyzeSlide(model, slide, { encoder });
 * const img = await renderHeatmap(slide, res);   // { width, height, data, level }
 * await writeHeatmap('out/slide.png', slide, res); // sasha-wsi/node: the same, as a PNG
 * ```
 * @category Pipeline
 */
export async function renderHeatmap(source: SlideSource, data: HeatmapData, config: Partial<HeatmapConfig> = {}): Promise<Heatmap> {
  const c = resolveHeatmapConfig(config);
  const n = data.attention.length;
  if (data.coords.length !== 2 * n) {
    throw new ShapeError(`Expected coords [N, 2] for the N = ${n} attention values, but got ${data.coords.length} values.`);
  }
  for (const i of data.visited) {
    if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new ValueError(`Expected visited patch indices in [0, ${n}), but got ${i}.`);
  }
  if (!(data.patchSizeLevel0 > 0)) throw new ValueError(`Expected patchSizeLevel0 > 0, but got ${data.patchSizeLevel0}.`);
  const level = thumbnailLevel(source, c.maxSide, c.maxPixels);
  const { width: w, height: h } = source.levels[level];
  const dsx = source.levels[0].width / w;
  const dsy = source.levels[0].height / h;
  const img: Heatmap = { width: w, height: h, data: new Uint8Array(w * h * 3), level, downsampleX: dsx, downsampleY: dsy };
  const ds = source.levels[level].downsample;
  for (let y = 0; y < h; y += c.stripRows) {
    const rows = Math.min(c.stripRows, h - y);
    // ceil: the level-0 row maps back to row y whatever the rounding of ds
    const strip = await source.readRegion(level, 0, Math.ceil(y * ds - 1e-9), w, rows);
    img.data.set(strip, y * w * 3);
  }

  // Attention colours, blended over each patch.
  const scores = normalizeScores(data.attention, c.scale);
  const side = data.patchSizeLevel0;
  const a = c.alpha;
  for (let i = 0; i < n; i++) {
    const [x0, y0, x1, y1] = patchBox(data.coords[2 * i], data.coords[2 * i + 1], side, dsx, dsy, w, h);
    const col = colormapColor(scores[i], c.colormap);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const o = (y * w + x) * 3;
        for (let ch = 0; ch < 3; ch++) img.data[o + ch] = Math.round((1 - a) * img.data[o + ch] + a * col[ch]);
      }
    }
  }

  // Annotation outlines, then the zoomed patches' outlines, then numbers on top.
  for (const poly of data.outlines ?? []) {
    const pts = Array.from(poly, (v, j) => (j % 2 === 0 ? v / dsx : v / dsy));
    drawPolygon(img, pts, Math.max(1, c.lineWidth), c.annotationColor);
  }
  const boxes = data.visited.map((i) => patchBox(data.coords[2 * i], data.coords[2 * i + 1], side, dsx, dsy, w, h));
  const lw = c.lineWidth;
  if (lw > 0) {
    for (const [x0, y0, x1, y1] of boxes) {
      fillRect(img, x0, y0, x1, Math.min(y1, y0 + lw), c.outlineColor);
      fillRect(img, x0, Math.max(y0, y1 - lw), x1, y1, c.outlineColor);
      fillRect(img, x0, y0, Math.min(x1, x0 + lw), y1, c.outlineColor);
      fillRect(img, Math.max(x0, x1 - lw), y0, x1, y1, c.outlineColor);
    }
  }
  if (c.numbers) {
    boxes.forEach(([x0, y0, x1], order) => {
      const s = c.numberScale > 0 ? c.numberScale : Math.max(1, Math.floor((x1 - x0) / 16));
      drawNumber(img, String(order + 1), x0 + lw, y0 + lw, s, c.outlineColor);
    });
  }
  return img;
}
