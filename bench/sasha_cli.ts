/**
 * Runs the `sasha` CLI from source as a user does, for the benchmark scripts: one child process
 * per command with `--json`, its stderr relayed with a label, its JSON result returned.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

/** What {@link sashaCli} returns: the JSON result, the exit code and the human stdout (when `json` is false). */
export interface SashaRun {
  code: number;
  result: Record<string, unknown> | null;
  stdout: string;
}

/**
 * Runs `sasha <args>` (from `src/node/cli/main.ts` with tsx). With `json` (default), `--json` is
 * added and the last stdout line parsed; `allowCodes` lists exit codes that are not failures.
 * @throws Error when the command exits with another code or prints no JSON.
 */
export function sashaCli(args: string[], label: string, options: { json?: boolean; allowCodes?: number[] } = {}): Promise<SashaRun> {
  const json = options.json ?? true;
  const allow = options.allowCodes ?? [0];
  return new Promise((res, rej) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'src', 'node', 'cli', 'main.ts'), ...args, ...(json ? ['--json'] : [])], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    let partial = '';
    child.stderr.on('data', (b: Buffer) => {
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') process.stderr.write(`  [${label}] ${line}\n`);
    });
    child.on('error', rej);
    child.on('close', (code) => {
      const c = code ?? 1;
      if (!allow.includes(c)) return rej(new Error(`sasha ${args.slice(0, 2).join(' ')} exited with code ${c}`));
      if (!json) return res({ code: c, result: null, stdout: out });
      const last = out.trim().split('\n').pop() ?? '';
      try {
        res({ code: c, result: JSON.parse(last) as Record<string, unknown>, stdout: out });
      } catch {
        rej(new Error(`sasha ${args.slice(0, 2).join(' ')}: no JSON result on stdout: ${last.slice(0, 200)}`));
      }
    });
  });
}
