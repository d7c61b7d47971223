import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tf, DataError, InMemoryDataset } from '../../src/core/index.js';
import { Hafed, trainHafed } from '../../src/hafed/index.js';
import { fileCheckpointStore, fileIO, registerFileRouter } from '../../src/node/index.js';
import { expectAllclose } from '../helpers.js';

const CFG = { dim: 6, k: 3, numBranches2: 2, attentionDim: 4 };
const tmp = () => mkdtempSync(path.join(tmpdir(), 'sasha-io-'));

describe('fileIO', () => {
  it('saves and loads a HAFED through a directory and through file:// URLs', async () => {
    const dir = tmp();
    const model = new Hafed({ ...CFG, seed: 1 });
    const u = tf.randomNormal([4, 3, 6], 0, 1, 'float32', 1) as tf.Tensor3D;
    await model.save(fileIO(dir));
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    const loaded = await Hafed.load(fileIO(dir));
    expectAllclose(loaded.predict(u).logits, model.predict(u).logits, { rtol: 0, atol: 0 });
    expect(loaded.config).toEqual(model.config);

    registerFileRouter();
    const urlDir = path.join(tmp(), 'nested', 'hafed');
    await model.save(`file://${urlDir}`);
    const viaUrl = await Hafed.load(`file://${urlDir}`);
    expectAllclose(viaUrl.predict(u).logits, model.predict(u).logits, { rtol: 0, atol: 0 });
    [model, loaded, viaUrl].forEach((m) => m.dispose());
  });

  it('replaces a saved model as a unit and cleans leftovers of interrupted saves', async () => {
    const dir = tmp();
    const a = new Hafed({ ...CFG, seed: 2 });
    const b = new Hafed({ ...CFG, seed: 3 });
    const u = tf.randomNormal([4, 3, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
    await a.save(fileIO(dir));
    // an interrupted later save: a stray weights file and temporary files, model.json untouched
    writeFileSync(path.join(dir, 'weights.interrupted.bin'), 'partial');
    writeFileSync(path.join(dir, 'model.json.1234.tmp'), '{"half');
    const stillA = await Hafed.load(fileIO(dir));
    expectAllclose(stillA.predict(u).logits, a.predict(u).logits, { rtol: 0, atol: 0 });
    await b.save(fileIO(dir));
    expect(readdirSync(dir).sort()).toEqual(expect.arrayContaining(['model.json']));
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    const nowB = await Hafed.load(fileIO(dir));
    expectAllclose(nowB.predict(u).logits, b.predict(u).logits, { rtol: 0, atol: 0 });
    [a, b, stillA, nowB].forEach((m) => m.dispose());
  });

  it('names the problem when there is no model or a corrupt one', async () => {
    const dir = tmp();
    await expect(Hafed.load(fileIO(dir))).rejects.toThrow(/No saved model in .*model.json is missing/);
    writeFileSync(path.join(dir, 'model.json'), '{not json');
    await expect(Hafed.load(fileIO(dir))).rejects.toThrow(DataError);
  });
});

describe('fileCheckpointStore', () => {
  function bags(n: number, withNaN = false) {
    return new InMemoryDataset(
      Array.from({ length: n }, (_, i) => {
        const u = tf.randomNormal([5, 3, 6], 0, 1, 'float32', 10 + i);
        return { id: `s${i}`, label: i % 2, highRes: (withNaN && i === n - 1 ? tf.fill([5, 3, 6], NaN) : u) as tf.Tensor3D };
      }),
    );
  }

  it('writes last and best as loadable directories and resumes from them', async () => {
    const dir = tmp();
    const store = fileCheckpointStore(dir);
    const first = await trainHafed({ train: bags(4), model: CFG, config: { epochs: 3 }, checkpoint: store, callbacks: { onEpochEnd: (l) => l.epoch < 0 } });
    expect(readdirSync(dir).sort()).toEqual(['best', 'last']);
    const best = await Hafed.load(fileIO(path.join(dir, 'best')));
    expect(best.config).toEqual(first.model.config);
    const resumed = await trainHafed({ train: bags(4), model: CFG, config: { epochs: 3 }, checkpoint: store, resume: true });
    expect(resumed.history.map((h) => h.epoch)).toEqual([0, 1, 2]);
    [first.model, best, resumed.model].forEach((m) => m.dispose());
  });

  it('writes nothing when a slide is bad', async () => {
    const dir = tmp();
    await expect(trainHafed({ train: bags(3, true), model: CFG, config: { epochs: 2 }, checkpoint: fileCheckpointStore(dir) })).rejects.toThrow(
      /features of slide 's2'.*NaN/,
    );
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });
});
