/**
 * Types of the HAFED model and its trainer.
 *
 * @packageDocumentation
 */
import type { tf } from '../core/tf.js';
import type { ClassificationMetrics } from '../eval/metrics.js';

/** Which features HAFED reads: U through both stages, or Z straight into stage 2. */
export type HafedInput = 'highRes' | 'lowRes';

/**
 * Hyper-parameters of a {@link Hafed} model. Every field is JSON; the resolved config is saved
 * with the weights.
 */
export interface HafedConfig {
  /** d: feature width of the patch encoder. */
  dim: number;
  /** k: high-resolution sub-patches per low-resolution patch (`(level ratio)^2`). */
  k: number;
  /** C: number of slide classes. */
  numClasses: number;
  /** M1: attention branches of stage 1 (over the k sub-patches). */
  numBranches1: number;
  /** M2: attention branches of stage 2 (over the N patches), each with its own classifier head. */
  numBranches2: number;
  /**
   * D: hidden width of the gated attention of both stages. The reference hard-codes 128 for
   * d = 384 encoders; wider encoders may warrant more (ACMIL pairs d = 512/768/1024 with
   * reduced widths 256/384/512).
   */
  attentionDim: number;
  /** Use the sigmoid gate (`tanh * sigmoid`) in the attention. */
  gated: boolean;
  /** STKIM top-k of stage 1 (`n_masked_patch_1`); 0 disables stage-1 masking. */
  maskTopK1: number;
  /** STKIM top-k of stage 2 (`n_masked_patch_2`); 0 disables stage-2 masking. */
  maskTopK2: number;
  /** STKIM fraction of the top-k that is masked in training (`mask_drop`). */
  maskDrop: number;
  /**
   * `'highRes'`: the model reads U [N, k, d] and aggregates it with stage 1 (HAFED).
   * `'lowRes'`: the model reads Z [N, d] straight into stage 2 and has no stage 1 (the
   * low-resolution-only baseline).
   */
  input: HafedInput;
  /** Seed of the weight initialisation. */
  seed: number;
}

/** Hyper-parameters of {@link trainHafed}. */
export interface HafedTrainConfig {
  /** Peak learning rate of AdamW. */
  lr: number;
  /** Decoupled weight decay of AdamW. */
  weightDecay: number;
  /** Number of epochs (passes over the training slides). */
  epochs: number;
  /** Final learning rate of the half-cosine schedule. */
  minLr: number;
  /** Linear warm-up epochs before the half cosine. */
  warmupEpochs: number;
  /** AdamW first-moment decay. */
  beta1: number;
  /** AdamW second-moment decay. */
  beta2: number;
  /** AdamW epsilon. */
  epsilon: number;
  /** Validate (and select the model) every this many epochs; the last epoch is always validated. */
  evalEvery: number;
  /**
   * How epochs with equal `val F1 + AUC` are ranked: `'valLoss'` prefers the lower validation
   * cross-entropy; `'earliest'` keeps the earlier epoch (the reference's strict `>`).
   */
  selectionTieBreak: 'valLoss' | 'earliest';
}

/** The outputs of a full HAFED forward pass; every tensor is owned by the caller. */
export interface HafedOutput {
  /** Slide logits from the slide classifier on the branch-averaged pooling, [1, C]. */
  logits: tf.Tensor2D;
  /** Logits of each stage-2 branch head, [M2, C]. */
  branchLogits: tf.Tensor2D;
  /** Stage-2 attention (softmax over the N patches), [M2, N]. */
  attention: tf.Tensor2D;
  /** Stage-1 attention (softmax over the k sub-patches), [N, M1, k]; absent for `input: 'lowRes'`. */
  attention1?: tf.Tensor3D;
  /** The stage-2 input: V = stage 1 of U [N, d], or Z for `input: 'lowRes'`. */
  features: tf.Tensor2D;
}

/** The named scalar losses of one slide; every tensor is owned by the caller. */
export interface HafedLosses {
  /** The sum that is minimised: `slide + branch + similarity1 + similarity2`. */
  total: tf.Scalar;
  /** Cross-entropy of the slide logits. */
  slide: tf.Scalar;
  /** Mean cross-entropy of the M2 branch heads (0 when M2 = 1, as the reference). */
  branch: tf.Scalar;
  /** Mean pairwise cosine similarity of the stage-1 branches' attention maps (0 when M1 = 1). */
  similarity1: tf.Scalar;
  /** Mean pairwise cosine similarity of the stage-2 branches' attention maps (0 when M2 = 1). */
  similarity2: tf.Scalar;
}

/** One epoch of {@link trainHafed}. */
export interface HafedEpochLog {
  /** 0-based epoch index. */
  epoch: number;
  /** Learning rate at the end of the epoch. */
  lr: number;
  /** Mean total loss over the epoch's slides. */
  loss: number;
  /** Mean slide cross-entropy. */
  slideLoss: number;
  /** Mean branch cross-entropy. */
  branchLoss: number;
  /** Mean similarity loss (both stages). */
  similarityLoss: number;
  /** Accuracy of the training-mode predictions over the epoch. */
  trainAccuracy: number;
  /** Validation metrics, when a validation set was given and this epoch was validated. */
  val?: ClassificationMetrics;
  /** The model-selection score `val.f1 + val.auc` (NaN parts count 0). */
  score?: number;
  /** Mean validation cross-entropy of the slide predictions. */
  valLoss?: number;
  /** Wall time of the epoch, including validation, in seconds. */
  seconds: number;
}

/** The selected epoch of {@link trainHafed}. */
export interface HafedBest {
  /** 0-based epoch of the returned weights. */
  epoch: number;
  /** Its selection score (`val.f1 + val.auc`), or NaN without validation. */
  score: number;
  /** Its validation metrics, when validated. */
  val?: ClassificationMetrics;
  /** Its mean validation cross-entropy, when validated. */
  valLoss?: number;
}
