/**
 * Output-folder locks: a run that writes into a folder (a model directory, an extraction or
 * inference output) holds a lock file there, so that a second run started on the same folder
 * stops at once with a message naming the first, instead of interleaving its writes.
 *
 * @packageDocumentation
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StateError } from '../../core/errors.js';
import { fsyncDir, tempPathFor } from './file_io.js';
import { hostTag, processAlive as alive } from './host.js';

/** Who holds a lock (the content of the lock file). @category Node */
export interface LockOwner {
  /** Process id of the holder. */
  pid: number;
  /** Host name of the holder. */
  host: string;
  /** What the holder is doing (`'sasha extract --shard 1/4'`). */
  purpose: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
}

/** A held lock; `release()` removes the lock file (also done when the process exits). @category Node */
export interface FolderLock {
  /** Path of the lock file. */
  readonly file: string;
  /** Releases the lock (idempotent). */
  release(): void;
}

/** A held lock's file is touched this often, so that other hosts can tell a live holder from a dead one. */
export const LOCK_HEARTBEAT_MS = 20_000;
/** A lock whose file was not touched for this long is stale: its holder is gone (any host). */
export const LOCK_STALE_MS = 120_000;

/** Locks held by this process, by lock file, with a count so that nested commands can re-enter. */
const held = new Map<string, { count: number; token: string; created?: string; heartbeat: NodeJS.Timeout }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [file, h] of held) {
      clearInterval(h.heartbeat);
      removeIfOurs(file, h.token);
    }
    held.clear();
  });
}

function readOwner(file: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

function removeIfOurs(file: string, token: string): void {
  try {
    const o = readOwner(file) as (LockOwner & { token?: string }) | null;
    if (o?.token === token) rmSync(file, { force: true });
  } catch {
    // the folder is gone; nothing to release
  }
}

/**
 * Takes the lock `name` in folder `dir` (created if missing), or throws naming the run that
 * holds it. The lock file is written completely under a temporary name and linked into place
 * (an atomic create-if-absent), so a reader never sees a half-written lock. The holder touches
 * the file every {@link LOCK_HEARTBEAT_MS}; a lock is taken over when its holder is gone: a
 * process of this host whose pid no longer exists, or any lock left untouched for
 * {@link LOCK_STALE_MS} (a holder on another host of a shared file system, a killed pod).
 * Locks taken again by the same process nest (a command that runs others keeps one lock).
 *
 * @param purpose what the run does, shown to a second run (`'sasha train hafed'`).
 * @param name lock file name (default `.sasha.lock`); shards of one cohort use one per shard.
 * @returns the held lock; call `release()` when done.
 * @throws StateError naming the holder, its host, its pid, since when, and the fix.
 * @example
 * ```ts
 * const lock = lockFolder('runs/c16', 'sasha train hafed');
 * try { ... } finally { lock.release(); }
 * ```
 * @category Node
 */
export function lockFolder(dir: string, purpose: string, name = '.sasha.lock'): FolderLock {
  const file = path.resolve(dir, name);
  const mine = held.get(file);
  if (mine) {
    mine.count++;
    return releaser(file);
  }
  // A folder made only for the lock is removed with it when the run writes nothing there.
  const created = existsSync(dir) ? undefined : mkdirSync(dir, { recursive: true });
  const token = `${os.hostname()}:${process.pid}:${Date.now()}:${Math.random()}`;
  const owner = { pid: process.pid, host: os.hostname(), purpose, since: new Date().toISOString(), token };
  const tmp = tempPathFor(file);
  const fd = openSync(tmp, 'w');
  try {
    const text = Buffer.from(JSON.stringify(owner) + '\n');
    writeSync(fd, text, 0, text.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
      }
      const other = readOwner(file);
      const idle = ageSeconds(file) * 1000 > LOCK_STALE_MS;
      const stale = idle || (other !== null && other.host === os.hostname() && !alive(other.pid));
      if (!stale) throw busy(dir, file, other);
      // Move the stale lock aside (one of several racing takers wins the rename), then retry.
      try {
        renameSync(file, `${file}.stale-${process.pid}`);
        rmSync(`${file}.stale-${process.pid}`, { force: true });
      } catch {
        // another run took it over first; the next link attempt sees its lock
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(path.dirname(file));
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(file, now, now);
    } catch {
      // the folder is gone; the lock is released with it
    }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  held.set(file, { count: 1, token, created, heartbeat });
  installExitHook();
  return releaser(file);
}

/** Removes `dir` and its parents up to `top` (the first folder `mkdir -p` made) while they are empty. */
function removeEmptyFolders(dir: string, top: string): void {
  const stop = path.dirname(path.resolve(top));
  for (let d = path.resolve(dir); d !== stop && d.length > stop.length; d = path.dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

function ageSeconds(file: string): number {
  try {
    return (Date.now() - statSync(file).mtimeMs) / 1000;
  } catch {
    return Infinity;
  }
}

function releaser(file: string): FolderLock {
  let done = false;
  return {
    file,
    release() {
      if (done) return;
      done = true;
      const h = held.get(file);
      if (!h) return;
      if (--h.count > 0) return;
      held.delete(file);
      clearInterval(h.heartbeat);
      removeIfOurs(file, h.token);
      if (h.created) removeEmptyFolders(path.dirname(file), h.created);
    },
  };
}

function busy(dir: string, file: string, other: LockOwner | null): StateError {
  const who = other
    ? `'${other.purpose}' (pid ${other.pid} on host ${other.host}, since ${other.since})`
    : 'another run (its lock file cannot be read)';
  const age = Math.round(ageSeconds(file));
  return new StateError(
    `The folder '${dir}' is in use by ${who}, alive ${age} s ago. Two runs writing into one folder would mix their files: ` +
      `wait for it to finish, or use another output folder. A lock that stays idle for ${LOCK_STALE_MS / 1000} s is taken over ` +
      `(its holder is gone); to take it over now, delete '${file}'.`,
  );
}

/**
 * Removes the temporary files (`tempPathFor`) in `dir` that a killed process of this
 * host left behind (its pid is gone). Temporary files of live processes and of other hosts
 * (shards sharing the folder over a network file system) are kept.
 * @returns the number of files removed.
 * @category Node
 */
export function removeStaleTempFiles(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const host = hostTag();
  let removed = 0;
  for (const f of names) {
    const m = /\.([A-Za-z0-9_-]+)-(\d+)-[0-9a-f]{8}\.tmp$/.exec(f);
    if (!m || m[1] !== host || alive(Number(m[2]))) continue;
    rmSync(path.join(dir, f), { force: true });
    removed++;
  }
  return removed;
}
