/**
 * Small deterministic helpers shared by the synthetic generators: per-slide seeds, hashes,
 * log-uniform draws and the stratified split. Internal to `src/wsi/synthetic`.
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
  for (const cls of [0, 1]) {
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
