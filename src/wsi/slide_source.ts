/**
 * Slide sources: the pixel pyramid of a whole-slide image, whatever stores it.
 *
 * A {@link SlideSource} has `levels` (level 0 is full resolution), the micrometres per pixel of
 * level 0 where the file says so, and `readRegion`, which returns RGB bytes. Coordinates follow
 * OpenSlide: a region's top-left corner is given in level-0 pixels, its size in pixels of the
 * level read. Pixels outside the image come back as the background value (white by default).
 *
 * This file holds the interface, level selection by index, downsample or magnification, and an
 * in-memory implementation (for tests, browsers and images already decoded).
 *
 * @packageDocumentation
 */
import { DataError, ValueError, assert } from '../core/errors.js';

/** One level of a slide pyramid. @category WSI */
export interface SlideLevel {
  /** Width of the level in pixels. */
  readonly width: number;
  /** Height of the level in pixels. */
  readonly height: number;
  /**
   * Level-0 pixels per pixel of this level: the mean of the x and y ratios, as OpenSlide's
   * `level_downsamples` (1 for level 0).
   */
  readonly downsample: number;
}

/**
 * A whole-slide image as a pyramid of RGB levels.
 *
 * Implementations: {@link InMemorySlideSource}, {@link TiffSlideSource} (pyramidal TIFF and
 * Aperio SVS through geotiff; `openSlide` in `sasha-wsi/node` opens one from disk).
 * @category WSI
 */
export interface SlideSource {
  /** Name used in messages (file name or slide id). */
  readonly name: string;
  /** Levels from full resolution (0) down; each smaller than the one before. */
  readonly levels: readonly SlideLevel[];
  /** Micrometres per level-0 pixel (mean of x and y), when the file records it. */
  readonly mpp?: number;
  /** Objective magnification of level 0 (Aperio `AppMag`), when the file records it. */
  readonly magnification?: number;
  /** What the reader found odd but readable when it opened the slide (empty tiles, ...); callers report these. */
  readonly warnings?: readonly string[];
  /**
   * Reads a region as interleaved RGB bytes, row-major: `out[(j * width + i) * 3 + c]`.
   *
   * @param level the pyramid level to read.
   * @param x level-0 x of the region's top-left corner (OpenSlide convention).
   * @param y level-0 y of the region's top-left corner.
   * @param width width in pixels of `level`.
   * @param height height in pixels of `level`.
   * @returns a new `Uint8Array` of `width * height * 3` bytes, owned by the caller. Pixels
   *   outside the image hold the source's background value.
   */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  /** Releases files, workers and caches. */
  close?(): void | Promise<void>;
}

/**
 * Position of level-0 coordinate `v` in a level of downsample `ds`: `floor(v / ds)`, with values
 * within 1e-6 of an integer rounded to it (downsamples read from files are often 3.9999...).
 * @category WSI
 */
export function toLevelCoord(v: number, ds: number): number {
  const q = v / ds;
  const r = Math.round(q);
  return Math.abs(q - r) < 1e-6 ? r : Math.floor(q);
}

/**
 * Builds {@link SlideLevel}s from level sizes: `downsample = (w0 / w + h0 / h) / 2`.
 * @param sizes `[width, height]` of each level, level 0 first.
 * @category WSI
 */
export function levelsFromSizes(sizes: readonly (readonly [number, number])[]): SlideLevel[] {
  assert(sizes.length > 0, () => 'Expected at least one level, but got none.');
  const [w0, h0] = sizes[0];
  return sizes.map(([w, h], i) => {
    assert(
      Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0,
      () => `Expected level ${i} to have a positive integer size, but got ${w} x ${h}.`,
    );
    return Object.freeze({ width: w, height: h, downsample: i === 0 ? 1 : (w0 / w + h0 / h) / 2 });
  });
}

/** Throws a {@link ValueError} naming the slide's levels when `level` is not one of them. */
export function checkLevel(source: Pick<SlideSource, 'levels' | 'name'>, level: number, what = 'level'): void {
  if (!(Number.isInteger(level) && level >= 0 && level < source.levels.length)) {
    throw new ValueError(
      `Expected ${what} to be an integer in [0, ${source.levels.length - 1}] for slide '${source.name}', but got ${level}. ` +
        `The slide has ${describeLevels(source.levels)}.` +
        (source.levels.length === 1
          ? ' It has a single level: write a pyramid with `vips tiffsave in out.tif --tile --pyramid --compression jpeg` (docs/guides/slides.md).'
          : ''),
    );
  }
}

/** `3 levels (downsamples 1, 4, 16)`: for messages. */
export function describeLevels(levels: readonly SlideLevel[]): string {
  const ds = levels.map((l) => +l.downsample.toPrecision(4)).join(', ');
  return `${levels.length} level${levels.length === 1 ? '' : 's'} (downsamples ${ds})`;
}

/**
 * The level to read for a wanted downsample, as OpenSlide's `get_best_level_for_downsample`:
 * the lowest-resolution level whose downsample does not exceed `downsample` (level 0 when even
 * level 0 is coarser). A relative tolerance of 1e-3 absorbs rounding in stored downsamples.
 *
 * @example
 * ```ts
 * bestLevelForDownsample(levelsFromSizes([[4096, 4096], [1024, 1024], [256, 256]]), 64); // 2 (downsample 16)
 * ```
 * @category WSI
 */
export function bestLevelForDownsample(levels: readonly SlideLevel[], downsample: number): number {
  assert(downsample > 0, () => `Expected downsample to be > 0, but got ${downsample}.`);
  let best = 0;
  for (let i = 1; i < levels.length; i++) {
    if (levels[i].downsample <= downsample * (1 + 1e-3)) best = i;
  }
  return best;
}

/**
 * Micrometres per pixel of a level: `mpp(level 0) * downsample`, or undefined when the slide
 * does not record its mpp.
 * @category WSI
 */
export function levelMpp(source: Pick<SlideSource, 'levels' | 'mpp'>, level: number): number | undefined {
  return source.mpp === undefined ? undefined : source.mpp * source.levels[level].downsample;
}

/**
 * The usual objective magnification for a pixel size: `10 / mpp` (0.25 µm is "40x", 0.5 µm is
 * "20x"). Scanners differ slightly; treat the result as a label.
 * @category WSI
 */
export function magnificationForMpp(mpp: number): number {
  return 10 / mpp;
}

/** A level chosen by index, by micrometres per pixel, or by objective magnification. */
export interface LevelSpec {
  /** Pyramid level index. */
  level?: number;
  /** Wanted micrometres per pixel; the level closest in log scale is taken. */
  mpp?: number;
  /** Wanted objective magnification (20 = 0.5 µm/px); converted with `mpp = 10 / magnification`. */
  magnification?: number;
}

/**
 * Resolves a {@link LevelSpec} to a level index. By mpp (or magnification), the level whose mpp
 * is closest in log scale is chosen; a level further than `tolerance` (relative) from the wanted
 * mpp is an error that lists the slide's mpps, since patches would then not show the tissue at
 * the scale asked for.
 *
 * @param tolerance relative mpp mismatch allowed (default 0.25).
 * @returns the level index.
 * @throws ValueError when the slide has no mpp, the level does not exist, or no level is close.
 * @example
 * ```ts
 * resolveLevel(source, { mpp: 2 });     // on a 0.25 µm slide with 2x levels: level 3
 * resolveLevel(source, { level: 1 });   // 1
 * ```
 * @category WSI
 */
export function resolveLevel(source: Pick<SlideSource, 'levels' | 'mpp' | 'name'>, spec: LevelSpec, tolerance = 0.25): number {
  const given = [spec.level, spec.mpp, spec.magnification].filter((v) => v !== undefined).length;
  assert(given === 1, () => `Expected exactly one of level, mpp or magnification, but got ${JSON.stringify(spec)}.`);
  if (spec.level !== undefined) {
    checkLevel(source, spec.level);
    return spec.level;
  }
  const want = spec.mpp ?? 10 / (spec.magnification as number);
  assert(want > 0 && Number.isFinite(want), () => `Expected mpp to be a positive number, but got ${want}.`);
  if (source.mpp === undefined) {
    throw new ValueError(
      `Slide '${source.name}' does not record its pixel size (mpp), so a level cannot be chosen by mpp or magnification. ` +
        'Choose the level by index instead (--level / --lr-level, --hr-level).',
    );
  }
  let best = 0;
  let bestErr = Infinity;
  source.levels.forEach((_, i) => {
    const err = Math.abs(Math.log((levelMpp(source, i) as number) / want));
    if (err < bestErr) {
      bestErr = err;
      best = i;
    }
  });
  const got = levelMpp(source, best) as number;
  if (Math.abs(got / want - 1) > tolerance) {
    const all = source.levels.map((_, i) => +(levelMpp(source, i) as number).toPrecision(3)).join(', ');
    throw new ValueError(
      `Slide '${source.name}' has no level near ${want} µm/px (its levels have ${all} µm/px). ` +
        'Choose one of those, or a level by index.',
    );
  }
  return best;
}

/**
 * Copies the part of a source image that falls inside a destination region.
 *
 * The source is an interleaved image of `srcChannels` channels placed at (`srcX`, `srcY`) in the
 * destination's coordinate frame, where the destination region starts at (`dstX`, `dstY`) and is
 * `dstW x dstH` RGB. Only the first three source channels are copied (RGBA loses alpha; one
 * channel is replicated as grey).
 * @category WSI
 */
export function blitRgb(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  srcChannels: number,
  srcX: number,
  srcY: number,
  dst: Uint8Array,
  dstW: number,
  dstH: number,
  dstX: number,
  dstY: number,
): void {
  const x0 = Math.max(srcX, dstX);
  const y0 = Math.max(srcY, dstY);
  const x1 = Math.min(srcX + srcW, dstX + dstW);
  const y1 = Math.min(srcY + srcH, dstY + dstH);
  if (x1 <= x0 || y1 <= y0) return;
  const n = x1 - x0;
  for (let y = y0; y < y1; y++) {
    let si = ((y - srcY) * srcW + (x0 - srcX)) * srcChannels;
    let di = ((y - dstY) * dstW + (x0 - dstX)) * 3;
    if (srcChannels === 3) {
      dst.set(src.subarray(si, si + n * 3), di);
    } else if (srcChannels === 1) {
      for (let i = 0; i < n; i++, si++, di += 3) {
        const v = src[si];
        dst[di] = v;
        dst[di + 1] = v;
        dst[di + 2] = v;
      }
    } else {
      for (let i = 0; i < n; i++, si += srcChannels, di += 3) {
        dst[di] = src[si];
        dst[di + 1] = src[si + 1];
        dst[di + 2] = src[si + 2];
      }
    }
  }
}

/** One level of an {@link InMemorySlideSource}: RGB bytes, row-major. */
export interface RgbImage {
  width: number;
  height: number;
  /** `width * height * 3` bytes. */
  data: Uint8Array;
}

/** Options of {@link InMemorySlideSource}. */
export interface InMemorySlideOptions {
  /** Name used in messages (default `'in-memory slide'`). */
  name?: string;
  /** Micrometres per level-0 pixel. */
  mpp?: number;
  /** Value of pixels outside the image (default 255, white glass). */
  background?: number;
}

/**
 * A slide held in memory as a list of RGB levels. Useful in tests, in browsers (from a canvas)
 * and for images decoded by other means.
 *
 * @example
 * ```ts
 * const src = InMemorySlideSource.fromImage({ width: 1024, height: 768, data: rgb }, { levels: 3, mpp: 0.5 });
 * src.levels.map((l) => l.downsample); // [1, 2, 4]
 * const patch = await src.readRegion(1, 512, 256, 64, 64); // 64*64*3 bytes
 * ```
 * @category WSI
 */
export class InMemorySlideSource implements SlideSource {
  readonly name: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp?: number;
  private readonly images: readonly RgbImage[];
  private readonly background: number;

  /** @param images the levels, full resolution first; each `data` must hold `width * height * 3` bytes. */
  constructor(images: readonly RgbImage[], options: InMemorySlideOptions = {}) {
    images.forEach((im, i) => {
      if (im.data.length !== im.width * im.height * 3) {
        throw new DataError(
          `Expected level ${i} to hold ${im.width} x ${im.height} x 3 = ${im.width * im.height * 3} bytes, but got ${im.data.length}.`,
        );
      }
    });
    this.levels = levelsFromSizes(images.map((im) => [im.width, im.height] as const));
    for (let i = 1; i < this.levels.length; i++) {
      assert(
        this.levels[i].width < this.levels[i - 1].width || this.levels[i].height < this.levels[i - 1].height,
        () => `Expected each level to be smaller than the one before, but level ${i} is not.`,
      );
    }
    this.images = images;
    this.name = options.name ?? 'in-memory slide';
    this.mpp = options.mpp;
    this.background = options.background ?? 255;
  }

  /**
   * Builds a pyramid from one full-resolution image by 2x2 box averaging (rounded half up), as
   * libvips and OpenSlide-written pyramids do.
   * @param options.levels number of levels (default: halve while both sides stay >= 1).
   */
  static fromImage(image: RgbImage, options: InMemorySlideOptions & { levels?: number } = {}): InMemorySlideSource {
    const images: RgbImage[] = [image];
    const maxLevels = options.levels ?? Infinity;
    while (images.length < maxLevels) {
      const prev = images[images.length - 1];
      if (prev.width < 2 || prev.height < 2) break;
      images.push(halveRgb(prev));
    }
    return new InMemorySlideSource(images, options);
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    checkLevel(this, level);
    checkRegion(width, height);
    const ds = this.levels[level].downsample;
    const out = new Uint8Array(width * height * 3).fill(this.background);
    const im = this.images[level];
    blitRgb(im.data, im.width, im.height, 3, 0, 0, out, width, height, toLevelCoord(x, ds), toLevelCoord(y, ds));
    return out;
  }
}

/** Throws unless `width` and `height` are positive integers. */
export function checkRegion(width: number, height: number): void {
  assert(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `Expected the region size to be positive integers, but got ${width} x ${height}.`,
  );
}

/**
 * Halves an RGB image by 2x2 box averaging (`(a + b + c + d + 2) >> 2`). The output is
 * `floor(w / 2) x floor(h / 2)` (at least 1 x 1); an odd last row or column is dropped.
 * @category WSI
 */
export function halveRgb(im: RgbImage): RgbImage {
  const w = Math.max(1, Math.floor(im.width / 2));
  const h = Math.max(1, Math.floor(im.height / 2));
  const out = new Uint8Array(w * h * 3);
  const sw = im.width;
  const s = im.data;
  for (let y = 0; y < h; y++) {
    const y0 = Math.min(2 * y, im.height - 1);
    const y1 = Math.min(2 * y + 1, im.height - 1);
    for (let x = 0; x < w; x++) {
      const x0 = Math.min(2 * x, sw - 1);
      const x1 = Math.min(2 * x + 1, sw - 1);
      const a = (y0 * sw + x0) * 3;
      const b = (y0 * sw + x1) * 3;
      const c = (y1 * sw + x0) * 3;
      const d = (y1 * sw + x1) * 3;
      const o = (y * w + x) * 3;
      for (let k = 0; k < 3; k++) out[o + k] = (s[a + k] + s[b + k] + s[c + k] + s[d + k] + 2) >> 2;
    }
  }
  return { width: w, height: h, data: out };
}
