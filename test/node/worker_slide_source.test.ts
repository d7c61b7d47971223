import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, ValueError } from '../../src/core/index.js';
import { extractFeatures, functionEncoder, planFromTiling, tileSlide } from '../../src/wsi/index.js';
import { openSlide, openSlideInWorker, writeSyntheticSlide } from '../../src/node/index.js';
import { tf } from '../../src/core/index.js';
import { tempDir } from '../wsi/fixtures.js';

const tmp = tempDir();
let path = '';
beforeAll(async () => {
  path = (await writeSyntheticSlide(tmp.path('w.tif'), { width: 1024, height: 768, seed: 9 })).path;
});
afterAll(() => tmp.cleanup());

describe('openSlideInWorker', () => {
  it('reads the same pixels and metadata as openSlide', async () => {
    const [w, m] = await Promise.all([openSlideInWorker(path), openSlide(path)]);
    expect(w.levels).toEqual(m.levels);
    expect([w.name, w.mpp]).toEqual([m.name, m.mpp]);
    const regions: [number, number, number, number, number][] = [
      [0, 100, 200, 256, 256],
      [1, 900, 600, 200, 100], // runs past the edge
      [2, 0, 0, 256, 192],
    ];
    const got = await Promise.all(regions.map((r) => w.readRegion(...r)));
    for (const [i, r] of regions.entries()) expect(Buffer.compare(Buffer.from(got[i]), Buffer.from(await m.readRegion(...r)))).toBe(0);
    await Promise.all([w.close(), m.close()]);
    await expect(w.readRegion(0, 0, 0, 8, 8)).rejects.toThrow(/closed/);
  });

  it('gives the same features as the main-thread reader', async () => {
    const enc = functionEncoder((x) => tf.mean(x, [1, 2]), { dim: 3, inputSize: 32, normalization: 'none' });
    const m = await openSlide(path);
    const t = await tileSlide(m, { tissue: { aT: 0.1, aH: 0.1 }, lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 } });
    const a = await extractFeatures(m, planFromTiling(t), enc);
    const w = await openSlideInWorker(path);
    const b = await extractFeatures(w, planFromTiling(t), enc);
    expect(Array.from(b.lowRes)).toEqual(Array.from(a.lowRes));
    expect(Array.from(b.highRes!)).toEqual(Array.from(a.highRes!));
    await Promise.all([w.close(), m.close()]);
  });

  it('passes errors back with their class and message', async () => {
    writeFileSync(tmp.path('x.svs'), 'not a slide');
    const err = await openSlideInWorker(tmp.path('x.svs')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/'x.svs' is not a TIFF file/);
    const full = readFileSync(path);
    writeFileSync(tmp.path('cut.tif'), full.subarray(0, full.length >> 1));
    await expect(openSlideInWorker(tmp.path('cut.tif'))).rejects.toThrow(/truncated/);
    const w = await openSlideInWorker(path);
    await expect(w.readRegion(7, 0, 0, 8, 8)).rejects.toThrow(ValueError);
    await w.close();
  });
});
