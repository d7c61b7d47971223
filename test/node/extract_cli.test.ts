import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateError } from '../../src/core/index.js';
import { builtinEncoder, builtinEncoderModel, extractCohort, tileSlide, type CohortSlide } from '../../src/wsi/index.js';
import { H5FeatureDataset, H5FeatureSink, fileIO, loadEncoder, openSlide, writeRgbTiff, writeSyntheticSlide } from '../../src/node/index.js';
import { cli } from './cli_capture.js';
import { tempDir } from '../wsi/fixtures.js';
import { openH5, readRaw } from '../../src/node/h5/h5file.js';

const tmp = tempDir();
const slidesDir = tmp.path('slides');
const SIZE = { width: 1024, height: 768 };
// Levels 1024, 512, 256 (downsamples 1, 2, 4); segmentation at level 2.
// Slides are read on the main thread here (a worker per slide costs a second under tsx); the
// shard test uses the default worker reader.
const MAIN = ['--reader', 'main'];
const FLAGS = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '16', '--input-size', '16', '--quiet', '--json'];

/** Every dataset and numeric attribute of every slide group of an h5 feature file. */
async function contents(path: string): Promise<Record<string, unknown>> {
  const f = await openH5(path);
  try {
    const out: Record<string, unknown> = {};
    for (const id of f.keys()) {
      const feat = await readRaw(f, `${id}/feat`);
      const coords = await readRaw(f, `${id}/coords`);
      const g = f.get(id) as unknown as { attrs: Record<string, { value: unknown }> };
      out[id] = {
        feat: [feat.type, feat.shape, Buffer.from(feat.bytes).toString('base64')],
        coords: [coords.type, coords.shape, Buffer.from(coords.bytes).toString('base64')],
        attrs: Object.fromEntries(Object.entries(g.attrs).map(([k, v]) => [k, String(v.value)])),
      };
    }
    return out;
  } finally {
    f.close();
  }
}

beforeAll(async () => {
  for (const seed of [0, 1, 2]) await writeSyntheticSlide(join(slidesDir, `slide_${seed}.tif`), { ...SIZE, seed });
  writeFileSync(join(slidesDir, 'not_a_slide.svs'), 'plain text');
  const full = readFileSync(join(slidesDir, 'slide_0.tif'));
  writeFileSync(join(slidesDir, 'truncated.tif'), full.subarray(0, Math.floor(full.length / 2)));
  await writeRgbTiff(join(slidesDir, 'blank.tif'), new Uint8Array(1024 * 768 * 3).fill(245), 1024, 768, 0.5);
  // one level only: a 64 x 64 image fits in one tile, so libvips writes no pyramid
  await writeRgbTiff(join(slidesDir, 'one_level.tif'), new Uint8Array(64 * 64 * 3).fill(200), 64, 64, 0.5);
  writeFileSync(tmp.path('labels.csv'), 'case_id,slide_id,label\nc0,slide_0,normal\nc1,slide_1,tumor\nc2,slide_2.tif,tumor\n');
});
afterAll(() => tmp.cleanup());

describe('sasha extract', () => {
  it('extracts a cohort, names each bad slide, goes on, and merges the good ones', async () => {
    const out = tmp.path('run_a');
    const { code, result } = await cli(['extract', slidesDir, '--out', out, '--labels', tmp.path('labels.csv'), '--classes', 'normal,tumor', ...MAIN, ...FLAGS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ slides: 7, extracted: 3, skipped: 0, dim: 16 });
    const failed = Object.fromEntries((result!.failed as { id: string; error: string }[]).map((f) => [f.id, f.error]));
    expect(Object.keys(failed).sort()).toEqual(['blank', 'not_a_slide', 'one_level', 'truncated']);
    expect(failed.not_a_slide).toMatch(/'not_a_slide.svs' is not a TIFF file/);
    expect(failed.truncated).toMatch(/'truncated.tif' is truncated/);
    expect(failed.blank).toMatch(/No tissue found in slide 'blank.tif'/);
    expect(failed.one_level).toMatch(/slide 'one_level.tif'.*single level/s);
    const ds = await H5FeatureDataset.open({ lrH5: join(out, 'lr.h5'), hrH5: join(out, 'hr.h5') });
    expect(ds.ids).toEqual(['slide_0', 'slide_1', 'slide_2']);
    expect(ds.labels).toEqual([0, 1, 1]);
    expect([ds.dim, ds.k]).toEqual([16, 4]);
    const bag = await ds.load('slide_1');
    const n = bag.lowRes!.shape[0];
    expect(bag.highRes!.shape).toEqual([n, 4, 16]);
    expect(result!.patches).toBeGreaterThan(0);
    bag.lowRes!.dispose();
    bag.highRes!.dispose();
    await ds.close?.();
    expect(readdirSync(join(out, 'parts', 'lr')).sort()).toEqual(['slide_0.h5', 'slide_1.h5', 'slide_2.h5']);
  });

  it('skips complete slides on a second run and writes the same files', async () => {
    const out = tmp.path('run_a');
    const before = { lr: await contents(join(out, 'lr.h5')), hr: await contents(join(out, 'hr.h5')) };
    const { code, result } = await cli(['extract', slidesDir, '--out', out, '--labels', tmp.path('labels.csv'), '--classes', 'normal,tumor', ...MAIN, ...FLAGS]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ extracted: 0, skipped: 3 });
    expect(await contents(join(out, 'lr.h5'))).toEqual(before.lr);
    expect(await contents(join(out, 'hr.h5'))).toEqual(before.hr);
  });

  it('refuses to mix settings in one output directory', async () => {
    const { code, stderr } = await cli(['extract', slidesDir, '--out', tmp.path('run_a'), ...FLAGS.map((f) => (f === '16' ? '8' : f))]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/holds features extracted with other settings/);
  });

  it('splits a cohort into shards and merges once every shard is done', async () => {
    const dir = tmp.path('shard_slides');
    for (const seed of [3, 4]) await writeSyntheticSlide(join(dir, `s${seed}.tif`), { ...SIZE, seed });
    const out = tmp.path('run_shards');
    const a = await cli(['extract', dir, '--out', out, '--shard', '0/2', ...FLAGS]);
    expect(a.result).toMatchObject({ slides: 1, extracted: 1, merged: null });
    expect(existsSync(join(out, 'lr.h5'))).toBe(false);
    const b = await cli(['extract', dir, '--out', out, '--shard', '1/2', ...FLAGS]);
    expect(b.result).toMatchObject({ slides: 1, extracted: 1 });
    expect(existsSync(join(out, 'lr.h5'))).toBe(true);
    expect(Object.keys(await contents(join(out, 'lr.h5')))).toEqual(['s3', 's4']);
    expect((await cli(['extract', dir, '--out', out, '--shard', '2/2', ...FLAGS])).stderr).toMatch(/--shard to be i\/n/);
  });
});

describe('extraction resumed after an interruption', () => {
  it('gives the same files as an uninterrupted run', async () => {
    const files = [0, 1, 2].map((s) => join(slidesDir, `slide_${s}.tif`));
    const slides: CohortSlide[] = files.map((file, i) => ({ id: `slide_${i}`, label: i % 2, open: () => openSlide(file) }));
    const tiling = { tissue: { aT: 0.1, aH: 0.1 }, lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 } };
    const encoder = builtinEncoder({ dim: 16, inputSize: 16, seed: 2 });
    const ids = slides.map((s) => s.id);

    const whole = new H5FeatureSink(tmp.path('whole'));
    await extractCohort(slides, { encoder, sink: whole, tiling, config: { batchSize: 8 } });
    await whole.merge(ids);

    const resumed = new H5FeatureSink(tmp.path('resumed'));
    const ac = new AbortController();
    await expect(
      extractCohort(slides, {
        encoder,
        sink: resumed,
        tiling,
        config: { batchSize: 8 },
        signal: ac.signal,
        onProgress: (e) => {
          if (e.task === 'extract slide_1.tif' && e.done >= 3) ac.abort();
        },
      }),
    ).rejects.toThrow(StateError);
    expect(readdirSync(join(tmp.path('resumed'), 'parts', 'lr'))).toEqual(['slide_0.h5']);
    expect(readdirSync(join(tmp.path('resumed'), 'parts', 'hr'))).toEqual(['slide_0.h5']); // nothing of slide_1, no temporary file
    const again = await extractCohort(slides, { encoder, sink: resumed, tiling, config: { batchSize: 8 } });
    expect(again.skipped).toEqual(['slide_0']);
    await resumed.merge(ids);
    for (const f of ['lr.h5', 'hr.h5']) {
      expect(await contents(join(tmp.path('resumed'), f))).toEqual(await contents(join(tmp.path('whole'), f)));
      expect(readFileSync(join(tmp.path('resumed'), f)).length).toBe(readFileSync(join(tmp.path('whole'), f)).length);
    }
    encoder.dispose();
  });
});

describe('loadEncoder', () => {
  it('loads a saved LayersModel directory and checks d', async () => {
    const dir = tmp.path('encoder_model');
    const model = builtinEncoderModel({ dim: 12, inputSize: 16, seed: 4 });
    await model.save(fileIO(dir));
    model.dispose();
    const enc = await loadEncoder({ encoder: dir });
    expect([enc.dim, enc.inputSize]).toEqual([12, 16]);
    enc.dispose();
    await expect(loadEncoder({ encoder: dir, dim: 384 })).rejects.toThrow(/gives features of width 12, but d = 384/);
    await expect(loadEncoder({ encoder: tmp.path('nowhere') })).rejects.toThrow(/No encoder model at/);
  });
});

describe('sasha tile', () => {
  it('writes CLAM-style coordinates, mask images and a summary, naming bad slides', async () => {
    const out = tmp.path('tiles');
    const { code, result } = await cli(['tile', join(slidesDir, 'slide_1.tif'), join(slidesDir, 'not_a_slide.svs'), '--out', out, '--level', '2', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--quiet', '--json']);
    expect(code).toBe(0);
    expect(result).toMatchObject({ slides: 2, tiled: 1 });
    expect((result!.failed as { id: string }[]).map((f) => f.id)).toEqual(['not_a_slide']);
    const slide = await openSlide(join(slidesDir, 'slide_1.tif'));
    const t = await tileSlide(slide, { tissue: { aT: 0.1, aH: 0.1 }, lowRes: { level: 2 }, grid: { patchSize: 32 } });
    await slide.close();
    const f = await openH5(join(out, 'patches', 'slide_1.h5'));
    const coords = await readRaw(f, 'coords');
    expect(coords.shape).toEqual([t.grid.count, 2]);
    expect(Array.from(new BigInt64Array(coords.bytes.slice().buffer), Number)).toEqual(Array.from(t.grid.coords));
    f.close();
    expect(existsSync(join(out, 'masks', 'slide_1.png'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'tiling.json'), 'utf8'));
    expect(summary[0]).toMatchObject({ id: 'slide_1', status: 'ok', patchLevel: 2, patches: t.grid.count, segLevel: 2 });
    expect(summary[1]).toMatchObject({ id: 'not_a_slide', status: 'failed' });
  });
});
