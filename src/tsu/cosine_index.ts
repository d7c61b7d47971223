/**
 * A faster exact search of the TSU similar set, for the environment's hot path.
 *
 * For unit vectors, `|cos(x, y)| >= tau` holds exactly when
 * `min(||x - y||^2, ||x + y||^2) <= 2 - 2 tau`. Projected onto k orthonormal directions Q, a
 * distance can only shrink: `||Q^T (x - y)||^2 <= ||x - y||^2`, and the projected one is
 * `p(x) + p(y) - 2 <Q^T x, Q^T y>` with `p` the squared norm of the projection. The index keeps
 * every row's unit vector projected onto the k = 32 directions of largest variance of the
 * slide's rows (principal components of a sample, found once per slide), and drops a row as soon
 * as its projected distance to the query (or to its opposite) exceeds `2 - 2 tau` (plus a margin
 * far above rounding error): k multiply-adds per row instead of d. The rows that survive are
 * decided with the same formula as {@link similarSet}, on the raw values, so the result is the
 * same set. Features with structure (clusters, a few dominant directions, as patch embeddings
 * have) leave few survivors; the bound holds for any data.
 *
 * On large slides (`buckets`, from 5000 rows by default) the rows are also grouped in about
 * sqrt(N) buckets of nearby projections (one k-means step from
 * evenly spaced rows), each with a centre c and a radius r (the largest projected distance of a
 * member to c). By the triangle inequality every member of a bucket lies at a projected distance
 * of at least `||c -+ y|| - r` from the query y and its opposite, so a bucket whose bound exceeds
 * `sqrt(2 - 2 tau)` is dropped whole: a search costs k multiply-adds per bucket plus the rows of
 * the buckets near the query, instead of a pass over all N rows. A row whose value changes leaves
 * its bucket for a short list searched every time (the radii never need to grow), and rows that
 * can never be in a similar set again (visited, or rewritten under `rewriteOnce`) leave the
 * search as they are met.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { COSINE_EPS } from '../core/ops.js';
import { ShapeError } from '../core/errors.js';
import type { TsuState } from './types.js';
import { dotRow } from './targeted_state_update.js';

/** Margin added to `2 - 2 tau` before a row is dropped (the float32 projections err by ~1e-6). */
const PRUNE_MARGIN = 1e-4;
/** Number of projection directions. */
const DIRECTIONS = 32;
/** Directions of the first stage of the search. */
const FIRST_STAGE = 12;
/** Rows sampled to estimate the principal directions. */
const PCA_SAMPLE = 512;
/** Subspace iterations of the principal directions. */
const PCA_ITERATIONS = 6;
/** Slack on the bucket radii (float32 projections, float64 centres). */
const RADIUS_SLACK = 1e-5;

/** `sum_{j in [from, to)} x[o + j] y[j]`, with four running sums. */
function dotRange(x: Float32Array, o: number, y: Float32Array, from: number, to: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let j = from;
  for (; j + 3 < to; j += 4) {
    s0 += x[o + j] * y[j];
    s1 += x[o + j + 1] * y[j + 1];
    s2 += x[o + j + 2] * y[j + 2];
    s3 += x[o + j + 3] * y[j + 3];
  }
  for (; j < to; j++) s0 += x[o + j] * y[j];
  return s0 + s1 + s2 + s3;
}

/**
 * k orthonormal directions of largest variance of the unit rows (columns of Q, row-major
 * [d * k]), from a sample of rows, by subspace iteration on their covariance. Any orthonormal Q
 * keeps the index exact; good directions make it prune more.
 */
function principalDirections(unit: Float32Array, n: number, d: number, k: number): Float32Array {
  const stride = Math.max(1, Math.floor(n / PCA_SAMPLE));
  const rows: number[] = [];
  for (let i = 0; i < n && rows.length < PCA_SAMPLE; i += stride) rows.push(i);
  const sample = new Float32Array(rows.length * d);
  rows.forEach((i, r) => sample.set(unit.subarray(i * d, i * d + d), r * d));
  // (typed arrays are read outside tf.tidy, which would walk them element by element)
  const cov = tf.tidy(() => {
    const x = tf.tensor2d(sample, [rows.length, d]);
    const centered = tf.sub(x, tf.mean(x, 0, true)) as tf.Tensor2D;
    return tf.matMul(tf.transpose(centered) as tf.Tensor2D, centered); // [d, d]
  });
  try {
    // start from a deterministic full-rank basis, then Q <- orth(C Q)
    let q = new Float64Array(d * k);
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) q[j * k + c] = Math.sin(1 + (j + 1) * (c + 1) * 0.7071) + (j % k === c ? 1 : 0);
    q = orthonormalColumns(q, d, k);
    for (let it = 0; it < PCA_ITERATIONS; it++) {
      const next = tf.tidy(() => tf.matMul(cov as tf.Tensor2D, tf.tensor2d(Float32Array.from(q), [d, k])));
      q = orthonormalColumns(Float64Array.from(next.dataSync()), d, k);
      next.dispose();
    }
    return Float32Array.from(q);
  } finally {
    cov.dispose();
  }
}

/** Modified Gram-Schmidt on the k columns of a row-major [d * k] matrix; degenerate columns become 0. */
function orthonormalColumns(m: Float64Array<ArrayBuffer>, d: number, k: number): Float64Array<ArrayBuffer> {
  for (let c = 0; c < k; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += m[j * k + c] * m[j * k + p];
      for (let j = 0; j < d; j++) m[j * k + c] -= dot * m[j * k + p];
    }
    let norm = 0;
    for (let j = 0; j < d; j++) norm += m[j * k + c] * m[j * k + c];
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) m[j * k + c] = norm > 1e-8 ? m[j * k + c] / norm : 0;
  }
  return m;
}

/** The rows divided by their norms (floored at 1e-8), [N * d]. */
function unitRows(state: TsuState): Float32Array {
  const { numRows: n, dim: d } = state;
  const unit = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const inv = 1 / Math.max(state.norms[i], COSINE_EPS);
    for (let j = 0; j < d; j++) unit[i * d + j] = state.values[i * d + j] * inv;
  }
  return unit;
}

/** The slide size from which `CosineIndex`'s `buckets: 'auto'` groups the rows. @category TSU */
export const BUCKETS_MIN_ROWS = 5000;

/** Options of {@link CosineIndex}. @category TSU */
export interface CosineIndexOptions {
  /**
   * Group the rows in buckets that a search skips whole when they are out of reach: true,
   * false (every search passes over all rows; the same result), or `'auto'` (default): buckets
   * from {@link BUCKETS_MIN_ROWS} rows on. Grouping costs a k-means step when the index is
   * built; it pays off on large slides only (`bench/cosine_index.ts`: 1.76x less CPU time for
   * building and searching at N = 10000, 1.14x at 3000, 0.57x at 1000).
   */
  buckets?: boolean | 'auto';
}

/**
 * Projected unit rows of a {@link TsuState}, kept in step with it by
 * {@link CosineIndex.updateRows}; {@link CosineIndex.similar} returns exactly what
 * `similarSet` returns.
 * @category TSU
 */
export class CosineIndex {
  /** N. */
  readonly numRows: number;
  /** d. */
  readonly dim: number;
  /** k, the number of projection directions. */
  readonly numDirections: number;
  private readonly basis: Float32Array; // Q, [d * k]
  private readonly proj: Float32Array; // Q^T unit(x_i), [N * k]
  private readonly projNorm: Float64Array; // ||Q^T unit(x_i)||^2, [N]
  private readonly headNorm: Float64Array; // the part of projNorm on the first stage's directions, [N]
  private table: Float32Array | null = null; // projections of a second set of rows (setTable), [N * k]
  private buckets: Buckets | null = null;
  private readonly useBuckets: boolean;

  /** Builds the index of `state`: its principal directions and every row's projection. */
  constructor(state: TsuState, options: CosineIndexOptions = {}) {
    const buckets = options.buckets ?? 'auto';
    this.useBuckets = buckets === 'auto' ? state.numRows >= BUCKETS_MIN_ROWS : buckets;
    const { numRows: n, dim: d } = state;
    this.numRows = n;
    this.dim = d;
    const k = (this.numDirections = Math.min(DIRECTIONS, d));
    const unit = unitRows(state);
    this.basis = principalDirections(unit, n, d, k);
    this.proj = new Float32Array(n * k);
    this.projNorm = new Float64Array(n);
    this.headNorm = new Float64Array(n);
    this.projectAll(unit);
  }

  /** The rows grouped by their projections (see the file documentation); all rows searchable. */
  private bucketAll(): void {
    this.buckets = this.useBuckets ? makeBuckets(this.proj, this.numRows, this.numDirections) : null;
  }

  /** Re-indexes every row of `state` (after a reset of the state), in place, on the same directions. */
  rebuild(state: TsuState): void {
    if (state.numRows !== this.numRows || state.dim !== this.dim) {
      throw new ShapeError(`Expected a state of ${this.numRows} x ${this.dim}, but got ${state.numRows} x ${state.dim}.`);
    }
    this.projectAll(unitRows(state));
  }

  /** Copies another index of the same size and directions (to return to a saved state without recomputing). */
  copyFrom(other: CosineIndex): void {
    if (other.numRows !== this.numRows || other.dim !== this.dim || other.numDirections !== this.numDirections) {
      throw new ShapeError(`Expected an index of ${this.numRows} x ${this.dim}, but got ${other.numRows} x ${other.dim}.`);
    }
    this.basis.set(other.basis);
    this.proj.set(other.proj);
    this.projNorm.set(other.projNorm);
    this.headNorm.set(other.headNorm);
    this.buckets = other.buckets && copyBuckets(other.buckets);
  }

  /** A copy of this index (to restore later with {@link CosineIndex.copyFrom}). */
  clone(): CosineIndex {
    const out = Object.create(CosineIndex.prototype) as CosineIndex;
    Object.assign(out, {
      numRows: this.numRows,
      dim: this.dim,
      numDirections: this.numDirections,
      basis: this.basis.slice(),
      proj: this.proj.slice(),
      projNorm: this.projNorm.slice(),
      headNorm: this.headNorm.slice(),
      table: this.table,
      buckets: this.buckets && copyBuckets(this.buckets),
      useBuckets: this.useBuckets,
    });
    return out;
  }

  /**
   * Re-indexes `rows` after their values (and norms) changed in `state` (many rows in one
   * product on the tensor backend).
   */
  updateRows(state: TsuState, rows: ArrayLike<number>): void {
    const n = rows.length;
    if (n < 8) {
      for (let r = 0; r < n; r++) this.writeRow(rows[r], state.values, state.norms[rows[r]]);
      return;
    }
    const { dim: d, numDirections: k } = this;
    const unit = new Float32Array(n * d);
    for (let r = 0; r < n; r++) {
      const i = rows[r];
      const inv = 1 / Math.max(state.norms[i], COSINE_EPS);
      for (let j = 0; j < d; j++) unit[r * d + j] = state.values[i * d + j] * inv;
    }
    const yt = tf.tidy(() => tf.matMul(tf.tensor2d(unit, [n, d]), tf.tensor2d(this.basis, [d, k])));
    const y = yt.dataSync();
    yt.dispose();
    for (let r = 0; r < n; r++) {
      this.proj.set(y.subarray(r * k, r * k + k), rows[r] * k);
      this.setNorms(rows[r]);
      loosen(this.buckets, rows[r]);
    }
  }

  /**
   * Projects a second set of N rows (for instance every V(i)) once, so that a row that takes
   * its value from that set is re-indexed by {@link CosineIndex.useTableRow} without arithmetic.
   * @param values [N * d], row-major.
   */
  setTable(values: Float32Array): void {
    const { numRows: n, dim: d, numDirections: k } = this;
    if (values.length !== n * d) throw new ShapeError(`Expected ${n} x ${d} table values, but got ${values.length}.`);
    const unit = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += values[i * d + j] * values[i * d + j];
      const inv = 1 / Math.max(Math.sqrt(s), COSINE_EPS);
      for (let j = 0; j < d; j++) unit[i * d + j] = values[i * d + j] * inv;
    }
    const yt = tf.tidy(() => tf.matMul(tf.tensor2d(unit, [n, d]), tf.tensor2d(this.basis, [d, k])));
    this.table = (yt.dataSync() as Float32Array).slice();
    yt.dispose();
  }

  /** Re-indexes row i, which now holds row i of the table given to {@link CosineIndex.setTable}. */
  useTableRow(i: number): void {
    const k = this.numDirections;
    if (!this.table) throw new ShapeError('useTableRow needs a table: call setTable first.');
    this.proj.set(this.table.subarray(i * k, i * k + k), i * k);
    this.setNorms(i);
    loosen(this.buckets, i);
  }

  /**
   * The similar set of `action` in `state` (the state this index is in step with): rows with
   * `|cos(S(i), S(a))| >= tau`, leaving out a, the visited rows and, with `rewriteOnce`, the
   * rewritten rows. Ascending.
   */
  similar(state: TsuState, action: number, tau: number, rewriteOnce: boolean): Int32Array {
    const { numRows: n, dim: d, numDirections: k, proj, projNorm, headNorm, buckets: b } = this;
    const headQ = headNorm[action];
    const { values, norms, visited, rewritten } = state;
    const limit = 2 - 2 * tau + PRUNE_MARGIN;
    const oa = action * d;
    const qa = values.slice(oa, oa + d);
    const qn = Math.max(norms[action], COSINE_EPS);
    const yq = proj.slice(action * k, action * k + k);
    const pq = projNorm[action];
    // Two stages: the projection onto the first FIRST_STAGE directions (the largest variances)
    // is a bound by itself and drops most rows; all k directions run on the rows that survive.
    const k1 = Math.min(FIRST_STAGE, k);
    const out: number[] = [];
    const test = (i: number): void => {
      const o = i * k;
      const head = dotRange(proj, o, yq, 0, k1);
      if (headNorm[i] + headQ - 2 * Math.abs(head) > limit) return;
      if (projNorm[i] + pq - 2 * Math.abs(head + dotRange(proj, o, yq, k1, k)) > limit) return;
      // The exact test of similarSet: raw values, norms floored at 1e-8, the same summation.
      const cos = dotRow(values, i * d, qa, d) / (Math.max(norms[i], COSINE_EPS) * qn);
      if (Math.abs(cos) >= tau) out.push(i);
    };
    // rows that can never be in C again (with buckets, they leave the search as they are met)
    const gone = (i: number): boolean => visited[i] === 1 || (rewriteOnce && rewritten[i] === 1);
    if (!b || (b.droppedRewritten && !rewriteOnce)) {
      // no buckets, or rewritten rows left them under rewriteOnce: search every row
      for (let i = 0; i < n; i++) if (i !== action && !gone(i)) test(i);
      return Int32Array.from(out);
    }
    if (rewriteOnce) b.droppedRewritten = true;
    // tests row i unless it is gone; false: it is, and its list drops it
    const visit = (i: number): boolean => {
      if (gone(i)) return false;
      if (i !== action) test(i);
      return true;
    };
    for (let p = 0; p < b.looseCount; ) {
      if (visit(b.loose[p])) p++;
      else removeLoose(b, p);
    }
    const reach = Math.sqrt(limit);
    for (let c = 0; c < b.count; c++) {
      if (b.live[c] === 0) continue;
      let cy = 0;
      for (let j = 0; j < k; j++) cy += b.centres[c * k + j] * yq[j];
      // the nearer of y and -y to the centre, minus the radius: a bound for every member
      if (Math.sqrt(Math.max(0, b.centreNorm[c] + pq - 2 * Math.abs(cy))) - b.radius[c] > reach) continue;
      const start = b.start[c];
      for (let p = start; p < start + b.live[c]; ) {
        if (visit(b.order[p])) p++;
        else removeFromBucket(b, b.order[p]);
      }
    }
    return Int32Array.from(out).sort();
  }

  private projectAll(unit: Float32Array): void {
    const { numRows: n, dim: d, numDirections: k } = this;
    const yt = tf.tidy(() => tf.matMul(tf.tensor2d(unit, [n, d]), tf.tensor2d(this.basis, [d, k])));
    const y = yt.dataSync() as Float32Array;
    this.proj.set(y);
    yt.dispose();
    for (let i = 0; i < n; i++) this.setNorms(i);
    this.bucketAll();
  }

  private setNorms(i: number): void {
    const k = this.numDirections;
    const k1 = Math.min(FIRST_STAGE, k);
    let head = 0;
    let rest = 0;
    for (let c = 0; c < k; c++) {
      const y = this.proj[i * k + c];
      if (c < k1) head += y * y;
      else rest += y * y;
    }
    this.projNorm[i] = head + rest;
    this.headNorm[i] = head;
  }

  private writeRow(i: number, values: Float32Array, norm: number): void {
    const { dim: d, numDirections: k, basis, proj } = this;
    const o = i * d;
    // Rows shorter than the norm floor stay shorter than 1: the bound remains a necessary condition.
    const inv = 1 / Math.max(norm, COSINE_EPS);
    const y = new Float64Array(k);
    for (let j = 0; j < d; j++) {
      const x = values[o + j] * inv;
      const b = j * k;
      for (let c = 0; c < k; c++) y[c] += x * basis[b + c];
    }
    for (let c = 0; c < k; c++) proj[i * k + c] = y[c];
    this.setNorms(i);
    loosen(this.buckets, i);
  }
}

/**
 * The rows of a {@link CosineIndex} grouped by their projections: bucket c holds the rows
 * `order[start[c] .. start[c] + live[c])` (its searchable members; removed ones follow them),
 * within `radius[c]` of `centres[c]`; rows whose value changed since the grouping are in `loose`.
 */
interface Buckets {
  count: number;
  centres: Float64Array; // [B * k]
  centreNorm: Float64Array; // ||c||^2, [B]
  radius: Float64Array; // [B]
  start: Int32Array; // [B + 1]
  live: Int32Array; // [B]
  order: Int32Array; // [N]
  pos: Int32Array; // row -> its position in order, [N]
  where: Int32Array; // row -> its bucket, or -1 (loose or removed), [N]
  loose: Int32Array; // [N]
  looseCount: number;
  /** Whether rewritten rows were removed (a search without rewriteOnce must then scan every row). */
  droppedRewritten: boolean;
}

/** Groups n projected rows [n * k] in about sqrt(n) buckets: evenly spaced rows as centres, one k-means step. */
function makeBuckets(proj: Float32Array, n: number, k: number): Buckets {
  const B = Math.max(1, Math.min(n, Math.round(Math.sqrt(n))));
  const centres = new Float64Array(B * k);
  for (let c = 0; c < B; c++) {
    const i = Math.floor((c * n) / B);
    for (let j = 0; j < k; j++) centres[c * k + j] = proj[i * k + j];
  }
  const where = new Int32Array(n);
  const nearest = () => {
    // argmin_c ||c||^2 - 2 p.c, the products on the tensor backend
    const cn = new Float64Array(B);
    for (let c = 0; c < B; c++) for (let j = 0; j < k; j++) cn[c] += centres[c * k + j] ** 2;
    const ct = new Float32Array(k * B); // the centres as columns (no transposed product on wasm)
    for (let c = 0; c < B; c++) for (let j = 0; j < k; j++) ct[j * B + c] = centres[c * k + j];
    const pc = tf.tidy(() => tf.matMul(tf.tensor2d(proj, [n, k]), tf.tensor2d(ct, [k, B])));
    const dots = pc.dataSync();
    pc.dispose();
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestD = Infinity;
      for (let c = 0; c < B; c++) {
        const dist = cn[c] - 2 * dots[i * B + c];
        if (dist < bestD) {
          bestD = dist;
          best = c;
        }
      }
      where[i] = best;
    }
  };
  nearest();
  // one k-means step: centres become their members' means (an empty bucket keeps its centre)
  const sizes = new Int32Array(B);
  const sums = new Float64Array(B * k);
  for (let i = 0; i < n; i++) {
    sizes[where[i]]++;
    for (let j = 0; j < k; j++) sums[where[i] * k + j] += proj[i * k + j];
  }
  for (let c = 0; c < B; c++) if (sizes[c] > 0) for (let j = 0; j < k; j++) centres[c * k + j] = sums[c * k + j] / sizes[c];
  nearest();
  const start = new Int32Array(B + 1);
  for (let i = 0; i < n; i++) start[where[i] + 1]++;
  for (let c = 0; c < B; c++) start[c + 1] += start[c];
  const order = new Int32Array(n);
  const pos = new Int32Array(n);
  const fill = start.slice(0, B);
  for (let i = 0; i < n; i++) {
    pos[i] = fill[where[i]]++;
    order[pos[i]] = i;
  }
  const live = new Int32Array(B);
  const radius = new Float64Array(B);
  const centreNorm = new Float64Array(B);
  for (let c = 0; c < B; c++) {
    live[c] = start[c + 1] - start[c];
    for (let j = 0; j < k; j++) centreNorm[c] += centres[c * k + j] ** 2;
  }
  for (let i = 0; i < n; i++) {
    const c = where[i];
    let s = 0;
    for (let j = 0; j < k; j++) s += (proj[i * k + j] - centres[c * k + j]) ** 2;
    radius[c] = Math.max(radius[c], Math.sqrt(s));
  }
  for (let c = 0; c < B; c++) radius[c] = radius[c] * (1 + RADIUS_SLACK) + RADIUS_SLACK;
  return { count: B, centres, centreNorm, radius, start, live, order, pos, where, loose: new Int32Array(n), looseCount: 0, droppedRewritten: false };
}

function copyBuckets(b: Buckets): Buckets {
  return {
    ...b,
    centres: b.centres.slice(),
    centreNorm: b.centreNorm.slice(),
    radius: b.radius.slice(),
    start: b.start.slice(),
    live: b.live.slice(),
    order: b.order.slice(),
    pos: b.pos.slice(),
    where: b.where.slice(),
    loose: b.loose.slice(),
  };
}

/** Takes row i out of its bucket's searchable members (swapping it behind them). */
function removeFromBucket(b: Buckets, i: number): void {
  const c = b.where[i];
  const last = b.start[c] + b.live[c] - 1;
  const p = b.pos[i];
  const j = b.order[last];
  b.order[p] = j;
  b.pos[j] = p;
  b.order[last] = i;
  b.pos[i] = last;
  b.live[c]--;
  b.where[i] = -1;
}

/** Row i's value changed: it leaves its bucket (whose radius no longer covers it) for the loose list. */
function loosen(b: Buckets | null, i: number): void {
  if (b && b.where[i] >= 0) {
    removeFromBucket(b, i);
    b.loose[b.looseCount++] = i;
  }
}

function removeLoose(b: Buckets, p: number): void {
  b.loose[p] = b.loose[--b.looseCount];
}
