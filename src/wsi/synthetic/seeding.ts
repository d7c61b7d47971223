/**
 * Deterministic helpers shared by the synthetic generators: per-slide seeds, hashes,
 * log-uniform draws, the stratified split and the clustered placement of lesion cells.
 * Internal to `src/wsi/synthetic`.
 *
 * @packageDocumentation
 */
import type { SlideSplit } from '../../core/data.js';
import type { Rng } from '../../core/random.js';

/**
 * A seed for slide `index` of the cohort `seed`, decorrelated from neighbouring indices; `salt`
 * keeps the generators' streams apart.
 */
export function slideSeed(seed: number, index: number, salt: number): number {
  let h = (Math.imul(Math.floor(seed) ^ salt, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** Deterministic 32-bit hash of two integers and a seed, as a float in [0, 1). */
export function hash2(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ Math.imul(seed, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** A draw whose logarithm is uniform on [log lo, log hi). */
export function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(rng.uniform(Math.log(lo), Math.log(hi)));
}

/**
 * Train / val / test split of binary-labelled ids, stratified by label: each subset gets its
 * rounded share of each class (at least one slide per non-empty share when the class has 3 or
 * more), the rest goes to train. Each subset is sorted.
 * @param fractions `[train, val, test]`; only val and test are read.
 */
export function stratifiedSplit(ids: readonly string[], labels: readonly number[], fractions: readonly number[], rng: Rng): SlideSplit {
  const split: SlideSplit = { train: [], val: [], test: [] };
  for (const cls of [...new Set(labels)].sort((a, b) => a - b)) {
    const members = rng.shuffle(ids.filter((_, i) => labels[i] === cls));
    const m = members.length;
    let nVal = Math.round(fractions[1] * m);
    let nTest = Math.round(fractions[2] * m);
    if (fractions[1] > 0 && nVal === 0 && m >= 3) nVal = 1;
    if (fractions[2] > 0 && nTest === 0 && m >= 3) nTest = 1;
    if (nVal + nTest > m) nTest = Math.max(0, m - nVal);
    split.val.push(...members.slice(0, nVal));
    split.test.push(...members.slice(nVal, nVal + nTest));
    split.train.push(...members.slice(nVal + nTest));
  }
  for (const s of [split.train, split.val, split.test]) s.sort();
  return split;
}

/** Where and how {@link placeClusters} marks lesion cells. */
export interface ClusterPlacement {
  /** Class of every cell; marked cells get `value`. Modified in place. */
  labels: Uint8Array;
  /** The cells a cluster may take, in ascending order. */
  candidates: ArrayLike<number>;
  /** Position of cell q in the plane. */
  x(q: number): number;
  y(q: number): number;
  /** Patch of cell q, and the marked cells per patch so far (updated in place). */
  patchOf(q: number): number;
  perPatch: Int32Array;
  /** Whether a cell of this class may be marked. */
  eligible(label: number): boolean;
  /** Class written into marked cells. */
  value: number;
  /** Cells to mark in all, clusters, probability of marking each eligible cell, per-patch cap. */
  quota: number;
  clusters: number;
  density: number;
  cap: number;
  /** Amplitude of the random jitter added to each cell's distance to a cluster centre. */
  jitter: number;
}

/**
 * Marks up to `quota` cells in up to `clusters` spatial clusters. Each cluster takes a random
 * candidate as centre and walks the candidates in order of anisotropic distance to it (a random
 * angle and stretch, plus jitter), marking each eligible cell with probability `density` while
 * its patch holds fewer than `cap` marked cells; up to three passes when a pass falls short.
 * @returns the number of cells marked.
 */
export function placeClusters(rng: Rng, p: ClusterPlacement): number {
  const { candidates, labels, perPatch } = p;
  const m = candidates.length;
  const weights = Array.from({ length: p.clusters }, () => rng.uniform(0.3, 1));
  const wsum = weights.reduce((a, b) => a + b, 0);
  let placed = 0;
  for (let cl = 0; cl < p.clusters; cl++) {
    const want = cl === p.clusters - 1 ? p.quota - placed : Math.max(1, Math.round((p.quota * weights[cl]) / wsum));
    if (want <= 0) continue;
    const centre = candidates[rng.int(m)];
    const x0 = p.x(centre);
    const y0 = p.y(centre);
    const ang = rng.uniform(0, Math.PI);
    const stretch = rng.uniform(1, 2.5);
    const ca = Math.cos(ang);
    const sa = Math.sin(ang);
    const dist = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const dx = p.x(candidates[i]) - x0;
      const dy = p.y(candidates[i]) - y0;
      const u = dx * ca + dy * sa;
      const v = (-dx * sa + dy * ca) * stretch;
      dist[i] = Math.sqrt(u * u + v * v) + p.jitter * rng.next();
    }
    const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => dist[a] - dist[b] || a - b);
    let got = 0;
    for (let pass = 0; pass < 3 && got < want; pass++) {
      for (const i of order) {
        if (got >= want) break;
        const q = candidates[i];
        if (!p.eligible(labels[q])) continue;
        const patch = p.patchOf(q);
        if (perPatch[patch] >= p.cap) continue;
        if (rng.next() >= p.density) continue;
        labels[q] = p.value;
        perPatch[patch]++;
        got++;
      }
    }
    placed += got;
  }
  return placed;
}
