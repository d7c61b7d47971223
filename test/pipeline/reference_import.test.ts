import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError, TorchTensor, readTorchCheckpoint, tf } from '../../src/core/index.js';
import { actorCriticFromReference, hafedFromReference, stateMlpFromReference } from '../../src/pipeline/index.js';
import { expectAllclose } from '../helpers.js';

// Written by test/fixtures/make_reference_fixtures.py from the official code's own modules.
const DIR = join(import.meta.dirname, '../fixtures/reference');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));
const { d, k, N, C, M2 } = expected.sizes as Record<string, number>;
const src = (file: string) => ({ bytes: new Uint8Array(readFileSync(join(DIR, file))), name: file });
const REL = { rtol: 1e-5, atol: 1e-6 };

describe('models of the official code from its PyTorch checkpoints', () => {
  it('HAFED gives the reference V, slide logits, branch logits and attention', () => {
    const before = tf.memory().numTensors;
    const { model, epoch, config, ignored } = hafedFromReference(src('hafed.pt'), { k });
    expect(epoch).toBe(7);
    expect(config).toMatchObject({ n_token_2: M2, n_class: C, mask_drop: 0.5, dim_reduction: false });
    expect(ignored.sort()).toEqual(['dimreduction.fc1.weight', 'dimreduction_2.fc1.weight']);
    expect(model.config).toMatchObject({ dim: d, k, numClasses: C, numBranches1: 1, numBranches2: M2, attentionDim: 16, maskTopK1: 2, maskTopK2: 3 });
    const x = tf.tensor3d(expected.hafed.x, [N, k, d]);
    const out = model.forward(x);
    expectAllclose(out.features, expected.hafed.V, REL);
    expectAllclose(out.logits, expected.hafed.logits, REL);
    expectAllclose(out.branchLogits, expected.hafed.branchLogits, REL);
    expectAllclose(out.attention, expected.hafed.attention2, REL);
    const pred = model.classify(out.features);
    expectAllclose(pred.logits, expected.hafed.classifyLogits, REL);
    tf.dispose([x, out.features, out.logits, out.branchLogits, out.attention, out.attention1!, pred.logits, pred.probs, pred.attention]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('f_S gives the reference FGlobal outputs', () => {
    const { model, epoch } = stateMlpFromReference(src('tsu.pt'));
    expect(epoch).toBe(3);
    expect([model.dim, model.hiddenDim]).toEqual([d, 2 * d]);
    const x = tf.tensor2d(expected.tsu.x, [5, 3 * d]);
    const y = model.apply(x);
    expectAllclose(y, expected.tsu.y, REL);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('the actor and critic give the reference logits and value', () => {
    const { model, ignored } = actorCriticFromReference(src('policy.pt'));
    expect(ignored.sort()).toEqual(['actor.dimreduction.fc1.weight', 'critic.dimreduction.fc1.weight']);
    const s = tf.tensor2d(expected.policy.S, [N, d]);
    const logits = model.actorLogits(s);
    const value = model.value(s);
    expectAllclose(logits, expected.policy.actorLogits, REL);
    expectAllclose(value, expected.policy.value, REL);
    tf.dispose([s, logits, value]);
    model.dispose();
  });

  it('names every missing, unexpected and wrongly shaped key', () => {
    const ckpt = readTorchCheckpoint(src('hafed.pt').bytes, 'hafed.pt');
    const state = (ckpt.root as Map<string, unknown>).get('model') as Map<string, TorchTensor>;
    state.delete('classifier.1.fc.bias');
    state.set('extra.weight', state.get('Slide_classifier.fc.bias')!);
    state.set('Slide_classifier.fc.bias', state.get('attention_1.attention_V.0.bias')!);
    expect(() => hafedFromReference({ checkpoint: ckpt, name: 'hafed.pt' })).toThrow(
      new DataError(
        `'hafed.pt' is not a checkpoint of the official HAFED (architecture/transformer.py): missing classifier.1.fc.bias [${C}]; unexpected extra.weight; ` +
          `Slide_classifier.fc.bias has shape [16], expected [${C}].`,
      ),
    );
    // a checkpoint of another module: the TSU's f_S given as HAFED
    expect(() => hafedFromReference(src('tsu.pt'))).toThrow(/'tsu.pt' is not a checkpoint of the official HAFED .*: it lacks 'attention_1.attention_V.0.weight' \(its keys: fc1.weight/);
    expect(() => stateMlpFromReference(src('policy.pt'))).toThrow(/'policy.pt' is not a checkpoint of the official TSU f_S .*lacks 'fc1.weight'/);
    expect(() => actorCriticFromReference(src('hafed.pt'))).toThrow(/'hafed.pt' is not a checkpoint of the official actor \/ critic .*lacks 'actor.attention.attention_V.0.weight'/);
  });

  it('refuses a truncated or foreign file with an error naming it', () => {
    const full = src('hafed.pt').bytes;
    for (const cut of [full.length - 1, Math.floor(full.length / 2), 100, 10]) {
      const err = (() => {
        try {
          hafedFromReference({ bytes: full.slice(0, cut), name: 'cut.pt' });
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err, `cut at ${cut}`).toBeInstanceOf(DataError);
      expect((err as Error).message).toMatch(/^'cut.pt' /);
    }
    const onnx = new Uint8Array(readFileSync(join(DIR, '../onnx/cnn.onnx')));
    expect(() => hafedFromReference({ bytes: onnx, name: 'cnn.onnx' })).toThrow(
      new DataError("'cnn.onnx' is not a PyTorch checkpoint (no zip archive; torch.save writes one). Point to the .pt / .pth file the training saved."),
    );
    expect(() => hafedFromReference({ bytes: new Uint8Array([0x80, 0x02, 0x8a, 0x0a]), name: 'old.pt' })).toThrow(/'old.pt' is a PyTorch checkpoint in the legacy format/);
    expect(() => hafedFromReference({ bytes: new Uint8Array(0), name: 'empty.pt' })).toThrow(/'empty.pt' is empty/);
  });
});
