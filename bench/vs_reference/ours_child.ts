/**
 * One measurement of sasha-wsi, the counterpart of `reference_child.py`: the same task on the
 * same inputs and the same initial weights (written by `run.py`), in a process of its own so
 * that its peak RSS is its own. Prints one JSON line.
 *
 * Tasks:
 * - `gemm`: HAFED stage 1's two matrix products at N patches (R = N k rows), the gate
 *   pre-activations [R, d] x [d, 2 D] and the kernel gradient [d, R] x [R, 2 D] (as our training
 *   step forms it: the transpose of U, then the product), on the backend's own matMul;
 * - `hafed-train`: {@link hafedTrainStep} (with `--native`: `hafedTrainStepSharded` with stage 1 on
 *   `createNativeStage1`, ONNX Runtime's CPU kernels at one thread) (forward in training mode, the losses, gradients, one
 *   AdamW step), the learning rate set from the half-cosine schedule as `trainHafed` does;
 * - `hafed-infer`: `Hafed.predict` (stage 1 and stage 2, evaluation mode) and the probabilities;
 * - `episode`: a new `WsiEnv`, a greedy episode of the actor (`playEpisode`, argmax) and the final
 *   prediction;
 * - `ppo`: `runPpoUpdate` on the episodes written by `prepare-episodes` (old values, GAE, 4
 *   epochs of both networks, clipping, AdamW);
 * - `prepare-episodes`: not timed; samples two episodes of the actor on `WsiEnv` and writes them
 *   (actions, log-probabilities, rewards, changed rows and values) for both implementations.
 *
 * Run by `run.py`: `npx tsx bench/vs_reference/ours_child.ts TASK --work DIR --n N [--reps K]`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AdamW, createRng, halfCosineLr, initBackend, tf } from '../../src/core/index.js';
import { Hafed, hafedTrainStep, hafedTrainStepSharded, predictHafedSharded } from '../../src/hafed/index.js';
import { createHafedWorkerPool, createNativeStage1, loadNodeOnnxRuntime } from '../../src/node/index.js';
import { WsiEnv } from '../../src/mdp/index.js';
import { StateMlp } from '../../src/tsu/index.js';
import { ActorCritic, ActorCriticPolicy, RolloutBuffer, playEpisode, resolvePpoConfig, runPpoUpdate } from '../../src/ppo/index.js';

const { positionals, values: opts } = parseArgs({
  allowPositionals: true,
  options: {
    work: { type: 'string' },
    n: { type: 'string' },
    reps: { type: 'string', default: '1' },
    workers: { type: 'string', default: '0' },
    native: { type: 'boolean', default: false },
  },
});
const task = positionals[0];
const work = opts.work as string;
const n = Number(opts.n);
const reps = Number(opts.reps);
const workerCount = Number(opts.workers);

interface Shared {
  dim: number;
  k: number;
  frac: number;
  tau: number;
  seed: number;
}
const shared = JSON.parse(readFileSync(join(work, 'shared.json'), 'utf8')) as Shared;
const d = shared.dim;

/** A float32 array written by run.py (`NAME.bin` + `NAME.json` with its shape). */
function readArray(name: string): { data: Float32Array; shape: number[] } {
  const { shape } = JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8')) as { shape: number[] };
  const buf = readFileSync(join(work, `${name}.bin`));
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { data, shape };
}

/** A PyTorch Linear weight [out, in] as our kernel [in, out]. */
function kernel(name: string): tf.Tensor2D {
  const { data, shape } = readArray(`weights/${name}`);
  return tf.tidy(() => tf.transpose(tf.tensor2d(data, shape as [number, number])));
}
function vector(name: string): tf.Tensor {
  const { data, shape } = readArray(`weights/${name}`);
  return tf.tensor(data, shape);
}

/** HAFED with the official module's initial weights (`architecture/transformer.py::HAFED`). */
function loadHafed(): Hafed {
  const hafed = new Hafed({ dim: d, k: shared.k });
  const w: tf.NamedTensorMap = {};
  for (const [ours, theirs] of [
    ['stage1/attention', 'hafed.attention_1'],
    ['stage2/attention', 'hafed.attention_2'],
  ]) {
    w[`${ours}/kernelV`] = kernel(`${theirs}.attention_V.0.weight`);
    w[`${ours}/biasV`] = vector(`${theirs}.attention_V.0.bias`);
    w[`${ours}/kernelU`] = kernel(`${theirs}.attention_U.0.weight`);
    w[`${ours}/biasU`] = vector(`${theirs}.attention_U.0.bias`);
    w[`${ours}/kernelW`] = kernel(`${theirs}.attention_weights.weight`);
    w[`${ours}/biasW`] = vector(`${theirs}.attention_weights.bias`);
  }
  const m = hafed.numBranches;
  const branchKernels: tf.Tensor[] = [];
  const branchBiases: tf.Tensor[] = [];
  for (let b = 0; b < m; b++) {
    branchKernels.push(kernel(`hafed.classifier.${b}.fc.weight`));
    branchBiases.push(vector(`hafed.classifier.${b}.fc.bias`));
  }
  w['stage2/branchKernel'] = tf.stack(branchKernels);
  w['stage2/branchBias'] = tf.stack(branchBiases);
  w['stage2/slideKernel'] = kernel('hafed.Slide_classifier.fc.weight');
  w['stage2/slideBias'] = vector('hafed.Slide_classifier.fc.bias');
  hafed.setWeights(w);
  tf.dispose([...Object.values(w), ...branchKernels, ...branchBiases]);
  return hafed;
}

/** f_S with the official `FGlobal`'s initial weights. */
function loadStateMlp(): StateMlp {
  const fS = new StateMlp({ dim: d });
  const dict: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const key of ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias', 'layer_norm.weight', 'layer_norm.bias']) {
    dict[key] = readArray(`weights/fglobal.${key}`);
  }
  fS.setTorchStateDict(dict);
  return fS;
}

/** Actor and critic with the official `Agent`'s initial weights (`rl_algorithms/ppo.py`). */
function loadActorCritic(): ActorCritic {
  const ac = new ActorCritic({ dim: d });
  const w: tf.NamedTensorMap = {};
  for (const net of ['actor', 'critic']) {
    w[`${net}/attention_v/kernel`] = kernel(`agent.${net}.attention.attention_V.0.weight`);
    w[`${net}/attention_v/bias`] = vector(`agent.${net}.attention.attention_V.0.bias`);
    w[`${net}/attention_u/kernel`] = kernel(`agent.${net}.attention.attention_U.0.weight`);
    w[`${net}/attention_u/bias`] = vector(`agent.${net}.attention.attention_U.0.bias`);
    w[`${net}/attention_weights/kernel`] = kernel(`agent.${net}.attention.attention_weights.weight`);
    w[`${net}/attention_weights/bias`] = vector(`agent.${net}.attention.attention_weights.bias`);
  }
  w['critic/value_fc/kernel'] = kernel('agent.critic.final_layer.fc.weight');
  w['critic/value_fc/bias'] = vector('agent.critic.final_layer.fc.bias');
  ac.setWeights(w);
  tf.dispose(Object.values(w));
  return ac;
}

function cpuSeconds(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

interface Out {
  task: string;
  n: number;
  seconds: number[];
  cpuSeconds: number[];
  [key: string]: unknown;
}

async function timed(out: Out, fn: () => unknown | Promise<unknown>): Promise<unknown> {
  let value: unknown;
  for (let r = 0; r < reps; r++) {
    const c0 = cpuSeconds();
    const t0 = performance.now();
    value = await fn();
    out.seconds.push((performance.now() - t0) / 1000);
    out.cpuSeconds.push(cpuSeconds() - c0);
  }
  return value;
}

/** The env of a slide: Z and V of size `tag`, the label 1, f = 0.2, tau = 0.95, rows rewritten once. */
function makeEnv(hafed: Hafed, fS: StateMlp, z: Float32Array, v: Float32Array, rows: number): WsiEnv {
  const zt = tf.tensor2d(z, [rows, d]);
  const vt = tf.tensor2d(v, [rows, d]);
  try {
    return new WsiEnv({ classifier: hafed, fS, lowRes: zt, aggregated: vt, label: 1, config: { budget: shared.frac, tau: shared.tau, rewriteOnce: true } });
  } finally {
    tf.dispose([zt, vt]);
  }
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const out: Out = { task, n, backend, seconds: [], cpuSeconds: [] };

  if (task === 'gemm') {
    const rows = n * shared.k;
    const rng = createRng(shared.seed);
    const random = (r: number, c: number) => Float32Array.from({ length: r * c }, () => rng.normal());
    const xData = random(rows, d);
    const wData = random(d, 256);
    const gData = random(rows, 256);
    out.flops = 2 * 2 * rows * d * 256;
    if (opts.native) {
      // the same products on ONNX Runtime's CPU kernels at one thread (graphs written by run.py)
      const ort = await loadNodeOnnxRuntime();
      const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
      const open = (name: string) => ort.InferenceSession.create(new Uint8Array(readFileSync(join(work, `${name}.onnx`))), sessionOptions);
      const [forward, kernelGrad] = await Promise.all([open('gemm_forward'), open('gemm_kernel_grad')]);
      const x = new ort.Tensor('float32', xData, [rows, d]);
      const w = new ort.Tensor('float32', wData, [d, 256]);
      const g = new ort.Tensor('float32', gData, [rows, 256]);
      const products = async () => {
        const y = (await forward.run({ x, w })).y.data as Float32Array;
        const dw = (await kernelGrad.run({ x, g })).dw.data as Float32Array;
        return y[0] + dw[0];
      };
      await products();
      await timed(out, products);
      await Promise.all([forward.release(), kernelGrad.release()]);
    } else {
      const x = tf.tensor2d(xData, [rows, d]);
      const w = tf.tensor2d(wData, [d, 256]);
      const g = tf.tensor2d(gData, [rows, 256]);
      const products = () =>
        tf.tidy(() => {
          const y = tf.matMul(x, w);
          const dw = tf.matMul(tf.transpose(x) as tf.Tensor2D, g);
          return y.dataSync()[0] + dw.dataSync()[0];
        });
      products();
      await timed(out, products);
      tf.dispose([x, w, g]);
    }
  } else if (task === 'hafed-train' || task === 'hafed-infer') {
    const hafed = loadHafed();
    // with --workers, stage 1 is split over this thread and the worker threads; with --native,
    // stage 1 runs on ONNX Runtime's kernels (one thread)
    const pool = opts.native ? await createNativeStage1({ threads: 1 }) : workerCount > 0 ? await createHafedWorkerPool(workerCount) : null;
    out.threads = workerCount + 1;
    const u = readArray(`u_${n}`);
    const warm = readArray('u_warmup');
    const tensorOf = (a: { data: Float32Array; shape: number[] }) => tf.tensor3d(a.data, a.shape as [number, number, number]);
    if (task === 'hafed-train') {
      // trainHafed's defaults: AdamW lr 4.14e-4, wd 1e-5, half cosine over 50 epochs
      const optimizer = new AdamW({ learningRate: 4.14e-4, weightDecay: 1e-5 });
      const rng = createRng(shared.seed);
      const vars = hafed.trainableVariables();
      let stepCount = 0;
      const step = async (a: { data: Float32Array; shape: number[] }) => {
        optimizer.learningRate = halfCosineLr(stepCount++ / 100, { lr: 4.14e-4, epochs: 50 });
        const x = tensorOf(a);
        try {
          const r = pool ? await hafedTrainStepSharded(hafed, optimizer, x, 1, rng, pool) : hafedTrainStep(hafed, optimizer, x, 1, rng, vars);
          return [r.branchLoss, r.similarityLoss, r.slideLoss];
        } finally {
          x.dispose();
        }
      };
      await step(warm);
      out.check = await timed(out, () => step(u));
    } else {
      const infer = async (a: { data: Float32Array; shape: number[] }) => {
        const x = tensorOf(a);
        const p = pool ? await predictHafedSharded(hafed, x, pool) : hafed.predict(x);
        const probs = Array.from(p.probs.dataSync());
        tf.dispose([x, p.logits, p.probs, p.attention]);
        return probs;
      };
      await infer(warm);
      out.check = await timed(out, () => infer(u));
    }
    await pool?.close();
  } else if (task === 'episode') {
    const hafed = loadHafed();
    const fS = loadStateMlp();
    const ac = loadActorCritic();
    const episode = (z: Float32Array, v: Float32Array, rows: number) => {
      const env = makeEnv(hafed, fS, z, v, rows);
      const policy = new ActorCriticPolicy(ac);
      const r = playEpisode(env, policy, { mode: 'argmax' });
      env.close();
      policy.dispose();
      return { actions: r.actions, probs: Array.from(r.last.info.probs) };
    };
    // warm-up: one episode on a slide of min(N, 1000) patches (the same for both implementations)
    const warmTag = existsSync(join(work, `z_${Math.min(n, 1000)}.bin`)) ? String(Math.min(n, 1000)) : 'warmup';
    const wz = readArray(`z_${warmTag}`);
    const wv = readArray(`v_${warmTag}`);
    episode(wz.data, wv.data, wz.shape[0]);
    const z = readArray(`z_${n}`);
    const v = readArray(`v_${n}`);
    const r = (await timed(out, () => episode(z.data, v.data, n))) as { actions: number[]; probs: number[] };
    out.actions = r.actions;
    out.check = r.probs;
  } else if (task === 'prepare-episodes') {
    // Two sampled episodes of the actor (the reference's num_envs = 2 on one slide).
    const hafed = loadHafed();
    const fS = loadStateMlp();
    const ac = loadActorCritic();
    const tag = opts.n as string;
    const z = readArray(`z_${tag}`);
    const v = readArray(`v_${tag}`);
    const rows = z.shape[0];
    const env = makeEnv(hafed, fS, z.data, v.data, rows);
    const policy = new ActorCriticPolicy(ac);
    const rng = createRng(shared.seed + rows);
    const episodes: { actions: number[]; logProbs: number[]; rewards: number[]; changedRows: number[][] }[] = [];
    const values: Float32Array[] = [];
    for (let e = 0; e < 2; e++) {
      let { observation } = env.reset({ seed: e });
      policy.startEpisode(observation);
      const ep = { actions: [] as number[], logProbs: [] as number[], rewards: [] as number[], changedRows: [] as number[][] };
      for (;;) {
        const choice = policy.selectAction(observation, { mode: 'sample', rng });
        const r = env.step(choice.action);
        policy.observeStep(r.info);
        ep.actions.push(choice.action);
        ep.logProbs.push(choice.logProb);
        ep.rewards.push(r.reward);
        ep.changedRows.push(Array.from(r.info.changedRows));
        values.push(r.info.changedValues.slice());
        if (r.terminated || r.truncated) break;
        observation = r.observation;
      }
      episodes.push(ep);
    }
    const total = values.reduce((s, a) => s + a.length, 0);
    const flat = new Float32Array(total);
    let off = 0;
    for (const a of values) {
      flat.set(a, off);
      off += a.length;
    }
    writeFileSync(join(work, `episodes_${tag}.bin`), Buffer.from(flat.buffer));
    writeFileSync(join(work, `episodes_${tag}.json`), JSON.stringify({ episodes }));
    out.samples = episodes.reduce((s, e) => s + e.actions.length, 0);
    out.changedRows = episodes.reduce((s, e) => s + e.changedRows.reduce((a, r) => a + r.length, 0), 0);
  } else if (task === 'ppo') {
    const config = resolvePpoConfig({}); // the reference's CAMELYON16 settings, event-sourced update
    const tableOf = (tag: string) => {
      const z = readArray(`z_${tag}`);
      const rows = z.shape[0];
      const meta = JSON.parse(readFileSync(join(work, `episodes_${tag}.json`), 'utf8')) as {
        episodes: { actions: number[]; logProbs: number[]; rewards: number[]; changedRows: number[][] }[];
      };
      const buf = readFileSync(join(work, `episodes_${tag}.bin`));
      const values = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      const buffer = new RolloutBuffer();
      let off = 0;
      for (const ep of meta.episodes) {
        const T = ep.actions.length;
        const mask = new Uint8Array(rows).fill(1);
        buffer.startEpisode({ numPatches: rows, dim: d, t: 0, budget: T, actionMask: mask, state: z.data });
        for (let t = 0; t < T; t++) {
          const changedRows = Int32Array.from(ep.changedRows[t]);
          const changedValues = values.subarray(off, off + changedRows.length * d);
          off += changedRows.length * d;
          buffer.recordStep({ actionMask: mask.slice(), action: ep.actions[t], logProb: ep.logProbs[t], reward: ep.rewards[t], changes: { changedRows, changedValues } });
          mask[ep.actions[t]] = 0;
        }
        buffer.finishEpisode({ terminated: true, truncated: false });
      }
      return buffer.versionTable();
    };
    const update = async (table: ReturnType<typeof tableOf>, times?: Out) => {
      // every repetition starts from the shared initial weights and fresh optimisers (not timed)
      const model = loadActorCritic();
      const actorOptimizer = new AdamW({ learningRate: config.actorLearningRate, weightDecay: config.weightDecay });
      const criticOptimizer = new AdamW({ learningRate: config.criticLearningRate, weightDecay: config.weightDecay });
      try {
        const c0 = cpuSeconds();
        const t0 = performance.now();
        const { batch } = await runPpoUpdate({ model, actorOptimizer, criticOptimizer, table, config });
        times?.seconds.push((performance.now() - t0) / 1000);
        times?.cpuSeconds.push(cpuSeconds() - c0);
        return Array.from(batch.oldValues);
      } finally {
        model.dispose();
        actorOptimizer.dispose();
        criticOptimizer.dispose();
      }
    };
    await update(tableOf('warmup'));
    const table = tableOf(String(n));
    out.numSamples = table.numSamples;
    out.numVersions = table.numVersions;
    for (let r = 0; r < reps; r++) out.oldValues = await update(table, out);
  } else {
    throw new Error(`Unknown task '${task}'. Tasks: hafed-train, hafed-infer, episode, prepare-episodes, ppo.`);
  }
  out.maxRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
