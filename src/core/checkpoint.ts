/**
 * Training checkpoints, one format for every trainer of the library (HAFED, f_S, the zoom
 * policy): where they go ({@link CheckpointStore}), the optimiser state by stable weight names,
 * the checks before resuming, and the per-epoch random generator that makes a resumed run
 * equal an uninterrupted one.
 *
 * A training checkpoint is one `tf.io` artifact (see {@link encodeArtifacts}) whose
 * description holds `{ resume, epochsDone, progress }` and whose tensors are named
 * `<group>/<weight>` (for example `model/...`, `best/...`) and
 * `optimizer/<group>/<weight>/m`, `.../v`, `optimizer/<group>/iterations` (without a group:
 * `optimizer/<weight>/m`, `optimizer/iterations`).
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { DataError, StateError, ValueError, quoteValue } from './errors.js';
import { decodeArtifacts, encodeArtifacts, pickPrefixed, type ArtifactFormat } from './io.js';
import type { AdamW } from './optim.js';
import { createRng, type Rng } from './random.js';

/**
 * Stores named checkpoints (`'last'`, `'best'`) as `tf.io` model artifacts. In Node,
 * `fileCheckpointStore(dir)` of `sasha-wsi/node` keeps each one as a directory.
 * @category Persistence
 */
export interface CheckpointStore {
  /**
   * Writes checkpoint `name`, replacing any previous one as a unit: after a crash, the
   * previous or the new checkpoint is readable, never a mix or a partial file.
   */
  save(name: string, artifacts: tf.io.ModelArtifacts): Promise<void>;
  /** Reads checkpoint `name`, or returns null when none was written. */
  load(name: string): Promise<tf.io.ModelArtifacts | null>;
}

function copyArtifacts(a: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const data = a.weightData === undefined ? undefined : tf.io.CompositeArrayBuffer.join(a.weightData).slice(0);
  return {
    ...a,
    modelTopology: a.modelTopology === undefined ? undefined : JSON.parse(JSON.stringify(a.modelTopology)),
    weightSpecs: a.weightSpecs?.map((s) => ({ ...s })),
    weightData: data,
  };
}

/**
 * A {@link CheckpointStore} in memory (tests, notebooks, browsers without storage). Saved
 * artifacts are copied, so later changes to the model do not alter them.
 * @example
 * ```ts
 * const store = new MemoryCheckpointStore();
 * await trainHafed({ train, val, checkpoint: store });
 * const last = await store.load('last');
 * ```
 * @category Persistence
 */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly items = new Map<string, tf.io.ModelArtifacts>();

  async save(name: string, artifacts: tf.io.ModelArtifacts): Promise<void> {
    this.items.set(name, copyArtifacts(artifacts));
  }

  async load(name: string): Promise<tf.io.ModelArtifacts | null> {
    const a = this.items.get(name);
    return a ? copyArtifacts(a) : null;
  }

  /** Names of the stored checkpoints. */
  names(): string[] {
    return [...this.items.keys()];
  }
}

/**
 * A view of a store whose names get a prefix, so that several trainers share one store.
 * @example
 * ```ts
 * const hafedCheckpoints = prefixedStore(store, 'checkpoints/hafed/'); // 'last' -> 'checkpoints/hafed/last'
 * ```
 * @category Persistence
 */
export function prefixedStore(store: CheckpointStore, prefix: string): CheckpointStore {
  return {
    save: (name, artifacts) => store.save(prefix + name, artifacts),
    load: (name) => store.load(prefix + name),
  };
}

/**
 * The random generator of one training epoch (slide order, masks, anchors, action sampling):
 * a function of `(seed, epoch)` only, so that a run resumed at any epoch draws what the
 * uninterrupted run drew.
 * @example
 * ```ts
 * const order = epochRng(5, 3).permutation(numSlides);
 * ```
 * @category Persistence
 */
export function epochRng(seed: number, epoch: number): Rng {
  return createRng((Math.imul(Math.floor(seed) | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
}

function optimizerPrefix(group: string): string {
  return group === '' ? 'optimizer/' : `optimizer/${group}/`;
}

/**
 * The state of an AdamW optimiser as named tensors, keyed by the stable names of the variables
 * it updates: `optimizer/<group>/<name>/m`, `.../v` and `optimizer/<group>/iterations`
 * (`optimizer/<name>/m`, `optimizer/iterations` when `group` is `''`).
 * @param variables the optimised variables by stable name (a model's `weightMap()`).
 * @returns the tensors (the moments are the optimiser's own variables: encode them before the
 *   next step) and `dispose()`, which frees the one tensor made here (the step count).
 * @example
 * ```ts
 * const opt = await optimizerTensors(optimizer, model.weightMap());
 * const artifacts = await encodeArtifacts(spec, state, { ...weights, ...opt.tensors });
 * opt.dispose();
 * ```
 * @category Persistence
 */
export async function optimizerTensors(
  optimizer: AdamW,
  variables: Record<string, tf.Variable>,
  group = '',
): Promise<{ tensors: tf.NamedTensorMap; dispose(): void }> {
  const prefix = optimizerPrefix(group);
  const stableOf = new Map(Object.entries(variables).map(([stable, v]) => [v.name, stable] as const));
  const tensors: tf.NamedTensorMap = {};
  let iterations: tf.Tensor | null = null;
  for (const { name, tensor } of await optimizer.getWeights()) {
    if (name === 'iter') {
      iterations = tensor;
      tensors[`${prefix}iterations`] = tensor;
      continue;
    }
    const m = /^(.*)\/adamw_(m|v)$/.exec(name);
    const stable = m ? stableOf.get(m[1]) : undefined;
    if (!m || stable === undefined) {
      iterations?.dispose();
      throw new StateError(`The optimiser holds state for '${name}', which is not one of the variables given.`);
    }
    tensors[`${prefix}${stable}/${m[2]}`] = tensor;
  }
  return { tensors, dispose: () => iterations?.dispose() };
}

/**
 * Restores what {@link optimizerTensors} saved into `optimizer` (the tensors are copied).
 * @param tensors the decoded tensors of the whole artifact.
 * @param variables the optimised variables by stable name, as when saving.
 * @throws DataError when the step count is missing (an incomplete checkpoint).
 * @category Persistence
 */
export async function restoreOptimizer(
  optimizer: AdamW,
  tensors: tf.NamedTensorMap,
  variables: Record<string, tf.Variable>,
  group = '',
): Promise<void> {
  const prefix = optimizerPrefix(group);
  const iterations = tensors[`${prefix}iterations`];
  if (!iterations) throw new DataError(`The checkpoint has no optimiser state${group ? ` for '${group}'` : ''}; it is incomplete. Remove it to start afresh.`);
  const list: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: iterations }];
  for (const [stable, v] of Object.entries(variables)) {
    const m = tensors[`${prefix}${stable}/m`];
    const s = tensors[`${prefix}${stable}/v`];
    if (m && s) list.push({ name: `${v.name}/adamw_m`, tensor: m }, { name: `${v.name}/adamw_v`, tensor: s });
  }
  await optimizer.setWeights(list);
}

/**
 * The JSON part of a training checkpoint.
 * @category Persistence
 */
export interface TrainingCheckpointState<P = unknown> {
  /**
   * What must be equal to resume: the model config, the training settings except `epochs`,
   * the seed, the training slide ids.
   */
  resume: Record<string, unknown>;
  /** Epochs completed. */
  epochsDone: number;
  /** The trainer's own progress (history, the selected epoch). */
  progress: P;
}

/**
 * Checks that a checkpoint may be resumed with the current settings: every key of
 * `saved.resume` equals the current one, and no more epochs are done than now asked for.
 * Settings the checkpoint does not record (an older layout) are not compared.
 * @param what the trainer, for the message (`'HAFED'`).
 * @throws ValueError naming each differing setting, its saved and current values, and the fix.
 * @example
 * ```ts
 * checkResume('HAFED', saved, { resume: { model: config, seed, trainIds }, epochs: 50 });
 * ```
 * @category Persistence
 */
export function checkResume(
  what: string,
  saved: Pick<TrainingCheckpointState, 'resume' | 'epochsDone'>,
  current: { resume: Record<string, unknown>; epochs: number },
): void {
  const keys = Object.keys(saved.resume ?? {});
  const differ: string[] = [];
  for (const k of keys) {
    const was = saved.resume?.[k] ?? null;
    const now = current.resume[k] ?? null;
    if (!sameJson(was, now)) differ.push(`${k} (checkpoint: ${quoteValue(was, 200)}; now: ${quoteValue(now, 200)})`);
  }
  if (differ.length > 0) {
    throw new ValueError(
      `The ${what} checkpoint was written with other settings: ${differ.join('; ')}. ` +
        'Resume with the same settings (only the number of epochs may grow), or remove the checkpoint to start afresh.',
    );
  }
  if (saved.epochsDone > current.epochs) {
    throw new ValueError(`The ${what} checkpoint has ${saved.epochsDone} epochs done, more than epochs = ${current.epochs}. Ask for at least ${saved.epochsDone} epochs.`);
  }
}

/** Whether two values have the same JSON (false when one is nested too deeply to serialise: a damaged file). */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/** What {@link encodeTrainingCheckpoint} writes. @category Persistence */
export interface TrainingCheckpointParts<P = unknown> extends TrainingCheckpointState<P> {
  /** Tensor groups by name (`{ model: weights, best: bestWeights }`); read, not disposed. Null groups are skipped. */
  tensors: Record<string, tf.NamedTensorMap | null | undefined>;
  /** The optimisers with the variables they update by stable name, by group (`''` for one optimiser). */
  optimizers?: Record<string, { optimizer: AdamW; variables: Record<string, tf.Variable> }>;
}

/**
 * Encodes a training checkpoint (see the module description for the layout).
 * @returns new buffers; the tensors given stay owned by the caller.
 * @example
 * ```ts
 * await store.save('last', await encodeTrainingCheckpoint(HAFED_CHECKPOINT, {
 *   resume, epochsDone: epoch + 1, progress: { history, best },
 *   tensors: { model: model.weightMap(), best: bestWeights },
 *   optimizers: { '': { optimizer, variables: model.weightMap() } },
 * }));
 * ```
 * @category Persistence
 */
export async function encodeTrainingCheckpoint<P>(spec: ArtifactFormat, parts: TrainingCheckpointParts<P>): Promise<tf.io.ModelArtifacts> {
  const tensors: tf.NamedTensorMap = {};
  for (const [group, map] of Object.entries(parts.tensors)) {
    if (!map) continue;
    for (const [k, v] of Object.entries(map)) tensors[`${group}/${k}`] = v;
  }
  const made: { dispose(): void }[] = [];
  try {
    for (const [group, { optimizer, variables }] of Object.entries(parts.optimizers ?? {})) {
      const o = await optimizerTensors(optimizer, variables, group);
      made.push(o);
      Object.assign(tensors, o.tensors);
    }
    const state: TrainingCheckpointState<P> = { resume: parts.resume, epochsDone: parts.epochsDone, progress: parts.progress };
    return await encodeArtifacts(spec, state as unknown as Record<string, unknown>, tensors);
  } finally {
    for (const m of made) m.dispose();
  }
}

/** A decoded training checkpoint. Call {@link TrainingCheckpoint.dispose} when done. @category Persistence */
export interface TrainingCheckpoint<P = unknown> {
  /** The resume settings, epochs done and progress. */
  state: TrainingCheckpointState<P>;
  /** The tensors of group `name` (without the group prefix); empty when the group was not saved. */
  group(name: string): tf.NamedTensorMap;
  /** Restores the optimiser of `group` (see {@link restoreOptimizer}). */
  restoreOptimizer(optimizer: AdamW, variables: Record<string, tf.Variable>, group?: string): Promise<void>;
  /** Frees the decoded tensors. */
  dispose(): void;
}

/**
 * Decodes a training checkpoint and checks it may resume the current run ({@link checkResume}).
 * @param current the current resume settings and number of epochs.
 * @param legacy reads the description of layout version 1 (release 0.1), when the trainer had one.
 * @returns the checkpoint; its tensors belong to it (dispose it).
 * @throws DataError on another format or a newer layout; ValueError when the settings differ.
 * @category Persistence
 */
export function decodeTrainingCheckpoint<P>(
  artifacts: tf.io.ModelArtifacts,
  spec: ArtifactFormat,
  current: { resume: Record<string, unknown>; epochs: number },
  legacy?: (description: Record<string, unknown>) => TrainingCheckpointState<P>,
): TrainingCheckpoint<P> {
  const { description, version, tensors } = decodeArtifacts(artifacts, spec);
  try {
    const state =
      version < spec.version && legacy ? legacy(description) : (description as unknown as TrainingCheckpointState<P>);
    if (!state || typeof state.epochsDone !== 'number' || typeof state.resume !== 'object') {
      throw new DataError(`The ${spec.what} has no training progress; it is incomplete. Remove it to start afresh.`);
    }
    checkResume(spec.what.replace(/ checkpoint$/, ''), state, current);
    return {
      state,
      group: (name) => pickPrefixed(tensors, `${name}/`),
      restoreOptimizer: (optimizer, variables, group = '') => restoreOptimizer(optimizer, tensors, variables, group),
      dispose: () => tf.dispose(tensors),
    };
  } catch (e) {
    tf.dispose(tensors);
    throw e;
  }
}
