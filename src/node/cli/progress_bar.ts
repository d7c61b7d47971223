/**
 * Progress bars on stderr for CLI commands, fed by the library's {@link ProgressCallback}s.
 *
 * @packageDocumentation
 */
import type * as CliProgress from 'cli-progress';
import type { ProgressCallback, ProgressEvent } from '../../core/progress.js';

let cliProgress: typeof CliProgress | null | undefined;

/**
 * Loads cli-progress (an optional dependency) once; without it, progress is printed as lines.
 * The CLI calls it before running a command.
 */
export async function loadProgressBars(): Promise<void> {
  if (cliProgress !== undefined) return;
  const spec = 'cli-progress';
  try {
    const m = (await import(/* @vite-ignore */ spec)) as typeof CliProgress & { default?: typeof CliProgress };
    cliProgress = m.default ?? m;
  } catch {
    cliProgress = null;
  }
}

/**
 * Returns a {@link ProgressCallback} that draws one bar per task on stderr (or, when stderr is
 * not a terminal or cli-progress is not installed, prints a line at most every few seconds), and
 * a `stop` to call at the end.
 */
export function progressBars(enabled: boolean): { onProgress: ProgressCallback; stop(): void } {
  if (!enabled) return { onProgress: () => {}, stop: () => {} };
  const lib = Boolean(process.stderr.isTTY) ? cliProgress : null;
  const multi = lib
    ? new lib.MultiBar(
        {
          stream: process.stderr,
          clearOnComplete: false,
          hideCursor: true,
          format: ' {task} |{bar}| {value}/{total} {eta_formatted} {info}',
          etaBuffer: 50,
        },
        lib.Presets.shades_classic,
      )
    : null;
  const bars = new Map<string, CliProgress.SingleBar>();
  const lastPrint = new Map<string, number>();
  const fmtInfo = (e: ProgressEvent) =>
    e.info
      ? Object.entries(e.info)
          .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toPrecision(4) : v}`)
          .join(' ')
      : '';
  return {
    onProgress(e) {
      if (multi) {
        let bar = bars.get(e.task);
        if (!bar) {
          bar = multi.create(e.total ?? 0, 0, { task: e.task, info: '' });
          bars.set(e.task, bar);
        }
        if (e.total !== undefined) bar.setTotal(e.total);
        bar.update(e.done, { task: e.task, info: fmtInfo(e) });
        return;
      }
      const now = Date.now();
      const done = e.total !== undefined && e.done >= e.total;
      if (!done && now - (lastPrint.get(e.task) ?? 0) < 5000) return;
      lastPrint.set(e.task, now);
      process.stderr.write(`${e.task}: ${e.done}${e.total !== undefined ? '/' + e.total : ''} ${fmtInfo(e)}\n`);
    },
    stop() {
      multi?.stop();
    },
  };
}
