/**
 * Image operations on typed arrays for tissue segmentation: HSV saturation, median blur,
 * binary morphology, connected components and integral images. They follow OpenCV's
 * definitions (the operations CLAM calls) so that parameters carry over.
 *
 * @packageDocumentation
 */
import { assert } from '../core/errors.js';

/**
 * Saturation channel of OpenCV's 8-bit RGB to HSV conversion:
 * `S = round(255 * (max - min) / max)` (0 where `max = 0`).
 *
 * @param rgb interleaved RGB bytes of `n` pixels.
 * @returns `n` saturation bytes.
 * @example
 * ```ts
 * rgbToSaturation(Uint8Array.from([200, 100, 50]), 1); // [191]: 255 * 150 / 200 = 191.25
 * ```
 * @category WSI
 */
export function rgbToSaturation(rgb: Uint8Array, n = rgb.length / 3): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, o = 0; o < n; i += 3, o++) {
    const r = rgb[i];
    const g = rgb[i + 1];
    const b = rgb[i + 2];
    const mx = r > g ? (r > b ? r : b) : g > b ? g : b;
    const mn = r < g ? (r < b ? r : b) : g < b ? g : b;
    out[o] = mx === 0 ? 0 : Math.floor((255 * (mx - mn)) / mx + 0.5);
  }
  return out;
}

/**
 * Median filter with a `k x k` square window and replicated borders (OpenCV `medianBlur`), by
 * Huang's running histogram: each step right adds one window column and removes another, and
 * the median moves from its last position. Cost O(w h k) for 8-bit images.
 *
 * @param src `w * h` bytes.
 * @param k odd window side.
 * @returns a new `w * h` array.
 * @category WSI
 */
export function medianBlur(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  assert(Number.isInteger(k) && k >= 1 && k % 2 === 1, () => `Expected the median kernel to be an odd positive integer, but got ${k}.`);
  assert(src.length === w * h, () => `Expected ${w * h} pixels, but got ${src.length}.`);
  const out = new Uint8Array(w * h);
  if (k === 1) {
    out.set(src);
    return out;
  }
  const r = k >> 1;
  const half = (k * k) >> 1; // median = value with count(< m) <= half < count(<= m)
  const hist = new Int32Array(256);
  const cx = (x: number) => (x < 0 ? 0 : x >= w ? w - 1 : x);
  const rows = new Int32Array(k);
  for (let y = 0; y < h; y++) {
    hist.fill(0);
    for (let dy = -r; dy <= r; dy++) {
      const yy = y + dy < 0 ? 0 : y + dy >= h ? h - 1 : y + dy;
      rows[dy + r] = yy * w;
    }
    for (let i = 0; i < k; i++) {
      const base = rows[i];
      for (let dx = -r; dx <= r; dx++) hist[src[base + cx(dx)]]++;
    }
    // Find the first median by scanning.
    let med = 0;
    let less = 0;
    while (less + hist[med] <= half) {
      less += hist[med];
      med++;
    }
    out[y * w] = med;
    for (let x = 1; x < w; x++) {
      const xo = cx(x - r - 1);
      const xi = cx(x + r);
      for (let i = 0; i < k; i++) {
        const base = rows[i];
        const vo = src[base + xo];
        hist[vo]--;
        if (vo < med) less--;
        const vi = src[base + xi];
        hist[vi]++;
        if (vi < med) less++;
      }
      while (less > half) {
        med--;
        less -= hist[med];
      }
      while (less + hist[med] <= half) {
        less += hist[med];
        med++;
      }
      out[y * w + x] = med;
    }
  }
  return out;
}

/**
 * Binary threshold (OpenCV `THRESH_BINARY` with a max value of 1): `out = src > t ? 1 : 0`.
 * @category WSI
 */
export function threshold(src: Uint8Array, t: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] > t ? 1 : 0;
  return out;
}

/**
 * One pass of binary dilation (`max`) or erosion (`min`) along rows or columns with a window
 * of `k` pixels whose anchor is at `k >> 1` (OpenCV's default anchor): pixel x takes the
 * extreme of `[x - a, x - a + k - 1]`; pixels outside the image are ignored.
 */
function morphPass(
  src: Uint8Array,
  w: number,
  h: number,
  k: number,
  horizontal: boolean,
  dilateOp: boolean,
  a = k >> 1,
): Uint8Array {
  const out = new Uint8Array(w * h);
  const len = horizontal ? w : h;
  const lines = horizontal ? h : w;
  const stride = horizontal ? 1 : w;
  const prefix = new Int32Array(len + 1);
  for (let line = 0; line < lines; line++) {
    const start = horizontal ? line * w : line;
    for (let i = 0; i < len; i++) prefix[i + 1] = prefix[i] + src[start + i * stride];
    for (let i = 0; i < len; i++) {
      const lo = Math.max(0, i - a);
      const hi = Math.min(len - 1, i - a + k - 1);
      const ones = prefix[hi + 1] - prefix[lo];
      out[start + i * stride] = dilateOp ? (ones > 0 ? 1 : 0) : ones === hi - lo + 1 ? 1 : 0;
    }
  }
  return out;
}

/**
 * Binary dilation with a `k x k` square of ones (OpenCV `dilate`, default anchor).
 * @param src 0/1 mask.
 * @category WSI
 */
export function dilate(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  if (k <= 1) return src.slice();
  return morphPass(morphPass(src, w, h, k, true, true), w, h, k, false, true);
}

/**
 * Binary erosion with a `k x k` square of ones (OpenCV `erode`, default anchor; the outside of
 * the image does not erode).
 * @param src 0/1 mask.
 * @category WSI
 */
export function erode(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  if (k <= 1) return src.slice();
  return morphPass(morphPass(src, w, h, k, true, false), w, h, k, false, false);
}

/**
 * Morphological closing with a `k x k` square (OpenCV `morphologyEx(MORPH_CLOSE)`): dilation,
 * then erosion by the reflected square, which fills gaps narrower than k and never removes a
 * foreground pixel. For odd k this is exactly OpenCV's closing; for even k (CLAM's default 4)
 * the reflection keeps the result from shifting by one pixel.
 * @category WSI
 */
export function morphClose(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  if (k <= 1) return src.slice();
  const d = dilate(src, w, h, k);
  const r = k - 1 - (k >> 1); // reflected anchor
  return morphPass(morphPass(d, w, h, k, true, false, r), w, h, k, false, false, r);
}

/** Connected components of a binary image. */
export interface Components {
  /** Component index + 1 of each pixel of the chosen value; 0 elsewhere. */
  labels: Int32Array;
  /** Number of components. */
  count: number;
  /** Pixel count of each component. */
  areas: number[];
  /** Bounding box of each component: `[x0, y0, x1, y1]` inclusive. */
  boxes: [number, number, number, number][];
  /** Raster index of each component's first pixel (top-most, then left-most). */
  first: number[];
  /** Whether each component touches the image border. */
  touchesBorder: boolean[];
}

/**
 * Labels the connected components of the pixels equal to `value` in a 0/1 image, with 4- or
 * 8-connectivity (two passes with union-find). Components are numbered in raster order of their
 * first pixel.
 * @category WSI
 */
export function connectedComponents(src: Uint8Array, w: number, h: number, connectivity: 4 | 8, value = 1): Components {
  const labels = new Int32Array(w * h);
  const parent: number[] = [0];
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const union = (a: number, b: number): number => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return ra;
    if (ra < rb) {
      parent[rb] = ra;
      return ra;
    }
    parent[ra] = rb;
    return rb;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (src[i] !== value) continue;
      let l = 0;
      const consider = (j: number) => {
        const lj = labels[j];
        if (lj === 0) return;
        l = l === 0 ? find(lj) : union(l, lj);
      };
      if (x > 0) consider(i - 1);
      if (y > 0) {
        consider(i - w);
        if (connectivity === 8) {
          if (x > 0) consider(i - w - 1);
          if (x < w - 1) consider(i - w + 1);
        }
      }
      if (l === 0) {
        l = parent.length;
        parent.push(l);
      }
      labels[i] = l;
    }
  }
  // Second pass: compact labels in raster order of first appearance.
  const compact = new Int32Array(parent.length);
  const areas: number[] = [];
  const boxes: [number, number, number, number][] = [];
  const first: number[] = [];
  const touchesBorder: boolean[] = [];
  let count = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const l = labels[i];
      if (l === 0) continue;
      const root = find(l);
      let c = compact[root];
      if (c === 0) {
        c = ++count;
        compact[root] = c;
        areas.push(0);
        boxes.push([x, y, x, y]);
        first.push(i);
        touchesBorder.push(false);
      }
      labels[i] = c;
      const k = c - 1;
      areas[k]++;
      const b = boxes[k];
      if (x < b[0]) b[0] = x;
      if (x > b[2]) b[2] = x;
      if (y > b[3]) b[3] = y;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) touchesBorder[k] = true;
    }
  }
  return { labels, count, areas, boxes, first, touchesBorder };
}

/**
 * Summed-area table of a 0/1 (or small-integer) image: `(w + 1) x (h + 1)` entries with
 * `I[(y) * (w + 1) + x] = sum of src over [0, x) x [0, y)`.
 * @category WSI
 */
export function integralImage(src: Uint8Array, w: number, h: number): Float64Array {
  const W = w + 1;
  const I = new Float64Array(W * (h + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += src[y * w + x];
      I[(y + 1) * W + x + 1] = I[y * W + x + 1] + row;
    }
  }
  return I;
}

/** Sum of the image over `[x0, x1) x [y0, y1)` (clipped to the image) from its {@link integralImage}. */
export function rectSum(I: Float64Array, w: number, h: number, x0: number, y0: number, x1: number, y1: number): number {
  const W = w + 1;
  const a = Math.max(0, Math.min(w, x0));
  const b = Math.max(0, Math.min(h, y0));
  const c = Math.max(0, Math.min(w, x1));
  const d = Math.max(0, Math.min(h, y1));
  if (c <= a || d <= b) return 0;
  return I[d * W + c] - I[b * W + c] - I[d * W + a] + I[b * W + a];
}
