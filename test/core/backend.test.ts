import { describe, expect, it } from 'vitest';
import { initBackend, tf, ValueError } from '../../src/core/index.js';

describe('initBackend', () => {
  it('falls back from the absent native backend to wasm', async () => {
    const prev = tf.getBackend();
    const logs: string[] = [];
    expect(await initBackend(['tensorflow', 'wasm', 'cpu'], { log: (m) => logs.push(m) })).toBe('wasm');
    expect(await initBackend('cpu')).toBe('cpu');
    await tf.setBackend(prev);
  });

  it('honours SASHA_BACKEND and rejects unknown names', async () => {
    const prev = tf.getBackend();
    process.env.SASHA_BACKEND = 'cpu';
    try {
      expect(await initBackend('wasm')).toBe('cpu');
      process.env.SASHA_BACKEND = 'webgl';
      await expect(initBackend()).rejects.toThrow(ValueError);
      await expect(initBackend()).rejects.toThrow(/Fix the environment variable/);
    } finally {
      delete process.env.SASHA_BACKEND;
      await tf.setBackend(prev);
    }
  });
});
