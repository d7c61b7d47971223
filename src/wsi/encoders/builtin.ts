/**
 * A small built-in CNN encoder for examples, tests and benchmarks.
 *
 * It is NOT a pathology encoder: its weights are random (seeded), so its features only carry
 * colour and texture statistics. Real use brings a pretrained pathology encoder (see
 * docs/guides/encoders.md); swapping it in is one line.
 *
 * @packageDocumentation
 */
import { tfl } from '../../core/tf.js';
import { checkNumber, resolveConfig } from '../../core/config.js';
import { ValueError } from '../../core/errors.js';
import { createRng } from '../../core/random.js';
import { layersModelEncoder } from './adapters.js';
import type { Normalization, PatchEncoder } from './types.js';

/** Configuration of {@link builtinEncoder}. @category Encoders */
export interface BuiltinEncoderConfig {
  /** Feature width d. */
  dim: number;
  /** Input side; patches are resized to it. */
  inputSize: number;
  /** Filters of each 3 x 3, stride-2 convolution. */
  filters: number[];
  /** Seed of the weight initialisers. */
  seed: number;
  /** Input normalisation. */
  normalization: Normalization;
}

/** Defaults of {@link BuiltinEncoderConfig}. @category Encoders */
export const DEFAULT_BUILTIN_ENCODER_CONFIG: Readonly<BuiltinEncoderConfig> = Object.freeze({
  dim: 384, // docs/reference-code.md §1.3: D_feat 384 (ViT-S/16), so examples match the reference's d
  inputSize: 224, // docs/reference-code.md §1.3: patches resized 256 -> 224
  filters: [16, 32, 64, 128], // four stride-2 convolutions: 224 -> 14 pixels, about 50 M multiply-adds per patch
  seed: 0,
  normalization: 'imagenet' as Normalization, // docs/reference-code.md §1.3: ImageNet mean / std
});

/**
 * The layers of the built-in encoder: `filters.length` blocks of 3 x 3 convolution with stride 2
 * and ReLU, global average pooling, and a dense layer to `dim`. Weights are Glorot-uniform with
 * seeds drawn from `seed`, biases zero, so equal configs give equal models.
 *
 * @returns a new model owned by the caller.
 * @category Encoders
 */
export function builtinEncoderModel(config: Partial<BuiltinEncoderConfig> = {}): tfl.Sequential {
  const c = resolveBuiltinConfig(config);
  const rng = createRng(c.seed);
  const model = tfl.sequential({ name: 'sasha_builtin_encoder' });
  c.filters.forEach((f, i) =>
    model.add(
      tfl.layers.conv2d({
        filters: f,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: rng.seedInt() }),
        ...(i === 0 ? { inputShape: [c.inputSize, c.inputSize, 3] } : {}),
      }),
    ),
  );
  model.add(tfl.layers.globalAveragePooling2d({}));
  model.add(tfl.layers.dense({ units: c.dim, kernelInitializer: tfl.initializers.glorotUniform({ seed: rng.seedInt() }) }));
  return model;
}

function resolveBuiltinConfig(config: Partial<BuiltinEncoderConfig>): Readonly<BuiltinEncoderConfig> {
  return resolveConfig('BuiltinEncoderConfig', DEFAULT_BUILTIN_ENCODER_CONFIG, config, (c) => {
    checkNumber('BuiltinEncoderConfig', c, 'dim', { min: 1, integer: true });
    checkNumber('BuiltinEncoderConfig', c, 'inputSize', { min: 8, integer: true });
    checkNumber('BuiltinEncoderConfig', c, 'seed', {});
    if (!Array.isArray(c.filters) || c.filters.length === 0 || !c.filters.every((f) => Number.isInteger(f) && f > 0)) {
      throw new ValueError(`Expected BuiltinEncoderConfig.filters to be a non-empty list of positive integers, but got ${JSON.stringify(c.filters)}.`);
    }
  });
}

/**
 * The built-in CNN as a {@link PatchEncoder}: deterministic given its seed, small, and meant for
 * examples and tests only (random weights; bring a pretrained pathology encoder for real work,
 * docs/guides/encoders.md).
 *
 * @example
 * ```ts
 * const enc = builtinEncoder({ dim: 64, inputSize: 64, seed: 1 });
 * const z = enc.encode(tf.randomUniform([8, 256, 256, 3], 0, 255)); // [8, 64]
 * enc.dispose();
 * ```
 * @category Encoders
 */
export function builtinEncoder(config: Partial<BuiltinEncoderConfig> = {}): PatchEncoder {
  const c = resolveBuiltinConfig(config);
  return layersModelEncoder(builtinEncoderModel(c), {
    normalization: c.normalization,
    name: `builtin-cnn(d=${c.dim},in=${c.inputSize},seed=${c.seed})`,
  });
}

/**
 * The settings of a built-in CNN from its name (`builtinEncoder(...).name`, as `sasha extract`
 * records it in `extract.json`), or null when `name` is not one.
 * @example
 * ```ts
 * parseBuiltinEncoderName('builtin-cnn(d=64,in=32,seed=0)'); // { dim: 64, inputSize: 32, seed: 0 }
 * parseBuiltinEncoderName('models/vit_s16');                 // null
 * ```
 * @category Encoders
 */
export function parseBuiltinEncoderName(name: string): { dim: number; inputSize: number; seed: number } | null {
  const m = /^builtin-cnn\(d=(\d+),in=(\d+),seed=(-?\d+)\)$/.exec(name);
  return m ? { dim: Number(m[1]), inputSize: Number(m[2]), seed: Number(m[3]) } : null;
}
