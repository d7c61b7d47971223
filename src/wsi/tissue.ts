/**
 * Tissue segmentation in the manner of CLAM: on a low-resolution level, median-blur the HSV
 * saturation, threshold it, close small gaps, then keep the tissue regions and holes that pass
 * area filters. Parameters and defaults are CLAM's (`create_patches_fp.py`), which the SASHA
 * reference uses unchanged.
 *
 * @packageDocumentation
 */
import { checkNumber, resolveConfig } from '../core/config.js';
import { ValueError } from '../core/errors.js';
import { connectedComponents, medianBlur, morphClose, rgbToSaturation, threshold } from './image_ops.js';
import { bestLevelForDownsample, checkLevel, type SlideSource } from './slide_source.js';

/** Parameters of {@link segmentTissue}. @category WSI */
export interface TissueConfig {
  /** Level to segment at; -1 picks the level closest to `segDownsample` (OpenSlide rule). */
  segLevel: number;
  /** Wanted downsample of the segmentation level when `segLevel` is -1. */
  segDownsample: number;
  /** Saturation threshold: a pixel is tissue when its median-blurred saturation exceeds it. */
  sthresh: number;
  /** Median blur kernel (odd). */
  mthresh: number;
  /** Morphological closing kernel; 0 disables closing. */
  close: number;
  /** Minimum tissue area, in reference patches of `refPatchSize`^2 level-0 pixels. */
  aT: number;
  /** Minimum hole area, in the same units. */
  aH: number;
  /** At most this many holes (the largest) are kept per tissue region. */
  maxNHoles: number;
  /** Side of the reference patch that `aT` and `aH` are measured in, in level-0 pixels. */
  refPatchSize: number;
  /** Refuse to segment a level with more pixels than this (CLAM skips such slides). */
  maxPixels: number;
}

/** CLAM's segmentation defaults, as the SASHA reference runs them. @category WSI */
export const DEFAULT_TISSUE_CONFIG: Readonly<TissueConfig> = Object.freeze({
  segLevel: -1, // docs/reference-code.md §13.2: seg_level -1 -> get_best_level_for_downsample(64)
  segDownsample: 64, // docs/reference-code.md §13.2
  sthresh: 8, // docs/reference-code.md §13.2; docs/reference-code.md §1.1
  mthresh: 7, // docs/reference-code.md §13.2: median blur on HSV saturation
  close: 4, // docs/reference-code.md §13.2
  aT: 100, // docs/reference-code.md §13.2: in 512 x 512 level-0 reference patches
  aH: 16, // docs/reference-code.md §13.2
  maxNHoles: 8, // docs/reference-code.md §13.2 (the README says 10; the code uses 8)
  refPatchSize: 512, // docs/reference-code.md §13.2
  maxPixels: 1e8, // docs/reference-code.md §13.2: larger segmentation levels are skipped
});

/**
 * CLAM's presets (`presets/*.csv`) over the defaults. `bwhBiopsy` suits small tissue pieces
 * (and small synthetic slides, whose tissue is far below the default 100 reference patches).
 * @category WSI
 */
export const TISSUE_PRESETS: Readonly<Record<'clam' | 'tcga' | 'bwhBiopsy' | 'bwhResection', Partial<TissueConfig>>> = Object.freeze({
  clam: {}, // create_patches_fp.py defaults
  tcga: { sthresh: 8, mthresh: 7, close: 4, aT: 16, aH: 4, maxNHoles: 8 }, // docs/reference-code.md §13.2 presets/tcga.csv
  bwhBiopsy: { sthresh: 15, mthresh: 11, close: 2, aT: 1, aH: 1, maxNHoles: 2 }, // presets/bwh_biopsy.csv
  bwhResection: { sthresh: 15, mthresh: 11, close: 4, aT: 100, aH: 16, maxNHoles: 8 }, // presets/bwh_resection.csv
});

/** Resolves a partial {@link TissueConfig} over the defaults, with range checks. */
export function resolveTissueConfig(config: Partial<TissueConfig> = {}): Readonly<TissueConfig> {
  return resolveConfig('TissueConfig', DEFAULT_TISSUE_CONFIG, config, (c) => {
    const n = 'TissueConfig';
    checkNumber(n, c, 'segLevel', { min: -1, integer: true });
    checkNumber(n, c, 'segDownsample', { min: 1 });
    checkNumber(n, c, 'sthresh', { min: 0, max: 255 });
    checkNumber(n, c, 'mthresh', { min: 1, integer: true });
    if (c.mthresh % 2 !== 1) throw new ValueError(`Expected TissueConfig.mthresh to be odd, but got ${c.mthresh}.`);
    checkNumber(n, c, 'close', { min: 0, integer: true });
    checkNumber(n, c, 'aT', { min: 0 });
    checkNumber(n, c, 'aH', { min: 0 });
    checkNumber(n, c, 'maxNHoles', { min: 0, integer: true });
    checkNumber(n, c, 'refPatchSize', { min: 1 });
    checkNumber(n, c, 'maxPixels', { min: 1 });
  });
}

/** A box in pixels of the segmentation level. */
export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One kept tissue region. @category WSI */
export interface TissueRegion {
  /** Tissue pixels of the region (its holes excluded), at the segmentation level. */
  area: number;
  /** Bounding box at the segmentation level. */
  box: PixelBox;
  /** The kept holes (glass inside the region): area and box at the segmentation level. */
  holes: { area: number; box: PixelBox }[];
}

/** Result of {@link segmentTissue}. @category WSI */
export interface TissueSegmentation {
  /** Level segmented. */
  level: number;
  /** Width of the masks (the level's width). */
  width: number;
  /** Height of the masks. */
  height: number;
  /** Level-0 pixels per mask pixel along x (`level0.width / width`). */
  downsampleX: number;
  /** Level-0 pixels per mask pixel along y. */
  downsampleY: number;
  /** Tissue mask: 1 inside kept regions, outside kept holes (small holes are filled). */
  mask: Uint8Array;
  /** Region index + 1 inside each kept region's outline (holes included), else 0. */
  regionMap: Int32Array;
  /** 1 inside kept holes. */
  holeMask: Uint8Array;
  /** Kept regions in raster order of their first pixel. */
  regions: TissueRegion[];
  /** Fraction of the level covered by `mask`. */
  tissueFraction: number;
  /** The resolved parameters. */
  config: Readonly<TissueConfig>;
}

const box = (b: [number, number, number, number]): PixelBox => ({ x: b[0], y: b[1], width: b[2] - b[0] + 1, height: b[3] - b[1] + 1 });

/**
 * Segments tissue in an RGB image of one level (the pure part of {@link segmentTissue}).
 *
 * Steps (CLAM `segmentTissue`): saturation `S` of HSV; `median(S, mthresh) > sthresh`;
 * closing with a `close x close` square; 8-connected tissue components and 4-connected glass
 * components (a glass component that does not touch the border is a hole of the tissue
 * component around it); keep a component when its tissue area exceeds
 * `aT * refPatchSize^2 / (dsx * dsy)`; keep its `maxNHoles` largest holes whose area exceeds
 * `aH * refPatchSize^2 / (dsx * dsy)`. Porting note: areas are pixel counts, where CLAM uses
 * `cv2.contourArea` of the traced outline (smaller by about half the perimeter).
 *
 * @param rgb `width * height * 3` bytes.
 * @param downsample level-0 pixels per image pixel (x and y), which scales `aT` and `aH`.
 * @returns masks, regions and the tissue fraction; `regions` is empty when nothing passes.
 * @category WSI
 */
export function segmentTissueImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  downsample: { x: number; y: number },
  config: Partial<TissueConfig> = {},
  level = 0,
): TissueSegmentation {
  const c = resolveTissueConfig(config);
  const n = width * height;
  if (rgb.length !== n * 3) throw new ValueError(`Expected ${n * 3} RGB bytes for ${width} x ${height}, but got ${rgb.length}.`);
  const sat = rgbToSaturation(rgb, n);
  const blurred = medianBlur(sat, width, height, c.mthresh);
  let bin = threshold(blurred, c.sthresh);
  if (c.close > 0) bin = morphClose(bin, width, height, c.close);

  const fg = connectedComponents(bin, width, height, 8, 1);
  const bg = connectedComponents(bin, width, height, 4, 0);
  const scale = (c.refPatchSize * c.refPatchSize) / (downsample.x * downsample.y);
  const minTissue = c.aT * scale;
  const minHole = c.aH * scale;

  // Holes of each tissue component: enclosed glass components, owned by the tissue pixel
  // just above their first pixel.
  const holesOf: number[][] = Array.from({ length: fg.count }, () => []);
  for (let h = 0; h < bg.count; h++) {
    if (bg.touchesBorder[h]) continue;
    const above = bg.first[h] - width;
    const owner = fg.labels[above] - 1;
    if (owner >= 0) holesOf[owner].push(h);
  }

  const keptComp = new Int32Array(fg.count + 1); // component label -> region index + 1
  const keptHole = new Uint8Array(bg.count + 1); // glass label -> 1 when kept as a hole
  const fillOwner = new Int32Array(bg.count + 1); // glass label -> region index + 1 (any hole)
  const regions: TissueRegion[] = [];
  for (let comp = 0; comp < fg.count; comp++) {
    const area = fg.areas[comp];
    if (area === 0 || !(area > minTissue)) continue;
    const ri = regions.length;
    keptComp[comp + 1] = ri + 1;
    for (const h of holesOf[comp]) fillOwner[h + 1] = ri + 1;
    const holes = holesOf[comp]
      .slice()
      .sort((a, b) => bg.areas[b] - bg.areas[a])
      .slice(0, c.maxNHoles)
      .filter((h) => bg.areas[h] > minHole);
    for (const h of holes) keptHole[h + 1] = 1;
    regions.push({
      area: area + holesOf[comp].filter((h) => !keptHole[h + 1]).reduce((s, h) => s + bg.areas[h], 0),
      box: box(fg.boxes[comp]),
      holes: holes.map((h) => ({ area: bg.areas[h], box: box(bg.boxes[h]) })),
    });
  }

  const mask = new Uint8Array(n);
  const regionMap = new Int32Array(n);
  const holeMask = new Uint8Array(n);
  let tissue = 0;
  for (let i = 0; i < n; i++) {
    const f = fg.labels[i];
    if (f !== 0) {
      const r = keptComp[f];
      if (r !== 0) {
        regionMap[i] = r;
        mask[i] = 1;
        tissue++;
      }
      continue;
    }
    const g = bg.labels[i];
    const r = fillOwner[g];
    if (r === 0) continue;
    regionMap[i] = r;
    if (keptHole[g]) holeMask[i] = 1;
    else {
      mask[i] = 1;
      tissue++;
    }
  }
  return {
    level,
    width,
    height,
    downsampleX: downsample.x,
    downsampleY: downsample.y,
    mask,
    regionMap,
    holeMask,
    regions,
    tissueFraction: n > 0 ? tissue / n : 0,
    config: c,
  };
}

/**
 * Segments the tissue of a slide at a low-resolution level (CLAM's method and defaults; see
 * {@link segmentTissueImage} for the steps).
 *
 * @param config parameters over {@link DEFAULT_TISSUE_CONFIG}; a preset from
 *   {@link TISSUE_PRESETS} can be spread in.
 * @returns the segmentation; `regions` is empty when the slide shows no tissue (callers decide
 *   whether that is an error).
 * @throws ValueError when the segmentation level has more than `maxPixels` pixels.
 * @example
 * ```ts
 * const seg = await segmentTissue(slide, { ...TISSUE_PRESETS.bwhBiopsy });
 * seg.regions.length;   // 2
 * seg.tissueFraction;   // 0.31
 * ```
 * @category WSI
 */
export async function segmentTissue(source: SlideSource, config: Partial<TissueConfig> = {}): Promise<TissueSegmentation> {
  const c = resolveTissueConfig(config);
  const level = c.segLevel === -1 ? bestLevelForDownsample(source.levels, c.segDownsample) : c.segLevel;
  checkLevel(source, level, 'TissueConfig.segLevel');
  const lv = source.levels[level];
  if (lv.width * lv.height > c.maxPixels) {
    throw new ValueError(
      `Slide '${source.name}': segmentation level ${level} has ${lv.width} x ${lv.height} pixels, more than maxPixels = ${c.maxPixels}. ` +
        'Choose a lower-resolution segLevel or raise maxPixels.',
    );
  }
  const rgb = await source.readRegion(level, 0, 0, lv.width, lv.height);
  const l0 = source.levels[0];
  return segmentTissueImage(rgb, lv.width, lv.height, { x: l0.width / lv.width, y: l0.height / lv.height }, c, level);
}
