/**
 * Digit slides: synthetic whole-slide images assembled from real handwritten digit images
 * (MNIST), built so that zooming matters. Every high-resolution cell of the tissue is one real
 * digit image drawn in "haematoxylin" ink on "eosin" stroma:
 *
 * - normal tissue: regions of normal digit classes (a Voronoi map) on pink stroma;
 * - tumour: cells of the target digit on dark, crowded lesion stroma, in a few clusters;
 *   a slide is positive iff it holds tumour;
 * - mimic (benign): cells of a look-alike digit on the same lesion stroma, in negatives and
 *   positives alike.
 *
 * At the low-resolution level (downsample r) a cell shrinks to `cellSize / r` pixels: lesion
 * stroma stands out from normal tissue, but the tumour and mimic digits are drawn from the
 * images that a low-resolution classifier cannot tell apart ({@link lookalikeDigits}), so only the
 * high-resolution level separates them.
 *
 * This module lays out and paints pixels in memory and runs anywhere; the digit images come in
 * as a {@link DigitBank}. `writeDigitCohort` in `sasha-wsi/node` loads MNIST and writes the
 * slides as pyramidal JPEG-tiled TIFFs.
 *
 * @packageDocumentation
 */
import { checkNumber, resolveConfig } from '../../core/config.js';
import { ValueError } from '../../core/errors.js';
import { Rng } from '../../core/random.js';
import type { SlideSplit } from '../../core/data.js';
import type { RgbImage } from '../slide_source.js';
import { hash2, logUniform, placeClusters, slideSeed, stratifiedSplit } from './seeding.js';

/** Side of an MNIST digit image in pixels. @category Synthetic */
export const MNIST_SIZE = 28;

/**
 * Handwritten digit images: `n` grey images of `size x size` pixels (0 = paper, 255 = full
 * ink), row-major, and their classes. MNIST digits have `size` 28.
 * @category Synthetic
 */
export interface DigitBank {
  /** Side of every image in pixels. */
  size: number;
  /** `[n, size, size]` ink values in [0, 255]. */
  images: Uint8Array;
  /** `[n]` digit class of each image, 0-9. */
  labels: Uint8Array;
}

/** Kind of a high-resolution cell. @category Synthetic */
export const CELL_GLASS = 0;
/** A normal digit on normal stroma. */
export const CELL_NORMAL = 1;
/** A mimic digit on lesion stroma (benign). */
export const CELL_MIMIC = 2;
/** A tumour digit on lesion stroma. */
export const CELL_TUMOUR = 3;

/** Configuration of a digit-slide cohort. @category Synthetic */
export interface DigitSlideConfig {
  /** Seed of the cohort: labels, split, every slide. */
  seed: number;
  /**
   * Seed of the partition of the digit images into encoder / train-slide / test-slide pools
   * ({@link partitionDigitBank}); keep it equal to the encoder's so that slides never reuse the
   * encoder's training digits.
   */
  poolSeed: number;
  /** Number of slides. */
  numSlides: number;
  /** Smallest number of tissue patches N (log-uniform in [minPatches, maxPatches]). */
  minPatches: number;
  /** Largest number of tissue patches N. */
  maxPatches: number;
  /** Level ratio r between the low- and high-resolution levels: a patch holds r x r cells (k = r^2). */
  ratio: number;
  /** Side of a cell (one high-res sub-patch) in level-0 pixels. */
  cellSize: number;
  /** Side the digit images are resized to (area resampling) before they are drawn in a cell. */
  digitSize: number;
  /** The tumour digit: a slide is positive iff it holds cells of it. */
  tumourDigit: number;
  /** The benign look-alike digit. */
  mimicDigit: number;
  /** Digit classes of normal tissue (regions of one class each). */
  normalDigits: number[];
  /** Mean number of patches of a normal region. */
  regionPatches: number;
  /** Share of normal cells that hold another normal digit than their region's. */
  strayFraction: number;
  /** Share of positive slides. */
  positiveFraction: number;
  /** Shares of train / val / test slides, stratified by label; they sum to 1. */
  splitFractions: [number, number, number];
  /** Share of lesions that are micro-lesions (a small number of cells in one cluster). */
  microLesionRate: number;
  /** Range of the number of cells of a micro-lesion. */
  microLesionCells: [number, number];
  /** Range of the share of tissue cells of a macro-lesion (log-uniform). */
  macroLesionFraction: [number, number];
  /** Probability that a negative slide holds a mimic lesion. */
  mimicInNegative: number;
  /** Probability that a positive slide also holds a mimic lesion. */
  mimicInPositive: number;
  /** Largest number of clusters of a macro-lesion. */
  maxClusters: number;
  /** Range of the share of cells a cluster turns into lesion inside its footprint. */
  infiltrationRange: [number, number];
  /** Share of the tumour and mimic digit images kept: those a low-res classifier finds most ambiguous (1: all). */
  lookalikeFraction: number;
  /** Largest shift of a digit from its cell's centre, in pixels (at most `(cellSize - digitSize) / 2`). */
  jitter: number;
  /** Glass margin around the tissue, in patches. */
  marginPatches: number;
  /** Micrometres per level-0 pixel. */
  mpp: number;
}

/**
 * The benchmark cohort: 160 slides of 100-600 patches, r = 4 (k = 16), 32-pixel cells (MNIST
 * digits at their native size), tumour 9, mimic 4.
 * @category Synthetic
 */
export const DEFAULT_DIGIT_SLIDE_CONFIG: Readonly<DigitSlideConfig> = Object.freeze({
  seed: 0,
  poolSeed: 0, // the digit encoder of bench/digit_encoder.ts is trained on pool 'encoder' of poolSeed 0
  numSlides: 160, // task brief: a cohort of about 120-200 slides, 96 / 19 / 45 with the split below
  minPatches: 100, // task brief: N about 100-600
  maxPatches: 600,
  ratio: 4, // docs/reference-code.md §1.2: 4 x 4 sub-patches (level 3 -> level 1)
  cellSize: 32, // the encoder's input side: one cell is one high-res patch
  digitSize: 16, // at r = 4 a digit spans 4 low-res pixels: its shape is gone, its ink is not (guide: design)
  tumourDigit: 9, // 4 and 9 are the pair most confused at low resolution (docs/guides/real-images.md)
  mimicDigit: 4,
  normalDigits: [0, 1, 2, 3, 5, 6, 7, 8], // every other digit
  regionPatches: 30, // synthetic/README.md: regions of tens of patches
  strayFraction: 0.1, // a little variety inside each region
  positiveFraction: 0.4, // docs/reference-code.md §8.2: CAMELYON16 has 160 tumour of 399 slides
  splitFractions: [0.6, 0.12, 0.28] as [number, number, number], // docs/reference-code.md §8.2: 242 / 27 / 129
  microLesionRate: 0.5, // synthetic/README.md: the lesion law of the feature benchmark
  microLesionCells: [3, 24] as [number, number],
  macroLesionFraction: [0.01, 0.1] as [number, number],
  mimicInNegative: 0.7,
  mimicInPositive: 0.3,
  maxClusters: 3,
  infiltrationRange: [0.2, 0.4] as [number, number],
  lookalikeFraction: 0.5, // half of the 4s and 9s: those a low-res pixel classifier cannot place
  jitter: 6, // most of the free room (32 - 16) / 2 = 8, so that cells are not a regular lattice
  marginPatches: 1,
  mpp: 0.5, // "20x" at level 0
});

/**
 * Small settings: `tiny` for unit tests (8 slides of 12-30 patches), `small` for examples
 * (40 slides of 60-200 patches), `default` for the benchmark.
 * @category Synthetic
 */
export const DIGIT_SLIDE_PRESETS: Readonly<Record<'tiny' | 'small' | 'default', Readonly<DigitSlideConfig>>> = Object.freeze({
  tiny: Object.freeze({
    ...DEFAULT_DIGIT_SLIDE_CONFIG,
    numSlides: 8,
    minPatches: 12,
    maxPatches: 30,
    regionPatches: 8,
    splitFractions: [0.5, 0.25, 0.25] as [number, number, number],
  }),
  small: Object.freeze({ ...DEFAULT_DIGIT_SLIDE_CONFIG, numSlides: 40, minPatches: 60, maxPatches: 200, regionPatches: 20 }),
  default: DEFAULT_DIGIT_SLIDE_CONFIG,
});

/**
 * Resolves and checks a digit-slide config (partial over {@link DEFAULT_DIGIT_SLIDE_CONFIG}).
 * @throws ValueError naming the bad key.
 * @category Synthetic
 */
export function resolveDigitSlideConfig(partial?: Partial<DigitSlideConfig> | null): Readonly<DigitSlideConfig> {
  return resolveConfig('DigitSlideConfig', DEFAULT_DIGIT_SLIDE_CONFIG, partial, (c) => {
    const name = 'DigitSlideConfig';
    checkNumber(name, c, 'seed');
    checkNumber(name, c, 'poolSeed', { integer: true });
    checkNumber(name, c, 'numSlides', { min: 2, integer: true });
    checkNumber(name, c, 'minPatches', { min: 4, integer: true });
    checkNumber(name, c, 'maxPatches', { min: c.minPatches, integer: true });
    checkNumber(name, c, 'ratio', { min: 2, integer: true });
    checkNumber(name, c, 'cellSize', { min: 8, integer: true });
    checkNumber(name, c, 'digitSize', { min: 4, integer: true });
    checkNumber(name, c, 'jitter', { min: 0, integer: true });
    if (c.digitSize + 2 * c.jitter > c.cellSize) {
      throw new ValueError(`Expected ${name}.cellSize >= digitSize + 2 * jitter = ${c.digitSize + 2 * c.jitter}, but got ${c.cellSize}.`);
    }
    checkNumber(name, c, 'tumourDigit', { min: 0, max: 9, integer: true });
    checkNumber(name, c, 'mimicDigit', { min: 0, max: 9, integer: true });
    if (c.tumourDigit === c.mimicDigit) throw new ValueError(`Expected ${name}.mimicDigit to differ from tumourDigit (${c.tumourDigit}).`);
    const nd = c.normalDigits;
    if (!Array.isArray(nd) || nd.length === 0 || nd.some((d) => !Number.isInteger(d) || d < 0 || d > 9 || d === c.tumourDigit || d === c.mimicDigit)) {
      throw new ValueError(
        `Expected ${name}.normalDigits to be digits 0-9 other than the tumour (${c.tumourDigit}) and mimic (${c.mimicDigit}) digits, but got ${JSON.stringify(nd)}.`,
      );
    }
    checkNumber(name, c, 'regionPatches', { min: 1 });
    checkNumber(name, c, 'strayFraction', { min: 0, max: 1 });
    checkNumber(name, c, 'positiveFraction', { min: 0, max: 1, minExclusive: true, maxExclusive: true });
    const sf = c.splitFractions;
    if (!Array.isArray(sf) || sf.length !== 3 || sf.some((v) => typeof v !== 'number' || !(v >= 0)) || Math.abs(sf[0] + sf[1] + sf[2] - 1) > 1e-6) {
      throw new ValueError(`Expected ${name}.splitFractions to be three non-negative numbers summing to 1, but got ${JSON.stringify(sf)}.`);
    }
    checkNumber(name, c, 'microLesionRate', { min: 0, max: 1 });
    const [mlo, mhi] = c.microLesionCells ?? [];
    if (!(Number.isInteger(mlo) && Number.isInteger(mhi) && mlo >= 1 && mlo <= mhi)) {
      throw new ValueError(`Expected ${name}.microLesionCells to be integers [lo, hi] with 1 <= lo <= hi, but got ${JSON.stringify(c.microLesionCells)}.`);
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
    checkNumber(name, c, 'lookalikeFraction', { min: 0, max: 1, minExclusive: true });
    checkNumber(name, c, 'marginPatches', { min: 0, integer: true });
    checkNumber(name, c, 'mpp', { min: 0, minExclusive: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Digit pools

/** Which digit images serve which purpose; the three sets are disjoint. @category Synthetic */
export interface DigitPools {
  /** Images for training the patch encoder. */
  encoder: Int32Array;
  /** Images drawn into the train and val slides. */
  trainSlides: Int32Array;
  /** Images drawn into the test slides. */
  testSlides: Int32Array;
}

/**
 * Splits a digit bank, class by class, into disjoint pools: `encoderFraction` of each class for
 * the encoder, the rest shared between train/val slides and test slides (half each), so that
 * neither the encoder nor the slide classifier has seen a test slide's digit images.
 *
 * @param seed seed of the shuffles.
 * @param encoderFraction share of each class kept for the encoder (default 0.5).
 * @returns index lists into the bank.
 * @example
 * ```ts
 * const pools = partitionDigitBank(bank, 0);
 * pools.encoder.length; // about half the bank
 * ```
 * @category Synthetic
 */
export function partitionDigitBank(bank: DigitBank, seed: number, encoderFraction = 0.5): DigitPools {
  checkBank(bank);
  if (!(encoderFraction >= 0 && encoderFraction < 1)) throw new ValueError(`Expected encoderFraction in [0, 1), but got ${encoderFraction}.`);
  const rng = new Rng(seed * 7919 + 17);
  const encoder: number[] = [];
  const train: number[] = [];
  const test: number[] = [];
  for (let d = 0; d < 10; d++) {
    const members: number[] = [];
    for (let i = 0; i < bank.labels.length; i++) if (bank.labels[i] === d) members.push(i);
    rng.shuffle(members);
    const nEnc = Math.round(encoderFraction * members.length);
    const rest = members.length - nEnc;
    const nTrain = Math.ceil(rest / 2);
    encoder.push(...members.slice(0, nEnc));
    train.push(...members.slice(nEnc, nEnc + nTrain));
    test.push(...members.slice(nEnc + nTrain));
  }
  const sorted = (a: number[]) => Int32Array.from(a.sort((x, y) => x - y));
  return { encoder: sorted(encoder), trainSlides: sorted(train), testSlides: sorted(test) };
}

function checkBank(bank: DigitBank): void {
  const n = bank.labels.length;
  const s = bank.size;
  if (!(Number.isInteger(s) && s > 0) || bank.images.length !== n * s * s) {
    throw new ValueError(`Expected the digit bank to hold ${n} x ${s} x ${s} = ${n * s * s} pixels for ${n} labels, but got ${bank.images.length}.`);
  }
}

/** Weights of area resampling from `from` to `to` pixels: `w[o * from + i]` is the share of source pixel i in output pixel o. */
function areaWeights(from: number, to: number): Float64Array {
  const w = new Float64Array(to * from);
  const step = from / to;
  for (let o = 0; o < to; o++) {
    const a = o * step;
    const b = (o + 1) * step;
    for (let i = Math.floor(a); i < Math.min(from, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 0) w[o * from + i] = overlap / step;
    }
  }
  return w;
}

/**
 * Resizes every image of a bank to `size x size` by area resampling (each output pixel is the
 * mean of the source area it covers; for enlargements, the nearest source pixel).
 *
 * @returns a new bank sharing the labels.
 * @example
 * ```ts
 * const small = scaleDigitBank(mnist, 16);  // 16 x 16 digits
 * ```
 * @category Synthetic
 */
export function scaleDigitBank(bank: DigitBank, size: number): DigitBank {
  checkBank(bank);
  if (!(Number.isInteger(size) && size > 0)) throw new ValueError(`Expected size to be a positive integer, but got ${size}.`);
  if (size === bank.size) return bank;
  const s = bank.size;
  const w = areaWeights(s, size);
  const n = bank.labels.length;
  const out = new Uint8Array(n * size * size);
  const tmp = new Float64Array(size * s);
  for (let m = 0; m < n; m++) {
    const src = m * s * s;
    // rows: tmp[o, x] = sum_i w[o, i] img[i, x]
    tmp.fill(0);
    for (let o = 0; o < size; o++) {
      for (let i = 0; i < s; i++) {
        const wi = w[o * s + i];
        if (wi === 0) continue;
        for (let x = 0; x < s; x++) tmp[o * s + x] += wi * bank.images[src + i * s + x];
      }
    }
    // columns
    for (let o = 0; o < size; o++) {
      for (let p = 0; p < size; p++) {
        let v = 0;
        for (let x = 0; x < s; x++) v += w[p * s + x] * tmp[o * s + x];
        out[m * size * size + o * size + p] = clampByte(v);
      }
    }
  }
  return { size, images: out, labels: bank.labels };
}

/**
 * The low-resolution view of a digit as a cell sees it: the 28 x 28 image centred in a
 * `cellSize` cell, box-averaged over `ratio x ratio` blocks, as ink values in [0, 1].
 * @returns `[(cellSize / ratio)^2]` row-major.
 * @category Synthetic
 */
export function lowResDigit(bank: DigitBank, index: number, cellSize: number, ratio: number): Float32Array {
  const m = Math.floor(cellSize / ratio);
  const out = new Float32Array(m * m);
  const S = bank.size;
  const off = Math.floor((cellSize - S) / 2);
  const base = index * S * S;
  for (let y = 0; y < S; y++) {
    const oy = Math.floor((y + off) / ratio);
    if (oy < 0 || oy >= m) continue;
    for (let x = 0; x < S; x++) {
      const ox = Math.floor((x + off) / ratio);
      if (ox < 0 || ox >= m) continue;
      out[oy * m + ox] += bank.images[base + y * S + x] / (255 * ratio * ratio);
    }
  }
  return out;
}

/**
 * Picks the tumour and mimic digit images that look alike at low resolution: a logistic
 * regression is fitted on the low-res views ({@link lowResDigit}) of the two classes in `pool`
 * (full-batch gradient descent, deterministic), and the `fraction` of each class with the
 * smallest |logit| (the least certain) is kept.
 *
 * @param pool candidate image indices (other classes are ignored).
 * @returns the kept tumour and mimic images, and the training accuracy of the low-res
 *   classifier on all candidates and on the kept ones (chance is 0.5).
 * @category Synthetic
 */
export function lookalikeDigits(
  bank: DigitBank,
  pool: ArrayLike<number>,
  options: { tumourDigit: number; mimicDigit: number; fraction: number; cellSize: number; ratio: number },
): { tumour: Int32Array; mimic: Int32Array; accuracyAll: number; accuracyKept: number } {
  const { tumourDigit, mimicDigit, fraction, cellSize, ratio } = options;
  const idx: number[] = [];
  for (let i = 0; i < pool.length; i++) {
    const l = bank.labels[pool[i]];
    if (l === tumourDigit || l === mimicDigit) idx.push(pool[i]);
  }
  const xs = idx.map((i) => lowResDigit(bank, i, cellSize, ratio));
  const ys = idx.map((i) => (bank.labels[i] === tumourDigit ? 1 : 0));
  const dim = xs[0]?.length ?? 0;
  const w = new Float64Array(dim + 1);
  const logit = (x: Float32Array) => {
    let z = w[dim];
    for (let j = 0; j < dim; j++) z += w[j] * x[j];
    return z;
  };
  for (let it = 0; it < 300 && idx.length > 0; it++) {
    const g = new Float64Array(dim + 1);
    for (let s = 0; s < xs.length; s++) {
      const p = 1 / (1 + Math.exp(-logit(xs[s])));
      const e = p - ys[s];
      for (let j = 0; j < dim; j++) g[j] += e * xs[s][j];
      g[dim] += e;
    }
    for (let j = 0; j <= dim; j++) w[j] -= (1.0 * g[j]) / xs.length + 1e-4 * w[j];
  }
  const z = xs.map(logit);
  const keep = (cls: number): number[] => {
    const members = idx.map((_, s) => s).filter((s) => ys[s] === cls);
    members.sort((a, b) => Math.abs(z[a]) - Math.abs(z[b]) || idx[a] - idx[b]);
    return members.slice(0, Math.max(1, Math.round(fraction * members.length)));
  };
  const keptT = keep(1);
  const keptM = keep(0);
  const acc = (ss: number[]) => (ss.length === 0 ? NaN : ss.filter((s) => (z[s] > 0 ? 1 : 0) === ys[s]).length / ss.length);
  return {
    tumour: Int32Array.from(keptT.map((s) => idx[s]).sort((a, b) => a - b)),
    mimic: Int32Array.from(keptM.map((s) => idx[s]).sort((a, b) => a - b)),
    accuracyAll: acc(idx.map((_, s) => s)),
    accuracyKept: acc([...keptT, ...keptM]),
  };
}

// ---------------------------------------------------------------------------------------------
// Painting

/** Colours of one slide ("stain"): RGB triples. @category Synthetic */
export interface DigitStain {
  glass: [number, number, number];
  stroma: [number, number, number];
  lesionStroma: [number, number, number];
  ink: [number, number, number];
  lesionInk: [number, number, number];
}

/** The reference stain; slides vary around it. @category Synthetic */
export const DEFAULT_DIGIT_STAIN: Readonly<DigitStain> = Object.freeze({
  glass: [243, 241, 245] as [number, number, number],
  stroma: [236, 188, 214] as [number, number, number], // eosin pink
  lesionStroma: [172, 112, 186] as [number, number, number], // crowded, purple
  ink: [92, 44, 140] as [number, number, number], // haematoxylin
  lesionInk: [48, 16, 92] as [number, number, number], // hyperchromatic
});

/** A stain varied around {@link DEFAULT_DIGIT_STAIN} (intensity and hue, a few percent). @category Synthetic */
export function randomStain(rng: Rng): DigitStain {
  const amount = rng.uniform(0.9, 1.1);
  const tint = [rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(-6, 6)];
  const vary = (c: readonly number[]): [number, number, number] =>
    [0, 1, 2].map((i) => clampByte(255 - (255 - c[i]) * amount + tint[i])) as [number, number, number];
  const s = DEFAULT_DIGIT_STAIN;
  return { glass: [...s.glass], stroma: vary(s.stroma), lesionStroma: vary(s.lesionStroma), ink: vary(s.ink), lesionInk: vary(s.lesionInk) };
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Smooth value noise in [0, 1] at level-0 pixel (x, y), lattice step 48 pixels. */
function smoothNoise(x: number, y: number, seed: number): number {
  const cell = 48;
  const gx = x / cell;
  const gy = y / cell;
  const i = Math.floor(gx);
  const j = Math.floor(gy);
  const fx = gx - i;
  const fy = gy - j;
  const a = hash2(i, j, seed);
  const b = hash2(i + 1, j, seed);
  const c = hash2(i, j + 1, seed);
  const d = hash2(i + 1, j + 1, seed);
  return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
}

/** What one cell holds. @category Synthetic */
export interface DigitCell {
  /** {@link CELL_GLASS}, {@link CELL_NORMAL}, {@link CELL_MIMIC} or {@link CELL_TUMOUR}. */
  kind: number;
  /** Digit image index in the bank (ignored for glass). */
  image: number;
  /** Shift of the digit from the cell's centre, in pixels. */
  dx: number;
  dy: number;
}

/**
 * Paints one cell into an RGB image: glass, or stroma (smooth variation and grain, keyed to the
 * level-0 position so that neighbouring cells join up) with the digit blended in as ink,
 * `pixel = stroma * (1 - a) + ink * a` with `a` the digit's ink value.
 *
 * @param target the image painted into; the cell covers `[x0, x0 + cellSize) x [y0, y0 + cellSize)`.
 * @param px level-0 x of the cell (for the noise; equal to `x0` when painting a whole slide).
 * @param py level-0 y of the cell.
 * @param seed noise seed of the slide.
 * @category Synthetic
 */
export function paintDigitCell(
  target: RgbImage,
  x0: number,
  y0: number,
  cellSize: number,
  cell: DigitCell,
  bank: DigitBank,
  stain: DigitStain,
  px: number,
  py: number,
  seed: number,
): void {
  const { width: W, data } = target;
  const lesion = cell.kind === CELL_MIMIC || cell.kind === CELL_TUMOUR;
  const bg = cell.kind === CELL_GLASS ? stain.glass : lesion ? stain.lesionStroma : stain.stroma;
  const ink = lesion ? stain.lesionInk : stain.ink;
  const S = bank.size;
  const off = Math.floor((cellSize - S) / 2);
  const base = cell.image * S * S;
  // Stroma variation: the smooth noise at the cell's corners, interpolated bilinearly inside
  // (corners are shared by neighbouring cells, so the field is continuous).
  const n00 = smoothNoise(px, py, seed + 17);
  const n10 = smoothNoise(px + cellSize, py, seed + 17);
  const n01 = smoothNoise(px, py + cellSize, seed + 17);
  const n11 = smoothNoise(px + cellSize, py + cellSize, seed + 17);
  for (let y = 0; y < cellSize; y++) {
    const ty = y0 + y;
    if (ty < 0 || ty >= target.height) continue;
    const fy = y / cellSize;
    const left = n00 + (n01 - n00) * fy;
    const right = n10 + (n11 - n10) * fy;
    for (let x = 0; x < cellSize; x++) {
      const tx = x0 + x;
      if (tx < 0 || tx >= W) continue;
      const o = (ty * W + tx) * 3;
      const grain = hash2(px + x, py + y, seed) - 0.5;
      if (cell.kind === CELL_GLASS) {
        const g = grain * 4;
        data[o] = clampByte(bg[0] + g);
        data[o + 1] = clampByte(bg[1] + g);
        data[o + 2] = clampByte(bg[2] + g);
        continue;
      }
      const v = left + (right - left) * (x / cellSize) - 0.5;
      const g = grain * 12;
      const sr = bg[0] - 24 * v + g;
      const sg = bg[1] - 40 * v + g;
      const sb = bg[2] - 26 * v + g;
      const dxp = x - off - cell.dx;
      const dyp = y - off - cell.dy;
      const a = dxp >= 0 && dyp >= 0 && dxp < S && dyp < S ? bank.images[base + dyp * S + dxp] / 255 : 0;
      data[o] = clampByte(sr * (1 - a) + ink[0] * a);
      data[o + 1] = clampByte(sg * (1 - a) + ink[1] * a);
      data[o + 2] = clampByte(sb * (1 - a) + ink[2] * a);
    }
  }
}

/**
 * Paints one low-resolution patch as the slide pipeline reads it: its `r x r` cells at the
 * high-resolution level (`r * cellSize` pixels square), and the same patch box-averaged by `r`
 * (`cellSize` pixels square, the low-resolution level). Cell `j = xi * r + yi` (x outer, as
 * `subPatchCoords` orders sub-patches) lies at column `xi`, row `yi`.
 *
 * @param cells `r * r` cells.
 * @param options.origin level-0 position of the patch (for the stroma noise; default (0, 0)).
 * @returns the high- and low-resolution images.
 * @example
 * ```ts
 * const { high, low } = renderDigitPatch(bank, cells, { cellSize: 32, ratio: 4, stain: DEFAULT_DIGIT_STAIN, seed: 1 });
 * high.width; // 128
 * low.width;  // 32
 * ```
 * @category Synthetic
 */
export function renderDigitPatch(
  bank: DigitBank,
  cells: readonly DigitCell[],
  options: { cellSize: number; ratio: number; stain: DigitStain; seed: number; origin?: [number, number] },
): { high: RgbImage; low: RgbImage } {
  const { cellSize: s, ratio: r, stain, seed } = options;
  if (cells.length !== r * r) throw new ValueError(`Expected ${r * r} cells for ratio ${r}, but got ${cells.length}.`);
  const [ox, oy] = options.origin ?? [0, 0];
  const high: RgbImage = { width: r * s, height: r * s, data: new Uint8Array(r * s * r * s * 3) };
  for (let xi = 0; xi < r; xi++) {
    for (let yi = 0; yi < r; yi++) paintDigitCell(high, xi * s, yi * s, s, cells[xi * r + yi], bank, stain, ox + xi * s, oy + yi * s, seed);
  }
  return { high, low: downsampleRgb(high, r) };
}

/**
 * Box-averages an RGB image by an integer factor (what a 2x pyramid does over `log2(factor)`
 * levels, up to rounding).
 * @returns a new image of `floor(w / factor) x floor(h / factor)`.
 * @category Synthetic
 */
export function downsampleRgb(image: RgbImage, factor: number): RgbImage {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new ValueError(`Expected factor to be a positive integer, but got ${factor}.`);
  const w = Math.floor(image.width / factor);
  const h = Math.floor(image.height / factor);
  const out = new Uint8Array(w * h * 3);
  const acc = new Float64Array(w * 3);
  const inv = 1 / (factor * factor);
  for (let y = 0; y < h; y++) {
    acc.fill(0);
    for (let yy = 0; yy < factor; yy++) {
      const row = (y * factor + yy) * image.width * 3;
      for (let x = 0; x < w * factor; x++) {
        const o = row + x * 3;
        const t = Math.floor(x / factor) * 3;
        acc[t] += image.data[o];
        acc[t + 1] += image.data[o + 1];
        acc[t + 2] += image.data[o + 2];
      }
    }
    for (let t = 0; t < w * 3; t++) out[y * w * 3 + t] = clampByte(acc[t] * inv);
  }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------------------------------------
// Cohort and slides

/** One slide of a digit cohort: its layout and ground truth (pixels come from {@link renderDigitSlide}). @category Synthetic */
export interface DigitSlide {
  id: string;
  /** 1 iff the slide holds tumour cells. */
  label: number;
  /** Which split subset the slide belongs to (its digit images come from that subset's pool). */
  subset: 'train' | 'val' | 'test';
  /** Side of a cell in level-0 pixels. */
  cellSize: number;
  /** Side of the digit images drawn in the cells. */
  digitSize: number;
  /** Level ratio r (a patch is r x r cells). */
  ratio: number;
  /** Cells across and down (a multiple of r). */
  cols: number;
  rows: number;
  /** Level-0 size (`cols * cellSize` x `rows * cellSize`). */
  width: number;
  height: number;
  /** `[rows * cols]` cell kind ({@link CELL_GLASS}, ...), row-major. */
  cellKind: Uint8Array;
  /** `[rows * cols]` digit class of each cell, -1 for glass. */
  cellDigit: Int8Array;
  /** `[rows * cols]` digit image index, -1 for glass. */
  cellImage: Int32Array;
  /** `[rows * cols, 2]` digit shift (dx, dy) in pixels. */
  cellShift: Int8Array;
  /** Patches holding at least one tissue cell. */
  tissuePatches: number;
  /** Patches that are all tissue (lesions lie in these). */
  fullPatches: number;
  /** Number of tumour and mimic cells. */
  tumourCells: number;
  mimicCells: number;
  /** Number of patches holding at least one tumour (mimic) cell. */
  tumourPatches: number;
  mimicPatches: number;
  /** Number of tumour (mimic) clusters placed. */
  tumourClusters: number;
  mimicClusters: number;
  /** The slide's colours. */
  stain: DigitStain;
  /** Noise seed of the slide's stroma. */
  noiseSeed: number;
  /** Micrometres per level-0 pixel. */
  mpp: number;
}

/**
 * A cohort of digit slides over a digit bank: ids, labels, a stratified split, the disjoint
 * digit pools, and each slide's layout on demand (from `(seed, index)` alone).
 *
 * @example
 * ```ts
 * const cohort = new DigitSlideCohort(bank, DIGIT_SLIDE_PRESETS.tiny);
 * const slide = cohort.slide(0);          // layout and ground truth
 * const image = renderDigitSlide(slide, bank);   // level-0 RGB pixels
 * ```
 * @category Synthetic
 */
export class DigitSlideCohort {
  /** The resolved configuration. */
  readonly config: Readonly<DigitSlideConfig>;
  /** Slide ids `digits_000`, ... */
  readonly ids: readonly string[];
  /** Slide labels (1 = tumour). */
  readonly labels: readonly number[];
  /** Stratified train / val / test split. */
  readonly split: SlideSplit;
  /** Disjoint digit pools (encoder, train/val slides, test slides). */
  readonly pools: DigitPools;
  /** Tumour and mimic images (look-alikes) of the train/val and test pools, and the low-res classifier's accuracy on them. */
  readonly lookalikes: {
    train: { tumour: Int32Array; mimic: Int32Array; accuracyAll: number; accuracyKept: number };
    test: { tumour: Int32Array; mimic: Int32Array; accuracyAll: number; accuracyKept: number };
  };
  /** The digit images resized to `digitSize` (what the slides are painted with). */
  readonly bank: DigitBank;
  private readonly byClass: { train: Int32Array[]; test: Int32Array[] };
  private readonly subsetOf: Map<string, 'train' | 'val' | 'test'>;

  /**
   * @param bank the digit images (MNIST: `loadMnistDigits()` in `sasha-wsi/node`).
   * @param config cohort settings over {@link DEFAULT_DIGIT_SLIDE_CONFIG}.
   */
  constructor(bank: DigitBank, config: Partial<DigitSlideConfig> = {}) {
    checkBank(bank);
    const c = resolveDigitSlideConfig(config);
    this.config = c;
    this.bank = scaleDigitBank(bank, c.digitSize);
    const width = Math.max(3, String(c.numSlides - 1).length);
    this.ids = Array.from({ length: c.numSlides }, (_, i) => `digits_${String(i).padStart(width, '0')}`);
    const rng = new Rng(c.seed * 31 + 5);
    const numPos = Math.min(c.numSlides - 1, Math.max(1, Math.round(c.positiveFraction * c.numSlides)));
    const perm = rng.permutation(c.numSlides);
    const labels = new Array<number>(c.numSlides).fill(0);
    for (let i = 0; i < numPos; i++) labels[perm[i]] = 1;
    this.labels = labels;
    this.split = stratifiedSplit(this.ids, labels, c.splitFractions, new Rng(c.seed * 131 + 11));
    this.subsetOf = new Map();
    for (const s of ['train', 'val', 'test'] as const) for (const id of this.split[s]) this.subsetOf.set(id, s);

    this.pools = partitionDigitBank(bank, c.poolSeed);
    const opts = { tumourDigit: c.tumourDigit, mimicDigit: c.mimicDigit, fraction: c.lookalikeFraction, cellSize: c.cellSize, ratio: c.ratio };
    this.lookalikes = {
      train: lookalikeDigits(this.bank, this.pools.trainSlides, opts),
      test: lookalikeDigits(this.bank, this.pools.testSlides, opts),
    };
    const group = (pool: Int32Array) =>
      Array.from({ length: 10 }, (_, d) => Int32Array.from(Array.from(pool).filter((i) => bank.labels[i] === d)));
    this.byClass = { train: group(this.pools.trainSlides), test: group(this.pools.testSlides) };
    for (const d of [...c.normalDigits, c.tumourDigit, c.mimicDigit]) {
      if (this.byClass.train[d].length === 0 || this.byClass.test[d].length === 0) {
        throw new ValueError(`The digit bank holds too few images of digit ${d} to fill both slide pools; use a larger bank.`);
      }
    }
  }

  /** Number of slides. */
  get size(): number {
    return this.ids.length;
  }

  /**
   * Lays out slide `index`: tissue, normal regions, lesions, and the digit image of every cell.
   * @param index in `[0, numSlides)`.
   */
  slide(index: number): DigitSlide {
    const c = this.config;
    if (!(Number.isInteger(index) && index >= 0 && index < c.numSlides)) {
      throw new ValueError(`Expected a slide index in [0, ${c.numSlides}), but got ${index}.`);
    }
    const id = this.ids[index];
    const label = this.labels[index];
    const subset = this.subsetOf.get(id) ?? 'train';
    const pool = subset === 'test' ? 'test' : 'train';
    const rng = new Rng(slideSeed(c.seed, index, 0x5bd1e995));
    const r = c.ratio;
    const k = r * r;

    // Tissue: the cells with the highest score of a few Gaussian blobs (in patch units) plus a
    // smooth perturbation, about N * k cells inside a glass margin.
    const n = Math.round(logUniform(rng, c.minPatches, c.maxPatches + 0.999));
    const aspect = rng.uniform(0.7, 1.4);
    const area = n / 0.6;
    const innerCols = Math.max(2, Math.ceil(Math.sqrt(area * aspect)));
    const innerRows = Math.max(2, Math.ceil(area / innerCols));
    const pCols = innerCols + 2 * c.marginPatches;
    const pRows = innerRows + 2 * c.marginPatches;
    const cols = pCols * r;
    const rows = pRows * r;
    const blobs = 1 + rng.int(3);
    const bx: number[] = [];
    const by: number[] = [];
    const br: number[] = [];
    for (let b = 0; b < blobs; b++) {
      bx.push(c.marginPatches + rng.uniform(0.25, 0.75) * innerCols);
      by.push(c.marginPatches + rng.uniform(0.25, 0.75) * innerRows);
      br.push(rng.uniform(0.25, 0.45) * Math.sqrt(innerCols * innerRows));
    }
    const waves = Array.from({ length: 6 }, () => ({ fx: rng.normal() / 2.5, fy: rng.normal() / 2.5, ph: rng.uniform(0, 2 * Math.PI) }));
    const m0 = c.marginPatches * r;
    const score = new Float64Array(cols * rows).fill(-Infinity);
    const inner: number[] = [];
    for (let y = m0; y < rows - m0; y++) {
      for (let x = m0; x < cols - m0; x++) {
        const ux = (x + 0.5) / r;
        const uy = (y + 0.5) / r;
        let s = 0;
        for (let b = 0; b < blobs; b++) {
          const dx = ux - bx[b];
          const dy = uy - by[b];
          s += Math.exp(-(dx * dx + dy * dy) / (2 * br[b] * br[b]));
        }
        let w = 0;
        for (const v of waves) w += Math.cos(v.fx * ux + v.fy * uy + v.ph);
        score[y * cols + x] = s * (1 + 0.06 * w);
        inner.push(y * cols + x);
      }
    }
    inner.sort((a, b) => score[b] - score[a] || a - b);
    const tissue = new Uint8Array(cols * rows);
    const want = Math.min(inner.length, n * k);
    for (let q = 0; q < want; q++) tissue[inner[q]] = 1;
    const tissueList: number[] = [];
    for (let q = 0; q < cols * rows; q++) if (tissue[q]) tissueList.push(q);

    // Normal regions: a Voronoi map of normal digit classes, with strays.
    const kind = new Uint8Array(cols * rows);
    const digit = new Int8Array(cols * rows).fill(-1);
    const numSeeds = Math.max(1, Math.round(n / c.regionPatches));
    const seeds = Array.from({ length: numSeeds }, (_, s) => {
      const cell = tissueList[rng.int(tissueList.length)];
      const nd = c.normalDigits;
      return {
        x: (cell % cols) + rng.next(),
        y: Math.floor(cell / cols) + rng.next(),
        digit: numSeeds >= 2 * nd.length && s < nd.length ? nd[s] : nd[rng.int(nd.length)],
      };
    });
    for (const q of tissueList) {
      const x = (q % cols) + 0.5;
      const y = Math.floor(q / cols) + 0.5;
      let best = 0;
      let bestD = Infinity;
      for (let s = 0; s < seeds.length; s++) {
        const d2 = (x - seeds[s].x) ** 2 + (y - seeds[s].y) ** 2;
        if (d2 < bestD) {
          bestD = d2;
          best = s;
        }
      }
      kind[q] = CELL_NORMAL;
      digit[q] = rng.next() < c.strayFraction ? c.normalDigits[rng.int(c.normalDigits.length)] : seeds[best].digit;
    }

    // Lesions: tumour (positives) and mimic, each in a few clusters; at most floor((k - 1) / 2)
    // lesion cells per patch, so a lesion stays a minority of every patch it touches. Lesions lie
    // in patches that are all tissue, which every tissue segmentation keeps (a border patch with
    // a few tissue cells may be dropped, and with it a slide's only tumour).
    const cap = Math.max(1, Math.floor((k - 1) / 2));
    const perPatch = new Int32Array(pCols * pRows);
    const patchOf = (q: number) => Math.floor(Math.floor(q / cols) / r) * pCols + Math.floor((q % cols) / r);
    const tissueInPatch = new Int32Array(pCols * pRows);
    for (const q of tissueList) tissueInPatch[patchOf(q)]++;
    const lesionCandidates = tissueList.filter((q) => tissueInPatch[patchOf(q)] === k);
    const fullPatches = tissueInPatch.filter((v) => v === k).length;
    const lesion = (cellKind: number): number => {
      const micro = rng.next() < c.microLesionRate;
      const [mlo, mhi] = c.microLesionCells;
      const quota = Math.min(
        Math.floor(lesionCandidates.length * 0.25),
        micro ? mlo + rng.int(mhi - mlo + 1) : Math.max(mlo, Math.round(logUniform(rng, c.macroLesionFraction[0], c.macroLesionFraction[1]) * tissueList.length)),
      );
      const clusters = micro ? 1 : 1 + rng.int(c.maxClusters);
      const density = rng.uniform(c.infiltrationRange[0], c.infiltrationRange[1]);
      const placed = placeClusters(rng, {
        labels: kind,
        candidates: lesionCandidates,
        x: (q) => q % cols,
        y: (q) => Math.floor(q / cols),
        patchOf,
        perPatch,
        eligible: (current) => current === CELL_NORMAL,
        value: cellKind,
        quota,
        clusters,
        density,
        cap,
        jitter: 1.5,
      });
      return placed > 0 ? clusters : 0;
    };
    const tumourClusters = label === 1 ? lesion(CELL_TUMOUR) : 0;
    const mimicClusters = rng.next() < (label === 1 ? c.mimicInPositive : c.mimicInNegative) ? lesion(CELL_MIMIC) : 0;

    // Digit images and shifts.
    const classes = this.byClass[pool];
    const looks = this.lookalikes[pool];
    const image = new Int32Array(cols * rows).fill(-1);
    const shift = new Int8Array(cols * rows * 2);
    let tumourCells = 0;
    let mimicCells = 0;
    const tumourP = new Set<number>();
    const mimicP = new Set<number>();
    const tissueP = new Set<number>();
    for (const q of tissueList) {
      tissueP.add(patchOf(q));
      let list: Int32Array;
      if (kind[q] === CELL_TUMOUR) {
        digit[q] = c.tumourDigit;
        list = looks.tumour;
        tumourCells++;
        tumourP.add(patchOf(q));
      } else if (kind[q] === CELL_MIMIC) {
        digit[q] = c.mimicDigit;
        list = looks.mimic;
        mimicCells++;
        mimicP.add(patchOf(q));
      } else list = classes[digit[q]];
      image[q] = list[rng.int(list.length)];
      shift[2 * q] = rng.int(2 * c.jitter + 1) - c.jitter;
      shift[2 * q + 1] = rng.int(2 * c.jitter + 1) - c.jitter;
    }
    const stain = randomStain(rng);
    return {
      id,
      label,
      subset,
      cellSize: c.cellSize,
      digitSize: c.digitSize,
      ratio: r,
      cols,
      rows,
      width: cols * c.cellSize,
      height: rows * c.cellSize,
      cellKind: kind,
      cellDigit: digit,
      cellImage: image,
      cellShift: shift,
      tissuePatches: tissueP.size,
      fullPatches,
      tumourCells,
      mimicCells,
      tumourPatches: tumourP.size,
      mimicPatches: mimicP.size,
      tumourClusters,
      mimicClusters,
      stain,
      noiseSeed: rng.nextUint32(),
      mpp: c.mpp,
    };
  }

  /** Paints slide `index` (see {@link renderDigitSlide}). */
  render(slide: DigitSlide): RgbImage {
    return renderDigitSlide(slide, this.bank);
  }
}

/**
 * Paints a digit slide at level 0.
 * @param bank the cohort's digit images at the slide's `digitSize` (`cohort.bank`).
 * @returns `width x height` RGB bytes.
 * @category Synthetic
 */
export function renderDigitSlide(slide: DigitSlide, bank: DigitBank): RgbImage {
  if (bank.size !== slide.digitSize) {
    throw new ValueError(`Expected digit images of ${slide.digitSize} pixels (the cohort's bank), but got ${bank.size}; pass cohort.bank.`);
  }
  const image: RgbImage = { width: slide.width, height: slide.height, data: new Uint8Array(slide.width * slide.height * 3) };
  const s = slide.cellSize;
  for (let cy = 0; cy < slide.rows; cy++) {
    for (let cx = 0; cx < slide.cols; cx++) {
      const q = cy * slide.cols + cx;
      const cell: DigitCell = { kind: slide.cellKind[q], image: Math.max(0, slide.cellImage[q]), dx: slide.cellShift[2 * q], dy: slide.cellShift[2 * q + 1] };
      paintDigitCell(image, cx * s, cy * s, s, cell, bank, slide.stain, cx * s, cy * s, slide.noiseSeed);
    }
  }
  return image;
}

/**
 * Ground truth of level-0 rectangles (patches or sub-patches): the number of tumour and mimic
 * cells each covers, and the digit of the cell at its centre.
 *
 * @param coords level-0 top-left corners, `[M, 2]`.
 * @param size side of the rectangles in level-0 pixels.
 * @returns per rectangle: tumour cells, mimic cells, tissue cells covered, centre digit (-1: glass).
 * @example
 * ```ts
 * // sub-patches of a tiling: size = cellSize
 * const t = digitTruthAt(slide, tiling.subPatches!.coords, slide.cellSize);
 * t.tumour[j];  // 1 if sub-patch j is a tumour cell
 * ```
 * @category Synthetic
 */
export function digitTruthAt(
  slide: DigitSlide,
  coords: ArrayLike<number>,
  size: number,
): { tumour: Int32Array; mimic: Int32Array; tissue: Int32Array; digit: Int8Array } {
  const m = Math.floor(coords.length / 2);
  const tumour = new Int32Array(m);
  const mimic = new Int32Array(m);
  const tissue = new Int32Array(m);
  const digit = new Int8Array(m).fill(-1);
  const s = slide.cellSize;
  for (let i = 0; i < m; i++) {
    const x = coords[2 * i];
    const y = coords[2 * i + 1];
    const cx0 = Math.max(0, Math.floor(x / s));
    const cy0 = Math.max(0, Math.floor(y / s));
    const cx1 = Math.min(slide.cols, Math.ceil((x + size) / s));
    const cy1 = Math.min(slide.rows, Math.ceil((y + size) / s));
    for (let cy = cy0; cy < cy1; cy++) {
      for (let cx = cx0; cx < cx1; cx++) {
        const kd = slide.cellKind[cy * slide.cols + cx];
        if (kd === CELL_TUMOUR) tumour[i]++;
        else if (kd === CELL_MIMIC) mimic[i]++;
        if (kd !== CELL_GLASS) tissue[i]++;
      }
    }
    const mx = Math.floor((x + size / 2) / s);
    const my = Math.floor((y + size / 2) / s);
    if (mx >= 0 && my >= 0 && mx < slide.cols && my < slide.rows) digit[i] = slide.cellDigit[my * slide.cols + mx];
  }
  return { tumour, mimic, tissue, digit };
}
