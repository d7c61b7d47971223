/**
 * The memory bounds the soak states (docs/reliability.md): what one PPO update (two episodes
 * of f = 0.2 and the update of both networks) may hold at its peak on a slide of N patches with
 * d features.
 */
export const SOAK_LARGE_SLIDE_BOUNDS = {
  /**
   * Live tfjs tensor bytes at the peak: 64 MiB (networks, optimiser moments, the update's chunks)
   * plus four copies of a slide's float32 state (N d 4 bytes each).
   */
  peakTensorBytes: (n: number, d: number): number => 64 * 2 ** 20 + 4 * n * d * 4,
  /** Resident memory of the whole process (runtime, wasm heap, the episodes' JS-side data): 1.5 GiB. */
  maxRssBytes: 1.5 * 2 ** 30,
} as const;
