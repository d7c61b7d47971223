import { existsSync, readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const entries: Record<string, string> = {
  index: 'src/index.ts',
  'core/index': 'src/core/index.ts',
  'synthetic/index': 'src/wsi/synthetic/index.ts',
  'hafed/index': 'src/hafed/index.ts',
  'tsu/index': 'src/tsu/index.ts',
  'mdp/index': 'src/mdp/index.ts',
  'ppo/index': 'src/ppo/index.ts',
  'pipeline/index': 'src/pipeline/index.ts',
  'wsi/index': 'src/wsi/index.ts',
  'node/index': 'src/node/index.ts',
  'node/cli/main': 'src/node/cli/main.ts',
  'node/slide_worker': 'src/node/slide_worker.ts',
  'node/hafed_worker': 'src/node/hafed_worker.ts',
};

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

export default defineConfig({
  define: { __SASHA_VERSION__: JSON.stringify(version) },
  // Component entries appear as their folders are written.
  entry: Object.fromEntries(Object.entries(entries).filter(([, file]) => existsSync(file))),
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  splitting: true,
  // Every bare import stays external: peers are never bundled, and the optional tfjs-node
  // peers are loaded at run time through variable specifiers.
  external: [/^[^./]/],
});
