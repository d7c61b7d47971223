/**
 * Progress reporting for long work (training, extraction, evaluation). Library functions take
 * an optional {@link ProgressCallback}; they print nothing themselves. The CLI turns the events
 * into progress bars on stderr.
 *
 * @packageDocumentation
 */

/** One progress event. */
export interface ProgressEvent {
  /** What is running (`'train hafed'`, `'extract'`, ...). */
  task: string;
  /** Units done so far. */
  done: number;
  /** Units in all (when known). */
  total?: number;
  /** Short status text or metrics to show next to the bar (`{ loss: 0.31 }`). */
  info?: Record<string, number | string>;
}

/** Receives {@link ProgressEvent}s. @category Utils */
export type ProgressCallback = (event: ProgressEvent) => void;
