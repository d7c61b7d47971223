/**
 * Where training checkpoints go: a small interface, with an in-memory implementation here and a
 * directory implementation in `sasha-wsi/node` (`fileCheckpointStore`).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';

/**
 * Stores named checkpoints (`'last'`, `'best'`) as `tf.io` model artifacts.
 * @category HAFED
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
 * @category HAFED
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
