// The two models the save loop writes in turn (A, B): configs with different seeds, so that
// a loaded model is recognised by its outputs. Large enough (about 3 MB of weights) that a
// kill often lands inside a write.
export const MODELS = [
  { dim: 384, k: 4, numBranches2: 2, attentionDim: 256, seed: 11 },
  { dim: 384, k: 4, numBranches2: 2, attentionDim: 256, seed: 12 },
];
