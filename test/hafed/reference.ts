/**
 * A plain-JavaScript, float64 implementation of HAFED's forward pass and loss, written from the
 * formulas (docs/reference-code.md §2.2, docs/reference-code.md §13.1), used as the reference the tfjs
 * model is checked against.
 */
type Mat = number[][];

export interface AttentionWeights {
  kernelV: Mat; // [d, D]
  biasV: number[];
  kernelU?: Mat; // [d, D]
  biasU?: number[];
  kernelW: Mat; // [D, M]
  biasW: number[];
}

export function toMat(values: ArrayLike<number>, rows: number, cols: number): Mat {
  return Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => values[i * cols + j]));
}

function vecMat(x: number[], w: Mat, b: number[]): number[] {
  return b.map((bj, j) => bj + x.reduce((s, xi, i) => s + xi * w[i][j], 0));
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Attention logits of each instance: [n][M]. */
export function refScores(x: Mat, w: AttentionWeights): Mat {
  return x.map((xi) => {
    const a = vecMat(xi, w.kernelV, w.biasV).map(Math.tanh);
    const h = w.kernelU ? a.map((ai, j) => ai * sigmoid(vecMat(xi, w.kernelU!, w.biasU!)[j])) : a;
    return vecMat(h, w.kernelW, w.biasW);
  });
}

export function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((z) => z / s);
}

/** Attention [M][n] (softmax over instances) with optional masked (instance, branch) pairs. */
export function refAttention(x: Mat, w: AttentionWeights, masked?: (m: number, i: number) => boolean): Mat {
  const s = refScores(x, w);
  const M = s[0].length;
  return Array.from({ length: M }, (_, m) => softmax(s.map((row, i) => (masked?.(m, i) ? -1e9 : row[m]))));
}

export function pool(a: number[], x: Mat): number[] {
  const d = x[0].length;
  return Array.from({ length: d }, (_, j) => a.reduce((s, ai, i) => s + ai * x[i][j], 0));
}

export interface HafedWeights {
  stage1: AttentionWeights;
  stage2: AttentionWeights;
  branchKernel: number[][][]; // [M, d, C]
  branchBias: Mat; // [M, C]
  slideKernel: Mat; // [d, C]
  slideBias: number[]; // [C]
}

export function cosine(u: number[], v: number[]): number {
  const dot = u.reduce((s, ui, i) => s + ui * v[i], 0);
  const nu = Math.max(Math.sqrt(u.reduce((s, z) => s + z * z, 0)), 1e-8);
  const nv = Math.max(Math.sqrt(v.reduce((s, z) => s + z * z, 0)), 1e-8);
  return dot / (nu * nv);
}

export function refSimilarity(att: Mat): number {
  const M = att.length;
  if (M < 2) return 0;
  let s = 0;
  for (let i = 0; i < M; i++) for (let j = i + 1; j < M; j++) s += cosine(att[i], att[j]);
  return s / ((M * (M - 1)) / 2);
}

const ce = (logits: number[], y: number) => -Math.log(softmax(logits)[y]);

/** HAFED forward and total loss on U [N][k][d] (eval mode, no masking). */
export function refHafed(u: number[][][], w: HafedWeights, label: number) {
  const att1 = u.map((sub) => refAttention(sub, w.stage1)); // [N][M1][k]
  const v = u.map((sub, i) => {
    const M1 = att1[i].length;
    const abar = att1[i][0].map((_, j) => att1[i].reduce((s, row) => s + row[j], 0) / M1);
    return pool(abar, sub);
  });
  const att2 = refAttention(v, w.stage2); // [M][N]
  const M = att2.length;
  const pooled = att2.map((a) => pool(a, v)); // [M][d]
  const branchLogits = pooled.map((z, m) => vecMat(z, w.branchKernel[m], w.branchBias[m]));
  const bag = pooled[0].map((_, j) => pooled.reduce((s, z) => s + z[j], 0) / M);
  const logits = vecMat(bag, w.slideKernel, w.slideBias);
  const slide = ce(logits, label);
  const branch = M > 1 ? branchLogits.reduce((s, l) => s + ce(l, label), 0) / M : 0;
  const sim1 = att1.reduce((s, a) => s + refSimilarity(a), 0) / att1.length;
  const sim2 = refSimilarity(att2);
  return { v, att1, att2, logits, branchLogits, slide, branch, sim1, sim2, total: slide + branch + sim1 + sim2 };
}
