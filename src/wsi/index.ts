/**
 * sasha-wsi/wsi: whole-slide images, browser-safe: slide sources (in memory, TIFF / SVS),
 * pyramid levels, tissue segmentation, patch grids and sub-patches, patch encoders and feature
 * extraction. The synthetic generators are in `sasha-wsi/synthetic`.
 *
 * @packageDocumentation
 */
export {
  InMemorySlideSource,
  describeLevels,
  bestLevelForDownsample,
  levelMpp,
  magnificationForMpp,
  levelsFromSizes,
  resolveLevel,
  toLevelCoord,
  type SlideSource,
  type SlideLevel,
  type LevelSpec,
  type RgbImage,
  type InMemorySlideOptions,
} from './slide_source.js';
export {
  TiffSlideSource,
  parseTiffResolution,
  DEFAULT_TILE_CACHE_BYTES,
  type TiffSlideOptions,
  type TiffResolution,
  type TiffTileInfo,
  type TileDecoder,
  type TileDecoderFactory,
} from './tiff_source.js';
export {
  segmentTissue,
  segmentTissueImage,
  DEFAULT_TISSUE_CONFIG,
  TISSUE_PRESETS,
  resolveTissueConfig,
  type TissueConfig,
  type TissueSegmentation,
  type TissueRegion,
  type PixelBox,
} from './tissue.js';
export {
  patchGrid,
  subPatchCoords,
  levelRatio,
  tileSlide,
  DEFAULT_PATCH_GRID_CONFIG,
  resolvePatchGridConfig,
  type PatchGrid,
  type PatchGridConfig,
  type PatchRule,
  type SubPatches,
  type TilingConfig,
  type SlideTiling,
} from './patch_grid.js';
export {
  openSlideOverPort,
  serveSlides,
  PortSlideSource,
  type SlidePort,
  type SlidePortInput,
  type SlidePortRequest,
  type SlidePortReply,
  type PortSlideInfo,
  type PortSlideOptions,
} from './port_slide_source.js';
export {
  parseAnnotations,
  parseAsapXml,
  parseQuPathGeoJson,
  annotationTumourFractions,
  ASAP_GROUPS,
  type AnnotationPolygon,
  type SlideAnnotations,
  type GeoJsonAnnotationOptions,
  type TumourFractionOptions,
} from './annotations.js';
export * from './encoders/index.js';
export {
  extractFeatures,
  extractCohort,
  planFromTiling,
  MemoryFeatureSink,
  DEFAULT_EXTRACT_CONFIG,
  resolveExtractConfig,
  type ExtractConfig,
  type ExtractOptions,
  type ExtractionPlan,
  type SlideFeatures,
  type FeatureSink,
  type CohortSlide,
  type CohortExtractOptions,
  type CohortExtractResult,
} from './extract.js';
