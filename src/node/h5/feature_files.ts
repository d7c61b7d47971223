/**
 * Feature files on disk: the reference code's layout (one h5 file per resolution, one group
 * per slide), CLAM / TRIDENT per-slide files, and split files.
 *
 * Reference layout (docs/reference-code.md §1.4, §3):
 * ```
 * lr.h5   /<slide_id>/feat    float16 (N, d)       Z
 *         /<slide_id>/coords  int     (N, 2)       level-0 (x, y) of each patch
 *         /<slide_id>.attrs['label']  int
 * hr.h5   /<slide_id>/feat    float16 (N, k, d)    U
 *         /<slide_id>/coords  int     (N, k, 2)
 * v.h5    /<slide_id>/feat    float32 (N, d)       V (HAFED stage 1), no coords
 * ```
 *
 * @packageDocumentation
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type * as H5 from 'h5wasm';
import { tf } from '../../core/tf.js';
import { DataError, ValueError, fmtShape } from '../../core/errors.js';
import { checkSplit, parseSplit, type SlideBag, type SlideDataset, type SlidePart, type SlideSplit } from '../../core/data.js';
import type { ProgressCallback } from '../../core/progress.js';
import type { SyntheticCohort, SyntheticDataset } from '../../wsi/synthetic/features.js';
import { bytesToFloat32, bytesToInt32, datasetInfo, h5Group, h5RootGroups, hasGroup, openH5, readNumberAttr, readRaw, type H5DatasetInfo } from './h5file.js';
import { writeFileAtomicSync } from '../io/file_io.js';
import { H5Writer } from './h5_writer.js';

/**
 * Paths of the feature files of a cohort in the reference layout.
 * @category IO
 */
export interface FeatureFilePaths {
  /** Low-res features Z (`feat` (N, d)), with `coords` and the `label` attribute. Required. */
  lrH5: string;
  /** High-res features U (`feat` (N, k, d)). */
  hrH5?: string;
  /** HAFED stage-1 features V (`feat` float32 (N, d)). */
  vH5?: string;
}

/** Options of {@link H5FeatureDataset.open}. @category IO */
export interface H5FeatureDatasetOptions {
  /** Check loaded features for NaN and infinity (default true). */
  checkFinite?: boolean;
}

interface SlideMeta {
  n: number;
  hasCoords: boolean;
}

const FILE_NAMES: Record<keyof FeatureFilePaths, string> = {
  lrH5: 'low-res feature file (--lr-h5)',
  hrH5: 'high-res feature file (--hr-h5)',
  vH5: 'stage-1 feature file (V)',
};

/**
 * A {@link SlideDataset} over feature files in the reference layout. Opening reads only
 * metadata (group names, shapes, labels) and checks that the files agree; `load` reads just the
 * requested datasets of one slide (h5wasm reads from disk lazily).
 *
 * @example
 * ```ts
 * const ds = await H5FeatureDataset.open({ lrH5: 'feats/lr.h5', hrH5: 'feats/hr.h5' });
 * const bag = await ds.load(ds.ids[0], ['lowRes', 'highRes']); // Z [N, d], U [N, k, d]
 * disposeBag(bag);
 * ds.close();
 * ```
 * @category IO
 */
export class H5FeatureDataset implements SlideDataset {
  readonly ids: readonly string[];
  readonly labels: readonly number[];
  readonly dim: number;
  readonly k?: number;
  readonly parts: readonly SlidePart[];
  private readonly meta: Map<string, SlideMeta>;
  private files: Partial<Record<keyof FeatureFilePaths, H5.File>>;

  private constructor(
    readonly paths: Readonly<FeatureFilePaths>,
    files: Partial<Record<keyof FeatureFilePaths, H5.File>>,
    info: { ids: string[]; labels: number[]; dim: number; k?: number; parts: SlidePart[]; meta: Map<string, SlideMeta> },
    private readonly options: Required<H5FeatureDatasetOptions>,
  ) {
    this.files = files;
    this.ids = Object.freeze(info.ids);
    this.labels = Object.freeze(info.labels);
    this.dim = info.dim;
    this.k = info.k;
    this.parts = Object.freeze(info.parts);
    this.meta = info.meta;
  }

  /**
   * Opens and checks the feature files.
   * @param paths the files, or the low-res file alone.
   * @throws DataError naming the file, the slide and the fix when a file is missing, is not
   *   HDF5, is truncated, lacks a slide, or holds a dataset of the wrong rank or size.
   */
  static async open(paths: FeatureFilePaths | string, options: H5FeatureDatasetOptions = {}): Promise<H5FeatureDataset> {
    const p: FeatureFilePaths = typeof paths === 'string' ? { lrH5: paths } : { ...paths };
    const files: Partial<Record<keyof FeatureFilePaths, H5.File>> = {};
    try {
      for (const key of ['lrH5', 'hrH5', 'vH5'] as const) {
        const path = p[key];
        if (path !== undefined) files[key] = await openH5(path, `the ${FILE_NAMES[key]}`);
      }
      const info = await inspect(p, files);
      return new H5FeatureDataset(Object.freeze(p), files, info, { checkFinite: options.checkFinite ?? true });
    } catch (e) {
      for (const f of Object.values(files)) f?.close();
      throw e;
    }
  }

  /** Number of patches N of a slide (from metadata). */
  numPatches(id: string): number {
    return this.slideMeta(id).n;
  }

  private slideMeta(id: string): SlideMeta {
    const m = this.meta.get(id);
    if (!m) {
      throw new DataError(
        `Slide '${id}' is not in '${this.paths.lrH5}' (${this.ids.length} slides, e.g. ${this.ids.slice(0, 3).join(', ')}). ` +
          'Check the slide id or the split file, or extract features for this slide.',
      );
    }
    return m;
  }

  async load(id: string, parts: readonly SlidePart[] = this.parts): Promise<SlideBag> {
    const m = this.slideMeta(id);
    const i = this.ids.indexOf(id);
    const bag: SlideBag = { id, label: this.labels[i] >= 0 ? this.labels[i] : undefined };
    const created: tf.Tensor[] = [];
    try {
      for (const part of parts) {
        if (!this.parts.includes(part)) {
          throw new DataError(`Slide '${id}': this dataset has no ${part} features (it has ${this.parts.join(', ')}). ${partHint(part)}`);
        }
        if (part === 'coords') {
          const f = this.file('lrH5');
          const raw = await readRaw(f, `${id}/coords`);
          bag.coords = bytesToInt32(raw.bytes, raw.type, `'${this.paths.lrH5}', slide '${id}', coords`);
          continue;
        }
        const key = part === 'lowRes' ? 'lrH5' : part === 'highRes' ? 'hrH5' : 'vH5';
        const raw = await readRaw(this.file(key), `${id}/feat`);
        const values = bytesToFloat32(raw.bytes, raw.type);
        if (this.options.checkFinite) checkFinite(values, this.paths[key]!, id);
        const expected = m.n * this.dim * (part === 'highRes' ? this.k! : 1);
        if (values.length !== expected) {
          throw new DataError(`'${this.paths[key]}', slide '${id}': 'feat' holds ${values.length} values, not the ${expected} its shape had when the file was opened. The file changed; open it again.`);
        }
        const t =
          part === 'highRes' ? tf.tensor3d(values, [m.n, this.k!, this.dim]) : tf.tensor2d(values, [m.n, this.dim]);
        created.push(t);
        if (part === 'lowRes') bag.lowRes = t as tf.Tensor2D;
        else if (part === 'highRes') bag.highRes = t as tf.Tensor3D;
        else bag.aggregated = t as tf.Tensor2D;
      }
    } catch (e) {
      created.forEach((t) => t.dispose());
      throw e;
    }
    return bag;
  }

  private file(key: keyof FeatureFilePaths): H5.File {
    const f = this.files[key];
    if (!f) throw new DataError(`The ${FILE_NAMES[key]} is closed or was not given.`);
    return f;
  }

  /**
   * Reads the features of `parts` of the slides `ids` once, without making tensors, and checks
   * that every value is finite: for files a later stage reads (the low-res Z that `train hafed`
   * records for the TSU and the policy), so that a NaN is found before hours of training.
   * @throws DataError naming the file, the slide and the first bad value.
   * @example
   * ```ts
   * await ds.verifyFinite(split.train, ['lowRes']);
   * ```
   */
  async verifyFinite(ids: readonly string[] = this.ids, parts: readonly SlidePart[] = ['lowRes'], onProgress?: ProgressCallback): Promise<void> {
    let done = 0;
    for (const id of ids) {
      this.slideMeta(id);
      for (const part of parts) {
        if (part === 'coords') continue;
        const key = part === 'lowRes' ? 'lrH5' : part === 'highRes' ? 'hrH5' : 'vH5';
        if (!this.files[key]) throw new DataError(`Slide '${id}': this dataset has no ${part} features (it has ${this.parts.join(', ')}). ${partHint(part)}`);
        const raw = await readRaw(this.file(key), `${id}/feat`);
        checkFinite(bytesToFloat32(raw.bytes, raw.type), this.paths[key]!, id);
      }
      onProgress?.({ task: 'check features', done: ++done, total: ids.length });
    }
  }

  /** Closes the files. */
  close(): void {
    for (const f of Object.values(this.files)) f?.close();
    this.files = {};
  }
}

function partHint(part: SlidePart): string {
  if (part === 'highRes') return 'Pass the high-res file (hrH5 / --hr-h5).';
  if (part === 'aggregated') return 'Pass the V file (vH5), or compute V with HAFED stage 1.';
  if (part === 'coords') return "The low-res file has no 'coords' for every slide.";
  return '';
}

function checkFinite(values: Float32Array, file: string, id: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new DataError(
        `'${file}', slide '${id}': features contain ${values[i]} at flat index ${i}. ` +
          'Re-extract the features of this slide, or drop it from the split.',
      );
    }
  }
}

/** Reads the metadata of every slide and checks that the files agree. */
async function inspect(
  paths: FeatureFilePaths,
  files: Partial<Record<keyof FeatureFilePaths, H5.File>>,
): Promise<{ ids: string[]; labels: number[]; dim: number; k?: number; parts: SlidePart[]; meta: Map<string, SlideMeta> }> {
  const lr = files.lrH5!;
  const ids = h5RootGroups(lr);
  if (ids.length === 0) {
    throw new DataError(
      `'${paths.lrH5}' holds no slide groups. Expected one group per slide with a dataset 'feat' (the reference layout); ` +
        'for CLAM or TRIDENT per-slide files (datasets features, coords) use ClamFeatureDataset.',
    );
  }
  const meta = new Map<string, SlideMeta>();
  const labels: number[] = [];
  let dim: number | undefined;
  let k: number | undefined;
  let allCoords = true;
  for (const id of ids) {
    const where = (key: keyof FeatureFilePaths) => `'${paths[key]}', slide '${id}'`;
    const lrInfo = await requireFeat(lr, id, where('lrH5'), 'lrH5');
    if (lrInfo.shape.length !== 2) {
      throw new DataError(
        `${where('lrH5')}: expected 'feat' of rank 2 (N, d) in the low-res file, but got shape ${fmtShape(lrInfo.shape)}.` +
          (lrInfo.shape.length === 3 ? ' This looks like a high-res file: pass it as hrH5 (--hr-h5), and the low-res file as lrH5.' : ''),
      );
    }
    const [n, d] = lrInfo.shape;
    if (n === 0) throw new DataError(`${where('lrH5')}: 'feat' has 0 patches. Check the tissue segmentation of this slide, or drop it.`);
    if (dim === undefined) dim = d;
    else if (d !== dim) {
      throw new DataError(`${where('lrH5')}: feature width d = ${d}, but other slides have d = ${dim}. Use features from one encoder for the whole cohort.`);
    }
    const group = h5Group(lr, id);
    let label = readNumberAttr(group, 'label', where('lrH5'));
    let hasCoords = false;
    const coordsInfo = await datasetInfo(lr, `${id}/coords`);
    if (coordsInfo) {
      if (coordsInfo.shape.length !== 2 || coordsInfo.shape[0] !== n || coordsInfo.shape[1] !== 2) {
        throw new DataError(`${where('lrH5')}: expected 'coords' of shape [${n}, 2], but got ${fmtShape(coordsInfo.shape)}. Re-run the patching and extraction of this slide.`);
      }
      hasCoords = true;
    }
    allCoords &&= hasCoords;

    if (files.hrH5) {
      const hr = files.hrH5;
      const info = await requireFeat(hr, id, where('hrH5'), 'hrH5');
      if (info.shape.length !== 3) {
        throw new DataError(
          `${where('hrH5')}: expected 'feat' of rank 3 (N, k, d) in the high-res file, but got shape ${fmtShape(info.shape)}.` +
            (info.shape.length === 2 ? ' This looks like a low-res file: pass the file of (N, k, d) sub-patch features as hrH5 (--hr-h5).' : ''),
        );
      }
      const [nh, kh, dh] = info.shape;
      if (nh !== n || dh !== dim) {
        throw new DataError(
          `${where('hrH5')}: 'feat' has shape ${fmtShape(info.shape)}, but the low-res file has ${fmtShape(lrInfo.shape)} (N and d must match). ` +
            'Extract both resolutions from the same patch coordinates and encoder.',
        );
      }
      if (k === undefined) k = kh;
      else if (kh !== k) throw new DataError(`${where('hrH5')}: k = ${kh} sub-patches, but other slides have k = ${k}. Extract all slides with one level ratio.`);
      label = mergeLabel(label, readNumberAttr(h5Group(hr, id), 'label', where('hrH5')), id, paths.lrH5, paths.hrH5!);
    }
    if (files.vH5) {
      const v = files.vH5;
      const info = await requireFeat(v, id, where('vH5'), 'vH5');
      if (info.shape.length !== 2 || info.shape[0] !== n || info.shape[1] !== dim) {
        throw new DataError(`${where('vH5')}: expected 'feat' of shape [${n}, ${dim}] (N, d), but got ${fmtShape(info.shape)}. Recompute V from this cohort's high-res features.`);
      }
      label = mergeLabel(label, readNumberAttr(h5Group(v, id), 'label', where('vH5')), id, paths.lrH5, paths.vH5!);
    }
    if (label !== undefined && !(Number.isInteger(label) && label >= 0)) {
      throw new DataError(`${where('lrH5')}: expected the 'label' attribute to be a class index (0, 1, ...), but got ${label}. Fix the label when writing the file.`);
    }
    labels.push(label ?? -1);
    meta.set(id, { n, hasCoords });
  }
  const parts: SlidePart[] = ['lowRes'];
  if (files.hrH5) parts.push('highRes');
  if (files.vH5) parts.push('aggregated');
  if (allCoords) parts.push('coords');
  return { ids, labels, dim: dim!, k, parts, meta };
}


async function requireFeat(file: H5.File, id: string, where: string, key: keyof FeatureFilePaths): Promise<H5DatasetInfo> {
  if (!(await hasGroup(file, id))) {
    throw new DataError(
      `'${file.filename}' has no group for slide '${id}', which the low-res file has. ` +
        `Extract this slide's features into the ${FILE_NAMES[key]}, or remove the slide from the low-res file.`,
    );
  }
  const info = await datasetInfo(file, `${id}/feat`);
  if (!info) throw new DataError(`${where}: the group has no dataset 'feat'. Expected the reference layout (one group per slide holding 'feat').`);
  if (!info.type.startsWith('float')) throw new DataError(`${where}: expected 'feat' to hold floats, but it holds ${info.type}.`);
  return info;
}

function mergeLabel(a: number | undefined, b: number | undefined, id: string, fa: string, fb: string): number | undefined {
  if (a !== undefined && b !== undefined && a !== b) {
    throw new DataError(`Slide '${id}' has label ${a} in '${fa}' but ${b} in '${fb}'. The files come from different label tables: rewrite one of them.`);
  }
  return a ?? b;
}

/**
 * Reads a split file: the reference JSON (`train_names`, `val_names`, `test_names`), ours
 * (`train`, `val`, `test`), or a CLAM `splits_<i>.csv` (columns `train`, `val`, `test`).
 * With `dataset`, also checks that every slide it names is in the dataset.
 *
 * @throws DataError naming the file (and the missing slides).
 * @example
 * ```ts
 * const split = readSplitFile('splits/split_1.json', dataset); // { train, val, test }
 * ```
 * @category IO
 */
export function readSplitFile(path: string, dataset?: Pick<SlideDataset, 'ids'> & { paths?: { lrH5: string } }): SlideSplit {
  if (!existsSync(path)) throw new DataError(`Cannot find the split file '${path}'. Check the path.`);
  const text = readFileSync(path, 'utf8');
  let split: SlideSplit;
  try {
    split = /\.csv$/i.test(path) ? parseClamSplitCsv(text) : parseSplit(text);
  } catch (e) {
    throw new DataError(`Split file '${path}': ${(e as Error).message}`);
  }
  if (dataset) checkSplit(split, dataset, dataset.paths ? `'${dataset.paths.lrH5}'` : 'the dataset');
  return split;
}

/** Parses CLAM's split CSV (a pandas frame with columns train, val, test of slide ids). */
function parseClamSplitCsv(text: string): SlideSplit {
  const rows = text.split(/\r?\n/).filter((l) => l.trim() !== '').map((l) => l.split(',').map((c) => c.trim().replace(/^"|"$/g, '')));
  if (rows.length === 0) throw new DataError('the CSV is empty.');
  const header = rows[0];
  const col = (name: string) => header.indexOf(name);
  if (col('train') < 0) throw new DataError("expected a CSV with columns 'train', 'val', 'test' (CLAM's splits_<i>.csv).");
  const pick = (name: string) => {
    const c = col(name);
    return c < 0 ? [] : rows.slice(1).map((r) => r[c] ?? '').filter((v) => v !== '');
  };
  return parseSplit({ train: pick('train'), val: pick('val'), test: pick('test') });
}

/** A slide to write, as typed arrays or tensors. */
interface SlideArrays {
  id: string;
  label?: number;
  n: number;
  lowRes?: Float32Array;
  highRes?: Float32Array;
  k?: number;
  aggregated?: Float32Array;
  coords?: Int32Array;
  dim: number;
}

function bagArrays(bag: SlideBag): SlideArrays {
  const ref = bag.lowRes ?? bag.aggregated ?? bag.highRes;
  if (!ref) throw new DataError(`Slide '${bag.id}' has no features to write.`);
  return {
    id: bag.id,
    label: bag.label,
    n: ref.shape[0],
    dim: ref.shape[ref.rank - 1],
    k: bag.highRes?.shape[1],
    lowRes: bag.lowRes ? (bag.lowRes.dataSync() as Float32Array) : undefined,
    highRes: bag.highRes ? (bag.highRes.dataSync() as Float32Array) : undefined,
    aggregated: bag.aggregated ? (bag.aggregated.dataSync() as Float32Array) : undefined,
    coords: bag.coords,
  };
}

/** Options of {@link writeFeatureFiles}. @category IO */
export interface WriteFeatureFilesOptions {
  /** Element type of `feat` in the low- and high-res files (default `'float16'`, as the reference). V is always float32. */
  dtype?: 'float16' | 'float32';
  /**
   * Level-0 side of a low-res patch. When given with coords, the high-res file gets `coords`
   * (N, k, 2) of the sub-patches (sub-patch `j = r * xi + yi` at `(x + xi * side / r, y + yi * side / r)`).
   */
  patchSizeLevel0?: number;
  /** Progress events (task `'write features'`, one unit per slide). */
  onProgress?: ProgressCallback;
}

/** What {@link writeFeatureFiles} can take: a dataset (loaded slide by slide) or bags. */
export type FeatureSource = SlideDataset | Iterable<SlideBag> | AsyncIterable<SlideBag>;

/**
 * Writes slides in the reference layout: `lrH5` (Z, coords, label), and when given `hrH5` (U)
 * and `vH5` (V, float32). Every file is written under a temporary name and renamed when all
 * slides are written, so a failure leaves no partial file.
 *
 * @param source a {@link SlideDataset} (each slide is loaded, written and freed) or bags (the
 *   caller keeps ownership of their tensors).
 * @example
 * ```ts
 * await writeFeatureFiles({ lrH5: 'out/lr.h5', hrH5: 'out/hr.h5' }, cohort.bags, { patchSizeLevel0: 2048 });
 * ```
 * @category IO
 */
export async function writeFeatureFiles(paths: FeatureFilePaths, source: FeatureSource, options: WriteFeatureFilesOptions = {}): Promise<void> {
  await writeSlides(paths, slideStream(source, paths), options);
}

async function* slideStream(source: FeatureSource, paths: FeatureFilePaths): AsyncIterable<SlideArrays> {
  if (isDataset(source)) {
    const parts: SlidePart[] = ['lowRes'];
    if (paths.hrH5) parts.push('highRes');
    if (paths.vH5) parts.push('aggregated');
    if (source.parts.includes('coords')) parts.push('coords');
    for (const id of source.ids) {
      const bag = await source.load(id, parts);
      try {
        yield bagArrays(bag);
      } finally {
        bag.lowRes?.dispose();
        bag.highRes?.dispose();
        bag.aggregated?.dispose();
      }
    }
    return;
  }
  for await (const bag of source as AsyncIterable<SlideBag>) yield bagArrays(bag);
}

function isDataset(x: FeatureSource): x is SlideDataset {
  return typeof (x as SlideDataset).load === 'function' && Array.isArray((x as SlideDataset).ids);
}

async function writeSlides(paths: FeatureFilePaths, slides: AsyncIterable<SlideArrays> | Iterable<SlideArrays>, options: WriteFeatureFilesOptions): Promise<number> {
  const dtype = options.dtype ?? 'float16';
  if (dtype !== 'float16' && dtype !== 'float32') throw new ValueError(`Expected dtype to be 'float16' or 'float32', but got '${String(dtype)}'.`);
  const writers: Partial<Record<keyof FeatureFilePaths, H5Writer>> = {};
  let count = 0;
  try {
    for (const key of ['lrH5', 'hrH5', 'vH5'] as const) {
      if (paths[key] !== undefined) writers[key] = await H5Writer.create(paths[key]!);
    }
    const seen = new Set<string>();
    for await (const s of slides) {
      if (seen.has(s.id)) throw new DataError(`Slide '${s.id}' appears twice; slide ids must be unique.`);
      if (!/^[^/.][^/]*$/.test(s.id)) throw new DataError(`Slide id '${s.id}' cannot be an HDF5 group name (no '/', no leading '.').`);
      seen.add(s.id);
      const feat = (w: H5Writer, path: string, values: Float32Array, shape: number[], kind: 'float16' | 'float32') =>
        kind === 'float16' ? w.writeFloat16(path, values, shape) : w.writeFloat32(path, values, shape);
      const setLabel = (w: H5Writer) => {
        if (s.label !== undefined && s.label >= 0) w.writeNumberAttr(s.id, 'label', s.label);
      };
      if (!s.lowRes) throw new DataError(`Slide '${s.id}' has no low-res features to write to '${paths.lrH5}'.`);
      const lr = writers.lrH5!;
      lr.createGroup(s.id);
      feat(lr, `${s.id}/feat`, s.lowRes, [s.n, s.dim], dtype);
      if (s.coords) lr.writeInt(`${s.id}/coords`, s.coords, [s.n, 2], '<i8');
      setLabel(lr);
      if (writers.hrH5) {
        if (!s.highRes || s.k === undefined) throw new DataError(`Slide '${s.id}' has no high-res features to write to '${paths.hrH5}'.`);
        const hr = writers.hrH5;
        hr.createGroup(s.id);
        feat(hr, `${s.id}/feat`, s.highRes, [s.n, s.k, s.dim], dtype);
        if (s.coords && options.patchSizeLevel0 !== undefined) {
          hr.writeInt(`${s.id}/coords`, subPatchCoords(s.coords, s.n, s.k, options.patchSizeLevel0), [s.n, s.k, 2], '<i8');
        }
        setLabel(hr);
      }
      if (writers.vH5) {
        if (!s.aggregated) throw new DataError(`Slide '${s.id}' has no V (aggregated) features to write to '${paths.vH5}'.`);
        const v = writers.vH5;
        v.createGroup(s.id);
        v.writeFloat32(`${s.id}/feat`, s.aggregated, [s.n, s.dim]);
        setLabel(v);
      }
      count++;
      options.onProgress?.({ task: 'write features', done: count });
    }
    if (count === 0) throw new DataError('No slides to write.');
    for (const w of Object.values(writers)) await w!.commit();
    return count;
  } catch (e) {
    for (const w of Object.values(writers)) w?.abort();
    throw e;
  }
}

/** Level-0 top-left of every sub-patch: [N, k, 2], sub-patch j = r * xi + yi. */
function subPatchCoords(coords: Int32Array, n: number, k: number, side: number): Int32Array {
  const r = Math.round(Math.sqrt(k));
  if (r * r !== k) throw new ValueError(`Cannot place k = ${k} sub-patches on a square grid; omit patchSizeLevel0.`);
  const step = side / r;
  const out = new Int32Array(n * k * 2);
  for (let i = 0; i < n; i++) {
    for (let xi = 0; xi < r; xi++) {
      for (let yi = 0; yi < r; yi++) {
        const j = r * xi + yi;
        out[(i * k + j) * 2] = coords[2 * i] + Math.round(xi * step);
        out[(i * k + j) * 2 + 1] = coords[2 * i + 1] + Math.round(yi * step);
      }
    }
  }
  return out;
}

/**
 * Writes a split in the reference JSON layout (`train_names`, `val_names`, `test_names`).
 * @category IO
 */
export function writeSplitFile(path: string, split: SlideSplit): void {
  writeFileAtomicSync(path, JSON.stringify({ train_names: split.train, val_names: split.val, test_names: split.test }, null, 2) + '\n');
}

/** Paths written by {@link writeSyntheticCohortFiles}. @category IO */
export interface SyntheticCohortFiles extends Required<Omit<FeatureFilePaths, 'vH5'>> {
  split: string;
}

/**
 * Writes a synthetic cohort as `lr.h5`, `hr.h5` (float16, reference layout) and `split.json`
 * in `dir` (created by the caller). A {@link SyntheticDataset} is written one slide at a time.
 *
 * @returns the three paths (ready for `--lr-h5`, `--hr-h5`, `--split`).
 * @example
 * ```ts
 * const files = await writeSyntheticCohortFiles('/tmp/cohort', generateSyntheticCohort(SYNTHETIC_PRESETS.small));
 * const ds = await H5FeatureDataset.open(files);
 * ```
 * @category IO
 */
export async function writeSyntheticCohortFiles(
  dir: string,
  cohort: SyntheticCohort | SyntheticDataset,
  options: Pick<WriteFeatureFilesOptions, 'onProgress'> = {},
): Promise<SyntheticCohortFiles> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`Cannot find the output directory '${dir}'. Create it first.`);
  const files: SyntheticCohortFiles = { lrH5: join(dir, 'lr.h5'), hrH5: join(dir, 'hr.h5'), split: join(dir, 'split.json') };
  const opts = { patchSizeLevel0: cohort.config.patchSizeLevel0, onProgress: options.onProgress };
  if ('bags' in cohort) {
    await writeFeatureFiles(files, cohort.bags, opts);
  } else {
    const ds = cohort;
    const slides = (function* () {
      for (const id of ds.ids) {
        const s = ds.slide(id);
        yield { id: s.id, label: s.label, n: s.n, dim: s.dim, k: s.k, lowRes: s.lowRes, highRes: s.highRes, coords: s.coords } satisfies SlideArrays;
      }
    })();
    await writeSlides(files, slides, opts);
  }
  writeSplitFile(files.split, cohort.split);
  return files;
}

/** Options of {@link ClamFeatureDataset.open}. @category IO */
export interface ClamFeatureDatasetOptions {
  /** Slide labels by id (CLAM keeps labels in a CSV, not in the h5 files); see {@link readLabelCsv}. */
  labels?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  /** Only these slides (default: every `<id>.h5` in the folder). */
  ids?: readonly string[];
  /** Check loaded features for NaN and infinity (default true). */
  checkFinite?: boolean;
}

/**
 * A {@link SlideDataset} over CLAM's (or TRIDENT's) per-slide feature files:
 * `<dir>/h5_files/<slide_id>.h5` (or `<dir>/<slide_id>.h5`) holding `features` [N, D] and
 * `coords` [N, 2]. These are low-res features Z only; labels come from `options.labels`.
 * Each `load` opens one file, reads it and closes it.
 *
 * @example
 * ```ts
 * const labels = readLabelCsv('dataset_csv/camelyon16.csv', { labelMap: { normal: 0, tumor: 1 } });
 * const ds = await ClamFeatureDataset.open('FEATURES_DIRECTORY', { labels });
 * const bag = await ds.load(ds.ids[0]); // lowRes [N, D], coords
 * ```
 * @category IO
 */
export class ClamFeatureDataset implements SlideDataset {
  readonly ids: readonly string[];
  readonly labels: readonly number[];
  readonly dim: number;
  readonly k = undefined;
  readonly parts: readonly SlidePart[] = Object.freeze(['lowRes', 'coords'] as SlidePart[]);
  private readonly sizes: Map<string, number>;

  private constructor(
    readonly dir: string,
    ids: string[],
    labels: number[],
    dim: number,
    sizes: Map<string, number>,
    private readonly checkValues: boolean,
  ) {
    this.ids = Object.freeze(ids);
    this.labels = Object.freeze(labels);
    this.dim = dim;
    this.sizes = sizes;
  }

  /**
   * Lists and checks the per-slide files of a CLAM or TRIDENT feature folder.
   * @param dir the folder holding `h5_files/`, or `h5_files/` itself.
   * @throws DataError naming the file and the fix.
   */
  static async open(dir: string, options: ClamFeatureDatasetOptions = {}): Promise<ClamFeatureDataset> {
    if (!existsSync(dir)) throw new DataError(`Cannot find the feature folder '${dir}'. Check the path.`);
    const folder = existsSync(join(dir, 'h5_files')) ? join(dir, 'h5_files') : dir;
    const available = readdirSync(folder).filter((f) => f.endsWith('.h5')).map((f) => basename(f, '.h5')).sort();
    if (available.length === 0) {
      throw new DataError(`'${folder}' holds no .h5 files. Point to CLAM's FEATURES_DIRECTORY (with h5_files/) or TRIDENT's features_<encoder>/ folder.`);
    }
    const ids = options.ids ? [...options.ids] : available;
    const labelOf = (id: string) => {
      const l = options.labels instanceof Map ? options.labels.get(id) : (options.labels as Record<string, number> | undefined)?.[id];
      return l ?? -1;
    };
    const sizes = new Map<string, number>();
    let dim: number | undefined;
    for (const id of ids) {
      const path = join(folder, `${id}.h5`);
      if (!available.includes(id)) throw new DataError(`Slide '${id}' has no feature file '${path}'. Extract its features or remove it from the list.`);
      const file = await openH5(path, 'the CLAM feature file');
      try {
        const feat = await datasetInfo(file, 'features');
        if (!feat) {
          throw new DataError(
            `'${path}' has no dataset 'features'. Expected CLAM's layout (features [N, D], coords [N, 2]); ` +
              "for files with one group per slide and 'feat' use H5FeatureDataset.",
          );
        }
        if (feat.shape.length !== 2 || feat.shape[0] === 0) {
          throw new DataError(`'${path}': expected 'features' of shape [N, D] with N > 0, but got ${fmtShape(feat.shape)}. Re-extract this slide.`);
        }
        const coords = await datasetInfo(file, 'coords');
        if (!coords || fmtShape(coords.shape) !== fmtShape([feat.shape[0], 2])) {
          throw new DataError(`'${path}': expected 'coords' of shape [${feat.shape[0]}, 2], but got ${coords ? fmtShape(coords.shape) : 'none'}. Re-extract this slide.`);
        }
        if (dim === undefined) dim = feat.shape[1];
        else if (feat.shape[1] !== dim) {
          throw new DataError(`'${path}': feature width D = ${feat.shape[1]}, but other slides have D = ${dim}. Use features from one encoder.`);
        }
        sizes.set(id, feat.shape[0]);
      } finally {
        file.close();
      }
    }
    return new ClamFeatureDataset(folder, ids, ids.map(labelOf), dim!, sizes, options.checkFinite ?? true);
  }

  /** Number of patches N of a slide. */
  numPatches(id: string): number {
    const n = this.sizes.get(id);
    if (n === undefined) throw new DataError(`Slide '${id}' is not in '${this.dir}'. Check the slide id or the split file.`);
    return n;
  }

  async load(id: string, parts: readonly SlidePart[] = this.parts): Promise<SlideBag> {
    const n = this.numPatches(id);
    const path = join(this.dir, `${id}.h5`);
    const file = await openH5(path, 'the CLAM feature file');
    try {
      const i = this.ids.indexOf(id);
      const bag: SlideBag = { id, label: this.labels[i] >= 0 ? this.labels[i] : undefined };
      try {
        for (const part of parts) {
          if (part === 'lowRes') {
            const raw = await readRaw(file, 'features');
            const values = bytesToFloat32(raw.bytes, raw.type);
            if (this.checkValues) checkFinite(values, path, id);
            if (values.length !== n * this.dim) {
              throw new DataError(`'${path}': 'features' holds ${values.length} values, but [${n}, ${this.dim}] when the folder was opened. The file changed; open the folder again.`);
            }
            bag.lowRes = tf.tensor2d(values, [n, this.dim]);
          } else if (part === 'coords') {
            const raw = await readRaw(file, 'coords');
            bag.coords = bytesToInt32(raw.bytes, raw.type, `'${path}', coords`);
          } else {
            throw new DataError(`Slide '${id}': CLAM feature files hold low-res features and coords only, not ${part}. ${partHint(part)}`);
          }
        }
      } catch (e) {
        bag.lowRes?.dispose();
        throw e;
      }
      return bag;
    } finally {
      file.close();
    }
  }
}

/**
 * Reads slide labels from a CSV with a slide id column and a label column (CLAM's dataset CSV:
 * `case_id,slide_id,label`). String labels are mapped through `labelMap`; numeric ones are
 * used as they are.
 *
 * @returns labels by slide id.
 * @throws DataError naming the file, the row and the fix.
 * @category IO
 */
export function readLabelCsv(
  path: string,
  options: { idColumn?: string; labelColumn?: string; labelMap?: Readonly<Record<string, number>> } = {},
): Map<string, number> {
  if (!existsSync(path)) throw new DataError(`Cannot find the label file '${path}'. Check the path.`);
  const rows = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(',').map((c) => c.trim().replace(/^"|"$/g, '')));
  const idCol = rows[0]?.indexOf(options.idColumn ?? 'slide_id') ?? -1;
  const labelCol = rows[0]?.indexOf(options.labelColumn ?? 'label') ?? -1;
  if (idCol < 0 || labelCol < 0) {
    throw new DataError(
      `'${path}': expected columns '${options.idColumn ?? 'slide_id'}' and '${options.labelColumn ?? 'label'}', but the header is '${rows[0]?.join(',')}'. ` +
        'Name the columns with idColumn / labelColumn.',
    );
  }
  const out = new Map<string, number>();
  for (const [r, row] of rows.slice(1).entries()) {
    if (row.length <= Math.max(idCol, labelCol)) {
      throw new DataError(`'${path}', row ${r + 2}: ${row.length} column(s), but the header has ${rows[0].length}. Fix the row (a missing separator, or a line break inside a value).`);
    }
    const raw = row[labelCol];
    let label: number | undefined = options.labelMap?.[raw];
    if (label === undefined && /^\d+$/.test(raw ?? '') && Number.isSafeInteger(Number(raw))) label = Number(raw);
    if (label === undefined) {
      throw new DataError(`'${path}', row ${r + 2}: label '${raw}' is not a class index and not in labelMap. Pass labelMap, e.g. { normal: 0, tumor: 1 }.`);
    }
    const id = row[idCol].replace(/\.(tif|tiff|svs|ndpi|mrxs)$/i, '');
    if (id === '') throw new DataError(`'${path}', row ${r + 2}: the slide id is empty.`);
    const before = out.get(id);
    if (before !== undefined && before !== label) {
      throw new DataError(`'${path}': slide '${id}' is listed twice, with labels ${before} and ${label} (row ${r + 2}). Keep one row per slide.`);
    }
    out.set(id, label);
  }
  return out;
}
