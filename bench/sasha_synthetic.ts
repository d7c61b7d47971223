/**
 * SASHA on the synthetic feature benchmark, over several seeds: the table of the paper's
 * Table 1 and ablation. Per seed (a new cohort, split and training run):
 * - HAFED trained on every high-res patch (trainHafed), evaluated on V (HAFED-100%);
 * - f_S trained on its V (trainTsu);
 * - the zoom policy trained with PPO for f = 0.2 and for f = 0.1 (trainPolicy);
 * - on the test slides: SASHA-0.2 and SASHA-0.1 (learned policy, targeted update),
 *   random-0.2 (random zooming), top-attention-0.2 (HAFED attention on Z, ZoomMIL-like),
 *   global-0.2 (the 0.2 policy with the global update: every unvisited row rewritten).
 *
 * Run: `npx tsx bench/sasha_synthetic.ts [--preset small] [--slides 240] [--split 0.4,0.1,0.5] [--seeds 0,1,2] [--hafed-epochs 30] [--hafed-lr 2e-3]
 *   [--tsu-epochs 200] [--policy-epochs 15] [--lr 1e-4] [--no-record]`
 */
import { ActorCriticPolicy, RandomPolicy, TopAttentionPolicy, evaluateFullResolution, evaluateSasha, initBackend, meanStd, trainPolicy, trainSasha, type SashaEvaluation } from '../src/index.js';
import { table, writeResults } from './results.js';
import { SYNTHETIC_PRESETS, SyntheticDataset, type SyntheticPresetName } from '../src/wsi/synthetic/features.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const preset = arg('preset', 'small') as SyntheticPresetName;
// --slides and --split change the cohort's size and split. The recorded table uses
// --slides 240 --split 0.4,0.1,0.5 (96 training, 24 validation, 120 test slides per seed): with
// the small preset's own 36 training slides HAFED fails to learn on some seeds, and 17 test
// slides give too coarse an estimate to compare policies.
const numSlides = Number(arg('slides', String(SYNTHETIC_PRESETS[preset].numSlides)));
const splitFractions = arg('split', SYNTHETIC_PRESETS[preset].splitFractions.join(',')).split(',').map(Number) as [number, number, number];
const cohort = { ...SYNTHETIC_PRESETS[preset], numSlides, splitFractions };
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const hafedEpochs = Number(arg('hafed-epochs', '30'));
// Peak lr of HAFED: 2e-3 on the synthetic features (the reference's 4.14e-4 leaves HAFED
// under-trained in 30 epochs on the small cohorts; see the HAFED accuracy section of RESULTS.md).
const hafedLr = Number(arg('hafed-lr', '2e-3'));
const tsuEpochs = Number(arg('tsu-epochs', '200'));
const policyEpochs = Number(arg('policy-epochs', '15'));
const lr = Number(arg('lr', '1e-4'));
const record = !process.argv.includes('--no-record');

const METHODS = ['HAFED-100%', 'SASHA-0.2', 'SASHA-0.1', 'random-0.2', 'top-attention-0.2', 'global-0.2'] as const;
type Method = (typeof METHODS)[number];

async function runSeed(seed: number, log: (m: string) => void): Promise<Record<Method, SashaEvaluation>> {
  const dataset = new SyntheticDataset({ ...cohort, seed });
  const { split } = dataset;
  const t0 = performance.now();
  const ppo = { actorLearningRate: lr, criticLearningRate: lr };
  const { model, withV } = await trainSasha({
    dataset,
    split,
    seed,
    config: { hafedTrain: { epochs: hafedEpochs, lr: hafedLr }, tsu: { epochs: tsuEpochs }, env: { budget: 0.2 }, ppo, policyEpochs },
    log,
  });
  log(`seed ${seed}: HAFED, f_S and the 0.2 policy trained in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const classifier = model.hafed!;
  const fS = model.fS;
  const p01 = await trainPolicy({ classifier, fS, dataset: withV, split, env: { budget: 0.1 }, ppo, epochs: policyEpochs, seed });
  log(`seed ${seed}: the 0.1 policy trained (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const ids = split.test;
  const at = (budget: number, update: 'tsu' | 'global' = 'tsu') => ({ ...model.env, budget, update });
  const out: Record<Method, SashaEvaluation> = {
    'HAFED-100%': await evaluateFullResolution({ classifier, dataset: withV, ids }),
    'SASHA-0.2': await evaluateSasha({ classifier, fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: at(0.2) }),
    'SASHA-0.1': await evaluateSasha({ classifier, fS, policy: new ActorCriticPolicy(p01.model), dataset: withV, ids, env: at(0.1) }),
    'random-0.2': await evaluateSasha({ classifier, fS, policy: new RandomPolicy({ seed }), dataset: withV, ids, env: at(0.2) }),
    'top-attention-0.2': await evaluateSasha({ classifier, fS, policy: new TopAttentionPolicy(classifier), dataset: withV, ids, env: at(0.2) }),
    'global-0.2': await evaluateSasha({ classifier, fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: at(0.2, 'global') }),
  };
  log(
    `seed ${seed}: ` +
      METHODS.map((m) => `${m} acc ${out[m].metrics.accuracy.toFixed(3)} auc ${out[m].metrics.auc.toFixed(3)}`).join('; ') +
      ` (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  p01.model.dispose();
  model.dispose();
  return out;
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const log = (m: string) => console.error(m);
  const t0 = performance.now();
  const results: Record<Method, SashaEvaluation>[] = [];
  for (const seed of seeds) results.push(await runSeed(seed, log));
  const fmt = (xs: number[]) => {
    const { mean, std } = meanStd(xs);
    return `${mean.toFixed(3)} +- ${std.toFixed(3)}`;
  };
  const hafedAcc = meanStd(results.map((r) => r['HAFED-100%'].metrics.accuracy)).mean;
  const rows = METHODS.map((m) => {
    const acc = results.map((r) => r[m].metrics.accuracy);
    return [
      m,
      fmt(acc),
      fmt(results.map((r) => r[m].metrics.auc)),
      fmt(results.map((r) => r[m].metrics.f1)),
      (meanStd(acc).mean / hafedAcc).toFixed(3),
      acc.map((a) => a.toFixed(3)).join(' / '),
    ];
  });
  const body = [
    `Synthetic cohort \`${preset}\` with ${numSlides} slides per seed (N ${cohort.minPatches}-${cohort.maxPatches}, d ${cohort.dim}, k ${cohort.k}), split ${splitFractions.join(' / ')}: ` +
      `${results[0]['HAFED-100%'].metrics.n} test slides per seed; seeds ${seeds.join(', ')} (each seed draws its own cohort and split and trains everything).`,
    `HAFED ${hafedEpochs} epochs with peak lr ${hafedLr}; f_S ${tsuEpochs} epochs; PPO ${policyEpochs} epochs over the training slides with lr ${lr} (actor and critic), otherwise the reference's settings (CAMELYON16 column); tau 0.95, each row rewritten at most once.`,
    'Mean +- std over seeds; "x HAFED" is the mean accuracy over the mean HAFED-100% accuracy.',
    '',
    table(['method', 'accuracy', 'AUC', 'F1', 'x HAFED', 'accuracy per seed'], rows),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min.`,
  ].join('\n');
  console.log(body);
  const cmd = `npx tsx bench/sasha_synthetic.ts --preset ${preset} --slides ${numSlides} --split ${splitFractions.join(',')} --seeds ${seeds.join(',')} --hafed-epochs ${hafedEpochs} --hafed-lr ${hafedLr} --tsu-epochs ${tsuEpochs} --policy-epochs ${policyEpochs} --lr ${lr}`;
  if (record) writeResults('sasha-synthetic', 'SASHA on the synthetic benchmark (Table 1 and ablation)', cmd, backend, body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
