/**
 * Demo: SASHA end to end on a small synthetic cohort, on the embedded wasm backend.
 *
 * 1. Generates the `small` synthetic cohort (60 slides of 100-400 patches, d = 32, k = 16):
 *    tumour is a minority of a few patches' sub-patches, and looks like a benign mimic at low
 *    resolution, so zooming matters.
 * 2. Trains HAFED on the high-resolution features, then f_S (the targeted state update), then
 *    the zoom policy with PPO (HAFED and f_S frozen), with progress bars.
 * 3. Prints test accuracy / AUC / F1 of HAFED on every high-res patch (100%), of SASHA zooming
 *    into 20% of the patches, and of a random 20% zoom, side by side.
 *
 * It takes a few minutes. Two settings differ from the reference because the cohort is small:
 * HAFED's peak learning rate (2e-3 instead of 4.14e-4, over 30 epochs) and the policy's (1e-4
 * instead of 1e-5); everything else is the reference's recipe. `bench/sasha_synthetic.ts` runs
 * the same recipe on larger cohorts of the same preset (96 training and 120 test slides, three
 * seeds; table in bench/RESULTS.md): with only 36 training slides, as here, HAFED's training
 * depends on the seed, and SASHA can only be as good as its HAFED.
 *
 * Run: npm run demo
 */
import { ActorCriticPolicy, RandomPolicy, evaluateFullResolution, evaluateSasha, initBackend, trainSasha, type SashaEvaluation } from '../src/index.js';
import { progressBars } from '../src/node/cli/progress_bar.js';
import { SYNTHETIC_PRESETS, SyntheticDataset } from '../src/wsi/synthetic/features.js';

async function main(): Promise<void> {
  const t0 = performance.now();
  const backend = await initBackend();
  const seconds = () => ((performance.now() - t0) / 1000).toFixed(0);
  const seed = 0;
  const dataset = new SyntheticDataset({ ...SYNTHETIC_PRESETS.small, seed });
  const { split } = dataset;
  console.log(
    `sasha-wsi demo on tfjs-${backend}: ${dataset.ids.length} synthetic slides (train ${split.train.length}, val ${split.val.length}, test ${split.test.length}), d = ${dataset.dim}, k = ${dataset.k}.`,
  );
  const bars = progressBars(true);
  const { model, withV } = await trainSasha({
    dataset,
    split,
    seed,
    config: {
      hafedTrain: { epochs: 30, lr: 2e-3 },
      tsu: { epochs: 200 },
      env: { budget: 0.2 },
      ppo: { actorLearningRate: 1e-4, criticLearningRate: 1e-4 },
      policyEpochs: 15,
    },
    onProgress: bars.onProgress,
  });
  bars.stop();
  console.log(`Trained HAFED, f_S and the policy in ${seconds()} s. Evaluating on ${split.test.length} test slides.`);
  const classifier = model.hafed!;
  const env = model.env;
  const rows: [string, SashaEvaluation][] = [
    ['HAFED-100% (every high-res patch)', await evaluateFullResolution({ classifier, dataset: withV, ids: split.test })],
    ['SASHA-0.2 (learned zooming)', await evaluateSasha({ classifier, fS: model.fS, policy: new ActorCriticPolicy(model.policy!), dataset: withV, ids: split.test, env })],
    ['random-0.2 (random zooming)', await evaluateSasha({ classifier, fS: model.fS, policy: new RandomPolicy({ seed }), dataset: withV, ids: split.test, env })],
  ];
  console.log('');
  console.log(`${'method'.padEnd(36)} accuracy    AUC     F1`);
  for (const [name, ev] of rows) {
    const { accuracy, auc, f1 } = ev.metrics;
    console.log(`${name.padEnd(36)} ${accuracy.toFixed(3).padStart(8)} ${auc.toFixed(3).padStart(6)} ${f1.toFixed(3).padStart(6)}`);
  }
  console.log(`\nDone in ${seconds()} s.`);
  model.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
