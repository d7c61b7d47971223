/**
 * `sasha infer SLIDE... --model DIR --budget 0.2 --out DIR`: SASHA on slides from their
 * pixels, with lazy zoom (only the sub-patches of the patches the policy picks are read at high
 * resolution). Resumable per slide, shardable, and a bad slide is reported while the run goes on.
 * ```
 * OUT/infer.json                 the settings of the run (a rerun into OUT must use the same)
 * OUT/slides/<id>.json           per slide: prediction and its probability, class probabilities,
 *                                zoomed patches in order (index, x, y), attention, coordinates,
 *                                counts, seconds and timings
 * OUT/heatmaps/<id>.png          attention over the thumbnail, zoomed patches numbered (not with --no-heatmap)
 * OUT/predictions.csv            one row per slide (predictions.part-<i>-of-<n>.csv with --shard i/n)
 * ```
 * By default the encoder, levels, tissue and grid settings are those `sasha extract` recorded
 * for the features the model was trained on (`extract.json` next to them).
 *
 * @packageDocumentation
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError, SashaError, ShapeError, StateError, ValueError } from '../../core/errors.js';
import {
  DEFAULT_ANALYZE_SLIDE_CONFIG,
  POLICY_NAMES,
  analysisToJson,
  analyzeSlide,
  heatmapDataFromJson,
  type AnalyzeSlideConfig,
  type PolicyName,
  type SlideAnalysisJson,
  type SashaModel,
} from '../../pipeline/index.js';
import type { Normalization, PatchEncoder } from '../../wsi/index.js';
import { parseBuiltinEncoderName } from '../../wsi/encoders/builtin.js';
import type { LevelSpec, SlideSource } from '../../wsi/slide_source.js';
import { readLabelCsv } from '../h5/feature_files.js';
import { loadEncoder } from '../encoder_loader.js';
import { writeHeatmap } from '../heatmap.js';
import { writeFileAtomic } from '../io/file_io.js';
import { loadSashaModel, readModelDirExtractSettings } from '../load_model.js';
import { readModelManifest, type ModelManifest } from '../model_dir.js';
import { openSlide, slideIdFromPath } from '../open_slide.js';
import { canReadInWorker, openSlideInWorker } from '../worker_slide_source.js';
import {
  COHORT_FILE,
  SHARD_COUNT_FLAG,
  SHARD_FLAG,
  abortOnSigint,
  cohortLock,
  numberFlag,
  parseShard,
  requireString,
  selectShard,
  type CommandIO,
  type CommandSpec,
  type ParsedArgs,
} from './args.js';
import { ENCODER_FLAGS, encoderOptionsFromFlags, isOnnxPath, type OnnxExtractSettings } from './encoder_flags.js';
import { progressBars } from './progress_bar.js';
import { TISSUE_FLAGS, gridFromFlags, levelFromFlags, listSlides, tissueFromFlags } from './wsi_flags.js';

/** What a rerun into the same output directory must match. */
interface InferSettings {
  model: string;
  mode: AnalyzeSlideConfig['mode'];
  budget: number;
  policy: PolicyName | null;
  encoder: string;
  lowRes: LevelSpec;
  highRes: LevelSpec;
  tissue: unknown;
  grid: unknown;
  seed: number;
}

/** One slide's JSON as written: its id, file and label (when known), then {@link analysisToJson}. */
export type SlideJson = { id: string; file: string; label?: number } & SlideAnalysisJson;

function flagGiven(args: ParsedArgs, names: string[]): boolean {
  return names.some((n) => args.values[n] !== undefined);
}

/** The encoder: --encoder, else the one the training features were extracted with, else the built-in CNN. */
async function encoderFor(args: ParsedArgs, extract: Record<string, unknown> | null, dim: number, io: CommandIO): Promise<PatchEncoder> {
  const flags = encoderOptionsFromFlags(args);
  const recordedOnnx = (extract?.onnx ?? {}) as OnnxExtractSettings;
  const common = {
    ...flags,
    normalization: flags.normalization ?? ((extract?.normalization as Normalization | undefined) ?? 'imagenet'),
  };
  const given = args.values.encoder as string | undefined;
  if (given !== undefined) {
    // the built-in CNN is built at the model's d; a model from disk has its own (checked against the model's by the caller)
    return loadEncoder({ ...common, encoder: given, dim: given === 'builtin' ? dim : undefined, seed: numberFlag(args, 'seed', 0, { integer: true }) });
  }
  const name = typeof extract?.encoder === 'string' ? extract.encoder : undefined;
  if (name) {
    const b = parseBuiltinEncoderName(name);
    if (b) return loadEncoder({ ...common, encoder: 'builtin', dim: b.dim, inputSize: common.inputSize ?? b.inputSize, seed: b.seed });
    // an ONNX encoder prepares patches as recorded at extraction, unless a flag says otherwise
    const onnx = isOnnxPath(name) ? { ...recordedOnnx, ...flags } : {};
    return loadEncoder({ ...common, ...onnx, encoder: name, inputSize: common.inputSize ?? (extract?.inputSize as number | undefined) });
  }
  io.log("No encoder given and none recorded with the model's training features: using the built-in CNN (seed 0). Pass --encoder.");
  return loadEncoder({ ...common, encoder: 'builtin', dim, seed: numberFlag(args, 'seed', 0, { integer: true }) });
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The predictions CSV of analysed slides (one row per slide JSON): id, predicted class (and its
 * name with `classes`), class probabilities, the label when known, counts, seconds and the
 * zoomed patches in visit order.
 */
export function predictionsCsv(rows: readonly SlideJson[], c: number, classes?: readonly string[]): string {
  const withLabels = rows.some((r) => r.label !== undefined);
  const header = [
    'slide_id',
    'pred',
    ...(classes ? ['pred_name'] : []),
    ...Array.from({ length: c }, (_, j) => `prob_${j}`),
    ...(withLabels ? ['label'] : []),
    'patches',
    'steps',
    'high_res_read',
    'seconds',
    'visited',
  ];
  const lines = rows.map((r) =>
    [
      r.id,
      r.prediction.label,
      ...(classes ? [classes[r.prediction.label] ?? ''] : []),
      ...r.prediction.probs.map((p) => p.toPrecision(6)),
      ...(withLabels ? [r.label ?? ''] : []),
      r.counts.patches,
      r.counts.steps,
      r.counts.highResRead,
      r.seconds,
      r.visited.map((v) => v.index).join(' '),
    ]
      .map(csvCell)
      .join(','),
  );
  return [header.join(','), ...lines].join('\n') + '\n';
}

/**
 * The `sasha infer` command (registered in `COMMANDS`).
 * @example
 * ```bash
 * sasha infer slides/ --model runs/c16 --budget 0.2 --out runs/c16/infer-0.2 --shard 0/4 --json
 * ```
 * @category Node
 */
export const inferCommand: CommandSpec = {
  name: 'infer',
  summary: 'classify slides from their pixels with SASHA (lazy zoom), per-slide JSON, predictions CSV, heatmaps; resumable',
  positionals: 'SLIDE...',
  flags: {
    model: { type: 'string', help: "model directory ('sasha train all') or a saved SashaModel bundle" },
    budget: { type: 'string', help: 'fraction f of the patches zoomed into (the policy trained for f is used)', default: "the model's only policy" },
    out: { type: 'string', help: 'output directory (slides/<id>.json, predictions.csv, heatmaps/)' },
    policy: { type: 'string', help: `zoom policy: ${POLICY_NAMES.join(', ')}`, default: 'learned' },
    full: { type: 'boolean', help: 'full-resolution baseline: encode every sub-patch and run HAFED on V (no zoom)' },
    'no-heatmap': { type: 'boolean', help: 'do not write heatmaps/<id>.png (attention over the thumbnail, zoomed patches numbered)' },
    'heatmap-size': { type: 'string', help: 'longest side of the heatmap thumbnail level', default: '2048' },
    encoder: { type: 'string', help: "'builtin', an .onnx file (ONNX Runtime) or a tfjs model directory", default: "the training features' encoder (extract.json)" },
    ...ENCODER_FLAGS,
    normalization: { ...ENCODER_FLAGS.normalization, default: "the training features' (else imagenet)" },
    seed: { type: 'string', help: 'seed of the builtin encoder (with --encoder builtin) and of the random policy', default: '0' },
    'lr-level': { type: 'string', help: 'low-res level by index', default: "the training features' (else 3)" },
    'lr-mpp': { type: 'string', help: 'low-res level by micrometres per pixel' },
    'lr-magnification': { type: 'string', help: 'low-res level by magnification' },
    'hr-level': { type: 'string', help: 'high-res level by index', default: "the training features' (else 1)" },
    'hr-mpp': { type: 'string', help: 'high-res level by micrometres per pixel' },
    'hr-magnification': { type: 'string', help: 'high-res level by magnification' },
    ...TISSUE_FLAGS,
    'batch-size': { type: 'string', help: 'patches per encoder call in the low-res pass', default: String(DEFAULT_ANALYZE_SLIDE_CONFIG.batchSize) },
    speculate: { type: 'string', help: 'next-best candidates read ahead during the zoom', default: String(DEFAULT_ANALYZE_SLIDE_CONFIG.speculate) },
    reader: { type: 'string', help: "where slides are read: 'worker' (a worker thread, beside the encoder) or 'main'", default: 'worker' },
    labels: { type: 'string', help: 'CSV with slide_id and label columns: adds a label column and the accuracy' },
    classes: { type: 'string', help: 'class names in label order (e.g. normal,tumor): string labels and a pred_name column' },
    shard: SHARD_FLAG,
    'shard-count': SHARD_COUNT_FLAG,
  },
  lock: (args) => cohortLock(args, 'infer'),
  async run(args, io) {
    const cmd = 'infer';
    const modelDir = resolve(requireString(args, 'model', cmd));
    const out = resolve(requireString(args, 'out', cmd));
    const files = listSlides(args.positionals, cmd);
    const all = files.map((file) => ({ file, id: slideIdFromPath(file) }));
    const dup = all.find((s, i) => all.findIndex((t) => t.id === s.id) !== i);
    if (dup) throw new ValueError(`Two slides have the id '${dup.id}' (${all.filter((s) => s.id === dup.id).map((s) => s.file).join(', ')}); slide ids must be unique.`);
    const shard = parseShard(args);
    const mine = selectShard(all, shard);
    const full = Boolean(args.values.full);
    const policyName = ((args.values.policy as string | undefined) ?? 'learned') as PolicyName;
    if (!POLICY_NAMES.includes(policyName)) throw new ValueError(`Expected --policy to be one of ${POLICY_NAMES.join(', ')}, but got '${String(policyName)}'.`);
    const rawBudget = args.values.budget;
    const budgetFlag = rawBudget !== undefined ? Number(rawBudget) : undefined;
    if (budgetFlag !== undefined && !(typeof rawBudget === 'string' && rawBudget.trim() !== '' && budgetFlag > 0 && budgetFlag <= 1)) {
      throw new ValueError(
        `Expected --budget (the fraction f of the patches zoomed into) to be in (0, 1], but got '${String(rawBudget)}'. Use the budget the policy was trained for, e.g. --budget 0.2.`,
      );
    }
    let reader = (args.values.reader as string | undefined) ?? 'worker';
    if (reader !== 'worker' && reader !== 'main') throw new ValueError(`Expected --reader to be worker or main, but got '${reader}'.`);
    if (reader === 'worker' && !canReadInWorker()) {
      io.log('The slide worker module is missing from this build: reading on the main thread.');
      reader = 'main';
    }
    const classes = typeof args.values.classes === 'string' ? args.values.classes.split(',').map((c) => c.trim()) : undefined;
    const labels =
      typeof args.values.labels === 'string'
        ? readLabelCsv(args.values.labels, { labelMap: classes ? Object.fromEntries(classes.map((c, i) => [c, i])) : undefined })
        : undefined;

    const model: SashaModel = await loadSashaModel(modelDir, { budget: budgetFlag, withoutPolicy: full || policyName !== 'learned' });
    let encoder: PatchEncoder | null = null;
    const interrupt = abortOnSigint(io, 'Stopping after the current step (the slide in progress is not written)...');
    const bars = progressBars(io.interactive);
    const t0 = performance.now();
    try {
      let manifest: ModelManifest | null = null;
      try {
        manifest = readModelManifest(modelDir);
      } catch {
        manifest = null;
      }
      const extract = readModelDirExtractSettings(modelDir, manifest);
      const hafed = model.hafed!;
      encoder = await encoderFor(args, extract, hafed.dim, io);
      if (encoder.dim !== hafed.dim) {
        throw new ShapeError(
          `The encoder '${encoder.name}' gives features of width d = ${encoder.dim}, but the model in '${modelDir}' was trained on d = ${hafed.dim}. ` +
            'Pass the encoder the training features were extracted with (--encoder).',
        );
      }
      const lowRes = levelFromFlags(args, 'lr-', (extract?.lowRes as LevelSpec | undefined) ?? { level: 3 }) as LevelSpec;
      const highRes = levelFromFlags(args, 'hr-', (extract?.highRes as LevelSpec | undefined) ?? { level: 1 }) as LevelSpec;
      const tissueFlags = Object.keys(TISSUE_FLAGS).filter((k) => !['patch-size', 'rule', 'min-tissue'].includes(k));
      const tissue = flagGiven(args, tissueFlags) || !extract?.tissue ? tissueFromFlags(args) : (extract.tissue as ReturnType<typeof tissueFromFlags>);
      const grid = flagGiven(args, ['patch-size', 'rule', 'min-tissue']) || !extract?.grid ? gridFromFlags(args) : (extract.grid as ReturnType<typeof gridFromFlags>);
      const budget = full ? 1 : (budgetFlag ?? model.env.budget);
      const config: Partial<AnalyzeSlideConfig> = {
        mode: full ? 'fullResolution' : 'sasha',
        budget: full ? null : budget,
        policy: policyName,
        lowRes,
        highRes,
        tissue,
        grid,
        batchSize: numberFlag(args, 'batch-size', DEFAULT_ANALYZE_SLIDE_CONFIG.batchSize, { integer: true, min: 1 }),
        speculate: numberFlag(args, 'speculate', DEFAULT_ANALYZE_SLIDE_CONFIG.speculate, { integer: true, min: 0 }),
        seed: numberFlag(args, 'seed', 0, { integer: true }),
      };

      // The settings of an output directory are fixed by its first run.
      const settings: InferSettings = {
        model: modelDir,
        mode: config.mode!,
        budget,
        policy: full ? null : policyName,
        encoder: encoder.name,
        lowRes,
        highRes,
        tissue,
        grid,
        seed: config.seed!,
      };
      mkdirSync(join(out, 'slides'), { recursive: true });
      const settingsPath = join(out, 'infer.json');
      if (existsSync(settingsPath)) {
        const before = JSON.parse(readFileSync(settingsPath, 'utf8')) as InferSettings;
        if (JSON.stringify(before) !== JSON.stringify(settings)) {
          throw new DataError(
            `'${out}' holds results of a run with other settings (${settingsPath}: ${JSON.stringify(before)}). ` +
              'Use another --out, or delete that directory to start over.',
          );
        }
      } else await writeFileAtomic(settingsPath, JSON.stringify(settings, null, 2) + '\n');
      await writeFileAtomic(join(out, COHORT_FILE), JSON.stringify({ ids: all.map((s) => s.id) }, null, 2) + '\n');
      io.log(
        full
          ? `Full-resolution HAFED on ${mine.length} slide(s).`
          : `SASHA at f = ${budget} (policy ${policyName}) on ${mine.length} slide(s), encoder ${encoder.name}.`,
      );

      const heatmap = !args.values['no-heatmap'];
      const heatmapSize = numberFlag(args, 'heatmap-size', 2048, { integer: true, min: 16 });
      const open = (file: string): Promise<SlideSource> => (reader === 'worker' ? openSlideInWorker(file) : openSlide(file));
      const analysed: string[] = [];
      const skipped: string[] = [];
      const failed: { id: string; error: string }[] = [];
      let done = 0;
      for (const { file, id } of mine) {
        if (interrupt.signal.aborted) throw new StateError('Inference stopped; run the same command again to resume.');
        const jsonPath = join(out, 'slides', `${id}.json`);
        const pngPath = join(out, 'heatmaps', `${id}.png`);
        const haveJson = existsSync(jsonPath);
        if (haveJson && (!heatmap || existsSync(pngPath))) {
          skipped.push(id);
          bars.onProgress({ task: 'slides', done: ++done, total: mine.length });
          continue;
        }
        let source: SlideSource | undefined;
        try {
          source = await open(file);
          for (const w of source.warnings ?? []) io.log(w);
          if (haveJson) {
            // Results exist; only the heatmap is missing.
            const stored = JSON.parse(readFileSync(jsonPath, 'utf8')) as SlideJson;
            await writeHeatmap(pngPath, source, heatmapDataFromJson(stored), { maxSide: heatmapSize });
            skipped.push(id);
          } else {
            const res = await analyzeSlide(model, source, { encoder, config, signal: interrupt.signal, onProgress: bars.onProgress });
            const label = labels?.get(id);
            const json = { id, file: resolve(file), ...(label !== undefined ? { label } : {}), ...analysisToJson(res) };
            await writeFileAtomic(jsonPath, JSON.stringify(json) + '\n');
            if (heatmap) await writeHeatmap(pngPath, source, res, { maxSide: heatmapSize });
            analysed.push(id);
          }
        } catch (e) {
          if (e instanceof StateError && interrupt.signal.aborted) throw new StateError('Inference stopped; run the same command again to resume.');
          const msg = e instanceof SashaError ? e.message : `${(e as Error)?.message ?? String(e)}`;
          failed.push({ id, error: msg.includes(id) ? msg : `Slide '${id}': ${msg}` });
          io.log(`Skipping slide '${id}': ${msg}`);
        } finally {
          await Promise.resolve(source?.close?.()).catch(() => undefined);
        }
        bars.onProgress({ task: 'slides', done: ++done, total: mine.length });
      }
      if (analysed.length === 0 && skipped.length === 0 && failed.length > 0) {
        throw new DataError(`No slide could be analysed. First error: ${failed[0].error}`);
      }

      // The cohort CSV, from every result of this shard (this run's and earlier runs').
      const rows: SlideJson[] = mine
        .filter(({ id }) => existsSync(join(out, 'slides', `${id}.json`)))
        .map(({ id }) => JSON.parse(readFileSync(join(out, 'slides', `${id}.json`), 'utf8')) as SlideJson);
      const csv = predictionsCsv(rows, hafed.numClasses, classes);
      const csvName = shard.count === 1 ? 'predictions.csv' : `predictions.part-${shard.index}-of-${shard.count}.csv`;
      await writeFileAtomic(join(out, csvName), csv);
      const labelled = rows.filter((r) => r.label !== undefined);
      const seconds = (performance.now() - t0) / 1000;
      const thisRun = rows.filter((r) => analysed.includes(r.id));
      return {
        slides: mine.length,
        analysed: analysed.length,
        skipped: skipped.length,
        failed,
        mode: settings.mode,
        budget,
        policy: settings.policy,
        encoder: encoder.name,
        predictions: join(out, csvName),
        ...(labelled.length ? { accuracy: labelled.filter((r) => r.prediction.label === r.label).length / labelled.length, labelled: labelled.length } : {}),
        meanSecondsPerSlide: thisRun.length ? +(thisRun.reduce((a, r) => a + r.seconds, 0) / thisRun.length).toFixed(3) : null,
        // sub-patches read / N k, per slide: about f for SASHA, 1 for --full
        meanHighResFraction: thisRun.length
          ? +(thisRun.reduce((a, r) => a + r.counts.highResRead / (r.counts.patches * r.counts.k), 0) / thisRun.length).toFixed(4)
          : null,
        seconds: +seconds.toFixed(2),
        out,
      };
    } finally {
      interrupt.dispose();
      bars.stop();
      encoder?.dispose();
      model.dispose();
    }
  },
};
