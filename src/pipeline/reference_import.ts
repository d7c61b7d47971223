/**
 * Models trained with the official SASHA code (github.com/coglabiisc/SASHA), imported from its
 * PyTorch checkpoints: HAFED (`architecture/transformer.py`, both stages), the f_S MLP of the
 * TSU (`modules/fglobal_mlp.py`, `FGlobal`) and the actor / critic of the zoom policy
 * (`rl_algorithms/ppo.py`). Every tensor of the state dict is mapped to a weight of this
 * library (PyTorch `Linear` weights `(out, in)` are transposed into kernels `(in, out)`); a
 * missing, extra or wrongly shaped key is an error that lists them all.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError } from '../core/errors.js';
import { isStateDict, readTorchCheckpoint, torchValueToJson, TorchTensor, type TorchCheckpoint } from '../core/torch/index.js';
import { Hafed } from '../hafed/index.js';
import { ActorCritic } from '../ppo/index.js';
import { StateMlp } from '../tsu/index.js';

/** A checkpoint as bytes (with its name for errors) or already read. @category Pipeline */
export type ReferenceCheckpointSource = { bytes: Uint8Array; name: string } | { checkpoint: TorchCheckpoint; name: string };

/** What every importer returns besides the model. @category Pipeline */
export interface ReferenceImportInfo {
  /** The checkpoint's `epoch`, when it has one. */
  epoch?: number;
  /** The checkpoint's `config` (the training YAML the official code saved with it), as JSON. */
  config?: Record<string, unknown>;
  /** State-dict keys that were read but are unused by the official model (HAFED's `dimreduction*`). */
  ignored: string[];
}

function open(source: ReferenceCheckpointSource): { root: unknown; name: string } {
  const ckpt = 'checkpoint' in source ? source.checkpoint : readTorchCheckpoint(source.bytes, source.name);
  return { root: ckpt.root, name: source.name };
}

/**
 * The state dict of a checkpoint: `checkpoint['model']` as the official code saves it
 * (`{model, optimizer, epoch, config}`), or the root itself for `torch.save(model.state_dict())`.
 */
function stateDictOf(root: unknown, name: string, what: string): { state: Map<string, TorchTensor>; info: Omit<ReferenceImportInfo, 'ignored'> } {
  if (isStateDict(root)) return { state: root, info: {} };
  if (root instanceof Map && isStateDict(root.get('model'))) {
    const epoch = root.get('epoch');
    const config = root.get('config');
    return {
      state: root.get('model') as Map<string, TorchTensor>,
      info: {
        ...(typeof epoch === 'number' ? { epoch } : {}),
        ...(config instanceof Map ? { config: torchValueToJson(config) as Record<string, unknown> } : {}),
      },
    };
  }
  const keys = root instanceof Map ? [...root.keys()].map(String).slice(0, 10).join(', ') : typeof root;
  throw new DataError(`'${name}' holds no ${what} state dict: expected a checkpoint {model: state_dict, ...} or a state dict, but found ${keys}.`);
}

/** Expected keys and shapes; `ignore` lists keys (or prefixes ending in '.') read and dropped. */
function checkKeys(state: Map<string, TorchTensor>, expected: Record<string, number[]>, ignore: string[], name: string, what: string): string[] {
  const problems: string[] = [];
  const isIgnored = (k: string) => ignore.some((p) => (p.endsWith('.') ? k.startsWith(p) : k === p));
  const missing = Object.keys(expected).filter((k) => !state.has(k));
  if (missing.length) problems.push(`missing ${missing.map((k) => `${k} [${expected[k].join(', ')}]`).join(', ')}`);
  const extra = [...state.keys()].filter((k) => !(k in expected) && !isIgnored(k));
  if (extra.length) problems.push(`unexpected ${extra.slice(0, 20).join(', ')}${extra.length > 20 ? ` (and ${extra.length - 20} more)` : ''}`);
  for (const [k, shape] of Object.entries(expected)) {
    const t = state.get(k);
    if (t && (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))) problems.push(`${k} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (problems.length) {
    throw new DataError(`'${name}' is not a checkpoint of the official ${what}: ${problems.join('; ')}.`);
  }
  return [...state.keys()].filter(isIgnored);
}

/** The shape of a required key, or an error naming it. */
function shapeOf(state: Map<string, TorchTensor>, key: string, rank: number, name: string, what: string): number[] {
  const t = state.get(key);
  if (!t) {
    const have = [...state.keys()].slice(0, 12).join(', ');
    throw new DataError(`'${name}' is not a checkpoint of the official ${what}: it lacks '${key}' (its keys: ${have}${state.size > 12 ? ', ...' : ''}).`);
  }
  if (t.shape.length !== rank) throw new DataError(`'${name}': '${key}' has shape [${t.shape.join(', ')}], expected rank ${rank}.`);
  return [...t.shape];
}

/** A PyTorch tensor as a tfjs tensor; Linear weights `(out, in)` transposed to kernels `(in, out)`. */
function tensorOf(state: Map<string, TorchTensor>, key: string, transpose = false): tf.Tensor {
  const t = state.get(key)!;
  const x = tf.tensor(t.toFloat32(), [...t.shape], 'float32');
  if (!transpose) return x;
  const y = tf.transpose(x);
  x.dispose();
  return y;
}

/** Keys and shapes of one `Attention_Gated(L, D, K)` under `prefix`. */
function gatedKeys(prefix: string, L: number, D: number, K: number): Record<string, number[]> {
  return {
    [`${prefix}.attention_V.0.weight`]: [D, L],
    [`${prefix}.attention_V.0.bias`]: [D],
    [`${prefix}.attention_U.0.weight`]: [D, L],
    [`${prefix}.attention_U.0.bias`]: [D],
    [`${prefix}.attention_weights.weight`]: [K, D],
    [`${prefix}.attention_weights.bias`]: [K],
  };
}

/** Options of {@link hafedFromReference}. @category Pipeline */
export interface HafedFromReferenceOptions {
  /** k, the sub-patches per patch of the features it will read (the checkpoint does not record it). Default 16 (4 x 4, LR level 3 over HR level 1). */
  k?: number;
}

/**
 * HAFED from a checkpoint of the official code (`step3_WSI_classification_HAFED.py`'s
 * `checkpoint-best.pt`, or a bare `HAFED.state_dict()`).
 *
 * Mapping (kernels are the transposed PyTorch weights):
 * `attention_1.attention_{V,U}.0.{weight,bias}` -> `stage1/attention/kernel{V,U}`, `bias{V,U}`;
 * `attention_1.attention_weights.*` -> `stage1/attention/{kernelW,biasW}`; the same for
 * `attention_2` into `stage2/attention/*`; `classifier.m.fc.*` -> `stage2/branchKernel[m]`,
 * `branchBias[m]`; `Slide_classifier.fc.*` -> `stage2/slideKernel`, `slideBias`. The unused
 * `dimreduction*.fc1.weight` are read and dropped. d, the attention width D, M1, M2 and the
 * class count come from the shapes; the masking settings (training only) from the saved
 * config when present.
 *
 * @returns the model (owned by the caller) and what the checkpoint says about its training.
 * @throws DataError naming the file and every missing, unexpected or wrongly shaped key, or a
 *   model trained with `dim_reduction: True`.
 * @example
 * ```ts
 * const { model } = hafedFromReference({ bytes: await readFile('hafed/checkpoint-best.pt'), name: 'checkpoint-best.pt' });
 * model.classify(v); // as the official HAFED.classify
 * ```
 * @category Pipeline
 */
export function hafedFromReference(source: ReferenceCheckpointSource, options: HafedFromReferenceOptions = {}): { model: Hafed } & ReferenceImportInfo {
  const what = 'HAFED (architecture/transformer.py)';
  const { root, name } = open(source);
  const { state, info } = stateDictOf(root, name, 'HAFED');
  const cfg = info.config ?? {};
  if (cfg.dim_reduction === true) {
    throw new DataError(`'${name}' is a HAFED trained with dim_reduction: True (a ReLU projection to D_inner before the attention), which this library's HAFED does not have.`);
  }
  const [D, d] = shapeOf(state, 'attention_1.attention_V.0.weight', 2, name, what);
  const [m1] = shapeOf(state, 'attention_1.attention_weights.weight', 2, name, what);
  const [m2] = shapeOf(state, 'attention_2.attention_weights.weight', 2, name, what);
  const [c] = shapeOf(state, 'Slide_classifier.fc.weight', 2, name, what);
  const expected: Record<string, number[]> = { ...gatedKeys('attention_1', d, D, m1), ...gatedKeys('attention_2', d, D, m2) };
  for (let m = 0; m < m2; m++) Object.assign(expected, { [`classifier.${m}.fc.weight`]: [c, d], [`classifier.${m}.fc.bias`]: [c] });
  Object.assign(expected, { 'Slide_classifier.fc.weight': [c, d], 'Slide_classifier.fc.bias': [c] });
  const ignored = checkKeys(state, expected, ['dimreduction.fc1.weight', 'dimreduction_2.fc1.weight'], name, what);
  const num = (k: string, fallback: number) => (typeof cfg[k] === 'number' && Number.isFinite(cfg[k]) ? (cfg[k] as number) : fallback);
  const model = new Hafed({
    dim: d,
    k: options.k ?? 16,
    numClasses: c,
    numBranches1: m1,
    numBranches2: m2,
    attentionDim: D,
    gated: true,
    maskTopK1: num('n_masked_patch_1', 0),
    maskTopK2: num('n_masked_patch_2', 0),
    maskDrop: num('mask_drop', 0),
    input: 'highRes',
  });
  const weights: tf.NamedTensorMap = {};
  try {
    for (const [stage, prefix] of [
      ['stage1', 'attention_1'],
      ['stage2', 'attention_2'],
    ] as const) {
      weights[`${stage}/attention/kernelV`] = tensorOf(state, `${prefix}.attention_V.0.weight`, true);
      weights[`${stage}/attention/biasV`] = tensorOf(state, `${prefix}.attention_V.0.bias`);
      weights[`${stage}/attention/kernelU`] = tensorOf(state, `${prefix}.attention_U.0.weight`, true);
      weights[`${stage}/attention/biasU`] = tensorOf(state, `${prefix}.attention_U.0.bias`);
      weights[`${stage}/attention/kernelW`] = tensorOf(state, `${prefix}.attention_weights.weight`, true);
      weights[`${stage}/attention/biasW`] = tensorOf(state, `${prefix}.attention_weights.bias`);
    }
    const kernels = Array.from({ length: m2 }, (_, m) => tensorOf(state, `classifier.${m}.fc.weight`, true));
    const biases = Array.from({ length: m2 }, (_, m) => tensorOf(state, `classifier.${m}.fc.bias`));
    weights['stage2/branchKernel'] = tf.stack(kernels); // [M2, d, C]
    weights['stage2/branchBias'] = tf.stack(biases); // [M2, C]
    tf.dispose([...kernels, ...biases]);
    weights['stage2/slideKernel'] = tensorOf(state, 'Slide_classifier.fc.weight', true);
    weights['stage2/slideBias'] = tensorOf(state, 'Slide_classifier.fc.bias');
    model.setWeights(weights);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(weights));
  }
  return { model, ...info, ignored };
}

/**
 * f_S from a checkpoint of the official TSU (`step5_tsu_training.py`'s `checkpoint-best.pt`
 * of `FGlobal`, or its bare state dict): `fc1.{weight,bias}` [h, 3d], `fc2.{weight,bias}`
 * [d, h], `layer_norm.{weight,bias}` [d]. The input order `[V(a), S(a), S(i)]` is the same as
 * here, so the imported f_S is used unchanged.
 * @returns the model (owned by the caller) and what the checkpoint says about its training.
 * @throws DataError naming the file and every missing, unexpected or wrongly shaped key.
 * @example
 * ```ts
 * const { model: fS } = stateMlpFromReference({ bytes, name: 'tsu.pt' }); // d and h from the shapes
 * ```
 * @category Pipeline
 */
export function stateMlpFromReference(source: ReferenceCheckpointSource): { model: StateMlp } & ReferenceImportInfo {
  const what = 'TSU f_S (modules/fglobal_mlp.py, FGlobal)';
  const { root, name } = open(source);
  const { state, info } = stateDictOf(root, name, 'f_S');
  const [h, in3] = shapeOf(state, 'fc1.weight', 2, name, what);
  const [d] = shapeOf(state, 'fc2.weight', 2, name, what);
  if (in3 !== 3 * d) throw new DataError(`'${name}': fc1.weight takes ${in3} inputs, but an f_S of width d = ${d} takes 3d = ${3 * d} ([V(a), S(a), S(i)]).`);
  const ignored = checkKeys(
    state,
    { 'fc1.weight': [h, 3 * d], 'fc1.bias': [h], 'fc2.weight': [d, h], 'fc2.bias': [d], 'layer_norm.weight': [d], 'layer_norm.bias': [d] },
    [],
    name,
    what,
  );
  const model = new StateMlp({ dim: d, hiddenDim: h });
  try {
    model.setTorchStateDict(Object.fromEntries([...state].map(([k, t]) => [k, { data: t.toFloat32(), shape: t.shape }])));
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, ...info, ignored };
}

/**
 * The zoom policy's actor and critic from a checkpoint of the official code
 * (`step6_rl_training.py`'s policy checkpoint, keys `actor.*` and `critic.*`).
 *
 * Mapping: `actor.attention.attention_{V,U}.0.*` -> `actor/attention_{v,u}/{kernel,bias}`,
 * `actor.attention.attention_weights.*` -> `actor/attention_weights/*`, the same for
 * `critic.attention`, and `critic.final_layer.fc.*` -> `critic/value_fc/*`; the unused
 * `{actor,critic}.dimreduction.fc1.weight` are read and dropped.
 * @returns the actor-critic (owned by the caller) and what the checkpoint says about its training.
 * @throws DataError naming the file and every missing, unexpected or wrongly shaped key.
 * @example
 * ```ts
 * const { model: policy } = actorCriticFromReference({ bytes, name: 'rl.pt' });
 * policy.actorLogits(state); // [N], as the official Actor
 * ```
 * @category Pipeline
 */
export function actorCriticFromReference(source: ReferenceCheckpointSource): { model: ActorCritic } & ReferenceImportInfo {
  const what = 'actor / critic (rl_algorithms/ppo.py)';
  const { root, name } = open(source);
  const { state, info } = stateDictOf(root, name, 'actor / critic');
  const [h, d] = shapeOf(state, 'actor.attention.attention_V.0.weight', 2, name, what);
  const expected: Record<string, number[]> = {
    ...gatedKeys('actor.attention', d, h, 1),
    ...gatedKeys('critic.attention', d, h, 1),
    'critic.final_layer.fc.weight': [1, d],
    'critic.final_layer.fc.bias': [1],
  };
  const ignored = checkKeys(state, expected, ['actor.dimreduction.fc1.weight', 'critic.dimreduction.fc1.weight'], name, what);
  const model = new ActorCritic({ dim: d, hiddenDim: h });
  const weights: tf.NamedTensorMap = {};
  try {
    for (const role of ['actor', 'critic'] as const) {
      for (const [ours, theirs] of [
        ['attention_v', 'attention_V.0'],
        ['attention_u', 'attention_U.0'],
        ['attention_weights', 'attention_weights'],
      ] as const) {
        weights[`${role}/${ours}/kernel`] = tensorOf(state, `${role}.attention.${theirs}.weight`, true);
        weights[`${role}/${ours}/bias`] = tensorOf(state, `${role}.attention.${theirs}.bias`);
      }
    }
    weights['critic/value_fc/kernel'] = tensorOf(state, 'critic.final_layer.fc.weight', true);
    weights['critic/value_fc/bias'] = tensorOf(state, 'critic.final_layer.fc.bias');
    model.setWeights(weights);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(weights));
  }
  return { model, ...info, ignored };
}
