import { describe, expect, it } from 'vitest';
import { createRng, ValueError } from '../../src/core/index.js';
import { checkNumber, checkOneOf, resolveConfig } from '../../src/core/config.js';
import { quoteValue } from '../../src/core/errors.js';
import { checkResume } from '../../src/core/checkpoint.js';
import { resolveWsiEnvConfig } from '../../src/mdp/defaults.js';

describe('Rng', () => {
  it('is deterministic per seed and uniform enough', () => {
    const a = createRng(7);
    const b = createRng(7);
    const c = createRng(8);
    const sa = Array.from({ length: 5 }, () => a.next());
    expect(sa).toEqual(Array.from({ length: 5 }, () => b.next()));
    expect(sa).not.toEqual(Array.from({ length: 5 }, () => c.next()));
    const r = createRng(1);
    let sum = 0;
    let sq = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.04);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 8000; i++) counts[r.int(4)]++;
    counts.forEach((k) => expect(Math.abs(k - 2000)).toBeLessThan(200));
  });

  it('permutation, sample and categorical', () => {
    const r = createRng(3);
    expect([...r.permutation(10)].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const s = r.sample(10, 4);
    expect(new Set(s).size).toBe(4);
    for (let i = 0; i < 200; i++) expect([1, 3]).toContain(r.categorical([0, 1, 0, 2]));
    expect(() => r.categorical([0, 0])).toThrow(ValueError);
    expect(() => r.sample(3, 4)).toThrow(ValueError);
  });
});

describe('resolveConfig', () => {
  const defaults: Readonly<{ gamma: number; gaeLambda: number }> = Object.freeze({ gamma: 1, gaeLambda: 0.95 });
  it('merges, freezes and checks', () => {
    const c = resolveConfig('GaeConfig', defaults, { gaeLambda: 0.94, gamma: undefined });
    expect(c).toEqual({ gamma: 1, gaeLambda: 0.94 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => resolveConfig('GaeConfig', defaults, { gae_lambda: 1 } as never)).toThrow(/Did you mean 'gaeLambda'/);
    expect(() =>
      resolveConfig('GaeConfig', defaults, { gamma: 2 }, (x) => checkNumber('GaeConfig', x, 'gamma', { min: 0, max: 1 })),
    ).toThrow(/Expected GaeConfig.gamma to be a finite number in \[0, 1\], but got 2/);
  });
});

describe('values from hostile files in messages', () => {
  // 100 000 nested lists, as a damaged sasha.json can hold: JSON.parse reads it, printing it would overflow the stack
  const deep = JSON.parse('['.repeat(100_000) + '1' + ']'.repeat(100_000)) as unknown;

  it('quoteValue caps long values at 60 characters and names values too deep to print', () => {
    expect(quoteValue(deep)).toBe('a value nested too deeply to print');
    expect(quoteValue('x'.repeat(100))).toBe(`"${'x'.repeat(56)}...`);
    expect(quoteValue(NaN)).toBe('NaN');
    expect(quoteValue({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(quoteValue('y'.repeat(300), 200)).toBe(`"${'y'.repeat(196)}...`);
  });

  it('checkResume names a differing setting, also when the checkpoint holds a value too deep to print', () => {
    const now = { resume: { seed: 1, lr: 0.001 }, epochs: 5 };
    expect(() => checkResume('HAFED', { resume: { seed: 1, lr: 0.001 }, epochsDone: 2 }, now)).not.toThrow();
    expect(() => checkResume('HAFED', { resume: { seed: 2, lr: 0.001 }, epochsDone: 2 }, now)).toThrow(/other settings: seed \(checkpoint: 2; now: 1\)\. Resume with the same settings/);
    expect(() => checkResume('HAFED', { resume: { seed: deep, lr: 0.001 }, epochsDone: 2 }, now)).toThrow(
      /seed \(checkpoint: a value nested too deeply to print; now: 1\)/,
    );
  });

  it('config checks throw their ValueError, not a stack overflow', () => {
    expect(() => checkNumber('C', { x: deep }, 'x')).toThrow(/Expected C\.x to be a finite number, but got a value nested too deeply to print\./);
    expect(() => checkOneOf('C', { x: deep }, 'x', ['a', 'b'])).toThrow(/Expected C\.x to be one of "a", "b", but got a value nested too deeply to print\./);
    expect(() => resolveWsiEnvConfig({ update: deep as 'tsu' })).toThrow(ValueError);
    expect(() => resolveWsiEnvConfig({ rewriteOnce: deep as boolean })).toThrow(/rewriteOnce to be a boolean, but got a value nested too deeply to print/);
  });
});
