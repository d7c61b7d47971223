import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hafed } from '../../src/hafed/index.js';
import { ActorCritic } from '../../src/ppo/index.js';
import { SashaModel, analyzeSlide, heatmapDataFromJson, renderHeatmap, type SlideAnalysisJson } from '../../src/pipeline/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { builtinEncoder, builtinEncoderModel } from '../../src/wsi/index.js';
import { fileCheckpointStore, fileIO, loadSashaModel, openSlide, writeHeatmap, writeRgbTiff, writeSyntheticSlide } from '../../src/node/index.js';
import { cli, cliWithEnv } from './cli_capture.js';
import { expectAllclose } from '../helpers.js';
import { tempDir } from '../wsi/fixtures.js';

// Slides of 1024 x 768 (levels 1024, 512, 256); patches of 32 pixels at level 2, sub-patches at
// level 1 (k = 4); built-in encoder d = 16 on 16-pixel inputs, seed 1. Slides are read on the
// main thread (a worker per slide costs a second under tsx).
const tmp = tempDir();
const modelDir = tmp.path('model');
const slides = ['slide_a.tif', 'slide_b.tif'].map((f) => tmp.path(f));
const FLAGS = ['--model', modelDir, '--budget', '0.2', '--encoder', 'builtin', '--input-size', '16', '--seed', '1'];
const WSI = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--heatmap-size', '600', '--reader', 'main', '--quiet', '--json'];
const CONFIG = { lowRes: { level: 2 }, highRes: { level: 1 }, grid: { patchSize: 32 }, tissue: { aT: 0.1, aH: 0.1 } };

const readJson = (out: string, id: string) => JSON.parse(readFileSync(join(out, 'slides', `${id}.json`), 'utf8')) as SlideAnalysisJson & { id: string; file: string };

beforeAll(async () => {
  for (const [i, f] of slides.entries()) await writeSyntheticSlide(f, { width: 1024, height: 768, seed: 10 + i });
  writeFileSync(tmp.path('not_a_slide.svs'), 'plain text');
  await writeRgbTiff(tmp.path('blank.tif'), new Uint8Array(1024 * 768 * 3).fill(245), 1024, 768, 0.5);
  const model = new SashaModel({
    hafed: new Hafed({ dim: 16, k: 4, numClasses: 2, attentionDim: 8, seed: 2 }),
    fS: new StateMlp({ dim: 16, seed: 2 }),
    policy: new ActorCritic({ dim: 16, hiddenDim: 8, seed: 2 }),
    env: { budget: 0.2, tau: 0.5 },
  });
  await model.save(fileCheckpointStore(modelDir));
  model.dispose();
});
afterAll(() => tmp.cleanup());

describe('sasha infer', () => {
  const out = tmp.path('run');

  it('writes per-slide JSON and heatmap PNGs, reports bad slides and goes on', async () => {
    const { code, result, stderr } = await cli(['infer', ...slides, tmp.path('not_a_slide.svs'), tmp.path('blank.tif'), ...FLAGS, '--out', out, ...WSI]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result).toMatchObject({ slides: 4, analysed: 2, skipped: 0, mode: 'sasha', budget: 0.2, policy: 'learned' });
    const failed = Object.fromEntries((result!.failed as { id: string; error: string }[]).map((f) => [f.id, f.error]));
    expect(Object.keys(failed).sort()).toEqual(['blank', 'not_a_slide']);
    expect(failed.not_a_slide).toMatch(/'not_a_slide.svs' is not a TIFF file/);
    expect(failed.blank).toMatch(/No tissue found in slide 'blank.tif'.*lower sthresh or aT/s);

    // The JSON equals the library's analysis of the same slide with the same model and encoder.
    const model = await loadSashaModel(modelDir, { budget: 0.2 });
    const encoder = builtinEncoder({ dim: 16, inputSize: 16, seed: 1 });
    for (const [i, id] of ['slide_a', 'slide_b'].entries()) {
      const json = readJson(out, id);
      const slide = await openSlide(slides[i]);
      const res = await analyzeSlide(model, slide, { encoder, config: CONFIG });
      const n = res.counts.patches;
      const T = Math.ceil(0.2 * n);
      expect(json.id).toBe(id);
      expect(json.prediction.label).toBe(res.prediction.label);
      expect(json.prediction.probability).toBe(json.prediction.probs[json.prediction.label]);
      expectAllclose(json.prediction.probs, res.prediction.probs, { rtol: 1e-6, atol: 0 });
      expect(json.visited.map((v) => v.index)).toEqual(res.visited);
      expect(json.visited.map((v) => v.order)).toEqual(Array.from({ length: T }, (_, t) => t + 1));
      expect(json.visited[0]).toMatchObject({ x: res.coords[2 * res.visited[0]], y: res.coords[2 * res.visited[0] + 1] });
      expect(json.counts).toMatchObject({ patches: n, k: 4, steps: T, lowResRead: n, highResEncoded: 4 * T });
      // sub-patches read: the T k used, and the next-best candidates read ahead (2 per step at most)
      expect(json.counts.highResRead).toBeGreaterThanOrEqual(4 * T);
      expect(json.counts.highResRead).toBeLessThanOrEqual(4 * 3 * T);
      expect(json.seconds).toBeGreaterThan(0);
      expect(json.coords.length).toBe(n);
      // The PNG: the thumbnail level (512 x 384 for maxSide 600), pixel for pixel the rendered heatmap.
      const png = join(out, 'heatmaps', `${id}.png`);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([512, 384, 3]);
      const img = await renderHeatmap(slide, heatmapDataFromJson(json), { maxSide: 600 });
      expect(Buffer.compare(Buffer.from(img.data), data)).toBe(0);
      await slide.close?.();
    }
    encoder.dispose();
    model.dispose();
    // sub-patches read / N k, averaged over the slides: at least f = 0.2 of them
    const fractions = ['slide_a', 'slide_b'].map((id) => readJson(out, id).counts).map((c) => c.highResRead / (c.patches * c.k));
    expect(result!.meanHighResFraction).toBeCloseTo((fractions[0] + fractions[1]) / 2, 4);
    expect(Math.min(...fractions)).toBeGreaterThanOrEqual(0.2);
    // The cohort CSV: one row per analysed slide.
    const csv = readFileSync(join(out, 'predictions.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('slide_id,pred,prob_0,prob_1,patches,steps,high_res_read,seconds,visited');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(['slide_a', 'slide_b']);
    expect(existsSync(join(out, 'infer.json'))).toBe(true);
  });

  it('skips slides whose output is complete, and redraws only a missing heatmap', async () => {
    const jsonPath = join(out, 'slides', 'slide_a.json');
    const mtime = statSync(jsonPath).mtimeMs;
    const again = await cli(['infer', ...slides, ...FLAGS, '--out', out, ...WSI]);
    expect(again.code).toBe(0);
    expect(again.result).toMatchObject({ slides: 2, analysed: 0, skipped: 2, failed: [] });
    expect(statSync(jsonPath).mtimeMs).toBe(mtime);

    const png = join(out, 'heatmaps', 'slide_b.png');
    const before = readFileSync(png);
    rmSync(png);
    const redraw = await cli(['infer', ...slides, ...FLAGS, '--out', out, ...WSI]);
    expect(redraw.result).toMatchObject({ analysed: 0, skipped: 2 });
    expect(Buffer.compare(readFileSync(png), before)).toBe(0);
  });

  it('refuses to mix settings in one output directory', async () => {
    const { code, stderr } = await cli(['infer', ...slides, ...FLAGS, '--policy', 'top-attention', '--out', out, ...WSI]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/holds results of a run with other settings.*Use another --out/s);
  });

  it('splits the slides into shards, each with its own CSV', async () => {
    const sharded = tmp.path('sharded');
    const a = await cli(['infer', ...slides, ...FLAGS, '--out', sharded, '--shard', '0/2', '--no-heatmap', ...WSI]);
    const b = await cli(['infer', ...slides, ...FLAGS, '--out', sharded, '--shard', '1/2', '--no-heatmap', ...WSI]);
    expect(a.result).toMatchObject({ slides: 1, analysed: 1 });
    expect(b.result).toMatchObject({ slides: 1, analysed: 1 });
    const rows = (f: string) => readFileSync(join(sharded, f), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    expect([...rows('predictions.part-0-of-2.csv'), ...rows('predictions.part-1-of-2.csv')].sort()).toEqual(['slide_a', 'slide_b']);
    expect(existsSync(join(sharded, 'heatmaps'))).toBe(false);
    // the same slides and settings give the same results as the unsharded run
    for (const id of ['slide_a', 'slide_b']) expect(readJson(sharded, id).visited).toEqual(readJson(out, id).visited);
    // sasha merge joins the shards' results into one predictions.csv, in cohort order
    const m = await cli(['merge', sharded, '--json', '--quiet']);
    expect(m.result).toMatchObject({ kind: 'infer', slides: 2, missing: [] });
    const head = (f: string) =>
      readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(',').slice(0, 4).join(','));
    expect(head(join(sharded, 'predictions.csv'))).toEqual(head(join(out, 'predictions.csv')));
  });

  it('takes its shard from a SLURM array task or a Kubernetes indexed Job; sasha merge gives the unsharded predictions', async () => {
    const sharded = tmp.path('scheduled');
    const argv = ['infer', ...slides, ...FLAGS, '--out', sharded, '--no-heatmap', ...WSI];
    // task 0 of an array --array=0-1; index 1 of an indexed Job of 2 completions
    const a = await cliWithEnv({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '1' }, argv);
    const b = await cliWithEnv({ JOB_COMPLETION_INDEX: '1', SASHA_SHARD_COUNT: '2' }, argv);
    expect(a.stderr).toBe('');
    expect(a.result).toMatchObject({ slides: 1, analysed: 1 });
    expect(b.result).toMatchObject({ slides: 1, analysed: 1 });
    const ids = (f: string) => readFileSync(join(sharded, f), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    expect(ids('predictions.part-0-of-2.csv')).toEqual(['slide_a']);
    expect(ids('predictions.part-1-of-2.csv')).toEqual(['slide_b']);
    const m = await cli(['merge', sharded, '--json', '--quiet']);
    expect(m.result).toMatchObject({ kind: 'infer', slides: 2, missing: [] });
    // every column but the run time: predictions, probabilities, counts and visited patches
    const table = (dir: string) => {
      const [header, ...rows] = readFileSync(join(dir, 'predictions.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
      const t = header.indexOf('seconds');
      return [header, ...rows].map((r) => r.filter((_, j) => j !== t));
    };
    expect(table(sharded)[0]).toContain('visited');
    expect(table(sharded)).toEqual(table(out));
  });

  it('adds labels, class names and the accuracy from a label CSV', async () => {
    const labelled = tmp.path('labelled');
    writeFileSync(tmp.path('labels.csv'), 'slide_id,label\nslide_a,tumor\nslide_b,normal\n');
    const { code, result } = await cli(['infer', ...slides, ...FLAGS, '--out', labelled, '--labels', tmp.path('labels.csv'), '--classes', 'normal,tumor', '--no-heatmap', ...WSI]);
    expect(code).toBe(0);
    const preds = ['slide_a', 'slide_b'].map((id) => readJson(labelled, id).prediction.label);
    // labels: slide_a tumor (1), slide_b normal (0)
    const correct = (preds[0] === 1 ? 1 : 0) + (preds[1] === 0 ? 1 : 0);
    expect(result).toMatchObject({ labelled: 2, accuracy: correct / 2 });
    expect(readJson(labelled, 'slide_a')).toMatchObject({ label: 1 });
    const csv = readFileSync(join(labelled, 'predictions.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('slide_id,pred,pred_name,prob_0,prob_1,label,patches,steps,high_res_read,seconds,visited');
    const cells = csv[1].split(',');
    expect([cells[0], cells[2], cells[5]]).toEqual(['slide_a', ['normal', 'tumor'][preds[0]], '1']);
  });

  it('--full runs full-resolution HAFED (every sub-patch) with the same outputs', async () => {
    const fullOut = tmp.path('full');
    const { code, result } = await cli(['infer', slides[0], ...FLAGS.filter((f, i) => f !== '--budget' && FLAGS[i - 1] !== '--budget'), '--full', '--out', fullOut, ...WSI]);
    expect(code).toBe(0);
    expect(result).toMatchObject({ analysed: 1, mode: 'fullResolution', budget: 1, policy: null, meanHighResFraction: 1 });
    const json = readJson(fullOut, 'slide_a');
    expect(json.visited).toEqual([]);
    expect(json.counts).toMatchObject({ steps: 0, lowResRead: 0, highResRead: json.counts.patches * 4, highResEncoded: json.counts.patches * 4 });
    const model = await loadSashaModel(modelDir, { withoutPolicy: true });
    const encoder = builtinEncoder({ dim: 16, inputSize: 16, seed: 1 });
    const slide = await openSlide(slides[0]);
    const res = await analyzeSlide(model, slide, { encoder, config: { ...CONFIG, mode: 'fullResolution' } });
    expectAllclose(json.prediction.probs, res.prediction.probs, { rtol: 1e-6, atol: 0 });
    await slide.close();
    encoder.dispose();
    model.dispose();
    const { data, info } = await sharp(join(fullOut, 'heatmaps', 'slide_a.png')).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([512, 384]);
    expect(data.length).toBe(512 * 384 * 3);
  });

  it('refuses a budget outside (0, 1], an encoder of another d, and a cohort with no readable slide', async () => {
    for (const budget of ['0', '1.5', 'abc']) {
      const r = await cli(['infer', ...slides, ...FLAGS.map((f) => (f === '0.2' ? budget : f)), '--out', tmp.path('bad'), ...WSI]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/Expected --budget \(the fraction f of the patches zoomed into\) to be in \(0, 1\], but got '[^']+'.*--budget 0.2/);
      expect(r.stderr).toContain(`but got '${budget}'`);
    }
    const encDir = tmp.path('encoder8');
    const enc = builtinEncoderModel({ dim: 8, inputSize: 16 });
    await enc.save(fileIO(encDir));
    enc.dispose();
    const wrongD = await cli(['infer', ...slides, ...FLAGS.map((f) => (f === 'builtin' ? encDir : f)), '--out', tmp.path('bad_d'), ...WSI]);
    expect(wrongD.code).toBe(2);
    expect(wrongD.stderr).toMatch(/width d = 8, but the model in .* was trained on d = 16.*--encoder/s);
    const none = await cli(['infer', tmp.path('blank.tif'), ...FLAGS, '--out', tmp.path('bad_none'), ...WSI]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/No slide could be analysed.*No tissue found in slide 'blank.tif'/s);
  });
});

describe('writeHeatmap', () => {
  it('writes a PNG that reads back as the rendered heatmap, through a temporary name', async () => {
    const model = await loadSashaModel(modelDir);
    const encoder = builtinEncoder({ dim: 16, inputSize: 16, seed: 1 });
    const slide = await openSlide(slides[0]);
    try {
      const res = await analyzeSlide(model, slide, { encoder, config: CONFIG });
      const file = tmp.path('png/nested/a.png');
      const info = await writeHeatmap(file, slide, res, { maxSide: 300 });
      // maxSide 300: level 2 (256 x 192)
      expect(info).toMatchObject({ width: 256, height: 192, level: 2, downsampleX: 4, downsampleY: 4 });
      const meta = await sharp(file).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 256, 192, 3]);
      const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      const img = await renderHeatmap(slide, res, { maxSide: 300 });
      expect(Buffer.compare(Buffer.from(img.data), data)).toBe(0);
      const { readdirSync } = await import('node:fs');
      expect(readdirSync(tmp.path('png/nested'))).toEqual(['a.png']);
    } finally {
      await slide.close?.();
      encoder.dispose();
      model.dispose();
    }
  });
});
