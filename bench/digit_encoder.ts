/**
 * Trains the patch encoder of the digit benchmark: a small CNN that learns, from MNIST digits
 * rendered as the slide pipeline reads them, what a pathology encoder learns from tissue (what
 * is in a high-res patch; what mixture a low-res patch holds). It is then truncated to its
 * d-dimensional embedding and saved as a tfjs LayersModel directory that `sasha extract
 * --encoder DIR` loads like any other ("bring your own encoder").
 *
 * Data (seeded; digits of the 'encoder' pool of `partitionDigitBank(bank, poolSeed)` only, so
 * that no digit image of a slide is ever seen in training):
 * - high-res crops: one cell (`cellSize` pixels) with a digit on normal or lesion stroma, or
 *   glass; targets: the digit (10 classes + "none") and the tissue (glass / normal / lesion);
 * - low-res crops: `r x r` cells box-averaged by r (one low-res patch), a normal region with
 *   strays, some lesion cells, sometimes a glass border; targets: the shares of each digit and
 *   of each tissue among the cells (soft labels).
 *
 * Architecture: three 3 x 3 convolutions (ReLU, same padding) with 2 x 2 max pooling between
 * them, global average pooling, and a linear embedding of width d; two softmax heads on the
 * embedding are used in training only. tfjs-wasm has no Conv2DBackpropFilter kernel, so training
 * runs the same network as tf ops with a convolution whose filter gradient is an im2col matMul;
 * the weights are then copied into the tfl model that is saved, and the two are checked equal.
 *
 * Test accuracy is measured on high-res crops of the 'testSlides' pool (digits the encoder never
 * saw): 10-digit accuracy, tumour-vs-mimic (9 vs 4) accuracy, and the same 9-vs-4 question at low
 * resolution (a patch of 4 lesion cells of one of the two digits), where it should be far lower.
 *
 * Run: `nice -n 10 npx tsx bench/digit_encoder.ts [--out bench/out/digit_encoder] [--epochs 6]
 *   [--seed 0] [--dim 64] [--no-record]`
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, linear, tf, tfl, createRng, type Rng } from '../src/core/index.js';
import { preprocessPatches, type RgbImage } from '../src/wsi/index.js';
import { fileIO, loadMnistDigits } from '../src/node/index.js';
import { table, writeResults } from './results.js';
import { CELL_GLASS, CELL_MIMIC, CELL_NORMAL, CELL_TUMOUR, DEFAULT_DIGIT_SLIDE_CONFIG, partitionDigitBank, paintDigitCell, randomStain, renderDigitPatch, scaleDigitBank, type DigitBank, type DigitCell } from '../src/wsi/synthetic/digit_slide.js';
import { writeFileAtomic } from '../src/node/io/file_io.js';

/** Options of {@link trainDigitEncoder}. */
export interface DigitEncoderOptions {
  /** Output model directory. */
  out: string;
  /** Passes over `stepsPerEpoch` batches. */
  epochs: number;
  /** Batches per epoch. */
  stepsPerEpoch: number;
  /** Crops per batch. */
  batchSize: number;
  /** Share of low-res (mosaic) crops in a batch. */
  lowResShare: number;
  /** Embedding width d. */
  dim: number;
  /** Filters of the convolutions (2 x 2 max pooling between them). */
  filters: number[];
  /** Adam learning rate. */
  learningRate: number;
  /** Seed of the crops and the initialisation. */
  seed: number;
  /** Seed of the digit partition (as `DigitSlideConfig.poolSeed`). */
  poolSeed: number;
  /** Cell side, digit side, level ratio: as the slides are drawn. */
  cellSize: number;
  digitSize: number;
  ratio: number;
  jitter: number;
  /** Progress lines. */
  log: (message: string) => void;
}

/** Defaults: the geometry of `DEFAULT_DIGIT_SLIDE_CONFIG`. */
export const DEFAULT_DIGIT_ENCODER_OPTIONS: Readonly<DigitEncoderOptions> = Object.freeze({
  out: 'bench/out/digit_encoder',
  epochs: 8,
  stepsPerEpoch: 250,
  batchSize: 64,
  lowResShare: 0.35,
  dim: 64,
  filters: [16, 24, 48, 64], // about 2.5 M multiply-adds per 32 x 32 crop; the last layer sees a whole cell
  learningRate: 2e-3,
  seed: 0,
  poolSeed: DEFAULT_DIGIT_SLIDE_CONFIG.poolSeed,
  cellSize: DEFAULT_DIGIT_SLIDE_CONFIG.cellSize,
  digitSize: DEFAULT_DIGIT_SLIDE_CONFIG.digitSize,
  ratio: DEFAULT_DIGIT_SLIDE_CONFIG.ratio,
  jitter: DEFAULT_DIGIT_SLIDE_CONFIG.jitter,
  log: () => {},
});

/** What {@link trainDigitEncoder} measured. */
export interface DigitEncoderReport {
  dir: string;
  dim: number;
  /** 10-digit accuracy on high-res crops of unseen digits. */
  digitAccuracy: number;
  /** Tumour (9) vs mimic (4) accuracy on high-res crops of unseen digits (from the 10-way head). */
  tumourVsMimicHighRes: number;
  /** The same question on low-res patches holding 4 lesion cells of one of the two digits. */
  tumourVsMimicLowRes: number;
  /** Tissue (glass / normal / lesion) accuracy on high-res crops. */
  tissueAccuracy: number;
  /** Largest |difference| between the trained network and the saved tfl model on one batch. */
  parityMaxAbs: number;
  seconds: number;
  history: { epoch: number; loss: number; checkAccuracy: number }[];
}

const NONE = 10; // the "no digit" class (glass)
const TUMOUR_DIGIT = DEFAULT_DIGIT_SLIDE_CONFIG.tumourDigit;
const MIMIC_DIGIT = DEFAULT_DIGIT_SLIDE_CONFIG.mimicDigit;

// --------------------------------------------------------------------------------------------
// Crops

interface Crop {
  image: RgbImage;
  digit: Float32Array; // [11] target shares
  tissue: Float32Array; // [3] target shares (glass, normal, lesion)
}

class CropSampler {
  private readonly byClass: Int32Array[];
  constructor(
    private readonly bank: DigitBank,
    pool: Int32Array,
    private readonly o: DigitEncoderOptions,
  ) {
    this.byClass = Array.from({ length: 10 }, (_, d) => Int32Array.from(Array.from(pool).filter((i) => bank.labels[i] === d)));
  }

  private cell(rng: Rng, kind: number, digit: number): DigitCell {
    const list = this.byClass[digit];
    const j = this.o.jitter;
    return { kind, image: kind === CELL_GLASS ? 0 : list[rng.int(list.length)], dx: rng.int(2 * j + 1) - j, dy: rng.int(2 * j + 1) - j };
  }

  /** One cell: glass 5%, normal stroma 55%, lesion stroma 40%; any digit on either stroma. */
  high(rng: Rng, forced?: { kind: number; digit: number }): Crop {
    const u = rng.next();
    const kind = forced?.kind ?? (u < 0.05 ? CELL_GLASS : u < 0.6 ? CELL_NORMAL : CELL_TUMOUR);
    const digit = forced?.digit ?? rng.int(10);
    const s = this.o.cellSize;
    const image: RgbImage = { width: s, height: s, data: new Uint8Array(s * s * 3) };
    const c = this.cell(rng, kind, digit);
    paintDigitCell(image, 0, 0, s, c, this.bank, randomStain(rng), rng.int(4096), rng.int(4096), rng.nextUint32());
    const dt = new Float32Array(11);
    const tt = new Float32Array(3);
    dt[kind === CELL_GLASS ? NONE : digit] = 1;
    tt[kind === CELL_GLASS ? 0 : kind === CELL_NORMAL ? 1 : 2] = 1;
    return { image, digit: dt, tissue: tt };
  }

  /** One low-res patch: a region digit with strays, 0-7 lesion cells, sometimes a glass border. */
  low(rng: Rng, forced?: { lesionDigit: number; lesionCells: number }): Crop {
    const r = this.o.ratio;
    const k = r * r;
    const region = rng.int(10);
    const kinds = new Array<number>(k).fill(CELL_NORMAL);
    const digits = Array.from({ length: k }, () => (rng.next() < 0.1 ? rng.int(10) : region));
    if (!forced && rng.next() < 0.25) {
      // a straight glass border through the patch
      const ang = rng.uniform(0, 2 * Math.PI);
      const off = rng.uniform(-0.4, 0.4) * r;
      for (let xi = 0; xi < r; xi++) {
        for (let yi = 0; yi < r; yi++) {
          if ((xi + 0.5 - r / 2) * Math.cos(ang) + (yi + 0.5 - r / 2) * Math.sin(ang) > off) kinds[xi * r + yi] = CELL_GLASS;
        }
      }
    }
    const lesions = forced ? forced.lesionCells : rng.next() < 0.5 ? 1 + rng.int(Math.floor((k - 1) / 2)) : 0;
    const order = rng.permutation(k);
    let placed = 0;
    for (const j of order) {
      if (placed >= lesions) break;
      if (kinds[j] === CELL_GLASS) continue;
      kinds[j] = forced ? (forced.lesionDigit === TUMOUR_DIGIT ? CELL_TUMOUR : CELL_MIMIC) : CELL_TUMOUR;
      digits[j] = forced ? forced.lesionDigit : rng.int(10);
      placed++;
    }
    const cells = kinds.map((kd, j) => this.cell(rng, kd, digits[j]));
    const { low } = renderDigitPatch(this.bank, cells, {
      cellSize: this.o.cellSize,
      ratio: r,
      stain: randomStain(rng),
      seed: rng.nextUint32(),
      origin: [rng.int(4096), rng.int(4096)],
    });
    const dt = new Float32Array(11);
    const tt = new Float32Array(3);
    kinds.forEach((kd, j) => {
      dt[kd === CELL_GLASS ? NONE : digits[j]] += 1 / k;
      tt[kd === CELL_GLASS ? 0 : kd === CELL_NORMAL ? 1 : 2] += 1 / k;
    });
    return { image: low, digit: dt, tissue: tt };
  }
}

/** Stacks crops into `[B, s, s, 3]` pixels and `[B, 11]`, `[B, 3]` targets (caller disposes). */
function toBatch(crops: Crop[], s: number): { x: tf.Tensor4D; digit: tf.Tensor2D; tissue: tf.Tensor2D } {
  const px = new Float32Array(crops.length * s * s * 3);
  const dt = new Float32Array(crops.length * 11);
  const tt = new Float32Array(crops.length * 3);
  crops.forEach((c, b) => {
    px.set(c.image.data, b * s * s * 3);
    dt.set(c.digit, b * 11);
    tt.set(c.tissue, b * 3);
  });
  return { x: tf.tensor4d(px, [crops.length, s, s, 3]), digit: tf.tensor2d(dt, [crops.length, 11]), tissue: tf.tensor2d(tt, [crops.length, 3]) };
}

// --------------------------------------------------------------------------------------------
// The network

/** The saved encoder: conv-pool-conv-pool-conv, global average pooling, linear embedding. */
function encoderModel(o: DigitEncoderOptions, rng: Rng): tfl.Sequential {
  const m = tfl.sequential({ name: 'digit_encoder' });
  o.filters.forEach((f, i) => {
    m.add(
      tfl.layers.conv2d({
        filters: f,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.heNormal({ seed: rng.seedInt() }),
        ...(i === 0 ? { inputShape: [o.cellSize, o.cellSize, 3] } : {}),
      }),
    );
    if (i < o.filters.length - 1) m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  });
  m.add(tfl.layers.globalAveragePooling2d({}));
  m.add(tfl.layers.dense({ units: o.dim, name: 'embedding', kernelInitializer: tfl.initializers.glorotUniform({ seed: rng.seedInt() }) }));
  return m;
}

/**
 * 3 x 3 'same' convolution, stride 1, with a gradient made of plain forward convolutions
 * (tfjs-wasm has no Conv2DBackpropFilter kernel, and its Conv2DBackpropInput is slow):
 * - `dx = conv2d(dy, flip(w) with in/out swapped, 'same')`;
 * - `dW[ky, kx, c, f] = sum_{b,y,x} xpad[b, y + ky, x + kx, c] dy[b, y, x, f]`, a 'valid'
 *   convolution of the padded input with batch and channels swapped, `[C, H+2, W+2, B]`, by `dy`
 *   as a `[H, W, B, F]` filter.
 * `inputGrad: false` skips dx (for the first layer, whose input is data).
 */
export function makeConv3x3(inputGrad: boolean): (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D {
  return tf.customGrad(((x: tf.Tensor4D, w: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.conv2d(x, w, 1, 'same'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dx = inputGrad ? tf.conv2d(dy, tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D, 1, 'same') : tf.zerosLike(xs);
        const xp = tf.transpose(tf.pad(xs, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ]), [3, 1, 2, 0]) as tf.Tensor4D; // [C, H+2, W+2, B]
        const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [H, W, B, F]
        const dw = tf.transpose(tf.conv2d(xp, filter, 1, 'valid'), [1, 2, 0, 3]); // [C, 3, 3, F] -> [3, 3, C, F]
        return [dx, dw];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
}

const convFirst = makeConv3x3(false);
const convInner = makeConv3x3(true);

interface Params {
  conv: { w: tf.Variable; b: tf.Variable }[];
  embed: { w: tf.Variable; b: tf.Variable };
  digitHead: { w: tf.Variable; b: tf.Variable };
  tissueHead: { w: tf.Variable; b: tf.Variable };
}

/** The network as tf ops: embedding `[B, d]` of preprocessed input `[B, s, s, 3]`. */
function embed(p: Params, x: tf.Tensor4D): tf.Tensor2D {
  let h = x;
  p.conv.forEach((c, i) => {
    h = tf.relu(tf.add((i === 0 ? convFirst : convInner)(h, c.w as unknown as tf.Tensor4D), c.b)) as tf.Tensor4D;
    if (i < p.conv.length - 1) h = tf.maxPool(h, 2, 2, 'valid');
  });
  const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
  return linear(pooled, p.embed.w, p.embed.b);
}

/** Soft-label cross-entropy `-mean_b sum_c t log softmax(z)`. */
function softCrossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

// --------------------------------------------------------------------------------------------

/**
 * Trains the digit encoder and saves its embedding part to `options.out` (`model.json` +
 * weights, and `encoder.json` with the options and the measured accuracies).
 */
export async function trainDigitEncoder(options: Partial<DigitEncoderOptions> = {}): Promise<DigitEncoderReport> {
  const o: DigitEncoderOptions = { ...DEFAULT_DIGIT_ENCODER_OPTIONS, ...options };
  const t0 = performance.now();
  const bank = scaleDigitBank(await loadMnistDigits(), o.digitSize);
  const pools = partitionDigitBank(bank, o.poolSeed);
  const train = new CropSampler(bank, pools.encoder, o);
  const test = new CropSampler(bank, pools.testSlides, o);
  const rng = createRng(o.seed);
  const model = encoderModel(o, rng.fork());
  const wts = model.getWeights();
  const v = (t: tf.Tensor, name: string) => tf.variable(t, true, `digit_encoder/${name}`);
  const nConv = o.filters.length;
  const headInit = (units: number, name: string) => ({
    w: v(tfl.initializers.glorotUniform({ seed: rng.seedInt() }).apply([o.dim, units]), `${name}/w`),
    b: v(tf.zeros([units]), `${name}/b`),
  });
  const params: Params = {
    conv: Array.from({ length: nConv }, (_, i) => ({ w: v(wts[2 * i], `conv${i}/w`), b: v(wts[2 * i + 1], `conv${i}/b`) })),
    embed: { w: v(wts[2 * nConv], 'embed/w'), b: v(wts[2 * nConv + 1], 'embed/b') },
    digitHead: headInit(11, 'digit'),
    tissueHead: headInit(3, 'tissue'),
  };
  const optimizer = tf.train.adam(o.learningRate);
  const history: { epoch: number; loss: number; checkAccuracy: number }[] = [];
  const checkRng = createRng(o.seed + 2000);
  const nLow = Math.round(o.lowResShare * o.batchSize);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let sum = 0;
    const te = performance.now();
    // half-cosine decay of the learning rate over the epochs
    (optimizer as unknown as { learningRate: number }).learningRate = o.learningRate * 0.5 * (1 + Math.cos((Math.PI * epoch) / o.epochs));
    for (let step = 0; step < o.stepsPerEpoch; step++) {
      const crops = [...Array.from({ length: o.batchSize - nLow }, () => train.high(rng)), ...Array.from({ length: nLow }, () => train.low(rng))];
      const batch = toBatch(crops, o.cellSize);
      const loss = optimizer.minimize(() =>
        tf.tidy(() => {
          const x = preprocessPatches(batch.x, { inputSize: o.cellSize, normalization: 'imagenet' });
          const e = embed(params, x);
          const dl = linear(e, params.digitHead.w, params.digitHead.b) as tf.Tensor2D;
          const tl = linear(e, params.tissueHead.w, params.tissueHead.b) as tf.Tensor2D;
          return tf.add(softCrossEntropy(dl, batch.digit), softCrossEntropy(tl, batch.tissue)) as tf.Scalar;
        }),
      true,
      ) as tf.Scalar;
      sum += (await loss.data())[0];
      tf.dispose([loss, batch.x, batch.digit, batch.tissue]);
    }
    // quick check on 256 high-res crops of unseen digits
    const check = Array.from({ length: 256 }, () => test.high(checkRng, { kind: checkRng.next() < 0.5 ? CELL_NORMAL : CELL_TUMOUR, digit: checkRng.int(10) }));
    const acc = tf.tidy(() => {
      const b = toBatch(check, o.cellSize);
      const x = preprocessPatches(b.x, { inputSize: o.cellSize, normalization: 'imagenet' });
      const pred = tf.argMax(linear(embed(params, x), params.digitHead.w, params.digitHead.b), 1).dataSync();
      return check.filter((c, i) => c.digit[pred[i]] === 1).length / check.length;
    });
    history.push({ epoch: epoch + 1, loss: sum / o.stepsPerEpoch, checkAccuracy: acc });
    o.log(
      `encoder epoch ${epoch + 1}/${o.epochs}: loss ${(sum / o.stepsPerEpoch).toFixed(4)}, digit accuracy ${acc.toFixed(3)} (${((performance.now() - te) / 1000).toFixed(1)} s)`,
    );
  }

  // Copy the trained weights into the tfl model and check both give the same embedding.
  model.setWeights([...params.conv.flatMap((c) => [c.w, c.b]), params.embed.w, params.embed.b]);
  const probe = toBatch(Array.from({ length: 16 }, () => test.low(rng)), o.cellSize);
  const parityMaxAbs = tf.tidy(() => {
    const x = preprocessPatches(probe.x, { inputSize: o.cellSize, normalization: 'imagenet' });
    return tf.max(tf.abs(tf.sub(embed(params, x), model.predict(x) as tf.Tensor))).dataSync()[0];
  });
  tf.dispose([probe.x, probe.digit, probe.tissue]);

  // Test accuracy on digits never seen in training.
  const evalRng = createRng(o.seed + 1000);
  const predict = (crops: Crop[]) =>
    tf.tidy(() => {
      const b = toBatch(crops, o.cellSize);
      const x = preprocessPatches(b.x, { inputSize: o.cellSize, normalization: 'imagenet' });
      const e = embed(params, x);
      const digit = tf.softmax(linear(e, params.digitHead.w, params.digitHead.b) as tf.Tensor2D).arraySync() as number[][];
      const tissue = tf.argMax(linear(e, params.tissueHead.w, params.tissueHead.b), 1).arraySync() as number[];
      return { digit, tissue };
    });
  let digitOk = 0;
  let digitN = 0;
  let tissueOk = 0;
  let tmOk = 0;
  let tmN = 0;
  for (let rep = 0; rep < 20; rep++) {
    const crops = Array.from({ length: 100 }, () => test.high(evalRng));
    const { digit, tissue } = predict(crops);
    crops.forEach((c, i) => {
      const truth = c.digit.indexOf(1);
      const truthTissue = c.tissue.indexOf(1);
      if (truthTissue === 0) {
        if (tissue[i] === 0) tissueOk++;
        return;
      }
      if (tissue[i] === truthTissue) tissueOk++;
      const pred = digit[i].slice(0, 10).indexOf(Math.max(...digit[i].slice(0, 10)));
      digitN++;
      if (pred === truth) digitOk++;
    });
  }
  const tissueAccuracy = tissueOk / 2000;
  // 9 vs 4 on lesion stroma, high and low resolution
  let lowOk = 0;
  let lowN = 0;
  for (let rep = 0; rep < 10; rep++) {
    const hi = Array.from({ length: 100 }, (_, i) => test.high(evalRng, { kind: CELL_TUMOUR, digit: i % 2 ? TUMOUR_DIGIT : MIMIC_DIGIT }));
    const ph = predict(hi).digit;
    hi.forEach((c, i) => {
      const isT = c.digit[TUMOUR_DIGIT] === 1;
      if (ph[i][TUMOUR_DIGIT] > ph[i][MIMIC_DIGIT] === isT) tmOk++;
      tmN++;
    });
    const lo = Array.from({ length: 100 }, (_, i) => test.low(evalRng, { lesionDigit: i % 2 ? TUMOUR_DIGIT : MIMIC_DIGIT, lesionCells: 4 }));
    const pl = predict(lo).digit;
    lo.forEach((c, i) => {
      const isT = c.digit[TUMOUR_DIGIT] > 0.2;
      if (pl[i][TUMOUR_DIGIT] > pl[i][MIMIC_DIGIT] === isT) lowOk++;
      lowN++;
    });
  }
  mkdirSync(o.out, { recursive: true });
  await model.save(fileIO(o.out));
  const report: DigitEncoderReport = {
    dir: o.out,
    dim: o.dim,
    digitAccuracy: digitOk / digitN,
    tumourVsMimicHighRes: tmOk / tmN,
    tumourVsMimicLowRes: lowOk / lowN,
    tissueAccuracy,
    parityMaxAbs,
    seconds: (performance.now() - t0) / 1000,
    history,
  };
  const { log: _log, ...saved } = o;
  await writeFileAtomic(join(o.out, 'encoder.json'), JSON.stringify({ options: saved, report }, null, 2) + '\n');
  tf.dispose([...params.conv.flatMap((c) => [c.w, c.b]), params.embed.w, params.embed.b, params.digitHead.w, params.digitHead.b, params.tissueHead.w, params.tissueHead.b]);
  optimizer.dispose();
  model.dispose();
  return report;
}

/** Formats the report as a markdown table. */
export function encoderTable(r: DigitEncoderReport): string {
  return table(
    ['measure (unseen digits)', 'value'],
    [
      ['10-digit accuracy, high-res cell', r.digitAccuracy.toFixed(4)],
      ['tumour (9) vs mimic (4), high-res cell', r.tumourVsMimicHighRes.toFixed(4)],
      ['tumour (9) vs mimic (4), low-res patch with 4 lesion cells', r.tumourVsMimicLowRes.toFixed(4)],
      ['tissue (glass / normal / lesion), high-res cell', r.tissueAccuracy.toFixed(4)],
      ['embedding width d', r.dim],
      ['max abs(trained - saved) embedding', r.parityMaxAbs.toExponential(2)],
      ['training time (s)', r.seconds.toFixed(0)],
    ],
  );
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
  };
  const backend = await initBackend();
  const out = arg('out', DEFAULT_DIGIT_ENCODER_OPTIONS.out);
  const report = await trainDigitEncoder({
    out,
    epochs: Number(arg('epochs', String(DEFAULT_DIGIT_ENCODER_OPTIONS.epochs))),
    seed: Number(arg('seed', '0')),
    dim: Number(arg('dim', String(DEFAULT_DIGIT_ENCODER_OPTIONS.dim))),
    log: (m) => process.stderr.write(m + '\n'),
  });
  const body = encoderTable(report);
  console.log(body);
  if (!process.argv.includes('--no-record')) {
    writeResults('digit-encoder', 'Digit benchmark: the patch encoder', `npx tsx bench/digit_encoder.ts ${process.argv.slice(2).join(' ')}`.trim(), backend, body);
  }
  if (!existsSync(join(out, 'model.json'))) process.exitCode = 1;
}
