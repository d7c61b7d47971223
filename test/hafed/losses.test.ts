import { describe, expect, it } from 'vitest';
import { tf, ValueError, ShapeError } from '../../src/core/index.js';
import { branchLoss, hafedLoss, similarityLoss, slideLoss } from '../../src/hafed/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';
import { losses } from '../../src/hafed/losses.js';

describe('similarityLoss', () => {
  it('equals the hand-computed mean pairwise cosine of 3 branches', () => {
    // a = (0.7, 0.2, 0.1, 0), b = (0.1, 0.1, 0.4, 0.4), c = (0.25, 0.25, 0.25, 0.25)
    // |a| = sqrt(0.54) = 0.734847, |b| = sqrt(0.34) = 0.583095, |c| = 0.5
    // cos(a, b) = 0.13 / (0.734847 * 0.583095) = 0.303394
    // cos(a, c) = 0.25 / (0.734847 * 0.5)      = 0.680414
    // cos(b, c) = 0.25 / (0.583095 * 0.5)      = 0.857493
    // mean over the 3 pairs = 1.841301 / 3     = 0.613767
    const att = tf.tensor2d([
      [0.7, 0.2, 0.1, 0],
      [0.1, 0.1, 0.4, 0.4],
      [0.25, 0.25, 0.25, 0.25],
    ]);
    expectAllclose(similarityLoss(att), 0.6137669, { rtol: 1e-5 });
  });

  it('compares branches (rows), not patches (columns) as the reference script does', () => {
    // Branch rows orthogonal: loss 0. The reference's attn_2[:, i] would compare columns
    // (0.5, 0, 0.5) and (0.5, 0, 0.5) of patches 0 and 1, whose cosine is 1.
    const att = tf.tensor2d([
      [0.5, 0.5, 0, 0],
      [0, 0, 0.5, 0.5],
      [0.5, 0.5, 0, 0],
    ]);
    // pairs: (r0, r1) = 0, (r0, r2) = 1, (r1, r2) = 0 -> 1/3
    expectAllclose(similarityLoss(att), 1 / 3, { rtol: 1e-6 });
  });

  it('averages over leading axes (stage-1 layout [N, M1, k]) and is 0 for one branch', () => {
    // bag 0: identical rows -> 1; bag 1: orthogonal rows -> 0; mean 0.5
    const att = tf.tensor3d([
      [[0.5, 0.5], [0.5, 0.5]],
      [[1, 0], [0, 1]],
    ]);
    expectAllclose(similarityLoss(att), 0.5, { rtol: 1e-6 });
    expectAllclose(similarityLoss(tf.tensor2d([[0.2, 0.8]])), 0);
    expect(() => similarityLoss(tf.tensor1d([1, 2]))).toThrow(ShapeError);
  });

  it('has the gradient of the pairwise form', () => {
    // d/dA of sum_{i<j} cos / 3 at A, checked against the naive pair loop.
    const a0 = tf.tensor2d([
      [0.6, 0.3, 0.1],
      [0.2, 0.2, 0.6],
      [0.1, 0.7, 0.2],
    ]);
    const naive = (a: tf.Tensor) => {
      const rows = tf.unstack(a);
      const cos = (u: tf.Tensor, v: tf.Tensor) => tf.div(tf.sum(tf.mul(u, v)), tf.mul(tf.norm(u), tf.norm(v)));
      return tf.div(tf.addN([cos(rows[0], rows[1]), cos(rows[0], rows[2]), cos(rows[1], rows[2])]), 3) as tf.Scalar;
    };
    expectAllclose(tf.grad((a) => similarityLoss(a))(a0), tf.grad(naive)(a0), { rtol: 1e-4, atol: 1e-6 });
  });
});

describe('cross-entropy losses', () => {
  it('slideLoss and branchLoss match hand values', () => {
    expectAllclose(slideLoss(tf.tensor2d([[0, 0]]), 1), Math.LN2, { rtol: 1e-6 });
    // branch 0: -log(1/2) = 0.693147; branch 1: p(0) = 3/4, -log(3/4) = 0.287682; mean 0.490415
    expectAllclose(branchLoss(tf.tensor2d([[0, 0], [Math.log(3), 0]]), 0), 0.490415, { rtol: 1e-5 });
  });

  it('rejects a label outside the classes', () => {
    expect(() => slideLoss(tf.tensor2d([[0, 0]]), 2)).toThrow(/label in \[0, 2\), but got 2/);
    expect(() => branchLoss(tf.tensor2d([[0, 0]]), -1)).toThrow(ValueError);
    expect(() => slideLoss(tf.tensor2d([[0, 0], [1, 1]]), 0)).toThrow(ShapeError);
  });

  it('hafedLoss sums the terms and drops the branch term for one branch', () => {
    const logits = tf.tensor2d([[0, 0]]);
    const attention = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const features = tf.zeros([2, 2]) as tf.Tensor2D;
    const attention1 = tf.tensor3d([[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]);
    const two = hafedLoss({ logits, branchLogits: tf.tensor2d([[0, 0], [Math.log(3), 0]]), attention, attention1, features }, 0);
    // slide ln 2 + branch 0.490415 + similarity1 1 (identical rows) + similarity2 0 (orthogonal rows)
    expectAllclose(two.total, Math.LN2 + 0.490415 + 1, { rtol: 1e-5 });
    expectAllclose(two.similarity1, 1, { rtol: 1e-6 });
    expectAllclose(two.similarity2, 0);
    const one = hafedLoss({ logits, branchLogits: tf.tensor2d([[5, 0]]), attention: tf.tensor2d([[0.5, 0.5]]), features }, 1);
    expectAllclose(one.branch, 0);
    expectAllclose(one.total, Math.LN2, { rtol: 1e-6 });
    expect(Object.keys(losses).sort()).toEqual(['branchLoss', 'hafedLoss', 'similarityLoss', 'slideLoss']);
  });

  it('leaks no tensors', async () => {
    const logits = tf.tensor2d([[0.3, -0.2]]);
    const att = tf.tensor2d([[0.2, 0.8], [0.6, 0.4]]);
    const features = tf.zeros([2, 2]) as tf.Tensor2D;
    const branchLogits = tf.tensor2d([[0, 1], [1, 0]]);
    await expectNoLeak(() => {
      const l = hafedLoss({ logits, branchLogits, attention: att, features }, 1);
      tf.dispose(Object.values(l));
    });
  });
});
