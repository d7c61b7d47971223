import { vi } from 'vitest';
import { runCli } from '../../src/node/cli/main.js';

/** Result of {@link cli}: the exit code, the `--json` object of the last stdout line, and stderr. */
export interface CliRun {
  code: number;
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
    const last = out.join('').trim().split('\n').pop();
    return { code, result: last?.startsWith('{') ? JSON.parse(last) : undefined, stderr: err.join('') };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}
