/**
 * Soak: long policy training (`trainPolicy`, as `sasha train policy` runs it) with the memory
 * of tfjs and of the process sampled after every PPO update, and one PPO update on a slide of
 * N = 20 000 patches with its peak memory. A long run must not grow: the live tensors and
 * their bytes after the last update equal those after the first.
 */
import { tf } from '../../src/core/tf.js';
import { Hafed } from '../../src/hafed/index.js';
import { ActorCritic, resolvePpoConfig, runPpoUpdate } from '../../src/ppo/index.js';
import { trainPolicy, withAggregated } from '../../src/pipeline/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { SyntheticDataset } from '../../src/wsi/synthetic/index.js';
import { AdamW } from '../../src/core/optim.js';
import { envEpisodes, trackPeakBytes } from '../../bench/ppo_update.js';

/** One memory sample. */
export interface MemorySample {
  update: number;
  /** Live tfjs tensors. */
  numTensors: number;
  /** Bytes of the live tfjs tensors. */
  numBytes: number;
  /** Size of the wasm backend's heap (bytes; it only grows), 0 on other backends. */
  wasmHeap: number;
  rss: number;
  heapUsed: number;
  /** Bytes of ArrayBuffers (typed arrays) held by JavaScript. */
  arrayBuffers: number;
}

/** The size of the wasm backend's heap, or 0 on another backend. */
function wasmHeap(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.byteLength ?? 0;
}

/** Samples the memory now. */
export function sampleMemory(update: number): MemorySample {
  const m = tf.memory();
  const p = process.memoryUsage();
  return { update, numTensors: m.numTensors, numBytes: m.numBytes, wasmHeap: wasmHeap(), rss: p.rss, heapUsed: p.heapUsed, arrayBuffers: p.arrayBuffers };
}

/** What {@link soakPolicyTraining} found. */
export interface SoakReport {
  backend: string;
  updates: number;
  episodes: number;
  slides: { train: number; val: number; n: [number, number]; d: number };
  /** Before training (nothing of it allocated yet). */
  before: MemorySample;
  /** After the first update (the optimisers and caches exist). */
  first: MemorySample;
  /** After the last update. */
  last: MemorySample;
  /**
   * At the end of each epoch (after its validation, the last slide's environment released): the
   * state a long run must come back to, epoch after epoch.
   */
  epochEnds: MemorySample[];
  /** After training, the model disposed. */
  after: MemorySample;
  /** Highest values over all samples. */
  peak: { numTensors: number; numBytes: number; rss: number; wasmHeap: number };
  samples: MemorySample[];
  seconds: number;
}

/**
 * Trains the zoom policy with `trainPolicy` for `updates` PPO updates of `episodesPerUpdate`
 * episodes each (one update per training slide per epoch), on a synthetic cohort with a
 * HAFED and an f_S of random weights, sampling the memory after every update.
 */
export async function soakPolicyTraining(opts: { updates: number; episodesPerUpdate: number; trainSlides: number; dim?: number; seed?: number; onSample?: (s: MemorySample) => void }): Promise<SoakReport> {
  const t0 = performance.now();
  const d = opts.dim ?? 32;
  const seed = opts.seed ?? 1;
  if (opts.updates % opts.trainSlides !== 0) throw new Error('updates must be a multiple of trainSlides (one update per slide per epoch)');
  const dataset = new SyntheticDataset({ numSlides: opts.trainSlides + 2, minPatches: 60, maxPatches: 120, dim: d, k: 4, regionPatches: 10, seed });
  const split = { train: dataset.ids.slice(0, opts.trainSlides), val: dataset.ids.slice(opts.trainSlides) };
  const before = sampleMemory(-1);
  const hafed = new Hafed({ dim: d, k: 4, seed: seed + 1 });
  const fS = new StateMlp({ dim: d, seed: seed + 2 });
  const samples: MemorySample[] = [];
  const epochEnds: MemorySample[] = [];
  let update = 0;
  const result = await trainPolicy({
    classifier: hafed,
    fS,
    dataset: withAggregated(dataset, hafed),
    split,
    env: { budget: 0.2 },
    // the default recipe's networks and PPO settings, with one slide per update and no imitation
    // epochs, so that every update is a PPO update on one slide
    ppo: { numEpisodesPerUpdate: opts.episodesPerUpdate, numEnvsPerUpdate: 1, numMinibatches: 1 },
    imitation: { teacher: 'lookahead', epochs: 0 },
    policy: { hiddenDim: 32 },
    epochs: opts.updates / opts.trainSlides,
    seed,
    onEpochEnd: () => void epochEnds.push(sampleMemory(update)),
    callbacks: [
      {
        onUpdateEnd: () => {
          const s = sampleMemory(update++);
          samples.push(s);
          opts.onSample?.(s);
        },
      },
    ],
  });
  result.model.dispose();
  hafed.dispose();
  fS.dispose();
  const after = sampleMemory(update);
  const peak = {
    numTensors: Math.max(...samples.map((s) => s.numTensors)),
    numBytes: Math.max(...samples.map((s) => s.numBytes)),
    rss: Math.max(...samples.map((s) => s.rss)),
    wasmHeap: Math.max(...samples.map((s) => s.wasmHeap)),
  };
  return {
    backend: tf.getBackend(),
    updates: samples.length,
    episodes: samples.length * opts.episodesPerUpdate,
    slides: { train: split.train.length, val: split.val.length, n: [60, 120], d },
    before,
    first: samples[0],
    last: samples[samples.length - 1],
    epochEnds,
    after,
    peak,
    samples,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** What {@link largeSlideUpdate} measured. */
export interface LargeSlideReport {
  n: number;
  d: number;
  /** Steps of the two episodes. */
  steps: number;
  before: MemorySample;
  /** Highest live tensor bytes during the episodes and the update (sampled at every allocation). */
  peakTensorBytes: number;
  after: MemorySample;
  /** Process high-water mark of the resident memory (bytes). */
  maxRss: number;
  seconds: { episodes: number; update: number };
}

/**
 * Two episodes of the actor on `WsiEnv` on one slide of `n` patches (d = 384, f = 0.2, HAFED
 * stage 2 and f_S with random weights, clustered features so that the targeted update rewrites
 * rows; as `bench/ppo_update.ts` makes them), then one PPO update of both networks. The peak of
 * the live tensor bytes is sampled at every tensor allocation, from before the episodes.
 */
export async function largeSlideUpdate(n: number, seed = 2): Promise<LargeSlideReport> {
  const before = sampleMemory(0);
  const tracker = trackPeakBytes();
  tracker.reset();
  const model = new ActorCritic({ dim: 384 });
  const actorOptimizer = new AdamW({ learningRate: 1e-5, weightDecay: 1e-4 });
  const criticOptimizer = new AdamW({ learningRate: 1e-5, weightDecay: 1e-4 });
  const t0 = performance.now();
  const table = envEpisodes(n, seed, model);
  const t1 = performance.now();
  await runPpoUpdate({ model, actorOptimizer, criticOptimizer, table, config: resolvePpoConfig({}) });
  const t2 = performance.now();
  model.dispose();
  actorOptimizer.dispose();
  criticOptimizer.dispose();
  return {
    n,
    d: 384,
    steps: table.numSamples,
    before,
    peakTensorBytes: tracker.peak() - before.numBytes,
    after: sampleMemory(1),
    maxRss: process.resourceUsage().maxRSS * 1024,
    seconds: { episodes: (t1 - t0) / 1000, update: (t2 - t1) / 1000 },
  };
}
