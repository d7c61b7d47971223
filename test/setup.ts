import { beforeAll } from 'vitest';
import { initBackend, type BackendName } from '../src/core/index.js';

beforeAll(async () => {
  await initBackend((process.env.SASHA_TEST_BACKEND as BackendName | undefined) ?? 'wasm');
});
