import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/index.js';
import { mannWhitneyU, zoomInterpretability } from '../../src/eval/index.js';

describe('zoomInterpretability', () => {
  it('pools zoomed against not-zoomed patches of the tumour slides, and attention over every slide', () => {
    const r = zoomInterpretability([
      // tumour slide: patches 0 and 1 zoomed; tumour in patches 0 and 3
      { id: 'a', zoomed: [0, 1], tumourFraction: [0.5, 0, 0, 0.25], attention: [0.4, 0.3, 0.2, 0.1] },
      // no tumour: counts for attention only
      { id: 'b', zoomed: [1], tumourFraction: [0, 0], attention: [0.5, 0.5] },
    ]);
    const t = r.tumourFraction!;
    expect(t.zoomed).toEqual({ n: 2, mean: 0.25, median: 0.25 });
    expect(t.notZoomed).toEqual({ n: 2, mean: 0.125, median: 0.125 });
    expect(t.slides).toBe(1);
    expect(t.tumourPatchesZoomed).toBe(0.5); // patch 0 of the two tumour patches
    expect(t.slidesWithTumourZoomed).toBe(1);
    const mw = mannWhitneyU([0.5, 0], [0, 0.25]);
    expect(t.u).toBe(mw.u);
    expect(t.pValue).toBe(mw.pValue);
    // attention as N a: slide a (N = 4) zoomed 1.6, 1.2, not 0.8, 0.4; slide b (N = 2) zoomed 1, not 1
    const a = r.attention!;
    expect(a.zoomed.n).toBe(3);
    expect(a.zoomed.mean).toBeCloseTo((1.6 + 1.2 + 1) / 3, 12);
    expect(a.notZoomed.mean).toBeCloseTo((0.8 + 0.4 + 1) / 3, 12);
    expect(a.slides).toBe(2);
  });

  it('omits what it cannot compare and rejects inconsistent slides', () => {
    expect(zoomInterpretability([{ zoomed: [0], tumourFraction: [0, 0] }])).toEqual({});
    expect(() => zoomInterpretability([{ id: 'x', zoomed: [0], tumourFraction: [1, 0], attention: [1] }])).toThrow(ShapeError);
    expect(() => zoomInterpretability([{ id: 'x', zoomed: [2], attention: [0.5, 0.5] }])).toThrow(/slide 'x' in \[0, 2\), but got 2/);
    expect(() => zoomInterpretability([{ zoomed: [-1], attention: [1] }])).toThrow(ValueError);
  });
});
