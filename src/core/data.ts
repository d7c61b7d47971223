/**
 * The data contract: what a slide is for the models ({@link SlideBag}), how a cohort is reached
 * without holding it in memory ({@link SlideDataset}), and train/val/test splits.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { DataError, ShapeError, ValueError, fmtShape } from './errors.js';

/**
 * One slide as features. N low-resolution patches of feature width d; each has k
 * high-resolution sub-patches.
 *
 * Tensors in a bag returned by {@link SlideDataset.load} belong to the caller: free them with
 * {@link disposeBag}.
 * @category Data
 */
export interface SlideBag {
  /** Slide id (the h5 group name, usually the file name without extension). */
  id: string;
  /** Class index in [0, numClasses), when known. */
  label?: number;
  /** Z: low-resolution features, [N, d]. */
  lowRes?: tf.Tensor2D;
  /** U: high-resolution features of every patch's k sub-patches, [N, k, d]. */
  highRes?: tf.Tensor3D;
  /** V: HAFED stage-1 aggregation of U (cached), [N, d]. */
  aggregated?: tf.Tensor2D;
  /** Level-0 (x, y) of the top-left corner of each low-res patch, [N, 2] (row-major). */
  coords?: Int32Array;
}

/** A part of a slide that {@link SlideDataset.load} can be asked for. */
export type SlidePart = 'lowRes' | 'highRes' | 'aggregated' | 'coords';

/**
 * A cohort of slides, loaded one at a time so that it never has to fit in memory.
 * @category Data
 */
export interface SlideDataset {
  /** Slide ids, in a fixed order. */
  readonly ids: readonly string[];
  /** Label of each slide, aligned with `ids` (-1 when unknown). */
  readonly labels: readonly number[];
  /** Feature width d. */
  readonly dim: number;
  /** Sub-patches per patch k, when high-res features exist. */
  readonly k?: number;
  /** The parts every slide of this dataset can provide. */
  readonly parts: readonly SlidePart[];
  /**
   * Loads one slide. Only the requested parts are read (default: all of `parts`).
   * @throws DataError naming the slide when it is missing or unreadable.
   */
  load(id: string, parts?: readonly SlidePart[]): Promise<SlideBag>;
  /** Releases files or handles, if any. */
  close?(): void | Promise<void>;
}

/** Train / validation / test slide ids. @category Data */
export interface SlideSplit {
  train: string[];
  val: string[];
  test: string[];
}

/** A subset name of a {@link SlideSplit}. */
export type SplitSubset = keyof SlideSplit;

/**
 * Reads a split in the reference code's JSON layout (`train_names`, `val_names`, `test_names`)
 * or in ours (`train`, `val`, `test`). Missing lists are empty.
 *
 * @param json the parsed JSON, or its text.
 * @example
 * ```ts
 * parseSplit('{"train_names":["a"],"val_names":["b"],"test_names":["c"]}');
 * // { train: ['a'], val: ['b'], test: ['c'] }
 * ```
 * @category Data
 */
export function parseSplit(json: unknown): SlideSplit {
  let obj = json;
  if (typeof obj === 'string') {
    try {
      obj = JSON.parse(obj);
    } catch (e) {
      throw new DataError(`The split is not valid JSON: ${(e as Error).message}.`);
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new DataError('Expected the split to be a JSON object with train_names, val_names and test_names.');
  }
  const o = obj as Record<string, unknown>;
  const pick = (a: string, b: string): string[] => {
    const v = o[a] ?? o[b] ?? [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
      throw new DataError(`Expected '${a}' in the split to be a list of slide ids.`);
    }
    return (v as string[]).map((s) => stripExtension(s));
  };
  const split = { train: pick('train_names', 'train'), val: pick('val_names', 'val'), test: pick('test_names', 'test') };
  if (split.train.length + split.val.length + split.test.length === 0) {
    throw new DataError('The split lists no slide: expected train_names, val_names or test_names.');
  }
  return split;
}

/** Slide ids in split files sometimes keep their file extension; group names do not. */
function stripExtension(id: string): string {
  return id.replace(/\.(tif|tiff|svs|ndpi|mrxs|h5|pt)$/i, '');
}

/**
 * Checks that every slide a split names is in the dataset.
 * @throws DataError naming the missing slides and the fix.
 * @category Data
 */
export function checkSplit(split: SlideSplit, dataset: Pick<SlideDataset, 'ids'>, source = 'the feature file'): void {
  const have = new Set(dataset.ids);
  for (const subset of ['train', 'val', 'test'] as const) {
    const missing = split[subset].filter((id) => !have.has(id));
    if (missing.length > 0) {
      const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, ... (${missing.length} in all)` : '');
      throw new DataError(
        `The split's ${subset} list names slides that are not in ${source}: ${shown}. ` +
          'Extract features for them, or remove them from the split.',
      );
    }
  }
}

/**
 * Frees the tensors of a bag.
 * @category Data
 */
export function disposeBag(bag: SlideBag): void {
  bag.lowRes?.dispose();
  bag.highRes?.dispose();
  bag.aggregated?.dispose();
}

/** What {@link validateBag} checks against. */
export interface BagExpectations {
  /** Feature width d. */
  dim?: number;
  /** Sub-patches per patch k. */
  k?: number;
  /** Number of classes: the label must be an integer in [0, numClasses). */
  numClasses?: number;
  /** Parts that must be present. */
  require?: readonly SlidePart[];
  /** Check for NaN and infinite values (reads the tensors back). Default true. */
  checkFinite?: boolean;
}

/**
 * Checks a bag: required parts present, ranks, N > 0 and equal across parts, d and k as
 * expected, finite values, label in range. Throws a {@link ShapeError} or {@link DataError}
 * that names the slide and the fix.
 * @category Data
 */
export function validateBag(bag: SlideBag, expect: BagExpectations = {}): void {
  const where = `slide '${bag.id}'`;
  for (const part of expect.require ?? []) {
    if (bag[part] === undefined) throw new DataError(`${where} has no ${part} features, but they are required here.`);
  }
  let n: number | undefined;
  const checkN = (part: string, rows: number) => {
    if (rows === 0) throw new DataError(`${where} has an empty bag (0 patches in ${part}). Check its tissue segmentation.`);
    if (n !== undefined && rows !== n) throw new ShapeError(`${where}: ${part} has ${rows} patches but another part has ${n}.`);
    n = rows;
  };
  const checkDim = (part: string, shape: number[]) => {
    const d = shape[shape.length - 1];
    if (expect.dim !== undefined && d !== expect.dim) {
      throw new ShapeError(
        `${where}: expected ${part} features of width d = ${expect.dim}, but got ${fmtShape(shape)}. ` +
          'Use features from the encoder the model was trained with.',
      );
    }
  };
  for (const part of ['lowRes', 'aggregated'] as const) {
    const t = bag[part];
    if (!t) continue;
    if (t.rank !== 2) throw new ShapeError(`${where}: expected ${part} of rank 2 [N, d], but got ${fmtShape(t.shape)}.`);
    checkN(part, t.shape[0]);
    checkDim(part, t.shape);
  }
  if (bag.highRes) {
    const t = bag.highRes;
    if (t.rank !== 3) throw new ShapeError(`${where}: expected highRes of rank 3 [N, k, d], but got ${fmtShape(t.shape)}.`);
    checkN('highRes', t.shape[0]);
    checkDim('highRes', t.shape);
    if (expect.k !== undefined && t.shape[1] !== expect.k) {
      throw new ShapeError(
        `${where}: expected k = ${expect.k} sub-patches per patch, but got ${fmtShape(t.shape)}. ` +
          'Extract high-res features with the level ratio the model was trained with.',
      );
    }
  }
  if (bag.coords && n !== undefined && bag.coords.length !== 2 * n) {
    throw new ShapeError(`${where}: expected coords of shape [${n}, 2], but got ${bag.coords.length} values.`);
  }
  if (expect.numClasses !== undefined && bag.label !== undefined) {
    const y = bag.label;
    if (!Number.isInteger(y) || y < 0 || y >= expect.numClasses) {
      throw new ValueError(
        `${where}: expected a label in [0, ${expect.numClasses}), but got ${y}. ` +
          'Fix the label, or set numClasses to cover it.',
      );
    }
  }
  if (expect.checkFinite ?? true) {
    for (const part of ['lowRes', 'highRes', 'aggregated'] as const) {
      const t = bag[part];
      if (!t) continue;
      const data = t.dataSync();
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) {
          throw new DataError(
            `${where}: ${part} features contain ${data[i]} at flat index ${i}. Re-extract the features of this slide or drop it.`,
          );
        }
      }
    }
  }
}

/**
 * A {@link SlideDataset} over bags held in memory (tests, examples, small cohorts).
 * `load` returns clones: the caller owns them, the dataset keeps its own until `dispose`.
 *
 * @example
 * ```ts
 * const ds = new InMemoryDataset([{ id: 's1', label: 0, lowRes: tf.randomNormal([10, 8]) }]);
 * const bag = await ds.load('s1'); // clone; dispose it with disposeBag(bag)
 * ```
 * @category Data
 */
export class InMemoryDataset implements SlideDataset {
  readonly ids: readonly string[];
  readonly labels: readonly number[];
  readonly dim: number;
  readonly k?: number;
  readonly parts: readonly SlidePart[];
  private readonly bags = new Map<string, SlideBag>();

  /** @param bags the slides; the dataset takes ownership of their tensors. */
  constructor(bags: readonly SlideBag[]) {
    if (bags.length === 0) throw new DataError('Expected at least one slide in the dataset, but got none.');
    for (const b of bags) {
      if (this.bags.has(b.id)) throw new DataError(`Slide id '${b.id}' appears twice in the dataset.`);
      this.bags.set(b.id, b);
    }
    this.ids = Object.freeze(bags.map((b) => b.id));
    this.labels = Object.freeze(bags.map((b) => b.label ?? -1));
    const first = bags[0];
    const ref = first.lowRes ?? first.aggregated ?? first.highRes;
    if (!ref) throw new DataError(`Slide '${first.id}' has no features.`);
    this.dim = ref.shape[ref.rank - 1];
    this.k = first.highRes?.shape[1];
    const all: SlidePart[] = ['lowRes', 'highRes', 'aggregated', 'coords'];
    this.parts = Object.freeze(all.filter((p) => bags.every((b) => b[p] !== undefined)));
    for (const b of bags) validateBag(b, { dim: this.dim, k: this.k, checkFinite: false });
  }

  async load(id: string, parts: readonly SlidePart[] = this.parts): Promise<SlideBag> {
    const bag = this.bags.get(id);
    if (!bag) throw new DataError(`Slide '${id}' is not in this dataset. Known ids start with: ${this.ids.slice(0, 5).join(', ')}.`);
    const out: SlideBag = { id, label: bag.label };
    for (const p of parts) {
      const v = bag[p];
      if (v === undefined) throw new DataError(`Slide '${id}' has no ${p} features.`);
      if (p === 'coords') out.coords = (v as Int32Array).slice();
      else (out as unknown as Record<string, tf.Tensor>)[p] = tf.clone(v as tf.Tensor);
    }
    return out;
  }

  /** Frees every slide's tensors. */
  dispose(): void {
    for (const b of this.bags.values()) disposeBag(b);
    this.bags.clear();
  }
}

/**
 * A view of `dataset` restricted to `ids` (for example one subset of a split).
 * @throws DataError when an id is not in `dataset`.
 * @category Data
 */
export function subsetDataset(dataset: SlideDataset, ids: readonly string[]): SlideDataset {
  const index = new Map(dataset.ids.map((id, i) => [id, i] as const));
  const labels = ids.map((id) => {
    const i = index.get(id);
    if (i === undefined) throw new DataError(`Slide '${id}' is not in the dataset. Remove it from the split or add its features.`);
    return dataset.labels[i];
  });
  const members = new Set(ids);
  return {
    ids: Object.freeze([...ids]),
    labels: Object.freeze(labels),
    dim: dataset.dim,
    k: dataset.k,
    parts: dataset.parts,
    load: (id, parts) => {
      if (!members.has(id)) return Promise.reject(new DataError(`Slide '${id}' is not in this subset.`));
      return dataset.load(id, parts);
    },
  };
}
