/**
 * Feature extraction: every low-resolution patch of a slide (Z, `[N, d]`) and every
 * high-resolution sub-patch (U, `[N, k, d]`, for HAFED training), read and encoded in batches.
 *
 * Reading overlaps encoding: while the encoder works on one batch, the next `prefetch` batches
 * are being read (tile reads and decodes run in I/O threads or workers where the source allows:
 * `openSlideInWorker` in Node reads and decodes in a worker thread). A cohort runner writes each
 * slide through a {@link FeatureSink}, skips slides already written, and goes on past a slide
 * that fails.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { checkNumber, resolveConfig } from '../core/config.js';
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../core/errors.js';
import type { ProgressCallback } from '../core/progress.js';
import { encodePatches, type PatchEncoder } from './encoders/types.js';
import { tileSlide, type SlideTiling, type TilingConfig } from './patch_grid.js';
import { checkLevel, type SlideSource } from './slide_source.js';

/** Batching of {@link extractFeatures}. @category WSI */
export interface ExtractConfig {
  /** Patches per encoder call (low- and high-res patches share batches). */
  batchSize: number;
  /** Batches read ahead of the encoder. */
  prefetch: number;
  /**
   * Size of the first encoder call; the next ones double up to `batchSize`. Nothing can be
   * encoded before the first batch is read, so a small first batch starts the encoder sooner
   * (the results do not depend on it).
   */
  firstBatchSize: number;
}

/** Defaults of {@link ExtractConfig}. @category WSI */
export const DEFAULT_EXTRACT_CONFIG: Readonly<ExtractConfig> = Object.freeze({
  batchSize: 32, // docs/reference-code.md §1.4: --batch_size 32
  prefetch: 4, // enough read-ahead for a read to finish (file read, then decode) while batches are encoded
  firstBatchSize: 8, // ours: the encoder starts after 8 reads instead of 32 (bench/extraction.ts)
});

/** What to read: the low-res patches and, optionally, their high-res sub-patches. @category WSI */
export interface ExtractionPlan {
  /** Patch side in pixels (both levels). */
  patchSize: number;
  /** Low-resolution level. */
  lowResLevel: number;
  /** Level-0 corners of the N low-res patches, `[N, 2]`. */
  coords: Int32Array;
  /** High-resolution level, if sub-patches are encoded. */
  highResLevel?: number;
  /** k, the sub-patches per patch. */
  k?: number;
  /** Level-0 corners of the sub-patches, `[N, k, 2]`. */
  highResCoords?: Int32Array;
}

/**
 * The {@link ExtractionPlan} of a tiling from {@link tileSlide}.
 * @category WSI
 */
export function planFromTiling(tiling: SlideTiling): ExtractionPlan {
  const { grid, subPatches } = tiling;
  return {
    patchSize: grid.patchSize,
    lowResLevel: grid.level,
    coords: grid.coords,
    ...(subPatches ? { highResLevel: subPatches.level, k: subPatches.k, highResCoords: subPatches.coords } : {}),
  };
}

/** Features of one slide, as plain arrays (no tensors to dispose). @category WSI */
export interface SlideFeatures {
  /** N, the number of low-res patches. */
  n: number;
  /** Feature width d. */
  dim: number;
  /** k (0 when no high-res features were extracted). */
  k: number;
  /** Z: `[N, d]` row-major. */
  lowRes: Float32Array;
  /** U: `[N, k, d]` row-major, when a high-res level was given. */
  highRes?: Float32Array;
  /** Level-0 corners of the low-res patches, `[N, 2]`. */
  coords: Int32Array;
  /** Level-0 corners of the sub-patches, `[N, k, 2]`. */
  highResCoords?: Int32Array;
  /** The plan's levels and patch size, for file metadata. */
  lowResLevel: number;
  highResLevel?: number;
  patchSize: number;
}

/** Options of {@link extractFeatures}. @category WSI */
export interface ExtractOptions {
  /** Batching (over {@link DEFAULT_EXTRACT_CONFIG}). */
  config?: Partial<ExtractConfig>;
  /** Expected feature width d (default `encoder.dim`); a different encoder output is an error. */
  dim?: number;
  /** Progress in low-res patches done (task `extract <slide>`). */
  onProgress?: ProgressCallback;
  /** Stops the extraction between batches (it then throws a {@link StateError}). */
  signal?: AbortSignal;
}

/** Resolves a partial {@link ExtractConfig}. */
export function resolveExtractConfig(config: Partial<ExtractConfig> = {}): Readonly<ExtractConfig> {
  return resolveConfig('ExtractConfig', DEFAULT_EXTRACT_CONFIG, config, (c) => {
    checkNumber('ExtractConfig', c, 'batchSize', { min: 1, integer: true });
    checkNumber('ExtractConfig', c, 'prefetch', { min: 0, integer: true });
    checkNumber('ExtractConfig', c, 'firstBatchSize', { min: 1, integer: true });
  });
}

/**
 * Start indices of the encoder batches of {@link extractFeatures} over `total` items: sizes
 * `firstBatchSize`, doubling up to `batchSize`, then `batchSize`.
 * @param total the number of patches to encode.
 * @param config the batching.
 * @returns `numBatches + 1` indices; batch b covers `[starts[b], starts[b + 1])`, the last is `total`.
 * @example
 * ```ts
 * batchStarts(70, { batchSize: 32, firstBatchSize: 8 }); // [0, 8, 24, 56, 70]
 * ```
 * @category WSI
 */
export function batchStarts(total: number, config: Pick<ExtractConfig, 'batchSize' | 'firstBatchSize'>): number[] {
  const starts = [0];
  let size = Math.min(config.firstBatchSize, config.batchSize);
  while (starts[starts.length - 1] < total) {
    starts.push(Math.min(total, starts[starts.length - 1] + size));
    size = Math.min(config.batchSize, size * 2);
  }
  return starts;
}

/** Lets pending I/O callbacks run (a macrotask turn), so reads progress between batches. */
function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : setTimeout(resolve, 0)));
}

interface ReadBatch {
  start: number;
  count: number;
  pixels: Uint8Array;
}

function checkPlan(source: SlideSource, plan: ExtractionPlan): { n: number; k: number } {
  checkLevel(source, plan.lowResLevel, 'the low-res level');
  if (!(Number.isInteger(plan.patchSize) && plan.patchSize > 0)) {
    throw new ValueError(`Expected patchSize to be a positive integer, but got ${plan.patchSize}.`);
  }
  if (plan.coords.length % 2 !== 0) throw new ShapeError(`Expected coords of shape [N, 2], but got ${plan.coords.length} values.`);
  const n = plan.coords.length / 2;
  let k = 0;
  if (plan.highResLevel !== undefined) {
    checkLevel(source, plan.highResLevel, 'the high-res level');
    k = plan.k ?? 0;
    if (!(Number.isInteger(k) && k > 0) || !plan.highResCoords || plan.highResCoords.length !== n * k * 2) {
      throw new ShapeError(
        `Expected highResCoords of shape [${n}, ${k}, 2] for k = ${k}, but got ${plan.highResCoords?.length ?? 0} values.`,
      );
    }
  }
  return { n, k };
}

/**
 * Extracts the features of one slide: Z for the N low-res patches and, when the plan has a
 * high-res level, U for the N k sub-patches.
 *
 * Patches are read in the order patch 0, its k sub-patches, patch 1, ... (neighbours share
 * tiles in the source's cache), encoded `batchSize` at a time, while up to `prefetch` further
 * batches are read. The result is the same whatever `batchSize` and `prefetch` are (up to the
 * encoder's floating-point determinism).
 *
 * @param source the slide.
 * @param plan what to read ({@link planFromTiling}).
 * @param encoder any {@link PatchEncoder}; not disposed.
 * @returns the features as typed arrays, owned by the caller.
 * @throws ShapeError naming the slide when the encoder's output width differs from `dim`;
 *   StateError when aborted; DataError from the source for unreadable tiles.
 * @example
 * ```ts
 * const tiling = await tileSlide(slide, { lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 128 } });
 * const f = await extractFeatures(slide, planFromTiling(tiling), builtinEncoder({ dim: 64, inputSize: 64 }));
 * f.lowRes.length;  // N * 64
 * f.highRes?.length; // N * 4 * 64
 * ```
 * @category WSI
 */
export async function extractFeatures(
  source: SlideSource,
  plan: ExtractionPlan,
  encoder: PatchEncoder,
  options: ExtractOptions = {},
): Promise<SlideFeatures> {
  const cfg = resolveExtractConfig(options.config);
  const { n, k } = checkPlan(source, plan);
  const dim = options.dim ?? encoder.dim;
  const p = plan.patchSize;
  const per = 1 + k;
  const total = n * per;
  const lowRes = new Float32Array(n * dim);
  const highRes = k > 0 ? new Float32Array(n * k * dim) : undefined;
  const patchBytes = p * p * 3;
  const task = `extract ${source.name}`;
  const starts = batchStarts(total, cfg);
  const numBatches = starts.length - 1;

  const readItem = (m: number): Promise<Uint8Array> => {
    const i = Math.floor(m / per);
    const j = m % per;
    if (j === 0) return source.readRegion(plan.lowResLevel, plan.coords[2 * i], plan.coords[2 * i + 1], p, p);
    const o = (i * k + j - 1) * 2;
    const hc = plan.highResCoords as Int32Array;
    return source.readRegion(plan.highResLevel as number, hc[o], hc[o + 1], p, p);
  };
  const readBatch = async (b: number): Promise<ReadBatch> => {
    const start = starts[b];
    const count = starts[b + 1] - start;
    const pixels = new Uint8Array(count * patchBytes);
    await Promise.all(
      Array.from({ length: count }, (_, t) =>
        readItem(start + t).then((px) => {
          pixels.set(px, t * patchBytes);
        }),
      ),
    );
    return { start, count, pixels };
  };

  const queue: Promise<ReadBatch>[] = [];
  let next = 0;
  const fill = () => {
    while (queue.length < cfg.prefetch + 1 && next < numBatches) {
      const pr = readBatch(next++);
      pr.catch(() => undefined); // rejections are handled when the batch is awaited
      queue.push(pr);
    }
  };
  const drain = async () => {
    await Promise.allSettled(queue);
    queue.length = 0;
  };

  fill();
  try {
    for (let b = 0; b < numBatches; b++) {
      if (options.signal?.aborted) throw new StateError(`Extraction of slide '${source.name}' was aborted.`);
      const batch = await (queue.shift() as Promise<ReadBatch>);
      fill();
      const x = tf.tensor4d(new Float32Array(batch.pixels), [batch.count, p, p, 3]);
      let out: tf.Tensor2D;
      try {
        out = await encodePatches(encoder, x);
      } finally {
        x.dispose();
      }
      let data: Float32Array;
      try {
        if (out.rank !== 2 || out.shape[0] !== batch.count || out.shape[1] !== dim) {
          throw new ShapeError(
            `Encoder '${encoder.name}' returned features of shape [${out.shape.join(', ')}] for a batch of ${batch.count} patches of slide '${source.name}', ` +
              `but the feature width d is configured as ${dim}. Use an encoder of width ${dim}, or set d to ${out.shape[1]}.`,
          );
        }
        data = (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
      for (let t = 0; t < batch.count; t++) {
        const m = batch.start + t;
        const i = Math.floor(m / per);
        const j = m % per;
        const row = data.subarray(t * dim, (t + 1) * dim);
        if (j === 0) lowRes.set(row, i * dim);
        else (highRes as Float32Array).set(row, (i * k + j - 1) * dim);
      }
      options.onProgress?.({ task, done: Math.floor((batch.start + batch.count) / per), total: n });
      await yieldToEventLoop();
    }
  } catch (e) {
    await drain();
    throw e;
  }
  return {
    n,
    dim,
    k,
    lowRes,
    highRes,
    coords: plan.coords,
    highResCoords: plan.highResCoords,
    lowResLevel: plan.lowResLevel,
    highResLevel: plan.highResLevel,
    patchSize: p,
  };
}

/** A slide of a cohort: its id, label, and how to open it. @category WSI */
export interface CohortSlide {
  /** Slide id (the group name in feature files). */
  id: string;
  /** Class index, when known (written as the `label` attribute). */
  label?: number;
  /** Opens the slide; it is closed after extraction. */
  open(): Promise<SlideSource>;
}

/** Where extracted features go, one slide at a time. @category WSI */
export interface FeatureSink {
  /** Whether the slide's features are already complete in the output (then it is skipped). */
  has(id: string): Promise<boolean>;
  /**
   * Stores one slide's features. Must be atomic: after a crash the slide is either complete
   * in the output or absent.
   */
  write(id: string, features: SlideFeatures, meta: { label?: number; encoder: string }): Promise<void>;
}

/** A {@link FeatureSink} that keeps features in memory (tests, browsers). @category WSI */
export class MemoryFeatureSink implements FeatureSink {
  /** Stored slides by id. */
  readonly slides = new Map<string, { features: SlideFeatures; label?: number; encoder: string }>();
  async has(id: string): Promise<boolean> {
    return this.slides.has(id);
  }
  async write(id: string, features: SlideFeatures, meta: { label?: number; encoder: string }): Promise<void> {
    this.slides.set(id, { features, ...meta });
  }
}

/** Options of {@link extractCohort}. @category WSI */
export interface CohortExtractOptions {
  /** The encoder; not disposed. */
  encoder: PatchEncoder;
  /** Destination of each slide's features. */
  sink: FeatureSink;
  /** Segmentation, grid and levels ({@link tileSlide}). */
  tiling?: TilingConfig;
  /** Batching. */
  config?: Partial<ExtractConfig>;
  /** Expected feature width d (default `encoder.dim`). */
  dim?: number;
  /** Progress: task `slides` (slides done) and `extract <slide>` (patches). */
  onProgress?: ProgressCallback;
  /** Receives a message for each slide skipped or failed (default: silent). */
  onWarning?: (message: string) => void;
  /** Stops the run; the slide in progress is not written. */
  signal?: AbortSignal;
}

/** Outcome of {@link extractCohort}. @category WSI */
export interface CohortExtractResult {
  /** Slides extracted in this run. */
  extracted: string[];
  /** Slides already complete in the sink. */
  skipped: string[];
  /** Slides that failed, with the reason (the run went on). */
  failed: { id: string; error: string }[];
  /** Low-res patches encoded in this run. */
  patches: number;
  /** High-res sub-patches encoded in this run. */
  subPatches: number;
}

/**
 * Extracts a cohort slide by slide: tile, extract, write. A slide whose features the sink
 * already holds is skipped (so a run resumes where it stopped); a slide that fails (not a
 * TIFF, truncated, one level only, no tissue, wrong encoder width) is reported through
 * `onWarning` and in `failed`, and the run goes on.
 *
 * @returns which slides were extracted, skipped and failed.
 * @throws StateError when `signal` aborts the run (the slide in progress is not written).
 * @example
 * ```ts
 * const sink = new MemoryFeatureSink();
 * const res = await extractCohort(slides, { encoder, sink, tiling: { lowRes: { level: 2 }, highRes: { level: 1 } } });
 * res.failed; // [{ id: 'bad_slide', error: "Slide 'bad_slide.tif' is not a TIFF file ..." }]
 * ```
 * @category WSI
 */
export async function extractCohort(slides: readonly CohortSlide[], options: CohortExtractOptions): Promise<CohortExtractResult> {
  const result: CohortExtractResult = { extracted: [], skipped: [], failed: [], patches: 0, subPatches: 0 };
  const warn = options.onWarning ?? (() => {});
  const seen = new Set<string>();
  for (const s of slides) {
    if (seen.has(s.id)) throw new ValueError(`Slide id '${s.id}' appears twice in the cohort; slide ids must be unique.`);
    seen.add(s.id);
  }
  let done = 0;
  for (const slide of slides) {
    if (options.signal?.aborted) throw new StateError('The extraction run was aborted.');
    if (await options.sink.has(slide.id)) {
      result.skipped.push(slide.id);
      options.onProgress?.({ task: 'slides', done: ++done, total: slides.length });
      continue;
    }
    let source: SlideSource | undefined;
    try {
      source = await slide.open();
      for (const w of source.warnings ?? []) warn(w);
      const tiling = await tileSlide(source, options.tiling);
      const features = await extractFeatures(source, planFromTiling(tiling), options.encoder, {
        config: options.config,
        dim: options.dim,
        onProgress: options.onProgress,
        signal: options.signal,
      });
      if (options.signal?.aborted) throw new StateError(`Extraction of slide '${slide.id}' was aborted.`);
      await options.sink.write(slide.id, features, { label: slide.label, encoder: options.encoder.name });
      result.extracted.push(slide.id);
      result.patches += features.n;
      result.subPatches += features.n * features.k;
    } catch (e) {
      if (e instanceof StateError && options.signal?.aborted) throw e;
      const msg = e instanceof SashaError ? e.message : `${(e as Error)?.message ?? String(e)}`;
      const text = msg.includes(slide.id) ? msg : `Slide '${slide.id}': ${msg}`;
      result.failed.push({ id: slide.id, error: text });
      warn(`Skipping slide '${slide.id}': ${msg}`);
    } finally {
      await Promise.resolve(source?.close?.()).catch(() => undefined);
    }
    options.onProgress?.({ task: 'slides', done: ++done, total: slides.length });
  }
  return result;
}

/** Throws a {@link DataError} listing failed slides (for callers that want all-or-nothing). */
export function assertNoFailures(result: CohortExtractResult): void {
  if (result.failed.length > 0) {
    throw new DataError(`${result.failed.length} slide(s) failed:\n` + result.failed.map((f) => `  ${f.id}: ${f.error}`).join('\n'));
  }
}
