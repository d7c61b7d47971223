/**
 * The registry of `sasha` commands. Each command lives in its own file and is listed here.
 *
 * @packageDocumentation
 */
import type { CommandSpec } from './args.js';
import { trainHafedCommand } from './train_hafed.js';
import { evalCommand } from './eval.js';

/** Every command, by name (`'train hafed'`, `'eval'`, ...). */
export const COMMANDS: readonly CommandSpec[] = [trainHafedCommand, evalCommand];
