/**
 * The matMul gradient on wasm: explicit transpose + plain matMul (`'explicit'`) against tfjs's
 * built-in gradient, which uses transposed-operand matMuls (`'builtin'`), side by side in one
 * process. Workloads: a plain [N, 384] x [384, 128] product, and one forward + backward step of
 * a gated-attention MIL classifier with HAFED stage-2 shapes (d = 384, attention hidden 128,
 * 5 branches, branch heads and slide head, cross-entropy), at N = 1000 and 5000.
 *
 * Run: npx tsx bench/matmul_grad.ts [reps]
 */
import { initBackend, linear, matMul, tf } from '../src/core/index.js';
import { median, table, writeResults } from './results.js';
import { setMatMulGradMode, type MatMulGradMode } from '../src/core/ops.js';

const REPS = Number(process.argv[2] ?? 7);
const D = 384;
const HIDDEN = 128;
const BRANCHES = 5;
const CLASSES = 2;

/** Weights of the stage-2 classifier (docs/reference-code.md §2.1-2.2). */
function stage2Weights(seed: number): tf.Variable[] {
  // Variables made inside tidy, so that their initial values are freed.
  const w = (shape: number[], s: number) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 1 / Math.sqrt(shape[0]), 'float32', seed + s)));
  const zeros = (n: number) => tf.tidy(() => tf.variable(tf.zeros([n])));
  return [
    w([D, HIDDEN], 1), // tanh gate
    zeros(HIDDEN),
    w([D, HIDDEN], 2), // sigmoid gate
    zeros(HIDDEN),
    w([HIDDEN, BRANCHES], 3), // attention logits per branch
    zeros(BRANCHES),
    w([BRANCHES, D, CLASSES], 4), // branch heads
    w([D, CLASSES], 5), // slide head
    zeros(CLASSES),
  ];
}

/** Loss of one stage-2 step: slide cross-entropy + mean branch cross-entropy. */
function stage2Loss(x: tf.Tensor2D, y: tf.Tensor2D, v: tf.Variable[]): tf.Scalar {
  const [wa, ba, wb, bb, wk, bk, wBranch, wSlide, bSlide] = v;
  const a = tf.tanh(linear(x, wa, ba)); // [N, 128]
  const b = tf.sigmoid(linear(x, wb, bb)); // [N, 128]
  const logits = linear(tf.mul(a, b) as tf.Tensor2D, wk, bk); // [N, 5]
  const attn = tf.softmax(tf.transpose(logits)) as tf.Tensor2D; // [5, N], softmax over N
  const branchFeat = matMul(attn, x); // [5, 384]
  const branchLogits = tf.sum(tf.mul(tf.reshape(branchFeat, [BRANCHES, D, 1]), wBranch), 1) as tf.Tensor2D; // [5, 2]
  const bagAttn = tf.mean(attn, 0, true) as tf.Tensor2D; // [1, N]
  const bagFeat = matMul(bagAttn, x); // [1, 384]
  const slideLogits = linear(bagFeat, wSlide, bSlide); // [1, 2]
  const yBranches = tf.tile(y, [BRANCHES, 1]);
  return tf.add(tf.losses.softmaxCrossEntropy(y, slideLogits), tf.losses.softmaxCrossEntropy(yBranches, branchLogits)) as tf.Scalar;
}

interface Workload {
  name: string;
  n: number;
  /** One timed step; returns the gradients' flat values for the parity check. */
  step: () => Float32Array[];
  dispose: () => void;
}

function milWorkload(n: number): Workload {
  const x = tf.randomNormal([n, D], 0, 1, 'float32', 11) as tf.Tensor2D;
  const y = tf.tensor2d([[0, 1]]);
  const vars = stage2Weights(100);
  return {
    name: 'gated-attention MIL fwd+bwd (HAFED stage 2)',
    n,
    step: () => {
      const { value, grads } = tf.variableGrads(() => stage2Loss(x, y, vars), vars);
      const out = vars.map((v) => (grads[v.name].dataSync() as Float32Array).slice());
      value.dataSync();
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
      return out;
    },
    dispose: () => {
      x.dispose();
      y.dispose();
      vars.forEach((v) => v.dispose());
    },
  };
}

function matMulWorkload(n: number): Workload {
  const x = tf.tidy(() => tf.variable(tf.randomNormal([n, D], 0, 1, 'float32', 21)));
  const w = tf.tidy(() => tf.variable(tf.randomNormal([D, HIDDEN], 0, 0.05, 'float32', 22)));
  return {
    name: `matMul [N, ${D}] x [${D}, ${HIDDEN}] fwd+bwd (dX and dW)`,
    n,
    step: () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(matMul(x as tf.Tensor2D, w as tf.Tensor2D))) as tf.Scalar, [x, w]);
      const out = [(grads[x.name].dataSync() as Float32Array).slice(), (grads[w.name].dataSync() as Float32Array).slice()];
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
      return out;
    },
    dispose: () => {
      x.dispose();
      w.dispose();
    },
  };
}

/**
 * Largest gradient difference between the modes, relative to the largest gradient of the step.
 * (Per-variable scaling would divide rounding noise by rounding noise: the attention-logit bias
 * has an exactly zero gradient, since softmax over N ignores a shift of all N logits.)
 */
function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < a[i].length; j++) {
      worst = Math.max(worst, Math.abs(a[i][j] - b[i][j]));
      scale = Math.max(scale, Math.abs(b[i][j]));
    }
  }
  return worst / (scale || 1);
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const modes: MatMulGradMode[] = ['explicit', 'builtin'];
  const rows: (string | number)[][] = [];
  for (const make of [matMulWorkload, milWorkload]) {
    for (const n of [1000, 5000]) {
      const wl = make(n);
      const times: Record<string, number[]> = { explicit: [], builtin: [] };
      const grads: Record<string, Float32Array[]> = {};
      for (const mode of modes) {
        setMatMulGradMode(mode);
        grads[mode] = wl.step(); // warm-up, and the values for the parity check
      }
      const before = tf.memory().numTensors;
      for (let r = 0; r < REPS; r++) {
        // Alternate the order so that neither mode always runs second.
        for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
          setMatMulGradMode(mode);
          const t0 = performance.now();
          wl.step();
          times[mode].push(performance.now() - t0);
        }
      }
      setMatMulGradMode('auto');
      if (tf.memory().numTensors !== before) throw new Error(`${wl.name}: tensors leaked during the timed steps.`);
      const e = median(times.explicit);
      const b = median(times.builtin);
      const diff = maxRelDiff(grads.explicit, grads.builtin);
      rows.push([wl.name, n, e.toFixed(1), b.toFixed(1), (b / e).toFixed(2), diff.toExponential(1)]);
      console.log(`${wl.name}, N = ${n}: explicit ${e.toFixed(1)} ms, builtin ${b.toFixed(1)} ms, builtin / explicit = ${(b / e).toFixed(2)} (max grad diff / max grad ${diff.toExponential(1)})`);
      wl.dispose();
    }
  }
  const body =
    table(['workload', 'N', "explicit ms (median)", "builtin ms (median)", 'builtin / explicit', 'max grad diff / max grad'], rows) +
    `\n\nMedian of ${REPS} alternating repetitions after one warm-up each; each step includes reading the gradients back.` +
    " 'explicit' transposes and runs a plain matMul; 'builtin' is tfjs's gradient (transposed-operand matMuls)." +
    ' The last column compares the two modes\' gradients of every variable, relative to the largest gradient of the step.';
  writeResults('matmul-grad', 'matMul gradient on wasm: explicit transpose vs built-in', `npx tsx bench/matmul_grad.ts ${process.argv[2] ?? ''}`.trim(), backend, body);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
