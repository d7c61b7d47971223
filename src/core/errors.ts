/**
 * Error classes of the library. Every message follows "Expected <name> to be <constraint>, but
 * got <value>." and, where one exists, names the fix.
 *
 * @packageDocumentation
 */

/**
 * Base class of every error the library throws on purpose.
 * @category Utils
 */
export class SashaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A value is outside its allowed range or set (a config key, a label, a budget).
 * @category Utils
 */
export class ValueError extends SashaError {}

/**
 * A tensor or array has the wrong rank or size. The message prints the expected and the actual shape.
 * @category Utils
 */
export class ShapeError extends SashaError {}

/**
 * Input data is unusable: a missing slide, a corrupt or truncated file, NaN features.
 * The message names the slide or file.
 * @category Utils
 */
export class DataError extends SashaError {}

/**
 * An object was used in the wrong state (stepping an environment before `reset`, using a
 * disposed model).
 * @category Utils
 */
export class StateError extends SashaError {}

/**
 * Throws `new ErrorClass(message())` when `condition` is false. The message is built lazily.
 *
 * @example
 * ```ts
 * assert(tau > 0 && tau <= 1, () => `Expected tau to be in (0, 1], but got ${tau}.`);
 * ```
 * @category Utils
 */
export function assert(
  condition: unknown,
  message: () => string,
  ErrorClass: new (message: string) => SashaError = ValueError,
): asserts condition {
  if (!condition) throw new ErrorClass(message());
}

/**
 * Formats a shape for error messages: `[3, 4]`.
 * @category Utils
 */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Quotes a value read from a user's file or config for an error message: JSON, at most
 * `maxLength` characters (longer text ends in `...`), numbers as written (`NaN`, `Infinity`),
 * and values nested too deeply to print (hostile input) named instead of overflowing the stack.
 * @internal
 */
export function quoteValue(value: unknown, maxLength = 60): string {
  if (typeof value === 'number' || typeof value === 'bigint' || value === undefined) return String(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return 'a value nested too deeply to print';
  }
  if (text === undefined) return typeof value;
  return text.length > maxLength ? `${text.slice(0, maxLength - 3)}...` : text;
}
