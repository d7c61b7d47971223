/**
 * Synthetic slide images with known ground truth: white glass, a few tissue regions (pink
 * stroma with purple nuclei, some with holes) and small lesion regions (dense, large, dark
 * nuclei) inside the tissue. Deterministic given a seed.
 *
 * This module draws pixels in memory and runs anywhere; `writeSyntheticSlide` in
 * `sasha-wsi/node` writes the image as a real pyramidal JPEG-tiled TIFF.
 *
 * @packageDocumentation
 */
import { checkNumber, resolveConfig } from '../../core/config.js';
import { createRng, type Rng } from '../../core/random.js';
import type { RgbImage } from '../slide_source.js';
import { hash2 } from './seeding.js';

/** Configuration of {@link generateSyntheticSlideImage}. @category WSI */
export interface SyntheticImageConfig {
  /** Level-0 width in pixels. */
  width: number;
  /** Level-0 height in pixels. */
  height: number;
  /** Number of tissue regions. */
  numTissue: number;
  /** Number of lesion regions (0 for a "normal" slide). */
  numLesions: number;
  /** Holes per tissue region (a hole is glass inside tissue). */
  holesPerTissue: number;
  /** Tissue region radius, as a fraction of the slide's shorter side: [min, max]. */
  tissueRadius: [number, number];
  /** Lesion radius, as a fraction of the slide's shorter side: [min, max]. */
  lesionRadius: [number, number];
  /** Distance between nuclei, in level-0 pixels. */
  nucleusSpacing: number;
  /** Micrometres per level-0 pixel (written to the TIFF resolution tags). */
  mpp: number;
  /** Seed of every random choice. */
  seed: number;
}

/** Defaults of {@link SyntheticImageConfig}: a small slide that tests read quickly. */
export const DEFAULT_SYNTHETIC_IMAGE_CONFIG: Readonly<SyntheticImageConfig> = Object.freeze({
  width: 2048, // small enough for fast tests; 4 pyramid levels with 256-pixel tiles
  height: 1536,
  numTissue: 2, // a biopsy-like slide: two separate pieces
  numLesions: 2,
  holesPerTissue: 1,
  tissueRadius: [0.22, 0.3] as [number, number],
  lesionRadius: [0.03, 0.06] as [number, number],
  nucleusSpacing: 12, // about 6 µm at 0.5 µm/px, the spacing of nuclei in dense stroma
  mpp: 0.5, // "20x"
  seed: 0,
});

/** Ground-truth class of a block of pixels. */
export const SYNTHETIC_BACKGROUND = 0;
/** Normal tissue. */
export const SYNTHETIC_TISSUE = 1;
/** Lesion (always inside tissue). */
export const SYNTHETIC_LESION = 2;

/** A generated slide: level-0 RGB pixels and the ground truth they were drawn from. @category WSI */
export interface SyntheticSlideImage {
  /** The resolved configuration. */
  config: Readonly<SyntheticImageConfig>;
  /** Level-0 RGB image. */
  image: RgbImage;
  /**
   * Ground-truth class of each `blockSize x blockSize` block of level-0 pixels
   * ({@link SYNTHETIC_BACKGROUND}, {@link SYNTHETIC_TISSUE}, {@link SYNTHETIC_LESION}); the
   * pixels were drawn from these classes.
   */
  labels: Uint8Array;
  /** Side of a label block in level-0 pixels. */
  blockSize: number;
  /** Label grid width (`ceil(width / blockSize)`). */
  labelsWidth: number;
  /** Label grid height. */
  labelsHeight: number;
  /** Fraction of tissue area that is lesion. */
  lesionFraction: number;
}

/** A star-shaped blob: an ellipse whose radius wobbles with a few harmonics. */
interface Blob {
  cx: number;
  cy: number;
  r: number;
  aspect: number;
  cos: number;
  sin: number;
  harmonics: { k: number; amp: number; phase: number }[];
}

function makeBlob(rng: Rng, cx: number, cy: number, r: number, wobble: number): Blob {
  const angle = rng.uniform(0, Math.PI);
  return {
    cx,
    cy,
    r,
    aspect: rng.uniform(0.7, 1),
    cos: Math.cos(angle),
    sin: Math.sin(angle),
    harmonics: [2, 3, 5].map((k) => ({ k, amp: rng.uniform(0, wobble / k), phase: rng.uniform(0, 2 * Math.PI) })),
  };
}

function insideBlob(b: Blob, x: number, y: number): boolean {
  const dx = x - b.cx;
  const dy = y - b.cy;
  const u = dx * b.cos + dy * b.sin;
  const v = (-dx * b.sin + dy * b.cos) / b.aspect;
  const rho2 = u * u + v * v;
  if (rho2 > b.r * b.r * 2.5) return false;
  const theta = Math.atan2(v, u);
  let rr = 1;
  for (const h of b.harmonics) rr += h.amp * Math.sin(h.k * theta + h.phase);
  const lim = b.r * rr;
  return rho2 < lim * lim;
}

/**
 * Draws a synthetic slide. Tissue regions are wobbly ellipses spread over the slide, holes are
 * small glass regions inside them, and lesions are small wobbly regions placed inside tissue.
 * Pixels are drawn from a class map of 4 x 4-pixel blocks, which is returned as ground truth.
 *
 * @example
 * ```ts
 * const s = generateSyntheticSlideImage({ width: 1024, height: 768, seed: 3 });
 * s.image.data.length;                          // 1024 * 768 * 3
 * syntheticTruthMask(s, 'tissue', 8).length;    // 128 * 96
 * ```
 * @category WSI
 */
export function generateSyntheticSlideImage(config: Partial<SyntheticImageConfig> = {}): SyntheticSlideImage {
  const c = resolveConfig('SyntheticImageConfig', DEFAULT_SYNTHETIC_IMAGE_CONFIG, config, (x) => {
    checkNumber('SyntheticImageConfig', x, 'width', { min: 16, integer: true });
    checkNumber('SyntheticImageConfig', x, 'height', { min: 16, integer: true });
    checkNumber('SyntheticImageConfig', x, 'numTissue', { min: 0, integer: true });
    checkNumber('SyntheticImageConfig', x, 'numLesions', { min: 0, integer: true });
    checkNumber('SyntheticImageConfig', x, 'holesPerTissue', { min: 0, integer: true });
    checkNumber('SyntheticImageConfig', x, 'nucleusSpacing', { min: 4 });
    checkNumber('SyntheticImageConfig', x, 'mpp', { min: 0, minExclusive: true });
  });
  const { width: W, height: H } = c;
  const rng = createRng(c.seed);
  const side = Math.min(W, H);
  const B = 4;
  const LW = Math.ceil(W / B);
  const LH = Math.ceil(H / B);
  const labels = new Uint8Array(LW * LH);

  // Tissue regions: centres spread along the longer axis, jittered.
  const tissue: Blob[] = [];
  const holes: Blob[] = [];
  for (let i = 0; i < c.numTissue; i++) {
    const r = side * rng.uniform(c.tissueRadius[0], c.tissueRadius[1]);
    const along = (i + 0.5) / c.numTissue;
    const cx = W >= H ? along * W + rng.uniform(-0.05, 0.05) * W : W / 2 + rng.uniform(-0.1, 0.1) * W;
    const cy = W >= H ? H / 2 + rng.uniform(-0.1, 0.1) * H : along * H + rng.uniform(-0.05, 0.05) * H;
    const blob = makeBlob(rng, cx, cy, r, 0.25);
    tissue.push(blob);
    for (let h = 0; h < c.holesPerTissue; h++) {
      const a = rng.uniform(0, 2 * Math.PI);
      const d = rng.uniform(0.2, 0.45) * r;
      holes.push(makeBlob(rng, cx + d * Math.cos(a), cy + d * Math.sin(a), r * rng.uniform(0.08, 0.14), 0.15));
    }
  }
  const isTissue = (x: number, y: number) => tissue.some((b) => insideBlob(b, x, y)) && !holes.some((b) => insideBlob(b, x, y));
  for (let j = 0; j < LH; j++) {
    for (let i = 0; i < LW; i++) if (isTissue((i + 0.5) * B, (j + 0.5) * B)) labels[j * LW + i] = SYNTHETIC_TISSUE;
  }
  // Lesions: centres drawn inside tissue, kept inside tissue.
  let placed = 0;
  for (let tries = 0; placed < c.numLesions && tries < 1000 * Math.max(1, c.numLesions); tries++) {
    const x = rng.uniform(0, W);
    const y = rng.uniform(0, H);
    if (!isTissue(x, y)) continue;
    const blob = makeBlob(rng, x, y, side * rng.uniform(c.lesionRadius[0], c.lesionRadius[1]), 0.3);
    const i0 = Math.max(0, Math.floor((x - 2 * blob.r) / B));
    const i1 = Math.min(LW - 1, Math.ceil((x + 2 * blob.r) / B));
    const j0 = Math.max(0, Math.floor((y - 2 * blob.r) / B));
    const j1 = Math.min(LH - 1, Math.ceil((y + 2 * blob.r) / B));
    for (let j = j0; j <= j1; j++) {
      for (let i = i0; i <= i1; i++) {
        const k = j * LW + i;
        if (labels[k] !== SYNTHETIC_BACKGROUND && insideBlob(blob, (i + 0.5) * B, (j + 0.5) * B)) labels[k] = SYNTHETIC_LESION;
      }
    }
    placed++;
  }
  let nT = 0;
  let nL = 0;
  for (let k = 0; k < labels.length; k++) {
    if (labels[k] !== SYNTHETIC_BACKGROUND) nT++;
    if (labels[k] === SYNTHETIC_LESION) nL++;
  }

  const data = new Uint8Array(W * H * 3);
  paintBase(data, W, H, labels, LW, B, c.seed);
  paintNuclei(data, W, H, labels, LW, B, c.nucleusSpacing, c.seed);
  return {
    config: c,
    image: { width: W, height: H, data },
    labels,
    blockSize: B,
    labelsWidth: LW,
    labelsHeight: LH,
    lesionFraction: nT > 0 ? nL / nT : 0,
  };
}

/** Glass, stroma and lesion stroma colours with smooth variation and fine grain. */
function paintBase(data: Uint8Array, W: number, H: number, labels: Uint8Array, LW: number, B: number, seed: number): void {
  const cell = 48; // smooth-noise lattice spacing in pixels
  const nx = Math.ceil(W / cell) + 2;
  const ny = Math.ceil(H / cell) + 2;
  const lattice = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) lattice[j * nx + i] = hash2(i, j, seed + 17);
  for (let y = 0; y < H; y++) {
    const gy = y / cell;
    const j = Math.floor(gy);
    const fy = gy - j;
    const row = (y / B) | 0;
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      const lab = labels[row * LW + ((x / B) | 0)];
      const grain = hash2(x, y, seed) - 0.5;
      if (lab === SYNTHETIC_BACKGROUND) {
        const g = Math.round(grain * 3);
        data[o] = 243 + g;
        data[o + 1] = 241 + g;
        data[o + 2] = 245 + g;
        continue;
      }
      const gx = x / cell;
      const i = Math.floor(gx);
      const fx = gx - i;
      const a = lattice[j * nx + i];
      const b = lattice[j * nx + i + 1];
      const cc = lattice[(j + 1) * nx + i];
      const d = lattice[(j + 1) * nx + i + 1];
      const v = (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy;
      const g = grain * 14;
      if (lab === SYNTHETIC_TISSUE) {
        // eosin pink stroma, lighter and darker bands
        data[o] = clamp(238 - 22 * v + g);
        data[o + 1] = clamp(188 - 52 * v + g);
        data[o + 2] = clamp(214 - 34 * v + g);
      } else {
        // lesion: crowded, purple-tinted stroma
        data[o] = clamp(196 - 30 * v + g);
        data[o + 1] = clamp(132 - 40 * v + g);
        data[o + 2] = clamp(196 - 24 * v + g);
      }
    }
  }
}

/** Hematoxylin-purple nuclei on a jittered grid: sparse and small in tissue, dense and large in lesions. */
function paintNuclei(
  data: Uint8Array,
  W: number,
  H: number,
  labels: Uint8Array,
  LW: number,
  B: number,
  spacing: number,
  seed: number,
): void {
  const cols = Math.ceil(W / spacing);
  const rows = Math.ceil(H / spacing);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      const cx = (i + 0.15 + 0.7 * hash2(i, j, seed + 1)) * spacing;
      const cy = (j + 0.15 + 0.7 * hash2(i, j, seed + 2)) * spacing;
      if (cx >= W || cy >= H) continue;
      const lab = labels[((cy / B) | 0) * LW + ((cx / B) | 0)];
      if (lab === SYNTHETIC_BACKGROUND) continue;
      const lesion = lab === SYNTHETIC_LESION;
      if (hash2(i, j, seed + 3) > (lesion ? 0.92 : 0.38)) continue;
      const r = (lesion ? 0.36 : 0.2) * spacing * (0.8 + 0.4 * hash2(i, j, seed + 4));
      const shade = hash2(i, j, seed + 5) * 30;
      const cr = lesion ? 70 + shade : 105 + shade;
      const cg = lesion ? 38 + shade * 0.5 : 70 + shade * 0.5;
      const cb = lesion ? 118 + shade : 150 + shade;
      const x0 = Math.max(0, Math.floor(cx - r));
      const x1 = Math.min(W - 1, Math.ceil(cx + r));
      const y0 = Math.max(0, Math.floor(cy - r));
      const y1 = Math.min(H - 1, Math.ceil(cy + r));
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const dx = x + 0.5 - cx;
          const dy = y + 0.5 - cy;
          if (dx * dx + dy * dy > r * r) continue;
          if (labels[((y / B) | 0) * LW + ((x / B) | 0)] === SYNTHETIC_BACKGROUND) continue;
          const o = (y * W + x) * 3;
          data[o] = cr;
          data[o + 1] = cg;
          data[o + 2] = cb;
        }
      }
    }
  }
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/**
 * Ground-truth mask of a synthetic slide at a downsample: pixel `(i, j)` of the mask covers
 * level-0 pixels `[i * ds, (i + 1) * ds)` and takes the class at its centre.
 *
 * @param kind `'tissue'` (tissue or lesion) or `'lesion'`.
 * @param downsample level-0 pixels per mask pixel.
 * @param size mask size (default `floor(width / ds) x floor(height / ds)`, the size of a
 *   pyramid level of that downsample).
 * @returns a 0/1 mask, row-major.
 * @category WSI
 */
export function syntheticTruthMask(
  slide: SyntheticSlideImage,
  kind: 'tissue' | 'lesion',
  downsample: number,
  size?: { width: number; height: number },
): Uint8Array {
  const w = size?.width ?? Math.max(1, Math.floor(slide.image.width / downsample));
  const h = size?.height ?? Math.max(1, Math.floor(slide.image.height / downsample));
  const dsx = slide.image.width / w;
  const dsy = slide.image.height / h;
  const out = new Uint8Array(w * h);
  const B = slide.blockSize;
  for (let j = 0; j < h; j++) {
    const ly = Math.min(slide.labelsHeight - 1, Math.floor(((j + 0.5) * dsy) / B));
    for (let i = 0; i < w; i++) {
      const lx = Math.min(slide.labelsWidth - 1, Math.floor(((i + 0.5) * dsx) / B));
      const lab = slide.labels[ly * slide.labelsWidth + lx];
      out[j * w + i] = kind === 'tissue' ? (lab !== SYNTHETIC_BACKGROUND ? 1 : 0) : lab === SYNTHETIC_LESION ? 1 : 0;
    }
  }
  return out;
}

/**
 * Fraction of a level-0 rectangle covered by lesion in the ground truth (for patch labels).
 * @category WSI
 */
export function syntheticLesionFraction(slide: SyntheticSlideImage, x: number, y: number, w: number, h: number): number {
  const B = slide.blockSize;
  const i0 = Math.max(0, Math.floor(x / B));
  const j0 = Math.max(0, Math.floor(y / B));
  const i1 = Math.min(slide.labelsWidth, Math.ceil((x + w) / B));
  const j1 = Math.min(slide.labelsHeight, Math.ceil((y + h) / B));
  let n = 0;
  let l = 0;
  for (let j = j0; j < j1; j++) {
    for (let i = i0; i < i1; i++) {
      n++;
      if (slide.labels[j * slide.labelsWidth + i] === SYNTHETIC_LESION) l++;
    }
  }
  const total = Math.max(1, Math.ceil(w / B) * Math.ceil(h / B));
  return n === 0 ? 0 : l / total;
}
