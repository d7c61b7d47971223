/**
 * Example 6: the whole staged recipe, as the paper trains SASHA.
 *
 * 1. A synthetic cohort (`small`: 60 slides of 100-400 patches, d = 32, k = 16): tumour is a
 *    minority of a few patches' sub-patches and looks like a benign mimic at low resolution,
 *    so zooming matters.
 * 2. `trainSasha`: HAFED on the high-resolution features U, then V = HAFED stage 1 of every
 *    patch, then f_S (the targeted state update), then the zoom policy with PPO (HAFED and
 *    f_S frozen), with model selection on the validation slides at each stage. Stages and
 *    checkpoints go to a directory: an interrupted run continues with `resume: true`.
 * 3. Test accuracy, AUC and F1 of HAFED on every high-resolution patch (100 %), of SASHA
 *    zooming into 20 % of the patches, and of a random 20 % zoom, side by side.
 * 4. The trained model saved as one bundle and loaded back, as `analyzeSlide` and the CLI
 *    load it.
 *
 * Two settings differ from the official code because the cohort is small: HAFED's peak
 * learning rate (2e-3 instead of 4.14e-4) and the policy's (1e-4 instead of 1e-5). With only
 * 36 training slides HAFED's training depends on the seed, and SASHA is only as good as its
 * HAFED; bench/RESULTS.md has the same recipe on larger cohorts over several seeds.
 *
 * Run: npm run demo, or npx tsx examples/06_staged_recipe.ts (about 8 minutes on 2 cores)
 * (SASHA_EXAMPLE_QUICK=1 trains the `tiny` cohort for a few epochs: the mechanics, not accuracy.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ActorCriticPolicy,
  RandomPolicy,
  evaluateFullResolution,
  evaluateSasha,
  initBackend,
  trainSasha,
  type ProgressEvent,
  type SashaEvaluation,
} from 'sasha-wsi';
import { SYNTHETIC_PRESETS, SyntheticDataset } from 'sasha-wsi/synthetic';
import { fileCheckpointStore, loadSashaModel } from 'sasha-wsi/node';

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const t0 = performance.now();
const seconds = () => ((performance.now() - t0) / 1000).toFixed(0);
const backend = await initBackend();
const seed = 0;
const dataset = new SyntheticDataset({ ...(QUICK ? SYNTHETIC_PRESETS.tiny : SYNTHETIC_PRESETS.small), seed });
const { split } = dataset;
console.log(
  `SASHA on tfjs-${backend}: ${dataset.ids.length} synthetic slides (train ${split.train.length}, val ${split.val.length}, test ${split.test.length}), d = ${dataset.dim}, k = ${dataset.k}.`,
);

/** One status line per task, rewritten in place on a terminal. */
let lastTask = '';
function progress(e: ProgressEvent): void {
  if (!process.stderr.isTTY) return;
  if (e.task !== lastTask && lastTask) process.stderr.write('\n');
  lastTask = e.task;
  const info = Object.entries(e.info ?? {})
    .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(3) : v}`)
    .join(', ');
  process.stderr.write(`\r${e.task}: ${e.done}${e.total ? `/${e.total}` : ''} ${info}`.padEnd(80));
}

const dir = mkdtempSync(join(tmpdir(), 'sasha-example-06-'));
try {
  const { model, withV } = await trainSasha({
    dataset,
    split,
    seed,
    store: fileCheckpointStore(join(dir, 'run')),
    config: {
      hafedTrain: { epochs: QUICK ? 4 : 30, lr: 2e-3 },
      tsu: { epochs: QUICK ? 10 : 200 },
      env: { budget: 0.2 },
      ppo: { actorLearningRate: 1e-4, criticLearningRate: 1e-4 },
      policyEpochs: QUICK ? 2 : 15,
    },
    onProgress: progress,
    onStageEnd: (stage) => {
      if (lastTask) process.stderr.write('\n');
      lastTask = '';
      console.log(`stage ${stage} done at ${seconds()} s`);
    },
  });
  console.log(`Trained HAFED, f_S and the policy in ${seconds()} s. Evaluating on ${split.test.length} test slides.`);

  const classifier = model.hafed!;
  const rows: [string, SashaEvaluation][] = [
    ['HAFED-100% (every high-res patch)', await evaluateFullResolution({ classifier, dataset: withV, ids: split.test })],
    ['SASHA-0.2 (learned zooming)', await evaluateSasha({ classifier, fS: model.fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids: split.test, env: model.env })],
    ['random-0.2 (random zooming)', await evaluateSasha({ classifier, fS: model.fS, policy: new RandomPolicy({ seed }), dataset: withV, ids: split.test, env: model.env })],
  ];
  console.log(`\n${'method'.padEnd(36)} accuracy    AUC     F1`);
  for (const [name, ev] of rows) {
    const { accuracy, auc, f1 } = ev.metrics;
    console.log(`${name.padEnd(36)} ${accuracy.toFixed(3).padStart(8)} ${auc.toFixed(3).padStart(6)} ${f1.toFixed(3).padStart(6)}`);
  }

  // The bundle: HAFED, f_S, the policy and the environment settings in one directory.
  await model.save(fileCheckpointStore(join(dir, 'bundle')));
  const again = await loadSashaModel(join(dir, 'bundle'), { budget: 0.2 });
  const check = await evaluateSasha({ classifier: again.hafed!, fS: again.fS, policy: new ActorCriticPolicy(again.policy!), dataset: withV, ids: split.test, env: again.env });
  console.log(`\nreloaded bundle: SASHA-0.2 accuracy ${check.metrics.accuracy.toFixed(3)}, AUC ${check.metrics.auc.toFixed(3)} (as trained: ${rows[1][1].metrics.auc.toFixed(3)})`);
  again.dispose();
  model.dispose();
  console.log(`Done in ${seconds()} s.`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
