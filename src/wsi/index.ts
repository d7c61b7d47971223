/**
 * Slides and features: synthetic generators (and, as they land, slide sources, tissue
 * segmentation, patch grids, encoders and feature extraction). Browser-safe.
 *
 * @packageDocumentation
 */
export * from './synthetic/features.js';
