/**
 * Patch encoders: the {@link PatchEncoder} contract, preprocessing, adapters for tfjs models
 * and functions, and a small built-in CNN for examples and tests.
 *
 * @packageDocumentation
 */
export * from './types.js';
export * from './adapters.js';
export * from './builtin.js';
export * from './onnx.js';
