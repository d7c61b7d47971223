import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16, roundToFloat16 } from '../../src/core/index.js';
import { float16Bits, float16Value } from '../../src/core/float16.js';

describe('float16 codec', () => {
  it('encodes hand-checked values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite half
      [65519.99, 0x7bff], // below the midpoint 65520: rounds down
      [65520, 0x7c00], // midpoint between 65504 (odd mantissa) and 2^16: ties to even = infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [2 ** -25, 0x0000], // halfway between 0 and 2^-24: ties to even = 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 units: halfway between 1 (odd) and 2: ties to even = 2
      [5 * 2 ** -25, 0x0002], // 2.5 units: halfway between 2 (even) and 3: 2
      [-(2 ** -24), 0x8001],
      [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: even = 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 (odd) and 0x3c02: 0x3c02
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the midpoint
      [2049, 0x6800], // halfway between 2048 and 2050: 2048
      [2051, 0x6802], // halfway between 2050 (odd) and 2052: 2052
      [0.1, 0x2e66], // 0.0999755859375
      [1023.5 * 2 ** -24, 0x0400], // rounds up from the largest subnormal into the smallest normal
    ];
    for (const [value, bits] of cases) {
      expect(float16Bits(value), `encode ${value}`).toBe(bits);
    }
  });

  it('decodes hand-checked bits', () => {
    expect(float16Value(0x0000)).toBe(0);
    expect(Object.is(float16Value(0x8000), -0)).toBe(true);
    expect(float16Value(0x3c00)).toBe(1);
    expect(float16Value(0x7bff)).toBe(65504);
    expect(float16Value(0x0001)).toBe(2 ** -24);
    expect(float16Value(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16Value(0x0400)).toBe(2 ** -14);
    expect(float16Value(0x2e66)).toBe(0.0999755859375);
    expect(float16Value(0x7c00)).toBe(Infinity);
    expect(float16Value(0xfc00)).toBe(-Infinity);
    expect(float16Value(0x7e00)).toBeNaN();
    expect(float16Value(0xfd01)).toBeNaN();
  });

  it('keeps NaN a NaN', () => {
    const bits = float16Bits(NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x03ff).not.toBe(0);
    expect(float16Value(bits)).toBeNaN();
  });

  it('round-trips every finite half and agrees with the scalar decoder', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = decodeFloat16(all);
    const back = encodeFloat16(values);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) {
        expect(Number.isNaN(values[h])).toBe(true);
        continue;
      }
      if (back[h] !== h) expect.fail(`half 0x${h.toString(16)} came back as 0x${back[h].toString(16)}`);
      if (!Object.is(values[h], float16Value(h))) expect.fail(`table and scalar disagree at 0x${h.toString(16)}`);
    }
  });

  it('rounds to the nearest half (checked against a brute-force search)', () => {
    // For random float32 values in the normal and subnormal range, the encoded half must be
    // the closest one; on a tie, the one with an even mantissa.
    const finite = decodeFloat16(new Uint16Array(0x7c00).map((_, i) => i)); // 0 .. 65504
    let seed = 7;
    for (let t = 0; t < 2000; t++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const mag = Math.fround(2 ** ((seed / 2 ** 32) * 42 - 26)); // 2^-26 .. 2^16
      if (mag > 65504) continue;
      const h = float16Bits(mag);
      const got = float16Value(h);
      // Binary search for the neighbours of mag.
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (finite[mid] <= mag) lo = mid;
        else hi = mid;
      }
      const dLo = mag - finite[lo];
      const dHi = finite[hi] - mag;
      const want = dLo < dHi ? lo : dHi < dLo ? hi : (lo & 1) === 0 ? lo : hi;
      expect(got, `value ${mag}`).toBe(finite[want]);
    }
  });

  it('rounds arrays as float16 files store them', () => {
    expect(Array.from(roundToFloat16([0.1, -3, 1e5]))).toEqual([0.0999755859375, -3, Infinity]);
    expect(() => encodeFloat16([1, 2], new Uint16Array(3))).toThrow(/Expected out to have 2 elements/);
  });
});
