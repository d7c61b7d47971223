/**
 * Spaces: the sets actions and observations come from. A space can test membership and draw
 * a seeded sample, under an action mask for {@link Discrete}.
 *
 * @packageDocumentation
 */
import { ShapeError, ValueError } from '../core/errors.js';
import { createRng, type Rng } from '../core/random.js';

/**
 * A set of values of type T.
 * @category MDP
 */
export interface Space<T> {
  /** Whether `x` is an element of the space. */
  contains(x: unknown): x is T;
  /**
   * A random element, from the space's own seeded generator.
   * @param mask for spaces that support it, 1 = allowed.
   */
  sample(mask?: Uint8Array): T;
  /** Re-seeds the space's generator. */
  seed(seed: number): void;
}

/**
 * The integers `{start, ..., start + n - 1}`.
 *
 * @example
 * ```ts
 * const space = new Discrete(3, { seed: 0 });
 * space.sample(new Uint8Array([0, 0, 1])); // 2
 * space.contains(3);                        // false
 * ```
 * @category MDP
 */
export class Discrete implements Space<number> {
  /** Number of elements. */
  readonly n: number;
  /** Smallest element. */
  readonly start: number;
  private rng: Rng;

  /**
   * @param n number of elements (a positive integer).
   * @param opts `start` (default 0) and `seed` (default 0).
   */
  constructor(n: number, opts: { start?: number; seed?: number } = {}) {
    if (!(Number.isInteger(n) && n > 0)) throw new ValueError(`Expected n to be a positive integer, but got ${n}.`);
    const start = opts.start ?? 0;
    if (!Number.isInteger(start)) throw new ValueError(`Expected start to be an integer, but got ${start}.`);
    this.n = n;
    this.start = start;
    this.rng = createRng(opts.seed ?? 0);
  }

  contains(x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= this.start && x < this.start + this.n;
  }

  /**
   * A uniform element, or a uniform element among those with `mask[i - start] = 1`.
   * @param mask [n], 1 = allowed.
   * @throws ShapeError when the mask has the wrong length; ValueError when it allows nothing.
   */
  sample(mask?: Uint8Array): number {
    if (!mask) return this.start + this.rng.int(this.n);
    if (mask.length !== this.n) throw new ShapeError(`Expected a mask of length ${this.n}, but got ${mask.length}.`);
    let allowed = 0;
    for (let i = 0; i < this.n; i++) if (mask[i] === 1) allowed++;
    if (allowed === 0) throw new ValueError('Expected the mask to allow at least one action, but it allows none.');
    let k = this.rng.int(allowed);
    for (let i = 0; i < this.n; i++) {
      if (mask[i] === 1 && k-- === 0) return this.start + i;
    }
    /* c8 ignore next */
    throw new ValueError('unreachable');
  }

  seed(seed: number): void {
    this.rng = createRng(seed);
  }
}
