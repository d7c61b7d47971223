/**
 * Vite build of the slide viewer: a static site (`apps/viewer/dist/`, relative URLs) that
 * imports `sasha-wsi` as a user's app does, from the built package (`npm run build` first),
 * and ships the tfjs wasm binaries under `tfjs-wasm/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
const WASM_DIR = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** Resolves `sasha-wsi` and its subpaths through the package's own `exports` (ESM), to `dist/`. */
function sashaPackage(): Plugin {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { import?: { default?: string } | string }> };
  return {
    name: 'sasha-wsi-package',
    enforce: 'pre',
    resolveId(id) {
      if (id !== 'sasha-wsi' && !id.startsWith('sasha-wsi/')) return null;
      const key = id === 'sasha-wsi' ? '.' : `./${id.slice('sasha-wsi/'.length)}`;
      const entry = pkg.exports[key];
      const target = typeof entry?.import === 'string' ? entry.import : entry?.import?.default;
      if (!target) this.error(`'${id}' is not an export of sasha-wsi (package.json "exports").`);
      const file = join(ROOT, target);
      if (!existsSync(file)) this.error(`${file} is missing: build the library first (npm run build).`);
      return file;
    },
  };
}

/** Serves and emits the tfjs wasm binaries under `tfjs-wasm/` (the page calls setWasmPaths with it). */
function tfjsWasm(): Plugin {
  return {
    name: 'tfjs-wasm-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const m = /\/tfjs-wasm\/([\w.-]+\.wasm)$/.exec(req.url ?? '');
        if (!m || !WASM_FILES.includes(m[1])) return next();
        res.setHeader('Content-Type', 'application/wasm');
        res.end(readFileSync(join(WASM_DIR, m[1])));
      });
    },
    generateBundle() {
      for (const f of WASM_FILES) this.emitFile({ type: 'asset', fileName: `tfjs-wasm/${f}`, source: readFileSync(join(WASM_DIR, f)) });
    },
  };
}

export default defineConfig({
  root: HERE,
  base: './',
  plugins: [sashaPackage(), tfjsWasm()],
  worker: { format: 'es', plugins: () => [sashaPackage()] },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096 },
  server: { port: 5173 },
});
