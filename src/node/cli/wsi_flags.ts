/**
 * Flags shared by `sasha tile` and `sasha extract`: tissue segmentation, patch grid, levels,
 * and the slide list.
 *
 * @packageDocumentation
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ValueError } from '../../core/errors.js';
import { TISSUE_PRESETS, type PatchGridConfig, type PatchRule, type TissueConfig } from '../../wsi/index.js';
import type { LevelSpec } from '../../wsi/slide_source.js';
import { numberFlag, type FlagSpec, type ParsedArgs } from './args.js';

/** Tissue and grid flags. */
export const TISSUE_FLAGS: Record<string, FlagSpec> = {
  preset: { type: 'string', help: 'CLAM segmentation preset: clam, tcga, bwhBiopsy, bwhResection', default: 'clam' },
  'seg-level': { type: 'string', help: 'segmentation level (-1: the level closest to 64x)', default: '-1' },
  sthresh: { type: 'string', help: 'saturation threshold', default: '8' },
  mthresh: { type: 'string', help: 'median blur window (odd)', default: '7' },
  close: { type: 'string', help: 'closing square (0: none)', default: '4' },
  'a-t': { type: 'string', help: 'minimum tissue area, in 512 x 512 level-0 patches', default: '100' },
  'a-h': { type: 'string', help: 'minimum hole area, in 512 x 512 level-0 patches', default: '16' },
  'patch-size': { type: 'string', help: 'patch side in pixels', default: '256' },
  rule: { type: 'string', help: 'tissue test: fourPt, fourPtHard, center, tissueFraction', default: 'fourPt' },
  'min-tissue': { type: 'string', help: 'minimum tissue fraction for --rule tissueFraction', default: '0.5' },
};

/** The tissue config from the flags (a preset, then single flags over it). */
export function tissueFromFlags(args: ParsedArgs): Partial<TissueConfig> {
  const preset = (args.values.preset as string | undefined) ?? 'clam';
  if (!(preset in TISSUE_PRESETS)) {
    throw new ValueError(`Expected --preset to be one of ${Object.keys(TISSUE_PRESETS).join(', ')}, but got '${preset}'.`);
  }
  const out: Partial<TissueConfig> = { ...TISSUE_PRESETS[preset as keyof typeof TISSUE_PRESETS] };
  const set = (flag: string, key: keyof TissueConfig, opts: Parameters<typeof numberFlag>[3] = {}) => {
    if (args.values[flag] !== undefined) out[key] = numberFlag(args, flag, 0, opts);
  };
  set('seg-level', 'segLevel', { integer: true, min: -1 });
  set('sthresh', 'sthresh', { min: 0, max: 255 });
  set('mthresh', 'mthresh', { integer: true, min: 1 });
  set('close', 'close', { integer: true, min: 0 });
  set('a-t', 'aT', { min: 0 });
  set('a-h', 'aH', { min: 0 });
  return out;
}

/** The grid config from the flags. */
export function gridFromFlags(args: ParsedArgs): Partial<PatchGridConfig> {
  const rule = (args.values.rule as string | undefined) ?? 'fourPt';
  const rules = ['fourPt', 'fourPtHard', 'center', 'tissueFraction'];
  if (!rules.includes(rule)) throw new ValueError(`Expected --rule to be one of ${rules.join(', ')}, but got '${rule}'.`);
  return {
    patchSize: numberFlag(args, 'patch-size', 256, { integer: true, min: 1 }),
    rule: rule as PatchRule,
    minTissueFraction: numberFlag(args, 'min-tissue', 0.5, { min: 0, max: 1 }),
  };
}

/**
 * A level from `--<prefix>level`, `--<prefix>mpp` or `--<prefix>magnification` (at most one),
 * or `fallback`.
 */
export function levelFromFlags(args: ParsedArgs, prefix: string, fallback: LevelSpec | undefined): LevelSpec | undefined {
  const names = ['level', 'mpp', 'magnification'].map((n) => `${prefix}${n}`);
  const given = names.filter((n) => args.values[n] !== undefined);
  if (given.length > 1) throw new ValueError(`Give at most one of ${names.map((n) => '--' + n).join(', ')}, but got ${given.map((n) => '--' + n).join(' and ')}.`);
  if (given.length === 0) return fallback;
  const [name] = given;
  if (name.endsWith('level')) return { level: numberFlag(args, name, 0, { integer: true, min: 0 }) };
  if (name.endsWith('mpp')) return { mpp: numberFlag(args, name, 0, { min: 0, minExclusive: true }) };
  return { magnification: numberFlag(args, name, 0, { min: 0, minExclusive: true }) };
}

/** Slide file extensions looked for in directories given as SLIDE. */
const SLIDE_EXT = /\.(tif|tiff|svs|btf|tf8|ptif)$/i;

/**
 * The slide files named on the command line; a directory stands for the slide files in it
 * (sorted). Missing paths are kept, so that they are reported as failed slides.
 */
export function listSlides(positionals: string[], cmd: string): string[] {
  if (positionals.length === 0) throw new ValueError(`'sasha ${cmd}' needs at least one SLIDE (a file or a directory of slides).`);
  const out: string[] = [];
  for (const p of positionals) {
    if (existsSync(p) && statSync(p).isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => SLIDE_EXT.test(f))
        .sort()
        .map((f) => join(p, f));
      if (files.length === 0) throw new ValueError(`Directory '${p}' holds no .tif, .tiff or .svs slides.`);
      out.push(...files);
    } else out.push(p);
  }
  return out;
}
