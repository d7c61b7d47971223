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
 * have) leave few survivors; the bound holds for any data. Rows that can never be in a similar
 * set again (visited, or rewritten under `rewriteOnce`) leave the search as they are met.
 *
 * On large slides (`buckets`, from 5000 rows by default) the rows are also grouped in about
 * sqrt(N) buckets of nearby projections (one k-means step from
 * evenly spaced rows), each with a centre c and a radius r (the largest projected distance of a
 * member to c). By the triangle inequality every member of a bucket lies at a projected distance
 * of at least `||c -+ y|| - r` from the query y and its opposite, so a bucket whose bound exceeds
 * `sqrt(2 - 2 tau)` is dropped whole: a search costs k multiply-adds per bucket plus the rows of
 * the buckets near the query, instead of a pass over all N rows. A row whose value changes leaves
 * its bucket for a short list searched every time (the radii never need to grow).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { COSINE_EPS } from '../core/ops.js';
import { ShapeError, fmtShape } from '../core/errors.js';
import type { TsuState } from './types.js';
import { dotRow } from './targeted_state_update.js';

/** Margin added to `2 - 2 tau` before a row is dropped (the float32 projections err by ~1e-6). */
const PRUNE_MARGIN = 1e-4;
/** Number of projection directions. */
const DIRECTIONS = 32;
/** Directions of the first stage of the search. */
const FIRST_STAGE = 12;
/** Rows sampled to estimate the principal directions. */
const PCA_SAMPLE = 256;
/** Subspace iterations of the principal directions (one already prunes about as well as six). */
const PCA_ITERATIONS = 1;
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
 * k orthonormal directions of largest variance of the unit rows, from a sample of rows, by
 * subspace iteration on their covariance, applied as two products with the centred sample X:
 * `Q^T <- orth((X Q)^T X)` (the covariance X^T X is never formed; each iteration is one run on
 * the tensor backend). Any orthonormal Q keeps the index exact; good directions make it prune
 * more.
 * @returns Q [d * k] and Q^T [k * d], row-major.
 */
function principalDirections(state: TsuState, k: number): { basis: Float32Array; basisT: Float32Array } {
  const { numRows: n, dim: d, values, norms } = state;
  const stride = Math.max(1, Math.floor(n / PCA_SAMPLE));
  const rows: number[] = [];
  for (let i = 0; i < n && rows.length < PCA_SAMPLE; i += stride) rows.push(i);
  const s = rows.length;
  const sample = new Float32Array(s * d);
  const inv = new Float32Array(s);
  rows.forEach((i, r) => {
    sample.set(values.subarray(i * d, i * d + d), r * d);
    inv[r] = 1 / Math.max(norms[i], COSINE_EPS);
  });
  const x = tf.tidy(() => {
    const unit = tf.mul(tf.tensor2d(sample, [s, d]), tf.tensor2d(inv, [s, 1]));
    return tf.sub(unit, tf.mean(unit, 0, true)) as tf.Tensor2D;
  });
  // from a fixed start basis (read only: each iteration makes a new one)
  let basis = startBasis(k, d);
  let basisT: Float32Array | null = null;
  try {
    for (let it = 0; it < PCA_ITERATIONS; it++) {
      const q = basis;
      // (X Q)^T X, [k, d], with the small transpose of X Q on the backend (a product with a
      // transposed operand is slow on wasm); the result is read outside tf.tidy, which would
      // walk a typed array element by element
      const yt = tf.tidy(() => tf.matMul(tf.transpose(tf.matMul(x, tf.tensor2d(q, [d, k]))) as tf.Tensor2D, x));
      basisT = Float32Array.from(orthonormalRows(Float64Array.from(yt.dataSync()), k, d));
      yt.dispose();
      basis = transposed(basisT, k, d);
    }
  } finally {
    x.dispose();
  }
  return basisT ? { basis, basisT } : { basis: basis.slice(), basisT: transposed(basis, d, k) };
}

/** Orthonormal start bases Q [d * k] of the subspace iteration, by `k x d`. */
const START_BASES = new Map<string, Float32Array>();

/** A deterministic full-rank orthonormal basis Q [d * k], made once per shape. */
function startBasis(k: number, d: number): Float32Array {
  const key = `${k}x${d}`;
  let q = START_BASES.get(key);
  if (!q) {
    const qt = new Float64Array(k * d);
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) qt[c * d + j] = Math.sin(1 + (j + 1) * (c + 1) * 0.7071) + (j % k === c ? 1 : 0);
    q = transposed(orthonormalRows(qt, k, d), k, d);
    START_BASES.set(key, q);
  }
  return q;
}

/** The transpose of a row-major [r * c] matrix, as float32 [c * r]. */
function transposed(m: ArrayLike<number>, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = m[i * c + j];
  return out;
}

/**
 * A search's first stage: the query's projection and bound, and the rows whose bound on the first
 * `k1` directions passes (ascending unless from buckets), with their first-stage products.
 */
interface FirstStage {
  proj: Float32Array;
  /** k, the directions of a projection. */
  k: number;
  /** The directions of the first stage. */
  k1: number;
  /** The query's projection [k]. */
  yq: Float32Array;
  headNorm: Float64Array;
  /** The query's squared norm on the first k1 directions. */
  headQ: number;
  /** `2 - 2 tau` plus the margin. */
  limit: number;
  /** The query row, never a member of its own set. */
  action: number;
  rows: number[];
  heads: number[];
}

/** Row i's first-stage test: kept in `q.rows` (with its product) when its bound passes. */
function testHead(q: FirstStage, i: number): void {
  if (i === q.action) return;
  const head = dotRange(q.proj, i * q.k, q.yq, 0, q.k1);
  if (q.headNorm[i] + q.headQ - 2 * Math.abs(head) <= q.limit) {
    q.rows.push(i);
    q.heads.push(head);
  }
}

/**
 * The pass of a search over the list of searchable rows `rows[0 .. count)`: drops the rows that
 * can never be in C again (visited, or rewritten when `rewritten` is given) from the list, in
 * place and in order, and tests the others. Plain arrays only, so that its optimised code
 * outlives the index and the state it was first run on.
 * @returns the length of the list after the pass.
 */
function firstStage(q: FirstStage, rows: Int32Array, count: number, visited: Uint8Array, rewritten: Uint8Array | null): number {
  let kept = 0;
  for (let p = 0; p < count; p++) {
    const i = rows[p];
    if (visited[i] === 1 || (rewritten !== null && rewritten[i] === 1)) continue;
    rows[kept++] = i;
    testHead(q, i);
  }
  return kept;
}

/** Modified Gram-Schmidt on the k rows of a row-major [k * d] matrix; degenerate rows become 0. */
function orthonormalRows(m: Float64Array<ArrayBuffer>, k: number, d: number): Float64Array<ArrayBuffer> {
  for (let c = 0; c < k; c++) {
    const oc = c * d;
    for (let p = 0; p < c; p++) {
      const op = p * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += m[oc + j] * m[op + j];
      for (let j = 0; j < d; j++) m[oc + j] -= dot * m[op + j];
    }
    let norm = 0;
    for (let j = 0; j < d; j++) norm += m[oc + j] * m[oc + j];
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) m[oc + j] = norm > 1e-8 ? m[oc + j] / norm : 0;
  }
  return m;
}

/** The slide size from which `CosineIndex`'s `buckets: 'auto'` groups the rows. @category TSU */
export const BUCKETS_MIN_ROWS = 5000;

/** Options of {@link CosineIndex}. @category TSU */
export interface CosineIndexOptions {
  /**
   * Group the rows in buckets that a search skips whole when they are out of reach: true,
   * false (every search passes over all rows; the same result), or `'auto'` (default): buckets
   * from {@link BUCKETS_MIN_ROWS} rows on. Grouping costs a k-means step when the index is
   * built; it pays off on large slides only (`bench/cosine_index.ts`: 1.72x less CPU time for
   * building and searching at N = 10000, 1.19x at 3000, 0.84x at 1000).
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
  private readonly basisT: Float32Array; // Q^T, [k * d]
  private readonly proj: Float32Array; // Q^T unit(x_i), [N * k]
  private readonly projNorm: Float64Array; // ||Q^T unit(x_i)||^2, [N]
  private readonly headNorm: Float64Array; // the part of projNorm on the first stage's directions, [N]
  private table: Float32Array | null = null; // projections of a second set of rows (setTable), [N * k]
  private buckets: Buckets | null = null;
  private readonly useBuckets: boolean;
  /**
   * Without buckets: the rows a search still passes over, ascending, `rows[0 .. rowCount)`
   * (rows that can never be in C again leave it as they are met).
   */
  private rows: Int32Array;
  private rowCount = 0;
  /** Whether rewritten rows left `rows` (a search without rewriteOnce must then scan every row). */
  private droppedRewritten = false;

  /** Builds the index of `state`: its principal directions and every row's projection. */
  constructor(state: TsuState, options: CosineIndexOptions = {}) {
    const buckets = options.buckets ?? 'auto';
    this.useBuckets = buckets === 'auto' ? state.numRows >= BUCKETS_MIN_ROWS : buckets;
    const { numRows: n, dim: d } = state;
    this.numRows = n;
    this.dim = d;
    const k = (this.numDirections = Math.min(DIRECTIONS, d));
    ({ basis: this.basis, basisT: this.basisT } = principalDirections(state, k));
    this.proj = new Float32Array(n * k);
    this.projNorm = new Float64Array(n);
    this.headNorm = new Float64Array(n);
    this.rows = new Int32Array(this.useBuckets ? 0 : n);
    this.projectAll(state);
  }

  /** The rows grouped by their projections (see the file documentation); all rows searchable. */
  private bucketAll(): void {
    this.buckets = this.useBuckets ? makeBuckets(this.proj, this.numRows, this.numDirections) : null;
    for (let i = 0; i < this.rows.length; i++) this.rows[i] = i;
    this.rowCount = this.rows.length;
    this.droppedRewritten = false;
  }

  /** Re-indexes every row of `state` (after a reset of the state), in place, on the same directions. */
  rebuild(state: TsuState): void {
    if (state.numRows !== this.numRows || state.dim !== this.dim) {
      throw new ShapeError(`Expected a state of ${this.numRows} x ${this.dim}, but got ${state.numRows} x ${state.dim}.`);
    }
    this.projectAll(state);
  }

  /** Copies another index of the same size and directions (to return to a saved state without recomputing). */
  copyFrom(other: CosineIndex): void {
    if (other.numRows !== this.numRows || other.dim !== this.dim || other.numDirections !== this.numDirections) {
      throw new ShapeError(`Expected an index of ${this.numRows} x ${this.dim}, but got ${other.numRows} x ${other.dim}.`);
    }
    this.basis.set(other.basis);
    this.basisT.set(other.basisT);
    this.proj.set(other.proj);
    this.projNorm.set(other.projNorm);
    this.headNorm.set(other.headNorm);
    this.buckets = other.buckets && copyBuckets(other.buckets);
    this.rows.set(other.rows.subarray(0, other.rowCount));
    this.rowCount = other.rowCount;
    this.droppedRewritten = other.droppedRewritten;
  }

  /** A copy of this index (to restore later with {@link CosineIndex.copyFrom}). */
  clone(): CosineIndex {
    const out = Object.create(CosineIndex.prototype) as CosineIndex;
    Object.assign(out, {
      numRows: this.numRows,
      dim: this.dim,
      numDirections: this.numDirections,
      basis: this.basis.slice(),
      basisT: this.basisT.slice(),
      proj: this.proj.slice(),
      projNorm: this.projNorm.slice(),
      headNorm: this.headNorm.slice(),
      table: this.table,
      buckets: this.buckets && copyBuckets(this.buckets),
      useBuckets: this.useBuckets,
      rows: this.rows.slice(),
      rowCount: this.rowCount,
      droppedRewritten: this.droppedRewritten,
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
    this.project(state, rows);
    for (let r = 0; r < n; r++) loosen(this.buckets, rows[r]);
  }

  /**
   * Projects a second set of N rows (for instance every V(i)) once, in one run on the tensor
   * backend, so that a row that takes its value from that set is re-indexed by
   * {@link CosineIndex.useTableRow} without arithmetic.
   * @param values [N, d]: row-major values, or a tensor (read, not disposed).
   */
  setTable(values: Float32Array | tf.Tensor2D): void {
    const { numRows: n, dim: d, numDirections: k } = this;
    const isTensor = values instanceof tf.Tensor;
    if (isTensor ? values.rank !== 2 || values.shape[0] !== n || values.shape[1] !== d : values.length !== n * d) {
      throw new ShapeError(`Expected ${n} x ${d} table values, but got ${isTensor ? fmtShape(values.shape) : values.length}.`);
    }
    // Q^T x / max(||x||, 1e-8), the projection of the unit row
    const yt = tf.tidy(() => {
      const x = isTensor ? tf.cast(values, 'float32') : tf.tensor2d(values, [n, d]);
      const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(x), 1, true)), COSINE_EPS);
      return tf.div(tf.matMul(x, tf.tensor2d(this.basis, [d, k])), norm);
    });
    this.table = (yt.dataSync() as Float32Array).slice();
    yt.dispose();
  }

  /** Re-indexes row i, which now holds row i of the table given to {@link CosineIndex.setTable}. */
  useTableRow(i: number): void {
    const k = this.numDirections;
    if (!this.table) throw new ShapeError('useTableRow needs a table: call setTable first.');
    this.proj.set(this.table.subarray(i * k, i * k + k), i * k);
    setNorms(this.proj, this.projNorm, this.headNorm, i, k);
    loosen(this.buckets, i);
  }

  /**
   * The similar set of `action` in `state` (the state this index is in step with): rows with
   * `|cos(S(i), S(a))| >= tau`, leaving out a, the visited rows and, with `rewriteOnce`, the
   * rewritten rows. Ascending.
   */
  similar(state: TsuState, action: number, tau: number, rewriteOnce: boolean): Int32Array {
    const { numRows: n, dim: d, numDirections: k, proj, projNorm, headNorm, buckets: b } = this;
    const { values, norms, visited, rewritten } = state;
    const limit = 2 - 2 * tau + PRUNE_MARGIN;
    const yq = proj.slice(action * k, action * k + k);
    // Two stages: the projection onto the first FIRST_STAGE directions (the largest variances)
    // is a bound by itself and drops most rows; all k directions run on the rows that survive.
    const k1 = Math.min(FIRST_STAGE, k);
    const first: FirstStage = { proj, k, k1, yq, headNorm, headQ: headNorm[action], limit, action, rows: [], heads: [] };
    if ((b ? b.droppedRewritten : this.droppedRewritten) && !rewriteOnce) {
      // rewritten rows left the search under rewriteOnce: search every row
      firstStage(first, Int32Array.from({ length: n }, (_, i) => i), n, visited, null);
    } else if (!b) {
      if (rewriteOnce) this.droppedRewritten = true;
      this.rowCount = firstStage(first, this.rows, this.rowCount, visited, rewriteOnce ? rewritten : null);
    } else {
      if (rewriteOnce) b.droppedRewritten = true;
      bucketStage(first, b, visited, rewriteOnce ? rewritten : null, projNorm[action]);
    }
    // the second stage, then the exact test of similarSet: raw values, norms floored at 1e-8,
    // the same summation
    const oa = action * d;
    const qa = values.slice(oa, oa + d);
    const qn = Math.max(norms[action], COSINE_EPS);
    const pq = projNorm[action];
    const out: number[] = [];
    for (let p = 0; p < first.rows.length; p++) {
      const i = first.rows[p];
      if (projNorm[i] + pq - 2 * Math.abs(first.heads[p] + dotRange(proj, i * k, yq, k1, k)) > limit) continue;
      const cos = dotRow(values, i * d, qa, d) / (Math.max(norms[i], COSINE_EPS) * qn);
      if (Math.abs(cos) >= tau) out.push(i);
    }
    return b ? Int32Array.from(out).sort() : Int32Array.from(out);
  }

  private projectAll(state: TsuState): void {
    this.project(state, null);
    this.bucketAll();
  }

  /**
   * Projects `rows` of `state` (every row when null) in one product on the tensor backend:
   * `Q^T x / max(||x||, 1e-8)`, the projection of the unit row.
   */
  private project(state: TsuState, rows: ArrayLike<number> | null): void {
    const { dim: d, numDirections: k } = this;
    const { values, norms } = state;
    const count = rows ? rows.length : this.numRows;
    let x = values;
    if (rows) {
      x = new Float32Array(count * d);
      for (let r = 0; r < count; r++) x.set(values.subarray(rows[r] * d, rows[r] * d + d), r * d);
    }
    const yt = tf.tidy(() => tf.matMul(tf.tensor2d(x, [count, d]), tf.tensor2d(this.basis, [d, k])));
    const y = yt.dataSync() as Float32Array;
    yt.dispose();
    storeProjections(y, rows, count, norms, this.proj, this.projNorm, this.headNorm, k);
  }

  private writeRow(i: number, values: Float32Array, norm: number): void {
    const { dim: d, numDirections: k, basisT, proj } = this;
    // Rows shorter than the norm floor stay shorter than 1: the bound remains a necessary condition.
    projectRow(values, i * d, 1 / Math.max(norm, COSINE_EPS), basisT, d, proj, i * k, k);
    setNorms(proj, this.projNorm, this.headNorm, i, k);
    loosen(this.buckets, i);
  }
}

/** `out[o + c] = inv <x[xo .. xo + d), row c of Q^T>` for the k directions. */
function projectRow(x: Float32Array, xo: number, inv: number, basisT: Float32Array, d: number, out: Float32Array, o: number, k: number): void {
  for (let c = 0; c < k; c++) {
    const b = c * d;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let j = 0;
    for (; j + 3 < d; j += 4) {
      s0 += x[xo + j] * basisT[b + j];
      s1 += x[xo + j + 1] * basisT[b + j + 1];
      s2 += x[xo + j + 2] * basisT[b + j + 2];
      s3 += x[xo + j + 3] * basisT[b + j + 3];
    }
    for (; j < d; j++) s0 += x[xo + j] * basisT[b + j];
    out[o + c] = (s0 + s1 + s2 + s3) * inv;
  }
}

/**
 * Writes projected rows `y` [count * k] (of `rows`, or of rows 0 .. count) divided by the rows'
 * norms (floored at 1e-8) into `proj`, with their norms. Plain arrays only, so that its
 * optimised code outlives the index it was first run on.
 */
function storeProjections(
  y: Float32Array,
  rows: ArrayLike<number> | null,
  count: number,
  norms: Float64Array,
  proj: Float32Array,
  projNorm: Float64Array,
  headNorm: Float64Array,
  k: number,
): void {
  for (let r = 0; r < count; r++) {
    const i = rows ? rows[r] : r;
    const inv = 1 / Math.max(norms[i], COSINE_EPS);
    for (let c = 0; c < k; c++) proj[i * k + c] = y[r * k + c] * inv;
    setNorms(proj, projNorm, headNorm, i, k);
  }
}

/** Row i's squared projected norm and its part on the first stage's directions. */
function setNorms(proj: Float32Array, projNorm: Float64Array, headNorm: Float64Array, i: number, k: number): void {
  const k1 = Math.min(FIRST_STAGE, k);
  let head = 0;
  let rest = 0;
  for (let c = 0; c < k; c++) {
    const y = proj[i * k + c];
    if (c < k1) head += y * y;
    else rest += y * y;
  }
  projNorm[i] = head + rest;
  headNorm[i] = head;
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

/**
 * The first stage of a search through the buckets: the loose rows and the members of the buckets
 * within reach of the query (and of its opposite), `pq` its squared projected norm; rows that
 * can never be in C again (visited, or rewritten when `rewritten` is given) leave their lists as
 * they are met.
 */
function bucketStage(q: FirstStage, b: Buckets, visited: Uint8Array, rewritten: Uint8Array | null, pq: number): void {
  const { k, yq } = q;
  // tests row i unless it is gone; false: it is, and its list drops it
  const visit = (i: number): boolean => {
    if (visited[i] === 1 || (rewritten !== null && rewritten[i] === 1)) return false;
    testHead(q, i);
    return true;
  };
  for (let p = 0; p < b.looseCount; ) {
    if (visit(b.loose[p])) p++;
    else removeLoose(b, p);
  }
  const reach = Math.sqrt(q.limit);
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
