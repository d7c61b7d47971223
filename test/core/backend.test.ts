import { describe, expect, expectTypeOf, it } from 'vitest';
import { initBackend, tf, ValueError, type BackendName } from '../../src/core/index.js';

describe('initBackend', () => {
  it('falls back from the absent native backend to wasm, and returns a typed name', async () => {
    const prev = tf.getBackend();
    const logs: string[] = [];
    const name = await initBackend(['tensorflow', 'wasm', 'cpu'], { log: (m) => logs.push(m) });
    expectTypeOf(name).toEqualTypeOf<BackendName>();
    expect(name).toBe('wasm');
    expect(await initBackend('cpu')).toBe('cpu');
    await tf.setBackend(prev);
  });

  it('accepts any backend registered with tfjs, and names the import for one that is not', async () => {
    const prev = tf.getBackend();
    tf.registerBackend('sasha-test-backend', tf.findBackendFactory('cpu')!, 0);
    const kernels = tf.getKernelsForBackend('cpu');
    for (const k of kernels) tf.registerKernel({ ...k, backendName: 'sasha-test-backend' });
    try {
      expect(await initBackend('sasha-test-backend')).toBe('sasha-test-backend');
      expect(tf.getBackend()).toBe('sasha-test-backend');
      expect(tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]).toBe(6);
      await expect(initBackend('webgl')).rejects.toThrow(/webgl: not registered \(import its package, e.g. '@tensorflow\/tfjs-backend-webgl'/);
      // a list falls through an unregistered backend to the next one
      expect(await initBackend(['webgpu', 'cpu'])).toBe('cpu');
    } finally {
      await tf.setBackend(prev);
      for (const k of kernels) tf.unregisterKernel(k.kernelName, 'sasha-test-backend');
      tf.removeBackend('sasha-test-backend');
    }
  });

  it('honours SASHA_BACKEND and names it when its list fails', async () => {
    const prev = tf.getBackend();
    process.env.SASHA_BACKEND = 'cpu';
    try {
      expect(await initBackend('wasm')).toBe('cpu');
      process.env.SASHA_BACKEND = 'webgl';
      await expect(initBackend()).rejects.toThrow(ValueError);
      await expect(initBackend()).rejects.toThrow(/Fix the environment variable SASHA_BACKEND/);
      process.env.SASHA_BACKEND = 'cpu,,wasm';
      await expect(initBackend()).rejects.toThrow(/Expected backend names/);
    } finally {
      delete process.env.SASHA_BACKEND;
      await tf.setBackend(prev);
    }
  });

  it('leaves none of the wasm backend\'s rethrowing process handlers installed', async () => {
    await initBackend('wasm');
    const handlers = [...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')];
    expect(handlers.filter((l) => /ExitStatus|throw reason/.test(String(l))).map(String)).toEqual([]);
  });
});
