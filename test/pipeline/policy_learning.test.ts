/**
 * PPO learns on the real environment: a small WsiEnv cohort where a lesion can be found only
 * by zooming, and where the classifier's low-resolution attention points elsewhere.
 *
 * Every slide has N = 24 patches of width d = 8:
 * - 16 normal patches: Z = V = e0 + noise;
 * - 4 decoy patches: Z = V = e0 + 1.5 e2 + noise (the classifier attends to e2);
 * - 4 lesion-stroma patches: Z = e0 + 1.5 e1 + noise. Their V shows what they hold: tumour
 *   (e0 + e1 + 2 e4) or mimic (e0 + e1 + 2 e3). Positive slides hold 2 tumour and 2 mimic,
 *   negative slides 4 mimic. At low resolution tumour and mimic are identical.
 * The classifier (HAFED stage 2 in shape, weights by hand): attention logit `3 x.e2 + 4 x.e4`,
 * slide logits `[0, 6 pooled.e4 - 1]`. So a positive slide is called positive only once a
 * tumour patch was zoomed into, and the low-resolution attention ranks the decoys first.
 * The budget f = 0.25 gives T = 6 zooms of 24 patches, no state update (f_S is not the point).
 *
 * Expected on positive slides (share with a tumour patch zoomed): random 1 - C(22,6)/C(24,6)
 * = 0.446; top-attention spends 4 zooms on the decoys and 2 on near-ties among the other 20
 * patches (about 0.2); a policy that zooms the lesion stroma finds the tumour every time (1.0).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, InMemoryDataset, tf, type SlideBag } from '../../src/core/index.js';
import type { StateClassifier } from '../../src/mdp/index.js';
import { ActorCriticPolicy, RandomPolicy, TopAttentionPolicy, type ZoomPolicy } from '../../src/ppo/index.js';
import { evaluateSasha, trainPolicy } from '../../src/pipeline/index.js';

const N = 24;
const D = 8;

/** The hand-made stage 2: linear attention (one branch) and a linear head. */
class LesionClassifier implements StateClassifier {
  readonly dim = D;
  readonly numClasses = 2;
  readonly numBranches = 1;
  private readonly att = tf.tensor2d([0, 0, 3, 0, 4, 0, 0, 0], [D, 1]);
  private readonly head = tf.tensor2d([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].map((_, i) => (i === 9 ? 6 : 0)), [D, 2]);
  private readonly bias = tf.tensor1d([0, -1]);
  stage2RowLogits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, this.att);
  }
  stage2HeadLogits(pooled: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(pooled, this.head), this.bias));
  }
  dispose(): void {
    tf.dispose([this.att, this.head, this.bias]);
  }
}

/** One slide: patch kinds in a random order, features as in the module doc. */
function slide(id: string, label: number, seed: number): SlideBag & { tumour: number[] } {
  const rng = createRng(seed);
  const kinds = [...Array(16).fill('normal'), ...Array(4).fill('decoy'), 'lesion', 'lesion', 'lesion', 'lesion'];
  const order = rng.shuffle(kinds.map((_, i) => i));
  const z = new Float32Array(N * D);
  const v = new Float32Array(N * D);
  const tumour: number[] = [];
  let lesions = 0;
  order.forEach((k, i) => {
    const kind = kinds[k];
    const base = new Float32Array(D);
    base[0] = 1;
    for (let j = 0; j < D; j++) base[j] += 0.05 * rng.normal();
    const zi = base.slice();
    const vi = base.slice();
    if (kind === 'decoy') {
      zi[2] += 1.5;
      vi[2] += 1.5;
    } else if (kind === 'lesion') {
      zi[1] += 1.5;
      vi[1] += 1;
      const isTumour = label === 1 && lesions < 2;
      vi[isTumour ? 4 : 3] += 2;
      if (isTumour) tumour.push(i);
      lesions++;
    }
    z.set(zi, i * D);
    v.set(vi, i * D);
  });
  return { id, label, lowRes: tf.tensor2d(z, [N, D]), aggregated: tf.tensor2d(v, [N, D]), tumour };
}

describe('PPO on WsiEnv learns where the lesion is', () => {
  let classifier: LesionClassifier;
  let dataset: InMemoryDataset;
  const tumourOf = new Map<string, number[]>();
  const ids = { train: [] as string[], val: [] as string[], test: [] as string[] };
  beforeAll(() => {
    classifier = new LesionClassifier();
    const bags: SlideBag[] = [];
    let s = 0;
    for (const [subset, count] of [['train', 24], ['val', 8], ['test', 60]] as const) {
      for (let i = 0; i < count; i++) {
        const id = `${subset}_${i}`;
        const b = slide(id, i % 2, 1000 + s++);
        tumourOf.set(id, b.tumour);
        bags.push({ id: b.id, label: b.label, lowRes: b.lowRes, aggregated: b.aggregated });
        ids[subset].push(id);
      }
    }
    dataset = new InMemoryDataset(bags);
  });
  afterAll(() => {
    classifier.dispose();
    dataset.dispose();
  });

  /** Share of positive test slides on which the policy zoomed into a tumour patch. */
  async function hitRate(policy: ZoomPolicy): Promise<number> {
    const ev = await evaluateSasha({ classifier, fS: null, policy, dataset, ids: ids.test, env: { budget: 0.25, update: 'none' } });
    const positives = ev.slides.filter((s) => s.label === 1);
    return positives.filter((s) => s.actions.some((a) => tumourOf.get(s.id)!.includes(a))).length / positives.length;
  }

  it('finds tumour patches on held-out slides far more often than random and top-attention zooming', async () => {
    const before = tf.memory().numTensors;
    const random = await hitRate(new RandomPolicy({ seed: 3 }));
    const top = await hitRate(new TopAttentionPolicy(classifier));
    const { model } = await trainPolicy({
      classifier,
      fS: null,
      dataset,
      split: ids,
      env: { budget: 0.25, update: 'none' },
      seed: 1, // the library's default recipe: imitation of the lookahead teacher, then PPO
    });
    const learned = await hitRate(new ActorCriticPolicy(model));
    model.dispose();
    if (process.env.SASHA_TEST_REPORT) console.log(`policy learning: random ${random}, top-attention ${top}, learned ${learned}`);
    // measured: random 0.45 (the 0.446 of the module doc), top-attention 0.20; the learned
    // policy finds the tumour on every positive slide
    expect(random).toBeGreaterThan(0.25);
    expect(random).toBeLessThan(0.65);
    expect(top).toBeLessThan(0.4);
    expect(learned).toBeGreaterThanOrEqual(0.9);
    expect(learned - Math.max(random, top)).toBeGreaterThanOrEqual(0.3);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000); // 38 s measured on 2 cores at load average 20 (wasm); the bound leaves room for a loaded machine
});
