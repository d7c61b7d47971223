import { describe, expect, it } from 'vitest';
import { InMemorySlideSource, MemoryFeatureSink, resolveExtractConfig, builtinEncoder, extractCohort, extractFeatures, functionEncoder, subPatchCoords, type CohortSlide, type ExtractionPlan, type SlideSource } from '../../src/wsi/index.js';
import { DataError, ShapeError, StateError, ValueError, createRng, tf } from '../../src/core/index.js';
import { expectAllclose } from '../helpers.js';
import { paintRect, solidImage } from './fixtures.js';
import { batchStarts } from '../../src/wsi/extract.js';

const GLASS: [number, number, number] = [244, 242, 246];

/** 512 x 384 slide: glass, with 16 x 16 blocks of seeded colours over [64, 448) x [64, 320). */
function blockSlide(seed: number, name = `slide_${seed}`): InMemorySlideSource {
  const im = solidImage(512, 384, GLASS);
  const rng = createRng(seed);
  for (let y = 64; y < 320; y += 16) {
    for (let x = 64; x < 448; x += 16) paintRect(im, x, y, x + 16, y + 16, [rng.int(200), rng.int(150), 100 + rng.int(155)]);
  }
  return InMemorySlideSource.fromImage(im, { levels: 4, name, mpp: 0.5 });
}

/** Mean colour of each patch: `[B, 3]` from raw pixels (normalization 'none'). */
const meanColour = () => functionEncoder((x) => tf.mean(x, [1, 2]), { dim: 3, inputSize: 16, normalization: 'none' });

async function regionMean(src: SlideSource, level: number, x: number, y: number, p: number): Promise<number[]> {
  const px = await src.readRegion(level, x, y, p, p);
  const s = [0, 0, 0];
  for (let i = 0; i < p * p; i++) for (let c = 0; c < 3; c++) s[c] += px[i * 3 + c];
  return s.map((v) => v / (p * p));
}

function plan(src: SlideSource): ExtractionPlan {
  // 16-px patches at level 2 (64 level-0 px); one runs past the right edge (x = 480)
  const coords = Int32Array.from([64, 64, 128, 64, 256, 192, 480, 320, 0, 0]);
  const sub = subPatchCoords(coords, src.levels, 2, 1, 16);
  return { patchSize: 16, lowResLevel: 2, coords, highResLevel: 1, k: sub.k, highResCoords: sub.coords };
}

describe('extractFeatures', () => {
  it('encodes every patch and sub-patch at its level (checked against direct reads)', async () => {
    const src = blockSlide(1);
    const p = plan(src);
    const f = await extractFeatures(src, p, meanColour());
    expect([f.n, f.k, f.dim]).toEqual([5, 4, 3]);
    for (let i = 0; i < 5; i++) {
      const want = await regionMean(src, 2, p.coords[2 * i], p.coords[2 * i + 1], 16);
      expectAllclose(f.lowRes.subarray(3 * i, 3 * i + 3), want, { rtol: 1e-5 });
      for (let j = 0; j < 4; j++) {
        const o = (i * 4 + j) * 2;
        const wantU = await regionMean(src, 1, p.highResCoords![o], p.highResCoords![o + 1], 16);
        expectAllclose((f.highRes as Float32Array).subarray((i * 4 + j) * 3, (i * 4 + j + 1) * 3), wantU, { rtol: 1e-5 });
      }
    }
    // the patch at (0, 0) is glass: (244, 242, 246)
    expectAllclose(f.lowRes.subarray(12, 15), GLASS);
  });

  it('gives the same features whatever the batch size and read-ahead', async () => {
    const src = blockSlide(2);
    const enc = builtinEncoder({ dim: 8, inputSize: 16, seed: 5 });
    const ref = await extractFeatures(src, plan(src), enc, { config: { batchSize: 1, prefetch: 0 } });
    for (const config of [
      { batchSize: 3, prefetch: 1 },
      { batchSize: 7, prefetch: 4 },
      { batchSize: 100, prefetch: 2 },
      { batchSize: 5, prefetch: 2, firstBatchSize: 1 },
    ]) {
      const f = await extractFeatures(src, plan(src), enc, { config });
      expectAllclose(f.lowRes, ref.lowRes, { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(f.highRes as Float32Array, ref.highRes as Float32Array, { rtol: 1e-5, atol: 1e-6 });
    }
    enc.dispose();
  });

  it('batches: a small first batch, doubling up to batchSize', () => {
    expect(batchStarts(70, { batchSize: 32, firstBatchSize: 8 })).toEqual([0, 8, 24, 56, 70]); // 8, 16, 32, 14
    expect(batchStarts(5, { batchSize: 32, firstBatchSize: 8 })).toEqual([0, 5]);
    expect(batchStarts(10, { batchSize: 4, firstBatchSize: 8 })).toEqual([0, 4, 8, 10]); // capped by batchSize
    expect(batchStarts(0, { batchSize: 4, firstBatchSize: 1 })).toEqual([0]);
    expect(() => resolveExtractConfig({ firstBatchSize: 0 })).toThrow(/firstBatchSize/);
  });

  it('reports progress in low-res patches and leaks no tensors', async () => {
    const src = blockSlide(3);
    const events: number[] = [];
    const before = tf.memory().numTensors;
    await extractFeatures(src, plan(src), meanColour(), { config: { batchSize: 4 }, onProgress: (e) => events.push(e.done) });
    expect(tf.memory().numTensors).toBe(before);
    // 5 patches x (1 + 4) = 25 reads in batches of 4: items done 4, 8, ..., 24, 25 -> patches 0, 1, 2, 3, 4, 4, 5
    expect(events).toEqual([0, 1, 2, 3, 4, 4, 5]);
  });

  it('fails with the slide name when the encoder width differs from d', async () => {
    const src = blockSlide(4, 'wide_slide');
    const liar = functionEncoder((x) => tf.concat([tf.mean(x, [1, 2]), tf.zeros([x.shape[0], 1])], 1), { dim: 3, inputSize: 16 });
    await expect(extractFeatures(src, plan(src), liar)).rejects.toThrow(ShapeError);
    await expect(extractFeatures(src, plan(src), liar)).rejects.toThrow(/\[8, 4\] for a batch of 8 patches of slide 'wide_slide'.*configured as 3/s); // the first batch: firstBatchSize 8
    await expect(extractFeatures(src, plan(src), meanColour(), { dim: 384 })).rejects.toThrow(/configured as 384/);
  });

  it('stops when aborted', async () => {
    const src = blockSlide(5, 'stopped');
    const ac = new AbortController();
    ac.abort();
    await expect(extractFeatures(src, plan(src), meanColour(), { signal: ac.signal })).rejects.toThrow(StateError);
  });

  it('checks the plan', async () => {
    const src = blockSlide(6);
    const bad = { ...plan(src), highResCoords: new Int32Array(6) };
    await expect(extractFeatures(src, bad, meanColour())).rejects.toThrow(/highResCoords of shape \[5, 4, 2\]/);
  });
});

function cohortSlide(id: string, make: () => SlideSource | Promise<SlideSource>, label = 0): CohortSlide {
  return { id, label, open: async () => make() };
}

const TILING = {
  tissue: { segLevel: 3, mthresh: 1, close: 0, aT: 0.01, aH: 0.01 },
  lowRes: { level: 2 },
  highRes: { level: 1 },
  grid: { patchSize: 16 },
};

describe('extractCohort', () => {
  const good = [0, 1, 2].map((s) => cohortSlide(`good_${s}`, () => blockSlide(10 + s, `good_${s}.tif`), s % 2));

  it('goes on past bad slides and names them', async () => {
    const slides = [
      good[0],
      cohortSlide('not_tiff', () => {
        throw new DataError("Slide 'not_tiff.svs' is not a TIFF file.");
      }),
      cohortSlide('blank', () => InMemorySlideSource.fromImage(solidImage(512, 384, GLASS), { levels: 4, name: 'blank.tif' })),
      cohortSlide('one_level', () => new InMemorySlideSource([{ width: 8, height: 8, data: new Uint8Array(192) }], { name: 'one_level.tif' })),
      good[1],
    ];
    const warnings: string[] = [];
    const sink = new MemoryFeatureSink();
    const enc = meanColour();
    const res = await extractCohort(slides, { encoder: enc, sink, tiling: TILING, onWarning: (m) => warnings.push(m) });
    expect(res.extracted).toEqual(['good_0', 'good_1']);
    expect(res.failed.map((f) => f.id)).toEqual(['not_tiff', 'blank', 'one_level']);
    expect(res.failed[0].error).toMatch(/not_tiff.svs' is not a TIFF/);
    expect(res.failed[1].error).toMatch(/No tissue found in slide 'blank.tif'/);
    expect(res.failed[2].error).toMatch(/slide 'one_level.tif'.*single level/s);
    expect(warnings).toHaveLength(3);
    expect(warnings[1]).toMatch(/^Skipping slide 'blank'/);
    expect(sink.slides.get('good_1')?.label).toBe(1);
    expect(res.patches).toBe(sink.slides.get('good_0')!.features.n + sink.slides.get('good_1')!.features.n);
    expect(res.subPatches).toBe(4 * res.patches);
  });

  it('fails every slide, and goes on, when the encoder width differs from d', async () => {
    const res = await extractCohort(good, { encoder: meanColour(), sink: new MemoryFeatureSink(), tiling: TILING, dim: 4 });
    expect(res.failed.map((f) => f.id)).toEqual(['good_0', 'good_1', 'good_2']);
    expect(res.failed[0].error).toMatch(/good_0.tif.*configured as 4/);
  });

  it('resumes after an interruption and ends with what an uninterrupted run gives', async () => {
    const enc = builtinEncoder({ dim: 8, inputSize: 16, seed: 1 });
    const full = new MemoryFeatureSink();
    await extractCohort(good, { encoder: enc, sink: full, tiling: TILING });

    const sink = new MemoryFeatureSink();
    const ac = new AbortController();
    const run1 = extractCohort(good, {
      encoder: enc,
      sink,
      tiling: TILING,
      signal: ac.signal,
      config: { batchSize: 4 },
      onProgress: (e) => {
        if (e.task === 'extract good_1.tif' && e.done >= 2) ac.abort(); // mid-way through the second slide
      },
    });
    await expect(run1).rejects.toThrow(StateError);
    expect([...sink.slides.keys()]).toEqual(['good_0']); // nothing partial of good_1

    const run2 = await extractCohort(good, { encoder: enc, sink, tiling: TILING });
    expect(run2.skipped).toEqual(['good_0']);
    expect(run2.extracted).toEqual(['good_1', 'good_2']);
    for (const id of ['good_0', 'good_1', 'good_2']) {
      const a = sink.slides.get(id)!.features;
      const b = full.slides.get(id)!.features;
      expect(Array.from(a.coords)).toEqual(Array.from(b.coords));
      expect(Array.from(a.lowRes)).toEqual(Array.from(b.lowRes));
      expect(Array.from(a.highRes!)).toEqual(Array.from(b.highRes!));
    }
    enc.dispose();
  });

  it('rejects duplicate slide ids', async () => {
    await expect(extractCohort([good[0], good[0]], { encoder: meanColour(), sink: new MemoryFeatureSink() })).rejects.toThrow(ValueError);
  });
});
