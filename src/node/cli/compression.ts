/**
 * `sasha compression`: the bytes of SASHA's N x d state against the N x k x d high-res features
 * and the high-res pixels, per slide and for the cohort, measured on the user's feature files
 * (shapes and element types from the files' metadata, file sizes from the disk).
 *
 * @packageDocumentation
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import { cohortCompression, type CompressionReport, type SlideStorageShape } from '../../eval/index.js';
import { H5FeatureDataset, readSplitFile } from '../h5/index.js';
import { datasetInfo, openH5, readNumberAttr } from '../h5/h5file.js';
import { readModelManifest } from '../model_dir.js';
import { numberFlag, type CommandSpec } from './args.js';
import { progressBars } from './progress_bar.js';
import type * as H5 from 'h5wasm';

const BYTES: Record<string, number> = { float16: 2, float32: 4, float64: 8 };

function pathFlag(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? path.resolve(v) : undefined;
}

/** Bytes in the largest binary unit that keeps the number >= 1. */
function mib(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(2)} ${units[u]}`;
}

/** `sasha compression`. */
export const compressionCommand: CommandSpec = {
  name: 'compression',
  summary: "bytes of SASHA's N x d state against the N x k x d high-res features and pixels, per slide and for the cohort",
  flags: {
    model: { type: 'string', help: 'model directory: take its feature files (and its split with --subset)' },
    'lr-h5': { type: 'string', help: 'low-res features Z (reference h5 layout)' },
    'hr-h5': { type: 'string', help: 'high-res features U (reference h5 layout)' },
    split: { type: 'string', help: 'split file, to restrict the slides with --subset' },
    subset: { type: 'string', help: "'train', 'val', 'test' or 'all'", default: 'all' },
    'sub-patch-size': { type: 'string', help: "side in pixels of a high-res sub-patch (default: the files' patch_size attribute, written by sasha extract)" },
  },
  async run(args, io) {
    const cmd = 'compression';
    const dir = pathFlag(args.values.model);
    const recorded = dir ? readModelManifest(dir).data : undefined;
    const lrH5 = pathFlag(args.values['lr-h5']) ?? recorded?.lrH5;
    const hrH5 = pathFlag(args.values['hr-h5']) ?? recorded?.hrH5;
    const splitPath = pathFlag(args.values.split) ?? recorded?.split;
    if (!lrH5 || !hrH5) throw new ValueError(`'sasha ${cmd}' needs --lr-h5 and --hr-h5 (or --model DIR of a model trained on them).`);
    const subset = String(args.values.subset ?? 'all');
    if (!['train', 'val', 'test', 'all'].includes(subset)) throw new ValueError(`Expected --subset to be 'train', 'val', 'test' or 'all', but got '${subset}'.`);
    const sideFlag = args.values['sub-patch-size'] !== undefined ? numberFlag(args, 'sub-patch-size', 0, { min: 1, integer: true }) : undefined;

    const dataset = await H5FeatureDataset.open({ lrH5, hrH5 });
    let hr: H5.File | null = null;
    const bars = progressBars(io.interactive);
    try {
      let ids = [...dataset.ids];
      if (subset !== 'all') {
        if (!splitPath) throw new ValueError(`--subset ${subset} needs --split (or --model).`);
        ids = readSplitFile(splitPath, dataset)[subset as 'train' | 'val' | 'test'];
        if (ids.length === 0) throw new DataError(`The split '${splitPath}' has no ${subset} slides.`);
      }
      hr = await openH5(hrH5, 'the high-res feature file');
      const shapes: SlideStorageShape[] = [];
      let sideSource = sideFlag !== undefined ? '--sub-patch-size' : 'the patch_size attribute';
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        const where = `'${hrH5}', slide '${id}'`;
        const info = await datasetInfo(hr, `${id}/feat`);
        if (!info) throw new DataError(`${where}: no 'feat' dataset. Extract this slide's high-res features.`);
        const bytesPerValue = BYTES[info.type];
        if (!bytesPerValue) throw new DataError(`${where}: expected float features, but 'feat' holds ${info.type}.`);
        const [n, k, d] = info.shape;
        let side = sideFlag;
        if (side === undefined) side = readNumberAttr(hr.get(id) as H5.Group, 'patch_size', where);
        if (side === undefined) sideSource = 'none';
        shapes.push({ id, numPatches: n, k, dim: d, bytesPerValue, ...(side !== undefined ? { subPatchSide: side } : {}) });
        bars.onProgress({ task: 'read metadata', done: i + 1, total: ids.length });
      }
      const anySide = shapes.some((s) => s.subPatchSide !== undefined);
      const allSides = shapes.every((s) => s.subPatchSide !== undefined);
      if (anySide && !allSides) {
        const missing = shapes.find((s) => s.subPatchSide === undefined)!;
        throw new DataError(`'${hrH5}', slide '${missing.id}': no patch_size attribute while other slides have one. Pass --sub-patch-size.`);
      }
      if (!anySide) io.log(`'${hrH5}' records no sub-patch size (patch_size): pixels are not counted. Pass --sub-patch-size (e.g. 256) to count them.`);
      const { slides, cohort } = cohortCompression(shapes);
      const fileBytes = (p?: string) => (p && existsSync(p) ? statSync(p).size : null);
      const vH5 = dir ? path.join(dir, 'v.h5') : undefined;
      const files = { lrH5: { path: lrH5, bytes: fileBytes(lrH5) }, hrH5: { path: hrH5, bytes: fileBytes(hrH5) }, ...(vH5 && existsSync(vH5) ? { vH5: { path: vH5, bytes: fileBytes(vH5) } } : {}) };
      return {
        subset,
        slides,
        cohort,
        dtype: Object.keys(BYTES).find((t) => BYTES[t] === shapes[0].bytesPerValue),
        subPatchSideFrom: sideSource,
        files,
        onDiskRatio: files.hrH5.bytes && files.lrH5.bytes ? files.hrH5.bytes / files.lrH5.bytes : null,
      };
    } finally {
      bars.stop();
      hr?.close();
      dataset.close();
    }
  },
  render(result) {
    const slides = result.slides as CompressionReport[];
    const c = result.cohort as CompressionReport;
    const f = (v: number | undefined, digits = 1) => (v === undefined ? 'n/a' : v.toFixed(digits));
    const lines = [`${'slide'.padEnd(24)}${'N'.padStart(7)}  ${'state'.padStart(11)}  ${'high-res features'.padStart(18)}  ${'ratio'.padStart(6)}  ${'high-res pixels'.padStart(16)}  ${'ratio'.padStart(8)}`];
    const line = (name: string, r: CompressionReport) =>
      `${name.padEnd(24)}${String(r.numPatches).padStart(7)}  ${mib(r.stateBytes).padStart(11)}  ${mib(r.highResFeatureBytes).padStart(18)}  ${f(r.featureRatio).padStart(6)}  ${(r.highResPixelBytes !== undefined ? mib(r.highResPixelBytes) : 'n/a').padStart(16)}  ${f(r.pixelRatio, 0).padStart(8)}`;
    for (const s of slides) lines.push(line(s.id ?? '?', s));
    lines.push(line(`cohort (${slides.length} slides)`, c));
    const files = result.files as Record<string, { path: string; bytes: number | null }>;
    lines.push('', `k = ${c.k}, d = ${c.dim}, ${String(result.dtype)} features; state counted at the same width.`);
    lines.push(
      `On disk: ${Object.entries(files)
        .map(([k, v]) => `${k} ${v.bytes === null ? 'missing' : mib(v.bytes)}`)
        .join(', ')}${result.onDiskRatio ? `; hr.h5 / lr.h5 = ${(result.onDiskRatio as number).toFixed(1)}` : ''}.`,
    );
    return lines.join('\n');
  },
};
