import { describe, expect, it } from 'vitest';
import { lineChartSvg, reliabilityBins, reliabilityDiagramSvg } from '../../src/eval/index.js';

/** The (cx, cy) of every circle of an SVG. */
function circles(svg: string): [number, number][] {
  return [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

describe('lineChartSvg', () => {
  it('places points on a log x axis and a [0, 1] y axis', () => {
    const svg = lineChartSvg({ title: 'T', xLabel: 'f', yLabel: 'v', xScale: 'log', width: 720, height: 440, series: [{ name: 'acc', x: [0.1, 1], y: [0.5, 1] }] });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    // plot area: left 64, top 44, width 720 - 64 - 24 = 632, height 440 - 44 - 56 = 340.
    // x in log10 from -1 to 0, padded by 5 % each side: [-1.05, 0.05]
    const [a, b] = circles(svg);
    expect(a[0]).toBeCloseTo(64 + (0.05 / 1.1) * 632, 1);
    expect(b[0]).toBeCloseTo(64 + (1.05 / 1.1) * 632, 1);
    expect(a[1]).toBeCloseTo(44 + 0.5 * 340, 1);
    expect(b[1]).toBeCloseTo(44, 1);
    expect(svg).toContain('>0.500<');
    expect(svg).toContain('>acc<');
  });

  it('labels the y ticks of a negative range with round numbers, zero included', () => {
    const svg = lineChartSvg({ title: 'T', xLabel: 'x', yLabel: 'y', yRange: [-0.3, 0], pointLabels: false, series: [{ name: 's', x: [1, 2], y: [-0.25, -0.1] }] });
    const labels = [...svg.matchAll(/text-anchor="end" fill="#444">([^<]+)</g)].map((m) => m[1]);
    expect(labels).toEqual(['-0.3', '-0.2', '-0.1', '0']);
  });

  it('puts the legend where it covers no point', () => {
    const legend = (svg: string) => {
      const m = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="#ffffff" fill-opacity/.exec(svg)!;
      return { x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) };
    };
    // points high on the right: the legend goes to the middle right, clear of them
    const high = lineChartSvg({ title: 'T', xLabel: 'f', yLabel: 'v', width: 720, height: 440, series: [{ name: 'acc', x: [1, 2, 3], y: [0.9, 0.9, 0.9] }, { name: 'ECE', x: [1, 2, 3], y: [0.1, 0.1, 0.1] }] });
    const a = legend(high);
    // plot area 64..696 x 44..384; box 36 + 7 * 3 = 57 wide, 10 + 18 * 2 = 46 high, 8 px inside
    expect(a).toEqual({ x: 696 - 8 - 57, y: 44 + 8 + 0.5 * (340 - 16 - 46), w: 57, h: 46 });
    for (const [x, y] of circles(high)) expect(x < a.x || x > a.x + a.w || y < a.y || y > a.y + a.h).toBe(true);
    // one series with no point on the top right: the legend stays there
    expect(legend(lineChartSvg({ title: 'T', xLabel: 'f', yLabel: 'v', width: 720, height: 440, series: [{ name: 'acc', x: [1, 2], y: [0.1, 0.2] }] }))).toEqual({ x: 696 - 8 - 57, y: 52, w: 57, h: 28 });
  });

  it('leaves a gap at NaN, escapes text and rejects bad input', () => {
    const svg = lineChartSvg({ title: 'a < b & c', xLabel: 'x', yLabel: 'y', series: [{ name: 's', x: [1, 2, 3], y: [0.2, NaN, 0.4] }] });
    expect(svg).toContain('a &lt; b &amp; c');
    expect(circles(svg)).toHaveLength(2);
    expect(svg).toMatch(/<path d="M[\d.]+ [\d.]+ M[\d.]+ [\d.]+"/);
    expect(() => lineChartSvg({ title: '', xLabel: '', yLabel: '', series: [{ name: 's', x: [1], y: [1, 2] }] })).toThrow(/as many y as x/);
    expect(() => lineChartSvg({ title: '', xLabel: '', yLabel: '', xScale: 'log', series: [{ name: 's', x: [0], y: [1] }] })).toThrow(/positive finite x/);
    expect(() => lineChartSvg({ title: '', xLabel: '', yLabel: '', series: [] })).toThrow(/at least one point/);
  });
});

describe('reliabilityDiagramSvg', () => {
  it('draws a bar per non-empty bin at its accuracy, with its count', () => {
    const bins = reliabilityBins([0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], 10);
    const svg = reliabilityDiagramSvg(bins, { title: 'f = 0.2', subtitle: 'ECE 0.3' });
    // three non-empty bins: 0.9 (right), 0.6 (wrong), 0.7 (right); two rects each (bar and gap)
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="#0072B2"/g)];
    expect(bars).toHaveLength(3 + 1); // + the legend swatch
    // plot height 480 - 44 - 56 = 380; a bar of accuracy 1 spans it all, accuracy 0 has height 0
    const heights = bars.slice(0, 3).map((m) => Number(m[2]));
    expect(heights.sort((p, q) => p - q)).toEqual([0, 380, 380]);
    expect(svg).toContain('ECE 0.3');
    expect(() => reliabilityDiagramSvg([], { title: '' })).toThrow(/at least one reliability bin/);
  });
});
