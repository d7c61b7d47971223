/**
 * Seeded pseudo-random numbers. One {@link Rng} drives every random choice of a run (env
 * resets, action sampling, shuffles, STKIM masks, initialisers), so a seed reproduces a run.
 *
 * @packageDocumentation
 */
import { ValueError } from './errors.js';

/**
 * A seeded generator (sfc32 seeded through splitmix32). Not cryptographic.
 *
 * @example
 * ```ts
 * const rng = createRng(42);
 * rng.next();        // 0.something in [0, 1)
 * rng.int(10);       // integer in [0, 10)
 * rng.permutation(4) // e.g. [2, 0, 3, 1]
 * ```
 * @category Utils
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /** @param seed any finite number; equal seeds give equal streams. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new ValueError(`Expected seed to be a finite number, but got ${seed}.`);
    let s = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    if (!(Number.isInteger(n) && n > 0)) throw new ValueError(`Expected n to be a positive integer, but got ${n}.`);
    return Math.floor(this.next() * n);
  }

  /** A uniform float in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** A standard normal sample (Box-Muller). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return mean + std * s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `arr` in place (Fisher-Yates) and returns it. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** `k` distinct integers from [0, n), in random order. */
  sample(n: number, k: number): number[] {
    if (k > n) throw new ValueError(`Expected k <= n, but got k = ${k}, n = ${n}.`);
    return this.permutation(n).slice(0, k);
  }

  /**
   * Samples an index from unnormalised non-negative weights (zero weights are never drawn).
   * @throws ValueError when every weight is zero.
   */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i];
    if (!(total > 0)) throw new ValueError('Expected at least one positive weight, but all weights are zero.');
    let r = this.next() * total;
    let last = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] > 0) {
        last = i;
        r -= weights[i];
        if (r < 0) return i;
      }
    }
    return last;
  }

  /** A new generator whose seed is drawn from this one (for tfjs ops that take a `seed`). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }

  /** An integer seed for tfjs initialisers and random ops. */
  seedInt(): number {
    return this.nextUint32() & 0x7fffffff;
  }
}

/**
 * Creates a seeded {@link Rng}.
 * @category Utils
 */
export function createRng(seed: number): Rng {
  return new Rng(seed);
}
