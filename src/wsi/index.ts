/**
 * Whole-slide images, browser-safe: slide sources, tissue segmentation, patch grids, patch
 * encoders, feature extraction, and synthetic generators (slides as pixels, cohorts as features).
 *
 * @packageDocumentation
 */
export * from './synthetic/features.js';
export * from './slide_source.js';
export * from './tiff_source.js';
export * from './port_slide_source.js';
export * from './image_ops.js';
export * from './tissue.js';
export * from './patch_grid.js';
export * from './encoders/index.js';
export * from './extract.js';
export * from './synthetic/slide_image.js';
export * from './synthetic/digit_slide.js';
export * from './annotations.js';
