import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, ValueError } from '../../src/core/index.js';
import { InMemorySlideSource, TiffSlideSource, openSlideOverPort, serveSlides, type SlidePort } from '../../src/wsi/index.js';
import { writeSyntheticSlide } from '../../src/node/index.js';
import { tempDir } from './fixtures.js';

// The page and the worker as the two ends of a MessageChannel (Node's MessagePort is an
// EventTarget like a browser's Worker).
const tmp = tempDir();
let bytes: Uint8Array<ArrayBuffer>;
beforeAll(async () => {
  const s = await writeSyntheticSlide(tmp.path('slide.tif'), { width: 1024, height: 768, seed: 3 });
  bytes = new Uint8Array(readFileSync(s.path));
});
afterAll(() => tmp.cleanup());

function channel(): { page: SlidePort; worker: SlidePort; close(): void } {
  const { port1, port2 } = new MessageChannel();
  return { page: port1 as unknown as SlidePort, worker: port2 as unknown as SlidePort, close: () => (port1.close(), port2.close()) };
}

describe('slides over a port', () => {
  it('reads the same pixels as the slide opened directly, from a Blob and from bytes', async () => {
    const ch = channel();
    const stop = serveSlides(ch.worker);
    const direct = await TiffSlideSource.open(new Blob([bytes]), { name: 'slide.tif' });
    const viaBlob = await openSlideOverPort(ch.page, new Blob([bytes]), { name: 'slide.tif' });
    const viaBytes = await openSlideOverPort(ch.page, bytes.slice().buffer, { name: 'copy.tif' });
    expect(viaBlob.levels).toEqual(direct.levels);
    expect(viaBlob.mpp).toBeCloseTo(direct.mpp!, 12);
    expect(viaBytes.name).toBe('copy.tif');
    for (const [level, x, y, w, h] of [[0, 100, 200, 64, 48], [1, 0, 0, 128, 96], [2, 900, 700, 40, 40]] as const) {
      const want = await direct.readRegion(level, x, y, w, h);
      expect(await viaBlob.readRegion(level, x, y, w, h)).toEqual(want);
      expect(await viaBytes.readRegion(level, x, y, w, h)).toEqual(want);
    }
    // reads in flight together come back to their callers
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => viaBlob.readRegion(1, i * 32, i * 16, 32, 32)));
    for (let i = 0; i < 12; i++) expect(many[i]).toEqual(await direct.readRegion(1, i * 32, i * 16, 32, 32));
    await viaBlob.close();
    await expect(viaBlob.readRegion(0, 0, 0, 8, 8)).rejects.toThrow(/is closed/);
    expect((await viaBytes.readRegion(0, 0, 0, 4, 4)).length).toBe(48);
    await viaBytes.close();
    await direct.close();
    await stop();
    ch.close();
  });

  it("sends the worker's errors back as their classes, and a bad request fails on the page's side", async () => {
    const ch = channel();
    const stop = serveSlides(ch.worker);
    const png = new Uint8Array(200);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const err = await openSlideOverPort(ch.page, new Blob([png]), { name: 'photo.png' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/Slide 'photo.png' is not a TIFF file \(it looks like a PNG image\).*vips tiffsave/);
    const slide = await openSlideOverPort(ch.page, new Blob([bytes]), { name: 'slide.tif' });
    await expect(slide.readRegion(7, 0, 0, 8, 8)).rejects.toThrow(ValueError);
    await slide.close();
    await stop();
    ch.close();
  });

  it('serves any slide source through a custom opener', async () => {
    const ch = channel();
    const rgb = new Uint8Array(64 * 32 * 3).map((_, i) => i % 251);
    const stop = serveSlides(ch.worker, async (_input, options) => InMemorySlideSource.fromImage({ width: 64, height: 32, data: rgb }, { levels: 2, name: options.name }));
    const slide = await openSlideOverPort(ch.page, 'memory://x', { name: 'mem' });
    expect(slide.levels.map((l) => l.width)).toEqual([64, 32]);
    const direct = InMemorySlideSource.fromImage({ width: 64, height: 32, data: rgb }, { levels: 2 });
    expect(await slide.readRegion(1, 10, 4, 12, 9)).toEqual(await direct.readRegion(1, 10, 4, 12, 9));
    await slide.close();
    await stop();
    ch.close();
  });
});
