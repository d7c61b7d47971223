import { describe, expect, it } from 'vitest';
import { DataError, ShapeError, tf } from '../../src/core/index.js';
import { ActorCritic, resolveActorCriticConfig } from '../../src/ppo/index.js';
import { expectAllclose, expectNoLeak } from '../helpers.js';

/** Memory handler: saves into an object, loads it back. */
function memoryHandler() {
  let saved: tf.io.ModelArtifacts | null = null;
  return {
    save: async (a: tf.io.ModelArtifacts) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } };
    },
    load: async () => saved as tf.io.ModelArtifacts,
  };
}

describe('ActorCritic', () => {
  it('has the reference sizes at d = 384 (98,689 actor and 99,074 critic parameters)', () => {
    // docs/reference-code.md §6.1: Attention_Gated(384, 128, 1) = 2 * (384 * 128 + 128) + 128 + 1 = 98,689;
    // the critic adds Linear(384 -> 1) = 385: 99,074
    const ac = new ActorCritic();
    expect(ac.parameterCounts).toEqual({ actor: 98689, critic: 99074 });
    ac.dispose();
  });

  it('actor logits follow the gated-attention formula (float64 reference) and depend on each row only', () => {
    const ac = new ActorCritic({ dim: 3, hiddenDim: 2, seed: 5 });
    const w = ac.getWeights();
    const get = (n: string) => Array.from(w[n].dataSync());
    const names = ['attention_v/kernel', 'attention_v/bias', 'attention_u/kernel', 'attention_u/bias', 'attention_weights/kernel', 'attention_weights/bias'];
    const [Vk, Vb, Uk, Ub, Wk, Wb] = names.map((n) => get(`actor/${n}`));
    const x = [
      [0.5, -1, 2],
      [1.5, 0.2, -0.3],
    ];
    const expected = x.map((row) => {
      let out = Wb[0];
      for (let j = 0; j < 2; j++) {
        let a = Vb[j];
        let u = Ub[j];
        for (let i = 0; i < 3; i++) {
          a += row[i] * Vk[i * 2 + j];
          u += row[i] * Uk[i * 2 + j];
        }
        out += Math.tanh(a) * (1 / (1 + Math.exp(-u))) * Wk[j];
      }
      return out;
    });
    const both = ac.actorLogits(tf.tensor2d(x));
    expectAllclose(both, expected, { rtol: 1e-5, atol: 1e-6 });
    // one row alone gives the same logit as within the batch
    expectAllclose(ac.actorLogits(tf.tensor2d([x[1]])), [expected[1]], { rtol: 1e-5, atol: 1e-6 });
    ac.dispose();
  });

  it('the hand-written gradient of the gated attention equals autodiff of the plain formula', () => {
    const ac = new ActorCritic({ dim: 7, hiddenDim: 5, seed: 4 });
    const x = tf.randomNormal([13, 7], 0, 1.5, 'float32', 9) as tf.Tensor2D;
    const coef = tf.randomNormal([13], 0, 1, 'float32', 10);
    const w = ac.getWeights();
    const names = ['attention_v/kernel', 'attention_v/bias', 'attention_u/kernel', 'attention_u/bias', 'attention_weights/kernel', 'attention_weights/bias'].map((n) => `actor/${n}`);
    const vars = names.map((n) => w[n] as tf.Variable);
    // plain formula through tfjs autodiff (tf.tanh, no custom gradient)
    const plain = tf.grads((vK: tf.Tensor, vB: tf.Tensor, uK: tf.Tensor, uB: tf.Tensor, wK: tf.Tensor, wB: tf.Tensor) => {
      const a = tf.tanh(tf.add(tf.matMul(x, vK as tf.Tensor2D), vB));
      const g = tf.sigmoid(tf.add(tf.matMul(x, uK as tf.Tensor2D), uB));
      const l = tf.reshape(tf.add(tf.matMul(tf.mul(a, g) as tf.Tensor2D, wK as tf.Tensor2D), wB), [-1]);
      return tf.sum(tf.mul(l, coef));
    })(vars);
    const fused = tf.variableGrads(() => tf.sum(tf.mul(ac.actorLogits(x), coef)) as tf.Scalar, vars);
    vars.forEach((v, i) => expectAllclose(fused.grads[v.name], plain[i], { rtol: 1e-5, atol: 1e-6 }));
    ac.dispose();
  });

  it('value: pooling the per-row projections equals projecting the pooled state', () => {
    const ac = new ActorCritic({ dim: 6, hiddenDim: 4, seed: 1 });
    const S = tf.randomNormal([9, 6], 0, 1, 'float32', 3) as tf.Tensor2D;
    const { attentionLogits, projections } = ac.criticRowTerms(S);
    const pooledScalars = tf.add(tf.sum(tf.mul(tf.softmax(attentionLogits), projections)), tf.reshape(ac.valueBias, []));
    expectAllclose(ac.value(S), pooledScalars, { rtol: 1e-5, atol: 1e-6 });
    // batched values by definition
    const stack = tf.stack([S, tf.reverse(S, 0)]) as tf.Tensor3D;
    const vs = ac.values(stack);
    expectAllclose(vs.dataSync()[0], ac.value(S), { rtol: 1e-5, atol: 1e-6 });
    // the critic pools over all rows: a row order change leaves V unchanged
    expectAllclose(vs.dataSync()[1], vs.dataSync()[0], { rtol: 1e-5, atol: 1e-6 });
    ac.dispose();
  });

  it('round-trips through a tf.io handler and rejects a policy for another d', async () => {
    const ac = new ActorCritic({ dim: 4, hiddenDim: 3, seed: 8 });
    const h = memoryHandler();
    await ac.save(h);
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 1) as tf.Tensor2D;
    const back = await ActorCritic.load(h, { dim: 4 });
    expectAllclose(back.actorLogits(x), ac.actorLogits(x), { rtol: 0, atol: 0 });
    expect(back.config).toEqual(ac.config);
    await expect(ActorCritic.load(h, { dim: 384 })).rejects.toThrow(/d = 384.*built for d = 4/);
    await expect(ActorCritic.load(tf.io.fromMemory({ modelTopology: { format: 'other' } }))).rejects.toThrow(DataError);
    expect(() => ac.actorLogits(tf.zeros([2, 5]) as tf.Tensor2D)).toThrow(ShapeError);
    ac.dispose();
    back.dispose();
  });

  it('reads the classifier scores beside the state: row inputs, and the untrained actor follows the attention prior', () => {
    // d = 2, M = 2: rows [s_i (2), scores_i (2), changed_i]
    const ac = new ActorCritic({ dim: 2, numScores: 2, attentionPrior: 0.5, hiddenDim: 3, seed: 1 });
    expect(ac.inputDim).toBe(5);
    const observation = {
      numPatches: 2,
      dim: 2,
      t: 1,
      budget: 2,
      actionMask: Uint8Array.from([1, 0]),
      state: Float32Array.from([1, 2, 3, 4]),
      numScores: 2,
      rowScores: Float32Array.from([0.5, 1.5, -2, 4]),
      changed: Uint8Array.from([0, 1]),
    };
    const rows = ac.rowInputs(observation);
    expect(Array.from(rows)).toEqual([1, 2, 0.5, 1.5, 0, 3, 4, -2, 4, 1]);
    const changed = ac.changedInputs({ changedRows: Int32Array.from([1]), changedValues: Float32Array.from([7, 8]), changedScores: Float32Array.from([1, 3]) });
    expect(Array.from(changed)).toEqual([7, 8, 1, 3, 1]);
    // the actor's own output layer starts at zero: logit_i = 0.5 * mean(scores_i) = 0.5 and 0.5
    const x = tf.tensor2d(rows, [2, 5]);
    const logits = ac.actorLogits(x);
    expectAllclose(logits, [0.5, 0.5], { rtol: 1e-6, atol: 1e-7 });
    tf.dispose([x, logits]);
    // an observation without scores is a clear error; a policy without scores passes the state through
    expect(() => ac.rowInputs({ ...observation, rowScores: undefined })).toThrow(/reads the classifier's 2 attention logits per row/);
    const plain = new ActorCritic({ dim: 2, hiddenDim: 3 });
    expect(plain.inputDim).toBe(2);
    expect(plain.rowInputs(observation)).toBe(observation.state);
    expect(plain.parameterCounts.actor).toBe(ac.parameterCounts.actor - 3 * 3 * 2 - 1);
    plain.dispose();
    ac.dispose();
  });

  it('does not leak and validates its config', async () => {
    const ac = new ActorCritic({ dim: 4, hiddenDim: 3 });
    const x = tf.ones([3, 4]) as tf.Tensor2D;
    await expectNoLeak(() => {
      tf.dispose([ac.actorLogits(x), ac.value(x), ...Object.values(ac.criticRowTerms(x))]);
    });
    ac.dispose();
    expect(() => resolveActorCriticConfig({ dim: 0 })).toThrow(/dim to be an integer in \[1, inf\), but got 0/);
    expect(() => resolveActorCriticConfig({ hidenDim: 3 } as never)).toThrow(/Did you mean 'hiddenDim'/);
  });
});
