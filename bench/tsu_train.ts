/**
 * f_S on the synthetic benchmark: train HAFED (trainHafed) on a synthetic cohort, compute
 * V = HAFED stage 1 of U for every slide, then train f_S with trainTsu (reference recipe:
 * random anchor per slide and epoch, similar set on Z with tau = 0.95, MSE to V) and compare
 * its validation MSE with the identity map (predicting V(i) by Z(i)) on the same samples.
 *
 * Run: npx tsx bench/tsu_train.ts [--preset small] [--hafed-epochs 20] [--epochs 1000] [--lr 4e-5] [--no-write]
 */
import { InMemoryDataset, initBackend, subsetDataset, type SlideBag } from '../src/core/index.js';
import { trainHafed } from '../src/hafed/index.js';
import { trainTsu } from '../src/tsu/index.js';
import { table, writeResults } from './results.js';
import { SYNTHETIC_PRESETS, SyntheticDataset, type SyntheticPresetName } from '../src/wsi/synthetic/features.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const preset = flag('preset', 'small') as SyntheticPresetName;
  const hafedEpochs = Number(flag('hafed-epochs', '20'));
  const epochs = Number(flag('epochs', '1000'));
  const lr = Number(flag('lr', '4e-5'));
  const seed = 0;
  const cohort = new SyntheticDataset({ ...SYNTHETIC_PRESETS[preset], seed });
  const { split } = cohort;
  const t0 = performance.now();

  // 1. HAFED (both stages on U), selected on validation F1 + AUC.
  const { model: hafed, best } = await trainHafed({
    train: subsetDataset(cohort, split.train),
    val: subsetDataset(cohort, split.val),
    config: { epochs: hafedEpochs },
    seed: 5,
  });
  const hafedSeconds = (performance.now() - t0) / 1000;
  console.log(`HAFED: best epoch ${best.epoch}, val`, best.val);

  // 2. V = stage 1 of U, cached with Z for the train and val slides.
  const bags: SlideBag[] = [];
  for (const id of [...split.train, ...split.val]) {
    const bag = await cohort.load(id, ['lowRes', 'highRes']);
    bags.push({ id, label: bag.label, lowRes: bag.lowRes, aggregated: hafed.aggregate(bag.highRes!) });
    bag.highRes!.dispose();
  }
  const withV = new InMemoryDataset(bags);

  // 3. f_S.
  const t1 = performance.now();
  let lastLog = 0;
  const result = await trainTsu({
    dataset: withV,
    split: { train: split.train, val: split.val },
    config: { epochs, learningRate: lr },
    onProgress: (e) => {
      if (e.done - lastLog >= Math.max(1, Math.floor(epochs / 10))) {
        lastLog = e.done;
        console.log(`epoch ${e.done}/${e.total}`, e.info);
      }
    },
  });
  const tsuSeconds = (performance.now() - t1) / 1000;
  const { bestValMse, identityValMse, bestEpoch, history } = result;
  const ratio = bestValMse / identityValMse;
  console.log(`f_S: best val MSE ${bestValMse.toFixed(4)} at epoch ${bestEpoch}; identity ${identityValMse.toFixed(4)}; ratio ${ratio.toFixed(3)}`);

  const c = cohort.config;
  const body = [
    `Synthetic cohort \`${preset}\` (seed ${seed}: ${c.numSlides} slides, N ${c.minPatches}-${c.maxPatches}, k ${c.k}, d ${c.dim}; ` +
      `${split.train.length} train / ${split.val.length} val slides). HAFED trained ${hafedEpochs} epochs with trainHafed ` +
      `(reference recipe; best epoch ${best.epoch + 1}, val AUC ${best.val?.auc?.toFixed(3) ?? 'n/a'}, ${hafedSeconds.toFixed(0)} s); ` +
      `V = its stage 1 on U. f_S trained with trainTsu (lr ${lr}, weight decay 4e-4, ${epochs} epochs, tau 0.95, ` +
      `one random anchor per slide and epoch; validation on 4 fixed anchors per slide; ${tsuSeconds.toFixed(0)} s).`,
    '',
    table(
      ['validation MSE, identity map V(i) ~ Z(i)', 'validation MSE, f_S (best epoch)', 'f_S / identity', 'best epoch', 'train MSE, first / last epoch'],
      [[identityValMse.toFixed(4), bestValMse.toFixed(4), ratio.toFixed(3), bestEpoch, `${history[0].trainMse.toFixed(4)} / ${history.at(-1)!.trainMse.toFixed(4)}`]],
    ),
  ].join('\n');
  if (!process.argv.includes('--no-write')) writeResults(
    'tsu-train',
    'f_S training on the synthetic benchmark',
    `npx tsx bench/tsu_train.ts --preset ${preset} --hafed-epochs ${hafedEpochs} --epochs ${epochs} --lr ${lr}`,
    backend,
    body,
  );
  result.model.dispose();
  hafed.dispose();
  withV.dispose(); // frees the bags' tensors
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
