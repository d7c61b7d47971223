/**
 * The memory bounds the soak states (docs/reliability.md): what one PPO update (two episodes
 * of f = 0.2 and the update of both networks) may hold at its peak on a slide of N patches with
 * d features.
 */
export const SOAK_LARGE_SLIDE_BOUNDS = {
  /**
   * Live tfjs tensor bytes at the peak: 64 MiB (networks, optimiser moments, the update's chunks)
   * plus ten float32 copies of a slide's N x d state. The peak is in the update, which keeps the
   * actor's and critic's inputs and activations of every row version of the two episodes (about
   * 2.2 N versions on the soak's slides, whose targeted update rewrites about five rows per zoom);
   * measured: 6 MiB + 8.5 N d float32 from N = 2000 to 20 000 (docs/reliability.md).
   */
  peakTensorBytes: (n: number, d: number): number => 64 * 2 ** 20 + 10 * n * d * 4,
  /** Resident memory of the whole process (runtime, wasm heap, the episodes' JS-side data): 1.5 GiB. */
  maxRssBytes: 1.5 * 2 ** 30,
} as const;
