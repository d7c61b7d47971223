/**
 * The package version.
 *
 * @packageDocumentation
 */
declare const __SASHA_VERSION__: string | undefined;

/**
 * The version of sasha-wsi, from its package.json (set when the package is built; the test
 * setup sets it for the sources too).
 * @example
 * ```ts
 * console.log(`sasha-wsi ${VERSION}`);
 * ```
 * @category Utils
 */
export const VERSION: string = typeof __SASHA_VERSION__ === 'string' ? __SASHA_VERSION__ : '0.0.0-source';
