/**
 * HDF5 feature files: the reference layout (one file per resolution, one group per slide)
 * and CLAM's (one file per slide), read as a `SlideDataset` and written atomically.
 *
 * @packageDocumentation
 */
export {
  H5FeatureDataset,
  ClamFeatureDataset,
  readSplitFile,
  writeSplitFile,
  readLabelCsv,
  writeFeatureFiles,
  writeSyntheticCohortFiles,
  type FeatureFilePaths,
  type H5FeatureDatasetOptions,
  type ClamFeatureDatasetOptions,
  type WriteFeatureFilesOptions,
  type FeatureSource,
  type SyntheticCohortFiles,
} from './feature_files.js';
