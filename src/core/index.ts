/**
 * Ground floor of the library: tfjs access, backend selection, wasm-safe ops, optimisation
 * utilities, errors, config resolution, seeded randomness and the data contract.
 *
 * @packageDocumentation
 */
export { tf, tfl } from './tf.js';
export * from './errors.js';
export * from './config.js';
export * from './random.js';
export * from './backend.js';
export * from './ops.js';
export * from './optim.js';
export * from './data.js';
export * from './float16.js';
export * from './progress.js';
export * from './io.js';
export * from './checkpoint.js';
export * from './init.js';
export * from './gated_attention.js';
export * from './model_files.js';
export * from './torch/index.js';
