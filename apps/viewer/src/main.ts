/**
 * The SASHA slide viewer: open a slide and a model, and watch SASHA read the slide at low
 * resolution, then zoom into the patches its policy picks, as a pathologist does. Everything
 * runs in the browser: the slide is read in a Web Worker, the encoder and SASHA run on the
 * page's TensorFlow.js backend.
 */
import {
  SashaError,
  analysisToJson,
  analyzeSlide,
  loadSashaModelFrom,
  modelFilesFromPicked,
  modelFilesFromUrl,
  renderHeatmap,
  tf,
  type AnalyzeSlideConfig,
  type AnalyzeTimings,
  type ModelFiles,
  type ModelManifest,
  type PatchEncoder,
  type PolicyName,
  type SashaModel,
  type SlideAnalysis,
  type SlideAnalysisJson,
} from 'sasha-wsi';
import { readModelJson } from 'sasha-wsi/core';
import { openSlideOverPort, type PortSlideSource } from 'sasha-wsi/wsi';
import {
  MODEL_MANIFEST,
  analyzeConfigFromSettings,
  colormapColor,
  loadModelEncoder,
  normalizeScores,
  parseModelManifest,
  readModelExtractSettings,
  thumbnailLevel,
  trainedBudgets,
  type AnalyzeLayoutEvent,
} from 'sasha-wsi/pipeline';
import { chooseBackend } from './backend.js';

// ---------------------------------------------------------------------------------------------
// Page elements

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  backend: $('backend'),
  slideFile: $<HTMLInputElement>('slide-file'),
  demoSlide: $<HTMLButtonElement>('demo-slide'),
  slideInfo: $('slide-info'),
  demoModel: $<HTMLButtonElement>('demo-model'),
  modelDir: $<HTMLInputElement>('model-dir'),
  modelUrlForm: $<HTMLFormElement>('model-url-form'),
  modelUrl: $<HTMLInputElement>('model-url'),
  modelInfo: $('model-info'),
  policy: $<HTMLSelectElement>('policy'),
  budget: $<HTMLSelectElement>('budget'),
  budgetFree: $<HTMLInputElement>('budget-free'),
  analyze: $<HTMLButtonElement>('analyze'),
  cancel: $<HTMLButtonElement>('cancel'),
  phase: $('phase'),
  progress: $<HTMLProgressElement>('progress'),
  timings: $<HTMLTableElement>('timings'),
  memory: $('memory'),
  probs: $('probs'),
  prediction: $('prediction'),
  downloadPng: $<HTMLButtonElement>('download-png'),
  downloadJson: $<HTMLButtonElement>('download-json'),
  message: $('message'),
  canvas: $<HTMLCanvasElement>('canvas'),
  empty: $('empty'),
  detail: $('detail'),
  detailTitle: $('detail-title'),
  detailCanvas: $<HTMLCanvasElement>('detail-canvas'),
  detailInfo: $('detail-info'),
  drop: $('drop'),
};
const DEMO = new URL('demo/', document.baseURI).href;

// ---------------------------------------------------------------------------------------------
// State

interface LoadedModel {
  files: ModelFiles;
  manifest: ModelManifest | null;
  model: SashaModel;
  encoder: PatchEncoder;
  settings: Record<string, unknown> | null;
  budgets: number[];
  classes: string[];
  label: string;
}

interface Layout {
  coords: Int32Array;
  patchSizeLevel0: number;
  patchSize: number;
  lowResLevel: number;
  highResLevel: number;
  k: number;
}

interface View {
  /** Thumbnail level and its size; level-0 pixels per thumbnail pixel. */
  level: number;
  width: number;
  height: number;
  dsx: number;
  dsy: number;
  image: ImageBitmap | HTMLCanvasElement;
  outline: HTMLCanvasElement | null;
}

const worker = new Worker(new URL('./slide_worker.ts', import.meta.url), { type: 'module' });
let slide: PortSlideSource | null = null;
let slideFileName = '';
let loaded: LoadedModel | null = null;
let view: View | null = null;
let layout: Layout | null = null;
let attention: Float32Array | null = null;
let visited: number[] = [];
let encodedLowRes = 0;
let result: SlideAnalysis | null = null;
let running: AbortController | null = null;
let busy = false;
let selected: number | null = null;

/** What the page measured, for the browser test and the guide's figures. */
const stats = {
  backend: '',
  backendSkipped: [] as string[],
  phases: {} as Record<string, number>,
  timings: null as AnalyzeTimings | null,
  heapPeakBytes: 0,
  heapStartBytes: 0,
  tensorBytesPeak: 0,
  state: 'starting' as 'starting' | 'ready' | 'running' | 'done' | 'error' | 'cancelled',
  json: null as (SlideAnalysisJson & { id: string; file: string }) | null,
  error: '' as string,
};
(window as unknown as { sashaViewer: unknown }).sashaViewer = stats;

// ---------------------------------------------------------------------------------------------
// Messages

function show(text: string, kind: 'info' | 'error' = 'info'): void {
  ui.message.hidden = false;
  ui.message.textContent = text;
  ui.message.className = kind;
  if (kind === 'error') stats.error = text;
}

function clearMessage(): void {
  ui.message.hidden = true;
  ui.message.textContent = '';
}

/** The message of an error for a person: ours say what to do; others get a short prefix. */
function messageOf(e: unknown): string {
  if (e instanceof SashaError) return e.message;
  const m = (e as Error)?.message ?? String(e);
  return `Unexpected error: ${m}`;
}

/** Runs a user action: one at a time, errors shown in the page, controls back afterwards. */
async function act(what: string, run: () => Promise<void>): Promise<void> {
  if (busy) return;
  if (running) {
    // e.g. a file dropped during an analysis: the slide in use must stay open
    show('An analysis is running: cancel it first, then open another slide or model.');
    return;
  }
  busy = true;
  refreshControls();
  clearMessage();
  const before = ui.phase.textContent;
  ui.phase.textContent = `${what}…`;
  try {
    await run();
    // an action that did not start an analysis leaves the phase line as it was
    if (ui.phase.textContent === `${what}…`) ui.phase.textContent = before;
  } catch (e) {
    show(messageOf(e), 'error');
    ui.phase.textContent = before;
  } finally {
    busy = false;
    refreshControls();
  }
}

function refreshControls(): void {
  const idle = !busy && !running;
  for (const b of [ui.demoSlide, ui.demoModel]) b.disabled = !idle;
  ui.slideFile.disabled = !idle;
  ui.modelDir.disabled = !idle;
  ui.analyze.disabled = !(idle && slide && loaded);
  ui.cancel.disabled = !running;
  ui.downloadPng.disabled = !(idle && result);
  ui.downloadJson.disabled = !(idle && result);
  const learned = ui.policy.value === 'learned';
  ui.budget.hidden = !learned;
  ui.budgetFree.hidden = learned;
}

// ---------------------------------------------------------------------------------------------
// Slides

async function openSlideBlob(file: Blob, name: string): Promise<void> {
  const next = await openSlideOverPort(worker, file, { name });
  const old = slide;
  slide = next;
  slideFileName = name;
  await old?.close().catch(() => undefined);
  resetAnalysis();
  const l0 = next.levels[0];
  ui.slideInfo.textContent =
    `${name}\n${l0.width} x ${l0.height} px, ${next.levels.length} levels` + (next.mpp ? `, ${next.mpp.toPrecision(3)} µm/px` : ', pixel size not recorded');
  await drawThumbnail();
}

async function drawThumbnail(): Promise<void> {
  if (!slide) return;
  const level = thumbnailLevel(slide, 1024);
  const { width, height } = slide.levels[level];
  const rgb = await slide.readRegion(level, 0, 0, width, height);
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    img.data[j] = rgb[i];
    img.data[j + 1] = rgb[i + 1];
    img.data[j + 2] = rgb[i + 2];
    img.data[j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  view = { level, width, height, dsx: slide.levels[0].width / width, dsy: slide.levels[0].height / height, image: c, outline: null };
  ui.empty.hidden = true;
  render();
}

// ---------------------------------------------------------------------------------------------
// Models

async function loadModel(files: ModelFiles, label: string): Promise<void> {
  // a model directory lists its policies in sasha.json; a saved bundle has one policy
  const manifestJson = await readModelJson(files, MODEL_MANIFEST);
  const manifest = manifestJson === null ? null : parseModelManifest(manifestJson, `${files.name} ${MODEL_MANIFEST}`);
  const budgets = manifest ? trainedBudgets(manifest) : [];
  const budget = budgets.includes(0.2) ? 0.2 : budgets[0];
  const model = await loadSashaModelFrom(files, budget !== undefined ? { budget } : { withoutPolicy: true });
  let encoder: PatchEncoder;
  let settings: Record<string, unknown> | null;
  try {
    settings = await readModelExtractSettings(files);
    if (!settings) {
      throw new SashaError(
        `The model '${files.name}' carries no extract.json, so the page does not know its patch encoder and levels. ` +
          'Write a self-contained directory with packModelDir (sasha-wsi/node) and load that.',
      );
    }
    encoder = await loadModelEncoder(files, settings, { dim: model.hafed!.dim });
  } catch (e) {
    model.dispose();
    throw e;
  }
  const demo = files.name.startsWith(DEMO) ? await readModelJson<{ classes?: string[] }>(modelFilesFromUrl(DEMO), 'demo.json').catch(() => null) : null;
  const numClasses = model.hafed!.numClasses;
  const classes = Array.from({ length: numClasses }, (_, c) => demo?.classes?.[c] ?? `class ${c}`);
  const old = loaded;
  loaded = { files, manifest, model, encoder, settings, budgets, classes, label };
  if (old) {
    old.encoder.dispose();
    old.model.dispose();
  }
  ui.budget.replaceChildren(...budgets.map((f) => new Option(String(f), String(f), f === budget, f === budget)));
  if (budgets.length === 0) ui.policy.value = 'top-attention';
  ui.policy.querySelector<HTMLOptionElement>('option[value=learned]')!.disabled = budgets.length === 0;
  ui.modelInfo.textContent =
    `${label}\nd = ${model.hafed!.dim}, k = ${model.hafed!.k}, ${numClasses} classes\n` +
    `policies for f = ${budgets.join(', ') || 'none'}\nencoder ${encoder.name}`;
  resetAnalysis();
}

/** Loads the policy of another trained budget (the model keeps HAFED and f_S otherwise). */
async function switchBudget(f: number): Promise<void> {
  if (!loaded || Math.abs(loaded.model.env.budget - f) < 1e-9) return;
  const next = await loadSashaModelFrom(loaded.files, { budget: f });
  loaded.model.dispose();
  loaded.model = next;
}

// ---------------------------------------------------------------------------------------------
// Drawing

function patchRect(i: number): [number, number, number, number] {
  const v = view!;
  const l = layout!;
  const x = l.coords[2 * i] / v.dsx;
  const y = l.coords[2 * i + 1] / v.dsy;
  return [x, y, l.patchSizeLevel0 / v.dsx, l.patchSizeLevel0 / v.dsy];
}

/** The tissue outline: mask pixels with a background neighbour, drawn at the mask's size. */
function outlineCanvas(e: AnalyzeLayoutEvent): HTMLCanvasElement | null {
  const t = e.tissue;
  if (!t) return null;
  const c = document.createElement('canvas');
  c.width = t.width;
  c.height = t.height;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(t.width, t.height);
  const m = t.mask;
  const w = t.width;
  for (let y = 0; y < t.height; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!m[i]) continue;
      const edge = x === 0 || y === 0 || x === w - 1 || y === t.height - 1 || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w];
      if (edge) img.data.set([0, 160, 60, 255], i * 4);
    }
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function render(): void {
  const v = view;
  const c = ui.canvas;
  if (!v) return;
  if (c.width !== v.width || c.height !== v.height) {
    c.width = v.width;
    c.height = v.height;
  }
  const ctx = c.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(v.image, 0, 0);
  if (v.outline && slide) {
    // the mask covers its level; scale it to the thumbnail
    ctx.drawImage(v.outline, 0, 0, v.width, v.height);
  }
  if (!layout) return;
  const n = layout.coords.length / 2;
  if (attention) {
    const scores = normalizeScores(attention, 'percentile');
    ctx.globalAlpha = 0.45;
    for (let i = 0; i < n; i++) {
      const [r, g, b] = colormapColor(scores[i], 'jet');
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(...patchRect(i));
    }
    ctx.globalAlpha = 1;
  } else {
    // the low-res pass: patches read and encoded so far
    ctx.fillStyle = 'rgba(40, 90, 200, 0.25)';
    for (let i = 0; i < Math.min(encodedLowRes, n); i++) ctx.fillRect(...patchRect(i));
  }
  // zoomed patches, outlined and numbered in visit order; the last one highlighted
  const [, , pw] = patchRect(0);
  const font = Math.max(9, Math.min(16, Math.round(pw * 0.55)));
  ctx.font = `bold ${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  visited.forEach((a, order) => {
    const [x, y, w, h] = patchRect(a);
    const last = order === visited.length - 1 && !result;
    ctx.lineWidth = last ? 3 : 2;
    ctx.strokeStyle = last ? '#ff00cc' : a === selected ? '#ffffff' : '#000000';
    ctx.strokeRect(x + 1, y + 1, w - 2, h - 2);
    const label = String(order + 1);
    const tw = ctx.measureText(label).width + 4;
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x + 2, y + 2, tw, font + 2);
    ctx.fillStyle = '#000';
    ctx.fillText(label, x + 4, y + 3);
  });
}

function showProbs(probs: readonly number[]): void {
  const classes = loaded?.classes ?? probs.map((_, c) => `class ${c}`);
  ui.probs.replaceChildren(
    ...probs.map((p, c) => {
      const row = document.createElement('div');
      row.className = 'prob';
      const name = document.createElement('span');
      name.textContent = classes[c];
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('div');
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.append(fill);
      const val = document.createElement('span');
      val.textContent = p.toFixed(3);
      row.append(name, bar, val);
      return row;
    }),
  );
}

const PHASE_NAMES: [keyof AnalyzeTimings, string][] = [
  ['tissue', 'tissue and grid'],
  ['lowResEncode', 'low-res pass'],
  ['zoomRead', 'zoom: reads'],
  ['zoomEncode', 'zoom: encoding'],
  ['policy', 'policy and updates'],
  ['highResEncode', 'full resolution'],
  ['total', 'total'],
];

function showTimings(rows: [string, number][]): void {
  ui.timings.replaceChildren(
    ...rows.map(([name, s]) => {
      const tr = document.createElement('tr');
      const a = document.createElement('td');
      a.textContent = name;
      const b = document.createElement('td');
      b.textContent = `${s.toFixed(2)} s`;
      tr.append(a, b);
      return tr;
    }),
  );
}

function sampleMemory(): void {
  const mem = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  if (mem) stats.heapPeakBytes = Math.max(stats.heapPeakBytes, mem.usedJSHeapSize);
  stats.tensorBytesPeak = Math.max(stats.tensorBytesPeak, tf.memory().numBytes);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  ui.memory.textContent = mem ? `JS heap peak ${mb(stats.heapPeakBytes)}; tensors ${mb(tf.memory().numBytes)}` : `tensors ${mb(tf.memory().numBytes)}`;
}

function resetAnalysis(): void {
  layout = null;
  attention = null;
  visited = [];
  encodedLowRes = 0;
  result = null;
  selected = null;
  stats.json = null;
  ui.detail.hidden = true;
  ui.prediction.textContent = '';
  ui.probs.replaceChildren();
  ui.timings.replaceChildren();
  ui.progress.value = 0;
  if (view) view.outline = null;
  render();
  refreshControls();
}

// ---------------------------------------------------------------------------------------------
// Analysis

function chosenConfig(): Partial<AnalyzeSlideConfig> {
  const policy = ui.policy.value as PolicyName;
  const budget = policy === 'learned' ? Number(ui.budget.value) : Number(ui.budgetFree.value);
  if (!(budget > 0 && budget <= 1)) throw new SashaError(`The budget f must be in (0, 1], but is ${ui.budgetFree.value}.`);
  return { ...analyzeConfigFromSettings(loaded!.settings), policy, budget };
}

async function analyze(): Promise<void> {
  if (!slide || !loaded || running) return;
  const config = chosenConfig();
  if (config.policy === 'learned') await switchBudget(config.budget!);
  resetAnalysis();
  running = new AbortController();
  refreshControls();
  clearMessage();
  stats.state = 'running';
  stats.phases = {};
  const mem = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  stats.heapStartBytes = mem?.usedJSHeapSize ?? 0;
  stats.heapPeakBytes = stats.heapStartBytes;
  stats.tensorBytesPeak = 0;
  const sampler = setInterval(sampleMemory, 100);
  const t0 = performance.now();
  let mark = t0;
  const phase = (name: string) => {
    const t = performance.now();
    stats.phases[name] = (t - mark) / 1000;
    mark = t;
    showTimings(Object.entries(stats.phases));
  };
  ui.phase.textContent = 'segmenting the tissue';
  try {
    const res = await analyzeSlide(loaded.model, slide, {
      encoder: loaded.encoder,
      config,
      signal: running.signal,
      onProgress: (e) => {
        ui.progress.value = e.total ? e.done / e.total : 0;
        if (e.task.startsWith('low-res')) {
          encodedLowRes = e.done;
          ui.phase.textContent = `low-res pass: ${e.done} / ${e.total} patches`;
          render();
        } else if (e.task.startsWith('zoom')) {
          ui.phase.textContent = `zoom: step ${e.done} / ${e.total}`;
        }
      },
      onEvent: async (e) => {
        if (e.type === 'layout') {
          phase('tissue and grid');
          layout = e;
          if (view) view.outline = outlineCanvas(e);
          ui.phase.textContent = `low-res pass: 0 / ${e.coords.length / 2} patches`;
          render();
        } else {
          if (e.step === 0) phase('low-res pass');
          attention = e.attention;
          visited = [...e.visited];
          showProbs(e.probs);
          render();
        }
        sampleMemory();
        // let the page paint before the next step
        await new Promise((r) => requestAnimationFrame(() => r(undefined)));
      },
    });
    phase('zoom');
    result = res;
    attention = res.attention;
    visited = res.visited;
    stats.timings = res.timings;
    const json = { id: slideFileName.replace(/\.[^.]+$/, ''), file: slideFileName, ...analysisToJson(res) };
    stats.json = json;
    const p = res.prediction;
    ui.prediction.textContent = `${loaded.classes[p.label]} (p = ${p.probability.toFixed(3)})`;
    ui.prediction.dataset.label = String(p.label);
    showProbs(p.probs);
    showTimings(PHASE_NAMES.filter(([k]) => k === 'total' || res.timings[k] > 0).map(([k, name]) => [name, res.timings[k]]));
    ui.phase.textContent =
      res.mode === 'sasha'
        ? `done: ${res.counts.steps} of ${res.counts.patches} patches zoomed (${((100 * res.counts.highResEncoded) / (res.counts.patches * res.counts.k)).toFixed(0)} % of the high-res sub-patches)`
        : 'done';
    stats.state = 'done';
  } catch (e) {
    if (running.signal.aborted) {
      show('Analysis cancelled. Choose another slide, model or budget, or analyze again.');
      stats.state = 'cancelled';
      ui.phase.textContent = 'cancelled';
    } else {
      stats.state = 'error';
      throw e;
    }
  } finally {
    clearInterval(sampler);
    sampleMemory();
    running = null;
    render();
    refreshControls();
  }
}

// ---------------------------------------------------------------------------------------------
// A patch at high resolution

async function showPatch(i: number): Promise<void> {
  if (!slide || !layout) return;
  selected = i;
  render();
  const l = layout;
  const r = Math.round(Math.sqrt(l.k));
  const side = l.patchSize * r; // the patch at the high-res level
  const rgb = await slide.readRegion(l.highResLevel, l.coords[2 * i], l.coords[2 * i + 1], side, side);
  const c = ui.detailCanvas;
  c.width = side;
  c.height = side;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(side, side);
  for (let s = 0, d = 0; s < rgb.length; s += 3, d += 4) img.data.set([rgb[s], rgb[s + 1], rgb[s + 2], 255], d);
  ctx.putImageData(img, 0, 0);
  const order = visited.indexOf(i);
  ui.detail.hidden = false;
  ui.detailTitle.textContent = order >= 0 ? `zoom ${order + 1} of ${visited.length}` : 'patch not zoomed';
  ui.detailInfo.textContent =
    `patch ${i} at (${l.coords[2 * i]}, ${l.coords[2 * i + 1]}), level ${l.highResLevel}, ${side} x ${side} px` +
    (attention ? `\nattention ${attention[i].toExponential(3)}` : '') +
    (order < 0 ? '\nSASHA did not read this patch at high resolution; it is read now for viewing.' : '');
}

function patchAt(ev: MouseEvent): number | null {
  if (!view || !layout) return null;
  const rect = ui.canvas.getBoundingClientRect();
  const x = ((ev.clientX - rect.left) / rect.width) * ui.canvas.width * view.dsx;
  const y = ((ev.clientY - rect.top) / rect.height) * ui.canvas.height * view.dsy;
  const s = layout.patchSizeLevel0;
  // zoomed patches first (they are what a click is usually for)
  const hit = (i: number) => x >= layout!.coords[2 * i] && x < layout!.coords[2 * i] + s && y >= layout!.coords[2 * i + 1] && y < layout!.coords[2 * i + 1] + s;
  for (const a of visited) if (hit(a)) return a;
  for (let i = 0; i < layout.coords.length / 2; i++) if (hit(i)) return i;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Downloads

function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function downloadHeatmap(): Promise<void> {
  if (!slide || !result) return;
  const img = await renderHeatmap(slide, result, { maxSide: 2048 });
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext('2d')!;
  const data = ctx.createImageData(img.width, img.height);
  for (let s = 0, d = 0; s < img.data.length; s += 3, d += 4) data.data.set([img.data[s], img.data[s + 1], img.data[s + 2], 255], d);
  ctx.putImageData(data, 0, 0);
  const blob = await new Promise<Blob>((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('the canvas gave no PNG'))), 'image/png'));
  download(blob, `${stats.json?.id ?? 'slide'}.png`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.slideFile.addEventListener('change', () => {
  const f = ui.slideFile.files?.[0];
  ui.slideFile.value = '';
  if (f) void act(`opening ${f.name}`, () => openSlideBlob(f, f.name));
});
ui.demoSlide.addEventListener('click', () =>
  void act('opening the demo slide', async () => {
    const res = await fetch(new URL('slide.tif', DEMO));
    if (!res.ok) throw new SashaError(`The demo slide is missing from this deployment (HTTP ${res.status}); open a slide file instead.`);
    await openSlideBlob(await res.blob(), 'demo.tif');
  }),
);
ui.demoModel.addEventListener('click', () => void act('loading the demo model', () => loadModel(modelFilesFromUrl(new URL('model/', DEMO).href), 'demo model')));
ui.modelDir.addEventListener('change', () => {
  const files = Array.from(ui.modelDir.files ?? []);
  ui.modelDir.value = '';
  if (files.length) void act('loading the model folder', () => loadModel(modelFilesFromPicked(files), `folder ${modelFilesFromPicked(files).name}`));
});
ui.modelUrlForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = ui.modelUrl.value.trim();
  if (url) void act(`loading ${url}`, () => loadModel(modelFilesFromUrl(url), url));
});
ui.policy.addEventListener('change', refreshControls);
ui.analyze.addEventListener('click', () => {
  if (busy || running) return;
  // not through act(): the controls must stay live for Cancel
  analyze().catch((e) => {
    show(messageOf(e), 'error');
    ui.phase.textContent = 'idle';
    refreshControls();
  });
});
ui.cancel.addEventListener('click', () => running?.abort());
ui.downloadPng.addEventListener('click', () => void act('drawing the heatmap', downloadHeatmap));
ui.downloadJson.addEventListener('click', () => {
  if (stats.json) download(new Blob([JSON.stringify(stats.json) + '\n'], { type: 'application/json' }), `${stats.json.id}.json`);
});
ui.canvas.addEventListener('click', (ev) => {
  const i = patchAt(ev);
  if (i !== null) void showPatch(i).catch((e) => show(messageOf(e), 'error'));
});

// Drag and drop anywhere on the page.
let dragDepth = 0;
window.addEventListener('dragenter', (ev) => {
  ev.preventDefault();
  dragDepth++;
  ui.drop.hidden = false;
});
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.drop.hidden = true;
});
window.addEventListener('dragover', (ev) => ev.preventDefault());
window.addEventListener('drop', (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  ui.drop.hidden = true;
  const f = ev.dataTransfer?.files?.[0];
  if (f) void act(`opening ${f.name}`, () => openSlideBlob(f, f.name));
});

// Start: the backend, then the controls.
const forced = new URLSearchParams(location.search).get('backend');
chooseBackend(forced).then(
  (choice) => {
    stats.backend = choice.name;
    stats.backendSkipped = choice.skipped;
    ui.backend.textContent = `backend: ${choice.name}`;
    ui.backend.title = choice.skipped.length ? `skipped: ${choice.skipped.join('; ')}` : 'TensorFlow.js backend in use';
    stats.state = 'ready';
    refreshControls();
  },
  (e) => {
    stats.state = 'error';
    ui.backend.textContent = 'backend: none';
    show(messageOf(e), 'error');
  },
);
refreshControls();
