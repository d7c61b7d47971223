/**
 * Defaults of HAFED and its trainer (the CAMELYON16 column of the reference), and the config
 * resolvers that check them.
 *
 * @packageDocumentation
 */
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { ValueError } from '../core/errors.js';
import type { HafedConfig, HafedTrainConfig } from './types.js';

/** Defaults of {@link HafedConfig}. */
export const DEFAULT_HAFED_CONFIG: Readonly<HafedConfig> = Object.freeze({
  dim: 384, // docs/reference-code.md §1.3: ViT-S/16 features, D_feat = 384
  k: 16, // docs/reference-code.md §1.2: 4 x 4 sub-patches (LR level 3, HR level 1)
  numClasses: 2, // docs/reference-code.md §1.4: normal/tumour, LUAD/LUSC
  numBranches1: 1, // docs/reference-code.md §2.3: n_token_1 = 1 (both datasets)
  numBranches2: 5, // docs/reference-code.md §2.3: n_token_2 = 5, CAMELYON16 (TCGA: 1)
  attentionDim: 128, // docs/reference-code.md §2.1: Attention_Gated D = 128
  gated: true, // docs/reference-code.md §2.1: tanh(V) * sigmoid(U)
  maskTopK1: 10, // docs/reference-code.md §2.3: n_masked_patch_1 = 10
  maskTopK2: 20, // docs/reference-code.md §2.3: n_masked_patch_2 = 20
  maskDrop: 0.24, // docs/reference-code.md §2.3: mask_drop, CAMELYON16 (TCGA: 0.4)
  input: 'highRes', // HAFED reads U (docs/reference-code.md §2.2)
  seed: 5, // docs/reference-code.md §2.3: step 3 --seed default 5
});

/** Defaults of {@link HafedTrainConfig}. */
export const DEFAULT_HAFED_TRAIN_CONFIG: Readonly<HafedTrainConfig> = Object.freeze({
  lr: 4.14e-4, // docs/reference-code.md §2.3: lr, CAMELYON16 (TCGA: 4e-4)
  weightDecay: 1e-5, // docs/reference-code.md §2.3: wd, CAMELYON16 (TCGA: 1e-4)
  epochs: 50, // docs/reference-code.md §2.3: train_epoch
  minLr: 0, // docs/reference-code.md §2.3: min_lr
  warmupEpochs: 0, // docs/reference-code.md §2.3: warmup_epoch
  beta1: 0.9, // docs/reference-code.md §2.3: AdamW default betas
  beta2: 0.999, // docs/reference-code.md §2.3: AdamW default betas
  epsilon: 1e-8, // docs/reference-code.md §2.3: AdamW default eps
  evalEvery: 1, // docs/reference-code.md §2.3: validation after every epoch
  selectionTieBreak: 'valLoss', // ours; the reference keeps the earliest of tied epochs (docs/implementation-details.md HAFED-4)
});

/**
 * Merges `partial` over {@link DEFAULT_HAFED_CONFIG}, checks every field and returns a frozen
 * config.
 * @throws ValueError naming the bad key.
 * @category HAFED
 */
export function resolveHafedConfig(partial: Partial<HafedConfig> = {}): Readonly<HafedConfig> {
  const name = 'HafedConfig';
  return resolveConfig(name, DEFAULT_HAFED_CONFIG, partial, (c) => {
    checkNumber(name, c, 'dim', { min: 1, integer: true });
    checkNumber(name, c, 'k', { min: 1, integer: true });
    checkNumber(name, c, 'numClasses', { min: 2, integer: true });
    checkNumber(name, c, 'numBranches1', { min: 1, integer: true });
    checkNumber(name, c, 'numBranches2', { min: 1, integer: true });
    checkNumber(name, c, 'attentionDim', { min: 1, integer: true });
    checkNumber(name, c, 'maskTopK1', { min: 0, integer: true });
    checkNumber(name, c, 'maskTopK2', { min: 0, integer: true });
    checkNumber(name, c, 'maskDrop', { min: 0, max: 1 });
    checkNumber(name, c, 'seed', {});
    checkOneOf(name, c, 'gated', [true, false]);
    checkOneOf(name, c, 'input', ['highRes', 'lowRes']);
  });
}

/**
 * Merges `partial` over {@link DEFAULT_HAFED_TRAIN_CONFIG}, checks it and returns a frozen config.
 * @throws ValueError naming the bad key.
 * @category HAFED
 */
export function resolveHafedTrainConfig(partial: Partial<HafedTrainConfig> = {}): Readonly<HafedTrainConfig> {
  const name = 'HafedTrainConfig';
  return resolveConfig(name, DEFAULT_HAFED_TRAIN_CONFIG, partial, (c) => {
    checkNumber(name, c, 'lr', { min: 0, minExclusive: true });
    checkNumber(name, c, 'weightDecay', { min: 0 });
    checkNumber(name, c, 'epochs', { min: 1, integer: true });
    checkNumber(name, c, 'minLr', { min: 0 });
    checkNumber(name, c, 'warmupEpochs', { min: 0 });
    checkNumber(name, c, 'beta1', { min: 0, max: 1, maxExclusive: true });
    checkNumber(name, c, 'beta2', { min: 0, max: 1, maxExclusive: true });
    checkNumber(name, c, 'epsilon', { min: 0 });
    checkNumber(name, c, 'evalEvery', { min: 1, integer: true });
    checkOneOf(name, c, 'selectionTieBreak', ['valLoss', 'earliest']);
    if (c.minLr > c.lr) throw new ValueError(`Expected HafedTrainConfig.minLr <= lr, but got minLr ${c.minLr} > lr ${c.lr}.`);
    if (c.warmupEpochs >= c.epochs && c.warmupEpochs > 0) {
      throw new ValueError(`Expected HafedTrainConfig.warmupEpochs < epochs, but got ${c.warmupEpochs} >= ${c.epochs}.`);
    }
  });
}
