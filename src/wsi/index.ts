/**
 * Whole-slide images: slide sources, tissue segmentation, patch grids, patch encoders, feature
 * extraction and synthetic slides.
 *
 * @packageDocumentation
 */
export * from './slide_source.js';
export * from './tiff_source.js';
export * from './image_ops.js';
export * from './tissue.js';
export * from './patch_grid.js';
export * from './encoders/index.js';
export * from './extract.js';
export * from './synthetic_image.js';
