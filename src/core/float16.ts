/**
 * IEEE 754 half precision (binary16) codec, for feature files stored as float16 (the reference
 * code's `feat` datasets). Encoding rounds float32 values to the nearest half, ties to even;
 * overflow gives infinity, NaN stays NaN (quiet).
 *
 * Layout of a half: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Normal values are
 * `(-1)^s * 2^(e-15) * (1 + m/1024)`, subnormals `(-1)^s * 2^-14 * m/1024`; the largest finite
 * value is 65504 and the smallest positive subnormal `2^-24`.
 *
 * @packageDocumentation
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Encodes one number as half-precision bits (the value is first rounded to float32, as when a
 * float32 array is cast with `astype(float16)`).
 *
 * @returns the 16 bits as an integer in [0, 65535].
 * @example
 * ```ts
 * float16Bits(1);      // 0x3c00
 * float16Bits(65504);  // 0x7bff (largest finite half)
 * float16Bits(65520);  // 0x7c00 (rounds to infinity)
 * ```
 * @category Utils
 */
export function float16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Infinity, or NaN kept quiet with the top bits of its payload.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  if (exp > 142) return sign | 0x7c00; // |value| >= 2^16: infinity
  if (exp >= 113) {
    // Normal half: exponent exp - 127 in [-14, 15].
    let half = sign | ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // Round to nearest, ties to even; a carry moves into the exponent (up to infinity), as it should.
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
    return half;
  }
  // Subnormal half (or zero): count units of 2^-24.
  const shift = 126 - exp; // value = (mant | 2^23) * 2^(exp - 150) = m * 2^-24 / 2^shift
  if (shift > 24) return sign; // below half of the smallest subnormal (float32 subnormals included)
  const m = mant | 0x800000;
  let q = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (q & 1) === 1)) q++;
  return sign | q;
}

/**
 * Decodes half-precision bits to a number.
 * @param bits an integer in [0, 65535].
 * @example
 * ```ts
 * float16Value(0x3c00); // 1
 * float16Value(0x0001); // 5.960464477539063e-8 (2^-24)
 * ```
 * @category Utils
 */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let table: Float32Array | undefined;

/** All 65536 halves decoded once (256 KB), for fast array decoding. */
function decodeTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = float16Value(h);
  }
  return table;
}

/**
 * Encodes an array of numbers to half-precision bits.
 *
 * **Shapes:** any; `out` has the same length as `values`.
 * @param out optional destination (reused when given).
 * @returns the bits (a new array unless `out` is given).
 * @example
 * ```ts
 * encodeFloat16(new Float32Array([0, -0, 1])); // Uint16Array [0x0000, 0x8000, 0x3c00]
 * ```
 * @category Utils
 */
export function encodeFloat16(values: ArrayLike<number>, out = new Uint16Array(values.length)): Uint16Array {
  if (out.length !== values.length) {
    throw new RangeError(`Expected out to have ${values.length} elements, but got ${out.length}.`);
  }
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]);
  return out;
}

/**
 * Decodes half-precision bits to float32 values (exact: every half is a float32).
 * @param out optional destination (reused when given).
 * @returns the values (a new array unless `out` is given).
 * @example
 * ```ts
 * decodeFloat16(new Uint16Array([0x3c00, 0xc000])); // Float32Array [1, -2]
 * ```
 * @category Utils
 */
export function decodeFloat16(bits: ArrayLike<number>, out = new Float32Array(bits.length)): Float32Array {
  if (out.length !== bits.length) {
    throw new RangeError(`Expected out to have ${bits.length} elements, but got ${out.length}.`);
  }
  const t = decodeTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i] & 0xffff];
  return out;
}

/**
 * Rounds values to the nearest half-precision value, returned as float32 (what a float16
 * feature file stores).
 * @returns a new array.
 * @example
 * ```ts
 * roundToFloat16([0.1]); // Float32Array [0.0999755859375]
 * ```
 * @category Utils
 */
export function roundToFloat16(values: ArrayLike<number>): Float32Array {
  return decodeFloat16(encodeFloat16(values));
}
