/**
 * The masked categorical distribution of a policy's per-row logits, kept in a segment tree so
 * that a step of an episode costs O(log N) per changed row instead of O(N): the argmax (first
 * best allowed row), the log-normaliser over the allowed rows and sampling by the cumulative
 * weights in row order, the same choices as {@link selectFromLogits} makes by scanning.
 *
 * Sums are float64 of `exp(l_i - shift)` with one shift for the tree (rebuilt when a new logit
 * exceeds it or the allowed mass becomes tiny), and every parent is recomputed from its two
 * children, so they carry no cancellation error.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';

/** Headroom of the shift: logits up to this much above it are accepted without a rebuild. */
const HEADROOM = 30;

/** @internal */
export class LogitTree {
  readonly numRows: number;
  private readonly size: number;
  private readonly logits: Float64Array;
  private readonly allowed: Uint8Array;
  private readonly best: Int32Array; // per node: the first allowed row with the largest logit, -1 if none
  private readonly sums: Float64Array; // per node: sum of exp(l - shift) over allowed rows
  private shift = 0;

  constructor(logits: ArrayLike<number>, mask: ArrayLike<number>) {
    const n = logits.length;
    this.numRows = n;
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.logits = Float64Array.from(logits);
    this.allowed = new Uint8Array(n);
    for (let i = 0; i < n; i++) this.allowed[i] = mask[i] ? 1 : 0;
    this.best = new Int32Array(2 * size).fill(-1);
    this.sums = new Float64Array(2 * size);
    this.rebuild();
  }

  /** The mask the tree holds (1 = allowed). */
  isAllowed(i: number): boolean {
    return this.allowed[i] === 1;
  }

  /** Sets row i's logit. */
  setLogit(i: number, value: number): void {
    if (!Number.isFinite(value)) throw new ValueError(`Expected finite scores, but row ${i} scored ${value}.`);
    this.logits[i] = value;
    if (this.allowed[i] && value > this.shift + HEADROOM) this.rebuild();
    else this.update(i);
  }

  /** Allows or masks row i. */
  setAllowed(i: number, allowed: boolean): void {
    const a = allowed ? 1 : 0;
    if (this.allowed[i] === a) return;
    this.allowed[i] = a;
    if (a && this.logits[i] > this.shift + HEADROOM) this.rebuild();
    else this.update(i);
  }

  /** The first allowed row with the largest logit, or -1 when none is allowed. */
  argmax(): number {
    return this.best[1];
  }

  /** `log sum_{i allowed} exp(l_i)`. */
  logNormalizer(): number {
    if (this.best[1] < 0) return -Infinity;
    if (this.sums[1] < 1e-200) this.rebuild(); // the allowed rows lie far below the shift
    return this.shift + Math.log(this.sums[1]);
  }

  /**
   * The row at cumulative weight `u * total` (u in [0, 1)), scanning the allowed rows in order
   * with weights `exp(l_i)`: the sampling of {@link selectFromLogits} with the same uniform.
   */
  sample(u: number): number {
    if (this.best[1] < 0) return -1;
    if (this.sums[1] < 1e-200) this.rebuild();
    const { sums, size } = this;
    let r = u * sums[1];
    let j = 1;
    while (j < size) {
      const left = sums[2 * j];
      if (left > 0 && (r < left || sums[2 * j + 1] === 0)) {
        j = 2 * j;
      } else {
        r -= left;
        j = 2 * j + 1;
      }
    }
    return j - size;
  }

  private leaf(i: number): void {
    const j = this.size + i;
    if (this.allowed[i]) {
      this.best[j] = i;
      this.sums[j] = Math.exp(this.logits[i] - this.shift);
    } else {
      this.best[j] = -1;
      this.sums[j] = 0;
    }
  }

  private parent(j: number): void {
    const a = this.best[2 * j];
    const b = this.best[2 * j + 1];
    this.best[j] = a < 0 ? b : b < 0 ? a : this.logits[b] > this.logits[a] ? b : a;
    this.sums[j] = this.sums[2 * j] + this.sums[2 * j + 1];
  }

  private update(i: number): void {
    this.leaf(i);
    for (let j = (this.size + i) >> 1; j >= 1; j >>= 1) this.parent(j);
  }

  private rebuild(): void {
    let max = -Infinity;
    for (let i = 0; i < this.numRows; i++) if (this.allowed[i] && this.logits[i] > max) max = this.logits[i];
    this.shift = Number.isFinite(max) ? max : 0;
    for (let i = 0; i < this.numRows; i++) this.leaf(i);
    for (let j = this.size - 1; j >= 1; j--) this.parent(j);
  }
}
