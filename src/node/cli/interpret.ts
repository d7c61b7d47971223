/**
 * `sasha interpret`: where each zoom policy looked. With tumour annotations (CAMELYON16 ASAP XML,
 * QuPath GeoJSON, or the digit slides' truth files), the tumour fraction and the classifier
 * attention of the zoomed patches against the others, with two-sided Mann-Whitney U p-values,
 * per policy; with `--heatmaps`, a heatmap PNG per slide with the zoomed patches and the
 * annotation outline.
 *
 * The attention compared is HAFED's with every patch at high resolution (stage 2 on V), the
 * same for every policy: do the policies zoom where the classifier that sees everything looks?
 * (The attention on a policy's final state would favour any zoomed patch, whose row then holds
 * V, whichever policy chose it.) The heatmaps show the final state's attention, as `sasha infer`.
 *
 * @packageDocumentation
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import type { SplitSubset } from '../../core/data.js';
import { zoomInterpretability, type ZoomInterpretability, type ZoomedSlide } from '../../eval/index.js';
import { POLICY_NAMES, type PolicyName } from '../../pipeline/index.js';
import { annotationTumourFractions, parseAnnotations, type SlideAnnotations } from '../../wsi/index.js';
import { digitTumourFractions, CELL_TUMOUR, type DigitSlide } from '../../wsi/synthetic/index.js';
import { readDigitTruth } from '../digit_slides.js';
import { H5FeatureDataset } from '../h5/index.js';
import { openH5, readNumberAttr } from '../h5/h5file.js';
import { writeHeatmap } from '../heatmap.js';
import { openSlide } from '../open_slide.js';
import { numberFlag, requireString, type CommandSpec } from './args.js';
import { evaluateAtBudget, policyFields } from './model_eval.js';
import { progressBars } from './progress_bar.js';
import { openModelData } from './train_sasha.js';
import type * as H5 from 'h5wasm';

/** One slide's truth: per-patch tumour fractions and outlines to draw. */
interface SlideTruth {
  file: string;
  /** Side of a patch in level-0 pixels. */
  patchSize: number;
  fractions: Float32Array;
  outlines: Float64Array[];
}

const SLIDE_EXTENSIONS = ['.tif', '.tiff', '.svs', '.btf', '.ome.tif', '.ome.tiff'];
const ANNOTATION_EXTENSIONS = ['.xml', '.geojson', '.json'];

/** The file in `dir` named `<id><ext>` for one of `exts`, if any. */
function fileFor(dir: string, id: string, exts: readonly string[], listing: Set<string>): string | undefined {
  for (const e of exts) if (listing.has(id + e)) return path.join(dir, id + e);
  return undefined;
}

/** Outlines of a digit slide's tumour cells, one square per cell (level-0 pixels). */
function digitOutlines(slide: DigitSlide): Float64Array[] {
  const out: Float64Array[] = [];
  const s = slide.cellSize;
  for (let c = 0; c < slide.cellKind.length; c++) {
    if (slide.cellKind[c] !== CELL_TUMOUR) continue;
    const x = (c % slide.cols) * s;
    const y = Math.floor(c / slide.cols) * s;
    out.push(Float64Array.from([x, y, x + s, y, x + s, y + s, x, y + s]));
  }
  return out;
}

/** `sasha interpret`. */
export const interpretCommand: CommandSpec = {
  name: 'interpret',
  summary: 'tumour fraction and attention of zoomed vs not-zoomed patches per policy (Mann-Whitney p), heatmaps with annotations',
  flags: {
    model: { type: 'string', help: 'model directory with HAFED, f_S and a policy for the budget' },
    annotations: {
      type: 'string',
      help: 'folder of per-slide tumour annotations <slide>.xml (ASAP, CAMELYON16), <slide>.geojson / .json (QuPath), or digit-slide truth <slide>.json',
    },
    budget: { type: 'string', help: 'budget f of the policies', default: '0.2' },
    policies: { type: 'string', help: `policies to compare, comma-separated (${POLICY_NAMES.join(', ')})`, default: 'learned,random,top-attention' },
    subset: { type: 'string', help: "slides to evaluate: 'train', 'val' or 'test'", default: 'test' },
    'patch-size': { type: 'string', help: 'side of a low-res patch in level-0 pixels (default: from the digit truth, or from --slides and the feature file)' },
    samples: { type: 'string', help: 'sample points per patch side when measuring the annotated area', default: '16' },
    heatmaps: { type: 'string', help: 'write a heatmap PNG per annotated slide and policy to this folder (needs --slides)' },
    slides: { type: 'string', help: 'folder of the slide images <slide>.tif / .svs (for heatmaps and the patch size)' },
    'heatmap-limit': { type: 'string', help: 'at most this many annotated slides get heatmaps', default: '20' },
    seed: { type: 'string', help: 'seed of the random policy', default: '0' },
    'lr-h5': { type: 'string', help: 'low-res features Z (default: the file the model was trained on)' },
    'hr-h5': { type: 'string', help: 'high-res features U (default: the file the model was trained on)' },
    split: { type: 'string', help: 'split file (default: the one the model was trained with)' },
  },
  async run(args, io) {
    const cmd = 'interpret';
    const dir = path.resolve(requireString(args, 'model', cmd));
    const annDir = path.resolve(requireString(args, 'annotations', cmd));
    if (!existsSync(annDir)) throw new DataError(`Cannot find the annotation folder '${annDir}'.`);
    const budget = numberFlag(args, 'budget', 0.2, { min: 0, minExclusive: true, max: 1 });
    if (budget >= 1) throw new ValueError('Expected --budget < 1: at budget 1 every patch is zoomed into and nothing is left to compare.');
    const policies = String(args.values.policies ?? 'learned,random,top-attention')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean) as PolicyName[];
    const badPolicy = policies.find((p) => !POLICY_NAMES.includes(p));
    if (policies.length === 0 || badPolicy) throw new ValueError(`Expected --policies among ${POLICY_NAMES.join(', ')}, but got '${String(args.values.policies)}'.`);
    const subset = (args.values.subset ?? 'test') as SplitSubset;
    if (!['train', 'val', 'test'].includes(subset)) throw new ValueError(`Expected --subset to be 'train', 'val' or 'test', but got '${String(subset)}'.`);
    const samples = numberFlag(args, 'samples', 16, { min: 1, integer: true });
    const seed = numberFlag(args, 'seed', 0, { integer: true });
    const limit = numberFlag(args, 'heatmap-limit', 20, { min: 0, integer: true });
    const heatDir = typeof args.values.heatmaps === 'string' && args.values.heatmaps !== '' ? path.resolve(args.values.heatmaps) : undefined;
    const slidesDir = typeof args.values.slides === 'string' && args.values.slides !== '' ? path.resolve(args.values.slides) : undefined;
    if (heatDir && !slidesDir) throw new ValueError('--heatmaps needs --slides, the folder of the slide images.');
    if (slidesDir && !existsSync(slidesDir)) throw new DataError(`Cannot find the slide folder '${slidesDir}'.`);
    const patchFlag = args.values['patch-size'] !== undefined ? numberFlag(args, 'patch-size', 0, { min: 0, minExclusive: true }) : undefined;
    const t0 = Date.now();

    const data = await openModelData(dir, args);
    const bars = progressBars(io.interactive);
    const annListing = new Set(readdirSync(annDir));
    const slideListing = slidesDir ? new Set(readdirSync(slidesDir)) : new Set<string>();
    let lrFile: H5.File | null = null;
    try {
      const ids = data.split[subset];
      if (ids.length === 0) throw new DataError(`The split has no ${subset} slides.`);
      const ds = data.dataset as H5FeatureDataset;
      if (!ds.parts.includes('coords')) throw new DataError(`'${ds.paths.lrH5}' has no patch coordinates ('coords'); they are needed to place annotations on patches.`);

      // 1. Per-slide truth from the annotations.
      lrFile = await openH5(ds.paths.lrH5, 'the low-res feature file');
      const patchSizeOf = async (id: string): Promise<number> => {
        if (patchFlag !== undefined) return patchFlag;
        const where = `'${ds.paths.lrH5}', slide '${id}'`;
        const size = readNumberAttr(lrFile!.get(id) as H5.Group, 'patch_size', where);
        const level = readNumberAttr(lrFile!.get(id) as H5.Group, 'patch_level', where);
        const file = slidesDir ? fileFor(slidesDir, id, SLIDE_EXTENSIONS, slideListing) : undefined;
        if (size === undefined || level === undefined || !file) {
          throw new DataError(
            `Slide '${id}': the level-0 patch size is unknown (the annotations are in level-0 pixels). Pass --patch-size ` +
              `(e.g. 2048 for 256-px patches at CAMELYON16's level 3), or --slides with features written by sasha extract.`,
          );
        }
        const slide = await openSlide(file);
        try {
          const lv = slide.levels[level];
          if (!lv) throw new DataError(`'${file}' has no level ${level} (the feature file's patch_level for slide '${id}').`);
          return size * lv.downsample;
        } finally {
          await slide.close();
        }
      };
      const truth = new Map<string, SlideTruth>();
      const unannotatedPositives: string[] = [];
      const formats: Record<string, number> = {};
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        const file = fileFor(annDir, id, ANNOTATION_EXTENSIONS, annListing);
        const label = ds.labels[ds.ids.indexOf(id)];
        bars.onProgress({ task: 'annotations', done: i + 1, total: ids.length });
        if (!file) {
          if (label > 0) unannotatedPositives.push(id);
          continue;
        }
        const bag = await ds.load(id, ['coords']);
        const coords = bag.coords!;
        const n = coords.length / 2;
        const text = readFileSync(file, 'utf8');
        let json: Record<string, unknown> | null = null;
        if (file.endsWith('.json')) {
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch (e) {
            throw new DataError(`'${file}' (slide '${id}') is not valid JSON: ${(e as Error).message}.`);
          }
        }
        if (json && !Array.isArray(json) && 'cellKind' in json) {
          const slide = readDigitTruth(file);
          if (slide.id !== undefined && slide.id !== id) throw new DataError(`'${file}' holds the truth of slide '${slide.id}', not of slide '${id}'. Check the annotation folder.`);
          const size = patchFlag ?? slide.cellSize * slide.ratio;
          let maxX = 0;
          let maxY = 0;
          for (let j = 0; j < n; j++) {
            maxX = Math.max(maxX, coords[2 * j] + size);
            maxY = Math.max(maxY, coords[2 * j + 1] + size);
          }
          if (maxX > slide.width + size || maxY > slide.height + size) {
            throw new DataError(`'${file}' (slide '${id}'): the slide is ${slide.width} x ${slide.height} at level 0, but its patches reach ${maxX} x ${maxY}. The truth file belongs to another slide.`);
          }
          truth.set(id, { file, patchSize: size, fractions: digitTumourFractions(slide, coords, size), outlines: digitOutlines(slide) });
          formats['digit truth'] = (formats['digit truth'] ?? 0) + 1;
          continue;
        }
        let ann: SlideAnnotations;
        try {
          ann = parseAnnotations(text, file);
        } catch (e) {
          if (e instanceof DataError) throw new DataError(`${e.message} (slide '${id}')`);
          throw e;
        }
        const size = await patchSizeOf(id);
        let maxX = 0;
        let maxY = 0;
        for (let j = 0; j < n; j++) {
          maxX = Math.max(maxX, coords[2 * j] + size);
          maxY = Math.max(maxY, coords[2 * j + 1] + size);
        }
        // annotations lie on the tissue: allow a margin of a few patches around the patched area
        const fractions = annotationTumourFractions(ann, coords, size, { samples, slide: id, slideSize: { width: maxX + 3 * size, height: maxY + 3 * size } });
        truth.set(id, { file, patchSize: size, fractions, outlines: ann.polygons.map((p) => p.points) });
        const fmt = text.trimStart().startsWith('<') ? 'ASAP XML' : 'GeoJSON';
        formats[fmt] = (formats[fmt] ?? 0) + 1;
      }
      if (truth.size === 0) {
        throw new DataError(
          `No annotation in '${annDir}' matches a ${subset} slide (expected files named <slide>.xml, <slide>.geojson or <slide>.json, e.g. ${ids[0]}.xml).`,
        );
      }
      if (unannotatedPositives.length) {
        io.log(`No annotation for ${unannotatedPositives.length} positive ${subset} slide(s) (${unannotatedPositives.slice(0, 5).join(', ')}${unannotatedPositives.length > 5 ? ', ...' : ''}): their tumour fraction is unknown and left out.`);
      }

      // 2. HAFED's attention with every patch at high resolution: where the classifier that sees
      // everything looks (the same for every policy).
      const full = await evaluateAtBudget(data, {
        budget: 1,
        policy: 'learned',
        update: 'tsu',
        ids,
        seed,
        keepAttention: true,
        onProgress: (e) => bars.onProgress({ ...e, task: 'HAFED attention' }),
      });
      const hafedAttention = new Map(full.evaluation.slides.map((s) => [s.id, s.attention!] as const));

      // 3. Each policy's episodes (with the final state's attention for the heatmaps).
      const rows: Record<string, unknown>[] = [];
      const heatmaps: string[] = [];
      for (const policy of policies) {
        const r = await evaluateAtBudget(data, {
          budget,
          policy,
          update: 'tsu',
          ids,
          seed,
          keepAttention: Boolean(heatDir),
          onProgress: (e) => bars.onProgress({ ...e, task: `episodes ${policy}` }),
          log: io.log,
        });
        const zs: ZoomedSlide[] = r.evaluation.slides.map((s) => {
          const label = s.label;
          const t = truth.get(s.id);
          // a negative slide without annotations holds no tumour
          const attention = hafedAttention.get(s.id)!;
          const tumourFraction = t ? t.fractions : label === 0 ? new Float32Array(attention.length) : undefined;
          return { id: s.id, zoomed: s.actions, attention, ...(tumourFraction ? { tumourFraction } : {}) };
        });
        const stats: ZoomInterpretability = zoomInterpretability(zs);
        rows.push({ policy, ...policyFields(r), accuracy: r.evaluation.metrics.accuracy, auc: r.evaluation.metrics.auc, ...stats });
        if (heatDir && slidesDir) {
          const annotated = r.evaluation.slides.filter((s) => truth.get(s.id)?.fractions.some((v) => v > 0)).slice(0, limit);
          for (let i = 0; i < annotated.length; i++) {
            const s = annotated[i];
            const file = fileFor(slidesDir, s.id, SLIDE_EXTENSIONS, slideListing);
            if (!file) throw new DataError(`No slide image for '${s.id}' in '${slidesDir}' (expected ${s.id}.tif or .svs).`);
            const bag = await ds.load(s.id, ['coords']);
            const slide = await openSlide(file);
            try {
              const out = path.join(heatDir, policy, `${s.id}.png`);
              await writeHeatmap(out, slide, {
                coords: bag.coords!,
                attention: s.attention!,
                visited: s.actions,
                patchSizeLevel0: truth.get(s.id)!.patchSize,
                outlines: truth.get(s.id)!.outlines,
              });
              heatmaps.push(out);
            } finally {
              await slide.close();
            }
            bars.onProgress({ task: `heatmaps ${policy}`, done: i + 1, total: annotated.length });
          }
        }
      }
      return {
        model: dir,
        budget,
        subset,
        slides: ids.length,
        annotations: { folder: annDir, slides: truth.size, formats, positivesWithoutAnnotation: unannotatedPositives },
        policies: rows,
        ...(heatDir ? { heatmaps } : {}),
        seconds: (Date.now() - t0) / 1000,
      };
    } finally {
      bars.stop();
      lrFile?.close();
      data.close();
    }
  },
  render(result) {
    const rows = result.policies as (Record<string, unknown> & ZoomInterpretability)[];
    const f = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
    const p = (v: number | undefined) => (v === undefined ? 'n/a' : v < 1e-4 ? v.toExponential(1) : v.toFixed(4));
    const lines = [
      `Where the policies zoomed at f = ${String(result.budget)} (${String(result.subset)} slides; p: two-sided Mann-Whitney U, zoomed vs not zoomed)`,
      '',
      `${'policy'.padEnd(16)}${'tumour fraction zoomed / not'.padEnd(30)}${'p'.padEnd(10)}${'attention N*a zoomed / not'.padEnd(28)}${'p'.padEnd(10)}${'tumour patches zoomed'.padEnd(23)}tumour slides hit`,
    ];
    for (const r of rows) {
      const t = r.tumourFraction;
      const a = r.attention;
      lines.push(
        `${String(r.policy).padEnd(16)}${(t ? `${f(t.zoomed.mean)} / ${f(t.notZoomed.mean)}` : 'n/a').padEnd(30)}${p(t?.pValue).padEnd(10)}` +
          `${(a ? `${f(a.zoomed.mean)} / ${f(a.notZoomed.mean)}` : 'n/a').padEnd(28)}${p(a?.pValue).padEnd(10)}` +
          `${f(t?.tumourPatchesZoomed).padEnd(23)}${f(t?.slidesWithTumourZoomed)}`,
      );
    }
    if (Array.isArray(result.heatmaps)) lines.push('', `heatmaps: ${(result.heatmaps as string[]).length} PNG files`);
    return lines.join('\n');
  },
};
