/**
 * `sasha tile SLIDE... --out DIR [--level L | --mpp M]`: tissue segmentation and the patch grid
 * of each slide, written as CLAM-style coordinate files and mask images.
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, SashaError } from '../../core/errors.js';
import { describeLevels, levelMpp, tileSlide, type SlideTiling, type TissueSegmentation } from '../../wsi/index.js';
import { H5Writer } from '../h5/h5_writer.js';
import { writeFileAtomic } from '../io/file_io.js';
import { loadSharp, openSlide, slideIdFromPath } from '../open_slide.js';
import { SHARD_COUNT_FLAG, SHARD_FLAG, cohortLock, parseShard, requireString, selectShard, type CommandSpec } from './args.js';
import { progressBars } from './progress_bar.js';
import { TISSUE_FLAGS, gridFromFlags, levelFromFlags, listSlides, tissueFromFlags } from './wsi_flags.js';

/** One slide's line in `tiling.json`. */
interface TileRecord {
  id: string;
  file: string;
  status: 'ok' | 'failed';
  error?: string;
  levels?: string;
  mpp?: number | null;
  patchLevel?: number;
  patchMpp?: number | null;
  segLevel?: number;
  tissueFraction?: number;
  regions?: number;
  patches?: number;
  /** What the reader found odd but readable (empty tiles). */
  warnings?: string[];
}

/**
 * Writes the patch coordinates of a slide as CLAM does (`patches/<id>.h5`: dataset `coords`
 * (N, 2) int64, level-0 top-left corners, with attributes `patch_size` and `patch_level`).
 */
export async function writeCoordsFile(path: string, tiling: SlideTiling): Promise<void> {
  const w = await H5Writer.create(path);
  try {
    w.writeInt('coords', tiling.grid.coords, [tiling.grid.count, 2], '<i8');
    w.writeNumberAttr('coords', 'patch_size', tiling.grid.patchSize);
    w.writeNumberAttr('coords', 'patch_level', tiling.grid.level);
    await w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/**
 * Draws the segmentation level with the tissue outline (green), kept holes (blue) and the
 * patch grid (dark blue boxes), as RGB bytes of the segmentation level's size.
 */
export function drawTiling(rgb: Uint8Array, tiling: SlideTiling): Uint8Array {
  const seg: TissueSegmentation = tiling.tissue;
  const { width: w, height: h, mask, holeMask } = seg;
  const out = Uint8Array.from(rgb);
  const paint = (x: number, y: number, c: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    out.set(c, (y * w + x) * 3);
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const edge = (m: Uint8Array) =>
        m[i] === 1 && (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w]);
      if (edge(mask)) paint(x, y, [0, 170, 0]);
      else if (edge(holeMask)) paint(x, y, [0, 90, 255]);
    }
  }
  const ps = tiling.grid.patchSizeLevel0;
  for (let p = 0; p < tiling.grid.count; p++) {
    const x0 = Math.floor(tiling.grid.coords[2 * p] / seg.downsampleX);
    const y0 = Math.floor(tiling.grid.coords[2 * p + 1] / seg.downsampleY);
    const x1 = Math.floor((tiling.grid.coords[2 * p] + ps) / seg.downsampleX) - 1;
    const y1 = Math.floor((tiling.grid.coords[2 * p + 1] + ps) / seg.downsampleY) - 1;
    for (let x = x0; x <= x1; x++) {
      paint(x, y0, [20, 20, 120]);
      paint(x, y1, [20, 20, 120]);
    }
    for (let y = y0; y <= y1; y++) {
      paint(x0, y, [20, 20, 120]);
      paint(x1, y, [20, 20, 120]);
    }
  }
  return out;
}

/** The `sasha tile` command. */
export const tileCommand: CommandSpec = {
  name: 'tile',
  summary: 'segment tissue and lay the patch grid of each slide (CLAM-style coords files and mask images)',
  positionals: 'SLIDE...',
  flags: {
    out: { type: 'string', help: 'output directory (patches/<id>.h5, masks/<id>.png, tiling.json)' },
    level: { type: 'string', help: 'patch level by index', default: '3' },
    mpp: { type: 'string', help: 'patch level by micrometres per pixel (instead of --level)' },
    magnification: { type: 'string', help: 'patch level by objective magnification, 10 / mpp (instead of --level)' },
    ...TISSUE_FLAGS,
    'no-masks': { type: 'boolean', help: 'do not write mask images' },
    shard: SHARD_FLAG,
    'shard-count': SHARD_COUNT_FLAG,
  },
  lock: (args) => cohortLock(args, 'tile'),
  async run(args, io) {
    const out = requireString(args, 'out', 'tile');
    const shard = parseShard(args);
    const files = selectShard(listSlides(args.positionals, 'tile'), shard);
    const tissue = tissueFromFlags(args);
    const grid = gridFromFlags(args);
    const lowRes = levelFromFlags(args, '', { level: 3 });
    const masks = !args.values['no-masks'];
    mkdirSync(join(out, 'patches'), { recursive: true });
    if (masks) mkdirSync(join(out, 'masks'), { recursive: true });
    const sharp = masks ? await loadSharp() : null;
    if (masks && !sharp) io.log('sharp is not installed: no mask images are written (npm install sharp).');
    const bars = progressBars(io.interactive);
    const records: TileRecord[] = [];
    const t0 = performance.now();
    try {
      for (const [i, file] of files.entries()) {
        const id = slideIdFromPath(file);
        const rec: TileRecord = { id, file, status: 'ok' };
        try {
          const slide = await openSlide(file);
          for (const w of slide.warnings) io.log(w);
          if (slide.warnings.length > 0) rec.warnings = [...slide.warnings];
          try {
            const t = await tileSlide(slide, { tissue, grid, lowRes });
            await writeCoordsFile(join(out, 'patches', `${id}.h5`), t);
            if (sharp) {
              const lv = slide.levels[t.tissue.level];
              const rgb = await slide.readRegion(t.tissue.level, 0, 0, lv.width, lv.height);
              const png = await sharp(Buffer.from(drawTiling(rgb, t)), { raw: { width: lv.width, height: lv.height, channels: 3 } })
                .png()
                .toBuffer();
              await writeFileAtomic(join(out, 'masks', `${id}.png`), png);
            }
            Object.assign(rec, {
              levels: describeLevels(slide.levels),
              mpp: slide.mpp ?? null,
              patchLevel: t.grid.level,
              patchMpp: levelMpp(slide, t.grid.level) ?? null,
              segLevel: t.tissue.level,
              tissueFraction: +t.tissue.tissueFraction.toFixed(4),
              regions: t.tissue.regions.length,
              patches: t.grid.count,
            });
          } finally {
            await slide.close();
          }
        } catch (e) {
          const msg = e instanceof SashaError ? e.message : String((e as Error)?.message ?? e);
          rec.status = 'failed';
          rec.error = msg;
          io.log(`Skipping slide '${id}': ${msg}`);
        }
        records.push(rec);
        bars.onProgress({ task: 'tile', done: i + 1, total: files.length });
      }
    } finally {
      bars.stop();
    }
    const name = shard.count > 1 ? `tiling.shard-${shard.index}-of-${shard.count}.json` : 'tiling.json';
    await writeFileAtomic(join(out, name), JSON.stringify(records, null, 2) + '\n');
    const ok = records.filter((r) => r.status === 'ok');
    if (files.length > 0 && ok.length === 0) {
      throw new DataError(`No slide could be tiled; see ${join(out, name)}. First error: ${records[0]?.error}`);
    }
    return {
      slides: files.length,
      tiled: ok.length,
      failed: records.filter((r) => r.status === 'failed').map((r) => ({ id: r.id, error: r.error })),
      patches: ok.reduce((s, r) => s + (r.patches ?? 0), 0),
      seconds: +((performance.now() - t0) / 1000).toFixed(2),
      out,
    };
  },
};
