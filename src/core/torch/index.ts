/**
 * Reading PyTorch checkpoints (`torch.save` zip archives) without Python.
 *
 * @packageDocumentation
 */
export { readTorchCheckpoint, isStateDict, torchValueToJson, TorchTensor, type TorchCheckpoint, type TorchDtype, type TorchValue } from './checkpoint.js';
export { PyGlobal, PyObject } from './pickle.js';
