/**
 * Optimisation pieces tfjs lacks: AdamW (decoupled weight decay), clipping by global norm, and
 * the half-cosine learning-rate schedule of the reference code.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';

/** A tensor with a name (an optimiser weight). */
export type NamedTensor = { name: string; tensor: tf.Tensor };
import { checkNumber, resolveConfig } from './config.js';
import { ValueError } from './errors.js';

/** Hyper-parameters of {@link AdamW}. */
export interface AdamWConfig {
  /** Step size. Default 1e-3 (PyTorch). */
  learningRate: number;
  /** First-moment decay. Default 0.9 (PyTorch). */
  beta1: number;
  /** Second-moment decay. Default 0.999 (PyTorch). */
  beta2: number;
  /** Denominator term. Default 1e-8 (PyTorch). */
  epsilon: number;
  /** Decoupled weight decay. Default 0.01 (PyTorch `AdamW`). */
  weightDecay: number;
}

/** Defaults of {@link AdamWConfig}: PyTorch's `torch.optim.AdamW`. */
export const DEFAULT_ADAMW_CONFIG: Readonly<AdamWConfig> = Object.freeze({
  learningRate: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0.01,
});

interface Moments {
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's `AdamW`. At step t
 * for every parameter p with gradient g:
 * ```
 * p <- p - lr * wd * p
 * m <- b1 m + (1 - b1) g;     v <- b2 v + (1 - b2) g^2
 * p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * ```
 * It is a `tf.Optimizer`, so `minimize`, `computeGradients` and `applyGradients` work as usual.
 * `learningRate` may be changed between steps (schedules). Its state (step count and moments)
 * round-trips through `getWeights` / `setWeights` for resumable training.
 *
 * @example
 * ```ts
 * const opt = new AdamW({ learningRate: 4.14e-4, weightDecay: 1e-5 });
 * opt.minimize(() => loss());
 * opt.learningRate = halfCosineLr(0.5, { lr: 4.14e-4, epochs: 50 });
 * ```
 * @category Utils
 */
export class AdamW extends tf.Optimizer {
  /** @internal */
  static className = 'SashaAdamW';
  /** The resolved config; `learningRate` here is the initial one. */
  readonly config: Readonly<AdamWConfig>;
  /** The learning rate used by the next step. */
  learningRate: number;
  private readonly moments = new Map<string, Moments>();

  constructor(config: Partial<AdamWConfig> = {}) {
    super();
    this.config = resolveConfig('AdamWConfig', DEFAULT_ADAMW_CONFIG, config, (c) => {
      checkNumber('AdamWConfig', c, 'learningRate', { min: 0 });
      checkNumber('AdamWConfig', c, 'beta1', { min: 0, max: 1, maxExclusive: true });
      checkNumber('AdamWConfig', c, 'beta2', { min: 0, max: 1, maxExclusive: true });
      checkNumber('AdamWConfig', c, 'epsilon', { min: 0 });
      checkNumber('AdamWConfig', c, 'weightDecay', { min: 0 });
    });
    this.learningRate = this.config.learningRate;
  }

  /** Applies one AdamW step. Gradients stay owned by the caller. */
  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const pairs: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    const { beta1, beta2, epsilon, weightDecay } = this.config;
    const lr = this.learningRate;
    if (!Number.isFinite(lr) || lr < 0) throw new ValueError(`Expected learningRate to be >= 0, but got ${lr}.`);
    const t = this.iterations + 1;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    tf.tidy(() => {
      for (const [name, grad] of pairs) {
        if (grad == null) continue;
        const param = tf.engine().registeredVariables[name];
        if (!param) throw new ValueError(`AdamW: no variable named '${name}' is registered.`);
        let mom = this.moments.get(name);
        if (!mom) {
          mom = {
            m: tf.variable(tf.zerosLike(param), false),
            v: tf.variable(tf.zerosLike(param), false),
          };
          this.moments.set(name, mom);
        }
        const m = tf.add(tf.mul(mom.m, beta1), tf.mul(grad, 1 - beta1));
        const v = tf.add(tf.mul(mom.v, beta2), tf.mul(tf.square(grad), 1 - beta2));
        mom.m.assign(m);
        mom.v.assign(v);
        const step = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), epsilon));
        let next = weightDecay > 0 ? tf.mul(param, 1 - lr * weightDecay) : param;
        next = tf.sub(next, tf.mul(step, lr));
        param.assign(next);
      }
    });
    this.incrementIterations();
  }

  /** The step count and the moments, named `<variable>/adamw_m` and `<variable>/adamw_v`. */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, { m, v }] of this.moments) {
      out.push({ name: `${name}/adamw_m`, tensor: m }, { name: `${name}/adamw_v`, tensor: v });
    }
    return out;
  }

  /** Restores what {@link AdamW.getWeights} returned (the tensors are copied). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    this.disposeMoments();
    const byVar = new Map<string, Partial<Record<'m' | 'v', tf.Tensor>>>();
    for (const { name, tensor } of rest) {
      const match = /^(.*)\/adamw_(m|v)$/.exec(name);
      if (!match) throw new ValueError(`AdamW.setWeights: unexpected weight name '${name}'.`);
      const entry = byVar.get(match[1]) ?? {};
      entry[match[2] as 'm' | 'v'] = tensor;
      byVar.set(match[1], entry);
    }
    for (const [name, { m, v }] of byVar) {
      if (!m || !v) throw new ValueError(`AdamW.setWeights: both moments of '${name}' are needed.`);
      this.moments.set(name, {
        m: tf.variable(tf.clone(m), false),
        v: tf.variable(tf.clone(v), false),
      });
    }
  }

  /** JSON-serialisable config (with the current learning rate). */
  getConfig(): tf.serialization.ConfigDict {
    return { ...this.config, learningRate: this.learningRate };
  }

  /** Frees the moment variables. */
  override dispose(): void {
    super.dispose();
    this.disposeMoments();
  }

  private disposeMoments(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.moments.clear();
  }
}

/** What {@link clipByGlobalNorm} returns. */
export interface ClipResult {
  /** The clipped gradients, new tensors owned by the caller. */
  grads: tf.NamedTensorMap;
  /** The global norm before clipping. */
  globalNorm: number;
}

/**
 * Rescales gradients so that their global norm is at most `maxNorm`, as PyTorch's
 * `clip_grad_norm_`: `n = sqrt(sum_i ||g_i||^2)`, `g_i <- g_i * min(1, maxNorm / (n + 1e-6))`.
 *
 * @param grads gradients by variable name (not disposed).
 * @param maxNorm the largest allowed global norm (> 0).
 * @returns the clipped gradients (new tensors, owned by the caller) and the norm before clipping.
 * @example
 * ```ts
 * // global norm = sqrt(3^2 + 4^2) = 5; maxNorm 1 scales by 1 / (5 + 1e-6)
 * const { grads, globalNorm } = clipByGlobalNorm({ a: tf.tensor1d([3, 4]) }, 1); // globalNorm 5
 * ```
 * @category Utils
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipResult {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new ValueError(`Expected maxNorm to be a positive number, but got ${maxNorm}.`);
  }
  const names = Object.keys(grads);
  if (names.length === 0) return { grads: {}, globalNorm: 0 };
  const normT = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]))))));
  const globalNorm = normT.dataSync()[0];
  normT.dispose();
  const scale = Math.min(1, maxNorm / (globalNorm + 1e-6));
  const out: tf.NamedTensorMap = {};
  for (const n of names) out[n] = tf.tidy(() => tf.mul(grads[n], scale));
  return { grads: out, globalNorm };
}

/** Parameters of {@link halfCosineLr}. */
export interface HalfCosineSchedule {
  /** Peak learning rate. */
  lr: number;
  /** Total number of epochs of the schedule. */
  epochs: number;
  /** Final learning rate (default 0). */
  minLr?: number;
  /** Linear warm-up epochs (default 0). */
  warmupEpochs?: number;
}

/**
 * The learning rate at fractional epoch `e` of the reference code's schedule (linear warm-up,
 * then a half cosine down to `minLr`), called every iteration:
 * `lr(e) = lr * e / w` for `e < w`, else
 * `minLr + (lr - minLr) * 0.5 * (1 + cos(pi * (e - w) / (epochs - w)))`.
 *
 * @example
 * ```ts
 * halfCosineLr(25, { lr: 1e-3, epochs: 50 }); // 5e-4
 * ```
 * @category Utils
 */
export function halfCosineLr(epoch: number, schedule: HalfCosineSchedule): number {
  const { lr, epochs, minLr = 0, warmupEpochs = 0 } = schedule;
  if (!(epochs > 0)) throw new ValueError(`Expected epochs to be > 0, but got ${epochs}.`);
  if (epoch < warmupEpochs) return (lr * epoch) / warmupEpochs;
  const span = Math.max(epochs - warmupEpochs, 1e-12);
  const progress = Math.min(Math.max((epoch - warmupEpochs) / span, 0), 1);
  return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
