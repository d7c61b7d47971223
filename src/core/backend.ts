/**
 * Backend selection.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { ValueError } from './errors.js';

/** A backend {@link initBackend} can choose. `tensorflow` is tfjs-node-gpu or tfjs-node. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The order tried when nothing is preferred: native TensorFlow, then wasm, then cpu. */
export const DEFAULT_BACKEND_ORDER: readonly BackendName[] = Object.freeze(['tensorflow', 'wasm', 'cpu']);

const KNOWN: readonly string[] = ['tensorflow', 'wasm', 'cpu'];

let announced = false;

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Called once with the chosen backend and what was tried (default: silent). */
  log?: (message: string) => void;
  /** Directory (ending in `/`) or file map for the wasm binaries, for bundled builds. */
  wasmPaths?: string | Record<string, string>;
}

/**
 * Chooses and initialises a tfjs backend and returns its name.
 *
 * Tries, in order, `@tensorflow/tfjs-node-gpu` then `@tensorflow/tfjs-node` (optional peers,
 * loaded by dynamic import), `wasm` (a dependency; SIMD, single-threaded in Node) and `cpu`.
 * The `SASHA_BACKEND` environment variable (`tensorflow`, `wasm` or `cpu`, or a comma list)
 * overrides `prefer`. A backend that fails to load is skipped.
 *
 * @param prefer one backend or an ordered list (default {@link DEFAULT_BACKEND_ORDER}).
 * @returns the name tfjs reports for the chosen backend (`'tensorflow'`, `'wasm'` or `'cpu'`).
 * @example
 * ```ts
 * const backend = await initBackend();        // 'wasm' on a machine without tfjs-node
 * await initBackend('cpu');                    // force the pure-JS backend
 * ```
 * @category Utils
 */
export async function initBackend(
  prefer?: BackendName | readonly BackendName[],
  options: InitBackendOptions = {},
): Promise<string> {
  const fromEnv = readEnv('SASHA_BACKEND');
  let order: readonly string[] =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv.split(',').map((s) => s.trim())
      : prefer === undefined
        ? DEFAULT_BACKEND_ORDER
        : typeof prefer === 'string'
          ? [prefer]
          : prefer;
  for (const name of order) {
    if (!KNOWN.includes(name)) {
      throw new ValueError(
        `Expected a backend name in ${KNOWN.join(', ')}, but got '${name}'` +
          (fromEnv ? ' (from SASHA_BACKEND). Fix the environment variable.' : '.'),
      );
    }
  }
  order = [...order];
  const failures: string[] = [];
  for (const name of order) {
    try {
      if (name === 'tensorflow') {
        await loadNative();
      } else if (name === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths as string);
      }
      if (tf.getBackend() === name) {
        announce(name, failures, options.log);
        return name;
      }
      if (await tf.setBackend(name)) {
        await tf.ready();
        tf.enableProdMode();
        announce(name, failures, options.log);
        return tf.getBackend();
      }
      failures.push(`${name}: setBackend returned false`);
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new ValueError(`No tfjs backend could be initialised. Tried: ${failures.join('; ')}.`);
}

async function loadNative(): Promise<void> {
  // Specifiers held in variables: bundlers leave these imports alone, and the packages are
  // optional peers that are usually absent.
  const gpu = '@tensorflow/tfjs-node-gpu';
  const cpu = '@tensorflow/tfjs-node';
  try {
    await import(/* @vite-ignore */ gpu);
  } catch {
    await import(/* @vite-ignore */ cpu);
  }
}

function announce(name: string, failures: string[], log?: (m: string) => void): void {
  if (announced || !log) return;
  announced = true;
  log(`sasha-wsi: using tfjs backend '${name}'` + (failures.length ? ` (skipped: ${failures.join('; ')})` : ''));
}

/** Reads an environment variable where one exists (Node), and `undefined` in browsers. */
export function readEnv(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}
