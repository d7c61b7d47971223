/**
 * Writes a reliability script's figures into its section of docs/reliability.md (sections
 * delimited by `<!-- reliability:NAME -->` markers, each with the command that produced it).
 */
import { writeSection } from '../bench/results.js';

const FILE = new URL('../docs/reliability.md', import.meta.url).pathname;
const HEADER = `# Reliability

What happens to sasha-wsi under damaged input, killed processes, long runs and a cluster
scheduler. Every figure below was printed by the script named in its section.
`;

/** Replaces (or appends) section `name` of docs/reliability.md. */
export function writeReliability(name: string, title: string, command: string, backend: string, body: string): void {
  writeSection({ file: FILE, tag: 'reliability', header: HEADER }, name, title, command, backend, body);
}
