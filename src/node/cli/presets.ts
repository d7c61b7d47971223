/**
 * The `--preset` flag of the training commands: the dataset column of the official code's
 * configs (`SASHA_PRESETS`) for every stage, with single flags over it.
 *
 * @packageDocumentation
 */
import { ValueError } from '../../core/errors.js';
import { SASHA_PRESET_NAMES, SASHA_PRESETS, type SashaPreset, type SashaPresetName } from '../../pipeline/presets.js';
import type { FlagSpec, ParsedArgs } from './args.js';

/** The `--preset` flag every training command shares. */
export const PRESET_FLAG: FlagSpec = {
  type: 'string',
  help:
    "settings of every stage: 'default' (the library's policy recipe), 'reference' (the official code's), 'camelyon16' or 'tcga' " +
    "(the official code's per dataset); default: the model directory's, else 'default'",
};

/** Help text of a flag whose default comes from the preset: `'... (camelyon16 5, tcga 1)'`. */
export function presetDefaultHelp(help: string, pick: (p: SashaPreset) => number | string): string {
  return `${help} (from --preset: ${SASHA_PRESET_NAMES.map((n) => `${n} ${pick(SASHA_PRESETS[n])}`).join(', ')})`;
}

/**
 * The preset a command runs with: `--preset` when given, else the one recorded in the model
 * directory (`recorded`), else `default`.
 */
export function presetFromFlag(args: ParsedArgs, recorded?: unknown): { name: SashaPresetName; preset: SashaPreset } {
  const raw = args.values.preset ?? (typeof recorded === 'string' ? recorded : 'default');
  if (typeof raw !== 'string' || !(SASHA_PRESET_NAMES as readonly string[]).includes(raw)) {
    throw new ValueError(`Expected --preset to be one of ${SASHA_PRESET_NAMES.join(', ')}, but got '${String(raw)}'.`);
  }
  const name = raw as SashaPresetName;
  return { name, preset: SASHA_PRESETS[name] };
}
