/**
 * `sasha extract SLIDE... --out DIR [--encoder builtin|PATH] [--lr-level L --hr-level L]`:
 * features of every slide in the reference layout, resumable per slide, shardable.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError, StateError, ValueError } from '../../core/errors.js';
import { extractCohort, type CohortSlide, type Normalization } from '../../wsi/index.js';
import { readLabelCsv } from '../h5/feature_files.js';
import { loadEncoder } from '../encoder_loader.js';
import { H5FeatureSink } from '../feature_sink.js';
import { writeFileAtomic } from '../io/file_io.js';
import { removeStaleTempFiles } from '../io/folder_lock.js';
import { openSlide, slideIdFromPath } from '../open_slide.js';
import { canReadInWorker, openSlideInWorker } from '../worker_slide_source.js';
import {
  COHORT_FILE,
  SHARD_COUNT_FLAG,
  SHARD_FLAG,
  abortOnSigint,
  cohortLock,
  describeShard,
  numberFlag,
  parseShard,
  requireString,
  selectShard,
  type CommandSpec,
} from './args.js';
import { ENCODER_FLAGS, encoderOptionsFromFlags, isOnnxPath, onnxSettings, type OnnxExtractSettings } from './encoder_flags.js';
import { progressBars } from './progress_bar.js';
import { TISSUE_FLAGS, gridFromFlags, levelFromFlags, listSlides, tissueFromFlags } from './wsi_flags.js';

/** The settings an output directory was extracted with (`extract.json`); a rerun must match them. */
interface ExtractSettings {
  encoder: string;
  dim: number;
  inputSize: number;
  normalization: Normalization;
  lowRes: unknown;
  highRes: unknown;
  tissue: unknown;
  grid: unknown;
  dtype: 'float16' | 'float32';
  /** How patches were prepared for an ONNX encoder (so that inference prepares them the same way). */
  onnx?: OnnxExtractSettings;
}

/** The `sasha extract` command. */
export const extractCommand: CommandSpec = {
  name: 'extract',
  summary: 'extract low-res features Z and high-res features U of each slide into h5 files (reference layout), resumable',
  positionals: 'SLIDE...',
  flags: {
    out: { type: 'string', help: 'output directory (parts/{lr,hr}/<id>.h5, then lr.h5 and hr.h5)' },
    encoder: { type: 'string', help: "'builtin' (random CNN, for tests), an .onnx file (ONNX Runtime) or a tfjs model directory", default: 'builtin' },
    'lr-level': { type: 'string', help: 'low-res level by index', default: '3' },
    'lr-mpp': { type: 'string', help: 'low-res level by micrometres per pixel' },
    'lr-magnification': { type: 'string', help: 'low-res level by magnification' },
    'hr-level': { type: 'string', help: 'high-res level by index', default: '1' },
    'hr-mpp': { type: 'string', help: 'high-res level by micrometres per pixel' },
    'hr-magnification': { type: 'string', help: 'high-res level by magnification' },
    'no-hr': { type: 'boolean', help: 'low-res features only' },
    dim: { type: 'string', help: 'feature width d (builtin: its width; a model: checked)' },
    ...ENCODER_FLAGS,
    seed: { type: 'string', help: 'seed of the builtin encoder', default: '0' },
    'batch-size': { type: 'string', help: 'patches per encoder call', default: '32' },
    reader: { type: 'string', help: "where slides are read: 'worker' (a worker thread, beside the encoder) or 'main'", default: 'worker' },
    dtype: { type: 'string', help: 'float16 (as the reference) or float32', default: 'float16' },
    labels: { type: 'string', help: 'CSV with slide_id and label columns (label attribute)' },
    classes: { type: 'string', help: 'class names in label order, for string labels (e.g. normal,tumor)' },
    ...TISSUE_FLAGS,
    'no-merge': { type: 'boolean', help: 'do not merge the per-slide files into lr.h5 / hr.h5' },
    shard: SHARD_FLAG,
    'shard-count': SHARD_COUNT_FLAG,
  },
  lock: (args) => cohortLock(args, 'extract'),
  async run(args, io) {
    const out = requireString(args, 'out', 'extract');
    const files = listSlides(args.positionals, 'extract');
    const all = files.map((file) => ({ file, id: slideIdFromPath(file) }));
    const dup = all.find((s, i) => all.findIndex((t) => t.id === s.id) !== i);
    if (dup) throw new ValueError(`Two slides have the id '${dup.id}' (${all.filter((s) => s.id === dup.id).map((s) => s.file).join(', ')}); slide ids must be unique.`);
    const shard = parseShard(args);
    const mine = selectShard(all, shard);
    const highRes = !args.values['no-hr'];
    const lowResSpec = levelFromFlags(args, 'lr-', { level: 3 });
    const highResSpec = highRes ? levelFromFlags(args, 'hr-', { level: 1 }) : undefined;
    const tissue = tissueFromFlags(args);
    const grid = gridFromFlags(args);
    const dtype = (args.values.dtype as string | undefined) ?? 'float16';
    if (dtype !== 'float16' && dtype !== 'float32') throw new ValueError(`Expected --dtype to be float16 or float32, but got '${dtype}'.`);
    const encoderOptions = encoderOptionsFromFlags(args);
    const normalization: Normalization = encoderOptions.normalization ?? 'imagenet';
    const encoderArg = (args.values.encoder as string | undefined) ?? 'builtin';
    // recorded in extract.json: an absolute path lets 'sasha infer' find the model from anywhere
    const encoderPath = isOnnxPath(encoderArg) ? resolve(encoderArg) : encoderArg;

    let labels: Map<string, number> | undefined;
    if (typeof args.values.labels === 'string') {
      const classes = typeof args.values.classes === 'string' ? args.values.classes.split(',').map((c) => c.trim()) : undefined;
      labels = readLabelCsv(args.values.labels, { labelMap: classes ? Object.fromEntries(classes.map((c, i) => [c, i])) : undefined });
    }

    const encoder = await loadEncoder({
      ...encoderOptions,
      encoder: encoderPath,
      dim: args.values.dim !== undefined ? numberFlag(args, 'dim', 0, { integer: true, min: 1 }) : undefined,
      normalization,
      seed: numberFlag(args, 'seed', 0, { integer: true }),
    });
    const interrupt = abortOnSigint(io, 'Stopping after the current batch (the slide in progress is not written)...');
    const bars = progressBars(io.interactive);
    const t0 = performance.now();
    try {
      // The settings of an output directory are fixed by its first run: features from another
      // encoder or other levels must never be mixed into one cohort.
      const settings: ExtractSettings = {
        encoder: encoder.name,
        dim: encoder.dim,
        inputSize: encoder.inputSize,
        normalization,
        lowRes: lowResSpec,
        highRes: highResSpec ?? null,
        tissue,
        grid,
        dtype,
        ...(isOnnxPath(encoderPath) ? { onnx: onnxSettings(encoderOptions) } : {}),
      };
      const settingsPath = join(out, 'extract.json');
      if (existsSync(settingsPath)) {
        const before = JSON.parse(readFileSync(settingsPath, 'utf8')) as ExtractSettings;
        if (JSON.stringify(before) !== JSON.stringify(settings)) {
          throw new DataError(
            `'${out}' holds features extracted with other settings (${settingsPath}: ${JSON.stringify(before)}). ` +
              'Use another --out, or delete that directory to start over.',
          );
        }
      } else await writeFileAtomic(settingsPath, JSON.stringify(settings, null, 2) + '\n');

      const sink = new H5FeatureSink(out, { highRes, dtype });
      // Temporary files left by killed runs of this host (runs of other hosts keep theirs).
      for (const d of [out, join(out, 'parts', 'lr'), join(out, 'parts', 'hr')]) removeStaleTempFiles(d);
      await writeFileAtomic(join(out, COHORT_FILE), JSON.stringify({ ids: all.map((s) => s.id) }, null, 2) + '\n');
      if (shard.count > 1) io.log(`Extracting ${describeShard(shard)}: ${mine.length} of ${all.length} slides.`);
      let reader = (args.values.reader as string | undefined) ?? 'worker';
      if (reader !== 'worker' && reader !== 'main') throw new ValueError(`Expected --reader to be worker or main, but got '${reader}'.`);
      if (reader === 'worker' && !canReadInWorker()) {
        io.log('The slide worker module is missing from this build: reading on the main thread.');
        reader = 'main';
      }
      const slides: CohortSlide[] = mine.map(({ file, id }) => ({
        id,
        label: labels?.get(id),
        open: () => (reader === 'worker' ? openSlideInWorker(file) : openSlide(file)),
      }));
      if (labels) {
        const unlabelled = mine.filter((s) => !labels!.has(s.id)).map((s) => s.id);
        if (unlabelled.length > 0) io.log(`No label for ${unlabelled.length} slide(s) in ${String(args.values.labels)}: ${unlabelled.slice(0, 5).join(', ')}${unlabelled.length > 5 ? ', ...' : ''}.`);
      }
      const res = await extractCohort(slides, {
        encoder,
        sink,
        tiling: { tissue, grid, lowRes: lowResSpec, highRes: highResSpec },
        config: { batchSize: numberFlag(args, 'batch-size', 32, { integer: true, min: 1 }) },
        onProgress: bars.onProgress,
        onWarning: io.log,
        signal: interrupt.signal,
      });
      const seconds = (performance.now() - t0) / 1000;
      let merged: Record<string, string> | null = null;
      const ids = all.map((s) => s.id);
      const okIds = ids.filter((id) => sink.complete([id]));
      if (!args.values['no-merge'] && sink.complete(ids)) {
        merged = { ...(await sink.merge(ids, sink.mergedPaths, bars.onProgress)) };
      } else if (!args.values['no-merge'] && shard.count === 1 && okIds.length > 0 && res.failed.length > 0) {
        // Unsharded run with failed slides: merge what succeeded, so training can start.
        merged = { ...(await sink.merge(okIds, sink.mergedPaths, bars.onProgress)) };
        io.log(`Merged ${okIds.length} of ${ids.length} slides; the failed ones are listed in the results.`);
      }
      if (res.extracted.length === 0 && res.skipped.length === 0 && res.failed.length > 0) {
        throw new DataError(`No slide could be extracted. First error: ${res.failed[0].error}`);
      }
      return {
        slides: mine.length,
        extracted: res.extracted.length,
        skipped: res.skipped.length,
        failed: res.failed,
        patches: res.patches,
        subPatches: res.subPatches,
        seconds: +seconds.toFixed(2),
        patchesPerSecond: +((res.patches + res.subPatches) / Math.max(seconds, 1e-9)).toFixed(1),
        dim: encoder.dim,
        encoder: encoder.name,
        merged,
        out,
      };
    } catch (e) {
      if (e instanceof StateError && interrupt.signal.aborted) throw new StateError('Extraction stopped; run the same command again to resume.');
      throw e;
    } finally {
      interrupt.dispose();
      bars.stop();
      encoder.dispose();
    }
  },
};
