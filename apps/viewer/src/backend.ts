/**
 * The TensorFlow.js backend of the page: WebGPU where the browser has it, then WebGL (unless it
 * runs in software), then WebAssembly, then plain JavaScript. `?backend=wasm` (or webgl, webgpu, cpu) in the URL forces
 * one, as the browser test does to compare with Node.
 */
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { initBackend, tf } from 'sasha-wsi';

export const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type ViewerBackend = (typeof BACKENDS)[number];

/** What was chosen, and why the backends before it were not. */
export interface BackendChoice {
  name: string;
  skipped: string[];
}

/** Tries the backends in order; returns the first that initialises. */
export async function chooseBackend(forced: string | null): Promise<BackendChoice> {
  const order: readonly string[] = forced ? [forced] : BACKENDS;
  for (const name of order) {
    if (!(BACKENDS as readonly string[]).includes(name)) throw new Error(`Unknown backend '${name}' in the URL; use one of ${BACKENDS.join(', ')}.`);
  }
  // the wasm binaries are served next to the page (vite.config.ts copies them)
  setWasmPaths(new URL('tfjs-wasm/', document.baseURI).href);
  const skipped: string[] = [];
  for (const name of order) {
    try {
      if (name === 'webgpu' && !('gpu' in navigator)) {
        skipped.push('webgpu: not in this browser');
        continue;
      }
      if (name === 'webgl' && !forced) {
        const renderer = softwareWebGl();
        if (renderer) {
          skipped.push(`webgl: software renderer (${renderer}), slower than wasm`);
          continue;
        }
      }
      if (name === 'wasm' || name === 'cpu') {
        return { name: await initBackend(name), skipped };
      }
      if (await tf.setBackend(name)) {
        await tf.ready();
        // a backend that registers but cannot run a small op is no use
        const probe = tf.tidy(() => tf.sum(tf.mul(tf.ones([4]), 2)).dataSync()[0]);
        if (probe !== 8) throw new Error(`a test sum gave ${probe}`);
        tf.enableProdMode();
        return { name: tf.getBackend(), skipped };
      }
      skipped.push(`${name}: not available`);
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`No TensorFlow.js backend could start (${skipped.join('; ')}).`);
}

/**
 * The renderer's name when WebGL runs in software (SwiftShader, llvmpipe: a machine without a
 * usable GPU), else null. Measured on the demo: 51.8 s on SwiftShader WebGL against 2.7 s on
 * wasm (docs/guides/browser.md).
 */
function softwareWebGl(): string | null {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') ?? document.createElement('canvas').getContext('webgl');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    return /swiftshader|llvmpipe|softpipe|software/i.test(renderer) ? renderer : null;
  } catch {
    return null;
  }
}
