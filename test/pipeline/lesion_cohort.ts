/**
 * A small WsiEnv cohort where a lesion can be found only by zooming, and where the classifier's
 * low-resolution attention points elsewhere. Shared by the PPO learning test and
 * `bench/policy_ablation.ts`.
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
import { createRng, InMemoryDataset, tf, type SlideBag } from '../../src/core/index.js';
import type { StateClassifier } from '../../src/mdp/index.js';
import type { ZoomPolicy } from '../../src/ppo/index.js';
import { evaluateSasha } from '../../src/pipeline/index.js';

const N = 24;
const D = 8;

/** The hand-made stage 2: linear attention (one branch) and a linear head. */
export class LesionClassifier implements StateClassifier {
  readonly dim = D;
  readonly numClasses = 2;
  readonly numBranches = 1;
  private readonly att = tf.tensor2d([0, 0, 3, 0, 4, 0, 0, 0], [D, 1]);
  private readonly head = tf.tensor2d(
    Array.from({ length: 2 * D }, (_, i) => (i === 9 ? 6 : 0)),
    [D, 2],
  );
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

/** The cohort: classifier, dataset, split and the tumour patches of every slide. */
export interface LesionCohort {
  classifier: LesionClassifier;
  dataset: InMemoryDataset;
  split: { train: string[]; val: string[]; test: string[] };
  /** The budget and state update the cohort is made for. */
  env: { budget: number; update: 'none' };
  /** Share of positive test slides on which `policy` zoomed into a tumour patch. */
  hitRate(policy: ZoomPolicy): Promise<number>;
  dispose(): void;
}

/**
 * Builds the cohort: 24 training, 8 validation and 60 test slides, labels alternating, slide
 * seeds from `seed` on (1000 in the test).
 */
export function lesionCohort(seed = 1000): LesionCohort {
  const classifier = new LesionClassifier();
  const bags: SlideBag[] = [];
  const tumourOf = new Map<string, number[]>();
  const split = { train: [] as string[], val: [] as string[], test: [] as string[] };
  let s = 0;
  for (const [subset, count] of [['train', 24], ['val', 8], ['test', 60]] as const) {
    for (let i = 0; i < count; i++) {
      const id = `${subset}_${i}`;
      const b = slide(id, i % 2, seed + s++);
      tumourOf.set(id, b.tumour);
      bags.push({ id: b.id, label: b.label, lowRes: b.lowRes, aggregated: b.aggregated });
      split[subset].push(id);
    }
  }
  const dataset = new InMemoryDataset(bags);
  const env = { budget: 0.25, update: 'none' as const };
  return {
    classifier,
    dataset,
    split,
    env,
    async hitRate(policy) {
      const ev = await evaluateSasha({ classifier, fS: null, policy, dataset, ids: split.test, env });
      const positives = ev.slides.filter((x) => x.label === 1);
      return positives.filter((x) => x.actions.some((a) => tumourOf.get(x.id)!.includes(a))).length / positives.length;
    },
    dispose() {
      classifier.dispose();
      dataset.dispose();
    },
  };
}
