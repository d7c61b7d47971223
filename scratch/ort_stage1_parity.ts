import ort from 'onnxruntime-node';
import { createRng, initBackend, tf } from './src/core/index.js';
import { subPatchBackward, subPatchForward } from './src/hafed/sub_patch_pooling.js';
await initBackend('wasm');
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' as const, graphOptimizationLevel: 'all' as const };
const fwd = await ort.InferenceSession.create('/work/ortexp/stage1f_forward.onnx', opts);
const bwd = await ort.InferenceSession.create('/work/ortexp/stage1f_backward.onnx', opts);
const k = 16, d = 384, D = 128, M = 1, n = Number(process.argv[2] ?? 1000), R = n * k;
const rng = createRng(1);
const arr = (len: number, sc = 1) => Float32Array.from({ length: len }, () => rng.normal() * sc);
const U = arr(R * d), WV = arr(d * D, 0.05), bV = arr(D, 0.1), WU = arr(d * D, 0.05), bU = arr(D, 0.1), Ww = arr(D * M, 0.1), bw = arr(M, 0.1);
const dF = arr(n * d), dA = arr(n * M * k);
const T = (a: Float32Array, s: number[]) => new ort.Tensor('float32', a, s);
const I = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), [a.length]);
const mask = new Float32Array(n * M * k);
const WVU = new Float32Array(d * 2 * D); for (let i = 0; i < d; i++) { WVU.set(WV.subarray(i * D, i * D + D), i * 2 * D); WVU.set(WU.subarray(i * D, i * D + D), i * 2 * D + D); }
const bVU = new Float32Array(2 * D); bVU.set(bV); bVU.set(bU, D);
const ortStep = async () => {
  const f = await fwd.run({ U: T(U, [R, d]), WVU: T(WVU, [d, 2 * D]), bVU: T(bVU, [2 * D]), Ww: T(Ww, [D, M]), bw: T(bw, [M]), mask: T(mask, [n, M, k]), shape_nkm: I([n, k, M]), shape_nkd: I([n, k, d]), shape_nd: I([n, d]) });
  const b = await bwd.run({ U: T(U, [R, d]), t: f.t, s: f.s, a: f.a, dF: T(dF, [n, d]), dA: T(dA, [n, M, k]), Ww: T(Ww, [D, M]), invM: new ort.Tensor('float32', Float32Array.of(1 / M), []), shape_n1d: I([n, 1, d]), shape_nkd: I([n, k, d]), shape_RM: I([R, M]) });
  const dW = b.dWVU.data as Float32Array, db = b.dbVU.data as Float32Array;
  const dWV = new Float32Array(d * D), dWU = new Float32Array(d * D);
  for (let i = 0; i < d; i++) { dWV.set(dW.subarray(i * 2 * D, i * 2 * D + D), i * D); dWU.set(dW.subarray(i * 2 * D + D, i * 2 * D + 2 * D), i * D); }
  return [f.features.data as Float32Array, dWV, db.slice(0, D), dWU, db.slice(D), b.dWw.data as Float32Array, b.dbw.data as Float32Array];
};
const u3 = tf.tensor3d(U, [n, k, d]);
const w = { kernelV: tf.tensor2d(WV, [d, D]), biasV: tf.tensor1d(bV), kernelU: tf.tensor2d(WU, [d, D]), biasU: tf.tensor1d(bU), kernelW: tf.tensor2d(Ww, [D, M]), biasW: tf.tensor1d(bw) };
const dFt = tf.tensor2d(dF, [n, d]), dAt = tf.tensor3d(dA, [n, M, k]);
const tfStep = () => { const f = subPatchForward(u3, w as never); const g = subPatchBackward(u3, w as never, f.saved, dFt, dAt); const out = [f.features, ...g].map((x) => x.dataSync().slice() as Float32Array); tf.dispose([f.features, f.attention, f.saved.t, f.saved.s, f.saved.g, f.saved.a, ...g]); return out; };
const a = await ortStep(), b = tfStep();
a.forEach((x, i) => { let m = 0, sc = 0; for (let j = 0; j < x.length; j++) { m = Math.max(m, Math.abs(x[j] - b[i][j])); sc = Math.max(sc, Math.abs(b[i][j])); } console.log('out', i, 'maxdiff', m.toExponential(2), 'scale', sc.toExponential(2)); });
const to: number[] = [], tt: number[] = [];
for (let r = 0; r < 6; r++) {
  let c0 = process.cpuUsage(); await ortStep(); let c = process.cpuUsage(c0); to.push((c.user + c.system) / 1e3);
  c0 = process.cpuUsage(); tfStep(); c = process.cpuUsage(c0); tt.push((c.user + c.system) / 1e3);
}
const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log('ort stage1 fwd+bwd CPU ms', med(to).toFixed(0), to.map((x) => x.toFixed(0)).join(' '));
console.log('tfjs stage1 fwd+bwd CPU ms', med(tt).toFixed(0), tt.map((x) => x.toFixed(0)).join(' '));
