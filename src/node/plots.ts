/**
 * Plot files (Node): an SVG from `src/eval/plots.ts` written as `.svg` and rendered to `.png`
 * by sharp (librsvg), both written atomically.
 *
 * @packageDocumentation
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DataError } from '../core/errors.js';
import { writeFileAtomic } from './io/file_io.js';
import { loadSharp } from './open_slide.js';

/**
 * Writes `svg` to `<base>.svg` and its rendering to `<base>.png` (at `scale` times the SVG's
 * size). Folders are created.
 *
 * @param base path without extension, e.g. `plots/accuracy_vs_budget`.
 * @returns the two file paths.
 * @throws DataError when sharp is not installed (the PNG needs it; the SVG is written first).
 * @example
 * ```ts
 * await writePlot('plots/reliability_0.2', reliabilityDiagramSvg(bins, { title: 'f = 0.2' }));
 * ```
 * @category Node
 */
export async function writePlot(base: string, svg: string, scale = 2): Promise<{ svg: string; png: string }> {
  await mkdir(dirname(base), { recursive: true });
  const svgFile = `${base}.svg`;
  const pngFile = `${base}.png`;
  await writeFileAtomic(svgFile, svg);
  const sharp = await loadSharp();
  if (!sharp) throw new DataError(`Wrote ${svgFile}; the PNG needs sharp: npm install sharp.`);
  const png = await sharp(Buffer.from(svg), { density: 72 * scale }).png().toBuffer();
  await writeFileAtomic(pngFile, new Uint8Array(png.buffer, png.byteOffset, png.length));
  return { svg: svgFile, png: pngFile };
}
