/**
 * Plots of evaluation results as SVG text (browser-safe, no dependencies): a line chart (e.g.
 * accuracy and ECE against the budget) and a reliability diagram. In Node, `writePlot` in
 * `sasha-wsi/node` writes an SVG and its PNG rendering.
 *
 * @packageDocumentation
 */
import { ValueError } from '../core/errors.js';
import type { ReliabilityBin } from './metrics.js';

/** One line of a {@link lineChartSvg}. */
export interface LineSeries {
  /** Legend label. */
  name: string;
  /** x of each point. */
  x: readonly number[];
  /** y of each point (`NaN` leaves a gap). */
  y: readonly number[];
  /** Stroke colour (CSS); default from a colour-blind-safe palette. */
  color?: string;
  /** Dashed line. */
  dashed?: boolean;
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** `'log'` spaces the x axis logarithmically (all x must be > 0). Default `'linear'`. */
  xScale?: 'linear' | 'log';
  /** y range; default [0, 1]. */
  yRange?: [number, number];
  /** Label every point with its y value (3 decimals). Default true. */
  pointLabels?: boolean;
  /** Size in pixels. Default 720 x 440. */
  width?: number;
  height?: number;
}

/** The Okabe-Ito palette (distinguishable with colour-vision deficiencies). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(+v.toPrecision(3));
}

/** Evenly spaced "nice" ticks over [lo, hi]. */
function niceTicks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? raw;
  const out: number[] = [];
  // each tick is an integer multiple of the step (no accumulated error: the tick at zero is 0, not 2.8e-17)
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + 1e-9 * span; i++) out.push(+(i * step).toPrecision(12) || 0);
  return out;
}

interface Frame {
  left: number;
  top: number;
  plotW: number;
  plotH: number;
  svg: string[];
}

function frame(width: number, height: number, title: string, xLabel: string, yLabel: string): Frame {
  const left = 64;
  const top = 44;
  const right = 24;
  const bottom = 56;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" font-size="16" text-anchor="middle" fill="#222">${esc(title)}</text>`,
    `<text x="${left + (width - left - right) / 2}" y="${height - 14}" font-size="13" text-anchor="middle" fill="#222">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${top + (height - top - bottom) / 2}) rotate(-90)" font-size="13" text-anchor="middle" fill="#222">${esc(yLabel)}</text>`,
  ];
  return { left, top, plotW: width - left - right, plotH: height - top - bottom, svg };
}

/**
 * A line chart as SVG text: one polyline with point markers per series, axes with ticks, a
 * legend (in the corner or side, right first, that covers the fewest points), and the y value
 * printed by each point.
 *
 * @returns a complete `<svg>` document.
 * @throws ValueError when a series' x and y differ in length, or a log axis gets x <= 0.
 * @example
 * ```ts
 * const svg = lineChartSvg({
 *   title: 'SASHA on the test slides', xLabel: 'budget f', yLabel: 'value', xScale: 'log',
 *   series: [{ name: 'accuracy', x: [0.1, 0.2, 1], y: [0.86, 0.93, 1] }, { name: 'ECE', x: [0.1, 0.2, 1], y: [0.1, 0.06, 0.02] }],
 * });
 * ```
 * @category Metrics
 */
export function lineChartSvg(options: LineChartOptions): string {
  const { title, xLabel, yLabel, series, xScale = 'linear', yRange = [0, 1], pointLabels = true, width = 720, height = 440 } = options;
  const xs: number[] = [];
  for (const s of series) {
    if (s.x.length !== s.y.length) throw new ValueError(`Expected as many y as x values in series '${s.name}', but got ${s.y.length} and ${s.x.length}.`);
    for (const x of s.x) {
      if (!Number.isFinite(x) || (xScale === 'log' && x <= 0)) throw new ValueError(`Expected ${xScale === 'log' ? 'positive ' : ''}finite x values, but series '${s.name}' has ${x}.`);
      xs.push(x);
    }
  }
  if (xs.length === 0) throw new ValueError('Expected at least one point to plot, but every series is empty.');
  const f = frame(width, height, title, xLabel, yLabel);
  const tx = (x: number) => (xScale === 'log' ? Math.log10(x) : x);
  let x0 = Math.min(...xs.map(tx));
  let x1 = Math.max(...xs.map(tx));
  if (x1 === x0) {
    x0 -= 0.5;
    x1 += 0.5;
  }
  const pad = (x1 - x0) * 0.05;
  x0 -= pad;
  x1 += pad;
  const [y0, y1] = yRange;
  const px = (x: number) => f.left + ((tx(x) - x0) / (x1 - x0)) * f.plotW;
  const py = (y: number) => f.top + (1 - (Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0)) * f.plotH;
  const svg = f.svg;
  // grid and ticks
  for (const t of niceTicks(y0, y1)) {
    svg.push(`<line x1="${f.left}" x2="${f.left + f.plotW}" y1="${py(t)}" y2="${py(t)}" stroke="#e4e4e4"/>`);
    svg.push(`<text x="${f.left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end" fill="#444">${fmt(t)}</text>`);
  }
  const xTicks = xScale === 'log' ? [...new Set(xs)].sort((a, b) => a - b) : niceTicks(x0 + pad, x1 - pad);
  for (const t of xTicks) {
    svg.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${f.top}" y2="${f.top + f.plotH}" stroke="#f0f0f0"/>`);
    svg.push(`<text x="${px(t)}" y="${f.top + f.plotH + 16}" font-size="11" text-anchor="middle" fill="#444">${fmt(t)}</text>`);
  }
  svg.push(`<rect x="${f.left}" y="${f.top}" width="${f.plotW}" height="${f.plotH}" fill="none" stroke="#888"/>`);
  // series
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const order = s.x.map((_, i) => i).sort((a, b) => s.x[a] - s.x[b]);
    let path = '';
    let pen = false;
    for (const i of order) {
      if (!Number.isFinite(s.y[i])) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${px(s.x[i]).toFixed(1)} ${py(s.y[i]).toFixed(1)} `;
      pen = true;
    }
    svg.push(`<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
    for (const i of order) {
      if (!Number.isFinite(s.y[i])) continue;
      svg.push(`<circle cx="${px(s.x[i]).toFixed(1)}" cy="${py(s.y[i]).toFixed(1)}" r="4" fill="${color}"/>`);
      if (pointLabels) {
        svg.push(`<text x="${px(s.x[i]).toFixed(1)}" y="${(py(s.y[i]) - 9).toFixed(1)}" font-size="10" text-anchor="middle" fill="${color}">${s.y[i].toFixed(3)}</text>`);
      }
    }
  });
  // legend: on a white box in the place (right or left; top, middle or bottom) that covers the
  // fewest points and their labels
  const legendW = 36 + 7 * Math.max(...series.map((s) => s.name.length));
  const legendH = 10 + 18 * series.length;
  const points = series.flatMap((s) => s.x.map((x, i) => [px(x), py(s.y[i]), s.y[i]] as const).filter((q) => Number.isFinite(q[2])));
  const places = [0, 0.5, 1].flatMap((v) => [1, 0].map((h) => ({ x: f.left + 8 + h * (f.plotW - 16 - legendW), y: f.top + 8 + v * (f.plotH - 16 - legendH) })));
  const covered = (r: { x: number; y: number }) =>
    points.filter(([x, y]) => x >= r.x - 20 && x <= r.x + legendW + 20 && y >= r.y - 6 && y <= r.y + legendH + (pointLabels ? 22 : 6)).length;
  const box = places.reduce((best, r) => (covered(r) < covered(best) ? r : best));
  svg.push(`<rect x="${box.x}" y="${box.y}" width="${legendW}" height="${legendH}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const ly = box.y + 18 + 18 * k;
    const lx = box.x + 6;
    svg.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`);
    svg.push(`<text x="${lx + 30}" y="${ly}" font-size="12" fill="#222">${esc(s.name)}</text>`);
  });
  svg.push('</svg>');
  return svg.join('\n');
}

/** Options of {@link reliabilityDiagramSvg}. */
export interface ReliabilityDiagramOptions {
  title: string;
  /** Printed under the title, e.g. `'ECE 0.041, 120 slides'`. */
  subtitle?: string;
  /** Size in pixels. Default 480 x 480. */
  width?: number;
  height?: number;
}

/**
 * A reliability diagram as SVG text: per confidence bin, a bar up to the bin's accuracy, the
 * gap to its mean confidence shaded, the diagonal of perfect calibration, and the count of each
 * bin printed above it (empty bins are left blank).
 *
 * @param bins from {@link reliabilityBins}.
 * @returns a complete `<svg>` document.
 * @example
 * ```ts
 * const bins = reliabilityBins(labels, probs, 10);
 * const svg = reliabilityDiagramSvg(bins, { title: 'f = 0.2', subtitle: `ECE ${expectedCalibrationError(labels, probs).toFixed(3)}` });
 * ```
 * @category Metrics
 */
export function reliabilityDiagramSvg(bins: readonly ReliabilityBin[], options: ReliabilityDiagramOptions): string {
  const { title, subtitle, width = 480, height = 480 } = options;
  if (bins.length === 0) throw new ValueError('Expected at least one reliability bin, but got none.');
  const f = frame(width, height, title, 'confidence (top-label probability)', 'accuracy');
  const svg = f.svg;
  if (subtitle) svg.push(`<text x="${width / 2}" y="38" font-size="11" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);
  const px = (x: number) => f.left + x * f.plotW;
  const py = (y: number) => f.top + (1 - y) * f.plotH;
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    svg.push(`<line x1="${f.left}" x2="${f.left + f.plotW}" y1="${py(t)}" y2="${py(t)}" stroke="#e4e4e4"/>`);
    svg.push(`<text x="${f.left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end" fill="#444">${fmt(t)}</text>`);
    svg.push(`<text x="${px(t)}" y="${f.top + f.plotH + 16}" font-size="11" text-anchor="middle" fill="#444">${fmt(t)}</text>`);
  }
  for (const b of bins) {
    if (b.count === 0) continue;
    const x = px(b.lower) + 1;
    const w = Math.max(1, px(b.upper) - px(b.lower) - 2);
    svg.push(`<rect x="${x.toFixed(1)}" y="${py(b.accuracy).toFixed(1)}" width="${w.toFixed(1)}" height="${(py(0) - py(b.accuracy)).toFixed(1)}" fill="#0072B2" fill-opacity="0.8"/>`);
    const top = Math.max(b.accuracy, b.confidence);
    const bottom = Math.min(b.accuracy, b.confidence);
    svg.push(`<rect x="${x.toFixed(1)}" y="${py(top).toFixed(1)}" width="${w.toFixed(1)}" height="${(py(bottom) - py(top)).toFixed(1)}" fill="#D55E00" fill-opacity="0.35" stroke="#D55E00" stroke-width="0.8"/>`);
    svg.push(`<text x="${(x + w / 2).toFixed(1)}" y="${(py(top) - 4).toFixed(1)}" font-size="9" text-anchor="middle" fill="#333">${b.count}</text>`);
  }
  svg.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#444" stroke-dasharray="5 4"/>`);
  svg.push(`<rect x="${f.left}" y="${f.top}" width="${f.plotW}" height="${f.plotH}" fill="none" stroke="#888"/>`);
  const lx = f.left + 10;
  svg.push(`<rect x="${lx}" y="${f.top + 8}" width="14" height="10" fill="#0072B2" fill-opacity="0.8"/>`);
  svg.push(`<text x="${lx + 20}" y="${f.top + 17}" font-size="11" fill="#222">accuracy of the bin (count above)</text>`);
  svg.push(`<rect x="${lx}" y="${f.top + 24}" width="14" height="10" fill="#D55E00" fill-opacity="0.35" stroke="#D55E00"/>`);
  svg.push(`<text x="${lx + 20}" y="${f.top + 33}" font-size="11" fill="#222">gap to the mean confidence</text>`);
  svg.push('</svg>');
  return svg.join('\n');
}
