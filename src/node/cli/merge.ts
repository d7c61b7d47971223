/**
 * `sasha merge DIR`: joins the per-shard output of a sharded `sasha extract` or `sasha infer`
 * into the cohort files, once every shard is done (shards of a SLURM array or a Kubernetes
 * indexed Job each write their own files into one folder):
 * - an extraction folder (`extract.json`): `parts/{lr,hr}/<id>.h5` into `lr.h5` and `hr.h5`,
 *   each slide's stored bytes copied once, in the cohort's order (`cohort.json`);
 * - an inference folder (`infer.json`): `slides/<id>.json` into `predictions.csv`.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import { H5FeatureSink } from '../feature_sink.js';
import { writeFileAtomic } from '../io/file_io.js';
import { COHORT_FILE, type CommandSpec } from './args.js';
import { predictionsCsv, type SlideJson } from './infer.js';
import { progressBars } from './progress_bar.js';

/** The cohort's slide ids in order: `cohort.json` when present, else the ids found, sorted. */
function cohortIds(dir: string, found: string[]): string[] {
  const file = join(dir, COHORT_FILE);
  if (!existsSync(file)) return [...found].sort();
  let ids: unknown;
  try {
    ids = (JSON.parse(readFileSync(file, 'utf8')) as { ids?: unknown }).ids;
  } catch (e) {
    throw new DataError(`Cannot read '${file}': ${(e as Error).message}. Delete it to merge every slide found, in id order.`);
  }
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
    throw new DataError(`'${file}' does not list slide ids ({ "ids": [...] }). Delete it to merge every slide found, in id order.`);
  }
  return ids as string[];
}

/** Names of the files in `dir` with extension `ext`, without it (none when `dir` is missing). */
function stems(dir: string, ext: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .map((f) => f.slice(0, -ext.length));
}

/** Lists the missing slides in a message: at most 10 ids, then the count. */
function listMissing(missing: string[]): string {
  return missing.slice(0, 10).join(', ') + (missing.length > 10 ? `, ... (${missing.length} in all)` : '');
}

/** The `sasha merge` command. */
export const mergeCommand: CommandSpec = {
  name: 'merge',
  summary: 'join the per-shard output of a sharded extract or infer run into the cohort files (lr.h5 / hr.h5, predictions.csv)',
  positionals: 'DIR',
  flags: {
    'allow-missing': { type: 'boolean', help: 'merge the slides that are done and list the missing ones (default: an error)' },
    classes: { type: 'string', help: 'class names in label order, for the pred_name column of predictions.csv' },
  },
  lock: (args) => (args.positionals[0] ? { dir: resolve(args.positionals[0]), name: '.sasha-merge.lock', purpose: 'sasha merge' } : undefined),
  async run(args, io) {
    if (args.positionals.length !== 1) throw new ValueError(`'sasha merge' takes one DIR (the --out of the sharded runs), but got ${args.positionals.length}.`);
    const dir = resolve(args.positionals[0]);
    const allowMissing = Boolean(args.values['allow-missing']);
    const t0 = performance.now();
    if (existsSync(join(dir, 'extract.json'))) {
      let settings: { highRes?: unknown };
      try {
        settings = JSON.parse(readFileSync(join(dir, 'extract.json'), 'utf8')) as { highRes?: unknown };
      } catch (e) {
        throw new DataError(`Cannot read '${join(dir, 'extract.json')}': ${(e as Error).message}.`);
      }
      const sink = new H5FeatureSink(dir, { highRes: settings.highRes !== null && settings.highRes !== undefined });
      const ids = cohortIds(dir, stems(join(dir, 'parts', 'lr'), '.h5'));
      const done = ids.filter((id) => sink.complete([id]));
      const missing = ids.filter((id) => !sink.complete([id]));
      if (done.length === 0) throw new DataError(`'${dir}' holds no extracted slide yet; run the extraction shards first.`);
      if (missing.length > 0 && !allowMissing) {
        throw new DataError(
          `${missing.length} of ${ids.length} slides of '${dir}' have no features yet: ${listMissing(missing)}. ` +
            'Run (or resubmit) the shards that hold them, or merge the others with --allow-missing.',
        );
      }
      if (missing.length > 0) io.log(`Merging ${done.length} of ${ids.length} slides; missing: ${listMissing(missing)}.`);
      const bars = progressBars(io.interactive);
      try {
        const merged = await sink.merge(done, sink.mergedPaths, bars.onProgress);
        return { kind: 'extract', slides: done.length, missing, ...merged, seconds: +((performance.now() - t0) / 1000).toFixed(2) };
      } finally {
        bars.stop();
      }
    }
    if (existsSync(join(dir, 'infer.json'))) {
      const ids = cohortIds(dir, stems(join(dir, 'slides'), '.json'));
      const have = new Set(stems(join(dir, 'slides'), '.json'));
      const done = ids.filter((id) => have.has(id));
      const missing = ids.filter((id) => !have.has(id));
      if (done.length === 0) throw new DataError(`'${dir}' holds no analysed slide yet; run the inference shards first.`);
      if (missing.length > 0 && !allowMissing) {
        throw new DataError(
          `${missing.length} of ${ids.length} slides of '${dir}' have no result yet: ${listMissing(missing)}. ` +
            'Run (or resubmit) the shards that hold them, or merge the others with --allow-missing.',
        );
      }
      const rows = done.map((id) => {
        const file = join(dir, 'slides', `${id}.json`);
        try {
          return JSON.parse(readFileSync(file, 'utf8')) as SlideJson;
        } catch (e) {
          throw new DataError(`Cannot read '${file}': ${(e as Error).message}. Delete it and run that slide's shard again.`);
        }
      });
      const classes = typeof args.values.classes === 'string' ? args.values.classes.split(',').map((c) => c.trim()) : undefined;
      const predictions = join(dir, 'predictions.csv');
      await writeFileAtomic(predictions, predictionsCsv(rows, rows[0].prediction.probs.length, classes));
      return { kind: 'infer', slides: done.length, missing, predictions, seconds: +((performance.now() - t0) / 1000).toFixed(2) };
    }
    throw new DataError(`'${dir}' is not the output folder of 'sasha extract' or 'sasha infer' (no extract.json or infer.json).`);
  },
};

