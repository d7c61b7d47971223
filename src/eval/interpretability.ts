/**
 * Where a zoom policy looked: the tumour fraction and the classifier attention of the patches
 * it zoomed into against the patches it did not, pooled over slides, with two-sided
 * Mann-Whitney U tests.
 *
 * @packageDocumentation
 */
import { ShapeError, ValueError } from '../core/errors.js';
import { mannWhitneyU } from './statistics.js';

/** One slide's zoom and what is known of its patches. */
export interface ZoomedSlide {
  id?: string;
  /** The patches zoomed into (indices in [0, N)). */
  zoomed: readonly number[];
  /** Tumour fraction of each patch, `[N]` (from annotations or ground truth); omit when unknown. */
  tumourFraction?: ArrayLike<number>;
  /** The classifier's attention over the patches, `[N]`, summing to 1; omit when unknown. */
  attention?: ArrayLike<number>;
}

/** A group of patches. */
export interface PatchGroupSummary {
  /** Patches in the group. */
  n: number;
  mean: number;
  median: number;
}

/** The comparison of one quantity between zoomed and not-zoomed patches. */
export interface ZoomComparison {
  zoomed: PatchGroupSummary;
  notZoomed: PatchGroupSummary;
  /** Mann-Whitney U of the zoomed patches against the others. */
  u: number;
  /** Two-sided p-value. */
  pValue: number;
  /** Slides pooled. */
  slides: number;
}

/** What {@link zoomInterpretability} reports. */
export interface ZoomInterpretability {
  /** Tumour fraction of zoomed vs not-zoomed patches, over the slides with tumour (absent without tumour fractions). */
  tumourFraction?: ZoomComparison & {
    /** Of the patches holding tumour (fraction > 0), the share zoomed into. */
    tumourPatchesZoomed: number;
    /** Of the slides holding tumour, the share with at least one tumour patch zoomed into. */
    slidesWithTumourZoomed: number;
  };
  /**
   * Attention of zoomed vs not-zoomed patches over every slide with attention, as `N a_i`
   * (1 = the uniform share of a slide of N patches), so slides of any N pool together.
   */
  attention?: ZoomComparison;
}

function summary(xs: number[]): PatchGroupSummary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return { n, mean: n ? s.reduce((a, b) => a + b, 0) / n : NaN, median: n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN };
}

function compare(inside: number[], outside: number[], slides: number): ZoomComparison | undefined {
  if (inside.length === 0 || outside.length === 0) return undefined;
  const t = mannWhitneyU(inside, outside);
  return { zoomed: summary(inside), notZoomed: summary(outside), u: t.u, pValue: t.pValue, slides };
}

/**
 * Compares the zoomed patches with the rest, pooled over slides:
 * - tumour fraction, over the slides whose patches hold some tumour (slides without tumour say
 *   nothing about whether a policy finds it), with the share of tumour patches zoomed into and
 *   of tumour slides with one zoomed into;
 * - attention `N a_i`, over every slide with attention.
 * Each comparison is a two-sided Mann-Whitney U test ({@link mannWhitneyU}) of zoomed against
 * not-zoomed patches; patches of one slide are not independent, so read the p-value as a
 * measure of separation rather than an exact error rate.
 *
 * @throws ShapeError when a slide's arrays disagree in length; ValueError on a zoomed index
 *   outside [0, N).
 * @example
 * ```ts
 * const r = zoomInterpretability(ev.slides.map((s) => ({ zoomed: s.actions, attention: s.attention, tumourFraction: truth[s.id] })));
 * r.tumourFraction?.zoomed.mean; r.tumourFraction?.pValue; r.attention?.pValue;
 * ```
 * @category Metrics
 */
export function zoomInterpretability(slides: readonly ZoomedSlide[]): ZoomInterpretability {
  const tIn: number[] = [];
  const tOut: number[] = [];
  const aIn: number[] = [];
  const aOut: number[] = [];
  let tumourSlides = 0;
  let tumourSlidesHit = 0;
  let tumourPatches = 0;
  let tumourPatchesHit = 0;
  let attentionSlides = 0;
  for (const s of slides) {
    const n = s.tumourFraction?.length ?? s.attention?.length;
    if (n === undefined) continue;
    const name = s.id !== undefined ? `slide '${s.id}'` : 'a slide';
    if (s.tumourFraction && s.attention && s.attention.length !== s.tumourFraction.length) {
      throw new ShapeError(`Expected ${name} to have as many attention values as tumour fractions, but got ${s.attention.length} and ${s.tumourFraction.length}.`);
    }
    const zoomed = new Uint8Array(n);
    for (const a of s.zoomed) {
      if (!(Number.isInteger(a) && a >= 0 && a < n)) throw new ValueError(`Expected zoomed patches of ${name} in [0, ${n}), but got ${a}.`);
      zoomed[a] = 1;
    }
    const tf = s.tumourFraction;
    if (tf && Array.prototype.some.call(tf, (v: number) => v > 0)) {
      tumourSlides++;
      let hit = false;
      for (let i = 0; i < n; i++) {
        (zoomed[i] ? tIn : tOut).push(tf[i]);
        if (tf[i] > 0) {
          tumourPatches++;
          if (zoomed[i]) {
            tumourPatchesHit++;
            hit = true;
          }
        }
      }
      if (hit) tumourSlidesHit++;
    }
    if (s.attention) {
      attentionSlides++;
      for (let i = 0; i < n; i++) (zoomed[i] ? aIn : aOut).push(n * s.attention[i]);
    }
  }
  const out: ZoomInterpretability = {};
  const t = compare(tIn, tOut, tumourSlides);
  if (t) out.tumourFraction = { ...t, tumourPatchesZoomed: tumourPatchesHit / tumourPatches, slidesWithTumourZoomed: tumourSlidesHit / tumourSlides };
  const a = compare(aIn, aOut, attentionSlides);
  if (a) out.attention = a;
  return out;
}
