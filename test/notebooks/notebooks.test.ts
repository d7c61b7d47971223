/**
 * The notebooks of notebooks/, as CI runs them: each one executed headless by Jupyter's
 * nbconvert with Deno's Jupyter kernel (the `deno` dev dependency) into a temporary folder,
 * against the built package (`npm test` builds dist/ first).
 *
 * - No cell may fail or write to stderr, and every code cell runs.
 * - What each notebook promises is in its outputs: the numbers it prints are in range, its
 *   plots are real images (PNG with a size, SVG line charts with their series).
 * - The committed notebook holds the outputs of the current code: every cell prints the same
 *   text as the fresh run (numbers masked) and shows as many images (`npm run notebooks`
 *   refreshes them).
 * - The code of every notebook type-checks (`deno check`) against the built declarations: the
 *   kernel itself runs TypeScript without checking it.
 *
 * Needs `jupyter nbconvert` (apt-get install jupyter-nbconvert; .ci/run installs it). Without
 * it the tests are skipped, except under CI, where they fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KERNEL_NAME, NOTEBOOKS_DIR, denoBinary, executeNotebook, haveNbconvert, listNotebooks, makeKernelHome, type KernelHome } from '../../scripts/notebooks.js';

const ROOT = path.resolve(NOTEBOOKS_DIR, '..');
const haveJupyter = haveNbconvert();
if (!haveJupyter && process.env.CI) throw new Error('The notebook tests need Jupyter nbconvert (apt-get install jupyter-nbconvert); .ci/run installs it.');
if (!haveJupyter) console.warn('Skipping the notebook tests: `jupyter nbconvert` is not installed (apt-get install jupyter-nbconvert).');

interface Output {
  output_type: 'stream' | 'display_data' | 'execute_result' | 'error';
  name?: 'stdout' | 'stderr';
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: 'code' | 'markdown' | 'raw';
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}
interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name: string; language: string } };
}

const join = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Notebook;
const codeCells = (nb: Notebook) => nb.cells.filter((c) => c.cell_type === 'code');
/** Everything a cell printed to stdout. */
const stdout = (cell: Cell) => (cell.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stdout').map((o) => join(o.text)).join('');
const allStdout = (nb: Notebook) => codeCells(nb).map(stdout).join('');
/** The images a cell shows, by type. */
const images = (cell: Cell, mime: 'image/png' | 'image/svg+xml') => (cell.outputs ?? []).filter((o) => o.data?.[mime] !== undefined).map((o) => join(o.data![mime]));
const allImages = (nb: Notebook, mime: 'image/png' | 'image/svg+xml') => codeCells(nb).flatMap((c) => images(c, mime));
/** Text with its numbers masked, so that the committed and a fresh run compare by format. */
const mask = (text: string) => text.replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, '#').replace(/ +/g, ' ');

/** The width and height of a base64 PNG, from its IHDR chunk (throws on anything else). */
function pngSize(b64: string): [number, number] {
  const bytes = Buffer.from(b64, 'base64');
  expect([...bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  expect(bytes.toString('latin1', 12, 16)).toBe('IHDR');
  expect(bytes.toString('latin1', bytes.length - 8, bytes.length - 4)).toBe('IEND');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

/**
 * Decodes a base64 PNG with libpng (through sharp), which checks every chunk's CRC, and checks
 * that it holds a picture: 3 channels, the size of its header, not one flat colour.
 */
async function checkPicture(b64: string): Promise<void> {
  const [width, height] = pngSize(b64);
  const { data, info } = await sharp(Buffer.from(b64, 'base64')).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([width, height, 3]);
  let lo = 255;
  let hi = 0;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  expect(hi - lo).toBeGreaterThan(100);
}

/** The numbers of the first match of `re` in `text`. */
function num(text: string, re: RegExp): number[] {
  const m = re.exec(text);
  expect(m, `${re} in:\n${text}`).not.toBeNull();
  return m!.slice(1).map(Number);
}
const inUnit = (v: number) => Number.isFinite(v) && v >= 0 && v <= 1;

const EXPECTED = ['01_quick_tour.ipynb', '02_train_on_synthetic_cohort.ipynb', '03_slide_to_heatmap.ipynb'];

describe('the notebooks', () => {
  it('are the three promised, for the Deno kernel, committed with their outputs, documented in docs/notebooks.md', () => {
    expect(listNotebooks().map((f) => path.basename(f))).toEqual(EXPECTED);
    const doc = readFileSync(path.join(ROOT, 'docs/notebooks.md'), 'utf8');
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain('](docs/notebooks.md)');
    for (const name of EXPECTED) {
      const nb = read(path.join(NOTEBOOKS_DIR, name));
      expect(nb.metadata.kernelspec).toMatchObject({ name: KERNEL_NAME, language: 'typescript' });
      expect(doc, name).toContain(`/notebooks/${name})`); // a link into the repository (the notebooks are not in the npm package)
      // imported as a user imports the package, never from the source tree
      const code = codeCells(nb).map((c) => join(c.source)).join('\n');
      expect(code).toMatch(/from 'sasha-wsi'/);
      expect(code).not.toMatch(/from '\.\.\//);
      for (const c of codeCells(nb)) expect(c.execution_count, `${name}: a cell without its output`).toBeGreaterThan(0);
      expect(allImages(nb, 'image/png').length + allImages(nb, 'image/svg+xml').length, name).toBeGreaterThan(0);
    }
  });
});

describe.skipIf(!haveJupyter)('the notebooks executed headless with the Deno kernel', () => {
  let outDir = '';
  let home: KernelHome;
  const runs = new Map<string, { fresh: Notebook; seconds: number }>();

  beforeAll(() => {
    if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('The notebooks import the built package: run `npm run build` (npm test does it first).');
    outDir = mkdtempSync(path.join(tmpdir(), 'sasha-notebooks-out-'));
    home = makeKernelHome();
  });
  afterAll(() => {
    home?.dispose();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
    if (runs.size > 0) console.log(`notebooks executed: ${[...runs].map(([n, r]) => `${n} ${r.seconds.toFixed(1)} s`).join(', ')}`);
  });

  /** Executes a notebook into the temporary folder and checks what every notebook must satisfy. */
  function execute(name: string): Notebook {
    const run = executeNotebook(path.join(NOTEBOOKS_DIR, name), { outDir, home });
    expect(run.status, `${name} failed:\n${run.log}`).toBe(0);
    const fresh = read(run.output);
    runs.set(name, { fresh, seconds: run.seconds });
    for (const [i, c] of codeCells(fresh).entries()) {
      expect(c.execution_count, `${name}, code cell ${i}: not run`).toBeGreaterThan(0);
      for (const o of c.outputs ?? []) {
        expect(o.output_type, `${name}, code cell ${i}: ${o.ename}: ${o.evalue}`).not.toBe('error');
        if (o.output_type === 'stream') expect(o.name, `${name}, code cell ${i} wrote to stderr: ${join(o.text)}`).toBe('stdout');
      }
    }
    // the committed notebook holds the outputs of this code: same text (numbers masked), same images
    const committed = read(path.join(NOTEBOOKS_DIR, name));
    expect(codeCells(committed).map((c) => join(c.source))).toEqual(codeCells(fresh).map((c) => join(c.source)));
    codeCells(fresh).forEach((c, i) => {
      const old = codeCells(committed)[i];
      const hint = `${name}, code cell ${i}: the committed outputs are stale; run \`npm run notebooks\``;
      expect(mask(stdout(old)), hint).toBe(mask(stdout(c)));
      expect(images(old, 'image/png').length, hint).toBe(images(c, 'image/png').length);
      expect(images(old, 'image/svg+xml').length, hint).toBe(images(c, 'image/svg+xml').length);
    });
    return fresh;
  }

  it('01 quick tour: HAFED trained and tested, its attention, an episode of WsiEnv, where the policy zoomed', async () => {
    const nb = execute('01_quick_tour.ipynb');
    const out = allStdout(nb);
    expect(out).toMatch(/on the tfjs (wasm|cpu|tensorflow) backend/);
    const losses = [...out.matchAll(/epoch \d+: loss ([\d.]+), train accuracy ([\d.]+), val AUC ([\d.]+)/g)];
    expect(losses.length).toBe(10);
    for (const [, loss, acc, auc] of losses) expect(Number(loss) > 0 && inUnit(Number(acc)) && inUnit(Number(auc))).toBe(true);
    const [accuracy, auc] = num(out, /HAFED-100 % on the 17 test slides: accuracy ([\d.]+), AUC ([\d.]+)/);
    expect(inUnit(accuracy) && inUnit(auc)).toBe(true);
    const [n] = num(out, /N = (\d+) patches/);
    const [T, p0, pT] = num(out, /T = (\d+) zooms; P\(tumour\) on S_0 = Z ([\d.]+), after the zooms ([\d.]+)/);
    expect(T).toBe(Math.ceil(0.1 * n));
    expect(inUnit(p0) && inUnit(pT)).toBe(true);
    const [ret, hits, zooms] = num(out, /return (-[\d.]+); (\d+) of the (\d+) zoomed patches hold tumour/);
    expect(ret).toBeLessThan(0); // a sum of log-probabilities
    expect(zooms).toBe(T);
    expect(hits).toBeLessThanOrEqual(T);
    expect(out).toContain('tensors left: 0');
    // the truth, the attention and the zooms over the slide grid; P(tumour) along the episode
    const pngs = allImages(nb, 'image/png');
    expect(pngs.length).toBe(3);
    for (const png of pngs) {
      const [w, h] = pngSize(png);
      expect(w > 100 && h > 100).toBe(true);
      await checkPicture(png);
    }
    const [svg] = allImages(nb, 'image/svg+xml');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('P(tumour) while zooming');
    expect([...svg.matchAll(/<circle /g)].length).toBe(T + 1);
  }, 300_000);

  it('02 training: the three stages, training curves, HAFED-100 % against SASHA-0.2 and the heuristics, the bundle reloaded', async () => {
    const nb = execute('02_train_on_synthetic_cohort.ipynb');
    const out = allStdout(nb);
    for (const stage of ['hafed', 'tsu', 'policy']) expect(out).toMatch(new RegExp(`stage ${stage} done after \\d+ s`));
    const rows = ['HAFED-100% (every high-res patch)', 'SASHA-0.2 (learned zooming)', 'top-attention-0.2', 'random-0.2'];
    for (const row of rows) {
      const escaped = row.replace(/[()%.]/g, '\\$&');
      const [accuracy, auc, f1] = num(out, new RegExp(`${escaped} +([\\d.]+) +([\\d.]+) +([\\d.]+)`));
      expect([accuracy, auc, f1].every(inUnit), row).toBe(true);
    }
    const [reloaded, asTrained, change] = num(out, /reloaded bundle: SASHA-0.2 accuracy ([\d.]+) \(as trained: ([\d.]+)\); largest change of a slide's P\(tumour\): ([\d.e+-]+)/);
    expect(reloaded).toBe(asTrained);
    expect(change).toBeLessThan(1e-5);
    // the training curves: four line charts with their series
    const svgs = allImages(nb, 'image/svg+xml');
    expect(svgs.length).toBe(4);
    const titles = ['HAFED: training loss', 'HAFED: accuracy and AUC', 'f_S (targeted state update): mean squared error', 'Zoom policy: mean final reward'];
    titles.forEach((t, i) => expect(svgs[i]).toContain(t));
    const policyEpochs = [...out.matchAll(/policy epoch \d+ \((imitation|ppo)\)/g)].length;
    expect(policyEpochs).toBeGreaterThan(0);
    expect([...svgs[0].matchAll(/<circle /g)].length).toBe(2 * 10); // two series over the 10 HAFED epochs
    expect([...svgs[3].matchAll(/<circle /g)].length).toBe(policyEpochs);
    // where SASHA and random zooming went on one positive test slide
    const [zooms, hits] = num(out, /SASHA zoomed (\d+) patches, (\d+) on tumour/);
    expect(hits).toBeLessThanOrEqual(zooms);
    const pngs = allImages(nb, 'image/png');
    expect(pngs.length).toBe(2);
    expect(pngSize(pngs[0])).toEqual(pngSize(pngs[1]));
    for (const png of pngs) await checkPicture(png);
  }, 300_000);

  it('03 slide to heatmap: tissue and patches, lazy zoom reading f N patches at high resolution, the heatmap', async () => {
    const nb = execute('03_slide_to_heatmap.ipynb');
    const out = allStdout(nb);
    const [p] = num(out, /new_slide: class [01], P\(lesion\) ([\d.]+)/);
    expect(inUnit(p)).toBe(true);
    const [n, encoded, steps, all] = num(out, /read (\d+) low-res patches and (\d+) high-res sub-patches in (\d+) zooms \(reading every sub-patch would be (\d+)/);
    const [gridN, k] = num(out, /(\d+) patches of 32 px at level 2 \(128 px at level 0\), k = (\d+) sub-patches each/);
    expect(n).toBe(gridN);
    expect(steps).toBe(Math.ceil(0.2 * n));
    expect(encoded).toBe(steps * k); // only the zoomed patches' sub-patches are read and encoded
    expect(all).toBe(n * k);
    const [lesionZoomed, visited] = num(out, /zoomed patches holding lesion: (\d+) of (\d+)/);
    expect(visited).toBe(steps);
    expect(lesionZoomed).toBeLessThanOrEqual(visited);
    const table = [...out.matchAll(/slide_1\d\d +(lesion|none) \(([\d.]+) %\) +([\d.]+) +([\d.]+)/g)];
    expect(table.length).toBe(6);
    for (const [, kind, share, lazy, full] of table) {
      expect(kind === 'none').toBe(Number(share) === 0);
      expect(inUnit(Number(lazy)) && inUnit(Number(full))).toBe(true);
    }
    expect(out).toContain('tensors left: 0');
    // the patch grid over the thumbnail, then the heatmap: both at level 2 (512 x 384)
    const pngs = allImages(nb, 'image/png');
    expect(pngs.map(pngSize)).toEqual([
      [512, 384],
      [512, 384],
    ]);
    for (const png of pngs) await checkPicture(png);
  }, 300_000);

  it('type-check against the built declarations (deno check)', () => {
    for (const name of EXPECTED) {
      // the cells in order, as one module next to the notebook (so that './display.ts' and the package resolve)
      const file = path.join(NOTEBOOKS_DIR, `.typecheck-${process.pid}-${name.replace('.ipynb', '.ts')}`);
      writeFileSync(file, `${codeCells(read(path.join(NOTEBOOKS_DIR, name))).map((c) => join(c.source)).join('\n')}\nexport {};\n`);
      try {
        // sloppy imports: the built .d.ts files import their chunks as '.js'
        const r = spawnSync(denoBinary(), ['check', '--unstable-sloppy-imports', file], { cwd: NOTEBOOKS_DIR, env: home.env, encoding: 'utf8' });
        expect(r.status, `${name}:\n${r.stdout}${r.stderr}`).toBe(0);
      } finally {
        rmSync(file, { force: true });
      }
    }
  }, 300_000);
});
