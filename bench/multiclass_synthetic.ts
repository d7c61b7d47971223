/**
 * SASHA on three classes: the `multiclass` synthetic preset (normal, and two lesion types that
 * share one low-resolution signature and differ only at high resolution). Per seed (a new
 * cohort, split and training run): HAFED, f_S and the 0.2 policy (trainSasha), then on the test
 * slides HAFED-100%, SASHA-0.2, random-0.2, top-attention-0.2, and HAFED stage 2 on Z alone.
 * Reported: accuracy, balanced accuracy, macro one-vs-rest AUC and the AUC of each class, macro
 * F1, with 95 % bootstrap intervals over seeds, the confusion matrix summed over seeds, and
 * SASHA-0.2 against each row on the same slides (McNemar exact; paired bootstrap of the macro AUC).
 *
 * Run: `nice -n 10 npx tsx bench/multiclass_synthetic.ts [--slides 180] [--split 0.4,0.1,0.5]
 *   [--seeds 0,1,2] [--hafed-epochs 30] [--hafed-lr 2e-3] [--tsu-epochs 200] [--policy-epochs 8]
 *   [--lr 1e-4] [--no-record]`
 */
import {
  ActorCriticPolicy,
  RandomPolicy,
  TopAttentionPolicy,
  bootstrapInterval,
  comparePredictions,
  evaluateFullResolution,
  evaluateHafed,
  evaluateSasha,
  initBackend,
  subsetDataset,
  summarizeEvaluation,
  trainHafed,
  trainSasha,
  type SashaEvaluation,
} from '../src/index.js';
import { SYNTHETIC_PRESETS, SyntheticDataset } from '../src/wsi/synthetic/index.js';
import { table, writeResults } from './results.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const preset = SYNTHETIC_PRESETS.multiclass;
const numSlides = Number(arg('slides', '180'));
const splitFractions = arg('split', '0.4,0.1,0.5').split(',').map(Number) as [number, number, number];
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const hafedEpochs = Number(arg('hafed-epochs', '30'));
const hafedLr = Number(arg('hafed-lr', '2e-3'));
const tsuEpochs = Number(arg('tsu-epochs', '200'));
const policyEpochs = Number(arg('policy-epochs', '8'));
const lr = Number(arg('lr', '1e-4'));
const record = !process.argv.includes('--no-record');

const ROWS = ['HAFED-100%', 'SASHA-0.2', 'random-0.2', 'top-attention-0.2', 'Z only (no zoom)'] as const;
type Row = (typeof ROWS)[number];

async function runSeed(seed: number, log: (m: string) => void): Promise<Record<Row, SashaEvaluation>> {
  const dataset = new SyntheticDataset({ ...preset, numSlides, splitFractions, seed });
  const { split } = dataset;
  const t0 = performance.now();
  const { model, withV } = await trainSasha({
    dataset,
    split,
    seed,
    config: { hafedTrain: { epochs: hafedEpochs, lr: hafedLr }, tsu: { epochs: tsuEpochs }, env: { budget: 0.2 }, ppo: { actorLearningRate: lr, criticLearningRate: lr }, policyEpochs },
    log,
  });
  const classifier = model.hafed!;
  const ids = split.test;
  const at = { ...model.env, budget: 0.2 };
  const out = {} as Record<Row, SashaEvaluation>;
  out['HAFED-100%'] = await evaluateFullResolution({ classifier, dataset: withV, ids });
  out['SASHA-0.2'] = await evaluateSasha({ classifier, fS: model.fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids, env: at });
  out['random-0.2'] = await evaluateSasha({ classifier, fS: model.fS, policy: new RandomPolicy({ seed }), dataset: withV, ids, env: at });
  out['top-attention-0.2'] = await evaluateSasha({ classifier, fS: model.fS, policy: new TopAttentionPolicy(classifier), dataset: withV, ids, env: at });
  model.dispose();
  const z = await trainHafed({
    train: subsetDataset(dataset, split.train),
    val: subsetDataset(dataset, split.val),
    model: { dim: dataset.dim, input: 'lowRes', numClasses: 3, seed },
    config: { epochs: hafedEpochs, lr: hafedLr },
    seed,
  });
  const t1 = performance.now();
  const { predictions } = await evaluateHafed(z.model, subsetDataset(dataset, ids));
  out['Z only (no zoom)'] = summarizeEvaluation(
    predictions.map((p) => ({ id: p.id, label: p.label, probs: p.probs, crossEntropy: -Math.log(Math.max(p.probs[p.label], 1e-30)), actions: [] })),
    t1,
  );
  z.model.dispose();
  log(`seed ${seed}: ` + ROWS.map((r) => `${r} ${out[r].metrics.accuracy.toFixed(3)}`).join(', ') + ` (${((performance.now() - t0) / 60000).toFixed(1)} min)`);
  return out;
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const log = (m: string) => process.stderr.write(`[multiclass ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const t0 = performance.now();
  const results: Record<Row, SashaEvaluation>[] = [];
  for (const seed of seeds) results.push(await runSeed(seed, log));
  const ci = (xs: number[]) => {
    const { estimate, low, high } = bootstrapInterval(xs, { seed: 1 });
    return `${estimate.toFixed(3)} [${low.toFixed(3)}, ${high.toFixed(3)}]`;
  };
  const metric = (r: Row, f: (e: SashaEvaluation) => number) => results.map((x) => f(x[r]));
  const rows = ROWS.map((r) => [
    r,
    ci(metric(r, (e) => e.metrics.accuracy)),
    ci(metric(r, (e) => e.metrics.balancedAccuracy)),
    ci(metric(r, (e) => e.metrics.auc)),
    [0, 1, 2].map((k) => (metric(r, (e) => e.metrics.perClassAuc[k]).reduce((a, b) => a + b, 0) / results.length).toFixed(3)).join(' / '),
    ci(metric(r, (e) => e.metrics.f1)),
  ]);
  // pooled over seeds, slide by slide
  const pooled = (r: Row) => results.flatMap((x) => x[r].slides);
  const base = pooled('SASHA-0.2');
  const labels = base.map((s) => s.label);
  const tests = ROWS.filter((r) => r !== 'SASHA-0.2').map((r) => {
    const c = comparePredictions(
      labels,
      base.map((s) => s.probs),
      pooled(r).map((s) => s.probs),
      { seed: 1 },
    );
    return [
      `SASHA-0.2 vs ${r}`,
      `${c.mcnemar.aOnly} / ${c.mcnemar.bOnly}`,
      c.mcnemar.pValue < 1e-4 ? c.mcnemar.pValue.toExponential(1) : c.mcnemar.pValue.toFixed(4),
      `${c.auc.difference >= 0 ? '+' : ''}${c.auc.difference.toFixed(3)} [${c.auc.low.toFixed(3)}, ${c.auc.high.toFixed(3)}]`,
      c.auc.pValue.toFixed(4),
    ];
  });
  const confusion = (r: Row) =>
    results
      .map((x) => x[r].metrics.confusion)
      .reduce((a, m) => a.map((row, i) => row.map((v, j) => v + m[i][j])))
      .map((row) => row.join(' '))
      .join(' / ');
  const n = results.reduce((a, x) => a + x['SASHA-0.2'].metrics.n, 0);
  const body = [
    `Cohort: the \`multiclass\` preset (normal, lesion type 1, lesion type 2; the two lesion types share their low-res signature and differ at high res) with ${numSlides} slides per seed ` +
      `(N ${preset.minPatches}-${preset.maxPatches}, d ${preset.dim}, k ${preset.k}), split ${splitFractions.join(' / ')}; seeds ${seeds.join(', ')}, each drawing its own cohort and split; ${n} test slides in all.`,
    `HAFED ${hafedEpochs} epochs (peak lr ${hafedLr}), f_S ${tsuEpochs} epochs, PPO ${policyEpochs} epochs (lr ${lr}); Z only is HAFED stage 2 trained on Z with the same settings.`,
    'Mean over seeds with a 95 % percentile bootstrap interval over seeds; AUC is the macro one-vs-rest AUC, per class its mean over seeds (normal / type 1 / type 2); F1 is macro.',
    '',
    table(['method', 'accuracy', 'balanced accuracy', 'macro AUC', 'AUC per class', 'macro F1'], rows),
    '',
    'Confusion matrices summed over seeds (rows true class, columns predicted; normal / type 1 / type 2):',
    '',
    table(
      ['method', 'confusion'],
      ROWS.map((r) => [r, confusion(r)]),
    ),
    '',
    'SASHA-0.2 against each row on the same test slides, pooled over seeds (McNemar exact on correctness: slides right only by SASHA / only by the row; paired bootstrap of the macro AUC, stratified by class):',
    '',
    table(['comparison', 'discordant', 'McNemar p', 'AUC difference [95% CI]', 'AUC p'], tests),
    '',
    `Total ${((performance.now() - t0) / 60000).toFixed(1)} min.`,
  ].join('\n');
  console.log(body);
  const cmd = `nice -n 10 npx tsx bench/multiclass_synthetic.ts --slides ${numSlides} --split ${splitFractions.join(',')} --seeds ${seeds.join(',')} --hafed-epochs ${hafedEpochs} --hafed-lr ${hafedLr} --tsu-epochs ${tsuEpochs} --policy-epochs ${policyEpochs} --lr ${lr}`;
  if (record) writeResults('multiclass-synthetic', 'SASHA on three classes (the multiclass synthetic preset)', cmd, backend, body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
