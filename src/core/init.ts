/**
 * Weight initialisation shared by every network of the library.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import type { Rng } from './random.js';

/**
 * PyTorch's `nn.Linear` initialisation: every weight and bias value uniform in
 * `[-1/sqrt(fanIn), 1/sqrt(fanIn))`, drawn from `rng` in row-major order (kaiming-uniform with
 * `a = sqrt(5)` gives the same bound for the kernel). The reference initialises every layer of
 * HAFED, f_S and the actor-critic this way.
 * @param shape the tensor's shape (`[in, out]` for a kernel, `[out]` for a bias).
 * @param fanIn the layer's input width.
 * @returns a new float32 tensor owned by the caller.
 * @example
 * ```ts
 * const rng = createRng(0);
 * const kernel = linearInit(rng, [384, 128], 384); // values in [-0.051, 0.051)
 * const bias = linearInit(rng, [128], 384);
 * ```
 * @category Utils
 */
export function linearInit(rng: Rng, shape: readonly number[], fanIn: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = rng.uniform(-bound, bound);
  return tf.tensor(values, [...shape], 'float32');
}
