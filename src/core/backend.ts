/**
 * Backend selection.
 *
 * @packageDocumentation
 */
import { tf } from './tf.js';
import { ValueError } from './errors.js';

/**
 * A tfjs backend name: `'tensorflow'` (tfjs-node-gpu or tfjs-node), `'wasm'`, `'cpu'`,
 * `'webgl'`, `'webgpu'`, or the name of any other backend registered with tfjs.
 * @category Utils
 */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu' | 'webgl' | 'webgpu' | (string & {});

/** The order tried when nothing is preferred: native TensorFlow, then wasm, then cpu. */
export const DEFAULT_BACKEND_ORDER: readonly BackendName[] = Object.freeze(['tensorflow', 'wasm', 'cpu']);

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
 * Tries the backends in order: `'tensorflow'` loads `@tensorflow/tfjs-node-gpu` or
 * `@tensorflow/tfjs-node` (optional peers, by dynamic import); `'wasm'` loads
 * `@tensorflow/tfjs-backend-wasm` (a dependency; SIMD, single-threaded in Node); any other name
 * (`'cpu'`, `'webgl'`, `'webgpu'`, ...) must be registered with tfjs already, by importing its
 * package (`import '@tensorflow/tfjs-backend-webgl'`) before calling this. A backend that fails
 * to initialise is skipped. The `SASHA_BACKEND` environment variable (one name or a comma
 * list) overrides `prefer`.
 *
 * The wasm backend's Emscripten module installs process handlers for uncaught exceptions and
 * unhandled rejections that rethrow from inside tfjs (so that the first lines of any later
 * crash show tfjs code instead of the user's); they are removed again here.
 *
 * @param prefer one backend or an ordered list (default {@link DEFAULT_BACKEND_ORDER}).
 * @returns the name tfjs reports for the chosen backend.
 * @throws ValueError naming what was tried, and why each failed, when none initialises.
 * @example
 * ```ts
 * const backend = await initBackend();        // 'wasm' on a machine without tfjs-node
 * await initBackend('cpu');                    // force the pure-JS backend
 * import '@tensorflow/tfjs-backend-webgl';     // in a browser bundle
 * await initBackend(['webgl', 'wasm']);
 * ```
 * @category Utils
 */
export async function initBackend(
  prefer?: BackendName | readonly BackendName[],
  options: InitBackendOptions = {},
): Promise<BackendName> {
  const fromEnv = readEnv('SASHA_BACKEND');
  const order: readonly string[] =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv.split(',').map((s) => s.trim())
      : prefer === undefined
        ? DEFAULT_BACKEND_ORDER
        : typeof prefer === 'string'
          ? [prefer]
          : prefer;
  if (order.length === 0 || order.some((n) => typeof n !== 'string' || n === '')) {
    throw new ValueError(
      `Expected backend names such as 'wasm', 'cpu', 'webgl' or 'tensorflow', but got ${JSON.stringify(order)}` +
        (fromEnv ? ' (from SASHA_BACKEND). Fix the environment variable.' : '.'),
    );
  }
  const failures: string[] = [];
  for (const name of order) {
    const before = processListeners();
    try {
      if (name === 'tensorflow') {
        await loadNative();
      } else if (name === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths as string);
      } else if (!tf.findBackendFactory(name)) {
        failures.push(`${name}: not registered (import its package, e.g. '@tensorflow/tfjs-backend-${name}', before initBackend)`);
        continue;
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
    } finally {
      removeAddedListeners(before);
    }
  }
  throw new ValueError(
    `No tfjs backend could be initialised. Tried: ${failures.join('; ')}.` + (fromEnv ? ' Fix the environment variable SASHA_BACKEND, which chose these.' : ''),
  );
}

type ProcessLike = {
  listeners(event: string): ((...args: unknown[]) => void)[];
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
};
const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

/** The process's crash handlers (Node), or null in a browser. */
function processListeners(): Map<string, unknown[]> | null {
  const proc = (globalThis as { process?: Partial<ProcessLike> }).process;
  if (typeof proc?.listeners !== 'function') return null;
  return new Map(PROCESS_EVENTS.map((e) => [e, proc.listeners!(e)]));
}

/** The rethrowing handlers of an Emscripten module (tfjs-backend-wasm), by their source. */
const EMSCRIPTEN_HANDLER = /^function\s*\((ex|reason)\)\s*\{\s*(if\s*\(!\(ex instanceof ExitStatus\)\)\s*\{\s*throw ex;?\s*\}|throw reason;?)\s*\}$/;

/**
 * Removes the crash handlers a backend added since `before`, and any Emscripten rethrowing
 * handler installed earlier (when the wasm backend was set up outside initBackend).
 */
function removeAddedListeners(before: Map<string, unknown[]> | null): void {
  if (!before) return;
  const proc = (globalThis as { process?: ProcessLike }).process!;
  for (const event of PROCESS_EVENTS) {
    for (const listener of proc.listeners(event)) {
      if (!before.get(event)!.includes(listener) || EMSCRIPTEN_HANDLER.test(String(listener))) proc.removeListener(event, listener);
    }
  }
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
