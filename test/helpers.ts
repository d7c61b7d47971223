import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { tf } from '../src/core/index.js';

/** Reads a tensor or nested array into a flat number array. */
export function flat(x: tf.Tensor | ArrayLike<number> | number[][] | number): number[] {
  if (typeof x === 'number') return [x];
  if (x instanceof tf.Tensor) return Array.from(x.dataSync());
  return (Array.from(x as ArrayLike<unknown>) as unknown[]).flat(Infinity as 1) as number[];
}

/** Element-wise |a - b| <= atol + rtol |b|, with a readable failure. */
export function expectAllclose(
  actual: tf.Tensor | ArrayLike<number> | number[][] | number,
  expected: tf.Tensor | ArrayLike<number> | number[][] | number,
  { rtol = 1e-5, atol = 1e-6 }: { rtol?: number; atol?: number } = {},
): void {
  const a = flat(actual);
  const b = flat(expected);
  expect(a.length, 'length').toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const ok = Math.abs(a[i] - b[i]) <= atol + rtol * Math.abs(b[i]);
    if (!ok) expect.fail(`element ${i}: got ${a[i]}, expected ${b[i]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Runs `fn` on a given backend and switches back. */
export async function onBackend<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const prev = tf.getBackend();
  await tf.setBackend(name);
  await tf.ready();
  try {
    return await fn();
  } finally {
    await tf.setBackend(prev);
    await tf.ready();
  }
}

/** Central finite-difference gradient of a scalar function of one flat parameter vector. */
export function finiteDiff(f: (x: Float64Array) => number, x0: ArrayLike<number>, eps = 1e-3): Float64Array {
  const x = Float64Array.from(x0);
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + eps;
    const up = f(x);
    x[i] = keep - eps;
    const down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** Asserts that running `fn` leaves the number of live tensors unchanged. */
export async function expectNoLeak(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = tf.memory().numTensors;
  await fn();
  expect(tf.memory().numTensors, 'tensors alive after the call').toBe(before);
}

/**
 * A maker of fresh temporary directories for one test file; all of them are removed after the
 * file's tests.
 */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return (prefix) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}
