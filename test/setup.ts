// Both embedded backends are registered whichever one the suite runs on (parity tests switch
// between them), and the chosen one is ready before any test module is imported.
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend, type BackendName } from '../src/core/index.js';

await initBackend((process.env.SASHA_TEST_BACKEND as BackendName | undefined) ?? 'wasm');
