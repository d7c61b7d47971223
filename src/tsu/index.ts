/**
 * sasha-wsi/tsu: the targeted state update of SASHA (pure functions on typed-array states), its
 * f_S network ({@link StateMlp}), the global-update ablation, and the f_S trainer.
 *
 * @packageDocumentation
 */
export type {
  TsuState,
  TsuConfig,
  StateUpdateNet,
  StateUpdateMode,
  StateUpdateResult,
  StateMlpArgs,
  TrainTsuConfig,
  TsuEpochRecord,
} from './types.js';
export { DEFAULT_TSU_CONFIG, DEFAULT_TRAIN_TSU_CONFIG } from './defaults.js';
export {
  resolveTsuConfig,
  createTsuState,
  cloneTsuState,
  tsuStateToTensor,
  similarSet,
  computeStateUpdate,
  applyStateUpdate,
  targetedStateUpdate,
  rowChangesToState,
  type StateUpdateStep,
} from './targeted_state_update.js';
export { globalStateUpdate } from './global_state_update.js';
export { BUCKETS_MIN_ROWS, CosineIndex, type CosineIndexOptions } from './cosine_index.js';
export { StateMlp, STATE_MLP_FORMAT, type StateMlpWeightName } from './state_mlp.js';
export {
  trainTsu,
  resolveTrainTsuConfig,
  TSU_CHECKPOINT_FORMAT,
  type TrainTsuOptions,
  type TrainTsuResult,
  type HighResAggregator,
} from './train_tsu.js';
