#!/usr/bin/env node
/**
 * The `sasha` command-line tool.
 *
 * @packageDocumentation
 */
import { SashaError } from '../../core/errors.js';
import { initBackend } from '../../core/backend.js';
import { VERSION } from '../../core/version.js';
import { commandHelp, EXIT_INCOMPLETE, parseCommandArgs, type CommandSpec } from './args.js';
import { COMMANDS } from './commands.js';
import { loadProgressBars } from './progress_bar.js';
import { lockFolder } from '../io/folder_lock.js';

/** Finds the command named by the first one or two words of argv. */
function findCommand(argv: string[]): { spec: CommandSpec; rest: string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const spec = COMMANDS.find((c) => c.name === name);
    if (spec) return { spec, rest: argv.slice(words) };
  }
  return undefined;
}

function usage(): string {
  const lines = ['Usage: sasha <command> [flags]', '', 'Commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(16)}${c.summary}`);
  lines.push('', "Run 'sasha <command> --help' for a command's flags. Every command accepts --json. 'sasha --version' prints the version.");
  return lines.join('\n');
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and returns the exit code: 0 done,
 * 1 unexpected failure, 2 bad input (the message names the fix), 3 ran but incomplete (the
 * result has `complete: false` and says what is missing).
 * Results go to stdout (with `--json`, the last line is one JSON object); logs, progress and
 * errors go to stderr.
 */
export async function runCli(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(usage() + '\n');
    return argv.length === 0 ? 1 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    process.stderr.write(`sasha: unknown command '${argv.slice(0, 2).join(' ')}'.\n\n${usage()}\n`);
    return 2;
  }
  const { spec, rest } = found;
  if (rest.includes('--help')) {
    process.stdout.write(commandHelp(spec) + '\n');
    return 0;
  }
  try {
    const args = parseCommandArgs(spec, rest);
    await initBackend();
    await loadProgressBars();
    const io = {
      log: (m: string) => {
        if (!args.values.quiet) process.stderr.write(m + '\n');
      },
      interactive: !args.values.quiet,
    };
    const target = spec.lock?.(args);
    const lock = target ? lockFolder(target.dir, target.purpose, target.name) : undefined;
    let result: Record<string, unknown>;
    try {
      result = await spec.run(args, io);
    } finally {
      lock?.release();
    }
    const human = args.json ? undefined : spec.render?.(result);
    if (args.json) {
      process.stdout.write(JSON.stringify(result) + '\n');
    } else if (human !== undefined) {
      process.stdout.write(human + '\n');
    } else {
      for (const [k, v] of Object.entries(result)) {
        process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
      }
    }
    return result.complete === false ? EXIT_INCOMPLETE : 0;
  } catch (e) {
    const msg = e instanceof SashaError ? e.message : (e as Error).stack ?? String(e);
    process.stderr.write(`sasha ${spec.name}: ${msg}\n`);
    return e instanceof SashaError ? 2 : 1;
  }
}

const isMain = (() => {
  const script = process.argv[1] ?? '';
  return /(?:^|[\\/])(?:main\.(?:c?js|ts)|sasha)$/.test(script);
})();

if (isMain) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(String(e) + '\n');
      process.exitCode = 1;
    },
  );
}
