/**
 * This host and its processes, as the crash-safe writers and the folder locks name them.
 *
 * @packageDocumentation
 */
import os from 'node:os';

/** This host's name as it appears in temporary file names (letters, digits, `_`, `-`). */
export function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32) || 'host';
}

/** Whether process `pid` runs on this host (a signal-0 probe: EPERM means it exists). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
