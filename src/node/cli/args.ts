/**
 * Flag parsing and the contract every CLI command follows: long flags, `--json` (the last line
 * on stdout is one JSON object with the command's results), `--shard i/n` for cohort commands,
 * and errors that name the fix.
 *
 * @packageDocumentation
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ValueError } from '../../core/errors.js';

/** A flag of a command. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  /** One-line help. */
  help: string;
  /** Shown in help; applied by the command itself. */
  default?: string | boolean;
  /** May repeat (values collected in an array). */
  multiple?: boolean;
}

/** A CLI command: its flags, whether it takes positional arguments, and its run function. */
export interface CommandSpec {
  /** `'train hafed'`, `'eval'`, `'tile'`. */
  name: string;
  /** One-line summary. */
  summary: string;
  /** Flags (without the shared `--json` and `--help`). */
  flags: Record<string, FlagSpec>;
  /** Name of the positional arguments in help (`'SLIDE...'`), if any. */
  positionals?: string;
  /**
   * The output folder the command writes into and its lock file: `runCli` holds that lock
   * (see `lockFolder`) while the command runs, so that two runs never write one folder at once.
   */
  lock?(args: ParsedArgs): FolderLockSpec | undefined;
  /**
   * Runs the command and returns its results (printed as JSON with `--json`, as a short
   * human summary otherwise).
   */
  run(args: ParsedArgs, io: CommandIO): Promise<Record<string, unknown>>;
  /**
   * The human-readable form of a result (without `--json`); undefined (or no `render`) prints
   * one `key: value` line per field.
   */
  render?(result: Record<string, unknown>): string | undefined;
}

/** An output folder to lock while a command runs. */
export interface FolderLockSpec {
  dir: string;
  /** Lock file name in `dir` (default `.sasha.lock`). */
  name?: string;
  /** Shown to a second run that finds the folder locked. */
  purpose: string;
}

/** The lock of a model directory given by flag `flag` (`--out` or `--model`), when given. */
export function folderLockOf(args: ParsedArgs, flag: string, cmd: string): FolderLockSpec | undefined {
  const dir = args.values[flag];
  return typeof dir === 'string' && dir !== '' ? { dir: path.resolve(dir), purpose: `sasha ${cmd}` } : undefined;
}

/** The lock of a cohort command's `--out` folder: one lock file per shard, so that shards share the folder. */
export function cohortLock(args: ParsedArgs, cmd: string): FolderLockSpec | undefined {
  const out = args.values.out;
  if (typeof out !== 'string' || out === '') return undefined;
  const shard = parseShard(args);
  return { dir: path.resolve(out), name: shardLockName(shard), purpose: `sasha ${cmd} (${describeShard(shard)})` };
}

/**
 * Exit code of a command that ran but could not produce every result it was asked for (for
 * example `sasha ablate --no-train` with rows left to train); its JSON says which.
 */
export const EXIT_INCOMPLETE = 3;

/** What a command gets. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
}

/** Output channels: `log` and progress go to stderr; stdout stays for results. */
export interface CommandIO {
  log(message: string): void;
  /** Whether progress bars may be drawn (stderr is a terminal and not `--quiet`). */
  interactive: boolean;
}

/** Parses argv for one command. Unknown flags are errors that list the known ones. */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    json: { type: 'boolean' },
    help: { type: 'boolean' },
    quiet: { type: 'boolean' },
  };
  for (const [k, f] of Object.entries(spec.flags)) options[k] = f.multiple ? { type: f.type, multiple: true } : { type: f.type };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    if (!spec.positionals && positionals.length > 0) {
      throw new ValueError(`'sasha ${spec.name}' takes no positional arguments, but got: ${positionals.join(' ')}.`);
    }
    return { values: values as ParsedArgs['values'], positionals, json: Boolean(values.json) };
  } catch (e) {
    if (e instanceof ValueError) throw e;
    throw new ValueError(`${(e as Error).message}. Run 'sasha ${spec.name} --help' for the flags.`);
  }
}

/** Help text of a command. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`sasha ${spec.name}${spec.positionals ? ' ' + spec.positionals : ''} [flags]`, '', spec.summary, '', 'Flags:'];
  const all: [string, FlagSpec][] = [
    ...Object.entries(spec.flags),
    ['json', { type: 'boolean', help: 'print the results as one JSON object on the last line of stdout' }],
    ['quiet', { type: 'boolean', help: 'no progress bars' }],
  ];
  const heads = all.map(([k, f]) => `  --${k}${f.type === 'string' ? ` <${k.toUpperCase().replace(/-/g, '_')}>` : ''}`);
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  all.forEach(([, f], i) => {
    const def = f.default !== undefined ? ` (default ${f.default})` : '';
    lines.push(heads[i].padEnd(width) + f.help + def);
  });
  return lines.join('\n');
}

/** Flags that say where things are or how to print, not how a model is trained. */
const LOCATION_FLAGS = new Set(['json', 'quiet', 'help', 'resume', 'out', 'model', 'lr-h5', 'hr-h5', 'split', 'predictions']);

/**
 * The training flags a command ran with (every flag given, except locations and output
 * switches), for its manifest entry: `sasha ablate` re-runs a stage with the same flags and
 * one setting changed, so an ablated model differs from the default in that setting only.
 */
export function recordedFlags(args: ParsedArgs): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(args.values)) {
    if (LOCATION_FLAGS.has(k) || v === undefined || typeof v === 'boolean' || Array.isArray(v)) continue;
    out[k] = v;
  }
  return out;
}

/** Reads a required string flag, or throws naming it. */
export function requireString(args: ParsedArgs, name: string, cmd: string): string {
  const v = args.values[name];
  if (typeof v !== 'string' || v === '') {
    throw new ValueError(`'sasha ${cmd}' needs --${name}. Run 'sasha ${cmd} --help' for the flags.`);
  }
  return v;
}

/** Reads an optional numeric flag with a range check. */
export function numberFlag(
  args: ParsedArgs,
  name: string,
  fallback: number,
  opts: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean } = {},
): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const bad =
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(v) ||
    (opts.integer && !Number.isInteger(v)) ||
    (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) ||
    (opts.max !== undefined && v > opts.max);
  if (bad) {
    const range = [
      opts.integer ? 'an integer' : 'a number',
      opts.min !== undefined ? `${opts.minExclusive ? '>' : '>='} ${opts.min}` : '',
      opts.max !== undefined ? `<= ${opts.max}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    throw new ValueError(`Expected --${name} to be ${range}, but got '${String(raw)}'.`);
  }
  return v;
}

/** A shard `i/n` of a cohort: this process handles the items whose index mod n equals i. */
export interface Shard {
  index: number;
  count: number;
  /** Where the shard came from: `'--shard'`, `'SLURM_ARRAY_TASK_ID'`, `'JOB_COMPLETION_INDEX'`, or `'none'`. */
  source?: string;
}

/** Reads a non-negative integer from an environment variable, or throws naming it. */
function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) throw new ValueError(`Expected the environment variable ${name} to be a non-negative integer, but got '${raw}'.`);
  return Number(raw.trim());
}

/**
 * The shard of this process: `--shard i/n` (0-based i < n) when given; else from the
 * scheduler that started it:
 * - a SLURM array job (`sbatch --array=0-3`): i = `SLURM_ARRAY_TASK_ID`; n =
 *   `--shard-count` (or `SASHA_SHARD_COUNT`) when given, else `SLURM_ARRAY_TASK_COUNT` with i
 *   counted from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`. A task resubmitted
 *   alone (`sbatch --array=2`) is an array of one: give the count (the cluster guide's script does);
 * - a Kubernetes indexed Job: i = `JOB_COMPLETION_INDEX`, n = `--shard-count` (or
 *   `SASHA_SHARD_COUNT`), the Job's `completions`.
 * Absent all of these, the whole cohort (0/1).
 * @throws ValueError naming the flag or variable to fix.
 */
export function parseShard(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Shard {
  const raw = args.values.shard;
  const countFlag = args.values['shard-count'];
  let count: number | undefined;
  if (countFlag !== undefined) {
    count = typeof countFlag === 'string' && /^\d+$/.test(countFlag.trim()) ? Number(countFlag) : NaN;
    if (!(count >= 1)) throw new ValueError(`Expected --shard-count to be a positive integer, but got '${String(countFlag)}'.`);
  } else {
    count = envInt(env, 'SASHA_SHARD_COUNT');
    if (count === 0) throw new ValueError('Expected SASHA_SHARD_COUNT to be a positive integer, but got 0.');
  }
  if (raw !== undefined) {
    const m = typeof raw === 'string' ? /^(\d+)\/(\d+)$/.exec(raw.trim()) : null;
    const index = m ? Number(m[1]) : NaN;
    const n = m ? Number(m[2]) : NaN;
    if (!m || n < 1 || index >= n) {
      throw new ValueError(`Expected --shard to be i/n with 0 <= i < n (for example 0/4), but got '${String(raw)}'.`);
    }
    if (count !== undefined && count !== n) throw new ValueError(`--shard ${raw} and a shard count of ${count} disagree; give one of them.`);
    return { index, count: n, source: '--shard' };
  }
  const slurmId = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (slurmId !== undefined) {
    if (count !== undefined) {
      if (slurmId >= count) {
        throw new ValueError(
          `SLURM_ARRAY_TASK_ID is ${slurmId}, outside the ${count} shards (0 to ${count - 1}). Submit the array as --array=0-${count - 1}, or fix --shard-count.`,
        );
      }
      return { index: slurmId, count, source: 'SLURM_ARRAY_TASK_ID' };
    }
    const n = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const max = envInt(env, 'SLURM_ARRAY_TASK_MAX');
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    if (n === undefined || n < 1) throw new ValueError('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give the number of shards with --shard-count.');
    if (step < 1 || (slurmId - min) % step !== 0 || (max !== undefined && (max - min) / step + 1 !== n)) {
      throw new ValueError(
        `The SLURM array (tasks ${min} to ${max ?? '?'} in steps of ${step}, ${n} tasks) is not a plain range; give the number of shards with --shard-count.`,
      );
    }
    const index = (slurmId - min) / step;
    if (index < 0 || index >= n) throw new ValueError(`SLURM_ARRAY_TASK_ID ${slurmId} is outside the array's ${n} tasks from ${min}; give --shard-count.`);
    return { index, count: n, source: 'SLURM_ARRAY_TASK_ID' };
  }
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k8s !== undefined) {
    if (count === undefined) {
      throw new ValueError(
        "JOB_COMPLETION_INDEX is set (a Kubernetes indexed Job) but the number of shards is not: pass --shard-count with the Job's completions, or set SASHA_SHARD_COUNT.",
      );
    }
    if (k8s >= count) throw new ValueError(`JOB_COMPLETION_INDEX is ${k8s}, outside the ${count} shards (0 to ${count - 1}); set --shard-count to the Job's completions.`);
    return { index: k8s, count, source: 'JOB_COMPLETION_INDEX' };
  }
  if (count !== undefined && count > 1) {
    throw new ValueError(`A shard count of ${count} was given but no shard index: pass --shard i/${count}, or run as a SLURM array or Kubernetes indexed Job.`);
  }
  return { index: 0, count: 1, source: 'none' };
}

/** The items of `items` that belong to `shard` (round-robin, so shards stay balanced). */
export function selectShard<T>(items: readonly T[], shard: Shard): T[] {
  return items.filter((_, i) => i % shard.count === shard.index);
}

/** A one-line description of a shard for logs: `'shard 2 of 4 (from SLURM_ARRAY_TASK_ID)'`. */
export function describeShard(shard: Shard): string {
  if (shard.count === 1) return 'the whole cohort';
  return `shard ${shard.index} of ${shard.count} (0-based${shard.source && shard.source !== '--shard' ? `, from ${shard.source}` : ''})`;
}

/** Name of the lock file of a cohort command's output folder: one per shard, so that shards share the folder. */
export function shardLockName(shard: Shard): string {
  return shard.count === 1 ? '.sasha.lock' : `.sasha-shard-${shard.index}-of-${shard.count}.lock`;
}

/**
 * The file in the output folder of `sasha extract` and `sasha infer` that lists the cohort's
 * slide ids in command-line order (`{ "ids": [...] }`): the order `sasha merge` writes them in.
 */
export const COHORT_FILE = 'cohort.json';

/** The flags every cohort command shares. */
export const SHARD_FLAG: FlagSpec = {
  type: 'string',
  help: 'process only shard i of n (0-based), e.g. 0/4; default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX',
};
/** The shard count for scheduler-given indexes (a resubmitted SLURM task, a Kubernetes indexed Job). */
export const SHARD_COUNT_FLAG: FlagSpec = {
  type: 'string',
  help: 'number of shards when the index comes from the scheduler (default: SASHA_SHARD_COUNT, else SLURM_ARRAY_TASK_COUNT)',
};

/**
 * Turns the first Ctrl-C into an abort signal for long cohort work: the command logs `message`
 * and stops at its next check; nothing half-written is kept. Call `dispose` when done.
 */
export function abortOnSigint(io: CommandIO, message: string): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSigint = () => {
    io.log(message);
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  return { signal: ac.signal, dispose: () => void process.removeListener('SIGINT', onSigint) };
}

/**
 * The feature files a command on a model directory reads: `--lr-h5`, `--hr-h5` and `--split`
 * when given (resolved to absolute paths), else the files recorded in the directory's manifest.
 */
export function dataPaths(
  args: ParsedArgs,
  recorded: { lrH5: string; hrH5?: string; split: string } | undefined,
): { lrH5: string; hrH5?: string; splitPath: string } {
  const flag = (name: string) => {
    const v = args.values[name];
    return typeof v === 'string' && v !== '' ? path.resolve(v) : undefined;
  };
  const lrH5 = flag('lr-h5') ?? recorded?.lrH5;
  const splitPath = flag('split') ?? recorded?.split;
  if (!lrH5 || !splitPath) {
    throw new ValueError(
      'The model directory records no feature files (it was imported with sasha import-reference): pass --lr-h5, --hr-h5 and --split.',
    );
  }
  return { lrH5, hrH5: flag('hr-h5') ?? recorded?.hrH5, splitPath };
}
