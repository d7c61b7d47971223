/**
 * The per-step part of the event-sourced PPO update, from the networks' per-version outputs to
 * the per-step quantities, and its exact gradient, in time O(R log N + B) instead of O(B N).
 *
 * At decision t of an episode, row i holds version `v_t(i)`; with the actor's logits `l`, the
 * critic's attention logits `c` and projections `s` of every version ([R] each):
 * ```
 * log pi_t = l_{v_t(a_t)} - log Z_t,     Z_t = sum_{i allowed at t} exp(l_{v_t(i)})
 * H_t      = log Z_t - (1/Z_t) sum_{i allowed} exp(l_{v_t(i)}) l_{v_t(i)}
 * P_t      = sum_i softmax_i(c_{v_t(.)}) s_{v_t(i)}            (the critic's pooled projection)
 * ```
 * Between two decisions only the rows a step changed and the rows whose mask flipped differ, so
 * the four sums behind these (Z, sum e l, and the critic's two) are kept in segment trees over
 * the N rows: each change costs O(log N) and every sum is exact to float64 rounding (a parent is
 * recomputed from its children, never by subtracting). The gradient follows from
 * `d log pi_t / d l_v = [v = v_t(a_t)] - p_tv` and `d H_t / d l_v = -p_tv (log p_tv + H_t)` with
 * `p_tv = exp(l_v) / Z_t`: summed over the decisions where version v is held and allowed, it is
 * `exp(l_v) (A1_v + l_v A2_v)` for two sums A1, A2 of per-step weights over an interval of
 * steps, read from prefix sums; the critic's likewise. So the O(B N) gathers, masks and softmaxes
 * over all rows at every step, and their autodiff, are replaced by O(R log N + B) float64
 * arithmetic on plain arrays.
 *
 * Logits are shifted by their maximum over the table before exponentiation; a table whose
 * allowed logits at some step all lie more than about 700 below that maximum (the softmax then
 * underflows in float64) is refused with an error.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ShapeError } from '../core/errors.js';
import type { VersionTable } from './rollout_buffer.js';

/** Per-step values of {@link stepStatistics}, each over the B samples of the table in order. */
export interface StepStatisticsValues {
  /** log pi(a_t | S_t) under the masked distribution. */
  logProbs: Float64Array;
  /** Entropy of the masked distribution. */
  entropies: Float64Array;
  /** P_t, the critic's attention pooling of the per-row projections (V_t without the bias). */
  pooled: Float64Array;
  /** log Z_t (shifted by the actor's maximum). @internal */
  logZ: Float64Array;
  /** Z_t (shifted). @internal */
  z: Float64Array;
  /** Zc_t, the critic's normaliser (shifted). @internal */
  zc: Float64Array;
}

/** Gradients of {@link stepStatistics} with respect to the per-version outputs, [R] each. */
export interface StepStatisticsGrads {
  dl: Float32Array;
  dc: Float32Array;
  ds: Float32Array;
}

/** Sums over N leaves kept in a flat binary tree (leaves at `size + i`, root at 1). */
class SumTree {
  readonly size: number;
  readonly nodes: Float64Array;

  constructor(n: number) {
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.nodes = new Float64Array(2 * size);
  }

  /** Sets every parent from the leaves (after writing the leaves directly). */
  build(): void {
    const t = this.nodes;
    t.fill(0, 1, this.size);
    for (let j = this.size - 1; j >= 1; j--) t[j] = t[2 * j] + t[2 * j + 1];
  }

  set(i: number, value: number): void {
    const t = this.nodes;
    let j = this.size + i;
    t[j] = value;
    for (j >>= 1; j >= 1; j >>= 1) t[j] = t[2 * j] + t[2 * j + 1];
  }

  get total(): number {
    return this.nodes[1];
  }
}

function checkOutputs(table: VersionTable, arrays: ArrayLike<number>[]): void {
  for (const a of arrays) {
    if (a.length !== table.numVersions) {
      throw new ShapeError(`Expected one value per row version (${table.numVersions}), but got ${a.length}.`);
    }
  }
}

function maxOf(a: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  if (!Number.isFinite(m)) throw new DataError(`Expected finite network outputs, but the largest is ${m}. Check the features and the policy's weights for NaN or infinity.`);
  return m;
}

/** exp(x - shift) of every element, in float64. */
function shiftedExp(x: ArrayLike<number>, shift: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.exp(x[i] - shift);
  return out;
}

/**
 * The per-step quantities of every sample of a version table from the per-version outputs of
 * the networks (see the module documentation for the formulas and the method).
 *
 * @param l the actor's logit of every version, [R].
 * @param c the critic's attention logit of every version, [R].
 * @param s the critic's projection `x . w_value` of every version, [R].
 * @returns float64 arrays over the B samples.
 * @throws DataError for non-finite outputs or a softmax that underflows.
 * @category PPO
 */
export function stepStatistics(table: VersionTable, l: ArrayLike<number>, c: ArrayLike<number>, s: ArrayLike<number>): StepStatisticsValues {
  checkOutputs(table, [l, c, s]);
  const B = table.numSamples;
  const out: StepStatisticsValues = {
    logProbs: new Float64Array(B),
    entropies: new Float64Array(B),
    pooled: new Float64Array(B),
    logZ: new Float64Array(B),
    z: new Float64Array(B),
    zc: new Float64Array(B),
  };
  const m = maxOf(l);
  const mc = maxOf(c);
  maxOf(s);
  const e = shiftedExp(l, m);
  const ec = shiftedExp(c, mc);
  for (let ep = 0; ep < table.episodes.length; ep++) {
    const episode = table.episodes[ep];
    const N = episode.numPatches;
    const T = episode.length;
    const off = table.sampleOffsets[ep];
    const { initial, changes } = table.versionLayout(ep);
    const ver = new Int32Array(N);
    const mask = episode.initialMask.slice();
    // Z, sum e (l - m), Zc, sum ec s
    const z = new SumTree(N);
    const zl = new SumTree(N);
    const zc = new SumTree(N);
    const zs = new SumTree(N);
    for (let i = 0; i < N; i++) {
      const v = (ver[i] = initial + i);
      if (mask[i]) {
        z.nodes[z.size + i] = e[v];
        zl.nodes[zl.size + i] = e[v] * (l[v] - m);
      }
      zc.nodes[zc.size + i] = ec[v];
      zs.nodes[zs.size + i] = ec[v] * s[v];
    }
    z.build();
    zl.build();
    zc.build();
    zs.build();
    const setActor = (i: number) => {
      const v = ver[i];
      z.set(i, mask[i] ? e[v] : 0);
      zl.set(i, mask[i] ? e[v] * (l[v] - m) : 0);
    };
    for (let t = 0; t < T; t++) {
      for (const r of episode.maskFlips[t]) {
        mask[r] = mask[r] ? 0 : 1;
        setActor(r);
      }
      const Z = z.total;
      const Zc = zc.total;
      if (!(Z > 1e-300) || !(Zc > 1e-300)) {
        throw new DataError(
          `The softmax over the allowed rows underflows at step ${t} of episode ${ep}: every logit lies far below the largest of the update. ` +
            'The policy is degenerate; check its weights and the features for huge values.',
        );
      }
      const logZ = Math.log(Z);
      const a = episode.actions[t];
      out.logProbs[off + t] = l[ver[a]] - m - logZ;
      out.entropies[off + t] = logZ - zl.total / Z;
      out.pooled[off + t] = zs.total / Zc;
      out.logZ[off + t] = logZ;
      out.z[off + t] = Z;
      out.zc[off + t] = Zc;
      if (t === T - 1) break;
      // the step's changes take effect for the next decision
      const rows = episode.changedRows[t];
      for (let k = 0; k < rows.length; k++) {
        const r = rows[k];
        const v = (ver[r] = changes[t] + k);
        setActor(r);
        zc.set(r, ec[v]);
        zs.set(r, ec[v] * s[v]);
      }
    }
  }
  return out;
}

/**
 * The gradient of `sum_t (gLogProbs_t log pi_t + gEntropies_t H_t + gPooled_t P_t)` with
 * respect to the per-version outputs l, c, s: the vector-Jacobian product of
 * {@link stepStatistics} (see the module documentation).
 *
 * @param values what {@link stepStatistics} returned for the same table and outputs.
 * @returns float32 arrays [R].
 * @category PPO
 */
export function stepStatisticsGrad(
  table: VersionTable,
  l: ArrayLike<number>,
  c: ArrayLike<number>,
  s: ArrayLike<number>,
  values: StepStatisticsValues,
  gLogProbs: ArrayLike<number>,
  gEntropies: ArrayLike<number>,
  gPooled: ArrayLike<number>,
): StepStatisticsGrads {
  checkOutputs(table, [l, c, s]);
  const R = table.numVersions;
  const m = maxOf(l);
  const mc = maxOf(c);
  // Per-version sums over the decisions where the version is held (and allowed, for the actor)
  const a1 = new Float64Array(R);
  const a2 = new Float64Array(R);
  const c1 = new Float64Array(R);
  const c2 = new Float64Array(R);
  const direct = new Float64Array(R); // the [v = v_t(a_t)] terms of d log pi
  for (let ep = 0; ep < table.episodes.length; ep++) {
    const episode = table.episodes[ep];
    const N = episode.numPatches;
    const T = episode.length;
    const off = table.sampleOffsets[ep];
    const { initial, changes } = table.versionLayout(ep);
    // prefix sums over the episode's decisions of the per-step weights
    const w1 = new Float64Array(T + 1);
    const w2 = new Float64Array(T + 1);
    const u1 = new Float64Array(T + 1);
    const u2 = new Float64Array(T + 1);
    for (let t = 0; t < T; t++) {
      const i = off + t;
      const gp = gLogProbs[i];
      const gh = gEntropies[i];
      const gv = gPooled[i];
      w1[t + 1] = w1[t] + (gp + gh * (values.entropies[i] - values.logZ[i])) / values.z[i];
      w2[t + 1] = w2[t] + gh / values.z[i];
      u1[t + 1] = u1[t] + gv / values.zc[i];
      u2[t + 1] = u2[t] + (gv * values.pooled[i]) / values.zc[i];
    }
    const ver = new Int32Array(N);
    const mask = episode.initialMask.slice();
    const sinceActor = new Int32Array(N); // start of the current allowed stretch, -1 when masked
    const sinceCritic = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      ver[i] = initial + i;
      sinceActor[i] = mask[i] ? 0 : -1;
    }
    const closeActor = (i: number, end: number) => {
      const start = sinceActor[i];
      if (start < 0) return;
      const v = ver[i];
      a1[v] += w1[end] - w1[start];
      a2[v] += w2[end] - w2[start];
    };
    const closeCritic = (i: number, end: number) => {
      const v = ver[i];
      c1[v] += u1[end] - u1[sinceCritic[i]];
      c2[v] += u2[end] - u2[sinceCritic[i]];
    };
    for (let t = 0; t < T; t++) {
      for (const r of episode.maskFlips[t]) {
        if (mask[r]) {
          closeActor(r, t);
          sinceActor[r] = -1;
        } else {
          sinceActor[r] = t;
        }
        mask[r] = mask[r] ? 0 : 1;
      }
      direct[ver[episode.actions[t]]] += gLogProbs[off + t];
      if (t === T - 1) break;
      const rows = episode.changedRows[t];
      for (let k = 0; k < rows.length; k++) {
        const r = rows[k];
        closeActor(r, t + 1);
        if (mask[r]) sinceActor[r] = t + 1;
        closeCritic(r, t + 1);
        sinceCritic[r] = t + 1;
        ver[r] = changes[t] + k;
      }
    }
    for (let i = 0; i < N; i++) {
      closeActor(i, T);
      closeCritic(i, T);
    }
  }
  const dl = new Float32Array(R);
  const dc = new Float32Array(R);
  const ds = new Float32Array(R);
  for (let v = 0; v < R; v++) {
    const ev = Math.exp(l[v] - m);
    dl[v] = direct[v] - ev * (a1[v] + (l[v] - m) * a2[v]);
    const ecv = Math.exp(c[v] - mc);
    ds[v] = ecv * c1[v];
    dc[v] = ecv * (s[v] * c1[v] - c2[v]);
  }
  return { dl, dc, ds };
}

/** What {@link stepQuantities} returns: tensors [B] owned by the caller. */
export interface StepQuantities {
  /** log pi(a_t | S_t), masked distribution. */
  logProbs: tf.Tensor1D;
  /** Entropy of the masked distribution. */
  entropies: tf.Tensor1D;
  /** P_t = sum_i softmax_i(c) s_i, the critic's value without its bias. */
  pooled: tf.Tensor1D;
}

/**
 * {@link stepStatistics} as a differentiable tensor op: from the per-version outputs `l`, `c`,
 * `s` ([R] tensors) to the per-step log-probabilities, entropies and pooled projections ([B]),
 * with {@link stepStatisticsGrad} as its gradient. Losses over the B samples are then ordinary
 * tensor expressions, and autodiff brings their gradient back to l, c, s.
 *
 * @returns tensors owned by the caller.
 * @example
 * ```ts
 * const { logProbs, entropies, pooled } = stepQuantities(table, l, c, s);
 * const values = tf.add(pooled, valueBias); // V(S_t)
 * ```
 * @category PPO
 */
export function stepQuantities(table: VersionTable, l: tf.Tensor1D, c: tf.Tensor1D, s: tf.Tensor1D): StepQuantities {
  const B = table.numSamples;
  const op = tf.customGrad(((lt: tf.Tensor, ct: tf.Tensor, st: tf.Tensor) => {
    const lv = lt.dataSync();
    const cv = ct.dataSync();
    const sv = st.dataSync();
    const values = stepStatistics(table, lv, cv, sv);
    const packed = new Float32Array(3 * B);
    packed.set(values.logProbs, 0);
    packed.set(values.entropies, B);
    packed.set(values.pooled, 2 * B);
    return {
      value: tf.tensor1d(packed),
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync();
        const grads = stepStatisticsGrad(table, lv, cv, sv, values, g.subarray(0, B), g.subarray(B, 2 * B), g.subarray(2 * B, 3 * B));
        return [tf.tensor1d(grads.dl), tf.tensor1d(grads.dc), tf.tensor1d(grads.ds)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (l: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => tf.Tensor1D;
  return tf.tidy(() => {
    const packed = op(l, c, s);
    const [logProbs, entropies, pooled] = tf.split(packed, 3) as tf.Tensor1D[];
    return { logProbs, entropies, pooled };
  });
}
