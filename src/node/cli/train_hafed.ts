/**
 * `sasha train hafed`: trains HAFED on feature files in the reference layout and writes a model
 * directory (see `model_dir.ts`).
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import { subsetDataset, type SlideDataset } from '../../core/data.js';
import { trainHafed, DEFAULT_HAFED_TRAIN_CONFIG, type HafedInput } from '../../hafed/index.js';
import { H5FeatureDataset, readSplitFile } from '../h5/index.js';
import { fileCheckpointStore, fileIO } from '../io/file_io.js';
import { updateModelManifest } from '../model_dir.js';
import { folderLockOf, numberFlag, recordedFlags, requireString, type CommandSpec } from './args.js';
import { PRESET_FLAG, presetDefaultHelp, presetFromFlag } from './presets.js';
import { progressBars } from './progress_bar.js';
import { createHafedWorkerPool } from '../hafed_workers.js';
import { createNativeStage1 } from '../native_stage1.js';

/**
 * Checks that every slide of `ids` has a label that is a class index below `numClasses`.
 * @throws DataError naming the slide, its label, the file and the fix.
 */
export function checkLabels(dataset: Pick<SlideDataset, 'ids' | 'labels'>, ids: readonly string[], numClasses: number, file: string): void {
  const index = new Map(dataset.ids.map((id, i) => [id, i] as const));
  for (const id of ids) {
    const label = dataset.labels[index.get(id)!];
    if (label === undefined || label < 0) {
      throw new DataError(`Slide '${id}' has no label in '${file}'. Every training and validation slide needs one: write it (extract with --labels) or move the slide to the test list.`);
    }
    if (!(Number.isInteger(label) && label < numClasses)) {
      throw new DataError(
        `Slide '${id}' has label ${label} in '${file}', outside the ${numClasses} classes (0 to ${numClasses - 1}). ` +
          `Fix the label, or pass --num-classes ${label + 1} if the cohort has ${label + 1} classes.`,
      );
    }
  }
}

/** `sasha train hafed`. */
export const trainHafedCommand: CommandSpec = {
  name: 'train hafed',
  summary: 'train HAFED (feature aggregator + slide classifier) on h5 feature files',
  flags: {
    'lr-h5': { type: 'string', help: 'low-res features Z (reference h5 layout, with labels)' },
    'hr-h5': { type: 'string', help: 'high-res features U (reference h5 layout); not needed with --input lowRes' },
    split: { type: 'string', help: 'split JSON (train_names/val_names/test_names) or CLAM split CSV' },
    out: { type: 'string', help: 'model directory to write (created if missing)' },
    preset: PRESET_FLAG,
    epochs: { type: 'string', help: presetDefaultHelp('training epochs', (p) => p.hafedTrain.epochs) },
    seed: { type: 'string', help: 'seed of initialisation, slide order and masking', default: '5' },
    lr: { type: 'string', help: presetDefaultHelp('peak learning rate of AdamW', (p) => p.hafedTrain.lr) },
    'weight-decay': { type: 'string', help: presetDefaultHelp('AdamW weight decay', (p) => p.hafedTrain.weightDecay) },
    branches: { type: 'string', help: presetDefaultHelp('stage-2 attention branches M2', (p) => p.hafed.numBranches2) },
    'mask-drop': { type: 'string', help: presetDefaultHelp('STKIM masked fraction', (p) => p.hafed.maskDrop) },
    input: { type: 'string', help: "'highRes' (HAFED on U) or 'lowRes' (stage 2 on Z only, a baseline)", default: 'highRes' },
    'num-classes': { type: 'string', help: 'number of classes C; every label must be a class index 0..C-1', default: '2' },
    resume: { type: 'boolean', help: 'continue from DIR/checkpoints/hafed/last when it exists' },
    workers: { type: 'string', help: 'worker threads for stage 1 besides this one (0: none; 1 uses 2 cores)', default: '0' },
    'native-stage1': { type: 'boolean', help: "run stage 1 on ONNX Runtime's CPU kernels (needs onnxruntime-node; about 2x faster than wasm); not with --workers" },
  },
  lock: (args) => folderLockOf(args, 'out', 'train hafed'),
  async run(args, io) {
    const cmd = 'train hafed';
    const input = (args.values.input ?? 'highRes') as HafedInput;
    if (input !== 'highRes' && input !== 'lowRes') {
      throw new ValueError(`Expected --input to be 'highRes' or 'lowRes', but got '${String(input)}'.`);
    }
    const lrH5 = path.resolve(requireString(args, 'lr-h5', cmd));
    const hrH5Flag = args.values['hr-h5'];
    if (input === 'highRes' && (typeof hrH5Flag !== 'string' || hrH5Flag === '')) {
      throw new ValueError(`'sasha ${cmd}' needs --hr-h5 (high-res features U), or --input lowRes to train on Z alone.`);
    }
    const hrH5 = typeof hrH5Flag === 'string' && hrH5Flag !== '' ? path.resolve(hrH5Flag) : undefined;
    const splitPath = path.resolve(requireString(args, 'split', cmd));
    const out = path.resolve(requireString(args, 'out', cmd));
    const { name: presetName, preset } = presetFromFlag(args);
    const epochs = numberFlag(args, 'epochs', preset.hafedTrain.epochs, { min: 1, integer: true });
    const seed = numberFlag(args, 'seed', 5, { integer: true });
    const lr = numberFlag(args, 'lr', preset.hafedTrain.lr, { min: 0, minExclusive: true });
    const weightDecay = numberFlag(args, 'weight-decay', preset.hafedTrain.weightDecay, { min: 0 });
    const numBranches2 = numberFlag(args, 'branches', preset.hafed.numBranches2, { min: 1, integer: true });
    const maskDrop = numberFlag(args, 'mask-drop', preset.hafed.maskDrop, { min: 0, max: 1 });
    const numClasses = numberFlag(args, 'num-classes', 2, { min: 2, integer: true });
    const workerCount = numberFlag(args, 'workers', 0, { min: 0, integer: true });
    const native = Boolean(args.values['native-stage1']);
    if (native && workerCount > 0) throw new ValueError('Pass either --native-stage1 or --workers, not both.');

    const t0 = Date.now();
    // A high-res file given with --input lowRes is recorded for the later stages: it is opened
    // too, so that its slides, N and d are checked against the low-res file now.
    const dataset = await H5FeatureDataset.open({ lrH5, ...(hrH5 ? { hrH5 } : {}) });
    const bars = progressBars(io.interactive);
    const workers =
      input !== 'highRes' ? undefined : native ? await createNativeStage1() : workerCount > 0 ? await createHafedWorkerPool(workerCount) : undefined;
    try {
      const split = readSplitFile(splitPath, dataset);
      if (split.train.length === 0) throw new ValueError(`The split '${splitPath}' lists no training slide.`);
      checkLabels(dataset, [...split.train, ...split.val], numClasses, lrH5);
      if (input === 'highRes') {
        // Z is not read to train on U, but the TSU and the policy read it from the files recorded here.
        await dataset.verifyFinite([...split.train, ...split.val, ...split.test], ['lowRes'], bars.onProgress);
      }
      const train = subsetDataset(dataset, split.train);
      const val = split.val.length > 0 ? subsetDataset(dataset, split.val) : undefined;
      if (!val) io.log('No validation slides in the split: the last epoch is kept (no model selection).');
      io.log(
        `Training HAFED (input ${input}) on ${split.train.length} slides, validating on ${split.val.length}; ` +
          `d = ${dataset.dim}${input === 'highRes' ? `, k = ${dataset.k}` : ''}, ${numClasses} classes, ${epochs} epochs.`,
      );
      mkdirSync(out, { recursive: true });
      const checkpoint = fileCheckpointStore(path.join(out, 'checkpoints', 'hafed'));
      const { model, best, history } = await trainHafed({
        train,
        val,
        model: { dim: dataset.dim, ...(dataset.k !== undefined ? { k: dataset.k } : {}), numClasses, numBranches2, maskDrop, input, seed },
        config: { epochs, lr, weightDecay },
        seed,
        checkpoint,
        resume: Boolean(args.values.resume),
        onProgress: bars.onProgress,
        workers,
      });
      const params = model.countParams();
      try {
        await model.save(fileIO(path.join(out, 'hafed')));
        await updateModelManifest(out, {
          dim: model.dim,
          k: model.k,
          numClasses: model.numClasses,
          data: { lrH5, ...(hrH5 ? { hrH5 } : {}), split: splitPath },
          preset: presetName,
          hafed: {
            path: 'hafed',
            input,
            config: { ...model.config },
            train: { ...DEFAULT_HAFED_TRAIN_CONFIG, epochs, lr, weightDecay },
            seed,
            flags: recordedFlags(args),
            best: { epoch: best.epoch, score: best.score, val: best.val ?? null },
          },
        });
      } finally {
        model.dispose();
      }
      const last = history[history.length - 1];
      return {
        model: out,
        input,
        preset: presetName,
        branches: numBranches2,
        epochs: history.length,
        bestEpoch: best.epoch + 1,
        valAccuracy: best.val?.accuracy ?? null,
        valAuc: best.val?.auc ?? null,
        valF1: best.val?.f1 ?? null,
        trainLoss: last?.loss ?? null,
        trainSlides: split.train.length,
        valSlides: split.val.length,
        params,
        seconds: (Date.now() - t0) / 1000,
      };
    } finally {
      bars.stop();
      dataset.close();
      await workers?.close();
    }
  },
};
