import { describe, expect, it } from 'vitest';
import { cohortCompression, compressionRatio } from '../../src/eval/index.js';

describe('compressionRatio', () => {
  it('counts the state, the high-res features and the pixels of a slide', () => {
    // N = 2000, k = 16, d = 384, float16, 256-px RGB sub-patches:
    // state 2000 * 384 * 2 = 1,536,000; features x 16 = 24,576,000; pixels 2000 * 16 * 256^2 * 3 = 6,291,456,000
    const r = compressionRatio({ id: 's', numPatches: 2000, k: 16, dim: 384, bytesPerValue: 2, subPatchSide: 256 });
    expect(r).toEqual({
      id: 's',
      numPatches: 2000,
      k: 16,
      dim: 384,
      stateBytes: 1_536_000,
      highResFeatureBytes: 24_576_000,
      featureRatio: 16,
      highResPixelBytes: 6_291_456_000,
      pixelRatio: 4096,
    });
    // without a pixel size the pixels are left out; float32 by default
    const f = compressionRatio({ numPatches: 10, k: 4, dim: 8 });
    expect(f).toEqual({ numPatches: 10, k: 4, dim: 8, stateBytes: 320, highResFeatureBytes: 1280, featureRatio: 4 });
  });

  it('sums a cohort before dividing, and rejects bad shapes', () => {
    const { slides, cohort } = cohortCompression([
      { id: 'a', numPatches: 100, k: 16, dim: 64, bytesPerValue: 2, subPatchSide: 32 },
      { id: 'b', numPatches: 300, k: 16, dim: 64, bytesPerValue: 2, subPatchSide: 32 },
    ]);
    expect(slides.map((s) => s.stateBytes)).toEqual([12_800, 38_400]);
    expect(cohort).toEqual({
      numPatches: 400,
      k: 16,
      dim: 64,
      stateBytes: 51_200,
      highResFeatureBytes: 819_200,
      featureRatio: 16,
      highResPixelBytes: 400 * 16 * 32 * 32 * 3,
      pixelRatio: (16 * 32 * 32 * 3) / (64 * 2),
    });
    expect(() => cohortCompression([])).toThrow(/at least one slide/);
    expect(() => cohortCompression([{ numPatches: 1, k: 16, dim: 8 }, { id: 'z', numPatches: 1, k: 4, dim: 8 }])).toThrow(/slide 'z' has k = 4/);
    expect(() => compressionRatio({ numPatches: 0, k: 1, dim: 1 })).toThrow(/numPatches/);
    expect(() => compressionRatio({ numPatches: 1, k: 1, dim: 1, bytesPerValue: 0 })).toThrow(/bytesPerValue/);
  });
});
