import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/core/index.js';
import { annotationTumourFractions, parseAnnotations, parseAsapXml, parseQuPathGeoJson, type SlideAnnotations } from '../../src/wsi/index.js';
import {
  CELL_TUMOUR,
  digitTruthAt,
  digitTumourFractions,
  SyntheticDataset,
  SYNTHETIC_PRESETS,
  syntheticTumourFractions,
  generateSyntheticSlideImage,
  syntheticImageTumourFractions,
  syntheticLesionFraction,
  tumourClass,
  type DigitSlide,
} from '../../src/wsi/synthetic/index.js';

const ASAP = `<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="512" Y="512" />
        <Coordinate Order="0" X="0" Y="0" />
        <Coordinate Order="1" X="512" Y="0" />
        <Coordinate Order="3" X="0" Y="512" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Spline" PartOfGroup="_2" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="256" Y="0" />
        <Coordinate Order="2" X="256" Y="256" /><Coordinate Order="3" X="0" Y="256" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot" Type="Dot" PartOfGroup="Tumor"><Coordinates><Coordinate Order="0" X="5" Y="5" /></Coordinates></Annotation>
    <Annotation Name="Other" Type="Polygon" PartOfGroup="Stroma">
      <Coordinates><Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="9" Y="0"/><Coordinate Order="2" X="9" Y="9"/></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="Tumor" PartOfGroup="None" Color="#00F"><Attributes /></Group></AnnotationGroups>
</ASAP_Annotations>`;

describe('ASAP XML', () => {
  it('reads tumour and exclusion polygons in vertex order, skipping dots and other groups', () => {
    const a = parseAsapXml(ASAP, 'tumor_001.xml');
    expect(a.polygons).toHaveLength(2);
    expect(a.polygons[0]).toMatchObject({ kind: 'tumour', group: 'Tumor' });
    expect([...a.polygons[0].points]).toEqual([0, 0, 512, 0, 512, 512, 0, 512]);
    expect(a.polygons[1]).toMatchObject({ kind: 'exclusion', group: '_2' });
    // a 512-px tumour square minus its 256-px corner, on 512-px patches: 3/4 of patch 0, nothing of patch 1
    const f = annotationTumourFractions(a, [0, 0, 512, 0], 512);
    expect([...f]).toEqual([0.75, 0]);
    expect(parseAnnotations(ASAP, 'x.xml').polygons).toHaveLength(2);
  });

  it('reads decimal commas and names the file and annotation on bad input', () => {
    const comma = ASAP.replace('X="512" Y="0"', 'X="512,0" Y="0,0"');
    expect([...parseAsapXml(comma).polygons[0].points].slice(2, 4)).toEqual([512, 0]);
    expect(() => parseAsapXml('<xml/>', 'a.xml')).toThrow(/'a\.xml' is not an ASAP annotation file/);
    const bad = ASAP.replace('X="512" Y="512"', 'X="abc" Y="512"');
    expect(() => parseAsapXml(bad, 'b.xml')).toThrow(/'b\.xml', annotation 'Annotation 0': coordinate 2 is not a number/);
    const short = ASAP.replace(/<Coordinate Order="[23]" X="512" Y="512" \/>|<Coordinate Order="3" X="0" Y="512" \/>/g, '').replace('<Coordinate Order="1" X="512" Y="0" />', '');
    expect(() => parseAsapXml(short, 'c.xml')).toThrow(DataError);
  });
});

describe('QuPath GeoJSON', () => {
  const fc = (features: unknown[]) => JSON.stringify({ type: 'FeatureCollection', features });
  const square = (x: number, y: number, s: number) => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];

  it('reads classified polygons with holes, multipolygons and unclassified outlines', () => {
    const text = fc([
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [square(0, 0, 100), square(0, 0, 50)] }, properties: { objectType: 'annotation', classification: { name: 'Tumor', colorRGB: -1 } } },
      { type: 'Feature', geometry: { type: 'MultiPolygon', coordinates: [[square(100, 0, 100)], [square(300, 0, 10)]] }, properties: {} },
      { type: 'Feature', geometry: { type: 'Polygon', coordinates: [square(0, 100, 100)] }, properties: { classification: { name: 'Stroma' } } },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [1, 1] }, properties: { classification: { name: 'Tumor' } } },
    ]);
    const a = parseQuPathGeoJson(text, 's.geojson');
    expect(a.polygons.map((p) => p.kind)).toEqual(['tumour', 'exclusion', 'tumour', 'tumour']);
    // patches of 100 px: [0,100) has tumour minus a 50x50 hole -> 0.75; [100,200) all tumour; (0,100) stroma -> 0
    expect([...annotationTumourFractions(a, [0, 0, 100, 0, 0, 100], 100)]).toEqual([0.75, 1, 0]);
    expect(parseQuPathGeoJson(text, 's', { unclassified: 'ignore' }).polygons).toHaveLength(2);
    expect(parseQuPathGeoJson(text, 's', { tumourClasses: ['Stroma'] }).polygons.map((p) => p.group)).toEqual(['unclassified', 'unclassified', 'Stroma']);
  });

  it('names the file on bad input', () => {
    expect(() => parseQuPathGeoJson('{', 'x.geojson')).toThrow(/'x\.geojson' is not valid JSON/);
    expect(() => parseQuPathGeoJson('{"type": "Topology"}', 'x.geojson')).toThrow(/JSON but not GeoJSON/);
    expect(() => parseQuPathGeoJson(fc([{ type: 'Feature', properties: {} }]), 'y.geojson')).toThrow(/'y\.geojson', feature 0 has no geometry/);
    expect(() => parseQuPathGeoJson(fc([{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 'a'], [2, 2]]] } }]), 'z.geojson')).toThrow(/vertex 1 of ring 0 is not a pair of numbers/);
    expect(() => parseAnnotations('tumour!', 'w.txt')).toThrow(/'w\.txt' is neither ASAP XML nor GeoJSON/);
  });
});

describe('annotationTumourFractions', () => {
  const tri: SlideAnnotations = { source: 't', polygons: [{ kind: 'tumour', group: 'Tumor', points: Float64Array.from([0, 0, 64, 0, 0, 64]) }] };

  it('measures a triangle on the sample grid, and overlapping polygons once', () => {
    // the triangle below the anti-diagonal of a 64-px patch: exactly half the area. With s x s
    // cell centres, the points with i + j < s - 1 lie strictly inside: s (s - 1) / 2 of s^2.
    for (const s of [4, 16, 64]) {
      expect(annotationTumourFractions(tri, [0, 0], 64, { samples: s })[0]).toBeCloseTo((s * (s - 1)) / 2 / (s * s), 12);
    }
    const twice: SlideAnnotations = { source: 't', polygons: [...tri.polygons, ...tri.polygons] };
    expect(annotationTumourFractions(twice, [0, 0], 64, { samples: 8 })[0]).toBe(annotationTumourFractions(tri, [0, 0], 64, { samples: 8 })[0]);
  });

  it('refuses polygons outside the slide, naming the file and the slide', () => {
    expect(() => annotationTumourFractions(tri, [0, 0], 64, { slideSize: { width: 10, height: 10 }, slide: 'tumor_009' })).not.toThrow();
    const far: SlideAnnotations = { source: 'tumor_009.xml', polygons: [{ kind: 'tumour', group: 'Tumor', points: Float64Array.from([9000, 0, 9100, 0, 9100, 100]) }] };
    expect(() => annotationTumourFractions(far, [0, 0], 64, { slideSize: { width: 1000, height: 1000 }, slide: 'tumor_009' })).toThrow(
      /'tumor_009\.xml' \(slide 'tumor_009'\): a Tumor polygon spans x 9000\.\.9100.*outside the slide \(1000 x 1000/,
    );
  });
});

describe('ground truth as tumour fractions', () => {
  it('digit slides: tumour cells over the cells of each patch, as digitTruthAt counts them', () => {
    const cols = 8;
    const rows = 4;
    const cellKind = new Uint8Array(cols * rows);
    cellKind[0] = CELL_TUMOUR;
    cellKind[1] = CELL_TUMOUR;
    cellKind[cols + 5] = CELL_TUMOUR;
    const slide = { cellSize: 32, ratio: 4, cols, rows, cellKind, width: cols * 32, height: rows * 32, cellDigit: new Int8Array(cols * rows) } as unknown as DigitSlide;
    const coords = [0, 0, 128, 0];
    const f = digitTumourFractions(slide, coords);
    expect([...f]).toEqual([2 / 16, 1 / 16]);
    expect([...digitTruthAt(slide, coords, 128).tumour].map((t) => t / 16)).toEqual([...f]);
  });

  it('synthetic feature slides: lesion sub-patches over k', () => {
    const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS.tiny, seed: 3 });
    const pos = ds.ids.find((_, i) => ds.labels[i] === 1)!;
    const slide = ds.slide(pos);
    const f = syntheticTumourFractions(slide, ds.config);
    let tumourSubs = 0;
    for (const c of slide.truth.subPatchClass) if (c === tumourClass(ds.config)) tumourSubs++;
    expect(f.reduce((a, b) => a + b, 0) * slide.k).toBeCloseTo(tumourSubs, 6);
    expect(tumourSubs / (slide.n * slide.k)).toBeCloseTo(slide.truth.tumourFraction, 12);
    expect(f.filter((v) => v > 0).length).toBe(slide.truth.tumourPatches);
  });
});

describe('synthetic slide images as tumour fractions', () => {
  it('gives each patch the lesion share of its label blocks', () => {
    const slide = generateSyntheticSlideImage({ seed: 2 });
    const size = 4 * slide.blockSize;
    const coords: number[] = [];
    for (let y = 0; y + size <= slide.image.height; y += size) for (let x = 0; x + size <= slide.image.width; x += size) coords.push(x, y);
    const f = syntheticImageTumourFractions(slide, coords, size);
    for (let i = 0; i < f.length; i++) expect(f[i]).toBeCloseTo(syntheticLesionFraction(slide, coords[2 * i], coords[2 * i + 1], size, size), 6);
    // the fractions are multiples of 1/16 (4 x 4 blocks), and some patch holds lesion
    for (const v of f) expect(v * 16).toBeCloseTo(Math.round(v * 16), 5);
    expect(Math.max(...f)).toBeGreaterThan(0);
  });
});
