/**
 * Defaults of the WSI environment, each with its source.
 *
 * @packageDocumentation
 */
import { checkNumber, checkOneOf, resolveConfig } from '../core/config.js';
import { quoteValue, ValueError } from '../core/errors.js';
import type { WsiEnvConfig } from './types.js';

/**
 * Defaults of {@link WsiEnv}: SASHA-0.2 on CAMELYON16.
 * @category MDP
 */
export const DEFAULT_WSI_ENV_CONFIG: Readonly<WsiEnvConfig> = Object.freeze({
  budget: 0.2, // docs/reference-code.md §10 item 13 (frac_visit 0.2 in the inference configs; SASHA-0.2)
  tau: 0.95, // docs/reference-code.md §4.3, cosine_threshold of the RL and inference configs
  rewriteOnce: true, // docs/reference-code.md §5.3 (training env); docs/implementation-details.md
  update: 'tsu' as const, // docs/reference-code.md §4.3 (fglobal: 'mlp' in every config)
});

/**
 * Resolves a partial {@link WsiEnvConfig}.
 * @throws ValueError naming the bad key.
 * @category MDP
 */
export function resolveWsiEnvConfig(partial?: Partial<WsiEnvConfig> | null): Readonly<WsiEnvConfig> {
  const name = 'WsiEnvConfig';
  return resolveConfig(name, DEFAULT_WSI_ENV_CONFIG, partial, (c) => {
    checkNumber(name, c, 'budget', { min: 0, minExclusive: true, max: 1 });
    checkNumber(name, c, 'tau', { min: 0, minExclusive: true, max: 1 });
    if (typeof c.rewriteOnce !== 'boolean') {
      throw new ValueError(`Expected ${name}.rewriteOnce to be a boolean, but got ${quoteValue(c.rewriteOnce)}.`);
    }
    checkOneOf(name, c, 'update', ['tsu', 'global', 'none']);
  });
}

/**
 * The number of steps of an episode, T = ceil(f N) (at least 1). A relative tolerance of 1e-9
 * absorbs floating-point noise in f N (0.1 x 30 is 3.0000000000000004 in binary floating point).
 *
 * @example
 * ```ts
 * budgetSteps(0.2, 1001); // 201
 * budgetSteps(0.1, 30);   // 3
 * ```
 * @category MDP
 */
export function budgetSteps(budget: number, numPatches: number): number {
  if (!(budget > 0 && budget <= 1)) throw new ValueError(`Expected the budget f to be in (0, 1], but got ${budget}.`);
  if (!(Number.isInteger(numPatches) && numPatches > 0)) {
    throw new ValueError(`Expected N to be a positive integer, but got ${numPatches}.`);
  }
  const x = budget * numPatches;
  return Math.min(numPatches, Math.max(1, Math.ceil(x - 1e-9 * x)));
}
