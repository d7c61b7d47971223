import { vi } from 'vitest';
import { runCli } from '../../src/node/cli/main.js';

/** Result of {@link cli}: the exit code, stdout, the `--json` object of its last line, and stderr. */
export interface CliRun {
  code: number;
  stdout: string;
  result: Record<string, unknown> | undefined;
  stderr: string;
}

/** Runs the `sasha` CLI in-process with stdout and stderr captured. */
export async function cli(argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const code = await runCli(argv);
    const stdout = out.join('');
    const last = stdout.trim().split('\n').pop();
    return { code, stdout, result: last?.startsWith('{') ? JSON.parse(last) : undefined, stderr: err.join('') };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

/** {@link cli} with environment variables set for the run (scheduler variables such as `SLURM_ARRAY_TASK_ID`), restored after it. */
export async function cliWithEnv(vars: Record<string, string>, argv: string[]): Promise<CliRun> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await cli(argv);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** {@link cli} with the arguments spread: `sasha('eval', '--model', dir)`. */
export function sasha(...argv: string[]): Promise<CliRun> {
  return cli(argv);
}

/** The JSON object on the last line of a command's stdout (`--json`). */
export function lastJson(stdout: string): Record<string, any> {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}
