/**
 * Config resolution: every entry point takes `Partial<XConfig>`, merges it over frozen
 * documented defaults, checks it, and stores the complete, frozen result.
 *
 * @packageDocumentation
 */
import { quoteValue, ValueError } from './errors.js';

/** A check run on the merged config; it throws a {@link ValueError} naming the bad key. */
export type ConfigCheck<T> = (config: T) => void;

/**
 * Merges `partial` over `defaults`, rejects unknown keys (naming the closest known key), runs
 * `check`, and returns a frozen copy. `undefined` values in `partial` keep the default.
 *
 * @param name  the config's name, used in messages (`'HafedConfig'`).
 * @example
 * ```ts
 * const c = resolveConfig('GaeConfig', { gamma: 1, gaeLambda: 0.95 }, { gaeLambda: 0.94 });
 * // c = { gamma: 1, gaeLambda: 0.94 } (frozen)
 * ```
 * @category Utils
 */
export function resolveConfig<T extends object>(
  name: string,
  defaults: Readonly<T>,
  partial?: Partial<T> | null,
  check?: ConfigCheck<T>,
): Readonly<T> {
  const known = Object.keys(defaults);
  const out = { ...defaults } as T;
  if (partial != null) {
    if (typeof partial !== 'object') {
      throw new ValueError(`Expected ${name} to be an object, but got ${typeof partial}.`);
    }
    for (const [key, value] of Object.entries(partial)) {
      if (!known.includes(key)) {
        const near = closest(key, known);
        throw new ValueError(
          `Unknown key '${key}' in ${name}.` +
            (near ? ` Did you mean '${near}'?` : '') +
            ` Known keys: ${known.join(', ')}.`,
        );
      }
      if (value !== undefined) (out as Record<string, unknown>)[key] = value;
    }
  }
  check?.(out);
  return Object.freeze(out);
}

/** Checks that `config[key]` is a number in a range; throws a {@link ValueError} otherwise. */
export function checkNumber<T>(
  name: string,
  config: T,
  key: keyof T & string,
  opts: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; integer?: boolean } = {},
): void {
  const v = config[key] as unknown;
  const lo = opts.min === undefined ? '' : opts.minExclusive ? `(${opts.min}` : `[${opts.min}`;
  const hi = opts.max === undefined ? '' : opts.maxExclusive ? `${opts.max})` : `${opts.max}]`;
  const range = lo || hi ? ` in ${lo || '(-inf'}, ${hi || 'inf)'}` : '';
  const what = `${opts.integer ? 'an integer' : 'a finite number'}${range}`;
  const bad =
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    (opts.integer && !Number.isInteger(v)) ||
    (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) ||
    (opts.max !== undefined && (opts.maxExclusive ? v >= opts.max : v > opts.max));
  if (bad) throw new ValueError(`Expected ${name}.${key} to be ${what}, but got ${quoteValue(v)}.`);
}

/** Checks that `config[key]` is one of `allowed`. */
export function checkOneOf<T>(name: string, config: T, key: keyof T & string, allowed: readonly unknown[]): void {
  const v = config[key] as unknown;
  if (!allowed.includes(v)) {
    throw new ValueError(
      `Expected ${name}.${key} to be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, but got ${quoteValue(v)}.`,
    );
  }
}

function closest(key: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}
