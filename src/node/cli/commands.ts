/**
 * The registry of `sasha` commands. Each command lives in its own file and is listed here.
 *
 * @packageDocumentation
 */
import type { CommandSpec } from './args.js';
import { ablateCommand } from './ablate.js';
import { compressionCommand } from './compression.js';
import { interpretCommand } from './interpret.js';
import { evalCommand } from './eval.js';
import { extractCommand } from './extract.js';
import { importReferenceCommand } from './import_reference.js';
import { inferCommand } from './infer.js';
import { mergeCommand } from './merge.js';
import { tileCommand } from './tile.js';
import { trainHafedCommand } from './train_hafed.js';
import { trainTsuCommand } from './train_tsu.js';
import { trainAllCommand, trainPolicyCommand } from './train_sasha.js';

/** Every command, by name (`'train hafed'`, `'eval'`, ...). */
export const COMMANDS: readonly CommandSpec[] = [
  tileCommand,
  extractCommand,
  trainHafedCommand,
  trainTsuCommand,
  trainPolicyCommand,
  trainAllCommand,
  evalCommand,
  ablateCommand,
  compressionCommand,
  interpretCommand,
  inferCommand,
  importReferenceCommand,
  mergeCommand,
];
