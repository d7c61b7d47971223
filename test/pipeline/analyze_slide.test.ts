import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, ShapeError, StateError, ValueError, tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { WsiEnv } from '../../src/mdp/index.js';
import { ActorCritic, ActorCriticPolicy } from '../../src/ppo/index.js';
import { SashaModel, analyzeSlide, analysisToJson, renderHeatmap, thumbnailLevel, type AnalyzeEvent, type SlideAnalysis } from '../../src/pipeline/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { builtinEncoder, extractFeatures, planFromTiling, tileSlide, type PatchEncoder, type SlideSource } from '../../src/wsi/index.js';
import { openSlide, writeRgbTiff, writeSyntheticSlide } from '../../src/node/index.js';
import { expectAllclose } from '../helpers.js';
import { tempDir } from '../wsi/fixtures.js';

// Slides of 1024 x 768 pixels: levels 1024, 512, 256 (downsamples 1, 2, 4). Patches of 32
// pixels at level 2, sub-patches of 32 pixels at level 1: k = (4 / 2)^2 = 4.
const tmp = tempDir();
const D = 16;
const K = 4;
const TISSUE = { aT: 0.1, aH: 0.1 };
const CONFIG = { lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 }, tissue: TISSUE, batchSize: 8 };

let slide: SlideSource;
let encoder: PatchEncoder;
let model: SashaModel;

/** A PatchEncoder that counts the patches it encodes. */
function counting(inner: PatchEncoder): PatchEncoder & { encoded: number; calls: number[] } {
  const enc = {
    dim: inner.dim,
    inputSize: inner.inputSize,
    name: inner.name,
    encoded: 0,
    calls: [] as number[],
    encode(batch: tf.Tensor4D): tf.Tensor2D {
      enc.encoded += batch.shape[0];
      enc.calls.push(batch.shape[0]);
      return inner.encode(batch);
    },
    dispose() {},
  };
  return enc;
}

/** A SlideSource that records every region read, by level. */
function recording(inner: SlideSource): SlideSource & { reads: Map<number, string[]> } {
  const reads = new Map<number, string[]>();
  return {
    name: inner.name,
    levels: inner.levels,
    mpp: inner.mpp,
    reads,
    readRegion(level, x, y, w, h) {
      if (!reads.has(level)) reads.set(level, []);
      reads.get(level)!.push(`${x},${y}`);
      return inner.readRegion(level, x, y, w, h);
    },
  };
}

function makeModel(seed: number, dim = D): SashaModel {
  return new SashaModel({
    hafed: new Hafed({ dim, k: K, numClasses: 2, attentionDim: 8, seed }),
    fS: new StateMlp({ dim, hiddenDim: 2 * dim, seed }),
    policy: new ActorCritic({ dim, hiddenDim: 8, seed }),
    // tau 0.5: the random encoder's features are alike, so f_S rewrites several rows per step
    env: { budget: 0.2, tau: 0.5 },
  });
}

beforeAll(async () => {
  await writeSyntheticSlide(tmp.path('slide.tif'), { width: 1024, height: 768, seed: 4 });
  await writeRgbTiff(tmp.path('blank.tif'), new Uint8Array(1024 * 768 * 3).fill(245), 1024, 768, 0.5);
  slide = await openSlide(tmp.path('slide.tif'));
  encoder = builtinEncoder({ dim: D, inputSize: 16, seed: 1 });
  model = makeModel(3);
});
afterAll(async () => {
  model.dispose();
  encoder.dispose();
  await slide.close?.();
  tmp.cleanup();
});

/** The feature pipeline on the same slide: tile, extract Z and U, V = HAFED stage 1 (U). */
async function featurePipeline(): Promise<{ z: Float32Array; u: Float32Array; n: number; coords: Int32Array; subCoords: Int32Array }> {
  const tiling = await tileSlide(slide, { tissue: TISSUE, lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 } });
  const f = await extractFeatures(slide, planFromTiling(tiling), encoder, { config: { batchSize: 8 } });
  return { z: f.lowRes, u: f.highRes!, n: f.n, coords: f.coords, subCoords: f.highResCoords! };
}

describe('analyzeSlide, full-resolution mode', () => {
  it('gives the probabilities of the feature pipeline (extractFeatures, HAFED stage 1 then stage 2)', async () => {
    const ref = await featurePipeline();
    const expected = tf.tidy(() => {
      const v = model.hafed!.aggregate(tf.tensor3d(ref.u, [ref.n, K, D]));
      const out = model.hafed!.classify(v);
      return { probs: Array.from(out.probs.dataSync()), attention: tf.mean(out.attention, 0).dataSync() as Float32Array };
    });
    const enc = counting(encoder);
    const res = await analyzeSlide(model, slide, { encoder: enc, config: { ...CONFIG, mode: 'fullResolution' } });
    expect(res.counts).toEqual({ patches: ref.n, k: K, steps: 0, lowResRead: 0, highResRead: ref.n * K, highResEncoded: ref.n * K });
    expect(enc.encoded).toBe(ref.n * K);
    expect(Array.from(res.coords)).toEqual(Array.from(ref.coords));
    expectAllclose(res.prediction.probs, expected.probs, { rtol: 1e-5, atol: 0 });
    expectAllclose(res.attention, expected.attention, { rtol: 1e-5, atol: 1e-9 });
    expect(res.prediction.label).toBe(expected.probs[1] > expected.probs[0] ? 1 : 0);
    expect(res.prediction.probability).toBe(res.prediction.probs[res.prediction.label]);
    expect(res.visited).toEqual([]);
    expect(res.budget).toBe(1);
  });
});

describe('analyzeSlide, SASHA mode (lazy zoom)', () => {
  let ref: Awaited<ReturnType<typeof featurePipeline>>;
  let episode: { actions: number[]; probs: number[]; attention: Float32Array; rewritten: number };
  beforeAll(async () => {
    ref = await featurePipeline();
    // The environment episode on features extracted beforehand, same policy (argmax).
    const hafed = model.hafed!;
    const zt = tf.tensor2d(ref.z, [ref.n, D]);
    const vt = tf.tidy(() => hafed.aggregate(tf.tensor3d(ref.u, [ref.n, K, D])));
    const env = new WsiEnv({ classifier: hafed, fS: model.fS, lowRes: zt, aggregated: vt, config: model.env });
    tf.dispose([zt, vt]);
    const policy = new ActorCriticPolicy(model.policy!);
    let { observation } = env.reset({ seed: 0 });
    policy.startEpisode(observation);
    const actions: number[] = [];
    let rewritten = 0;
    let probs: number[] = [];
    for (let done = false; !done; ) {
      const { action } = policy.selectAction(observation, { mode: 'argmax' });
      const r = env.step(action);
      policy.observeStep(r.info);
      actions.push(action);
      rewritten += r.info.similarSet.length;
      probs = Array.from(r.info.probs);
      observation = r.observation;
      done = r.terminated;
    }
    episode = { actions, probs, attention: env.attention(), rewritten };
    env.close();
  });

  it('zooms T = ceil(f N) patches, reads (without read-ahead) and encodes only their T k sub-patches, and predicts as the episode on extracted features', async () => {
    const enc = counting(encoder);
    const src = recording(slide);
    const res = await analyzeSlide(model, src, { encoder: enc, config: { ...CONFIG, speculate: 0 } });
    const n = ref.n;
    const T = Math.ceil(0.2 * n);
    expect(n).toBe(20);
    expect(episode.rewritten).toBeGreaterThan(0); // the targeted update ran on more rows than the chosen ones
    expect(res.counts).toEqual({ patches: n, k: K, steps: T, lowResRead: n, highResRead: T * K, highResEncoded: T * K });
    // encoder: the N low-res patches in batches of 8, then one call of k per zoom step
    expect(enc.encoded).toBe(n + T * K);
    expect(enc.calls.slice(-T)).toEqual(Array(T).fill(K));
    // slide reads past segmentation: N patches at level 2, and exactly the sub-patches of the visited patches at level 1
    const lowReads = src.reads.get(2)!.slice(-n);
    expect(lowReads).toEqual(Array.from({ length: n }, (_, i) => `${ref.coords[2 * i]},${ref.coords[2 * i + 1]}`));
    const subOf = (a: number) => Array.from({ length: K }, (_, j) => `${ref.subCoords[(a * K + j) * 2]},${ref.subCoords[(a * K + j) * 2 + 1]}`);
    expect(src.reads.get(1)!.sort()).toEqual(res.visited.flatMap(subOf).sort());
    expect(src.reads.has(0)).toBe(false);
    // lazy zoom changes the cost, not the result
    expect(res.visited).toEqual(episode.actions);
    expect(new Set(res.visited).size).toBe(T);
    expectAllclose(res.prediction.probs, episode.probs, { rtol: 1e-5, atol: 0 });
    expectAllclose(res.attention, episode.attention, { rtol: 1e-5, atol: 1e-9 });
    expect(res.policy).toBe('learned');
    expect(res.budget).toBe(0.2);
  });

  it('sends the layout, then the state before the zoom and after each step, awaiting the callback, without changing the result', async () => {
    const plain = await analyzeSlide(model, slide, { encoder, config: CONFIG });
    const events: AnalyzeEvent[] = [];
    const order: string[] = [];
    const res = await analyzeSlide(model, slide, {
      encoder,
      config: CONFIG,
      onProgress: (e) => order.push(`progress ${e.task.split(' ')[0]} ${e.done}`),
      onEvent: async (e) => {
        events.push(e);
        order.push(`event ${e.type}${e.type === 'state' ? ` ${e.step}` : ''} start`);
        await new Promise((r) => setTimeout(r, 1));
        order.push(`event ${e.type}${e.type === 'state' ? ` ${e.step}` : ''} end`);
      },
    });
    const T = res.counts.steps;
    expect(res.visited).toEqual(plain.visited);
    expect(res.prediction.probs).toEqual(plain.prediction.probs);
    const [layout, ...states] = events;
    expect(layout).toMatchObject({ type: 'layout', slide: slide.name, mode: 'sasha', lowResLevel: 2, highResLevel: 1, patchSize: 32, patchSizeLevel0: 128, k: K, steps: T });
    if (layout.type !== 'layout') throw new Error('expected the layout first');
    expect(Array.from(layout.coords)).toEqual(Array.from(res.coords));
    expect(layout.tissue!.regions.length).toBeGreaterThan(0);
    expect(states.map((s) => (s.type === 'state' ? s.step : -1))).toEqual(Array.from({ length: T + 1 }, (_, i) => i));
    for (const s of states) {
      if (s.type !== 'state') continue;
      expect(s.visited).toEqual(res.visited.slice(0, s.step));
      expect(s.action).toBe(s.step === 0 ? null : res.visited[s.step - 1]);
      expect(s.attention.length).toBe(res.counts.patches);
      expect(s.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
    const last = states[T];
    if (last.type !== 'state') throw new Error('expected a state');
    expect(last.probs).toEqual(res.prediction.probs);
    expectAllclose(last.attention, res.attention, { rtol: 0, atol: 0 });
    // the layout comes before any patch is encoded, and each callback finishes before the analysis goes on
    expect(order[0]).toBe('event layout start');
    expect(order[1]).toBe('event layout end');
    for (let i = 0; i < order.length; i++) if (order[i].endsWith(' start')) expect(order[i + 1]).toBe(order[i].replace(/ start$/, ' end'));
    expect(order.indexOf('event state 0 start')).toBeGreaterThan(order.lastIndexOf(`progress low-res ${res.counts.patches}`));
  });

  it('reads ahead the next candidates (speculate, 2 by default) without changing the result or the sub-patches encoded', async () => {
    const enc = counting(encoder);
    const src = recording(slide);
    const res = await analyzeSlide(model, src, { encoder: enc, config: CONFIG });
    const T = Math.ceil(0.2 * ref.n);
    expect(res.visited).toEqual(episode.actions);
    expectAllclose(res.prediction.probs, episode.probs, { rtol: 1e-5, atol: 0 });
    expect(res.counts.highResEncoded).toBe(T * K);
    expect(enc.encoded).toBe(ref.n + T * K);
    expect(res.counts.highResRead).toBeGreaterThanOrEqual(T * K);
    expect(res.counts.highResRead).toBeLessThanOrEqual((T + 2 * T) * K);
    expect(src.reads.get(1)!.length).toBe(res.counts.highResRead);
  });

  it('runs a baseline policy at another budget (top-attention, f = 0.1)', async () => {
    const res = await analyzeSlide(model, slide, { encoder, config: { ...CONFIG, policy: 'top-attention', budget: 0.1 } });
    expect(res.visited.length).toBe(Math.ceil(0.1 * ref.n));
    expect(res.counts.highResEncoded).toBe(res.visited.length * K);
    expect(res.policy).toBe('top-attention');
  });

  it('takes given patch coordinates instead of segmenting, and refuses an empty list', async () => {
    const given = await analyzeSlide(model, slide, { encoder, config: CONFIG, coords: ref.coords });
    expect(given.timings.tissue).toBe(0);
    expect(given.visited).toEqual(episode.actions);
    expectAllclose(given.prediction.probs, episode.probs, { rtol: 1e-5, atol: 0 });
    await expect(analyzeSlide(model, slide, { encoder, config: CONFIG, coords: new Int32Array(0) })).rejects.toThrow(/No patches given for slide 'slide.tif'/);
    await expect(analyzeSlide(model, slide, { encoder, config: CONFIG, coords: new Int32Array(3) })).rejects.toThrow(ShapeError);
  });

  it('reports progress per phase and stops when aborted', async () => {
    const events: string[] = [];
    await analyzeSlide(model, slide, { encoder, config: CONFIG, onProgress: (e) => void events.push(`${e.task} ${e.done}/${e.total}`) });
    const T = Math.ceil(0.2 * ref.n);
    expect(events.filter((e) => e.startsWith('low-res slide.tif')).pop()).toBe(`low-res slide.tif ${ref.n}/${ref.n}`);
    expect(events.filter((e) => e.startsWith('zoom slide.tif'))).toEqual(Array.from({ length: T }, (_, t) => `zoom slide.tif ${t + 1}/${T}`));
    const ac = new AbortController();
    const stopped = analyzeSlide(model, slide, {
      encoder,
      config: CONFIG,
      signal: ac.signal,
      onProgress: (e) => {
        if (e.task.startsWith('zoom') && e.done === 2) ac.abort();
      },
    });
    await expect(stopped).rejects.toThrow(StateError);
    await expect(stopped).rejects.toThrow(/analysis of slide 'slide.tif' was aborted/);
  });

  it('holds no tensors after three analyses', async () => {
    await analyzeSlide(model, slide, { encoder, config: CONFIG }); // warm-up (kernels, lazy weights)
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await analyzeSlide(model, slide, { encoder, config: i === 1 ? { ...CONFIG, mode: 'fullResolution' } : CONFIG });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives JSON with the visited patches in order and their coordinates', async () => {
    const res = await analyzeSlide(model, slide, { encoder, config: CONFIG });
    const json = analysisToJson(res) as { visited: { order: number; index: number; x: number; y: number }[]; prediction: { probability: number } };
    expect(json.visited.map((v) => v.index)).toEqual(res.visited);
    expect(json.visited[0]).toEqual({ order: 1, index: res.visited[0], x: res.coords[2 * res.visited[0]], y: res.coords[2 * res.visited[0] + 1] });
    expect(JSON.parse(JSON.stringify(json)).prediction.probability).toBeCloseTo(res.prediction.probability, 10);
  });
});

describe('analyzeSlide, bad input', () => {
  it('refuses an encoder of another d, naming the slide and the fix', async () => {
    const wide = builtinEncoder({ dim: 8, inputSize: 16 });
    await expect(analyzeSlide(model, slide, { encoder: wide, config: CONFIG })).rejects.toThrow(
      new RegExp(`slide 'slide.tif'.*d = 8.*trained on d = 16.*encoder the training features were extracted with`, 's'),
    );
    await expect(analyzeSlide(model, slide, { encoder: wide, config: CONFIG })).rejects.toThrow(ShapeError);
    wide.dispose();
  });

  it('refuses a budget outside (0, 1]', async () => {
    for (const budget of [0, -0.1, 1.5, NaN]) {
      await expect(analyzeSlide(model, slide, { encoder, config: { ...CONFIG, budget, policy: 'top-attention' } })).rejects.toThrow(ValueError);
    }
    await expect(analyzeSlide(model, slide, { encoder, config: { ...CONFIG, budget: 0 } })).rejects.toThrow(/budget.*\(0, 1\]|budget to be > 0/);
  });

  it('refuses a learned policy at another budget than it was trained for, naming the fix', async () => {
    await expect(analyzeSlide(model, slide, { encoder, config: { ...CONFIG, budget: 0.1 } })).rejects.toThrow(
      /trained for budget f = 0.2, but f = 0.1 was asked for.*sasha train policy --budget 0.1/s,
    );
  });

  it('refuses a slide with no tissue, naming the slide', async () => {
    const blank = await openSlide(tmp.path('blank.tif'));
    try {
      await expect(analyzeSlide(model, blank, { encoder, config: CONFIG })).rejects.toThrow(DataError);
      await expect(analyzeSlide(model, blank, { encoder, config: CONFIG })).rejects.toThrow(/No tissue found in slide 'blank.tif'.*lower sthresh or aT/s);
    } finally {
      await blank.close?.();
    }
  });

  it('refuses levels that give another k, listing the level pairs that fit', async () => {
    await expect(analyzeSlide(model, slide, { encoder, config: { ...CONFIG, highRes: { level: 0 } } })).rejects.toThrow(
      /give k = 16 .*trained with k = 4.*low-res 1 \/ high-res 0, low-res 2 \/ high-res 1/s,
    );
  });
});

describe('renderHeatmap', () => {
  let res: SlideAnalysis;
  beforeAll(async () => {
    res = await analyzeSlide(model, slide, { encoder, config: CONFIG });
  });

  it('draws on the thumbnail level, outlines the zoomed patches and leaves the others open', async () => {
    // maxSide 600: level 1 (512 x 384) is the largest level that fits
    expect(thumbnailLevel(slide, 600)).toBe(1);
    const img = await renderHeatmap(slide, res, { maxSide: 600, numbers: false, outlineColor: [255, 0, 255], lineWidth: 1, alpha: 0.5 });
    expect([img.width, img.height, img.level, img.data.length]).toEqual([512, 384, 1, 512 * 384 * 3]);
    expect([img.downsampleX, img.downsampleY]).toEqual([2, 2]);
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    // a patch is 32 pixels at level 2 = 128 level-0 pixels = 64 pixels of level 1
    const visited = new Set(res.visited);
    for (let i = 0; i < res.coords.length / 2; i++) {
      const x0 = res.coords[2 * i] / 2;
      const y0 = res.coords[2 * i + 1] / 2;
      const corner = px(x0, y0);
      const mid = px(x0 + 32, y0);
      if (visited.has(i)) {
        expect(corner).toEqual([255, 0, 255]);
        expect(mid).toEqual([255, 0, 255]); // top edge
        expect(px(x0 + 63, y0 + 32)).toEqual([255, 0, 255]); // right edge
        expect(px(x0 + 32, y0 + 32)).not.toEqual([255, 0, 255]); // inside
      } else {
        // the top edge is outlined only where a visited neighbour's outline runs (never here: patches do not overlap)
        expect(mid).not.toEqual([255, 0, 255]);
      }
    }
    // outside the patches: the thumbnail untouched (level 1 read as is)
    const thumb = await slide.readRegion(1, 0, 0, 512, 384);
    const inPatch = new Uint8Array(512 * 384);
    for (let i = 0; i < res.coords.length / 2; i++) {
      for (let y = res.coords[2 * i + 1] / 2; y < res.coords[2 * i + 1] / 2 + 64; y++) inPatch.fill(1, y * 512 + res.coords[2 * i] / 2, y * 512 + res.coords[2 * i] / 2 + 64);
    }
    let outside = 0;
    let changed = 0;
    for (let p = 0; p < inPatch.length; p++) {
      if (inPatch[p]) continue;
      outside++;
      for (let c = 0; c < 3; c++) if (img.data[p * 3 + c] !== thumb[p * 3 + c]) changed++;
    }
    expect(outside).toBeGreaterThan(1000);
    expect(changed).toBe(0);
  });

  it('colours by attention rank: the most attended patch is dark red, the least dark blue (jet, alpha 1)', async () => {
    const img = await renderHeatmap(slide, { ...res, visited: [] }, { maxSide: 600, alpha: 1 });
    let hi = 0;
    let lo = 0;
    for (let i = 1; i < res.attention.length; i++) {
      if (res.attention[i] > res.attention[hi]) hi = i;
      if (res.attention[i] < res.attention[lo]) lo = i;
    }
    const at = (i: number) => {
      const o = ((res.coords[2 * i + 1] / 2 + 10) * 512 + res.coords[2 * i] / 2 + 10) * 3;
      return Array.from(img.data.subarray(o, o + 3));
    };
    expect(at(hi)).toEqual([128, 0, 0]);
    expect(at(lo)).toEqual([0, 0, 128]);
  });

  it('refuses attention and coordinates of different N, and visited indices out of range', async () => {
    await expect(renderHeatmap(slide, { ...res, attention: res.attention.subarray(1) })).rejects.toThrow(ShapeError);
    await expect(renderHeatmap(slide, { ...res, visited: [res.attention.length] })).rejects.toThrow(/visited patch indices in \[0, /);
  });
});

describe('SashaModel.analyzeSlide', () => {
  it('is analyzeSlide on the bundle', async () => {
    const a = await model.analyzeSlide(slide, { encoder, config: CONFIG });
    const b = await analyzeSlide(model, slide, { encoder, config: CONFIG });
    expect(a.visited).toEqual(b.visited);
    expect(a.prediction.probs).toEqual(b.prediction.probs);
  });
});
