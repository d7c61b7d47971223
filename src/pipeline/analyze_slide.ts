/**
 * Inference on one slide from its pixels, with lazy zoom: the N low-resolution patches are
 * read and encoded, then the zoom policy picks T = ceil(f N) patches one at a time, and only
 * the k high-resolution sub-patches of each picked patch are ever read and encoded. The
 * full-resolution mode (every sub-patch encoded, HAFED on V) is the 100% baseline.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { DataError, ShapeError, StateError, ValueError, fmtShape } from '../core/errors.js';
import type { ProgressCallback } from '../core/progress.js';
import type { Hafed } from '../hafed/hafed.js';
import { WsiEnv, budgetSteps, type WsiEnvConfig } from '../mdp/index.js';
import type { ZoomPolicy } from '../ppo/index.js';
import type { StateUpdateNet } from '../tsu/types.js';
import { extractFeatures } from '../wsi/extract.js';
import { encodePatches, type PatchEncoder } from '../wsi/encoders/types.js';
import { levelRatio, subPatchCoords, tileSlide, type PatchGridConfig } from '../wsi/patch_grid.js';
import { checkLevel, describeLevels, resolveLevel, type LevelSpec, type SlideSource } from '../wsi/slide_source.js';
import type { TissueConfig, TissueSegmentation } from '../wsi/tissue.js';
import { POLICY_NAMES, makePolicy, type PolicyName } from './evaluate_sasha.js';
import type { HeatmapData } from './heatmap.js';
import type { SashaModel } from './sasha_model.js';

/**
 * How {@link analyzeSlide} runs: `'sasha'` (low-res pass, then lazy zoom into T = ceil(f N)
 * patches) or `'fullResolution'` (every sub-patch encoded, HAFED on V: the 100% baseline).
 * @example
 * ```ts
 * await analyzeSlide(model, slide, { encoder, config: { mode: 'fullResolution' } });
 * ```
 * @category Pipeline
 */
export type AnalyzeMode = 'sasha' | 'fullResolution';

/**
 * Settings of {@link analyzeSlide}. Every field has a default in
 * {@link DEFAULT_ANALYZE_SLIDE_CONFIG}; pass a `Partial`. The levels, tissue and grid settings
 * must be those the model's training features were extracted with (`sasha infer` reads them
 * from the training features' `extract.json`).
 * @example
 * ```ts
 * const config: Partial<AnalyzeSlideConfig> = {
 *   lowRes: { mpp: 2.0 }, highRes: { mpp: 0.5 },   // k = (2.0 / 0.5)^2 = 16
 *   budget: 0.2, policy: 'learned', batchSize: 32,
 * };
 * ```
 * @category Pipeline
 */
export interface AnalyzeSlideConfig {
  /**
   * `'sasha'`: low-res pass, then lazy zoom into T = ceil(f N) patches.
   * `'fullResolution'`: every high-res sub-patch is read and encoded, HAFED classifies V (the
   * 100% baseline, same encoder).
   */
  mode: AnalyzeMode;
  /**
   * The budget f in (0, 1]; null takes the model's (`model.env.budget`, the budget its policy
   * was trained for). A learned policy runs only at its own budget.
   */
  budget: number | null;
  /** The zoom policy: `'learned'` (the model's), or a baseline (`'random'`, `'top-attention'`, `'greedy-attention'`). */
  policy: PolicyName;
  /** The low-resolution level (patch grid, Z) by index, mpp or magnification. */
  lowRes: LevelSpec;
  /** The high-resolution level (sub-patches, U) by index, mpp or magnification. */
  highRes: LevelSpec;
  /** Relative mpp tolerance when a level is given by mpp or magnification. */
  mppTolerance: number;
  /** Tissue segmentation settings (over `DEFAULT_TISSUE_CONFIG`). */
  tissue: Partial<TissueConfig>;
  /** Patch grid settings (over `DEFAULT_PATCH_GRID_CONFIG`); `patchSize` is also the sub-patch side. */
  grid: Partial<PatchGridConfig>;
  /** Patches per encoder call in the low-res pass and in the full-resolution mode. */
  batchSize: number;
  /** Batches read ahead of the encoder in those passes. */
  prefetch: number;
  /**
   * During the zoom, the sub-patches of this many next-best candidates (under the current
   * scores, the chosen patch excluded) are read while the chosen patch is encoded; a candidate
   * chosen at the next step is then ready. Reads of candidates never chosen are wasted (counted
   * in `counts.highResRead`); the encoder never sees them, and the result does not change.
   * 0 reads only the chosen patches. Only for deterministic policies (not `'random'`).
   */
  speculate: number;
  /** Seed of the environment reset and of the random policy. */
  seed: number;
}

/**
 * Defaults of {@link AnalyzeSlideConfig}: SASHA mode at the model's budget with its learned
 * policy, the reference's levels 3 (low-res) and 1 (high-res), CLAM's tissue settings,
 * 256-pixel patches.
 * @example
 * ```ts
 * DEFAULT_ANALYZE_SLIDE_CONFIG.batchSize; // 32
 * ```
 * @category Pipeline
 */
export const DEFAULT_ANALYZE_SLIDE_CONFIG: Readonly<AnalyzeSlideConfig> = Object.freeze({
  mode: 'sasha' as AnalyzeMode,
  budget: null, // the model's budget (docs/reference-code.md §7.2: frac_visit of the trained agent)
  policy: 'learned' as PolicyName, // docs/reference-code.md §7.2: the trained actor, argmax with visited patches masked
  lowRes: Object.freeze({ level: 3 }) as LevelSpec, // docs/reference-code.md §7.2: patch_level_low_res 3 (CAMELYON16)
  highRes: Object.freeze({ level: 1 }) as LevelSpec, // docs/reference-code.md §7.2: patch_level_high_res 1
  mppTolerance: 0.25, // as tileSlide: a level more than 25 % off the wanted mpp is refused
  tissue: Object.freeze({}) as Partial<TissueConfig>, // CLAM's segmentation defaults (docs/reference-code.md §1.1)
  grid: Object.freeze({}) as Partial<PatchGridConfig>, // 256-pixel patches, no overlap (docs/reference-code.md §1.1)
  batchSize: 32, // docs/reference-code.md §1.4 (--batch_size 32); the reference's inference uses 512, too large for wasm memory
  prefetch: 4, // as DEFAULT_EXTRACT_CONFIG: reads finish while batches are encoded
  speculate: 2, // bench/inference_speed.ts: hides the zoom reads behind encoding; the policy's next picks are nearly always among them (few wasted reads)
  seed: 0,
});

/**
 * Resolves a partial {@link AnalyzeSlideConfig} over {@link DEFAULT_ANALYZE_SLIDE_CONFIG}.
 * @param config the fields to change.
 * @returns a frozen, complete config.
 * @throws ValueError naming the bad key (e.g. a budget outside (0, 1]).
 * @example
 * ```ts
 * resolveAnalyzeSlideConfig({ budget: 0.1 }).budget; // 0.1
 * resolveAnalyzeSlideConfig({ budget: 1.5 });        // ValueError: Expected AnalyzeSlideConfig.budget ...
 * ```
 * @category Pipeline
 */
export function resolveAnalyzeSlideConfig(config: Partial<AnalyzeSlideConfig> = {}): Readonly<AnalyzeSlideConfig> {
  const name = 'AnalyzeSlideConfig';
  return resolveConfig(name, DEFAULT_ANALYZE_SLIDE_CONFIG, config, (c) => {
    checkOneOf(name, c, 'mode', ['sasha', 'fullResolution']);
    if (c.budget !== null) checkNumber(name, c, 'budget', { min: 0, minExclusive: true, max: 1 });
    checkOneOf(name, c, 'policy', POLICY_NAMES);
    checkNumber(name, c, 'mppTolerance', { min: 0, minExclusive: true });
    checkNumber(name, c, 'batchSize', { min: 1, integer: true });
    checkNumber(name, c, 'prefetch', { min: 0, integer: true });
    checkNumber(name, c, 'speculate', { min: 0, integer: true });
    checkNumber(name, c, 'seed', { integer: true });
    for (const key of ['lowRes', 'highRes'] as const) {
      const v = c[key];
      if (v === null || typeof v !== 'object') throw new ValueError(`Expected ${name}.${key} to be { level } or { mpp } or { magnification }, but got ${String(v)}.`);
    }
  });
}

/**
 * Options of {@link analyzeSlide}.
 * @example
 * ```ts
 * const ac = new AbortController();
 * await analyzeSlide(model, slide, { encoder, config: { budget: 0.2 }, signal: ac.signal, onProgress: (e) => console.log(e.task, e.done, e.total) });
 * ```
 * @category Pipeline
 */
export interface AnalyzeSlideOptions {
  /** The patch encoder the model's features were extracted with; not disposed. */
  encoder: PatchEncoder;
  /** Settings over {@link DEFAULT_ANALYZE_SLIDE_CONFIG}. */
  config?: Partial<AnalyzeSlideConfig>;
  /**
   * Level-0 corners of the low-res patches, `[N, 2]` row-major: skips tissue segmentation
   * (e.g. the coordinates of `sasha tile` or CLAM). Patches are `config.grid.patchSize` pixels
   * of the low-res level.
   */
  coords?: Int32Array;
  /**
   * Progress: task `'low-res <slide>'` (patches encoded, of N), `'zoom <slide>'` (steps, of T)
   * or `'high-res <slide>'` (full-resolution mode, sub-patches of N k).
   */
  onProgress?: ProgressCallback;
  /** Stops the analysis between batches or steps (it then throws a {@link StateError}). */
  signal?: AbortSignal;
  /**
   * Live results, for a viewer: the patch layout once the tissue is tiled, then the state
   * before the zoom and after each zoom step (prediction, attention, patches visited so far).
   * A returned promise is awaited before the analysis goes on (outside the timed phases), so
   * that a page can repaint; the result does not depend on it.
   */
  onEvent?: (event: AnalyzeEvent) => void | Promise<void>;
}

/**
 * The patch layout of a slide being analysed ({@link AnalyzeSlideOptions.onEvent}), sent once
 * before any patch is encoded.
 * @example
 * ```ts
 * onEvent: (e) => { if (e.type === 'layout') drawOutline(e.tissue, e.coords, e.patchSizeLevel0); }
 * ```
 * @category Pipeline
 */
export interface AnalyzeLayoutEvent {
  type: 'layout';
  slide: string;
  mode: AnalyzeMode;
  /** Level-0 corners of the N low-res patches, `[N, 2]` row-major (not to be modified). */
  coords: Int32Array;
  lowResLevel: number;
  highResLevel: number;
  /** Patch side in pixels of the low-res level, and in level-0 pixels. */
  patchSize: number;
  patchSizeLevel0: number;
  /** k, sub-patches per patch. */
  k: number;
  /** T = ceil(f N), the zoom steps to come (0 in full-resolution mode). */
  steps: number;
  /** The tissue segmentation the grid was laid on (null when coordinates were given). */
  tissue: TissueSegmentation | null;
}

/**
 * The state of the zoom ({@link AnalyzeSlideOptions.onEvent}): once after the low-res pass
 * (`step` 0, `action` null), then after each zoom step.
 * @example
 * ```ts
 * onEvent: (e) => { if (e.type === 'state') showProbs(e.probs, e.visited.length, e.steps); }
 * ```
 * @category Pipeline
 */
export interface AnalyzeStateEvent {
  type: 'state';
  /** Steps taken (0 before the first zoom). */
  step: number;
  /** T, all steps. */
  steps: number;
  /** The patch zoomed into at this step (null at step 0). */
  action: number | null;
  /** Patches zoomed into so far, in order. */
  visited: readonly number[];
  /** Class probabilities `[C]` of HAFED stage 2 on the current state. */
  probs: number[];
  /** Stage-2 attention on the current state, mean over branches, `[N]` (a new array). */
  attention: Float32Array;
}

/** What {@link AnalyzeSlideOptions.onEvent} receives. @category Pipeline */
export type AnalyzeEvent = AnalyzeLayoutEvent | AnalyzeStateEvent;

/**
 * Seconds spent in each phase of {@link analyzeSlide}.
 * @example
 * ```ts
 * const { timings } = await analyzeSlide(model, slide, { encoder });
 * timings.zoomRead / timings.total; // the share of the time spent waiting for sub-patch reads
 * ```
 * @category Pipeline
 */
export interface AnalyzeTimings {
  /** Tissue segmentation and patch grid (0 when coords were given). */
  tissue: number;
  /** Low-res pass: reading and encoding the N patches (0 in full-resolution mode). */
  lowResEncode: number;
  /** Zoom: waiting for sub-patch reads that were not ready. */
  zoomRead: number;
  /** Zoom: encoding the chosen patches' sub-patches and HAFED stage 1. */
  zoomEncode: number;
  /** Policy choices, environment steps (targeted update, re-scoring) and the final classification. */
  policy: number;
  /** Full-resolution mode: reading and encoding the N k sub-patches, then HAFED (0 in SASHA mode). */
  highResEncode: number;
  /** Wall-clock seconds of the whole call. */
  total: number;
}

/**
 * How much of the slide was read and encoded.
 * @example
 * ```ts
 * const { counts } = await analyzeSlide(model, slide, { encoder, config: { budget: 0.2 } });
 * counts.highResEncoded / (counts.patches * counts.k); // about 0.2: T k of the N k sub-patches
 * ```
 * @category Pipeline
 */
export interface AnalyzeCounts {
  /** N, low-res patches (tissue). */
  patches: number;
  /** k, sub-patches per patch. */
  k: number;
  /** T, zoom steps (0 in full-resolution mode). */
  steps: number;
  /** Low-res patches read and encoded (N in SASHA mode, 0 in full-resolution mode). */
  lowResRead: number;
  /** High-res sub-patches read, speculative reads included (T k + wasted; N k in full-resolution mode). */
  highResRead: number;
  /** High-res sub-patches encoded (T k; N k in full-resolution mode). */
  highResEncoded: number;
}

/**
 * A slide-level prediction of {@link analyzeSlide}.
 * @example
 * ```ts
 * const { prediction } = await analyzeSlide(model, slide, { encoder });
 * prediction; // { label: 1, probability: 0.92, probs: [0.08, 0.92], logits: [-1.2, 1.3] }
 * ```
 * @category Pipeline
 */
export interface AnalysisPrediction {
  /** The predicted class, `argmax(probs)`. */
  label: number;
  /** `probs[label]`. */
  probability: number;
  /** Class probabilities `[C]`, summing to 1. */
  probs: number[];
  /** Slide logits `[C]` of HAFED stage 2 on the final state. */
  logits: number[];
}

/** Builds a {@link AnalysisPrediction} from logits and probabilities. */
function predictionOf(logits: ArrayLike<number>, probs: ArrayLike<number>): AnalysisPrediction {
  const label = argmax(probs);
  return { label, probability: probs[label], probs: Array.from(probs), logits: Array.from(logits) };
}

/**
 * What {@link analyzeSlide} returns: plain arrays, no tensors (nothing to dispose).
 * @example
 * ```ts
 * const res: SlideAnalysis = await analyzeSlide(model, slide, { encoder });
 * res.visited;               // [412, 97, 1033, ...], T patch indices in the order zoomed
 * res.attention.length;      // N
 * await writeHeatmap('out/slide.png', slide, res); // sasha-wsi/node
 * ```
 * @category Pipeline
 */
export interface SlideAnalysis {
  /** The slide's name. */
  slide: string;
  mode: AnalyzeMode;
  /**
   * The slide-level prediction: the argmax class `label`, its probability `probability`, the
   * class probabilities `probs` `[C]` (softmax of `logits` `[C]`).
   */
  prediction: AnalysisPrediction;
  /** Indices of the patches zoomed into, in order (empty in full-resolution mode). */
  visited: number[];
  /** HAFED stage-2 attention on the final state, mean over branches, `[N]` (sums to 1). */
  attention: Float32Array;
  /** Level-0 corners of the N low-res patches, `[N, 2]` row-major. */
  coords: Int32Array;
  /** Low-res and high-res levels read. */
  lowResLevel: number;
  highResLevel: number;
  /** Patch side in pixels (both levels), and in level-0 pixels for a low-res patch. */
  patchSize: number;
  patchSizeLevel0: number;
  /** The budget f and policy used (`budget` 1 and policy null in full-resolution mode). */
  budget: number;
  policy: PolicyName | null;
  timings: AnalyzeTimings;
  counts: AnalyzeCounts;
}

/** Checks that the encoder, the levels and the model agree; returns the resolved pieces. */
function checkModel(
  model: SashaModel,
  cfg: Readonly<AnalyzeSlideConfig>,
  encoder: PatchEncoder,
  slide: string,
): { hafed: Hafed; dim: number; k: number; budget: number } {
  model.requireParts('hafed');
  const hafed = model.hafed as Hafed;
  if (!hafed.aggregator) {
    throw new ValueError("The model's HAFED reads low-resolution features only (input 'lowRes'); analysing slides needs a HAFED trained on U.");
  }
  const { dim, k } = hafed;
  if (!encoder || typeof encoder.encode !== 'function') throw new ValueError('Expected options.encoder to be a PatchEncoder (builtinEncoder(), layersModelEncoder(model), await onnxEncoder(bytes), ...).');
  if (encoder.dim !== dim) {
    throw new ShapeError(
      `Cannot analyse slide '${slide}': the encoder '${encoder.name}' gives features of width d = ${encoder.dim}, but the model was trained on d = ${dim}. ` +
        'Use the encoder the training features were extracted with.',
    );
  }
  let budget = 1;
  if (cfg.mode === 'sasha') {
    const own = model.env.budget;
    budget = cfg.budget ?? own;
    if (cfg.policy === 'learned') {
      if (!model.policy) {
        throw new StateError(
          `The model has no zoom policy; train one with 'sasha train policy --budget ${budget}', or use policy 'top-attention' or 'random'.`,
        );
      }
      if (Math.abs(budget - own) > 1e-9) {
        throw new ValueError(
          `The model's policy was trained for budget f = ${own}, but f = ${budget} was asked for. ` +
            `Load the policy trained for f = ${budget} (sasha train policy --budget ${budget}), use budget ${own}, or a baseline policy.`,
        );
      }
    }
    if (model.env.update !== 'none') model.requireParts('tsu');
  }
  return { hafed, dim, k, budget };
}

/** Pairs of levels of `source` whose ratio gives k sub-patches, for messages. */
function levelPairsFor(source: SlideSource, k: number): string {
  const pairs: string[] = [];
  for (let lr = 0; lr < source.levels.length; lr++) {
    for (let hr = 0; hr < lr; hr++) {
      const r = source.levels[lr].downsample / source.levels[hr].downsample;
      if (Math.abs(r * r - k) < 0.05 * k) pairs.push(`low-res ${lr} / high-res ${hr}`);
    }
  }
  return pairs.length ? pairs.join(', ') : 'none';
}

/** The levels, grid and sub-patches of a slide, checked against k. */
async function layout(
  source: SlideSource,
  cfg: Readonly<AnalyzeSlideConfig>,
  k: number,
  givenCoords: Int32Array | undefined,
): Promise<{ lrLevel: number; hrLevel: number; patchSize: number; patchSizeLevel0: number; coords: Int32Array; subCoords: Int32Array; tissue: TissueSegmentation | null }> {
  const lrLevel = resolveLevel(source, cfg.lowRes, cfg.mppTolerance);
  const hrLevel = resolveLevel(source, cfg.highRes, cfg.mppTolerance);
  checkLevel(source, lrLevel, 'the low-res level');
  const r = levelRatio(source.levels, lrLevel, hrLevel);
  if (r * r !== k) {
    throw new ShapeError(
      `Levels ${lrLevel} (low-res) and ${hrLevel} (high-res) of slide '${source.name}' give k = ${r * r} sub-patches per patch (ratio ${r}), ` +
        `but the model was trained with k = ${k}. The slide has ${describeLevels(source.levels)}; level pairs with k = ${k}: ${levelPairsFor(source, k)}.`,
    );
  }
  let coords: Int32Array;
  let patchSize: number;
  let tissue: TissueSegmentation | null = null;
  if (givenCoords) {
    if (!(givenCoords instanceof Int32Array) || givenCoords.length % 2 !== 0) {
      throw new ShapeError(`Expected coords to be an Int32Array [N, 2], but got ${givenCoords?.length} values.`);
    }
    if (givenCoords.length === 0) throw new DataError(`No patches given for slide '${source.name}' (coords is empty).`);
    coords = givenCoords;
    patchSize = cfg.grid.patchSize ?? 256;
    if (!(Number.isInteger(patchSize) && patchSize > 0)) throw new ValueError(`Expected grid.patchSize to be a positive integer, but got ${patchSize}.`);
  } else {
    const tiling = await tileSlide(source, { tissue: cfg.tissue, grid: cfg.grid, lowRes: { level: lrLevel }, mppTolerance: cfg.mppTolerance });
    coords = tiling.grid.coords;
    patchSize = tiling.grid.patchSize;
    tissue = tiling.tissue;
  }
  const sub = subPatchCoords(coords, source.levels, lrLevel, hrLevel, patchSize);
  const patchSizeLevel0 = Math.round(patchSize * source.levels[lrLevel].downsample);
  return { lrLevel, hrLevel, patchSize, patchSizeLevel0, coords, subCoords: sub.coords, tissue };
}

/** Mean over branches of a stage-2 attention `[M, N]` -> `[N]`. */
function meanBranches(att: Float32Array, m: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let b = 0; b < m; b++) for (let i = 0; i < n; i++) out[i] += att[b * n + i] / m;
  return out;
}

function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return Array.from(logits, (l) => Math.exp(l - max) / z);
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

const now = (): number => performance.now() / 1000;

/**
 * Reads the k sub-patches of chosen patches, with a small cache of reads started ahead
 * (speculation). Counts what it reads.
 */
class ZoomReader {
  private readonly cache = new Map<number, Promise<Uint8Array>>();
  /** Sub-patches read (speculative reads included). */
  read = 0;

  constructor(
    private readonly source: SlideSource,
    private readonly level: number,
    private readonly subCoords: Int32Array,
    private readonly k: number,
    private readonly patchSize: number,
    private readonly maxCached: number,
  ) {}

  private start(a: number): Promise<Uint8Array> {
    const { k, patchSize: p } = this;
    const bytes = p * p * 3;
    const out = new Uint8Array(k * bytes);
    this.read += k;
    const all = Promise.all(
      Array.from({ length: k }, (_, j) => {
        const o = (a * k + j) * 2;
        return this.source.readRegion(this.level, this.subCoords[o], this.subCoords[o + 1], p, p).then((px) => {
          if (px.length !== bytes) throw new DataError(`Slide '${this.source.name}' returned ${px.length} bytes for a ${p} x ${p} region.`);
          out.set(px, j * bytes);
        });
      }),
    ).then(() => out);
    all.catch(() => undefined); // a rejection is reported when the read is awaited
    return all;
  }

  /** Starts reading patch `a`'s sub-patches unless already started. */
  prefetch(a: number): void {
    if (this.cache.has(a)) return;
    this.cache.set(a, this.start(a));
    while (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
  }

  /** The pixels of patch `a`'s k sub-patches, `[k, p, p, 3]` bytes. */
  get(a: number): Promise<Uint8Array> {
    const hit = this.cache.get(a);
    if (hit) {
      this.cache.delete(a);
      return hit;
    }
    return this.start(a);
  }

  /** Waits for every read in flight (so that the source can be closed). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.cache.values()]);
    this.cache.clear();
  }
}

/**
 * The next-best allowed patches under a deterministic policy's current scores, `action`
 * excluded: the candidates for the next step (exact unless the step changes their scores).
 */
function nextCandidates(policy: ZoomPolicy, observation: Parameters<ZoomPolicy['selectAction']>[0], action: number, count: number): number[] {
  const mask = observation.actionMask.slice();
  mask[action] = 0;
  const out: number[] = [];
  for (let s = 0; s < count; s++) {
    let allowed = false;
    for (let i = 0; i < mask.length && !allowed; i++) allowed = mask[i] === 1;
    if (!allowed) break;
    const { action: c } = policy.selectAction({ ...observation, actionMask: mask }, { mode: 'argmax' });
    out.push(c);
    mask[c] = 0;
  }
  return out;
}

function checkAbort(signal: AbortSignal | undefined, name: string): void {
  if (signal?.aborted) throw new StateError(`The analysis of slide '${name}' was aborted.`);
}

/**
 * Analyses one slide from its pixels with SASHA's lazy zoom.
 *
 * SASHA mode: segment the tissue and lay the patch grid (or take `coords`); read and encode the
 * N low-res patches in batches, reading ahead (Z `[N, d]`); then run the zoom policy greedily
 * (argmax, visited patches masked) for T = ceil(f N) steps. At each step only the k
 * sub-patches of the chosen patch a are read and encoded (U_a `[k, d]`), HAFED stage 1 gives
 * `V_a = sum_j abar_j U_aj`, and the environment applies the targeted state update. The final
 * state S_T is classified by HAFED stage 2. `N + T k` patches are encoded instead of the
 * `N k` of the full-resolution mode, so the time approaches `(N + f N k) / (N k)` of it.
 *
 * Full-resolution mode: the N k sub-patches are read and encoded (read ahead as above), and
 * HAFED classifies V (the 100% baseline with the same encoder).
 *
 * The result equals the environment-based evaluation ({@link evaluateSasha}) on features
 * extracted from the same slide with the same encoder.
 *
 * @param model a trained {@link SashaModel} (HAFED, f_S and, for the learned policy, the policy
 *   of the budget); not disposed.
 * @param source the slide; not closed.
 * @param options the encoder (required), settings, given coordinates, progress, abort signal.
 * @returns the prediction, the patches visited in order, the final attention, coordinates,
 *   timings and counts (plain arrays, owned by the caller).
 * @throws ShapeError when the encoder's d or the levels' k do not match the model; DataError
 *   when the slide has no tissue; StateError or ValueError when the model has no policy for
 *   the budget; StateError when aborted.
 * @example
 * ```ts
 * const model = await loadSashaModel('models/c16', { budget: 0.2 });   // sasha-wsi/node
 * const slide = await openSlide('data/test_001.tif');
 * const res = await analyzeSlide(model, slide, { encoder, config: { lowRes: { level: 3 }, highRes: { level: 1 } } });
 * res.prediction;          // { label: 1, probs: [0.08, 0.92], logits: [...] }
 * res.visited.slice(0, 3); // [412, 97, 1033]
 * res.counts;              // { patches: 1650, k: 16, steps: 330, lowResRead: 1650, highResRead: 5280, ... }
 * ```
 * @category Pipeline
 */
export async function analyzeSlide(model: SashaModel, source: SlideSource, options: AnalyzeSlideOptions): Promise<SlideAnalysis> {
  if (options === null || typeof options !== 'object') throw new ValueError('Expected options { encoder, config? }.');
  const cfg = resolveAnalyzeSlideConfig(options.config);
  const { encoder, onProgress, signal, onEvent } = options;
  const t0 = now();
  const { hafed, dim, k, budget } = checkModel(model, cfg, encoder, source?.name ?? String(source));
  const timings: AnalyzeTimings = { tissue: 0, lowResEncode: 0, zoomRead: 0, zoomEncode: 0, policy: 0, highResEncode: 0, total: 0 };

  let t = now();
  const lay = await layout(source, cfg, k, options.coords);
  timings.tissue = options.coords ? 0 : now() - t;
  const { lrLevel, hrLevel, patchSize: p, coords, subCoords } = lay;
  const n = coords.length / 2;
  checkAbort(signal, source.name);
  const base = {
    slide: source.name,
    mode: cfg.mode,
    coords,
    lowResLevel: lrLevel,
    highResLevel: hrLevel,
    patchSize: p,
    patchSizeLevel0: lay.patchSizeLevel0,
  };
  const steps = cfg.mode === 'sasha' ? budgetSteps(budget, n) : 0;
  await onEvent?.({ type: 'layout', ...base, k, steps, tissue: lay.tissue });
  checkAbort(signal, source.name);

  if (cfg.mode === 'fullResolution') {
    t = now();
    const feats = await extractFeatures(source, { patchSize: p, lowResLevel: hrLevel, coords: subCoords }, encoder, {
      config: { batchSize: cfg.batchSize, prefetch: cfg.prefetch },
      dim,
      signal,
      onProgress: onProgress && ((e) => onProgress({ task: `high-res ${source.name}`, done: e.done, total: e.total })),
    });
    const { logits, attention } = classifyHighRes(hafed, feats.lowRes, n, k, dim);
    timings.highResEncode = now() - t;
    timings.total = now() - t0;
    return {
      ...base,
      prediction: predictionOf(logits, softmax(logits)),
      visited: [],
      attention,
      budget: 1,
      policy: null,
      timings,
      counts: { patches: n, k, steps: 0, lowResRead: 0, highResRead: n * k, highResEncoded: n * k },
    };
  }

  // 1. The low-res pass: Z [N, d], read ahead of the encoder.
  t = now();
  const z = await extractFeatures(source, { patchSize: p, lowResLevel: lrLevel, coords }, encoder, {
    config: { batchSize: cfg.batchSize, prefetch: cfg.prefetch },
    dim,
    signal,
    onProgress: onProgress && ((e) => onProgress({ task: `low-res ${source.name}`, done: e.done, total: e.total })),
  });
  timings.lowResEncode = now() - t;
  checkAbort(signal, source.name);

  // 2. The zoom: T steps, each reading and encoding one patch's k sub-patches.
  t = now();
  const envConfig: Partial<WsiEnvConfig> = { ...model.env, budget };
  const zt = tf.tensor2d(z.lowRes, [n, dim]);
  let env: WsiEnv;
  try {
    env = new WsiEnv({ classifier: hafed, fS: model.env.update === 'none' ? null : (model.fS as StateUpdateNet), lowRes: zt, config: envConfig });
  } finally {
    zt.dispose();
  }
  const policy = makePolicy(cfg.policy, { model: model.policy ?? undefined, classifier: hafed, seed: cfg.seed });
  const speculate = cfg.policy === 'random' ? 0 : cfg.speculate;
  const reader = new ZoomReader(source, hrLevel, subCoords, k, p, Math.max(1, 2 * speculate));
  const visited: number[] = [];
  let last: ReturnType<WsiEnv['step']> | null = null;
  try {
    const reset = env.reset({ seed: cfg.seed });
    let { observation } = reset;
    policy.startEpisode(observation);
    timings.policy += now() - t;
    if (onEvent) await onEvent({ type: 'state', step: 0, steps, action: null, visited: [], probs: Array.from(reset.info.probs), attention: env.attention() });
    for (let step = 0; step < steps; step++) {
      checkAbort(signal, source.name);
      t = now();
      const { action } = policy.selectAction(observation, { mode: 'argmax' });
      const candidates = speculate > 0 && step + 1 < steps ? nextCandidates(policy, observation, action, speculate) : [];
      timings.policy += now() - t;

      t = now();
      const pixels = await reader.get(action);
      timings.zoomRead += now() - t;
      for (const c of candidates) reader.prefetch(c);

      t = now();
      const va = await encodeAndAggregate(encoder, hafed, pixels, k, p, dim, source.name);
      timings.zoomEncode += now() - t;

      t = now();
      last = env.step(action, va);
      policy.observeStep(last.info);
      observation = last.observation;
      visited.push(action);
      timings.policy += now() - t;
      onProgress?.({ task: `zoom ${source.name}`, done: step + 1, total: steps });
      if (onEvent) {
        await onEvent({ type: 'state', step: step + 1, steps, action, visited: visited.slice(), probs: Array.from(last.info.probs), attention: env.attention() });
      }
    }
    t = now();
    const attention = env.attention();
    const info = last!.info;
    timings.policy += now() - t;
    timings.total = now() - t0;
    return {
      ...base,
      prediction: predictionOf(info.slideLogits, info.probs),
      visited,
      attention,
      budget,
      policy: cfg.policy,
      timings,
      counts: { patches: n, k, steps, lowResRead: n, highResRead: reader.read, highResEncoded: steps * k },
    };
  } finally {
    await reader.drain();
    policy.dispose();
    env.close();
  }
}

/** Encodes one patch's k sub-patches and aggregates them with HAFED stage 1: V_a `[d]`. */
async function encodeAndAggregate(encoder: PatchEncoder, hafed: Hafed, pixels: Uint8Array, k: number, p: number, dim: number, name: string): Promise<Float32Array> {
  const x = tf.tensor4d(Float32Array.from(pixels), [k, p, p, 3]);
  let u: tf.Tensor2D;
  try {
    u = await encodePatches(encoder, x);
  } finally {
    x.dispose();
  }
  let v: tf.Tensor2D;
  try {
    if (u.rank !== 2 || u.shape[0] !== k || u.shape[1] !== dim) {
      throw new ShapeError(`Encoder '${encoder.name}' returned ${fmtShape(u.shape)} for ${k} sub-patches of slide '${name}', expected [${k}, ${dim}].`);
    }
    v = tf.tidy(() => hafed.aggregate(tf.reshape(u, [1, k, dim]) as tf.Tensor3D));
  } finally {
    u.dispose();
  }
  try {
    return new Float32Array(v.dataSync());
  } finally {
    v.dispose();
  }
}

/** Patches per HAFED stage-1 call in the full-resolution mode (bounds the [n, k, h] activations). */
const STAGE1_CHUNK = 256;

/** HAFED on all sub-patch features `[N k, d]`: stage 1 in chunks, then stage 2. */
function classifyHighRes(hafed: Hafed, u: Float32Array, n: number, k: number, dim: number): { logits: Float32Array; attention: Float32Array } {
  const v = new Float32Array(n * dim);
  for (let s = 0; s < n; s += STAGE1_CHUNK) {
    const m = Math.min(STAGE1_CHUNK, n - s);
    const out = tf.tidy(() => hafed.aggregate(tf.tensor3d(u.subarray(s * k * dim, (s + m) * k * dim), [m, k, dim])));
    v.set(out.dataSync(), s * dim);
    out.dispose();
  }
  const vt = tf.tensor2d(v, [n, dim]);
  const pred = hafed.classify(vt);
  try {
    const att = pred.attention.dataSync() as Float32Array;
    return { logits: new Float32Array(pred.logits.dataSync()), attention: meanBranches(att, pred.attention.shape[0], n) };
  } finally {
    tf.dispose([vt, pred.logits, pred.probs, pred.attention]);
  }
}

/**
 * The JSON form of a {@link SlideAnalysis} ({@link analysisToJson}); `sasha infer` writes one
 * per slide (`OUT/slides/<id>.json`, with `id`, `file` and `label` added).
 * @example
 * ```ts
 * const json: SlideAnalysisJson = JSON.parse(readFileSync('out/slides/test_001.json', 'utf8'));
 * json.prediction.probability; // 0.92
 * json.visited[0];             // { order: 1, index: 412, x: 52736, y: 18432 }
 * ```
 * @category Pipeline
 */
export interface SlideAnalysisJson {
  slide: string;
  mode: AnalyzeMode;
  prediction: AnalysisPrediction;
  /** Seconds of the whole analysis (`timings.total`). */
  seconds: number;
  budget: number;
  policy: PolicyName | null;
  /** The zoomed patches in the order visited: rank (1 first), index and level-0 corner. */
  visited: { order: number; index: number; x: number; y: number }[];
  lowResLevel: number;
  highResLevel: number;
  patchSize: number;
  patchSizeLevel0: number;
  /** Seconds per phase, rounded to milliseconds. */
  timings: AnalyzeTimings;
  counts: AnalyzeCounts;
  /** Level-0 corners of the N patches as `[x, y]` pairs. */
  coords: [number, number][];
  /** Final attention `[N]`, 6 significant digits. */
  attention: number[];
}

/**
 * A {@link SlideAnalysis} as JSON-ready values: the prediction with its probability, the visited
 * patches with their coordinates in order, coordinates as `[x, y]` pairs, timings rounded to
 * milliseconds.
 * @param a an analysis; not modified.
 * @returns a new plain object (no typed arrays).
 * @example
 * ```ts
 * const json = analysisToJson(await analyzeSlide(model, slide, { encoder }));
 * json.visited[0]; // { order: 1, index: 412, x: 52736, y: 18432 }
 * ```
 * @category Pipeline
 */
export function analysisToJson(a: SlideAnalysis): SlideAnalysisJson {
  return {
    slide: a.slide,
    mode: a.mode,
    prediction: a.prediction,
    seconds: +a.timings.total.toFixed(3),
    budget: a.budget,
    policy: a.policy,
    visited: a.visited.map((i, order) => ({ order: order + 1, index: i, x: a.coords[2 * i], y: a.coords[2 * i + 1] })),
    lowResLevel: a.lowResLevel,
    highResLevel: a.highResLevel,
    patchSize: a.patchSize,
    patchSizeLevel0: a.patchSizeLevel0,
    timings: Object.fromEntries(Object.entries(a.timings).map(([key, s]) => [key, +s.toFixed(3)])) as unknown as AnalyzeTimings,
    counts: a.counts,
    coords: Array.from({ length: a.coords.length / 2 }, (_, i) => [a.coords[2 * i], a.coords[2 * i + 1]] as [number, number]),
    attention: Array.from(a.attention, (x) => +x.toPrecision(6)),
  };
}

/**
 * What {@link renderHeatmap} needs, read back from the JSON of {@link analysisToJson} (to draw
 * a heatmap later without analysing the slide again).
 * @param json the parsed JSON of one slide.
 * @returns coordinates `[N, 2]` (flat), attention `[N]`, visited indices in order, patch side.
 * @throws DataError when fields are missing or of the wrong size.
 * @example
 * ```ts
 * const json = JSON.parse(readFileSync('out/slides/test_001.json', 'utf8'));
 * await writeHeatmap('out/heatmaps/test_001.png', slide, heatmapDataFromJson(json));
 * ```
 * @category Pipeline
 */
export function heatmapDataFromJson(json: Pick<SlideAnalysisJson, 'coords' | 'attention' | 'visited' | 'patchSizeLevel0'>): HeatmapData {
  const ok =
    json != null &&
    Array.isArray(json.coords) &&
    Array.isArray(json.attention) &&
    Array.isArray(json.visited) &&
    json.coords.length === json.attention.length &&
    typeof json.patchSizeLevel0 === 'number';
  if (!ok) throw new DataError('Expected the JSON of analysisToJson (coords, attention, visited, patchSizeLevel0); the file is incomplete or from another tool.');
  const coords = new Int32Array(json.coords.length * 2);
  json.coords.forEach(([x, y], i) => {
    coords[2 * i] = x;
    coords[2 * i + 1] = y;
  });
  return {
    coords,
    attention: Float32Array.from(json.attention),
    visited: json.visited.map((v) => v.index),
    patchSizeLevel0: json.patchSizeLevel0,
  };
}
