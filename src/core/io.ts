/**
 * Saving and loading through `tf.io`: one target type for every model and trainer of the
 * library, and one artifact layout (a JSON description tagged with a format name and a layout
 * version, plus named tensors). The same code writes to files (the handlers of
 * `sasha-wsi/node`), IndexedDB, downloads or memory.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { DataError, ValueError } from './errors.js';

/**
 * Where a model is saved to or loaded from: a `tf.io` handler, or a URL whose scheme a
 * registered router serves (`file://DIR` in Node after importing `sasha-wsi/node`;
 * `indexeddb://NAME` and `downloads://NAME` in browsers).
 * @example
 * ```ts
 * await hafed.save('indexeddb://hafed');          // browser
 * await hafed.save(fileIO('/models/hafed'));       // Node, fileIO from 'sasha-wsi/node'
 * ```
 * @category Persistence
 */
export type IOTarget = tf.io.IOHandler | string;

function handlerFor(target: IOTarget, mode: 'save' | 'load'): tf.io.IOHandler {
  if (typeof target !== 'string') {
    if (typeof target !== 'object' || target === null || typeof target[mode] !== 'function') {
      throw new ValueError(`Expected a tf.io handler with a ${mode} method or a URL string, but got ${target === null ? 'null' : typeof target}.`);
    }
    return target;
  }
  const handlers = mode === 'save' ? tf.io.getSaveHandlers(target) : tf.io.getLoadHandlers(target);
  if (handlers.length === 0) {
    throw new ValueError(
      `No tf.io handler can ${mode} '${target}'. In Node, import 'sasha-wsi/node' (it registers file://) or pass fileIO(dir); ` +
        `in a browser use 'indexeddb://NAME'${mode === 'save' ? " or 'downloads://NAME'" : ''}, or pass a tf.io handler.`,
    );
  }
  if (handlers.length > 1) throw new ValueError(`Several tf.io handlers match '${target}'; pass a handler instead of the URL.`);
  if (typeof handlers[0][mode] !== 'function') throw new ValueError(`The tf.io handler for '${target}' cannot ${mode}.`);
  return handlers[0];
}

/**
 * Hands `artifacts` to the target in a single `save` call (a handler that writes to a
 * temporary name and renames never leaves a half-written model).
 * @throws ValueError when no handler serves the URL.
 * @category Persistence
 */
export async function saveArtifacts(target: IOTarget, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  return handlerFor(target, 'save').save!(artifacts);
}

/**
 * Reads one artifact from a target.
 * @throws ValueError when no handler serves the URL.
 * @category Persistence
 */
export async function loadArtifacts(target: IOTarget): Promise<tf.io.ModelArtifacts> {
  return handlerFor(target, 'load').load!();
}

/**
 * A saved layout: its `format` tag, the newest layout version this library writes and reads,
 * and how to name it in errors.
 * @category Persistence
 */
export interface ArtifactFormat {
  /** The `format` tag (for example `'sasha-hafed'`). */
  format: string;
  /** The layout version written; newer versions are refused with an error asking to upgrade. */
  version: number;
  /** What it holds, for error messages (`'HAFED model'`). */
  what: string;
  /** Where such artifacts come from, for error messages (`'Hafed.save or sasha train hafed'`). */
  writtenBy: string;
}

/**
 * Encodes a description and named tensors as one `tf.io` artifact: `modelTopology` is
 * `{ format, formatVersion, ...description }`, the tensors go to the weights in order.
 * The tensors are read, not disposed.
 * @returns new buffers; no tensor is created.
 * @example
 * ```ts
 * const artifacts = await encodeArtifacts(HAFED_FORMAT_SPEC, { config }, model.weightMap());
 * ```
 * @category Persistence
 */
export async function encodeArtifacts(
  spec: ArtifactFormat,
  description: Record<string, unknown>,
  tensors: tf.NamedTensorMap = {},
): Promise<tf.io.ModelArtifacts> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  return {
    // format and version first (readable model.json), and never overridden by the description
    modelTopology: Object.assign({ format: spec.format, formatVersion: spec.version }, description, {
      format: spec.format,
      formatVersion: spec.version,
    }) as unknown as tf.io.ModelJSON['modelTopology'],
    format: spec.format,
    generatedBy: 'sasha-wsi',
    convertedBy: null,
    weightSpecs: specs,
    weightData: data,
  };
}

/** What {@link decodeArtifacts} returns. @category Persistence */
export interface DecodedArtifacts {
  /** `modelTopology` without `format` and `formatVersion`. */
  description: Record<string, unknown>;
  /** The layout version the artifact was written with (1 when it records none). */
  version: number;
  /** The tensors, owned by the caller (empty when the artifact has no weights). */
  tensors: tf.NamedTensorMap;
}

/**
 * Decodes what {@link encodeArtifacts} wrote, checking the format tag and that the layout
 * version is not newer than this library reads. Artifacts of release 0.1 that record the
 * format only in `artifacts.format`, or no layout version, are read as version 1.
 * @param requireWeights whether an artifact without weights is an error (default true).
 * @throws DataError naming the fix on another format, a newer layout or missing weights.
 * @category Persistence
 */
export function decodeArtifacts(artifacts: tf.io.ModelArtifacts, spec: ArtifactFormat, requireWeights = true): DecodedArtifacts {
  const topology = artifacts.modelTopology;
  const json = topology && typeof topology === 'object' && !(topology instanceof ArrayBuffer) ? (topology as Record<string, unknown>) : undefined;
  // release 0.1 wrote some formats only in `artifacts.format`; both tags must match when present
  const tags = [json?.format, artifacts.format].filter((t) => t !== undefined && t !== null);
  const format = tags.find((t) => t !== spec.format) ?? tags[0];
  if (!json || format !== spec.format) {
    throw new DataError(
      `Expected a saved ${spec.what} (format '${spec.format}'), but got ${format === undefined ? 'no format tag' : `format '${String(format)}'`}. ` +
        `Point to what ${spec.writtenBy} wrote.`,
    );
  }
  const version = json.formatVersion === undefined ? 1 : Number(json.formatVersion);
  if (!(Number.isInteger(version) && version >= 1)) throw new DataError(`The saved ${spec.what} has an invalid layout version '${String(json.formatVersion)}'.`);
  if (version > spec.version) {
    throw new DataError(`This ${spec.what} was saved in layout version ${version}; this sasha-wsi reads up to ${spec.version}. Upgrade sasha-wsi.`);
  }
  const { format: _f, formatVersion: _v, ...description } = json;
  const hasWeights = Boolean(artifacts.weightSpecs && artifacts.weightData && artifacts.weightSpecs.length > 0);
  if (!hasWeights) {
    if (requireWeights) throw new DataError(`The saved ${spec.what} has no weights; it is incomplete. Save it again.`);
    return { description, version, tensors: {} };
  }
  const tensors = tf.io.decodeWeights(tf.io.CompositeArrayBuffer.join(artifacts.weightData!), artifacts.weightSpecs!);
  return { description, version, tensors };
}

/**
 * The tensors of `map` whose names start with `prefix`, with the prefix removed (the same
 * tensor objects, not copies).
 * @example
 * ```ts
 * pickPrefixed({ 'model/a': a, 'best/a': b }, 'model/'); // { a }
 * ```
 * @category Persistence
 */
export function pickPrefixed(map: tf.NamedTensorMap, prefix: string): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(map)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/**
 * `map` with every name prefixed (the same tensor objects).
 * @category Persistence
 */
export function withPrefix(map: tf.NamedTensorMap, prefix: string): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(map)) out[prefix + k] = v;
  return out;
}
