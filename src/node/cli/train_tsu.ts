/**
 * `sasha train tsu`: trains the TSU network f_S of a model directory that holds a trained
 * HAFED (see `model_dir.ts`). It first writes V = HAFED stage 1 of U for every slide of the
 * feature files to `DIR/v.h5` (the reference's step 4, float32 `feat` (N, d) per slide), then trains f_S
 * on Z and V, and saves it to `DIR/tsu/`.
 *
 * ```
 * DIR/v.h5                    V of every slide (reused while the HAFED is unchanged)
 * DIR/tsu/                    the trained f_S (model.json + weights), loadable with StateMlp.load
 * DIR/checkpoints/tsu/best/   the best f_S so far, written at every improvement
 * DIR/checkpoints/tsu/last/   the resumable training state (every 10 epochs and at the end)
 * ```
 *
 * @packageDocumentation
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../../core/errors.js';
import { Hafed } from '../../hafed/index.js';
import { DEFAULT_TRAIN_TSU_CONFIG, StateMlp, trainTsu } from '../../tsu/index.js';
import { H5FeatureDataset, readSplitFile } from '../h5/index.js';
import { fileCheckpointStore, fileIO } from '../io/file_io.js';
import { loadModelComponent, readModelManifest, updateModelManifest } from '../model_dir.js';
import { folderLockOf, numberFlag, recordedFlags, requireString, type CommandSpec } from './args.js';
import { PRESET_FLAG, presetDefaultHelp, presetFromFlag } from './presets.js';
import { progressBars } from './progress_bar.js';
import { H5Writer } from '../h5/h5_writer.js';

/** File name of the cached V in a model directory. */
export const V_FILE = 'v.h5';

/** The manifest entry `sasha train tsu` writes. */
export interface TsuManifestEntry {
  /** Directory of the saved f_S, relative to the model directory. */
  path: string;
  /** The resolved trainTsu config. */
  train: Record<string, unknown>;
  bestEpoch: number;
  bestValMse: number;
  identityValMse: number;
  /** The training flags it was trained with (see `recordedFlags`); absent in older directories. */
  flags?: Record<string, string>;
}

/** The manifest entry of the cached V. */
export interface AggregatedManifestEntry {
  /** The h5 file, relative to the model directory. */
  path: string;
  /** The HAFED `best` entry it was computed with (V is recomputed when it changes). */
  hafedBest: unknown;
  /** Slides in the file. */
  slides: number;
}

/** `sasha train tsu`. */
export const trainTsuCommand: CommandSpec = {
  name: 'train tsu',
  summary: 'train the TSU network f_S of a model directory (after sasha train hafed)',
  flags: {
    model: { type: 'string', help: 'model directory written by sasha train hafed' },
    preset: PRESET_FLAG,
    epochs: { type: 'string', help: presetDefaultHelp('training epochs (the camelyon16 value is labelled for SASHA-0.2; 200 for SASHA-0.1)', (p) => p.tsu.epochs) },
    seed: { type: 'string', help: 'seed of anchors, shuffles and initial weights', default: String(DEFAULT_TRAIN_TSU_CONFIG.seed) },
    lr: { type: 'string', help: presetDefaultHelp('peak learning rate of AdamW (half cosine to 0)', (p) => p.tsu.learningRate) },
    'weight-decay': { type: 'string', help: presetDefaultHelp('AdamW weight decay', (p) => p.tsu.weightDecay) },
    tau: { type: 'string', help: presetDefaultHelp('cosine threshold of the similar set; the policy uses the same', (p) => p.tsu.tau) },
    resume: { type: 'boolean', help: 'continue from DIR/checkpoints/tsu/last when it exists' },
  },
  lock: (args) => folderLockOf(args, 'model', 'train tsu'),
  async run(args, io) {
    const cmd = 'train tsu';
    const dir = path.resolve(requireString(args, 'model', cmd));
    const manifest = readModelManifest(dir);
    const { preset } = presetFromFlag(args, manifest.preset);
    const epochs = numberFlag(args, 'epochs', preset.tsu.epochs, { min: 1, integer: true });
    const seed = numberFlag(args, 'seed', DEFAULT_TRAIN_TSU_CONFIG.seed, { integer: true });
    const learningRate = numberFlag(args, 'lr', preset.tsu.learningRate, { min: 0, minExclusive: true });
    const weightDecay = numberFlag(args, 'weight-decay', preset.tsu.weightDecay, { min: 0 });
    const tau = numberFlag(args, 'tau', preset.tsu.tau, { min: 0, minExclusive: true, max: 1 });
    const t0 = Date.now();

    if (!manifest.hafed) throw new DataError(`The model directory '${dir}' holds no HAFED; train one first with 'sasha train hafed --out ${dir}'.`);
    if (!manifest.data) {
      throw new DataError(`The model directory '${dir}' records no feature files (it was imported with sasha import-reference); import it again with --lr-h5, --hr-h5 and --split.`);
    }
    if (manifest.hafed.input !== 'highRes' || !manifest.data.hrH5) {
      throw new DataError(
        `The HAFED in '${dir}' was trained on low-res features only; the TSU needs its stage 1 (V from U). ` +
          `Train it with --hr-h5 (without --input lowRes).`,
      );
    }
    const { lrH5, hrH5, split: splitPath } = manifest.data;
    const vH5 = path.join(dir, V_FILE);
    const bars = progressBars(io.interactive);
    try {
      // 1. V = HAFED stage 1 of U, once per HAFED.
      const previous = manifest.aggregated as AggregatedManifestEntry | undefined;
      const fresh = previous && existsSync(vH5) && JSON.stringify(previous.hafedBest) === JSON.stringify(manifest.hafed.best);
      if (!fresh) {
        const hafed = await loadModelComponent(dir, manifest.hafed.path, 'HAFED', (io) => Hafed.load(io));
        const source = await H5FeatureDataset.open({ lrH5, hrH5 });
        try {
          const ids = source.ids;
          io.log(`Computing V (HAFED stage 1) for ${ids.length} slides into ${vH5}.`);
          const writer = await H5Writer.create(vH5);
          try {
            for (let s = 0; s < ids.length; s++) {
              const bag = await source.load(ids[s], ['highRes']);
              try {
                const v = hafed.aggregate(bag.highRes!);
                const values = v.dataSync() as Float32Array;
                writer.createGroup(ids[s]);
                writer.writeFloat32(`${ids[s]}/feat`, values, v.shape);
                if (bag.label !== undefined) writer.writeNumberAttr(ids[s], 'label', bag.label);
                v.dispose();
              } finally {
                bag.highRes?.dispose();
              }
              bars.onProgress({ task: 'compute V', done: s + 1, total: ids.length });
            }
            await writer.commit();
          } catch (e) {
            writer.abort();
            throw e;
          }
          await updateModelManifest(dir, {
            aggregated: { path: V_FILE, hafedBest: manifest.hafed.best, slides: ids.length } satisfies AggregatedManifestEntry,
          });
        } finally {
          hafed.dispose();
          source.close();
        }
      } else {
        io.log(`Reusing V from ${vH5} (computed with the current HAFED).`);
      }

      // 2. f_S on Z and V.
      const dataset = await H5FeatureDataset.open({ lrH5, vH5 });
      try {
        const split = readSplitFile(splitPath, dataset);
        if (split.train.length === 0) throw new DataError(`The split '${splitPath}' lists no training slide.`);
        if (split.val.length === 0) io.log('No validation slides in the split: the last epoch is kept (no model selection).');
        io.log(`Training f_S on ${split.train.length} slides, validating on ${split.val.length}; d = ${dataset.dim}, ${epochs} epochs.`);
        mkdirSync(dir, { recursive: true });
        const result = await trainTsu({
          dataset,
          split,
          config: { epochs, seed, learningRate, weightDecay, tau },
          onProgress: bars.onProgress,
          checkpoint: fileCheckpointStore(path.join(dir, 'checkpoints', 'tsu')),
          resume: Boolean(args.values.resume),
        });
        const model: StateMlp = result.model;
        try {
          await model.save(fileIO(path.join(dir, 'tsu')));
          await updateModelManifest(dir, {
            tsu: {
              path: 'tsu',
              train: { ...result.config },
              bestEpoch: result.bestEpoch,
              bestValMse: result.bestValMse,
              identityValMse: result.identityValMse,
              flags: recordedFlags(args),
            } satisfies TsuManifestEntry,
          });
          return {
            model: dir,
            epochs: result.history.length,
            bestEpoch: result.bestEpoch,
            bestValMse: result.bestValMse,
            identityValMse: result.identityValMse,
            trainSlides: split.train.length,
            valSlides: split.val.length,
            params: model.numParams,
            seconds: (Date.now() - t0) / 1000,
          };
        } finally {
          model.dispose();
        }
      } finally {
        dataset.close();
      }
    } finally {
      bars.stop();
    }
  },
};
