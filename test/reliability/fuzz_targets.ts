/**
 * The readers of untrusted bytes that the fuzzer feeds, and the seed inputs it mutates. Each
 * target reads a folder (one slide, a pair of feature files, a model directory, ...) the way
 * the CLI does; the fuzzer copies a seed folder, damages one file in it, and calls `read`.
 */
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { ActorCritic } from '../../src/ppo/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { DEFAULT_WSI_ENV_CONFIG } from '../../src/mdp/index.js';
import { tileSlide, type SlideFeatures } from '../../src/wsi/index.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from '../../src/wsi/synthetic/index.js';
import {
  ClamFeatureDataset,
  H5FeatureDataset,
  H5FeatureSink,
  fileIO,
  loadSashaModel,
  openSlide,
  readLabelCsv,
  readSplitFile,
  updateModelManifest,
  writeFeatureFiles,
  writeSplitFile,
  writeSyntheticSlide,
} from '../../src/node/index.js';
import { loadH5 } from '../../src/node/h5/h5file.js';
import { H5Writer } from '../../src/node/h5/h5_writer.js';
import { loadWasmJpeg } from '../../src/node/jpeg_wasm.js';
import { loadNodeOnnxRuntime, loadOnnxEncoder } from '../../src/node/onnx_encoder.js';
import { actorCriticFromReference, hafedFromReference, stateMlpFromReference } from '../../src/pipeline/index.js';
import type { FileKind } from './mutate.js';

/** A seed input: a folder and the files in it the fuzzer may damage. */
export interface SeedBundle {
  /** Folder name under the seeds folder. */
  name: string;
  files: { path: string; kind: FileKind }[];
}

/** A reader under test. */
export interface FuzzTarget {
  name: string;
  /** What `read` calls, for the report. */
  reader: string;
  /** Writes the seed folders under `dir/<target>/` (parent process, once). */
  makeSeeds(dir: string): Promise<SeedBundle[]>;
  /** Reads a (damaged) copy of a seed folder the way the library's users do. */
  read(root: string, bundle: SeedBundle): Promise<void>;
}

/** Loads what the readers load once per process (h5wasm, the JPEG codec), before the first case is timed. */
export async function warmUp(): Promise<void> {
  await loadH5();
  await loadWasmJpeg();
  await loadNodeOnnxRuntime();
}

const SLIDE = { width: 768, height: 512 };

/** Slides from disk: header, directories, tile tables, JPEG tables, tiles. */
const tiffTarget: FuzzTarget = {
  name: 'tiff',
  reader: 'openSlide, then tileSlide (tissue segmentation and patch grid) and 64-pixel reads at 3 places of every level',
  async makeSeeds(dir) {
    const out: SeedBundle[] = [];
    for (const [name, compression] of [
      ['jpeg', 'jpeg'],
      ['raw', 'none'],
    ] as const) {
      await writeSyntheticSlide(join(dir, name, 'slide.tif'), { ...SLIDE, seed: 3 }, { compression, tileSize: 128 });
      out.push({ name, files: [{ path: 'slide.tif', kind: 'tiff' }] });
    }
    return out;
  },
  async read(root) {
    const slide = await openSlide(join(root, 'slide.tif'));
    try {
      await tileSlide(slide, {
        lowRes: { level: Math.min(1, slide.levels.length - 1) },
        tissue: { aT: 0.1, aH: 0.1 },
        grid: { patchSize: 32 },
      }).catch((e) => {
        // a slide whose pixels changed may have no tissue left: that is a DataError, keep reading
        if (!(e instanceof Error) || e.name !== 'DataError') throw e;
      });
      for (let l = 0; l < slide.levels.length; l++) {
        const lv = slide.levels[l];
        const ds = lv.downsample;
        for (const [fx, fy] of [
          [0, 0],
          [0.5, 0.5],
          [0.9, 0.2],
        ]) {
          await slide.readRegion(l, Math.floor(fx * lv.width * ds), Math.floor(fy * lv.height * ds), 64, 64);
        }
      }
    } finally {
      await slide.close();
    }
  },
};

/** A small cohort in the reference layout, float16 (as extraction writes) and float32. */
async function writeCohort(dir: string, dtype: 'float16' | 'float32'): Promise<void> {
  const cohort = generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 8, numSlides: 4, minPatches: 12, maxPatches: 20, regionPatches: 6 });
  mkdirSync(dir, { recursive: true });
  await writeFeatureFiles({ lrH5: join(dir, 'lr.h5'), hrH5: join(dir, 'hr.h5') }, cohort.bags, { patchSizeLevel0: cohort.config.patchSizeLevel0, dtype });
  writeSplitFile(join(dir, 'split.json'), cohort.split);
  for (const b of cohort.bags) {
    b.lowRes?.dispose();
    b.highRes?.dispose();
  }
}

/** Feature files in the reference layout (one group per slide), as `sasha train` reads them. */
const h5Target: FuzzTarget = {
  name: 'h5-reference',
  reader: 'H5FeatureDataset.open (low-res and high-res files), then load of every slide (Z, U, coords)',
  async makeSeeds(dir) {
    const out: SeedBundle[] = [];
    for (const dtype of ['float16', 'float32'] as const) {
      await writeCohort(join(dir, dtype), dtype);
      out.push({
        name: dtype,
        files: [
          { path: 'lr.h5', kind: 'h5' },
          { path: 'hr.h5', kind: 'h5' },
        ],
      });
    }
    return out;
  },
  async read(root) {
    const ds = await H5FeatureDataset.open({ lrH5: join(root, 'lr.h5'), hrH5: join(root, 'hr.h5') });
    try {
      for (const id of ds.ids) {
        const bag = await ds.load(id);
        bag.lowRes?.dispose();
        bag.highRes?.dispose();
      }
    } finally {
      ds.close();
    }
  },
};

/** Per-slide files of a sharded extraction, joined by `sasha merge`. */
const partsTarget: FuzzTarget = {
  name: 'h5-parts',
  reader: 'H5FeatureSink.merge of the per-slide parts (as sasha merge), then H5FeatureDataset.open of the result',
  async makeSeeds(dir) {
    const root = join(dir, 'parts');
    const cohort = generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 8, numSlides: 4, minPatches: 10, maxPatches: 14, regionPatches: 6 });
    const sink = new H5FeatureSink(root);
    for (const b of cohort.bags) {
      const n = b.lowRes!.shape[0];
      const k = b.highRes!.shape[1];
      await sink.write(
        b.id,
        {
          n,
          k,
          dim: 8,
          lowRes: b.lowRes!.dataSync() as Float32Array,
          highRes: b.highRes!.dataSync() as Float32Array,
          coords: Int32Array.from({ length: 2 * n }, (_, i) => 32 * i),
          highResCoords: Int32Array.from({ length: 2 * n * k }, (_, i) => 16 * i),
          lowResLevel: 2,
          highResLevel: 1,
          patchSize: 32,
        } satisfies SlideFeatures,
        { label: b.label, encoder: 'seed' },
      );
      b.lowRes?.dispose();
      b.highRes?.dispose();
    }
    writeFileSync(join(root, 'ids.json'), JSON.stringify(cohort.bags.map((b) => b.id)));
    return [
      {
        name: 'parts',
        files: cohort.bags.map((b) => b.id).flatMap((id) => [
          { path: `parts/lr/${id}.h5`, kind: 'h5' as const },
          { path: `parts/hr/${id}.h5`, kind: 'h5' as const },
        ]),
      },
    ];
  },
  async read(root) {
    const ids = JSON.parse(readFileSync(join(root, 'ids.json'), 'utf8')) as string[];
    const sink = new H5FeatureSink(root);
    const merged = await sink.merge(ids, { lrH5: join(root, 'm_lr.h5'), hrH5: join(root, 'm_hr.h5') });
    const ds = await H5FeatureDataset.open({ lrH5: merged.lrH5, hrH5: merged.hrH5 });
    ds.close();
  },
};

/** CLAM / TRIDENT per-slide feature files. */
const clamTarget: FuzzTarget = {
  name: 'h5-clam',
  reader: 'ClamFeatureDataset.open of a folder of per-slide files, then load of every slide',
  async makeSeeds(dir) {
    const root = join(dir, 'clam', 'h5_files');
    mkdirSync(root, { recursive: true });
    const files: SeedBundle['files'] = [];
    for (let s = 0; s < 3; s++) {
      const n = 10 + s;
      const w = await H5Writer.create(join(root, `slide_${s}.h5`));
      w.writeFloat32('features', Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i + s)), [n, 8]);
      w.writeInt('coords', Int32Array.from({ length: n * 2 }, (_, i) => 256 * i), [n, 2], '<i8');
      await w.commit();
      files.push({ path: `h5_files/slide_${s}.h5`, kind: 'h5' });
    }
    return [{ name: 'clam', files }];
  },
  async read(root) {
    const ds = await ClamFeatureDataset.open(root, { labels: { slide_0: 0, slide_1: 1, slide_2: 0 } });
    for (const id of ds.ids) {
      const bag = await ds.load(id);
      bag.lowRes?.dispose();
    }
  },
};

/** A model directory as `sasha train all` writes it: manifest, HAFED, f_S and a policy. */
const modelTarget: FuzzTarget = {
  name: 'model-dir',
  reader: "loadSashaModel (sasha.json, then HAFED, f_S and the policy for f = 0.2: model.json and weights of each)",
  async makeSeeds(dir) {
    const root = join(dir, 'model');
    const hafed = new Hafed({ dim: 8, k: 4, numBranches2: 2, attentionDim: 4, seed: 1 });
    const fS = new StateMlp({ dim: 8, hiddenDim: 8, seed: 2 });
    const policy = new ActorCritic({ dim: 8, hiddenDim: 4, seed: 3 });
    await hafed.save(fileIO(join(root, 'hafed')));
    await fS.save(fileIO(join(root, 'tsu')));
    await policy.save(fileIO(join(root, 'policy-0.2')));
    await updateModelManifest(root, {
      dim: 8,
      k: 4,
      numClasses: 2,
      data: { lrH5: '/nonexistent/lr.h5', hrH5: '/nonexistent/hr.h5', split: '/nonexistent/split.json' },
      hafed: { path: 'hafed', input: 'highRes', config: { ...hafed.config }, train: {}, seed: 1, best: { epoch: 0 } },
      tsu: { path: 'tsu', train: { tau: 0.9 }, bestEpoch: 0, bestValMse: 0, identityValMse: 0 },
      policies: { '0.2': { path: 'policy-0.2', budget: 0.2, env: { ...DEFAULT_WSI_ENV_CONFIG, budget: 0.2 }, ppo: {}, epochs: 1, seed: 3, bestEpoch: 0, bestScore: 0 } },
    });
    [hafed, fS, policy].forEach((m) => m.dispose());
    const files: SeedBundle['files'] = [{ path: 'sasha.json', kind: 'json' }];
    for (const sub of ['hafed', 'tsu', 'policy-0.2']) {
      for (const f of readdirSync(join(root, sub))) files.push({ path: `${sub}/${f}`, kind: f.endsWith('.json') ? 'json' : 'bin' });
    }
    return [{ name: 'model', files }];
  },
  async read(root) {
    const before = tf.memory().numTensors;
    const model = await loadSashaModel(root, { budget: 0.2 });
    model.dispose();
    if (tf.memory().numTensors !== before) throw new Error(`tensors leaked: ${tf.memory().numTensors - before}`);
  },
};

/** Split files: the reference JSON, ours, and CLAM's split CSV. */
const splitTarget: FuzzTarget = {
  name: 'split',
  reader: 'readSplitFile (JSON and CLAM CSV) checked against the slide ids of a dataset',
  async makeSeeds(dir) {
    const root = join(dir, 'split');
    mkdirSync(root, { recursive: true });
    const ids = Array.from({ length: 12 }, (_, i) => `slide_${String(i).padStart(3, '0')}`);
    writeFileSync(join(root, 'split.json'), JSON.stringify({ train_names: ids.slice(0, 6), val_names: ids.slice(6, 9), test_names: ids.slice(9) }));
    const rows = ['', ...Array.from({ length: 6 }, (_, i) => `${i},${ids[i]},${ids[6 + (i % 3)] ?? ''},${i < 3 ? ids[9 + i] : ''}`)];
    rows[0] = ',train,val,test';
    writeFileSync(join(root, 'splits_0.csv'), rows.join('\n') + '\n');
    writeFileSync(join(root, 'ids.json'), JSON.stringify(ids));
    return [
      {
        name: 'split',
        files: [
          { path: 'split.json', kind: 'json' },
          { path: 'splits_0.csv', kind: 'csv' },
        ],
      },
    ];
  },
  async read(root) {
    const ids = Array.from({ length: 12 }, (_, i) => `slide_${String(i).padStart(3, '0')}`);
    readSplitFile(join(root, 'split.json'), { ids });
    readSplitFile(join(root, 'splits_0.csv'), { ids });
  },
};

/** Label tables (CLAM's dataset CSV). */
const labelsTarget: FuzzTarget = {
  name: 'labels',
  reader: 'readLabelCsv with a class-name map (normal, tumor)',
  async makeSeeds(dir) {
    const root = join(dir, 'labels');
    mkdirSync(root, { recursive: true });
    const lines = ['case_id,slide_id,label', ...Array.from({ length: 20 }, (_, i) => `case_${i},slide_${i}.svs,${i % 3 === 0 ? 'tumor' : 'normal'}`)];
    writeFileSync(join(root, 'labels.csv'), lines.join('\n') + '\n');
    const numeric = ['slide_id,label', ...Array.from({ length: 20 }, (_, i) => `slide_${i},${i % 2}`)];
    writeFileSync(join(root, 'numeric.csv'), numeric.join('\n') + '\n');
    return [
      {
        name: 'labels',
        files: [
          { path: 'labels.csv', kind: 'csv' },
          { path: 'numeric.csv', kind: 'csv' },
        ],
      },
    ];
  },
  async read(root) {
    readLabelCsv(join(root, 'labels.csv'), { labelMap: { normal: 0, tumor: 1 } });
    readLabelCsv(join(root, 'numeric.csv'));
  },
};

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** PyTorch checkpoints of the official code (zip, pickle, tensor storages), as `sasha import-reference` reads them. */
const torchTarget: FuzzTarget = {
  name: 'torch-reference',
  reader: 'hafedFromReference, stateMlpFromReference and actorCriticFromReference on checkpoints of the official code (zip with CRCs, pickle, storages)',
  async makeSeeds(dir) {
    const root = join(dir, 'reference');
    mkdirSync(root, { recursive: true });
    for (const f of ['hafed.pt', 'tsu.pt', 'policy.pt']) cpSync(join(FIXTURES, 'reference', f), join(root, f));
    return [{ name: 'reference', files: ['hafed.pt', 'tsu.pt', 'policy.pt'].map((path) => ({ path, kind: 'pt' as const })) }];
  },
  async read(root) {
    const load = (f: string) => ({ bytes: new Uint8Array(readFileSync(join(root, f))), name: f });
    hafedFromReference(load('hafed.pt'), { k: 16 }).model.dispose();
    stateMlpFromReference(load('tsu.pt')).model.dispose();
    actorCriticFromReference(load('policy.pt')).model.dispose();
  },
};

/** ONNX encoders, as `sasha extract --encoder model.onnx` loads and runs them (ONNX Runtime in Node). */
const onnxTarget: FuzzTarget = {
  name: 'onnx',
  reader: 'loadOnnxEncoder (checks, then an ONNX Runtime session), then encodeAsync of two 32-pixel patches',
  async makeSeeds(dir) {
    const root = join(dir, 'onnx');
    mkdirSync(root, { recursive: true });
    for (const f of ['cnn.onnx', 'cnn_fp16.onnx']) cpSync(join(FIXTURES, 'onnx', f), join(root, f));
    return [
      { name: 'onnx', files: ['cnn.onnx', 'cnn_fp16.onnx'].map((path) => ({ path, kind: 'onnx' as const })) },
    ];
  },
  async read(root) {
    for (const f of ['cnn.onnx', 'cnn_fp16.onnx']) {
      const enc = await loadOnnxEncoder(join(root, f), { inputSize: 32 });
      const x = tf.zeros([2, 32, 32, 3]) as tf.Tensor4D;
      try {
        (await enc.encodeAsync(x)).dispose();
      } finally {
        x.dispose();
        await enc.release();
      }
    }
  },
};

/** Every target, by name. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [tiffTarget, h5Target, partsTarget, clamTarget, modelTarget, splitTarget, labelsTarget, torchTarget, onnxTarget];

/** The target named `name`. */
export function fuzzTarget(name: string): FuzzTarget {
  const t = FUZZ_TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target '${name}' (have ${FUZZ_TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
