/**
 * sasha-wsi/node: the parts that need Node (files on disk, the CLI).
 *
 * Sections:
 * 1. HDF5 feature files.
 *
 * @packageDocumentation
 */

// HDF5 feature files
export * from './h5/index.js';
