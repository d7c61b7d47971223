/**
 * Policy lab: trains HAFED and f_S once per cohort (cached), then any number of zoom-policy
 * variants on the same frozen models, and scores each on the test slides next to the
 * baselines (random, top-attention, greedy attention): accuracy, AUC, final CE, and where the
 * policy zoomed (share of tumour patches visited, share of positive slides with one visited).
 *
 * Run: `nice -n 10 npx tsx bench/policy_lab.ts --data synthetic|digits [--dir DIR] [--seed 0]
 *   [--budget 0.2] [--variants a,b] [--out results.jsonl]`
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ActorCriticPolicy,
  RandomPolicy,
  TopAttentionPolicy,
  GreedyAttentionPolicy,
  evaluateFullResolution,
  evaluateSasha,
  initBackend,
  trainPolicy,
  trainSasha,
  type SashaEvaluation,
  type SlideDataset,
  type SlideSplit,
  type TrainPolicyOptions,
  type ZoomPolicy,
} from '../src/index.js';
import { SYNTHETIC_PRESETS, SyntheticDataset, digitTruthAt } from '../src/wsi/synthetic/index.js';
import { H5FeatureDataset, fileCheckpointStore, readDigitTruth, readSplitFile } from '../src/node/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const data = arg('data', 'synthetic');
const seed = Number(arg('seed', '0'));
const budget = Number(arg('budget', '0.2'));
const dir = resolve(arg('dir', `bench/out/lab/${data}-${seed}`));
const out = resolve(arg('out', join(dir, 'results.jsonl')));
const variantNames = arg('variants', '').split(',').filter(Boolean);
const log = (m: string) => process.stderr.write(`[lab ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

type Variant = Omit<Partial<TrainPolicyOptions>, 'classifier' | 'fS' | 'dataset' | 'split'>;
const lr = (x: number) => ({ actorLearningRate: x, criticLearningRate: x });
/** Several slides per update in minibatches, returns on one scale, a time-scaled critic. */
const batched = { numEnvsPerUpdate: 8, numMinibatches: 2, rewardScale: 'budget' as const, criticTimeScale: true };
/** The actor reads the M attention logits and starts from the attention prior. */
const prior = (M: number) => ({ numScores: M, attentionPrior: 1 });
const VARIANTS: Record<string, (M: number) => Variant> = {
  reference: () => ({ recipe: 'reference' }),
  default: () => ({}),
  lr1e4: () => ({ epochs: 15, ppo: lr(1e-4) }),
  lr3e4: () => ({ epochs: 30, ppo: { ...lr(3e-4), annealLr: true } }),
  batch8: () => ({ epochs: 30, ppo: { ...lr(3e-4), annealLr: true, numEnvsPerUpdate: 8, numMinibatches: 2 } }),
  prior: (M) => ({ epochs: 30, ppo: { ...lr(3e-4), annealLr: true }, policy: prior(M) }),
  priorBatch8: (M) => ({ epochs: 30, ppo: { ...lr(3e-4), annealLr: true, numEnvsPerUpdate: 8, numMinibatches: 2 }, policy: prior(M) }),
  full: (M) => ({
    epochs: 30,
    ppo: { ...lr(3e-4), annealLr: true, ...batched },
    policy: prior(M),
  }),
  fullNoPrior: () => ({
    epochs: 30,
    ppo: { ...lr(3e-4), annealLr: true, ...batched },
  }),
  bcLookOnly: (M) => ({
    epochs: 1,
    imitation: { teacher: 'lookahead', epochs: 10 },
    ppo: { ...lr(3e-4), ...batched },
    policy: prior(M),
  }),
  bcLookFull: (M) => ({
    epochs: 30,
    imitation: { teacher: 'lookahead', epochs: 10 },
    ppo: { ...lr(3e-4), annealLr: true, ...batched },
    policy: prior(M),
  }),
  full1e3: (M) => ({
    epochs: 30,
    ppo: { ...lr(1e-3), annealLr: true, ...batched },
    policy: prior(M),
  }),
  full1e3mb8: (M) => ({
    epochs: 30,
    ppo: { ...lr(1e-3), annealLr: true, ...batched, numMinibatches: 8 },
    policy: prior(M),
  }),
  bcLook1e3: (M) => ({
    epochs: 30,
    imitation: { teacher: 'lookahead', epochs: 5 },
    ppo: { ...lr(1e-3), annealLr: true, ...batched },
    policy: prior(M),
  }),
  bcOnly: (M) => ({
    epochs: 0,
    imitation: { teacher: 'lookahead', epochs: 8 },
    ppo: { ...lr(1e-3), ...batched },
    policy: prior(M),
  }),
  bcGreedyFull: (M) => ({
    epochs: 20,
    imitation: { teacher: 'greedy-attention', epochs: 4 },
    ppo: { ...lr(1e-3), annealLr: true, ...batched },
    policy: prior(M),
  }),
  feat: (M) => ({ epochs: 30, ppo: { ...lr(3e-4), annealLr: true }, policy: { numScores: M, attentionPrior: 0 } }),
};

interface Truth {
  /** Per slide id: indices of tumour patches. */
  tumourPatches(id: string): Promise<Set<number>>;
}

async function openData(): Promise<{ dataset: SlideDataset; split: SlideSplit; truth: Truth; close(): void }> {
  if (data === 'synthetic') {
    const preset = arg('preset', 'small') as keyof typeof SYNTHETIC_PRESETS;
    const numSlides = Number(arg('slides', '240'));
    const splitFractions = arg('split', '0.4,0.1,0.5').split(',').map(Number) as [number, number, number];
    const ds = new SyntheticDataset({ ...SYNTHETIC_PRESETS[preset], numSlides, splitFractions, seed });
    const tumour = ds.config.numTissueTypes + 1;
    return {
      dataset: ds,
      split: ds.split,
      truth: {
        tumourPatches: async (id) => {
          const s = ds.slide(id);
          const set = new Set<number>();
          for (let i = 0; i < s.n; i++) for (let j = 0; j < s.k; j++) if (s.truth.subPatchClass[i * s.k + j] === tumour) set.add(i);
          return set;
        },
      },
      close: () => {},
    };
  }
  const cohort = resolve(arg('cohort', 'bench/out/digits'));
  const ds = await H5FeatureDataset.open({ lrH5: join(cohort, 'features', 'lr.h5'), hrH5: join(cohort, 'features', 'hr.h5') });
  const split = readSplitFile(join(cohort, 'cohort', 'split.json'), ds);
  return {
    dataset: ds,
    split,
    truth: {
      tumourPatches: async (id) => {
        const truth = readDigitTruth(join(cohort, 'cohort', 'truth', `${id}.json`));
        const bag = await ds.load(id, ['coords']);
        const per = digitTruthAt(truth, bag.coords!, truth.cellSize * truth.ratio);
        const set = new Set<number>();
        per.tumour.forEach((v, i) => v > 0 && set.add(i));
        return set;
      },
    },
    close: () => ds.close(),
  };
}

async function zoomStats(ev: SashaEvaluation, truth: Truth) {
  let found = 0;
  let total = 0;
  let hit = 0;
  let pos = 0;
  for (const s of ev.slides) {
    if (s.label !== 1) continue;
    const t = await truth.tumourPatches(s.id);
    if (t.size === 0) continue;
    pos++;
    const f = s.actions.filter((a) => t.has(a)).length;
    found += f;
    total += t.size;
    if (f > 0) hit++;
  }
  return { patchRecall: found / Math.max(1, total), slideHit: hit / Math.max(1, pos) };
}

async function main() {
  await initBackend();
  mkdirSync(dir, { recursive: true });
  const { dataset, split, truth, close } = await openData();
  log(`cohort ${data} seed ${seed}: ${split.train.length} / ${split.val.length} / ${split.test.length}`);
  const store = fileCheckpointStore(join(dir, 'models'));
  const t0 = performance.now();
  const { model, withV } = await trainSasha({
    dataset,
    split,
    seed,
    store,
    resume: true,
    until: 'tsu',
    config: { hafedTrain: { epochs: Number(arg('hafed-epochs', '30')), lr: Number(arg('hafed-lr', '2e-3')) }, tsu: { epochs: Number(arg('tsu-epochs', '200')) } },
    log,
  });
  log(`HAFED + f_S ready in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const hafed = model.hafed!;
  const fS = model.fS!;
  const env = { budget };
  const record = async (name: string, ev: SashaEvaluation, extra: Record<string, unknown> = {}) => {
    const z = ev.slides[0]?.actions.length ? await zoomStats(ev, truth) : { patchRecall: NaN, slideHit: NaN };
    const row = {
      data,
      seed,
      budget,
      name,
      accuracy: ev.metrics.accuracy,
      auc: ev.metrics.auc,
      ce: ev.meanCrossEntropy,
      ...z,
      correct: ev.slides.map((s) => (s.probs.indexOf(Math.max(...s.probs)) === s.label ? 1 : 0)).join(''),
      ...extra,
    };
    appendFileSync(out, JSON.stringify(row) + '\n');
    log(`${name}: acc ${row.accuracy.toFixed(3)} auc ${row.auc.toFixed(3)} ce ${row.ce.toFixed(3)} recall ${z.patchRecall.toFixed(3)} hit ${z.slideHit.toFixed(3)}`);
  };
  const evalPolicy = (policy: ZoomPolicy, ids = split.test) => evaluateSasha({ classifier: hafed, fS, policy, dataset: withV, ids, env, seed: 99 });
  if (process.argv.includes('--baselines')) {
    await record('HAFED-100%', await evaluateFullResolution({ classifier: hafed, dataset: withV, ids: split.test }));
    await record('random', await evalPolicy(new RandomPolicy({ seed })));
    await record('top-attention', await evalPolicy(new TopAttentionPolicy(hafed)));
    await record('greedy-attention', await evalPolicy(new GreedyAttentionPolicy(hafed)));
  }
  for (const name of variantNames) {
    const v = VARIANTS[name]?.(hafed.numBranches);
    if (!v) throw new Error(`unknown variant ${name}: ${Object.keys(VARIANTS).join(', ')}`);
    if (arg('epochs', '') && v.epochs) v.epochs = Number(arg('epochs', ''));
    if (arg('imitation-epochs', '') && v.imitation) v.imitation = { ...v.imitation, epochs: Number(arg('imitation-epochs', '')) };
    const t1 = performance.now();
    const trained = await trainPolicy({
      classifier: hafed,
      fS,
      dataset: withV,
      split,
      env,
      seed,
      ...v,
      onEpochEnd: (l) => log(`${name} ${l.phase} epoch ${l.epoch}: return ${l.meanReturn.toFixed(2)} val acc ${l.val?.accuracy.toFixed(3)} score ${l.val?.score.toFixed(3)} (${l.seconds.toFixed(0)} s)`),
    });
    const seconds = (performance.now() - t1) / 1000;
    const ev = await evalPolicy(new ActorCriticPolicy(trained.model));
    await record(name, ev, { bestEpoch: trained.bestEpoch, trainSeconds: seconds, valAcc: trained.history.map((h) => h.val?.accuracy) });
    trained.model.dispose();
  }
  model.dispose();
  close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
