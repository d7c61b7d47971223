/**
 * sasha-wsi/node: the parts of the library that need Node (files, h5, the CLI helpers).
 * Importing it registers the `file://` scheme with `tf.io`.
 *
 * @packageDocumentation
 */
import { registerFileRouter } from './io/file_io.js';

// File io (model artifacts in directories, file:// URLs, checkpoint directories)
export * from './io/file_io.js';

registerFileRouter();
