/**
 * Example 1: your own bags through HAFED.
 *
 * Features you computed elsewhere (any encoder, any pipeline) become `SlideBag`s: per slide a
 * label, Z [N, d] at low resolution and U [N, k, d], the k high-resolution sub-patches of each
 * patch. HAFED is trained on them with `trainHafed` (AdamW, half-cosine schedule, model
 * selection on validation F1 + AUC, resumable checkpoints), evaluated on held-out slides, saved
 * to a directory and loaded back, and its attention shows which patches decided a slide.
 *
 * Here the "features" are made up so that the example runs anywhere: a slide is positive when
 * a few of its patches have sub-patches that point along a tumour direction, which the
 * low-resolution view of the same patch does not show.
 *
 * Run: npx tsx examples/01_hafed_on_your_bags.ts
 * (SASHA_EXAMPLE_QUICK=1 runs a smaller cohort for a few epochs.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hafed, InMemoryDataset, createRng, evaluateHafed, initBackend, subsetDataset, tf, trainHafed, type SlideBag } from 'sasha-wsi';
import { fileCheckpointStore, fileIO } from 'sasha-wsi/node';

const QUICK = process.env.SASHA_EXAMPLE_QUICK === '1';
const SLIDES = QUICK ? 24 : 80;
const EPOCHS = QUICK ? 6 : 30;
const D = 16; // feature width d
const K = 4; // sub-patches per patch k

const backend = await initBackend();
console.log(`tfjs backend: ${backend}`);

// 1. Your features as bags. Replace this function by whatever reads your arrays.
const rng = createRng(7);
const tumour = Float32Array.from({ length: D }, () => rng.normal());
function makeBag(id: string, label: number): { bag: SlideBag; tumourPatches: number[] } {
  const n = 30 + rng.int(40);
  const z = new Float32Array(n * D);
  const u = new Float32Array(n * K * D);
  for (let i = 0; i < z.length; i++) z[i] = rng.normal();
  for (let i = 0; i < u.length; i++) u[i] = rng.normal();
  const tumourPatches: number[] = [];
  if (label === 1) {
    for (let t = 0; t < 3; t++) tumourPatches.push(rng.int(n));
    for (const p of tumourPatches) for (let j = 0; j < K; j++) for (let c = 0; c < D; c++) u[(p * K + j) * D + c] += 1.5 * tumour[c];
  }
  return {
    bag: { id, label, lowRes: tf.tensor2d(z, [n, D]), highRes: tf.tensor3d(u, [n, K, D]) },
    tumourPatches,
  };
}
const made = Array.from({ length: SLIDES }, (_, i) => makeBag(`slide_${String(i).padStart(3, '0')}`, i % 2));
const truth = new Map(made.map((m) => [m.bag.id, m.tumourPatches]));
const ids = made.map((m) => m.bag.id);
const dataset = new InMemoryDataset(made.map((m) => m.bag)); // takes ownership of the tensors

// 2. A split: 60 % train, 20 % validation, 20 % test (every fifth slide, both classes each).
const train = ids.filter((_, i) => i % 5 < 3);
const val = ids.filter((_, i) => i % 5 === 3);
const test = ids.filter((_, i) => i % 5 === 4);
console.log(`${ids.length} slides, N between 30 and 69, k = ${K}, d = ${D}; train ${train.length}, val ${val.length}, test ${test.length}`);

// 3. Train HAFED on U with checkpoints in a directory (resumable with `resume: true`).
const dir = mkdtempSync(join(tmpdir(), 'sasha-example-01-'));
try {
  const { model, history, best } = await trainHafed({
    train: subsetDataset(dataset, train),
    val: subsetDataset(dataset, val),
    config: { epochs: EPOCHS, lr: 2e-3 },
    model: { attentionDim: 16 },
    seed: 1,
    checkpoint: fileCheckpointStore(join(dir, 'checkpoints')),
  });
  for (const h of history.filter((_, e) => e % Math.max(1, Math.floor(EPOCHS / 5)) === 0 || e === EPOCHS - 1)) {
    console.log(`epoch ${String(h.epoch).padStart(2)}: loss ${h.loss.toFixed(3)}, val AUC ${h.val?.auc.toFixed(3)}`);
  }
  console.log(`selected epoch ${best.epoch} (val F1 + AUC ${best.score.toFixed(3)})`);

  // 4. Held-out slides.
  const { metrics } = await evaluateHafed(model, subsetDataset(dataset, test));
  console.log(`test: accuracy ${metrics.accuracy.toFixed(3)}, AUC ${metrics.auc.toFixed(3)}, F1 ${metrics.f1.toFixed(3)}`);

  // 5. Save, load back, same prediction.
  await model.save(fileIO(join(dir, 'hafed')));
  const again = await Hafed.load(fileIO(join(dir, 'hafed')));
  const slide = await dataset.load(test.find((id) => truth.get(id)!.length > 0)!);
  const a = model.predict(slide.highRes!);
  const b = again.predict(slide.highRes!);
  const p = a.probs.dataSync()[1];
  console.log(`reloaded model: P(tumour) ${p.toFixed(4)} before, ${b.probs.dataSync()[1].toFixed(4)} after`);

  // 6. Attention (branch mean over the N patches): where the tumour patches rank.
  const attention = tf.tidy(() => tf.mean(a.attention, 0).arraySync() as number[]);
  const order = attention.map((w, i) => [w, i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
  const ranks = truth.get(slide.id)!.map((t) => order.indexOf(t) + 1);
  console.log(`${slide.id}: tumour patches ${truth.get(slide.id)!.join(', ')} rank ${ranks.join(', ')} of ${attention.length} by attention`);

  tf.dispose([a.logits, a.probs, a.attention, b.logits, b.probs, b.attention, slide.highRes!, slide.lowRes!]);
  again.dispose();
  model.dispose();
} finally {
  dataset.dispose();
  rmSync(dir, { recursive: true, force: true });
}
