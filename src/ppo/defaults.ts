/**
 * Configurations of the PPO component and their defaults. Every default cites its source:
 * docs/reference-code.md is the description of the official SASHA code (CAMELYON16 column unless
 * said otherwise); CleanRL is `cleanrl/ppo.py`.
 *
 * @packageDocumentation
 */
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { quoteValue, ValueError } from '../core/errors.js';

/**
 * Sizes of the actor and the critic.
 * @category PPO
 */
export interface ActorCriticConfig {
  /** d, the feature width of the states the networks score. */
  dim: number;
  /** Hidden width of the gated attention of the actor and of the critic. */
  hiddenDim: number;
  /**
   * M, the number of attention logits per row the networks read besides the state (the frozen
   * classifier's stage-2 branches, `observation.rowScores`); 0 reads the state alone, as the
   * reference. With M > 0 every row's input is `[S_t(i), scores_i (M), changed_i]` (d + M + 1).
   */
  numScores: number;
  /**
   * With `numScores > 0`: the initial weight `w_p` of the prior term `w_p mean_m(scores_im)` added
   * to every actor logit (trainable). A non-zero value also starts the actor's own output layer
   * at zero, so that the untrained policy zooms where the classifier attends, and PPO learns
   * the correction. 0: no head start (the prior weight starts at 0 and the output layer as
   * PyTorch initialises it).
   */
  attentionPrior: number;
  /** Seed of the weight initialisation. */
  seed: number;
}

/** Defaults of {@link ActorCriticConfig}. @category PPO */
export const DEFAULT_ACTOR_CRITIC_CONFIG: Readonly<ActorCriticConfig> = Object.freeze({
  dim: 384, // docs/reference-code.md §1.3: ViT-S/16 features, D_feat 384
  hiddenDim: 128, // docs/reference-code.md §6.1: Attention_Gated(384, 128, 1) for actor and critic
  numScores: 0, // docs/reference-code.md §5.1: the observation is exactly S_t
  attentionPrior: 0, // docs/reference-code.md §6.1: no prior
  seed: 1130, // docs/reference-code.md §6.2: set_seed(1130) hard-coded in step6
});

/**
 * Resolves and checks an {@link ActorCriticConfig}.
 * @category PPO
 */
export function resolveActorCriticConfig(partial?: Partial<ActorCriticConfig>): Readonly<ActorCriticConfig> {
  return resolveConfig('ActorCriticConfig', DEFAULT_ACTOR_CRITIC_CONFIG, partial, (c) => {
    checkNumber('ActorCriticConfig', c, 'dim', { min: 1, integer: true });
    checkNumber('ActorCriticConfig', c, 'hiddenDim', { min: 1, integer: true });
    checkNumber('ActorCriticConfig', c, 'numScores', { min: 0, integer: true });
    checkNumber('ActorCriticConfig', c, 'attentionPrior', {});
    checkNumber('ActorCriticConfig', c, 'seed', {});
  });
}

/** How the PPO update computes its loss. @category PPO */
export type PpoUpdateMode = 'event-sourced' | 'dense';

/**
 * Every detail of the PPO trainer. Names follow CleanRL (`gaeLambda`, `clipCoef`, `entCoef`,
 * `maxGradNorm`, `updateEpochs`, `targetKl`, `normAdvantage`, `clipValueLoss`).
 * @category PPO
 */
export interface PpoConfig {
  /** Episodes collected per update on each of the update's environments (slides). */
  numEpisodesPerUpdate: number;
  /**
   * Environments (slides) per update: the update's batch holds `numEnvsPerUpdate *
   * numEpisodesPerUpdate` episodes, and its advantages are normalised over all of them.
   */
  numEnvsPerUpdate: number;
  /** Optimisation epochs per update. */
  updateEpochs: number;
  /**
   * Minibatches per epoch: the update's slides are shuffled and split into this many groups
   * (each slide's episodes stay together), one step of each network per group.
   */
  numMinibatches: number;
  /** Discount factor gamma. */
  gamma: number;
  /** GAE lambda. */
  gaeLambda: number;
  /** Surrogate clipping coefficient epsilon: the ratio is clipped to [1 - eps, 1 + eps]. */
  clipCoef: number;
  /** Weight of the entropy bonus in the actor loss. */
  entCoef: number;
  /** Largest global gradient norm, applied to the actor and to the critic separately. */
  maxGradNorm: number;
  /** Normalise the advantages over the batch (unbiased std + 1e-8). */
  normAdvantage: boolean;
  /**
   * Clip the value loss as CleanRL (`0.5 max((V - R)^2, (V_clip - R)^2)` with V_clip within
   * `clipCoef` of the old value). Off in the reference, whose critic loss is `MSE(V, R)`.
   * IMPORTANT: the clip range is in reward units.
   */
  clipValueLoss: boolean;
  /**
   * `'budget'` divides every reward by the episode's budget T, so that a return is a mean reward
   * per step and slides of any N weigh alike in a batch; `'none'` keeps the environment's rewards.
   */
  rewardScale: 'none' | 'budget';
  /**
   * The critic predicts the value per remaining step: `V(S_t) = rho_t (h . w + b)` with
   * `rho_t = T - t` (or `(T - t) / T` with `rewardScale: 'budget'`). With gamma 1 a return is a sum
   * over the remaining steps, so this removes the part of the value the state cannot show.
   */
  criticTimeScale: boolean;
  /** Stop an update's epochs early once the approximate KL exceeds this (null: never). */
  targetKl: number | null;
  /** AdamW learning rate of the actor. */
  actorLearningRate: number;
  /** AdamW learning rate of the critic. */
  criticLearningRate: number;
  /** Decoupled weight decay of both AdamW optimisers. */
  weightDecay: number;
  /** AdamW beta1. */
  adamBeta1: number;
  /** AdamW beta2. */
  adamBeta2: number;
  /** AdamW epsilon. */
  adamEpsilon: number;
  /** Anneal both learning rates linearly to 0 over the run (CleanRL `anneal_lr`). */
  annealLr: boolean;
  /**
   * `'event-sourced'` runs the networks once per distinct row version of the episodes (memory
   * O((N + sum|C|) d)); `'dense'` stacks every state S_t as the reference does (memory
   * O(T N d); for comparison and tests).
   */
  updateMode: PpoUpdateMode;
  /**
   * Largest number of (step, row) scalars the event-sourced update processes at once; longer
   * episodes are split into chunks of steps. Bounds the update's O(T N) part.
   */
  chunkElements: number;
  /** Seed of action sampling and of environment resets. */
  seed: number;
}

/** Defaults of {@link PpoConfig}: the reference's CAMELYON16 settings. @category PPO */
export const DEFAULT_PPO_CONFIG: Readonly<PpoConfig> = Object.freeze({
  numEpisodesPerUpdate: 2, // docs/reference-code.md §6.2/§5.5: num_envs = 2 sequential episodes per slide
  numEnvsPerUpdate: 1, // docs/reference-code.md §6.2: one slide per update (B = 1)
  updateEpochs: 4, // docs/reference-code.md §6.3: num_epochs_on_single_roll_out = 4 (CleanRL update_epochs = 4)
  numMinibatches: 1, // docs/reference-code.md §10.11: full-batch epochs, no minibatches (CleanRL num_minibatches = 4)
  gamma: 1.0, // docs/reference-code.md §6.3: gamma 1.0 (CleanRL 0.99)
  gaeLambda: 0.94, // docs/reference-code.md §6.3: lam 0.94, CAMELYON16 (TCGA 0.95; CleanRL 0.95)
  clipCoef: 0.2, // docs/reference-code.md §6.3: clip 0.2, CAMELYON16 (TCGA 0.1; CleanRL 0.2)
  entCoef: 0.001, // docs/reference-code.md §6.3: entropy_coef 0.001 (CleanRL 0.01)
  maxGradNorm: 0.5, // docs/reference-code.md §6.2: clip_grad_norm_ 0.5 per network (CleanRL 0.5, joint)
  normAdvantage: true, // docs/reference-code.md §6.2 step 5: (A - mean) / (std + 1e-8) over the 2T samples
  clipValueLoss: false, // docs/reference-code.md §6.2: L_critic = MSE(V_new, returns) (CleanRL clip_vloss = True)
  rewardScale: 'none', // docs/reference-code.md §5.3: reward = -CE at every step
  criticTimeScale: false, // docs/reference-code.md §10.10: the critic sees no time information
  targetKl: null, // docs/reference-code.md §6.2: no early stop (CleanRL target_kl = None)
  actorLearningRate: 1e-5, // docs/reference-code.md §6.3: lr 1e-5
  criticLearningRate: 1e-5, // docs/reference-code.md §6.3: lr 1e-5
  weightDecay: 1e-4, // docs/reference-code.md §6.3: wd 1e-4
  adamBeta1: 0.9, // PyTorch AdamW default, used by the reference
  adamBeta2: 0.999, // PyTorch AdamW default, used by the reference
  adamEpsilon: 1e-8, // PyTorch AdamW default, used by the reference (CleanRL Adam eps 1e-5)
  annealLr: false, // docs/reference-code.md §10.11: constant LR, the scheduler is commented out
  updateMode: 'event-sourced', // docs/implementation-details.md P21
  chunkElements: 1 << 17, // ours: 0.5 MB per float32 (step, row) tensor; bounds the update's temporaries
  seed: 1130, // docs/reference-code.md §10.11: RL seed hard-coded at 1130
} satisfies PpoConfig);

/**
 * Per-dataset settings of the reference, to spread over {@link DEFAULT_PPO_CONFIG}.
 * The budget f (0.1 on CAMELYON16, 0.2 on TCGA) belongs to the environment.
 * @category PPO
 */
export const PPO_PRESETS: Readonly<Record<'camelyon16' | 'tcga', Readonly<Partial<PpoConfig>>>> = Object.freeze({
  camelyon16: Object.freeze({ gaeLambda: 0.94, clipCoef: 0.2 }), // docs/reference-code.md §6.3
  tcga: Object.freeze({ gaeLambda: 0.95, clipCoef: 0.1 }), // docs/reference-code.md §6.3
});

/**
 * Resolves and checks a {@link PpoConfig}.
 * @throws ValueError naming the bad key and its allowed range.
 * @category PPO
 */
export function resolvePpoConfig(partial?: Partial<PpoConfig>): Readonly<PpoConfig> {
  const name = 'PpoConfig';
  return resolveConfig(name, DEFAULT_PPO_CONFIG as PpoConfig, partial, (c) => {
    checkNumber(name, c, 'numEpisodesPerUpdate', { min: 1, integer: true });
    checkNumber(name, c, 'numEnvsPerUpdate', { min: 1, integer: true });
    checkNumber(name, c, 'updateEpochs', { min: 1, integer: true });
    checkNumber(name, c, 'numMinibatches', { min: 1, integer: true });
    checkNumber(name, c, 'gamma', { min: 0, max: 1 });
    checkNumber(name, c, 'gaeLambda', { min: 0, max: 1 });
    checkNumber(name, c, 'clipCoef', { min: 0, minExclusive: true });
    checkNumber(name, c, 'entCoef', { min: 0 });
    checkNumber(name, c, 'maxGradNorm', { min: 0, minExclusive: true });
    checkNumber(name, c, 'actorLearningRate', { min: 0 });
    checkNumber(name, c, 'criticLearningRate', { min: 0 });
    checkNumber(name, c, 'weightDecay', { min: 0 });
    checkNumber(name, c, 'adamBeta1', { min: 0, max: 1, maxExclusive: true });
    checkNumber(name, c, 'adamBeta2', { min: 0, max: 1, maxExclusive: true });
    checkNumber(name, c, 'adamEpsilon', { min: 0 });
    checkNumber(name, c, 'chunkElements', { min: 1, integer: true });
    checkNumber(name, c, 'seed', {});
    checkOneOf(name, c, 'updateMode', ['event-sourced', 'dense']);
    checkOneOf(name, c, 'rewardScale', ['none', 'budget']);
    for (const key of ['normAdvantage', 'clipValueLoss', 'annealLr', 'criticTimeScale'] as const) {
      if (typeof c[key] !== 'boolean') throw new ValueError(`Expected ${name}.${key} to be a boolean, but got ${quoteValue(c[key])}.`);
    }
    if (c.targetKl !== null) checkNumber(name, c, 'targetKl', { min: 0, minExclusive: true });
  });
}
