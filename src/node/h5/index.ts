/**
 * HDF5 feature files (Node only): the reference code's layout, CLAM / TRIDENT per-slide files,
 * split files, and an atomic writer with float16 support.
 *
 * @packageDocumentation
 */
export { loadH5, checkH5File, openH5, datasetInfo, hasGroup, readRaw, bytesToFloat32, bytesToInt32, readNumberAttr } from './h5file.js';
export type { H5Wasm, H5Module, H5ElementType, H5DatasetInfo } from './h5file.js';
export { H5Writer } from './h5_writer.js';
export * from './feature_files.js';
