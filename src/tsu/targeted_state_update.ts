/**
 * Targeted state update (TSU), SASHA's rule for spreading what one zoom reveals to the patches
 * that look like the zoomed one:
 *
 * ```
 * C       = { i : |cos(S_t(i), S_t(a))| >= tau } \ {a} \ visited  (\ rewritten, with rewriteOnce)
 * S_t+1(i) = f_S([V(a), S_t(a), S_t(i)])   for i in C
 * S_t+1(a) = V(a);  every other row (visited rows included) keeps its value
 * ```
 *
 * The state lives in typed arrays ({@link TsuState}): the cosine and the row writes are cheap in
 * JavaScript, and tfjs is called only for f_S on the |C| rewritten rows, so a step costs
 * O(N d) + O(|C| d h). See `docs/implementation-details.md` for the two details kept from the
 * reference code on purpose (the input order `[V(a), S(a), S(i)]` and the absolute cosine).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { COSINE_EPS } from '../core/ops.js';
import { DataError, ShapeError, ValueError, fmtShape, quoteValue } from '../core/errors.js';
import { checkNumber, resolveConfig } from '../core/config.js';
import { DEFAULT_TSU_CONFIG } from './defaults.js';
import type { StateUpdateMode, StateUpdateNet, StateUpdateResult, TsuConfig, TsuState } from './types.js';
import type { CosineIndex } from './cosine_index.js';

/**
 * Resolves a partial {@link TsuConfig} against {@link DEFAULT_TSU_CONFIG}.
 * @throws ValueError when `tau` is outside (0, 1] or `rewriteOnce` is not a boolean.
 * @category TSU
 */
export function resolveTsuConfig(partial?: Partial<TsuConfig> | null): Readonly<TsuConfig> {
  return resolveConfig('TsuConfig', DEFAULT_TSU_CONFIG, partial, (c) => {
    checkTau('TsuConfig', c.tau);
    if (typeof c.rewriteOnce !== 'boolean') {
      throw new ValueError(`Expected TsuConfig.rewriteOnce to be a boolean, but got ${quoteValue(c.rewriteOnce)}.`);
    }
  });
}

/** Throws a {@link ValueError} unless `tau` is in (0, 1]. */
export function checkTau(where: string, tau: unknown): void {
  checkNumber(where, { tau }, 'tau', { min: 0, minExclusive: true, max: 1 });
}

/**
 * Creates the state S_0 = Z of one slide: a copy of `z`, with every row unvisited and
 * never rewritten, and the row norms cached.
 *
 * @param z Z, the low-resolution features: a tensor [N, d] (read, not disposed) or a
 *   row-major Float32Array [N * d] (copied) together with `dim`.
 * @param dim d, required when `z` is a Float32Array.
 * @returns a new {@link TsuState}; it holds no tensors.
 * @throws ShapeError when `z` is not [N, d] with N > 0; DataError when it holds NaN or infinity.
 * @example
 * ```ts
 * const s0 = createTsuState(tf.tensor2d([[1, 0], [0, 1]]));
 * s0.numRows; // 2
 * ```
 * @category TSU
 */
export function createTsuState(z: tf.Tensor2D | Float32Array, dim?: number): TsuState {
  let values: Float32Array;
  let d: number;
  if (z instanceof tf.Tensor) {
    if (z.rank !== 2 || z.shape[0] === 0) {
      throw new ShapeError(`Expected Z to be a tensor [N, d] with N > 0, but got ${fmtShape(z.shape)}.`);
    }
    d = z.shape[1];
    values = new Float32Array(z.dataSync());
  } else {
    if (!(z instanceof Float32Array)) throw new ValueError('Expected Z to be a tf.Tensor2D or a Float32Array.');
    if (!(Number.isInteger(dim) && (dim as number) > 0)) {
      throw new ValueError(`Expected dim to be a positive integer when Z is a Float32Array, but got ${String(dim)}.`);
    }
    d = dim as number;
    if (z.length === 0 || z.length % d !== 0) {
      throw new ShapeError(`Expected Z to hold N * d values with d = ${d} and N > 0, but got ${z.length} values.`);
    }
    values = z.slice();
  }
  const bad = firstNonFinite(values);
  if (bad >= 0) {
    throw new DataError(`Expected Z to be finite, but row ${Math.floor(bad / d)} holds ${values[bad]}. Re-extract the features of this slide.`);
  }
  const n = values.length / d;
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) norms[i] = rowNorm(values, i * d, d);
  return { numRows: n, dim: d, values, norms, visited: new Uint8Array(n), rewritten: new Uint8Array(n) };
}

/**
 * A deep copy of a {@link TsuState}.
 * @category TSU
 */
export function cloneTsuState(state: TsuState): TsuState {
  return {
    numRows: state.numRows,
    dim: state.dim,
    values: state.values.slice(),
    norms: state.norms.slice(),
    visited: state.visited.slice(),
    rewritten: state.rewritten.slice(),
  };
}

/**
 * The state values as a tensor [N, d].
 * @returns a new tensor owned by the caller.
 * @category TSU
 */
export function tsuStateToTensor(state: TsuState): tf.Tensor2D {
  return tf.tensor2d(state.values.slice(), [state.numRows, state.dim]);
}

/**
 * The similar set of row `action` under the TSU rule: every row i with
 * `|cos(S(i), S(a))| >= tau`, where `cos(x, y) = x.y / (max(||x||, 1e-8) max(||y||, 1e-8))`,
 * leaving out `a`, the visited rows and (with `rewriteOnce`) the rows already rewritten.
 * Cost O(N d) (one dot product per candidate row; norms come from the state's cache).
 *
 * @returns the row indices, ascending (a new array).
 * @example
 * ```ts
 * const s = createTsuState(new Float32Array([1, 0, 0.99, 0.1, 0, 1, -1, 0]), 2);
 * similarSet(s, 0, { tau: 0.95, rewriteOnce: true }); // Int32Array [1, 3] (|cos| = 0.995 and 1)
 * ```
 * @category TSU
 */
export function similarSet(state: TsuState, action: number, config?: Partial<TsuConfig>): Int32Array {
  const c = resolveTsuConfig(config);
  checkAction(state, action);
  return similarRows(state, action, c.tau, c.rewriteOnce);
}

/**
 * Computes what one step of the state update changes, without changing `state`:
 * - `'tsu'` (targeted state update): C as in {@link similarSet}, rows of C rewritten by f_S;
 * - `'global'` (the RLogist-style ablation): every row not yet visited, except a, is
 *   rewritten by f_S (no cosine test; `tau` and `rewriteOnce` are ignored);
 * - `'none'`: no row but a changes.
 * In every mode the chosen row becomes V(a). f_S sees `[V(a), S_t(a), S_t(i)]` with the
 * pre-update S_t(a).
 *
 * @param state S_t (read only).
 * @param action a, an unvisited row in [0, N).
 * @param v V(a), [d].
 * @param fS f_S (input 3d, output d); may be null only when no row is rewritten.
 * @param config `update` mode plus {@link TsuConfig}.
 * @param index optional {@link CosineIndex} in step with `state`: the same similar set, found faster.
 * @returns the row changes, new arrays owned by the caller. Tensors made for f_S are freed.
 * @throws ValueError for a visited or out-of-range action, a bad `tau`, or a missing f_S;
 *   ShapeError for a V or an f_S of the wrong width; DataError for a non-finite V.
 * @category TSU
 */
export function computeStateUpdate(
  state: TsuState,
  action: number,
  v: ArrayLike<number>,
  fS: StateUpdateNet | null,
  config: Partial<TsuConfig> & { update?: StateUpdateMode } = {},
  index?: CosineIndex,
): StateUpdateResult {
  const { update = 'tsu', ...rest } = config;
  if (update !== 'tsu' && update !== 'global' && update !== 'none') {
    throw new ValueError(`Expected update to be one of 'tsu', 'global', 'none', but got ${JSON.stringify(update)}.`);
  }
  const c = resolveTsuConfig(rest);
  checkAction(state, action);
  const d = state.dim;
  const va = checkRowVector(v, d, 'V(a)');
  let set: Int32Array;
  if (update === 'tsu') set = index ? index.similar(state, action, c.tau, c.rewriteOnce) : similarRows(state, action, c.tau, c.rewriteOnce);
  else if (update === 'global') set = unvisitedRows(state, action);
  else set = new Int32Array(0);

  const rows = new Int32Array(set.length + 1);
  rows[0] = action;
  rows.set(set, 1);
  const values = new Float32Array(rows.length * d);
  values.set(va, 0);
  if (set.length > 0) {
    if (fS == null) {
      throw new ValueError(`The '${update}' update rewrites ${set.length} rows and needs f_S, but got none. Pass a StateMlp, or use update 'none'.`);
    }
    const sa = state.values.subarray(action * d, action * d + d);
    values.set(runStateNet(fS, va, sa, state.values, set, d), d);
  }
  return { rows, values, similarSet: set };
}

/**
 * Writes a computed update into `state` in place: the new row values (and their norms), the
 * chosen row marked visited, the rows of C marked rewritten.
 *
 * @param state the state the update was computed from (mutated).
 * @param action the chosen row.
 * @param update what {@link computeStateUpdate} returned for this state and action.
 * @category TSU
 */
export function applyStateUpdate(state: TsuState, action: number, update: StateUpdateResult): void {
  const d = state.dim;
  const { rows, values, similarSet: set } = update;
  if (values.length !== rows.length * d) {
    throw new ShapeError(`Expected ${rows.length} x ${d} values, but got ${values.length}.`);
  }
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r];
    state.values.set(values.subarray(r * d, r * d + d), i * d);
    state.norms[i] = rowNorm(state.values, i * d, d);
  }
  state.visited[action] = 1;
  for (let k = 0; k < set.length; k++) state.rewritten[set[k]] = 1;
}

/** What {@link targetedStateUpdate} and {@link globalStateUpdate} return. @category TSU */
export interface StateUpdateStep extends StateUpdateResult {
  /** S_t+1: a new state; the input state is unchanged. */
  state: TsuState;
}

/**
 * One targeted state update step, as a pure function: S_t+1 from S_t, the chosen row a,
 * its high-resolution feature V(a) and f_S.
 *
 * `C = {i : |cos(S_t(i), S_t(a))| >= tau} \ {a} \ visited` (and `\ rewritten` with
 * `rewriteOnce`); `S_t+1(C) = f_S([V(a), S_t(a), S_t(C)])`; `S_t+1(a) = V(a)`; other rows keep
 * their values, so rows chosen earlier keep their V.
 *
 * **Shapes:** `state.values` [N, d]; `v` [d]; f_S maps [|C|, 3d] to [|C|, d].
 *
 * @param state S_t; not modified.
 * @param action a in [0, N), not visited yet.
 * @param v V(a), [d].
 * @param fS f_S.
 * @param config `tau` (default 0.95) and `rewriteOnce` (default true).
 * @returns the new state and the row changes (new arrays owned by the caller; no tensor stays alive).
 * @throws ValueError (bad action or tau), ShapeError (wrong width of v or f_S), DataError (non-finite v).
 * @example
 * ```ts
 * const s0 = createTsuState(z);                         // z: tf.Tensor2D [N, 384]
 * const fS = new StateMlp({ dim: 384 });
 * const { state: s1, similarSet } = targetedStateUpdate(s0, 7, v7, fS, { tau: 0.95 });
 * ```
 * @see docs/reference-code.md §4.3 and §5.3
 * @category TSU
 */
export function targetedStateUpdate(
  state: TsuState,
  action: number,
  v: ArrayLike<number>,
  fS: StateUpdateNet,
  config?: Partial<TsuConfig>,
): StateUpdateStep {
  const update = computeStateUpdate(state, action, v, fS, { ...config, update: 'tsu' });
  const next = cloneTsuState(state);
  applyStateUpdate(next, action, update);
  return { state: next, ...update };
}

/**
 * Replays row changes on an initial state: for each change in order, `S[rows] <- values`.
 * Used to rebuild S_t from S_0 and the `changedRows` / `changedValues` of each env step.
 *
 * @param initial S_0, row-major [N * d] (not modified).
 * @param dim d.
 * @param changes the changes in step order.
 * @returns S_t, a new array.
 * @example
 * ```ts
 * rowChangesToState(new Float32Array([0, 0, 0, 0]), 2, [{ rows: [1], values: [5, 6] }]); // [0, 0, 5, 6]
 * ```
 * @category TSU
 */
export function rowChangesToState(
  initial: Float32Array,
  dim: number,
  changes: Iterable<{ rows: ArrayLike<number>; values: ArrayLike<number> }>,
): Float32Array {
  const out = initial.slice();
  const n = out.length / dim;
  for (const { rows, values } of changes) {
    if (values.length !== rows.length * dim) {
      throw new ShapeError(`Expected ${rows.length} x ${dim} values in a row change, but got ${values.length}.`);
    }
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r];
      if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new ValueError(`Expected a row in [0, ${n}), but got ${i}.`);
      for (let j = 0; j < dim; j++) out[i * dim + j] = values[r * dim + j];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Internals shared with the global update and the environment.

/** Throws unless `action` is an unvisited row of `state`. */
export function checkAction(state: TsuState, action: number): void {
  if (!(Number.isInteger(action) && action >= 0 && action < state.numRows)) {
    throw new ValueError(`Expected the action to be an integer in [0, ${state.numRows}), but got ${action}.`);
  }
  if (state.visited[action]) {
    throw new ValueError(
      `Expected an action not chosen before, but row ${action} was already visited in this episode. ` +
        'Sample from the action mask (1 = allowed).',
    );
  }
}

/** Checks a vector of width d and returns it as a Float32Array (no copy when it already is one). */
export function checkRowVector(v: ArrayLike<number>, d: number, what: string): Float32Array {
  if (v == null || typeof (v as ArrayLike<number>).length !== 'number') {
    throw new ValueError(`Expected ${what} to be an array of ${d} numbers, but got ${String(v)}.`);
  }
  if (v.length !== d) {
    throw new ShapeError(
      `Expected ${what} to have width d = ${d}, but got ${v.length} values. ` +
        'Use V from the HAFED stage 1 of the model, on features from the same encoder as Z.',
    );
  }
  const out = v instanceof Float32Array ? v : Float32Array.from(v);
  for (let j = 0; j < d; j++) {
    if (!Number.isFinite(out[j])) throw new DataError(`Expected ${what} to be finite, but element ${j} is ${out[j]}.`);
  }
  return out;
}

/**
 * The position of the first non-finite value of `x`, or -1 (a function of its own, so that the
 * pass over a whole slide runs optimised even when its caller runs once).
 */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** Euclidean norm of `x[o .. o + d)`, accumulated in float64. */
export function rowNorm(x: Float32Array, o: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += x[o + j] * x[o + j];
  return Math.sqrt(s);
}

/** The TSU similar set (see {@link similarSet}) without argument checks. */
export function similarRows(state: TsuState, action: number, tau: number, rewriteOnce: boolean): Int32Array {
  const { values, norms, visited, rewritten, numRows: n, dim: d } = state;
  const q = values.slice(action * d, action * d + d);
  const qn = Math.max(norms[action], COSINE_EPS);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === action || visited[i] === 1 || (rewriteOnce && rewritten[i] === 1)) continue;
    const cos = dotRow(values, i * d, q, d) / (Math.max(norms[i], COSINE_EPS) * qn);
    if (Math.abs(cos) >= tau) out.push(i);
  }
  return Int32Array.from(out);
}

/**
 * `<x[o .. o + d), q>` in float64 with eight running sums (the one summation order every
 * similar-set test uses, so that all of them decide borderline rows alike).
 */
export function dotRow(x: Float32Array, o: number, q: Float32Array, d: number): number {
  const d8 = d - (d % 8);
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  let j = 0;
  for (; j < d8; j += 8, o += 8) {
    s0 += x[o] * q[j];
    s1 += x[o + 1] * q[j + 1];
    s2 += x[o + 2] * q[j + 2];
    s3 += x[o + 3] * q[j + 3];
    s4 += x[o + 4] * q[j + 4];
    s5 += x[o + 5] * q[j + 5];
    s6 += x[o + 6] * q[j + 6];
    s7 += x[o + 7] * q[j + 7];
  }
  for (; j < d; j++, o++) s0 += x[o] * q[j];
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/** Every row not visited, except `action`, ascending. */
export function unvisitedRows(state: TsuState, action: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < state.numRows; i++) if (i !== action && state.visited[i] === 0) out.push(i);
  return Int32Array.from(out);
}

/**
 * Runs f_S on `[V(a), S(a), S(i)]` for the rows `rows` of `values` and returns the new rows,
 * row-major [|rows| * d]. Frees every tensor it makes.
 */
export function runStateNet(
  fS: StateUpdateNet,
  va: Float32Array,
  sa: Float32Array,
  values: Float32Array,
  rows: ArrayLike<number>,
  d: number,
): Float32Array {
  if (fS.dim !== d) {
    throw new ShapeError(`Expected f_S of width d = ${d} (input ${3 * d}), but it has dim ${fS.dim}. Train the TSU on features of this width.`);
  }
  const n = rows.length;
  let y: tf.Tensor;
  if (typeof fS.applyShared === 'function') {
    // [V(a), S(a)] is the same for every row: its product runs once
    const shared = new Float32Array(2 * d);
    shared.set(va, 0);
    shared.set(sa, d);
    const own = new Float32Array(n * d);
    for (let r = 0; r < n; r++) own.set(values.subarray(rows[r] * d, rows[r] * d + d), r * d);
    y = tf.tidy(() => fS.applyShared!(tf.tensor2d(shared, [1, 2 * d]), tf.tensor2d(own, [n, d])));
  } else {
    const input = new Float32Array(n * 3 * d);
    for (let r = 0; r < n; r++) {
      const o = r * 3 * d;
      input.set(va, o);
      input.set(sa, o + d);
      input.set(values.subarray(rows[r] * d, rows[r] * d + d), o + 2 * d);
    }
    y = tf.tidy(() => fS.apply(tf.tensor2d(input, [n, 3 * d])));
  }
  try {
    if (y.rank !== 2 || y.shape[0] !== n || y.shape[1] !== d) {
      throw new ShapeError(`Expected f_S to return [${n}, ${d}], but got ${fmtShape(y.shape)}.`);
    }
    return new Float32Array(y.dataSync());
  } finally {
    y.dispose();
  }
}
