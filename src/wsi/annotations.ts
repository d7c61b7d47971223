/**
 * Tumour annotations as polygons, and the share of each patch they cover. Readers for
 * CAMELYON16's ASAP XML and QuPath's GeoJSON; the digit and synthetic slides give the same
 * per-patch tumour fraction from their ground truth. Plain text in, typed arrays out
 * (browser-safe).
 *
 * @packageDocumentation
 */
import { DataError, ValueError } from '../core/errors.js';
import { CELL_TUMOUR, type DigitSlide } from './synthetic/digit_slide.js';
import { tumourClass, type SyntheticFeatureConfig, type SyntheticSlide } from './synthetic/features.js';
import { syntheticLesionFraction, type SyntheticSlideImage } from './synthetic/slide_image.js';

/** One annotated region. @category WSI */
export interface AnnotationPolygon {
  /** Level-0 vertices `[x0, y0, x1, y1, ...]` of a closed ring (the last vertex joins the first). */
  points: Float64Array;
  /** `'tumour'` adds to the tumour area; `'exclusion'` removes from it (holes, ASAP group `_2`). */
  kind: 'tumour' | 'exclusion';
  /** The group or class it came from (`'Tumor'`, `'_0'`, `'_2'`, a QuPath class). */
  group: string;
}

/** The annotations of one slide. @category WSI */
export interface SlideAnnotations {
  /** Where they were read from (shown in errors). */
  source: string;
  polygons: AnnotationPolygon[];
}

/**
 * ASAP groups whose polygons are tumour and exclusions, as CAMELYON16 uses them: `Tumor`,
 * `_0` and `_1` are tumour, `_2` and `Exclusion` are regions inside tumour annotations that
 * are not tumour. Other groups are ignored.
 * @category WSI
 */
export const ASAP_GROUPS: Readonly<{ tumour: readonly string[]; exclusion: readonly string[] }> = Object.freeze({
  tumour: Object.freeze(['Tumor', 'tumor', 'Tumour', 'tumour', '_0', '_1', 'metastases', 'Metastases']),
  exclusion: Object.freeze(['_2', 'Exclusion', 'exclusion', 'None_tumor']),
});

function attrsOf(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) out[m[1]] = m[2] ?? m[3] ?? '';
  return out;
}

/** A coordinate written with a decimal comma (some European exports) is read as a point. */
function coordinate(raw: string | undefined): number {
  if (raw === undefined) return NaN;
  const t = raw.trim();
  return Number(t.includes('.') ? t : t.replace(',', '.'));
}

/**
 * Reads an ASAP XML annotation file (CAMELYON16's format):
 * `<ASAP_Annotations><Annotations><Annotation PartOfGroup="Tumor" Type="Polygon">`
 * `<Coordinates><Coordinate Order="0" X="..." Y="..."/>...`. Polygons, splines (their
 * vertices) and rectangles are areas; dots and point sets are skipped. Vertices are taken in
 * `Order`. Groups are mapped by {@link ASAP_GROUPS}.
 *
 * @param text the file's text.
 * @param source the file name, for errors.
 * @throws DataError naming `source` when the file is not ASAP XML, or an area has fewer than 3
 *   vertices or a coordinate that is not a number.
 * @example
 * ```ts
 * const ann = parseAsapXml(readFileSync('tumor_001.xml', 'utf8'), 'tumor_001.xml');
 * ann.polygons.length; // one per annotation of the Tumor, _0, _1, _2 groups
 * ```
 * @category WSI
 */
export function parseAsapXml(text: string, source = 'annotation file'): SlideAnnotations {
  if (!/<ASAP_Annotations[\s>]/.test(text)) {
    throw new DataError(`'${source}' is not an ASAP annotation file (no <ASAP_Annotations> element). Export the annotations from ASAP, or use QuPath GeoJSON.`);
  }
  const polygons: AnnotationPolygon[] = [];
  const blocks = text.matchAll(/<Annotation\b([^>]*?)(\/>|>([\s\S]*?)<\/Annotation\s*>)/g);
  let index = 0;
  for (const b of blocks) {
    const a = attrsOf(b[1]);
    const where = `'${source}', annotation ${a.Name ? `'${a.Name}'` : index}`;
    index++;
    const type = (a.Type ?? 'Polygon').toLowerCase();
    if (type === 'dot' || type === 'pointset' || type === 'measurement') continue;
    const group = a.PartOfGroup ?? 'None';
    const kind = ASAP_GROUPS.tumour.includes(group) ? 'tumour' : ASAP_GROUPS.exclusion.includes(group) ? 'exclusion' : null;
    if (!kind) continue;
    const coords = [...(b[3] ?? '').matchAll(/<Coordinate\b([^>]*?)\/?>/g)].map((m) => attrsOf(m[1]));
    const pts = coords
      .map((c, i) => ({ order: c.Order !== undefined ? Number(c.Order) : i, x: coordinate(c.X), y: coordinate(c.Y) }))
      .sort((p, q) => p.order - q.order);
    const bad = pts.find((p) => !Number.isFinite(p.x) || !Number.isFinite(p.y));
    if (bad) throw new DataError(`${where}: coordinate ${bad.order} is not a number. Fix or re-export the file.`);
    if (pts.length < 3) throw new DataError(`${where}: a ${a.Type ?? 'polygon'} of group ${group} needs at least 3 coordinates, but has ${pts.length}.`);
    polygons.push({ points: Float64Array.from(pts.flatMap((p) => [p.x, p.y])), kind, group });
  }
  return { source, polygons };
}

/** Options of {@link parseQuPathGeoJson}. @category WSI */
export interface GeoJsonAnnotationOptions {
  /** Classes (QuPath classification names) that are tumour; default: names matching tumour, tumor, metastasis, carcinoma, cancer, lesion. */
  tumourClasses?: readonly string[];
  /** Classes that are exclusions; default: names matching exclusion, ignore. */
  exclusionClasses?: readonly string[];
  /** How an unclassified annotation counts. Default `'tumour'` (QuPath users often leave tumour outlines unclassified). */
  unclassified?: 'tumour' | 'ignore';
}

const TUMOUR_NAME = /tumou?r|metasta|carcinoma|cancer|lesion/i;
const EXCLUSION_NAME = /exclu|ignore/i;

function classOf(props: unknown): string | undefined {
  if (!props || typeof props !== 'object') return undefined;
  const c = (props as { classification?: unknown }).classification;
  if (typeof c === 'string') return c;
  if (c && typeof c === 'object' && typeof (c as { name?: unknown }).name === 'string') return (c as { name: string }).name;
  return undefined;
}

/**
 * Reads QuPath GeoJSON annotations (File > Export objects as GeoJSON): a `FeatureCollection`, an
 * array of features or one feature, with `Polygon` or `MultiPolygon` geometries in level-0
 * pixels. A polygon's outer ring is an area of its class; its inner rings (holes) are
 * exclusions. Classes are mapped by {@link GeoJsonAnnotationOptions}; other geometries (points,
 * lines) are skipped.
 *
 * @param text the file's text.
 * @param source the file name, for errors.
 * @throws DataError naming `source` for invalid JSON, a feature without geometry, or a ring with
 *   fewer than 3 vertices or non-numeric coordinates.
 * @example
 * ```ts
 * const ann = parseQuPathGeoJson(readFileSync('slide_01.geojson', 'utf8'), 'slide_01.geojson');
 * ```
 * @category WSI
 */
export function parseQuPathGeoJson(text: string, source = 'annotation file', options: GeoJsonAnnotationOptions = {}): SlideAnnotations {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(`'${source}' is not valid JSON (${(e as Error).message}). Export the annotations from QuPath as GeoJSON.`);
  }
  const features: unknown[] = Array.isArray(json)
    ? json
    : json && typeof json === 'object' && (json as { type?: string }).type === 'FeatureCollection'
      ? ((json as { features?: unknown[] }).features ?? [])
      : json && typeof json === 'object' && (json as { type?: string }).type === 'Feature'
        ? [json]
        : (() => {
            throw new DataError(`'${source}' is JSON but not GeoJSON (expected a FeatureCollection, a Feature or an array of features).`);
          })();
  const kindOf = (cls: string | undefined): AnnotationPolygon['kind'] | null => {
    if (cls === undefined) return (options.unclassified ?? 'tumour') === 'tumour' ? 'tumour' : null;
    if (options.tumourClasses ? options.tumourClasses.includes(cls) : TUMOUR_NAME.test(cls)) return 'tumour';
    if (options.exclusionClasses ? options.exclusionClasses.includes(cls) : EXCLUSION_NAME.test(cls)) return 'exclusion';
    return null;
  };
  const polygons: AnnotationPolygon[] = [];
  features.forEach((f, i) => {
    const where = `'${source}', feature ${i}`;
    const geometry = (f as { geometry?: { type?: string; coordinates?: unknown } } | null)?.geometry;
    if (!geometry || typeof geometry.type !== 'string') throw new DataError(`${where} has no geometry. Export annotations with their shapes.`);
    const cls = classOf((f as { properties?: unknown }).properties);
    const kind = kindOf(cls);
    if (!kind) return;
    const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.type === 'MultiPolygon' ? (geometry.coordinates as unknown[]) : [];
    for (const poly of polys) {
      if (!Array.isArray(poly)) throw new DataError(`${where}: expected a list of rings in a ${geometry.type}.`);
      poly.forEach((ring: unknown, r: number) => {
        if (!Array.isArray(ring) || ring.length < 3) throw new DataError(`${where}: ring ${r} needs at least 3 vertices.`);
        const flat = new Float64Array(2 * ring.length);
        ring.forEach((p: unknown, j: number) => {
          const x = Array.isArray(p) ? Number(p[0]) : NaN;
          const y = Array.isArray(p) ? Number(p[1]) : NaN;
          if (!Number.isFinite(x) || !Number.isFinite(y)) throw new DataError(`${where}: vertex ${j} of ring ${r} is not a pair of numbers.`);
          flat[2 * j] = x;
          flat[2 * j + 1] = y;
        });
        const holeKind = kind === 'tumour' ? 'exclusion' : 'tumour';
        polygons.push({ points: flat, kind: r === 0 ? kind : holeKind, group: cls ?? 'unclassified' });
      });
    }
  });
  return { source, polygons };
}

/**
 * Reads annotations in either format, told apart by their first character (`<`: ASAP XML,
 * `{` or `[`: GeoJSON).
 * @throws DataError naming `source` when the text is neither.
 * @category WSI
 */
export function parseAnnotations(text: string, source = 'annotation file', options: GeoJsonAnnotationOptions = {}): SlideAnnotations {
  const head = text.trimStart()[0];
  if (head === '<') return parseAsapXml(text, source);
  if (head === '{' || head === '[') return parseQuPathGeoJson(text, source, options);
  throw new DataError(`'${source}' is neither ASAP XML nor GeoJSON. Give CAMELYON16 .xml or QuPath .geojson annotations.`);
}

/** Options of {@link annotationTumourFractions}. @category WSI */
export interface TumourFractionOptions {
  /** Sample points per patch side (the fraction is the share of `samples^2` points in tumour). Default 16. */
  samples?: number;
  /** The slide's level-0 size: polygons reaching beyond it by more than one patch are an error (wrong slide or scale). */
  slideSize?: { width: number; height: number };
  /** The slide id, for errors. */
  slide?: string;
}

/**
 * The share of each patch covered by tumour: the union of the tumour polygons minus the union
 * of the exclusions, measured on a `samples x samples` grid of points at the centres of equal
 * cells of the patch (even-odd rule per polygon).
 *
 * @param annotations the slide's polygons.
 * @param coords level-0 top-left corners of the N patches, `[N, 2]` flat.
 * @param patchSize side of a patch in level-0 pixels.
 * @returns `[N]` fractions in [0, 1].
 * @throws DataError naming the slide and the file when a polygon lies outside the slide.
 * @example
 * ```ts
 * // a square over the left half of a 512-px patch at (0, 0)
 * const ann = { source: 'x', polygons: [{ kind: 'tumour', group: 'Tumor', points: Float64Array.from([0, 0, 256, 0, 256, 512, 0, 512]) }] };
 * annotationTumourFractions(ann, [0, 0, 512, 0], 512); // [0.5, 0]
 * ```
 * @category WSI
 */
export function annotationTumourFractions(
  annotations: SlideAnnotations,
  coords: ArrayLike<number>,
  patchSize: number,
  options: TumourFractionOptions = {},
): Float32Array {
  const s = options.samples ?? 16;
  if (!(Number.isInteger(s) && s >= 1)) throw new ValueError(`Expected samples to be a positive integer, but got ${s}.`);
  if (!(patchSize > 0)) throw new ValueError(`Expected patchSize > 0 (level-0 pixels), but got ${patchSize}.`);
  const n = Math.floor(coords.length / 2);
  const polys = annotations.polygons.map((p) => {
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < p.points.length; i += 2) {
      x0 = Math.min(x0, p.points[i]);
      x1 = Math.max(x1, p.points[i]);
      y0 = Math.min(y0, p.points[i + 1]);
      y1 = Math.max(y1, p.points[i + 1]);
    }
    return { ...p, box: [x0, y0, x1, y1] as const };
  });
  if (options.slideSize) {
    const { width, height } = options.slideSize;
    const out = polys.find((p) => p.box[0] < -patchSize || p.box[1] < -patchSize || p.box[2] > width + patchSize || p.box[3] > height + patchSize);
    if (out) {
      throw new DataError(
        `'${annotations.source}'${options.slide ? ` (slide '${options.slide}')` : ''}: a ${out.group} polygon spans x ${out.box[0].toFixed(0)}..${out.box[2].toFixed(0)}, ` +
          `y ${out.box[1].toFixed(0)}..${out.box[3].toFixed(0)}, outside the slide (${width} x ${height} at level 0). The annotations belong to another slide or another scale.`,
      );
    }
  }
  const result = new Float32Array(n);
  const mask = new Uint8Array(s * s);
  const step = patchSize / s;
  const crossings: number[] = [];
  for (let i = 0; i < n; i++) {
    const px = coords[2 * i];
    const py = coords[2 * i + 1];
    const hits = polys.filter((p) => p.box[2] > px && p.box[0] < px + patchSize && p.box[3] > py && p.box[1] < py + patchSize);
    if (!hits.some((p) => p.kind === 'tumour')) continue;
    mask.fill(0);
    for (const pass of ['tumour', 'exclusion'] as const) {
      for (const p of hits) {
        if (p.kind !== pass) continue;
        const pts = p.points;
        const m = pts.length / 2;
        for (let r = 0; r < s; r++) {
          const y = py + (r + 0.5) * step;
          if (y < p.box[1] || y > p.box[3]) continue;
          crossings.length = 0;
          for (let e = 0; e < m; e++) {
            const ax = pts[2 * e];
            const ay = pts[2 * e + 1];
            const bx = pts[2 * ((e + 1) % m)];
            const by = pts[2 * ((e + 1) % m) + 1];
            if (ay <= y !== by <= y) crossings.push(ax + ((y - ay) / (by - ay)) * (bx - ax));
          }
          crossings.sort((u, v) => u - v);
          for (let c = 0; c + 1 < crossings.length; c += 2) {
            // sample columns with centre in [crossings[c], crossings[c + 1])
            const c0 = Math.max(0, Math.ceil((crossings[c] - px) / step - 0.5));
            const c1 = Math.min(s - 1, Math.ceil((crossings[c + 1] - px) / step - 0.5) - 1);
            for (let q = c0; q <= c1; q++) mask[r * s + q] = pass === 'tumour' ? 1 : 0;
          }
        }
      }
    }
    let inside = 0;
    for (let q = 0; q < s * s; q++) inside += mask[q];
    result[i] = inside / (s * s);
  }
  return result;
}

/**
 * The tumour fraction of each patch of a digit slide from its ground truth: the share of the
 * patch's cells that are tumour cells (the same quantity {@link annotationTumourFractions}
 * gives for drawn annotations).
 *
 * @param slide the slide's layout (`DigitSlideCohort.slide(i)` or `readDigitTruth`).
 * @param coords level-0 top-left corners of the patches, `[N, 2]` flat.
 * @param patchSize side of a patch in level-0 pixels (default `cellSize * ratio`).
 * @returns `[N]` fractions in [0, 1].
 * @example
 * ```ts
 * const f = digitTumourFractions(readDigitTruth('truth/digits_003.json'), bag.coords!);
 * ```
 * @category WSI
 */
export function digitTumourFractions(slide: DigitSlide, coords: ArrayLike<number>, patchSize = slide.cellSize * slide.ratio): Float32Array {
  const n = Math.floor(coords.length / 2);
  const out = new Float32Array(n);
  const s = slide.cellSize;
  for (let i = 0; i < n; i++) {
    const x = coords[2 * i];
    const y = coords[2 * i + 1];
    let tumour = 0;
    let cells = 0;
    for (let cy = Math.floor(y / s); cy < Math.ceil((y + patchSize) / s); cy++) {
      for (let cx = Math.floor(x / s); cx < Math.ceil((x + patchSize) / s); cx++) {
        cells++;
        if (cx >= 0 && cy >= 0 && cx < slide.cols && cy < slide.rows && slide.cellKind[cy * slide.cols + cx] === CELL_TUMOUR) tumour++;
      }
    }
    out[i] = cells ? tumour / cells : 0;
  }
  return out;
}

/**
 * The tumour fraction of each patch of a synthetic feature slide from its ground truth: the
 * share of the patch's k sub-patches whose class is a lesion class (tumour, or any lesion type
 * of a multi-class cohort).
 *
 * @returns `[N]` fractions in [0, 1], in the slide's patch order.
 * @example
 * ```ts
 * const slide = dataset.slide('slide_004');
 * const f = syntheticTumourFractions(slide, dataset.config);
 * ```
 * @category WSI
 */
export function syntheticTumourFractions(slide: SyntheticSlide, config: Pick<SyntheticFeatureConfig, 'numTissueTypes'>): Float32Array {
  const first = tumourClass(config);
  const out = new Float32Array(slide.n);
  const cls = slide.truth.subPatchClass;
  for (let i = 0; i < slide.n; i++) {
    let t = 0;
    for (let j = 0; j < slide.k; j++) if (cls[i * slide.k + j] >= first) t++;
    out[i] = t / slide.k;
  }
  return out;
}

/**
 * The tumour fraction of each patch of a synthetic slide image (`generateSyntheticSlideImage`,
 * the TIFFs of `writeSyntheticSlide`) from its ground-truth labels: the share of the patch's
 * label blocks that are lesion ({@link syntheticLesionFraction}).
 *
 * @param coords level-0 top-left corners of the patches, `[N, 2]` flat.
 * @param patchSize side of a patch in level-0 pixels.
 * @returns `[N]` fractions in [0, 1].
 * @example
 * ```ts
 * const f = syntheticImageTumourFractions(slide, tiling.coords, tiling.patchSizeLevel0);
 * ```
 * @category WSI
 */
export function syntheticImageTumourFractions(slide: SyntheticSlideImage, coords: ArrayLike<number>, patchSize: number): Float32Array {
  const n = Math.floor(coords.length / 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = syntheticLesionFraction(slide, coords[2 * i], coords[2 * i + 1], patchSize, patchSize);
  return out;
}
