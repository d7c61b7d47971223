/**
 * Incremental scoring: the pieces that let a step cost O(|changed rows| d h) in the networks
 * instead of O(N d h).
 *
 * - {@link RowScoreCache} keeps the per-row outputs of a row-independent network (the
 *   classifier's stage-2 attention logits, a policy's per-patch logits) and re-scores only the
 *   rows that changed.
 * - {@link IncrementalAttentionPool} keeps the attention-pooled embedding
 *   `sum_i abar_i S_i`, `abar = mean_m softmax_N(L[:, m])`, up to date under row changes in
 *   O(|changed| M d), in float64 with a per-branch shift.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { ShapeError, ValueError, fmtShape } from '../core/errors.js';

/**
 * A row-independent network: row i of the output depends on row i of the input only.
 * **Input shape:** [n, d]. **Output shape:** [n, K]. Returns a tensor owned by the caller.
 * @category MDP
 */
export type RowScorer = (x: tf.Tensor2D) => tf.Tensor2D;

/**
 * The cached outputs [N, K] of a {@link RowScorer} over the rows of a state.
 *
 * @example
 * ```ts
 * const cache = new RowScoreCache((x) => hafed.stage2RowLogits(x), n, d);
 * cache.scoreAll(state);                                 // N rows, once
 * cache.write(rows, cache.score(newValues, rows.length)); // after a step: only the changed rows
 * cache.scores;                                           // Float32Array [N * K]
 * ```
 * @category MDP
 */
export class RowScoreCache {
  /** N. */
  readonly numRows: number;
  /** d. */
  readonly dim: number;
  /** K, known after the first call. */
  width = 0;
  /** The cached scores, row-major [N * K] (empty until {@link RowScoreCache.scoreAll}). */
  scores: Float32Array = new Float32Array(0);
  private readonly scorer: RowScorer;

  constructor(scorer: RowScorer, numRows: number, dim: number) {
    this.scorer = scorer;
    this.numRows = numRows;
    this.dim = dim;
  }

  /**
   * Scores rows without touching the cache.
   * @param values row-major [n * d].
   * @returns the scores [n * K], a new array.
   */
  score(values: Float32Array, n: number): Float32Array {
    const d = this.dim;
    if (values.length !== n * d) throw new ShapeError(`Expected ${n} x ${d} values to score, but got ${values.length}.`);
    if (n === 0) return new Float32Array(0);
    const y = tf.tidy(() => this.scorer(tf.tensor2d(values, [n, d])));
    try {
      if (y.rank !== 2 || y.shape[0] !== n || (this.width > 0 && y.shape[1] !== this.width)) {
        throw new ShapeError(`Expected the row scorer to return [${n}, ${this.width || 'K'}], but got ${fmtShape(y.shape)}.`);
      }
      this.width = y.shape[1];
      return new Float32Array(y.dataSync());
    } finally {
      y.dispose();
    }
  }

  /**
   * Scores every row and fills the cache.
   * @param values the state, row-major [N * d].
   * @param batchSize rows per network call (bounds peak memory).
   */
  scoreAll(values: Float32Array, batchSize = 4096): void {
    const { numRows: n, dim: d } = this;
    if (values.length !== n * d) throw new ShapeError(`Expected ${n} x ${d} values, but got ${values.length}.`);
    let out: Float32Array | null = null;
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const part = this.score(values.subarray(s * d, e * d), e - s);
      out ??= new Float32Array(n * this.width);
      out.set(part, s * this.width);
    }
    this.scores = out!;
  }

  /** Writes the scores of `rows` (as returned by {@link RowScoreCache.score}) into the cache. */
  write(rows: ArrayLike<number>, rowScores: Float32Array): void {
    const k = this.width;
    if (rowScores.length !== rows.length * k) throw new ShapeError(`Expected ${rows.length} x ${k} scores, but got ${rowScores.length}.`);
    for (let r = 0; r < rows.length; r++) this.scores.set(rowScores.subarray(r * k, r * k + k), rows[r] * k);
  }
}

/** A saved state of an {@link IncrementalAttentionPool} (see `snapshot` / `restore`). */
export interface PoolSnapshot {
  shift: Float64Array;
  norm: Float64Array;
  sums: Float64Array;
  mass: Float64Array;
}

/**
 * Keeps `pooled = (1/M) sum_m sum_i softmax_N(L[:, m])_i S_i` up to date while rows of the
 * logits L [N, M] and of the state S [N, d] change.
 *
 * Per branch m it holds a shift c_m, `Z_m = sum_i exp(L_im - c_m)` and
 * `P_m = sum_i exp(L_im - c_m) S_i` in float64. A change of rows R subtracts their old terms
 * and adds their new ones: O(|R| M d). When a new logit exceeds c_m, the sums are rescaled
 * to the new shift (exact, O(d)); when cancellation could cost precision (the absolute mass
 * moved since the last full pass exceeds 1e6 Z_m), the branch is recomputed from the arrays.
 *
 * The pool reads the owner's logits and state arrays (`attach`); the owner writes the new
 * rows first, then calls {@link IncrementalAttentionPool.update} with the old rows.
 * @category MDP
 */
export class IncrementalAttentionPool {
  /** N. */
  readonly numRows: number;
  /** d. */
  readonly dim: number;
  /** M. */
  readonly numBranches: number;
  /** How many branch recomputations `update` triggered (diagnostics). */
  fullRecomputes = 0;
  private logits: Float32Array = new Float32Array(0);
  private values: Float32Array = new Float32Array(0);
  private readonly shift: Float64Array;
  private readonly norm: Float64Array;
  private readonly sums: Float64Array;
  private readonly mass: Float64Array;

  /** Recompute a branch when the mass moved since its last full pass exceeds this multiple of Z_m. */
  static readonly CANCELLATION_LIMIT = 1e6;

  constructor(numRows: number, dim: number, numBranches: number) {
    this.numRows = numRows;
    this.dim = dim;
    this.numBranches = numBranches;
    this.shift = new Float64Array(numBranches);
    this.norm = new Float64Array(numBranches);
    this.sums = new Float64Array(numBranches * dim);
    this.mass = new Float64Array(numBranches);
  }

  /**
   * Points the pool at the owner's arrays and recomputes every branch.
   * @param logits L, row-major [N * M].
   * @param values S, row-major [N * d].
   */
  attach(logits: Float32Array, values: Float32Array): void {
    const { numRows: n, dim: d, numBranches: m } = this;
    if (logits.length !== n * m) throw new ShapeError(`Expected logits of ${n} x ${m} values, but got ${logits.length}.`);
    if (values.length !== n * d) throw new ShapeError(`Expected a state of ${n} x ${d} values, but got ${values.length}.`);
    this.logits = logits;
    this.values = values;
    this.recomputeAll();
  }

  /**
   * Accounts for changed rows. Call after the new logits and values of `rows` are written in
   * the attached arrays.
   * @param rows the changed rows (distinct).
   * @param oldLogits their previous logits, [|rows| * M].
   * @param oldValues their previous values, [|rows| * d].
   */
  update(rows: ArrayLike<number>, oldLogits: Float32Array, oldValues: Float32Array): void {
    const { dim: d, numBranches: m, logits, values, shift, norm, sums, mass } = this;
    const nr = rows.length;
    if (oldLogits.length !== nr * m || oldValues.length !== nr * d) {
      throw new ShapeError(`Expected ${nr} x ${m} old logits and ${nr} x ${d} old values.`);
    }
    for (let b = 0; b < m; b++) {
      // Move the shift up to the largest new logit (an exact rescaling of the sums).
      let top = shift[b];
      for (let r = 0; r < nr; r++) top = Math.max(top, logits[rows[r] * m + b]);
      if (top > shift[b]) {
        const scale = Math.exp(shift[b] - top);
        norm[b] *= scale;
        mass[b] *= scale;
        for (let j = 0; j < d; j++) sums[b * d + j] *= scale;
        shift[b] = top;
      }
      const c = shift[b];
      for (let r = 0; r < nr; r++) {
        const i = rows[r];
        const wOld = Math.exp(oldLogits[r * m + b] - c);
        const wNew = Math.exp(logits[i * m + b] - c);
        norm[b] += wNew - wOld;
        mass[b] += wOld + wNew;
        replaceTerm(sums, b * d, wNew, values, i * d, wOld, oldValues, r * d, d);
      }
      if (!(norm[b] > 0) || mass[b] > IncrementalAttentionPool.CANCELLATION_LIMIT * norm[b]) {
        this.recomputeBranch(b);
        this.fullRecomputes++;
      }
    }
  }

  /**
   * The pooled embedding `(1/M) sum_m P_m / Z_m`.
   * @param out optional destination [d].
   * @returns `out` or a new Float32Array [d].
   */
  pooled(out: Float32Array = new Float32Array(this.dim)): Float32Array {
    pooledOf(this.sums, this.norm, this.dim, this.numBranches, out);
    return out;
  }

  /**
   * The pooled embedding for each of several candidate rows if that row alone held another
   * value: for candidate i with new logits `L'_i` and value `x_i`, every branch replaces the
   * row's term, `pooled'_i = (1/M) sum_m (P_m - e_im S_i + e'_im x_i) / (Z_m - e_im + e'_im)`.
   * O(|rows| M d); the pool is not changed.
   * @param rows the candidate rows.
   * @param newLogits their new logits, [|rows| * M].
   * @param newValues their new values, [|rows| * d].
   * @returns the pooled embeddings, [|rows| * d] (a new array).
   */
  pooledIfReplaced(rows: ArrayLike<number>, newLogits: Float32Array, newValues: Float32Array): Float32Array {
    const { dim: d, numBranches: m, logits, values, shift, norm, sums } = this;
    const nr = rows.length;
    if (newLogits.length !== nr * m || newValues.length !== nr * d) {
      throw new ShapeError(`Expected ${nr} x ${m} new logits and ${nr} x ${d} new values.`);
    }
    const out = new Float32Array(nr * d);
    const acc = new Float64Array(d);
    for (let r = 0; r < nr; r++) {
      const i = rows[r];
      acc.fill(0);
      // the old and new rows' weights summed over the branches: the rows enter every branch alike
      let oldWeight = 0;
      let newWeight = 0;
      for (let b = 0; b < m; b++) {
        // a common shift for the branch's sums and the new term: c' = max(c_m, L'_im)
        const lNew = newLogits[r * m + b];
        const c = Math.max(shift[b], lNew);
        const scale = Math.exp(shift[b] - c);
        const wOld = Math.exp(logits[i * m + b] - c);
        const wNew = Math.exp(lNew - c);
        const z = norm[b] * scale - wOld + wNew;
        const sumWeight = scale / z;
        oldWeight += wOld / z;
        newWeight += wNew / z;
        const off = b * d;
        for (let j = 0; j < d; j++) acc[j] += sums[off + j] * sumWeight;
      }
      const vi = i * d;
      const vr = r * d;
      for (let j = 0; j < d; j++) out[vr + j] = (acc[j] - oldWeight * values[vi + j] + newWeight * newValues[vr + j]) / m;
    }
    return out;
  }

  /**
   * The attention weights `abar_i = (1/M) sum_m exp(L_im - c_m) / Z_m`, [N]: O(N M).
   * @returns a new Float32Array [N].
   */
  attention(): Float32Array {
    const { numRows: n, numBranches: m, logits, shift, norm } = this;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let b = 0; b < m; b++) s += Math.exp(logits[i * m + b] - shift[b]) / norm[b];
      out[i] = s / m;
    }
    return out;
  }

  /** A copy of the running sums (to return to a known state without a full pass). */
  snapshot(): PoolSnapshot {
    return { shift: this.shift.slice(), norm: this.norm.slice(), sums: this.sums.slice(), mass: this.mass.slice() };
  }

  /** Restores a {@link PoolSnapshot}; the attached arrays must hold the rows it was taken on. */
  restore(s: PoolSnapshot): void {
    if (s.sums.length !== this.sums.length) throw new ValueError('This snapshot belongs to a pool of another size.');
    this.shift.set(s.shift);
    this.norm.set(s.norm);
    this.sums.set(s.sums);
    this.mass.set(s.mass);
  }

  /**
   * Every branch from the arrays, the weighted sums as one product `W^T S` ([M, N] x [N, d]) on
   * the tensor backend (the weights and normalisers in float64).
   */
  private recomputeAll(): void {
    const { numRows: n, dim: d, numBranches: m, logits, values } = this;
    const w = new Float32Array(m * n);
    for (let b = 0; b < m; b++) {
      const { shift, norm } = branchWeights(logits, n, m, b, w, b * n);
      this.shift[b] = shift;
      this.norm[b] = norm;
    }
    this.mass.set(this.norm);
    const p = tf.tidy(() => tf.matMul(tf.tensor2d(w, [m, n]), tf.tensor2d(values, [n, d])));
    this.sums.set(p.dataSync());
    p.dispose();
  }

  private recomputeBranch(b: number): void {
    const { numRows: n, dim: d, numBranches: m, logits, values, sums } = this;
    const w = new Float64Array(n);
    const { shift, norm } = branchWeights(logits, n, m, b, w, 0);
    const o = b * d;
    sums.fill(0, o, o + d);
    for (let i = 0; i < n; i++) {
      const oi = i * d;
      for (let j = 0; j < d; j++) sums[o + j] += w[i] * values[oi + j];
    }
    this.shift[b] = shift;
    this.norm[b] = norm;
    this.mass[b] = norm;
  }
}

/**
 * Branch b of logits L [n * m]: the weights `w[o + i] = exp(L_ib - c)` with the shift
 * `c = max_i L_ib`, and their sum `Z` (a plain function of arrays, so that its optimised code
 * serves every pool).
 * @returns `{ shift: c, norm: Z }`.
 * @throws ValueError when the branch's largest logit is not finite.
 */
function branchWeights(logits: Float32Array, n: number, m: number, b: number, w: Float32Array | Float64Array, o: number): { shift: number; norm: number } {
  let c = -Infinity;
  for (let i = 0; i < n; i++) c = Math.max(c, logits[i * m + b]);
  if (!Number.isFinite(c)) throw new ValueError(`Expected finite attention logits, but branch ${b} has max ${c}.`);
  let z = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(logits[i * m + b] - c);
    w[o + i] = e;
    z += e;
  }
  return { shift: c, norm: z };
}

/**
 * One row's term in a branch's weighted sum: `sums[o + j] += wNew x[xo + j] - wOld y[yo + j]`
 * (the pool's per-step loops are plain functions of arrays, so that their optimised code serves
 * every pool).
 */
function replaceTerm(sums: Float64Array, o: number, wNew: number, x: Float32Array, xo: number, wOld: number, y: Float32Array, yo: number, d: number): void {
  for (let j = 0; j < d; j++) sums[o + j] += wNew * x[xo + j] - wOld * y[yo + j];
}

/** `out[j] = (1/M) sum_b sums[b d + j] / norm[b]`. */
function pooledOf(sums: Float64Array, norm: Float64Array, d: number, m: number, out: Float32Array): void {
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let b = 0; b < m; b++) s += sums[b * d + j] / norm[b];
    out[j] = s / m;
  }
}
