import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/index.js';
import { colormapColor, heatmapDataFromJson, renderHeatmap, resolveHeatmapConfig, thumbnailLevel } from '../../src/pipeline/index.js';
import { InMemorySlideSource } from '../../src/wsi/index.js';
import { expectAllclose } from '../helpers.js';
import { solidImage } from '../wsi/fixtures.js';
import { normalizeScores } from '../../src/pipeline/heatmap.js';

describe('heatmap colours and scores', () => {
  it('maps [0, 1] onto the colour map piecewise-linearly', () => {
    // jet anchors at 0, 0.2, ..., 1: dark blue, blue, cyan, yellow, red, dark red
    expect(colormapColor(0)).toEqual([0, 0, 128]);
    expect(colormapColor(1)).toEqual([128, 0, 0]);
    // 0.5 -> x = 2.5: halfway between cyan [0, 255, 255] and yellow [255, 255, 0] = [127.5, 255, 127.5], rounded
    expect(colormapColor(0.5)).toEqual([128, 255, 128]);
    // 0.1 -> x = 0.5: halfway between [0, 0, 128] and [0, 0, 255] = 191.5
    expect(colormapColor(0.1)).toEqual([0, 0, 192]);
    expect(colormapColor(-3)).toEqual([0, 0, 128]);
    expect(colormapColor(NaN)).toEqual([0, 0, 128]);
    expect(colormapColor(0, 'viridis')).toEqual([68, 1, 84]);
    expect(colormapColor(1, 'viridis')).toEqual([253, 231, 37]);
  });

  it('turns attention into percentile ranks (ties share their mean rank) or min-max scores', () => {
    // sorted: 0.1 (rank 0), 0.2 and 0.2 (ranks 1 and 2, mean 1.5), 0.5 (rank 3); divided by N - 1 = 3
    expectAllclose(normalizeScores([0.1, 0.5, 0.2, 0.2], 'percentile'), [0, 1, 0.5, 0.5]);
    expectAllclose(normalizeScores([1, 3, 2], 'linear'), [0, 1, 0.5]);
    expectAllclose(normalizeScores([2, 2], 'linear'), [0.5, 0.5]);
    expectAllclose(normalizeScores([7], 'percentile'), [0.5]);
    expect(normalizeScores([], 'percentile').length).toBe(0);
  });

  it('resolves its config and names a bad key', () => {
    expect(resolveHeatmapConfig({ alpha: 0.3 })).toMatchObject({ alpha: 0.3, colormap: 'jet', maxSide: 2048 });
    expect(() => resolveHeatmapConfig({ alpha: 2 })).toThrow(/HeatmapConfig.alpha/);
    expect(() => resolveHeatmapConfig({ outlineColor: [0, 0, 300] as [number, number, number] })).toThrow(/outlineColor to be \[r, g, b\]/);
    expect(() => resolveHeatmapConfig({ colormap: 'hot' as never })).toThrow(ValueError);
  });
});

describe('renderHeatmap on an in-memory slide', () => {
  // A grey 64 x 32 slide, levels 64 x 32 and 32 x 16; two 16-pixel patches (level 0) at (0, 0) and (16, 0).
  const slide = InMemorySlideSource.fromImage(solidImage(64, 32, [100, 100, 100]), { name: 'grey', levels: 2 });
  const data = { coords: new Int32Array([0, 0, 16, 0]), attention: [0.25, 0.75], visited: [1], patchSizeLevel0: 16 };

  it('blends the colours at alpha, outlines the visited patch, numbers it, and picks the thumbnail level', async () => {
    expect(thumbnailLevel(slide, 40)).toBe(1);
    expect(thumbnailLevel(slide, 64)).toBe(0);
    const img = await renderHeatmap(slide, data, { maxSide: 64, alpha: 0.5, lineWidth: 1, numbers: false, outlineColor: [255, 0, 255] });
    expect([img.width, img.height, img.level, img.downsampleX]).toEqual([64, 32, 0, 1]);
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    // patch 0: percentile 0 -> [0, 0, 128]; 0.5 * 100 + 0.5 * [0, 0, 128] = [50, 50, 114]
    expect(px(8, 8)).toEqual([50, 50, 114]);
    // patch 1: percentile 1 -> [128, 0, 0]; blended [114, 50, 50]; its 1-pixel border is the outline colour
    expect(px(24, 8)).toEqual([114, 50, 50]);
    for (const [x, y] of [[16, 0], [31, 5], [20, 15], [16, 10]]) expect(px(x, y)).toEqual([255, 0, 255]);
    // outside both patches: the slide's own grey
    expect(px(40, 8)).toEqual([100, 100, 100]);
    expect(px(8, 20)).toEqual([100, 100, 100]);

    const numbered = await renderHeatmap(slide, data, { maxSide: 64, numbers: true, numberScale: 1, lineWidth: 1, outlineColor: [255, 0, 255] });
    // "1" drawn on a white box at (17, 17 + ...): box from (17, 1); digit pixels start at (18, 2)
    expect(Array.from(numbered.data.subarray((1 * 64 + 17) * 3, (1 * 64 + 17) * 3 + 3))).toEqual([255, 255, 255]);
    // the digit 1's bitmap '010' on its first row: column 1 of the digit is ink
    expect(Array.from(numbered.data.subarray((2 * 64 + 19) * 3, (2 * 64 + 19) * 3 + 3))).toEqual([255, 0, 255]);
  });

  it('refuses mismatched sizes and reads back what analysisToJson wrote', async () => {
    await expect(renderHeatmap(slide, { ...data, attention: [1] })).rejects.toThrow(ShapeError);
    await expect(renderHeatmap(slide, { ...data, patchSizeLevel0: 0 })).rejects.toThrow(/patchSizeLevel0 > 0/);
    const back = heatmapDataFromJson({ coords: [[0, 0], [16, 0]], attention: [0.25, 0.75], visited: [{ order: 1, index: 1, x: 16, y: 0 }], patchSizeLevel0: 16 });
    expect(Array.from(back.coords)).toEqual([0, 0, 16, 0]);
    expect(back.visited).toEqual([1]);
    expect(() => heatmapDataFromJson({ coords: [[0, 0]], attention: [1, 2], visited: [], patchSizeLevel0: 16 })).toThrow(/incomplete/);
  });
});

describe('renderHeatmap annotation outlines', () => {
  it('draws the outlines in the annotation colour over the attention colours', async () => {
    const slide = InMemorySlideSource.fromImage(solidImage(64, 32, [100, 100, 100]), { name: 'grey', levels: 2 });
    const data = {
      coords: new Int32Array([0, 0, 16, 0]),
      attention: [0.25, 0.75],
      visited: [],
      patchSizeLevel0: 16,
      outlines: [Float64Array.from([4, 4, 40, 4, 40, 20, 4, 20])],
    };
    const img = await renderHeatmap(slide, data, { maxSide: 64, lineWidth: 1, numbers: false, annotationColor: [0, 255, 0] });
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    for (const [x, y] of [[4, 4], [20, 4], [40, 10], [30, 20], [4, 12]]) expect(px(x, y)).toEqual([0, 255, 0]);
    // inside the outline and off it: the blended attention colour and the grey slide
    expect(px(8, 8)).toEqual([50, 50, 114]);
    expect(px(50, 10)).toEqual([100, 100, 100]);
    // the same outline on the half-size level (maxSide 40): vertices divided by the downsample 2
    const half = await renderHeatmap(slide, data, { maxSide: 40, lineWidth: 1, numbers: false, annotationColor: [0, 255, 0] });
    expect(Array.from(half.data.subarray((2 * 32 + 20) * 3, (2 * 32 + 20) * 3 + 3))).toEqual([0, 255, 0]);
    expect(() => resolveHeatmapConfig({ annotationColor: [0, 0] as never })).toThrow(/annotationColor to be \[r, g, b\]/);
  });
});
