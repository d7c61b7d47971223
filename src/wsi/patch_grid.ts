/**
 * The patch grid: which low-resolution patches of a slide hold tissue, and where the k = r^2
 * high-resolution sub-patches of each one lie.
 *
 * Coordinates are level-0 pixels of each patch's top-left corner (the convention of CLAM's
 * `coords` and of the SASHA reference's feature files).
 *
 * @packageDocumentation
 */
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { DataError, ValueError } from '../core/errors.js';
import { integralImage, rectSum } from './image_ops.js';
import { checkLevel, describeLevels, resolveLevel, type LevelSpec, type SlideLevel, type SlideSource } from './slide_source.js';
import { segmentTissue, type TissueConfig, type TissueSegmentation } from './tissue.js';

/**
 * How a candidate patch is tested against the tissue (CLAM's `contour_fn`, plus a tissue
 * fraction rule):
 * - `fourPt`: any of four points at +-1/4 patch around the centre lies in a tissue region, and
 *   the centre is not in a hole (CLAM's default, `isInContourV3_Easy`);
 * - `fourPtHard`: all four points lie in a region, and the centre is not in a hole;
 * - `center`: the centre lies in a region and not in a hole;
 * - `tissueFraction`: at least `minTissueFraction` of the patch is tissue in the mask.
 * @category WSI
 */
export type PatchRule = 'fourPt' | 'fourPtHard' | 'center' | 'tissueFraction';

/** Parameters of {@link patchGrid}. @category WSI */
export interface PatchGridConfig {
  /** Patch side in pixels of the patch level. */
  patchSize: number;
  /** Grid step in pixels of the patch level (default: equal to `patchSize`, so no overlap and no gaps). */
  stepSize: number;
  /** Tissue test of a candidate patch. */
  rule: PatchRule;
  /** Minimum tissue fraction for the `tissueFraction` rule. */
  minTissueFraction: number;
  /** Keep patches that run past the slide's edge (they are padded with background). */
  usePadding: boolean;
}

/** CLAM's patching defaults, as the SASHA reference runs them. @category WSI */
export const DEFAULT_PATCH_GRID_CONFIG: Readonly<PatchGridConfig> = Object.freeze({
  patchSize: 256, // docs/reference-code.md §1.1; docs/reference-code.md §13.3
  stepSize: 256, // docs/reference-code.md §1.1: no overlap
  rule: 'fourPt' as PatchRule, // docs/reference-code.md §1.1: contour_fn four_pt
  minTissueFraction: 0.5, // for the tissueFraction rule only (not in CLAM)
  usePadding: true, // docs/reference-code.md §1.1: use_padding True
});

/** Resolves a partial {@link PatchGridConfig} with range checks. */
export function resolvePatchGridConfig(config: Partial<PatchGridConfig> = {}): Readonly<PatchGridConfig> {
  // The step follows the patch size unless given: no overlap, no gaps.
  const withStep = config.stepSize === undefined && config.patchSize !== undefined ? { ...config, stepSize: config.patchSize } : config;
  return resolveConfig('PatchGridConfig', DEFAULT_PATCH_GRID_CONFIG, withStep, (c) => {
    checkNumber('PatchGridConfig', c, 'patchSize', { min: 1, integer: true });
    checkNumber('PatchGridConfig', c, 'stepSize', { min: 1, integer: true });
    checkOneOf('PatchGridConfig', c, 'rule', ['fourPt', 'fourPtHard', 'center', 'tissueFraction']);
    checkNumber('PatchGridConfig', c, 'minTissueFraction', { min: 0, max: 1 });
  });
}

/** The kept patches of one slide at one level. @category WSI */
export interface PatchGrid {
  /** Level the patches are read at. */
  level: number;
  /** Downsample of that level. */
  downsample: number;
  /** Patch side in pixels of `level`. */
  patchSize: number;
  /** Patch side in level-0 pixels (`round(patchSize * downsample)`). */
  patchSizeLevel0: number;
  /** Level-0 (x, y) of each patch's top-left corner, `[N, 2]` row-major. */
  coords: Int32Array;
  /** N, the number of patches. */
  count: number;
}

/**
 * Lays a regular grid over the slide at `level` and keeps the cells that hold tissue.
 *
 * The grid starts at the slide's origin and steps by `stepSize * downsample` level-0 pixels,
 * over the bounding box of the tissue regions; cells are listed row by row (y, then x).
 * Porting note: CLAM starts a separate grid at each contour's bounding box; one grid for the
 * whole slide never yields overlapping patches from neighbouring regions, and aligns patches
 * with the tiles of the level when `patchSize` is a multiple of the tile size.
 *
 * @param levels the slide's levels.
 * @param level the patch level (for SASHA, the low-resolution level).
 * @param tissue the segmentation from {@link segmentTissue}.
 * @returns the kept patches (possibly none).
 * @example
 * ```ts
 * const grid = patchGrid(slide.levels, 3, seg, { patchSize: 256 });
 * grid.count;              // N
 * grid.coords[2 * i];      // level-0 x of patch i
 * ```
 * @category WSI
 */
export function patchGrid(
  levels: readonly SlideLevel[],
  level: number,
  tissue: TissueSegmentation,
  config: Partial<PatchGridConfig> = {},
): PatchGrid {
  const c = resolvePatchGridConfig(config);
  if (!(Number.isInteger(level) && level >= 0 && level < levels.length)) {
    throw new ValueError(`Expected level to be in [0, ${levels.length - 1}], but got ${level}. The slide has ${describeLevels(levels)}.`);
  }
  const ds = levels[level].downsample;
  const W0 = levels[0].width;
  const H0 = levels[0].height;
  const ps0 = Math.round(c.patchSize * ds);
  const step0 = Math.round(c.stepSize * ds);
  const out: number[] = [];
  if (tissue.regions.length > 0) {
    const { width: mw, height: mh, downsampleX: sx, downsampleY: sy, regionMap, holeMask } = tissue;
    // Level-0 bounding box of all regions.
    let bx0 = Infinity;
    let by0 = Infinity;
    let bx1 = -Infinity;
    let by1 = -Infinity;
    for (const r of tissue.regions) {
      bx0 = Math.min(bx0, r.box.x * sx);
      by0 = Math.min(by0, r.box.y * sy);
      bx1 = Math.max(bx1, (r.box.x + r.box.width) * sx);
      by1 = Math.max(by1, (r.box.y + r.box.height) * sy);
    }
    const maxX = c.usePadding ? W0 - 1 : W0 - ps0;
    const maxY = c.usePadding ? H0 - 1 : H0 - ps0;
    const gx0 = Math.max(0, Math.floor((bx0 - ps0) / step0) + 1);
    const gy0 = Math.max(0, Math.floor((by0 - ps0) / step0) + 1);
    const inRegion = (px: number, py: number): boolean => {
      const mx = Math.floor(px / sx);
      const my = Math.floor(py / sy);
      return mx >= 0 && my >= 0 && mx < mw && my < mh && regionMap[my * mw + mx] !== 0;
    };
    const inHole = (px: number, py: number): boolean => {
      const mx = Math.floor(px / sx);
      const my = Math.floor(py / sy);
      return mx >= 0 && my >= 0 && mx < mw && my < mh && holeMask[my * mw + mx] !== 0;
    };
    const integral = c.rule === 'tissueFraction' ? integralImage(tissue.mask, mw, mh) : null;
    // CLAM: shift = int(patch_size // 2 * 0.5), points at centre +- shift.
    const half = Math.floor(ps0 / 2);
    const shift = Math.floor(half * 0.5);
    for (let gy = gy0; gy * step0 <= Math.min(maxY, by1); gy++) {
      const y = gy * step0;
      for (let gx = gx0; gx * step0 <= Math.min(maxX, bx1); gx++) {
        const x = gx * step0;
        let keep: boolean;
        if (integral) {
          // Footprint in mask pixels (at least one); the part outside the slide counts as glass.
          const mx0 = Math.round(x / sx);
          const my0 = Math.round(y / sy);
          const mx1 = Math.max(mx0 + 1, Math.round((x + ps0) / sx));
          const my1 = Math.max(my0 + 1, Math.round((y + ps0) / sy));
          const t = rectSum(integral, mw, mh, mx0, my0, mx1, my1);
          keep = t > 0 && t >= c.minTissueFraction * (mx1 - mx0) * (my1 - my0);
        } else {
          const cx = x + half;
          const cy = y + half;
          if (inHole(cx, cy)) continue;
          if (c.rule === 'center') keep = inRegion(cx, cy);
          else {
            const pts = [
              inRegion(cx - shift, cy - shift),
              inRegion(cx + shift, cy + shift),
              inRegion(cx + shift, cy - shift),
              inRegion(cx - shift, cy + shift),
            ];
            keep = c.rule === 'fourPt' ? pts.some(Boolean) : pts.every(Boolean);
          }
        }
        if (keep) out.push(x, y);
      }
    }
  }
  return { level, downsample: ds, patchSize: c.patchSize, patchSizeLevel0: ps0, coords: Int32Array.from(out), count: out.length / 2 };
}

/**
 * The integer ratio r between the downsamples of a low-resolution and a high-resolution level
 * (`r = ds(lr) / ds(hr)`): each low-res patch holds an r x r grid of high-res sub-patches of
 * the same pixel size, so k = r^2.
 *
 * @throws ValueError when `hrLevel` is not finer than or equal to `lrLevel`, or the ratio is not
 *   (within 2 %) an integer.
 * @example
 * ```ts
 * // CAMELYON16 (2x pyramid): low-res level 3, high-res level 1 -> r = 4, k = 16
 * levelRatio(levels, 3, 1); // 4
 * ```
 * @category WSI
 */
export function levelRatio(levels: readonly SlideLevel[], lrLevel: number, hrLevel: number): number {
  for (const [name, l] of [
    ['lrLevel', lrLevel],
    ['hrLevel', hrLevel],
  ] as const) {
    if (!(Number.isInteger(l) && l >= 0 && l < levels.length)) {
      throw new ValueError(`Expected ${name} to be in [0, ${levels.length - 1}], but got ${l}. The slide has ${describeLevels(levels)}.`);
    }
  }
  if (hrLevel > lrLevel) {
    throw new ValueError(`Expected hrLevel (${hrLevel}) to be a higher resolution (a lower index) than lrLevel (${lrLevel}).`);
  }
  const r = levels[lrLevel].downsample / levels[hrLevel].downsample;
  const ri = Math.round(r);
  if (ri < 1 || Math.abs(r - ri) > 0.02 * ri) {
    throw new ValueError(
      `Expected the downsample ratio between lrLevel ${lrLevel} and hrLevel ${hrLevel} to be an integer, but got ${r.toPrecision(4)} ` +
        `(${describeLevels(levels)}). Choose levels whose downsamples divide.`,
    );
  }
  return ri;
}

/** High-resolution sub-patches of every low-resolution patch. @category WSI */
export interface SubPatches {
  /** Per-axis ratio r between the two levels. */
  ratio: number;
  /** Sub-patches per patch, k = r^2. */
  k: number;
  /** High-resolution level. */
  level: number;
  /** Level-0 (x, y) of each sub-patch's top-left corner, `[N, k, 2]` row-major. */
  coords: Int32Array;
}

/**
 * The k = r^2 high-resolution sub-patches of each low-resolution patch, for any integer level
 * ratio r. Sub-patch `j = xi * r + yi` (x outer, y inner, as the SASHA reference orders its
 * 4 x 4 grid) of the patch at (x0, y0) starts at level-0
 * `(x0 + xi * s, y0 + yi * s)` with `s = round(patchSize * ds(hr))`, and is read at `hrLevel`
 * with the same `patchSize`; the k sub-patches tile the low-res patch exactly.
 *
 * @param coords level-0 corners of the low-res patches, `[N, 2]`.
 * @param patchSize patch side in pixels (the same at both levels).
 * @example
 * ```ts
 * // ds 8 and ds 2: r = 4, k = 16; patch at (2048, 0) -> first sub-patches (2048, 0), (2048, 512), ...
 * subPatchCoords(Int32Array.from([2048, 0]), levels, 3, 1, 256).coords.slice(0, 4); // [2048, 0, 2048, 512]
 * ```
 * @category WSI
 */
export function subPatchCoords(
  coords: Int32Array,
  levels: readonly SlideLevel[],
  lrLevel: number,
  hrLevel: number,
  patchSize: number,
): SubPatches {
  const r = levelRatio(levels, lrLevel, hrLevel);
  const k = r * r;
  const s = Math.round(patchSize * levels[hrLevel].downsample);
  const n = coords.length / 2;
  const out = new Int32Array(n * k * 2);
  for (let i = 0; i < n; i++) {
    const x0 = coords[2 * i];
    const y0 = coords[2 * i + 1];
    for (let xi = 0; xi < r; xi++) {
      for (let yi = 0; yi < r; yi++) {
        const o = ((i * k) + xi * r + yi) * 2;
        out[o] = x0 + xi * s;
        out[o + 1] = y0 + yi * s;
      }
    }
  }
  return { ratio: r, k, level: hrLevel, coords: out };
}

/** What {@link tileSlide} does: segmentation, grid and the levels of the two resolutions. @category WSI */
export interface TilingConfig {
  /** Tissue segmentation parameters. */
  tissue?: Partial<TissueConfig>;
  /** Patch grid parameters. */
  grid?: Partial<PatchGridConfig>;
  /** Low-resolution (patch) level by index, mpp or magnification (default level 3, as CAMELYON16). */
  lowRes?: LevelSpec;
  /** High-resolution level; omit for low-res patches only. */
  highRes?: LevelSpec;
  /** Relative mpp tolerance when levels are chosen by mpp (default 0.25). */
  mppTolerance?: number;
}

/** The tiling of one slide. @category WSI */
export interface SlideTiling {
  /** The tissue segmentation. */
  tissue: TissueSegmentation;
  /** Low-resolution patches. */
  grid: PatchGrid;
  /** High-resolution sub-patches, when a high-res level was asked for. */
  subPatches?: SubPatches;
}

/**
 * Segments the tissue of a slide and tiles it: the low-res patch grid and, when a high-res
 * level is given, the k sub-patches of every patch.
 *
 * @throws DataError naming the slide when no tissue is found or no patch is kept;
 *   ValueError for levels the slide does not have or a non-integer level ratio.
 * @example
 * ```ts
 * const t = await tileSlide(slide, { lowRes: { level: 3 }, highRes: { level: 1 } });
 * t.grid.count;        // N
 * t.subPatches?.k;     // 16
 * ```
 * @category WSI
 */
export async function tileSlide(source: SlideSource, config: TilingConfig = {}): Promise<SlideTiling> {
  const lrLevel = resolveLevel(source, config.lowRes ?? { level: 3 }, config.mppTolerance);
  const hrLevel = config.highRes ? resolveLevel(source, config.highRes, config.mppTolerance) : undefined;
  checkLevel(source, lrLevel, 'the low-res level');
  if (hrLevel !== undefined) levelRatio(source.levels, lrLevel, hrLevel);
  const tissue = await segmentTissue(source, config.tissue);
  if (tissue.regions.length === 0) {
    throw new DataError(
      `No tissue found in slide '${source.name}' (sthresh ${tissue.config.sthresh}, aT ${tissue.config.aT}, ` +
        `segmentation level ${tissue.level}). Check the slide, or lower sthresh or aT (TISSUE_PRESETS.bwhBiopsy for small pieces).`,
    );
  }
  const grid = patchGrid(source.levels, lrLevel, tissue, config.grid);
  if (grid.count === 0) {
    throw new DataError(
      `No ${grid.patchSize}-pixel patch at level ${lrLevel} of slide '${source.name}' passes the '${resolvePatchGridConfig(config.grid).rule}' tissue test. ` +
        'Use a smaller patch size or a higher-resolution level.',
    );
  }
  const subPatches = hrLevel !== undefined ? subPatchCoords(grid.coords, source.levels, lrLevel, hrLevel, grid.patchSize) : undefined;
  return { tissue, grid, subPatches };
}
