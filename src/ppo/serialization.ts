/**
 * Saving and loading named tensors plus a JSON description through `tf.io` handlers, so the
 * same code writes to files (Node handlers of `sasha-wsi/node`), IndexedDB or memory.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ValueError } from '../core/errors.js';

/** A `tf.io` handler or a URL string with a registered scheme (`indexeddb://`, ...). */
export type IOTarget = tf.io.IOHandler | string;

function saveHandlerFor(target: IOTarget): tf.io.IOHandler {
  if (typeof target !== 'string') return target;
  const handlers = tf.io.getSaveHandlers(target);
  if (handlers.length === 0) {
    throw new ValueError(
      `No tf.io save handler is registered for '${target}'. Pass a handler instead: in Node a file handler from 'sasha-wsi/node', in a browser 'indexeddb://name' or 'downloads://name'.`,
    );
  }
  return handlers[0];
}

function loadHandlerFor(target: IOTarget): tf.io.IOHandler {
  if (typeof target !== 'string') return target;
  const handlers = tf.io.getLoadHandlers(target);
  if (handlers.length === 0) {
    throw new ValueError(
      `No tf.io load handler is registered for '${target}'. Pass a handler instead: in Node a file handler from 'sasha-wsi/node', in a browser 'indexeddb://name'.`,
    );
  }
  return handlers[0];
}

/**
 * Encodes `tensors` and `description` into one `tf.io` artifact (`modelTopology` holds
 * `{ format, ...description }`).
 * @internal
 */
export async function namedTensorsToArtifacts(
  format: string,
  description: Record<string, unknown>,
  tensors: tf.NamedTensorMap,
): Promise<tf.io.ModelArtifacts> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  return { modelTopology: { format, ...description }, format, generatedBy: 'sasha-wsi', weightSpecs: specs, weightData: data };
}

/**
 * Decodes what {@link namedTensorsToArtifacts} encoded. Tensors in the result belong to the caller.
 * @throws DataError when the artifact is not of the expected format.
 * @internal
 */
export function artifactsToNamedTensors(
  artifacts: tf.io.ModelArtifacts,
  format: string,
): { description: Record<string, unknown>; tensors: tf.NamedTensorMap } {
  const topology = artifacts.modelTopology as Record<string, unknown> | undefined;
  if (!topology || topology instanceof ArrayBuffer || topology.format !== format) {
    const got = topology && !(topology instanceof ArrayBuffer) ? String(topology.format) : 'no description';
    throw new DataError(`Expected a saved '${format}', but got '${got}'. Check that the path points at the right checkpoint.`);
  }
  if (!artifacts.weightSpecs || !artifacts.weightData) {
    throw new DataError(`The saved '${format}' has no weights; the checkpoint is incomplete.`);
  }
  const tensors = tf.io.decodeWeights(tf.io.CompositeArrayBuffer.join(artifacts.weightData), artifacts.weightSpecs);
  return { description: topology, tensors };
}

/**
 * Hands one artifact to the handler in a single `save` call (a handler that writes to a
 * temporary name and renames never leaves a half-written file).
 * @internal
 */
export async function saveArtifacts(target: IOTarget, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  const handler = saveHandlerFor(target);
  if (!handler.save) throw new ValueError('Expected a tf.io handler with a save method.');
  return handler.save(artifacts);
}

/** Loads one artifact through a handler or URL. @internal */
export async function loadArtifacts(target: IOTarget): Promise<tf.io.ModelArtifacts> {
  const handler = loadHandlerFor(target);
  if (!handler.load) throw new ValueError('Expected a tf.io handler with a load method.');
  return handler.load();
}
