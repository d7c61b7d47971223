/**
 * A small classifier with the shape of HAFED stage 2 (gated attention with M branches and a
 * linear slide head) and random weights, for tests and benchmarks of the environment.
 */
import { tf, createRng, linear } from '../../src/core/index.js';
import type { StateClassifier } from '../../src/mdp/index.js';
import { fastTanh } from '../../src/core/ops.js';

export interface StandInArgs {
  dim: number;
  hidden?: number;
  numBranches?: number;
  numClasses?: number;
  seed?: number;
  /** Multiplies the attention projection (large values give sharp, large logits). */
  logitScale?: number;
}

export class GatedAttentionClassifier implements StateClassifier {
  readonly dim: number;
  readonly numClasses: number;
  readonly numBranches: number;
  private readonly w: Record<string, tf.Tensor>;

  constructor({ dim, hidden = 16, numBranches = 5, numClasses = 2, seed = 0, logitScale = 1 }: StandInArgs) {
    this.dim = dim;
    this.numBranches = numBranches;
    this.numClasses = numClasses;
    const rng = createRng(seed);
    const u = (shape: number[], fanIn: number, scale = 1) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const b = scale / Math.sqrt(fanIn);
      return tf.tensor(Float32Array.from({ length: n }, () => rng.uniform(-b, b)), shape);
    };
    this.w = {
      wv: u([dim, hidden], dim),
      bv: u([hidden], dim),
      wu: u([dim, hidden], dim),
      bu: u([hidden], dim),
      ww: u([hidden, numBranches], hidden, logitScale),
      bw: u([numBranches], hidden),
      wh: u([dim, numClasses], dim, 4),
      bh: u([numClasses], dim),
    };
  }

  stage2RowLogits(x: tf.Tensor2D): tf.Tensor2D {
    const w = this.w;
    return tf.tidy(() => {
      const a = fastTanh(linear(x, w.wv, w.bv));
      const b = tf.sigmoid(linear(x, w.wu, w.bu));
      return linear(tf.mul(a, b) as tf.Tensor2D, w.ww, w.bw);
    });
  }

  stage2HeadLogits(pooled: tf.Tensor2D): tf.Tensor2D {
    return linear(pooled, this.w.wh, this.w.bh);
  }

  dispose(): void {
    tf.dispose(Object.values(this.w));
  }
}

/**
 * Features with clusters of near-duplicate rows, so that similar sets are not empty: row i
 * is `center[c] + sigma_c * noise`, with sigma_c drawn per cluster in [sigmaLo, sigmaHi].
 * V is a fixed non-linear map of Z plus noise.
 */
export function clusteredFeatures(
  n: number,
  d: number,
  seed: number,
  opts: { clusterSize?: number; sigmaLo?: number; sigmaHi?: number } = {},
): { z: Float32Array; v: Float32Array } {
  const { clusterSize = 5, sigmaLo = 0.1, sigmaHi = 0.35 } = opts;
  const rng = createRng(seed);
  const z = new Float32Array(n * d);
  const v = new Float32Array(n * d);
  const numClusters = Math.max(1, Math.ceil(n / clusterSize));
  const centers = Array.from({ length: numClusters }, () => Float32Array.from({ length: d }, () => rng.normal()));
  const sigmas = Array.from({ length: numClusters }, () => rng.uniform(sigmaLo, sigmaHi));
  for (let i = 0; i < n; i++) {
    const c = rng.int(numClusters);
    for (let j = 0; j < d; j++) {
      const x = centers[c][j] + sigmas[c] * rng.normal();
      z[i * d + j] = x;
      v[i * d + j] = Math.tanh(1.5 * x + 0.3) + 0.5 * Math.sin(centers[c][(j + 1) % d]) + 0.05 * rng.normal();
    }
  }
  return { z, v };
}
