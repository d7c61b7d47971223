/**
 * Writes a benchmark's figures into its own section of bench/RESULTS.md, with the command that
 * produced them and the machine it ran on. Sections are delimited by HTML comments so that
 * benchmarks can be re-run one at a time.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const FILE = new URL('./RESULTS.md', import.meta.url).pathname;
const HEADER = `# Benchmark results

Every figure here was printed by a script in \`bench/\`, run with the command shown in its
section. Ratios are measured side by side in one process; absolute times depend on the machine.
`;

/** Describes the machine and backend in one line. */
export function machineLine(backend: string): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs backend \`${backend}\``;
}

/**
 * Replaces (or appends) the section `name` of bench/RESULTS.md.
 * @param name section id, e.g. `matmul-grad`.
 * @param title heading shown in the file.
 * @param command the exact command that produced the figures.
 * @param body markdown with the figures (tables).
 */
export function writeResults(name: string, title: string, command: string, backend: string, body: string): void {
  writeSection({ file: FILE, tag: 'bench', header: HEADER }, name, title, command, backend, body);
}

/**
 * Replaces (or appends) the section `name` of a markdown file whose sections are delimited by
 * `<!-- TAG:name -->` and `<!-- /TAG:name -->` (bench/RESULTS.md, docs/reliability.md).
 * @param doc the file, the tag of its markers, and the text a new file starts with.
 */
export function writeSection(
  doc: { file: string; tag: string; header: string },
  name: string,
  title: string,
  command: string,
  backend: string,
  body: string,
): void {
  const start = `<!-- ${doc.tag}:${name} -->`;
  const end = `<!-- /${doc.tag}:${name} -->`;
  const section = [
    start,
    `## ${title}`,
    '',
    `Command: \`${command}\`  `,
    `Run: ${new Date().toISOString().slice(0, 10)} on ${machineLine(backend)}`,
    '',
    body.trim(),
    end,
  ].join('\n');
  const text = existsSync(doc.file) ? readFileSync(doc.file, 'utf8') : doc.header;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : text.trimEnd() + '\n\n' + section + '\n';
  writeFileSync(doc.file + '.tmp', next);
  renameSync(doc.file + '.tmp', doc.file);
}

/** Formats a markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times `fn` `reps` times after `warmup` runs; returns each duration in ms. */
export async function timeIt(fn: () => unknown | Promise<unknown>, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}
