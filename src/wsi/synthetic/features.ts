/**
 * A seeded generator of synthetic slides as features (Z, U, coords, label), built so that
 * zooming matters: a benign "mimic" tissue looks like tumour at low resolution and differs
 * from it only at high resolution. The generative model and its parameters are described in
 * `src/wsi/synthetic/README.md`.
 *
 * Everything here is plain TypeScript on typed arrays (browser-safe); tensors are made only by
 * {@link slideToBag}, {@link generateSyntheticCohort} and {@link SyntheticDataset.load}.
 *
 * @packageDocumentation
 */
import { tf } from '../../core/tf.js';
import { DataError, ValueError } from '../../core/errors.js';
import { checkNumber, resolveConfig } from '../../core/config.js';
import { Rng } from '../../core/random.js';
import type { SlideBag, SlideDataset, SlidePart, SlideSplit } from '../../core/data.js';
import { logUniform, placeClusters, slideSeed, stratifiedSplit } from './seeding.js';

/**
 * Parameters of the synthetic feature cohort. Norms are relative: every feature is finally
 * multiplied by `sqrt(dim)`, so that a coordinate has a magnitude of about 1 whatever `dim`.
 * @category Synthetic
 */
export interface SyntheticFeatureConfig {
  /** Seed of the whole cohort: equal configs give equal cohorts. */
  seed: number;
  /** Number of slides. */
  numSlides: number;
  /** Smallest number of low-res patches N of a slide (N is log-uniform in [minPatches, maxPatches]). */
  minPatches: number;
  /** Largest number of low-res patches N of a slide. */
  maxPatches: number;
  /** High-res sub-patches per patch k; a perfect square (r x r grid). */
  k: number;
  /** Feature width d. */
  dim: number;
  /**
   * Number of slide classes C: 0 is normal, 1 .. C-1 are lesion types that look alike at low
   * resolution (one shared low-res signature) and differ at high resolution (each its own
   * detail signature); a slide of class c holds lesions of type c. Default 2 (tumour / normal).
   */
  numClasses: number;
  /** Share of positive (lesion) slides, spread evenly over the lesion classes. */
  positiveFraction: number;
  /** Shares of train / val / test slides (stratified by label); they must sum to 1. */
  splitFractions: [number, number, number];
  /** Number of normal tissue types (spatial regions). */
  numTissueTypes: number;
  /** Mean number of patches of a tissue region (Voronoi cell). */
  regionPatches: number;
  /** Share of lesions (tumour or mimic) that are micro-lesions: a small absolute number of sub-patches in one cluster. */
  microLesionRate: number;
  /** Range of the number of sub-patches of a micro-lesion (uniform integer). */
  microLesionSubPatches: [number, number];
  /** Range of the share of a slide's sub-patches covered by a macro-lesion (log-uniform). */
  macroLesionFraction: [number, number];
  /** Probability that a negative slide contains benign mimic tissue. */
  mimicInNegative: number;
  /** Probability that a positive slide also contains benign mimic tissue. */
  mimicInPositive: number;
  /** Largest number of spatial clusters of tumour (or of mimic) in a slide. */
  maxClusters: number;
  /** Range of the share of sub-patches that a cluster turns to tumour or mimic inside its footprint. */
  infiltrationRange: [number, number];
  /** Share of the feature space visible at low resolution (the rest is high-res detail). */
  coarseFraction: number;
  /** Norm of the component common to all tissue. */
  commonNorm: number;
  /** Norm of the low-res (coarse) signature of each normal tissue type. */
  typeNorm: number;
  /** Norm of the low-res signature shared by tumour and mimic ("suspicious"). */
  suspiciousNorm: number;
  /** Norm of the coarse difference between tumour and mimic (0: identical at low res). */
  lowResLeak: number;
  /** Norm of each class's high-res detail signature. */
  detailNorm: number;
  /** Norm of the smooth spatial field (within-region variation, visible at low res). */
  fieldNorm: number;
  /** Correlation length of the spatial field, in patches. */
  fieldLength: number;
  /** Norm of the per-patch low-res noise. */
  lowResNoise: number;
  /** Norm of the per-sub-patch high-res noise. */
  highResNoise: number;
  /** Norm of a per-slide offset of every feature (stain and scanner variation). */
  slideShift: number;
  /** Side of a low-res patch in level-0 pixels (coords step). */
  patchSizeLevel0: number;
}

/** Names of the presets. @category Synthetic */
export type SyntheticPresetName = 'tiny' | 'small' | 'default' | 'multiclass';

/**
 * The benchmark setting (`default` preset): 180 slides, N in [300, 3000], k = 16, d = 64.
 * d = 64 keeps benchmarks fast; set `dim: 384` for the width of ViT-S features.
 * @category Synthetic
 */
export const DEFAULT_SYNTHETIC_FEATURE_CONFIG: Readonly<SyntheticFeatureConfig> = Object.freeze({
  seed: 0,
  numSlides: 180, // enough for a 108 / 22 / 50 split
  minPatches: 300, // docs/reference-code.md §5.5: N varies per slide; CAMELYON16 LR bags are hundreds to thousands
  maxPatches: 3000, // N = 3000: the reference's dense PPO update no longer fits in 24 GB (bench/RESULTS.md, ppo-update)
  k: 16, // docs/reference-code.md §1.2: 4 x 4 sub-patches
  dim: 64, // speed; the reference uses 384 (docs/reference-code.md §1.3)
  numClasses: 2, // the paper's two tasks are binary (normal / tumour, LUAD / LUSC)
  positiveFraction: 0.4, // docs/reference-code.md §8.2: CAMELYON16 has 160 tumour of 399 slides
  splitFractions: [0.6, 0.12, 0.28] as [number, number, number], // docs/reference-code.md §8.2: 242 / 27 / 129
  numTissueTypes: 4, // README "generative model": several normal types (stroma, lymphoid, fat, epithelium)
  regionPatches: 40, // README: regions of tens of patches, larger than the cosine neighbourhood
  microLesionRate: 0.5, // about half of CAMELYON16 tumour slides hold only micro-metastases or isolated cells
  microLesionSubPatches: [3, 24] as [number, number], // README: 1-8 patches, often missed by a random 20%
  macroLesionFraction: [0.01, 0.1] as [number, number], // with micro-lesions: from under 1% to about 10% of sub-patches
  mimicInNegative: 0.7, // README: most negatives carry a look-alike, so Z alone stays well below U
  mimicInPositive: 0.3, // README: fewer in positives, so the number of suspicious regions says little
  maxClusters: 3, // task brief: tumour in a few spatial clusters
  infiltrationRange: [0.2, 0.4] as [number, number], // README: lesions stay a minority of each patch's sub-patches
  coarseFraction: 0.75, // README: a quarter of the feature space is high-res detail
  commonNorm: 1, // README: the reference scale of every norm below
  typeNorm: 0.6, // README: tissue types at cosine about 0.7 from each other at low res
  suspiciousNorm: 3, // README: a patch with 2 of 16 lesion sub-patches ranks among the most suspicious
  lowResLeak: 0, // README: tumour and mimic identical at low res
  detailNorm: 1, // README: tumour vs mimic sub-patches far apart at high res
  fieldNorm: 0.5, // README: tuned with fieldLength for 2-10 neighbours at |cos| >= 0.95
  fieldLength: 1.6, // README: see fieldNorm
  lowResNoise: 0.12, // README: see fieldNorm
  highResNoise: 0.5, // README: per-sub-patch noise, half the detail norm
  slideShift: 0.15, // README: stain and scanner variation between slides
  patchSizeLevel0: 2048, // docs/reference-code.md §1.2: a level-3 patch of 256 px covers 2048 level-0 px
});

/**
 * Named settings: `tiny` for unit tests (12 slides, N 30-80, d 16), `small` for CI and the demo
 * (60 slides, N 100-400, d 32), `default` for benchmarks (180 slides, N 300-3000, d 64), and
 * `multiclass`: three classes (normal and two lesion types identical at low resolution, apart
 * at high resolution), 90 slides of the `small` size, a third of them per class.
 * @example
 * ```ts
 * const cohort = generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, seed: 7 });
 * ```
 * @category Synthetic
 */
export const SYNTHETIC_PRESETS: Readonly<Record<SyntheticPresetName, Readonly<SyntheticFeatureConfig>>> = Object.freeze({
  tiny: Object.freeze({
    ...DEFAULT_SYNTHETIC_FEATURE_CONFIG,
    numSlides: 12,
    minPatches: 30,
    maxPatches: 80,
    dim: 16,
    splitFractions: [0.5, 0.25, 0.25] as [number, number, number],
    regionPatches: 20,
  }),
  small: Object.freeze({
    ...DEFAULT_SYNTHETIC_FEATURE_CONFIG,
    numSlides: 60,
    minPatches: 100,
    maxPatches: 400,
    dim: 32,
    regionPatches: 30,
  }),
  default: DEFAULT_SYNTHETIC_FEATURE_CONFIG,
  multiclass: Object.freeze({
    ...DEFAULT_SYNTHETIC_FEATURE_CONFIG,
    numClasses: 3,
    positiveFraction: 2 / 3,
    numSlides: 90,
    minPatches: 100,
    maxPatches: 400,
    dim: 32,
    regionPatches: 30,
  }),
});

/** Sub-patch classes: `0 .. numTissueTypes-1` are normal types, then these two. @category Synthetic */
export function mimicClass(config: Pick<SyntheticFeatureConfig, 'numTissueTypes'>): number {
  return config.numTissueTypes;
}
/**
 * Class index of tumour sub-patches (of the first lesion type; lesion type c of a multi-class
 * cohort is {@link lesionClass}).
 * @category Synthetic
 */
export function tumourClass(config: Pick<SyntheticFeatureConfig, 'numTissueTypes'>): number {
  return config.numTissueTypes + 1;
}

/**
 * Class index of the sub-patches of lesion type `slideClass` (1 .. C-1): `numTissueTypes + slideClass`.
 * @example
 * ```ts
 * lesionClass({ numTissueTypes: 4 }, 2); // 6
 * ```
 * @category Synthetic
 */
export function lesionClass(config: Pick<SyntheticFeatureConfig, 'numTissueTypes'>, slideClass: number): number {
  return config.numTissueTypes + slideClass;
}

/**
 * Resolves and checks a synthetic config (partial over {@link DEFAULT_SYNTHETIC_FEATURE_CONFIG}).
 * @throws ValueError naming the bad key.
 * @category Synthetic
 */
export function resolveSyntheticConfig(partial?: Partial<SyntheticFeatureConfig> | null): Readonly<SyntheticFeatureConfig> {
  return resolveConfig('SyntheticFeatureConfig', DEFAULT_SYNTHETIC_FEATURE_CONFIG, partial, (c) => {
    const name = 'SyntheticFeatureConfig';
    checkNumber(name, c, 'seed');
    checkNumber(name, c, 'numSlides', { min: 2, integer: true });
    checkNumber(name, c, 'minPatches', { min: 4, integer: true });
    checkNumber(name, c, 'maxPatches', { min: c.minPatches, integer: true });
    checkNumber(name, c, 'k', { min: 1, integer: true });
    const r = Math.round(Math.sqrt(c.k));
    if (r * r !== c.k) throw new ValueError(`Expected ${name}.k to be a perfect square (4, 9, 16, ...), but got ${c.k}.`);
    checkNumber(name, c, 'dim', { min: 4, integer: true });
    checkNumber(name, c, 'numClasses', { min: 2, max: 32, integer: true });
    checkNumber(name, c, 'positiveFraction', { min: 0, max: 1, minExclusive: true, maxExclusive: true });
    const sf = c.splitFractions;
    if (!Array.isArray(sf) || sf.length !== 3 || sf.some((v) => typeof v !== 'number' || !(v >= 0))) {
      throw new ValueError(`Expected ${name}.splitFractions to be three non-negative numbers, but got ${JSON.stringify(sf)}.`);
    }
    if (Math.abs(sf[0] + sf[1] + sf[2] - 1) > 1e-6) {
      throw new ValueError(`Expected ${name}.splitFractions to sum to 1, but got ${JSON.stringify(sf)}.`);
    }
    checkNumber(name, c, 'numTissueTypes', { min: 1, max: 250, integer: true });
    checkNumber(name, c, 'regionPatches', { min: 1 });
    checkNumber(name, c, 'microLesionRate', { min: 0, max: 1 });
    const [mlo, mhi] = c.microLesionSubPatches ?? [];
    if (!(Number.isInteger(mlo) && Number.isInteger(mhi) && mlo >= 1 && mlo <= mhi)) {
      throw new ValueError(`Expected ${name}.microLesionSubPatches to be integers [lo, hi] with 1 <= lo <= hi, but got ${JSON.stringify(c.microLesionSubPatches)}.`);
    }
    for (const key of ['macroLesionFraction', 'infiltrationRange'] as const) {
      const [lo, hi] = c[key] ?? [];
      if (!(typeof lo === 'number' && typeof hi === 'number' && lo > 0 && lo <= hi && hi <= 1)) {
        throw new ValueError(`Expected ${name}.${key} to be [lo, hi] with 0 < lo <= hi <= 1, but got ${JSON.stringify(c[key])}.`);
      }
    }
    checkNumber(name, c, 'mimicInNegative', { min: 0, max: 1 });
    checkNumber(name, c, 'mimicInPositive', { min: 0, max: 1 });
    checkNumber(name, c, 'maxClusters', { min: 1, integer: true });
    checkNumber(name, c, 'coarseFraction', { min: 0, max: 1, minExclusive: true, maxExclusive: true });
    for (const key of [
      'commonNorm',
      'typeNorm',
      'suspiciousNorm',
      'lowResLeak',
      'detailNorm',
      'fieldNorm',
      'lowResNoise',
      'highResNoise',
      'slideShift',
    ] as const) {
      checkNumber(name, c, key, { min: 0 });
    }
    checkNumber(name, c, 'fieldLength', { min: 0, minExclusive: true });
    checkNumber(name, c, 'patchSizeLevel0', { min: 1, integer: true });
  });
}

/**
 * Ground truth of one synthetic slide (what the features were generated from).
 * @category Synthetic
 */
export interface SyntheticTruth {
  /** Class of every sub-patch, [N * k] row-major: types `0..T-1`, then mimic `T`, tumour `T+1` (lesion type c of a multi-class cohort: `T+c`). */
  subPatchClass: Uint8Array;
  /** Share of the slide's sub-patches that are tumour (of any lesion type). */
  tumourFraction: number;
  /** Share of the slide's sub-patches that are mimic. */
  mimicFraction: number;
  /** Number of patches holding at least one tumour sub-patch. */
  tumourPatches: number;
  /** Number of patches holding at least one mimic sub-patch. */
  mimicPatches: number;
  /** Number of tumour clusters (0 for negative slides). */
  tumourClusters: number;
  /** Number of mimic clusters (0 when the slide has no mimic). */
  mimicClusters: number;
  /** Grid size in patches. */
  gridCols: number;
  gridRows: number;
}

/**
 * One synthetic slide as flat typed arrays.
 * @category Synthetic
 */
export interface SyntheticSlide {
  id: string;
  label: number;
  /** Number of low-res patches N. */
  n: number;
  k: number;
  dim: number;
  /** Z, [N, d] row-major. */
  lowRes: Float32Array;
  /** U, [N, k, d] row-major. */
  highRes: Float32Array;
  /** Level-0 (x, y) top-left of each patch, [N, 2]. */
  coords: Int32Array;
  truth: SyntheticTruth;
}

/** Cohort-level constants shared by every slide: the class signatures in feature space. */
interface World {
  dim: number;
  coarseDim: number;
  /** Coarse basis, [coarseDim][dim] (orthonormal rows). */
  coarseBasis: Float64Array[];
  /** High-res signature of every class (coarse + detail), [numClasses][dim]. */
  classHigh: Float64Array[];
  /** Low-res signature of every class (coarse part only), [numClasses][dim]. */
  classLow: Float64Array[];
}

const worldCache = new Map<string, World>();

function worldKey(c: SyntheticFeatureConfig): string {
  return JSON.stringify([c.seed, c.dim, c.numTissueTypes, c.numClasses, c.coarseFraction, c.commonNorm, c.typeNorm, c.suspiciousNorm, c.lowResLeak, c.detailNorm]);
}

/** A vector of `m` Gaussian entries with expected norm `norm`. */
function gaussianVector(rng: Rng, m: number, norm: number): Float64Array {
  const v = new Float64Array(m);
  const s = norm / Math.sqrt(m);
  for (let i = 0; i < m; i++) v[i] = rng.normal() * s;
  return v;
}

/** `dim` orthonormal vectors of length `dim` (Gram-Schmidt of Gaussian vectors). */
function randomOrthonormal(rng: Rng, dim: number): Float64Array[] {
  const out: Float64Array[] = [];
  while (out.length < dim) {
    const v = gaussianVector(rng, dim, 1);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of out) {
        let dot = 0;
        for (let i = 0; i < dim; i++) dot += v[i] * q[i];
        for (let i = 0; i < dim; i++) v[i] -= dot * q[i];
      }
    }
    let nrm = 0;
    for (let i = 0; i < dim; i++) nrm += v[i] * v[i];
    nrm = Math.sqrt(nrm);
    if (nrm < 1e-8) continue;
    for (let i = 0; i < dim; i++) v[i] /= nrm;
    out.push(v);
  }
  return out;
}

/** Maps coefficients in a sub-basis to feature space: `sum_r coef[r] basis[r]`. */
function combine(basis: Float64Array[], coef: Float64Array, dim: number): Float64Array {
  const out = new Float64Array(dim);
  for (let r = 0; r < coef.length; r++) {
    const c = coef[r];
    const b = basis[r];
    for (let i = 0; i < dim; i++) out[i] += c * b[i];
  }
  return out;
}

function buildWorld(c: SyntheticFeatureConfig): World {
  const key = worldKey(c);
  const hit = worldCache.get(key);
  if (hit) return hit;
  const rng = new Rng(c.seed * 7919 + 17);
  const dim = c.dim;
  const coarseDim = Math.max(2, Math.min(dim - 2, Math.round(dim * c.coarseFraction)));
  const fineDim = dim - coarseDim;
  const q = randomOrthonormal(rng, dim);
  const coarseBasis = q.slice(0, coarseDim);
  const fineBasis = q.slice(coarseDim);
  const common = gaussianVector(rng, coarseDim, c.commonNorm);
  const suspicious = gaussianVector(rng, coarseDim, c.suspiciousNorm);
  const leak = gaussianVector(rng, coarseDim, c.lowResLeak);
  // types, mimic, tumour (lesion type 1), then lesion types 2 .. C-1, drawn last so that a
  // binary cohort is the same whatever C allows
  const numClasses = c.numTissueTypes + 1 + (c.numClasses - 1);
  const classHigh: Float64Array[] = [];
  const classLow: Float64Array[] = [];
  for (let cls = 0; cls < numClasses; cls++) {
    const coarse = Float64Array.from(common);
    if (cls < c.numTissueTypes) {
      const t = gaussianVector(rng, coarseDim, c.typeNorm);
      for (let i = 0; i < coarseDim; i++) coarse[i] += t[i];
    } else {
      for (let i = 0; i < coarseDim; i++) coarse[i] += suspicious[i];
      if (cls >= c.numTissueTypes + 1) for (let i = 0; i < coarseDim; i++) coarse[i] += leak[i];
    }
    const detail = gaussianVector(rng, fineDim, c.detailNorm);
    const low = combine(coarseBasis, coarse, dim);
    const high = Float64Array.from(low);
    const fine = combine(fineBasis, detail, dim);
    for (let i = 0; i < dim; i++) high[i] += fine[i];
    classLow.push(low);
    classHigh.push(high);
  }
  const world = { dim, coarseDim, coarseBasis, classHigh, classLow };
  if (worldCache.size > 16) worldCache.clear();
  worldCache.set(key, world);
  return world;
}

/**
 * Slide ids of the cohort: `slide_000`, `slide_001`, ...
 * @category Synthetic
 */
export function syntheticIds(config?: Partial<SyntheticFeatureConfig>): string[] {
  const c = resolveSyntheticConfig(config);
  const width = Math.max(3, String(c.numSlides - 1).length);
  return Array.from({ length: c.numSlides }, (_, i) => `slide_${String(i).padStart(width, '0')}`);
}

/**
 * Labels of the cohort (0 = normal, 1 .. C-1 = lesion type), exactly
 * `round(positiveFraction * numSlides)` positives placed by a seeded permutation, given the
 * lesion classes in turn (1, 2, ..., C-1, 1, ...).
 * @category Synthetic
 */
export function syntheticLabels(config?: Partial<SyntheticFeatureConfig>): number[] {
  const c = resolveSyntheticConfig(config);
  const rng = new Rng(c.seed * 31 + 5);
  const numPos = Math.min(c.numSlides - 1, Math.max(1, Math.round(c.positiveFraction * c.numSlides)));
  const perm = rng.permutation(c.numSlides);
  const labels = new Array<number>(c.numSlides).fill(0);
  for (let i = 0; i < numPos; i++) labels[perm[i]] = 1 + (i % (c.numClasses - 1));
  return labels;
}

/**
 * The cohort's train / val / test split, stratified by label (each subset gets its share of
 * each class, rounded; at least one slide per non-empty share).
 * @category Synthetic
 */
export function syntheticSplit(config?: Partial<SyntheticFeatureConfig>): SlideSplit {
  const c = resolveSyntheticConfig(config);
  const ids = syntheticIds(c);
  const labels = syntheticLabels(c);
  return stratifiedSplit(ids, labels, c.splitFractions, new Rng(c.seed * 131 + 11));
}

/** Picks `count` cells of a cols x rows grid that form a few tissue blobs. Returns cell indices. */
function tissueCells(rng: Rng, cols: number, rows: number, count: number): Int32Array {
  const blobs = 1 + rng.int(3);
  const cx: number[] = [];
  const cy: number[] = [];
  const rad: number[] = [];
  for (let b = 0; b < blobs; b++) {
    cx.push(rng.uniform(0.25, 0.75) * cols);
    cy.push(rng.uniform(0.25, 0.75) * rows);
    rad.push(rng.uniform(0.25, 0.45) * Math.sqrt(cols * rows));
  }
  const score = new Float64Array(cols * rows);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      let s = 0;
      for (let b = 0; b < blobs; b++) {
        const dx = x + 0.5 - cx[b];
        const dy = y + 0.5 - cy[b];
        s += Math.exp(-(dx * dx + dy * dy) / (2 * rad[b] * rad[b]));
      }
      score[y * cols + x] = s * (1 + 0.15 * rng.normal());
    }
  }
  const order = Array.from({ length: cols * rows }, (_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
  const chosen = order.slice(0, count).sort((a, b) => a - b); // row-major scan order, like a patch grid
  return Int32Array.from(chosen);
}

/** Random Fourier features of a smooth vector field over the plane. */
interface Field {
  freqX: Float64Array;
  freqY: Float64Array;
  phase: Float64Array;
  /** [R][dim] feature-space directions (already scaled). */
  dirs: Float64Array[];
}

function makeField(rng: Rng, world: World, norm: number, length: number, features = 48): Field {
  const freqX = new Float64Array(features);
  const freqY = new Float64Array(features);
  const phase = new Float64Array(features);
  const dirs: Float64Array[] = [];
  const amp = Math.sqrt(2 / features);
  for (let r = 0; r < features; r++) {
    freqX[r] = rng.normal() / length;
    freqY[r] = rng.normal() / length;
    phase[r] = rng.uniform(0, 2 * Math.PI);
    const coef = gaussianVector(rng, world.coarseDim, norm * amp);
    dirs.push(combine(world.coarseBasis, coef, world.dim));
  }
  return { freqX, freqY, phase, dirs };
}

function fieldAt(f: Field, x: number, y: number, out: Float64Array): void {
  out.fill(0);
  const dim = out.length;
  for (let r = 0; r < f.phase.length; r++) {
    const c = Math.cos(f.freqX[r] * x + f.freqY[r] * y + f.phase[r]);
    const d = f.dirs[r];
    for (let i = 0; i < dim; i++) out[i] += c * d[i];
  }
}

/**
 * Generates slide `index` of the cohort described by `config`, from `(seed, index)` alone, so
 * that a large cohort can be produced one slide at a time.
 *
 * Model (details in the README): sub-patch `j` of patch `i` has a class `c_ij` (a normal
 * tissue type from a Voronoi map, or mimic, or tumour, placed in clusters);
 * `U_ij = s (h[c_ij] + g(x_i) + b) + s e_ij` and `Z_i = s (mean_j l[c_ij] + g(x_i) + P b) + s n_i`, where
 * `h` and `l` are the high- and low-res class signatures (`l` is `h` without its detail part,
 * and `l[tumour] = l[mimic]`), `g` a smooth spatial field, `b` a slide offset, `e`, `n` noise,
 * and `s = sqrt(d)`.
 *
 * @param config a resolved or partial config.
 * @param index slide index in `[0, numSlides)`.
 * @returns plain arrays (no tensors; nothing to dispose).
 * @example
 * ```ts
 * const slide = syntheticSlide(SYNTHETIC_PRESETS.tiny, 0);
 * slide.lowRes.length === slide.n * slide.dim; // true
 * ```
 * @category Synthetic
 */
export function syntheticSlide(config: Partial<SyntheticFeatureConfig> | undefined, index: number): SyntheticSlide {
  const c = resolveSyntheticConfig(config);
  if (!(Number.isInteger(index) && index >= 0 && index < c.numSlides)) {
    throw new ValueError(`Expected a slide index in [0, ${c.numSlides}), but got ${index}.`);
  }
  const world = buildWorld(c);
  const labels = syntheticLabels(c);
  const id = syntheticIds(c)[index];
  const label = labels[index];
  const rng = new Rng(slideSeed(c.seed, index, 0x2545f491));
  const { k, dim } = c;
  const r = Math.round(Math.sqrt(k));
  const T = c.numTissueTypes;
  const MIMIC = T;
  const TUMOUR = T + 1;

  // Layout: N tissue cells in blobs on a grid.
  const n = Math.round(logUniform(rng, c.minPatches, c.maxPatches + 0.999));
  const aspect = rng.uniform(0.7, 1.4);
  const area = n / 0.55;
  const cols = Math.max(2, Math.ceil(Math.sqrt(area * aspect)));
  const rows = Math.max(2, Math.ceil(area / cols));
  const cells = tissueCells(rng, cols, Math.max(rows, Math.ceil(n / cols)), n);
  const px = new Float64Array(n);
  const py = new Float64Array(n);
  const coords = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    px[i] = cells[i] % cols;
    py[i] = Math.floor(cells[i] / cols);
    coords[2 * i] = px[i] * c.patchSizeLevel0;
    coords[2 * i + 1] = py[i] * c.patchSizeLevel0;
  }
  // Sub-patch centres in patch units; j = r * xi + yi (outer loop over x, as the reference).
  const subX = new Float64Array(n * k);
  const subY = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let xi = 0; xi < r; xi++) {
      for (let yi = 0; yi < r; yi++) {
        const j = r * xi + yi;
        subX[i * k + j] = px[i] + (xi + 0.5) / r;
        subY[i * k + j] = py[i] + (yi + 0.5) / r;
      }
    }
  }

  // Normal tissue types: Voronoi regions at sub-patch resolution.
  const numSeeds = Math.max(T, Math.round(n / c.regionPatches));
  const seedX: number[] = [];
  const seedY: number[] = [];
  const seedType: number[] = [];
  for (let s = 0; s < numSeeds; s++) {
    const cell = rng.int(n);
    seedX.push(px[cell] + rng.next());
    seedY.push(py[cell] + rng.next());
    seedType.push(s < T && numSeeds >= 2 * T ? s : rng.int(T));
  }
  const subClass = new Uint8Array(n * k);
  for (let s = 0; s < n * k; s++) {
    let best = 0;
    let bestD = Infinity;
    for (let q = 0; q < numSeeds; q++) {
      const dx = subX[s] - seedX[q];
      const dy = subY[s] - seedY[q];
      const d2 = dx * dx + dy * dy;
      if (d2 < bestD) {
        bestD = d2;
        best = q;
      }
    }
    subClass[s] = seedType[best];
  }

  // Lesions: tumour (positives) and benign mimic, each in a few clusters.
  const cap = Math.max(1, Math.floor((k - 1) / 2));
  const isLesion = (cls: number) => cls >= MIMIC;
  const allSubPatches = Int32Array.from({ length: n * k }, (_, i) => i);
  const lesion = (cls: number): { subs: number; clusters: number } => {
    const micro = rng.next() < c.microLesionRate;
    const [mlo, mhi] = c.microLesionSubPatches;
    const quota = Math.min(
      Math.floor(n * cap * 0.5),
      micro ? mlo + rng.int(mhi - mlo + 1) : Math.max(mlo, Math.round(logUniform(rng, c.macroLesionFraction[0], c.macroLesionFraction[1]) * n * k)),
    );
    const clusters = micro ? 1 : 1 + rng.int(c.maxClusters);
    const density = rng.uniform(c.infiltrationRange[0], c.infiltrationRange[1]);
    const subs = placeClusters(rng, {
      labels: subClass,
      candidates: allSubPatches,
      x: (q) => subX[q],
      y: (q) => subY[q],
      patchOf: (q) => Math.floor(q / k),
      perPatch: new Int32Array(n),
      eligible: (c) => !isLesion(c),
      value: cls,
      quota,
      clusters,
      density,
      cap,
      jitter: 0.35,
    });
    return { subs, clusters: subs > 0 ? clusters : 0 };
  };
  const tumour = label >= 1 ? lesion(TUMOUR + label - 1) : { subs: 0, clusters: 0 };
  const mimic = rng.next() < (label >= 1 ? c.mimicInPositive : c.mimicInNegative) ? lesion(MIMIC) : { subs: 0, clusters: 0 };

  // Features.
  const scale = Math.sqrt(dim);
  const field = makeField(rng, world, c.fieldNorm, c.fieldLength);
  const shift = gaussianVector(rng, dim, c.slideShift);
  const shiftCoef = new Float64Array(world.coarseDim);
  for (let a = 0; a < world.coarseDim; a++) {
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += world.coarseBasis[a][i] * shift[i];
    shiftCoef[a] = dot;
  }
  const shiftLow = combine(world.coarseBasis, shiftCoef, dim);
  const lowRes = new Float32Array(n * dim);
  const highRes = new Float32Array(n * k * dim);
  const g = new Float64Array(dim);
  const acc = new Float64Array(dim);
  const hiNoise = (c.highResNoise / Math.sqrt(dim)) * scale;
  const loNoise = (c.lowResNoise / Math.sqrt(dim)) * scale;
  let tumourPatches = 0;
  let mimicPatches = 0;
  for (let i = 0; i < n; i++) {
    fieldAt(field, px[i] + 0.5, py[i] + 0.5, g);
    acc.fill(0);
    let hasT = false;
    let hasM = false;
    for (let j = 0; j < k; j++) {
      const cls = subClass[i * k + j];
      if (cls >= TUMOUR) hasT = true;
      if (cls === MIMIC) hasM = true;
      const h = world.classHigh[cls];
      const l = world.classLow[cls];
      const base = (i * k + j) * dim;
      for (let e = 0; e < dim; e++) {
        highRes[base + e] = scale * (h[e] + g[e] + shift[e]) + hiNoise * rng.normal();
        acc[e] += l[e];
      }
    }
    if (hasT) tumourPatches++;
    if (hasM) mimicPatches++;
    const base = i * dim;
    for (let e = 0; e < dim; e++) {
      lowRes[base + e] = scale * (acc[e] / k + g[e] + shiftLow[e]) + loNoise * rng.normal();
    }
  }

  return {
    id,
    label,
    n,
    k,
    dim,
    lowRes,
    highRes,
    coords,
    truth: {
      subPatchClass: subClass,
      tumourFraction: tumour.subs / (n * k),
      mimicFraction: mimic.subs / (n * k),
      tumourPatches,
      mimicPatches,
      tumourClusters: tumour.clusters,
      mimicClusters: mimic.clusters,
      gridCols: cols,
      gridRows: rows,
    },
  };
}

/**
 * Wraps a synthetic slide as a {@link SlideBag} holding the requested parts as new tensors.
 * @param parts default `['lowRes', 'highRes', 'coords']`.
 * @returns a bag whose tensors the caller owns (free with `disposeBag`).
 * @category Synthetic
 */
export function slideToBag(slide: SyntheticSlide, parts: readonly SlidePart[] = ['lowRes', 'highRes', 'coords']): SlideBag {
  const bag: SlideBag = { id: slide.id, label: slide.label };
  for (const p of parts) {
    if (p === 'lowRes') bag.lowRes = tf.tensor2d(slide.lowRes.slice(), [slide.n, slide.dim]);
    else if (p === 'highRes') bag.highRes = tf.tensor3d(slide.highRes.slice(), [slide.n, slide.k, slide.dim]);
    else if (p === 'coords') bag.coords = slide.coords.slice();
    else throw new DataError(`Synthetic slides have no '${p}' part: it is derived from highRes by HAFED stage 1.`);
  }
  return bag;
}

/**
 * A whole synthetic cohort in memory.
 * @category Synthetic
 */
export interface SyntheticCohort {
  /** One bag per slide (lowRes, highRes, coords, label); the caller owns the tensors. */
  bags: SlideBag[];
  /** Ground truth per slide, aligned with `bags`. */
  truth: SyntheticTruth[];
  split: SlideSplit;
  config: Readonly<SyntheticFeatureConfig>;
}

/**
 * Generates a cohort in memory. For the `default` preset (about 1 GB of high-res features),
 * prefer the lazy {@link SyntheticDataset}.
 *
 * @param config partial config over {@link DEFAULT_SYNTHETIC_FEATURE_CONFIG}; use a preset,
 *   e.g. `SYNTHETIC_PRESETS.small`.
 * @returns the cohort; its bags' tensors belong to the caller (free each with `disposeBag`).
 * @example
 * ```ts
 * const cohort = generateSyntheticCohort(SYNTHETIC_PRESETS.tiny);
 * cohort.bags[0].highRes!.shape; // [N, 16, 16]
 * cohort.bags.forEach(disposeBag);
 * ```
 * @category Synthetic
 */
export function generateSyntheticCohort(config?: Partial<SyntheticFeatureConfig>): SyntheticCohort {
  const c = resolveSyntheticConfig(config);
  const bags: SlideBag[] = [];
  const truth: SyntheticTruth[] = [];
  for (let i = 0; i < c.numSlides; i++) {
    const s = syntheticSlide(c, i);
    bags.push(slideToBag(s));
    truth.push(s.truth);
  }
  return { bags, truth, split: syntheticSplit(c), config: c };
}

/**
 * A lazy {@link SlideDataset} over a synthetic cohort: each `load` generates its slide from
 * `(seed, index)`, so a cohort of any size never sits in memory.
 *
 * @example
 * ```ts
 * const ds = new SyntheticDataset(SYNTHETIC_PRESETS.default);
 * const bag = await ds.load(ds.ids[0], ['lowRes']); // only Z is turned into a tensor
 * disposeBag(bag);
 * ```
 * @category Synthetic
 */
export class SyntheticDataset implements SlideDataset {
  readonly ids: readonly string[];
  readonly labels: readonly number[];
  readonly dim: number;
  readonly k: number;
  readonly parts: readonly SlidePart[] = Object.freeze(['lowRes', 'highRes', 'coords'] as SlidePart[]);
  readonly config: Readonly<SyntheticFeatureConfig>;
  readonly split: SlideSplit;
  private readonly index: Map<string, number>;

  constructor(config?: Partial<SyntheticFeatureConfig>) {
    this.config = resolveSyntheticConfig(config);
    this.ids = Object.freeze(syntheticIds(this.config));
    this.labels = Object.freeze(syntheticLabels(this.config));
    this.dim = this.config.dim;
    this.k = this.config.k;
    this.split = syntheticSplit(this.config);
    this.index = new Map(this.ids.map((id, i) => [id, i] as const));
  }

  /** The slide as arrays, with its ground truth. */
  slide(id: string): SyntheticSlide {
    const i = this.index.get(id);
    if (i === undefined) {
      throw new DataError(`Slide '${id}' is not in this synthetic cohort (ids ${this.ids[0]} .. ${this.ids[this.ids.length - 1]}).`);
    }
    return syntheticSlide(this.config, i);
  }

  async load(id: string, parts: readonly SlidePart[] = this.parts): Promise<SlideBag> {
    return slideToBag(this.slide(id), parts);
  }
}

/** Counts of one subset. @category Synthetic */
export interface SubsetSummary {
  total: number;
  /** Slides per label (key: label; -1 = unknown). */
  perClass: Record<number, number>;
}

/**
 * What {@link summarizeCohort} reports.
 * @category Synthetic
 */
export interface CohortSummary {
  numSlides: number;
  dim: number;
  k?: number;
  perClass: Record<number, number>;
  perSplit?: { train: SubsetSummary; val: SubsetSummary; test: SubsetSummary };
  patches: { min: number; max: number; mean: number; total: number };
  /** Over positive slides, when ground truth is known. */
  tumourFraction?: { min: number; median: number; max: number };
  /** Slides with benign mimic tissue, per label, when ground truth is known. */
  mimicSlides?: Record<number, number>;
}

/**
 * Summarises slides from their labels and sizes (works for any dataset).
 * @param input ids, labels and N of each slide; the split and ground truth when known.
 * @category Synthetic
 */
export function summarizeSlides(input: {
  ids: readonly string[];
  labels: readonly number[];
  numPatches: readonly number[];
  dim: number;
  k?: number;
  split?: SlideSplit;
  truth?: readonly SyntheticTruth[];
}): CohortSummary {
  const { ids, labels, numPatches } = input;
  if (ids.length !== labels.length || ids.length !== numPatches.length) {
    throw new ValueError(`Expected ids, labels and numPatches of equal length, but got ${ids.length}, ${labels.length}, ${numPatches.length}.`);
  }
  const count = (sel: readonly number[]): SubsetSummary => {
    const perClass: Record<number, number> = {};
    for (const i of sel) perClass[labels[i]] = (perClass[labels[i]] ?? 0) + 1;
    return { total: sel.length, perClass };
  };
  const all = ids.map((_, i) => i);
  const out: CohortSummary = {
    numSlides: ids.length,
    dim: input.dim,
    k: input.k,
    perClass: count(all).perClass,
    patches: {
      min: Math.min(...numPatches),
      max: Math.max(...numPatches),
      mean: numPatches.reduce((a, b) => a + b, 0) / Math.max(1, numPatches.length),
      total: numPatches.reduce((a, b) => a + b, 0),
    },
  };
  if (input.split) {
    const pos = new Map(ids.map((id, i) => [id, i] as const));
    const sub = (list: string[]) => count(list.map((id) => pos.get(id)).filter((i): i is number => i !== undefined));
    out.perSplit = { train: sub(input.split.train), val: sub(input.split.val), test: sub(input.split.test) };
  }
  if (input.truth) {
    const fr = all.filter((i) => labels[i] >= 1).map((i) => input.truth![i].tumourFraction).sort((a, b) => a - b);
    if (fr.length > 0) out.tumourFraction = { min: fr[0], median: fr[Math.floor(fr.length / 2)], max: fr[fr.length - 1] };
    const mimic: Record<number, number> = {};
    for (const i of all) if (input.truth[i].mimicFraction > 0) mimic[labels[i]] = (mimic[labels[i]] ?? 0) + 1;
    out.mimicSlides = mimic;
  }
  return out;
}

/**
 * Summarises a synthetic cohort: slides per class and split, N range, tumour fractions.
 * @example
 * ```ts
 * console.log(formatCohortSummary(summarizeCohort(generateSyntheticCohort(SYNTHETIC_PRESETS.tiny))));
 * ```
 * @category Synthetic
 */
export function summarizeCohort(cohort: SyntheticCohort): CohortSummary {
  return summarizeSlides({
    ids: cohort.bags.map((b) => b.id),
    labels: cohort.bags.map((b) => b.label ?? -1),
    numPatches: cohort.bags.map((b) => b.lowRes?.shape[0] ?? b.highRes?.shape[0] ?? 0),
    dim: cohort.config.dim,
    k: cohort.config.k,
    split: cohort.split,
    truth: cohort.truth,
  });
}

/**
 * Formats a {@link CohortSummary} as a few plain lines.
 * @category Synthetic
 */
export function formatCohortSummary(s: CohortSummary): string {
  const cls = (pc: Record<number, number>) =>
    Object.keys(pc)
      .map(Number)
      .sort((a, b) => a - b)
      .map((l) => `${pc[l]} x label ${l}`)
      .join(', ');
  const lines = [
    `${s.numSlides} slides (${cls(s.perClass)}), d = ${s.dim}${s.k !== undefined ? `, k = ${s.k}` : ''}`,
    `patches per slide: ${s.patches.min} .. ${s.patches.max} (mean ${s.patches.mean.toFixed(1)}, total ${s.patches.total})`,
  ];
  if (s.perSplit) {
    for (const sub of ['train', 'val', 'test'] as const) lines.push(`${sub.padEnd(5)}: ${s.perSplit[sub].total} slides (${cls(s.perSplit[sub].perClass)})`);
  }
  if (s.tumourFraction) {
    const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
    lines.push(`tumour share of sub-patches (positives): ${pct(s.tumourFraction.min)} .. ${pct(s.tumourFraction.max)} (median ${pct(s.tumourFraction.median)})`);
  }
  if (s.mimicSlides) lines.push(`slides with benign mimic: ${cls(s.mimicSlides) || 'none'}`);
  return lines.join('\n');
}
