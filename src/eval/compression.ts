/**
 * How much smaller SASHA's slide representation is than the high-resolution data: the N x d
 * state against the N x k x d high-res features and the N k high-res sub-patches of pixels.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';

/** The sizes of one slide that {@link compressionRatio} needs. */
export interface SlideStorageShape {
  /** Slide id (carried into the report). */
  id?: string;
  /** N, the number of low-res patches (state rows). */
  numPatches: number;
  /** k, the high-res sub-patches per patch. */
  k: number;
  /** d, the feature width. */
  dim: number;
  /**
   * Bytes per stored feature value: 2 for float16 (the reference's h5 files), 4 for float32.
   * The state is counted at the same width, so the feature ratio compares like with like.
   * Default 4.
   */
  bytesPerValue?: number;
  /** Side in pixels of a high-res sub-patch as read from the slide (e.g. 256); omit to skip pixels. */
  subPatchSide?: number;
  /** Colour channels of a pixel, one byte each. Default 3 (RGB). */
  channels?: number;
}

/** What {@link compressionRatio} reports. */
export interface CompressionReport {
  id?: string;
  numPatches: number;
  k: number;
  dim: number;
  /** `N d b`: the state SASHA keeps (one row per patch). */
  stateBytes: number;
  /** `N k d b`: every sub-patch's high-res feature (what HAFED-100% reads). */
  highResFeatureBytes: number;
  /** `N k s^2 c`: every sub-patch's pixels (absent without `subPatchSide`). */
  highResPixelBytes?: number;
  /** `highResFeatureBytes / stateBytes` (= k). */
  featureRatio: number;
  /** `highResPixelBytes / stateBytes` (= k s^2 c / (d b)). */
  pixelRatio?: number;
}

function checkInt(name: string, v: number, min: number): void {
  if (!(Number.isInteger(v) && v >= min)) throw new ValueError(`Expected ${name} to be an integer >= ${min}, but got ${v}.`);
}

/**
 * Bytes of SASHA's state of a slide against its high-res features and pixels:
 * `state = N d b`, `features = N k d b`, `pixels = N k s^2 c`, with the ratios
 * `features / state = k` and `pixels / state = k s^2 c / (d b)`.
 *
 * @example
 * ```ts
 * // a CAMELYON16 slide: N = 2000, k = 16, d = 384, float16 files, 256-px sub-patches
 * const r = compressionRatio({ numPatches: 2000, k: 16, dim: 384, bytesPerValue: 2, subPatchSide: 256 });
 * // r.stateBytes 1_536_000, r.highResFeatureBytes 24_576_000 (ratio 16),
 * // r.highResPixelBytes 6_291_456_000 (ratio 4096)
 * ```
 * @category Metrics
 */
export function compressionRatio(slide: SlideStorageShape): CompressionReport {
  const { numPatches: n, k, dim: d, bytesPerValue: b = 4, subPatchSide: s, channels: c = 3, id } = slide;
  checkInt('numPatches', n, 1);
  checkInt('k', k, 1);
  checkInt('dim', d, 1);
  if (!(b > 0)) throw new ValueError(`Expected bytesPerValue > 0 (2 for float16, 4 for float32), but got ${b}.`);
  if (s !== undefined) checkInt('subPatchSide', s, 1);
  checkInt('channels', c, 1);
  const stateBytes = n * d * b;
  const highResFeatureBytes = n * k * d * b;
  const out: CompressionReport = { ...(id !== undefined ? { id } : {}), numPatches: n, k, dim: d, stateBytes, highResFeatureBytes, featureRatio: highResFeatureBytes / stateBytes };
  if (s !== undefined) {
    out.highResPixelBytes = n * k * s * s * c;
    out.pixelRatio = out.highResPixelBytes / stateBytes;
  }
  return out;
}

/**
 * {@link compressionRatio} of every slide and of the cohort (bytes summed over the slides, then
 * divided, so large slides weigh more).
 *
 * @returns `{ slides, cohort }`; the cohort's `numPatches` is the total N, its `k` and `dim`
 *   those of the slides (which must agree).
 * @example
 * ```ts
 * const { cohort } = cohortCompression([{ numPatches: 100, k: 16, dim: 64 }, { numPatches: 300, k: 16, dim: 64 }]);
 * cohort.featureRatio; // 16
 * ```
 * @category Metrics
 */
export function cohortCompression(slides: readonly SlideStorageShape[]): { slides: CompressionReport[]; cohort: CompressionReport } {
  if (slides.length === 0) throw new ValueError('Expected at least one slide, but got none.');
  const reports = slides.map(compressionRatio);
  const { k, dim } = reports[0];
  const odd = reports.find((r) => r.k !== k || r.dim !== dim);
  if (odd) throw new ValueError(`Expected every slide to have k = ${k}, d = ${dim}, but slide '${odd.id ?? '?'}' has k = ${odd.k}, d = ${odd.dim}.`);
  const sum = (f: (r: CompressionReport) => number | undefined) => reports.reduce((a, r) => a + (f(r) ?? 0), 0);
  const stateBytes = sum((r) => r.stateBytes);
  const highResFeatureBytes = sum((r) => r.highResFeatureBytes);
  const cohort: CompressionReport = { numPatches: sum((r) => r.numPatches), k, dim, stateBytes, highResFeatureBytes, featureRatio: highResFeatureBytes / stateBytes };
  if (reports.every((r) => r.highResPixelBytes !== undefined)) {
    cohort.highResPixelBytes = sum((r) => r.highResPixelBytes);
    cohort.pixelRatio = cohort.highResPixelBytes / stateBytes;
  }
  return { slides: reports, cohort };
}
