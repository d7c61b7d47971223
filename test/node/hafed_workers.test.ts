import { describe, expect, it } from 'vitest';
import { createHafedWorkerPool } from '../../src/node/index.js';
import { expectSameAsOneThread } from './sharded_parity.js';

describe('createHafedWorkerPool', () => {
  it('runs stage 1 in a worker thread: training steps and predictions equal the one-thread ones', async () => {
    const pool = await createHafedWorkerPool(1);
    try {
      expect(pool.size).toBe(1);
      await expectSameAsOneThread(pool);
    } finally {
      await pool.close();
    }
    await expect(pool.forward(0, {} as never)).rejects.toThrow(/closed/);
  });

  it('refuses a bad size', async () => {
    await expect(createHafedWorkerPool(0)).rejects.toThrow(/integer >= 1/);
  });
});
