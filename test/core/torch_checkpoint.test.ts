import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError, PyObject, TorchTensor, createRng, isStateDict, readTorchCheckpoint } from '../../src/core/index.js';
import { unpickle } from '../../src/core/torch/pickle.js';
import { hafedFromReference } from '../../src/pipeline/index.js';

const DIR = join(import.meta.dirname, '../fixtures/reference');
const hafedPt = new Uint8Array(readFileSync(join(DIR, 'hafed.pt')));

describe('readTorchCheckpoint', () => {
  it('reads the official layout: model state dict, optimiser state, epoch and config', () => {
    const { root, prefix } = readTorchCheckpoint(hafedPt, 'hafed.pt');
    expect(prefix).toMatch(/\/$/);
    const m = root as Map<string, unknown>;
    expect([...m.keys()]).toEqual(['model', 'optimizer', 'epoch', 'config']);
    expect(m.get('epoch')).toBe(7);
    const state = m.get('model');
    expect(isStateDict(state)).toBe(true);
    const w = (state as Map<string, TorchTensor>).get('Slide_classifier.fc.weight')!;
    expect([w.dtype, w.shape]).toEqual(['float32', [3, 8]]);
    expect(w.toFloat32().length).toBe(24);
    // optimiser state: AdamW moments are tensors too, decoded only on demand
    const opt = m.get('optimizer') as Map<string, unknown>;
    const st = opt.get('state') as Map<number, Map<string, unknown>>;
    expect(st.get(0)!.get('exp_avg')).toBeInstanceOf(TorchTensor);
  });

  it('unpickles protocol 2 opcodes by hand: dicts, tuples, longs, floats, unknown classes as records', () => {
    // {'a': (1, -2, 3.5), 'b': [True, None], 'c': collections.Counter()} written out opcode by opcode
    const bytes = [0x80, 2, 0x7d, 0x71, 0, 0x28];
    const s = (t: string) => [0x58, t.length, 0, 0, 0, ...Array.from(t, (c) => c.charCodeAt(0))];
    bytes.push(...s('a'), 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x47, 0x40, 0x0c, 0, 0, 0, 0, 0, 0, 0x87);
    bytes.push(...s('b'), 0x5d, 0x28, 0x88, 0x4e, 0x65);
    bytes.push(...s('c'), 0x63, ...Array.from('collections\nCounter\n', (c) => c.charCodeAt(0)), 0x29, 0x52);
    bytes.push(0x75, 0x2e);
    const v = unpickle(new Uint8Array(bytes)) as Map<string, unknown>;
    expect(v.get('a')).toEqual([1, -2, 3.5]);
    expect(v.get('b')).toEqual([true, null]);
    expect(v.get('c')).toBeInstanceOf(PyObject);
    expect((v.get('c') as PyObject).cls.qualifiedName).toBe('collections.Counter');
  });

  it('refuses items appended to a tuple (a flipped opcode) with a DataError', () => {
    // PROTO 2, EMPTY_TUPLE, BININT1 1, APPEND, STOP: tuples are immutable
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x29, 0x4b, 1, 0x61, 0x2e]))).toThrow(DataError);
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x29, 0x4b, 1, 0x61, 0x2e]))).toThrow(/list items appended to a tuple/);
    // the same on a list is read: [1]
    expect(unpickle(new Uint8Array([0x80, 2, 0x5d, 0x4b, 1, 0x61, 0x2e]))).toEqual([1]);
  });

  it('ends every damaged copy of a checkpoint in a DataError or a correct read, quickly', () => {
    const rng = createRng(15);
    const t0 = performance.now();
    let errors = 0;
    for (let trial = 0; trial < 300; trial++) {
      const b = hafedPt.slice();
      const kind = trial % 3;
      if (kind === 0) for (let f = 0; f < 4; f++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      else if (kind === 1) b.fill(0xff, rng.int(b.length), Math.min(b.length, rng.int(b.length) + 8));
      else for (let f = 0; f < 16; f++) b[rng.int(b.length)] = rng.int(256);
      try {
        const { model } = hafedFromReference({ bytes: b, name: 'damaged.pt' }, { k: 4 });
        model.dispose();
      } catch (e) {
        if (!(e instanceof DataError)) throw new Error(`trial ${trial}: ${(e as Error).name}: ${(e as Error).message}`);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(250);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});
