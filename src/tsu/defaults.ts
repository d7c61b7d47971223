/**
 * Defaults of the TSU and of its trainer, each with its source.
 *
 * @packageDocumentation
 */
import type { TrainTsuConfig, TsuConfig } from './types.js';

/**
 * Defaults of one state update.
 * @category TSU
 */
export const DEFAULT_TSU_CONFIG: Readonly<TsuConfig> = Object.freeze({
  tau: 0.95, // docs/reference-code.md §4.2-4.3, cosine_threshold (CAMELYON16 TSU, RL and inference configs)
  rewriteOnce: true, // docs/reference-code.md §5.3 step 6 (training env, also used by RL validation and step7_inference.py)
});

/**
 * Defaults of {@link trainTsu}: the CAMELYON16 column of the reference (SASHA-0.2).
 * @category TSU
 */
export const DEFAULT_TRAIN_TSU_CONFIG: Readonly<TrainTsuConfig> = Object.freeze({
  learningRate: 4e-5, // docs/reference-code.md §4.2, camelyon_tsu_config.yml lr
  minLr: 0, // docs/reference-code.md §4.2, half cosine down to min_lr = 0
  weightDecay: 4e-4, // docs/reference-code.md §4.2, camelyon_tsu_config.yml reg
  epochs: 1000, // docs/reference-code.md §4.2, train_epoch for SASHA-0.2 (200 for SASHA-0.1)
  warmupEpochs: 0, // docs/reference-code.md §4.2 (same schedule as HAFED, warmup 0)
  tau: 0.95, // docs/reference-code.md §4.2, cosine_threshold (CAMELYON16)
  seed: 4, // docs/reference-code.md §4.2, step5_tsu_training.py --seed default 4
  valAnchorsPerSlide: 4, // ours: fixed anchors (the reference draws one new anchor per epoch, §4.2, so its selection is noisy)
  evalEvery: 1, // docs/reference-code.md §4.2, validation (and best-MSE selection) every epoch
  cacheLimitMb: 2048, // ours: Z and V kept in memory up to this size, re-read beyond it
  checkpointEvery: 10, // ours: a resumable checkpoint holds 4 copies of f_S (weights, best, 2 moments), 19 MB at d = 384
});
