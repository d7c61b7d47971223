/**
 * The slide viewer (apps/viewer) in a real browser: Debian's Chromium driven by playwright-core.
 * The app is built with Vite from the built package (`npm test` builds the package first),
 * served from 127.0.0.1, and used as a person would: buttons, file pickers, downloads.
 *
 * - The demo slide analysed on the wasm backend gives the prediction and the visited patches
 *   of Node's analyzeSlide on the same model files and slide bytes (probabilities within 1e-3,
 *   same order); the time per phase and the peak JS heap are recorded, with a screenshot.
 * - A non-TIFF file, a slide without tissue and a model for another feature width each show a
 *   clear message, and the page stays usable.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). Without it the
 * tests are skipped, except under CI, where they fail.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { tf } from '../../src/core/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { ActorCritic } from '../../src/ppo/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { TiffSlideSource } from '../../src/wsi/index.js';
import { analyzeConfigFromSettings, analyzeSlide, loadModelEncoder, loadSashaModelFrom, readModelExtractSettings, type SlideAnalysisJson } from '../../src/pipeline/index.js';
import { fileIO, modelFilesFromDir, updateModelManifest, writeRgbTiff } from '../../src/node/index.js';
import { tempDir } from '../wsi/fixtures.js';

const ROOT = resolve(new URL('../../', import.meta.url).pathname);
const APP = join(ROOT, 'apps/viewer');
const DEMO = join(APP, 'public/demo');
const CHROMIUM = process.env.SASHA_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(ROOT, 'test-results/viewer');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`The browser tests need Chromium at ${CHROMIUM} (apt-get install chromium); .ci/run installs it.`);
if (!haveChromium) console.warn(`Skipping the browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium).`);

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.tif': 'image/tiff',
  '.png': 'image/png',
};

/** A static file server for the built app, on a free port of 127.0.0.1. */
function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` })));
}

interface ViewerStats {
  backend: string;
  backendSkipped: string[];
  phases: Record<string, number>;
  timings: Record<string, number> | null;
  heapPeakBytes: number;
  heapStartBytes: number;
  tensorBytesPeak: number;
  state: string;
  json: (SlideAnalysisJson & { id: string; file: string }) | null;
  error: string;
}
const statsOf = (page: Page) => page.evaluate(() => (window as unknown as { sashaViewer: ViewerStats }).sashaViewer);

async function waitForState(page: Page, states: string[], timeout = 240_000): Promise<ViewerStats> {
  await page.waitForFunction((s) => s.includes((window as unknown as { sashaViewer: ViewerStats }).sashaViewer.state), states, { timeout, polling: 100 });
  return statsOf(page);
}

/** Waits until the page is idle again (buttons back) after an action. */
async function idle(page: Page): Promise<void> {
  await page.waitForFunction(() => !(document.getElementById('demo-slide') as HTMLButtonElement).disabled, undefined, { timeout: 120_000 });
}

describe.skipIf(!haveChromium)('the slide viewer in Chromium', () => {
  const tmp = tempDir('sasha-viewer-');
  let browser: Browser;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const build = spawnSync(join(ROOT, 'node_modules/.bin/vite'), ['build', '--config', join(APP, 'vite.config.ts'), '--logLevel', 'warn'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
    ({ server, url } = await serve(join(APP, 'dist')));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
    });
    mkdirSync(OUT, { recursive: true });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
    tmp.cleanup();
  });

  it('analyses the demo slide on wasm as Node does: same visited patches in order, probabilities within 1e-3', async () => {
    // Node: the same model files, slide bytes and settings, on wasm (whatever the suite runs on).
    const suiteBackend = tf.getBackend();
    await tf.setBackend('wasm');
    const files = modelFilesFromDir(join(DEMO, 'model'));
    const model = await loadSashaModelFrom(files, { budget: 0.2 });
    const settings = await readModelExtractSettings(files);
    const encoder = await loadModelEncoder(files, settings!, { dim: model.hafed!.dim });
    const slide = await TiffSlideSource.open(new Blob([readFileSync(join(DEMO, 'slide.tif'))]), { name: 'demo.tif' });
    const node = await analyzeSlide(model, slide, { encoder, config: { ...analyzeConfigFromSettings(settings), policy: 'learned', budget: 0.2 } });
    await slide.close();
    encoder.dispose();
    model.dispose();
    await tf.setBackend(suiteBackend);

    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    try {
      await page.goto(`${url}?backend=wasm`);
      await waitForState(page, ['ready']);
      await expect.poll(() => page.textContent('#backend')).toBe('backend: wasm');
      await page.click('#demo-model');
      await idle(page);
      expect(await page.textContent('#model-info')).toMatch(/demo model\s+d = 64, k = 16, 2 classes\s+policies for f = 0.2/);
      await page.click('#demo-slide');
      await idle(page);
      expect(await page.textContent('#slide-info')).toMatch(/demo\.tif/);
      expect(await page.isEnabled('#analyze')).toBe(true);
      await page.click('#analyze');
      const stats = await waitForState(page, ['done', 'error', 'cancelled']);
      expect(stats.error, logs.join('\n')).toBe('');
      expect(stats.state).toBe('done');

      // the per-slide JSON, downloaded as a person would
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-json')]);
      const json = JSON.parse(readFileSync((await download.path())!, 'utf8')) as SlideAnalysisJson & { id: string; file: string };
      expect(download.suggestedFilename()).toBe('demo.json');
      expect(json.id).toBe('demo');
      expect(json.visited.map((v) => v.index)).toEqual(node.visited);
      expect(json.visited.length).toBe(Math.ceil(0.2 * node.counts.patches));
      expect(json.coords.length).toBe(node.counts.patches);
      const diff = Math.max(...json.prediction.probs.map((p, c) => Math.abs(p - node.prediction.probs[c])));
      expect(diff).toBeLessThanOrEqual(1e-3);
      expect(json.prediction.label).toBe(node.prediction.label);
      expect(json.prediction.label).toBe(1); // the demo slide holds tumour
      expect(await page.textContent('#prediction')).toMatch(/^tumour \(p = 0\.\d{3}\)$/);

      // a click on zoomed patch 1 shows it at high resolution
      const first = json.visited[0];
      const box = (await page.locator('#canvas').boundingBox())!;
      const { canvasWidth, slideWidth } = await page.evaluate(() => ({
        canvasWidth: (document.getElementById('canvas') as HTMLCanvasElement).width,
        slideWidth: Number(/(\d+) x \d+ px/.exec(document.getElementById('slide-info')!.textContent!)![1]),
      }));
      const scale = box.width / canvasWidth; // screen pixels per canvas pixel
      const ds = slideWidth / canvasWidth; // level-0 pixels per canvas pixel
      const cx = (first.x + json.patchSizeLevel0 / 2) / ds;
      const cy = (first.y + json.patchSizeLevel0 / 2) / ds;
      await page.mouse.click(box.x + cx * scale, box.y + cy * scale);
      await expect.poll(() => page.textContent('#detail-title')).toBe(`zoom 1 of ${json.visited.length}`);
      expect(await page.textContent('#detail-info')).toMatch(new RegExp(`patch ${first.index} at \\(${first.x}, ${first.y}\\)`));

      // the heatmap PNG download
      const [png] = await Promise.all([page.waitForEvent('download'), page.click('#download-png')]);
      const pngBytes = readFileSync((await png.path())!);
      expect(Array.from(pngBytes.subarray(1, 4), (b) => String.fromCharCode(b)).join('')).toBe('PNG');
      writeFileSync(join(OUT, 'heatmap.png'), pngBytes);
      expect(await page.textContent('#phase')).toMatch(new RegExp(`^done: ${json.counts.steps} of ${json.counts.patches} patches zoomed`));

      await page.screenshot({ path: join(OUT, 'viewer.png') });
      const figures = {
        backend: stats.backend,
        patches: json.counts.patches,
        steps: json.counts.steps,
        pagePhasesSeconds: stats.phases,
        timingsSeconds: stats.timings,
        heapStartMB: +(stats.heapStartBytes / 2 ** 20).toFixed(1),
        heapPeakMB: +(stats.heapPeakBytes / 2 ** 20).toFixed(1),
        tensorPeakMB: +(stats.tensorBytesPeak / 2 ** 20).toFixed(1),
        maxProbDiff: diff,
      };
      writeFileSync(join(OUT, 'figures.json'), JSON.stringify(figures, null, 2) + '\n');
      console.log(`viewer figures: ${JSON.stringify(figures)}`);
      if (process.env.SASHA_UPDATE_SCREENSHOT) cpSync(join(OUT, 'viewer.png'), join(ROOT, 'docs/guides/img/viewer.png'));
    } finally {
      await page.close();
    }
  }, 300_000);

  it('shows the backend it chose by itself, and why it skipped the others', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(url);
      const stats = await waitForState(page, ['ready', 'error']);
      expect(['webgpu', 'webgl', 'wasm', 'cpu']).toContain(stats.backend);
      expect(await page.textContent('#backend')).toBe(`backend: ${stats.backend}`);
      // WebGPU (and WebGL without a GPU) may be missing here; each skip has its reason
      for (const s of stats.backendSkipped) expect(s).toMatch(/^(webgpu|webgl|wasm): .+/);
      if (stats.backend !== 'webgpu') expect(stats.backendSkipped.some((s) => s.startsWith('webgpu'))).toBe(true);
      // with --disable-gpu, WebGL is Chromium's software renderer: skipped for wasm, with the reason
      expect(stats.backend).toBe('wasm');
      expect(stats.backendSkipped).toEqual(expect.arrayContaining([expect.stringMatching(/^webgl: software renderer \(.*SwiftShader.*\), slower than wasm$/)]));
      expect(await page.getAttribute('#backend', 'title')).toMatch(/skipped: .*webgl: software renderer/);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('says what is wrong with a non-TIFF file, a slide without tissue and a model for another feature width, and stays usable', async () => {
    // the fixtures: a PNG, a blank (glass only) pyramidal TIFF, and a model trained on d = 16
    // beside the demo's encoder (d = 64)
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array(120).fill(0)]);
    await writeRgbTiff(tmp.path('blank.tif'), new Uint8Array(1024 * 768 * 3).fill(242), 1024, 768, 0.5);
    const other = tmp.path('other_width');
    cpSync(join(DEMO, 'model', 'encoder'), join(other, 'encoder'), { recursive: true });
    cpSync(join(DEMO, 'model', 'extract.json'), join(other, 'extract.json'));
    const hafed = new Hafed({ dim: 16, k: 16, numClasses: 2, seed: 1 });
    const fS = new StateMlp({ dim: 16, seed: 1 });
    const policy = new ActorCritic({ dim: 16, hiddenDim: 8, seed: 1 });
    await hafed.save(fileIO(join(other, 'hafed')));
    await fS.save(fileIO(join(other, 'tsu')));
    await policy.save(fileIO(join(other, 'policy-0.2')));
    await updateModelManifest(other, {
      dim: 16,
      k: 16,
      numClasses: 2,
      data: { lrH5: 'lr.h5', split: 'split.json' },
      hafed: { path: 'hafed', input: 'highRes', config: {}, train: {}, seed: 1, best: {} },
      tsu: { path: 'tsu', train: { tau: 0.9 } },
      policies: { '0.2': { path: 'policy-0.2', budget: 0.2, env: { budget: 0.2, tau: 0.9 } } },
    });
    [hafed, fS, policy].forEach((m) => m.dispose());

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const message = () => page.textContent('#message');
    try {
      await page.goto(`${url}?backend=wasm`);
      await waitForState(page, ['ready']);
      // the model from its URL, typed in
      await page.fill('#model-url', `${url}demo/model/`);
      await page.click('#model-url-form button[type=submit]');
      await idle(page);
      expect(await page.textContent('#model-info')).toMatch(new RegExp(`^${url}demo/model/\\s+d = 64, k = 16`));

      // 1. a non-TIFF file, dropped on the page
      await page.evaluate((bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'photo.png', { type: 'image/png' }));
        window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, Array.from(png));
      await page.waitForFunction(() => !(document.getElementById('message') as HTMLElement).hidden, undefined, { timeout: 30_000 });
      await idle(page);
      expect(await message()).toMatch(/Slide 'photo\.png' is not a TIFF file \(it looks like a PNG image\)\..*vips tiffsave/);
      expect(await page.getAttribute('#message', 'class')).toBe('error');
      expect(await page.isDisabled('#analyze')).toBe(true); // no slide yet

      // 2. a slide without tissue: it opens, and the analysis says why it cannot run
      await page.setInputFiles('#slide-file', tmp.path('blank.tif'));
      await idle(page);
      expect(await page.textContent('#slide-info')).toMatch(/blank\.tif\s+1024 x 768 px/);
      await page.click('#analyze');
      await page.waitForFunction(() => !(document.getElementById('message') as HTMLElement).hidden, undefined, { timeout: 60_000 });
      expect(await message()).toMatch(/No tissue found in slide 'blank\.tif'.*lower sthresh or aT/);
      expect(await page.isEnabled('#analyze')).toBe(true);
      expect(await page.isDisabled('#cancel')).toBe(true);

      // 3. a model for another feature width (a folder picked on disk)
      await page.setInputFiles('#model-dir', other);
      await idle(page);
      expect(await message()).toMatch(/gives features of width d = 64, but the model was trained on d = 16/);
      expect(await page.textContent('#model-info')).toMatch(new RegExp(`^${url}demo/model/`)); // the model before is kept

      // still usable: the demo slide opens and the analysis starts, and Cancel stops it
      await page.click('#demo-slide');
      await idle(page);
      expect(await page.isHidden('#message')).toBe(true);
      await page.click('#analyze');
      await page.waitForFunction(() => (window as unknown as { sashaViewer: ViewerStats }).sashaViewer.state === 'running', undefined, { timeout: 30_000 });
      // a file dropped meanwhile does not replace the slide in use
      await page.evaluate(() => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(8)], 'other.tif'));
        window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      expect(await message()).toMatch(/An analysis is running: cancel it first/);
      await page.click('#cancel');
      const stats = await waitForState(page, ['cancelled', 'done', 'error'], 120_000);
      expect(stats.state).toBe('cancelled');
      expect(await message()).toMatch(/Analysis cancelled/);
      expect(await page.isEnabled('#analyze')).toBe(true);
    } finally {
      await page.close();
    }
  }, 300_000);
});
