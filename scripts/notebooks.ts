// Executes the notebooks of notebooks/ headless: Jupyter's nbconvert runs each one with Deno's
// Jupyter kernel, the `deno` binary of the `deno` dev dependency. The kernelspec is written
// into a temporary JUPYTER_PATH, and Jupyter's runtime files and Deno's cache go to the same
// temporary folder, so nothing in the home folder is read or written.
//
//   npm run notebooks                     # build, then execute every notebook in place (refreshes the committed outputs)
//   npx tsx scripts/notebooks.ts 02       # only the notebooks whose name starts with 02
//   npx tsx scripts/notebooks.ts --out D  # write the executed copies to folder D instead
//
// The notebooks import the built package (dist/): `npm run build` first (`npm run notebooks`
// does). test/notebooks/notebooks.test.ts uses the functions below.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The folder of the notebooks. */
export const NOTEBOOKS_DIR = path.join(root, 'notebooks');
/** Seconds a single cell may run before nbconvert stops the notebook with an error. */
export const CELL_TIMEOUT_S = 300;
/** The kernel's name in the notebooks' metadata (as `deno jupyter --install` registers it). */
export const KERNEL_NAME = 'deno';

/** The notebooks, sorted by name (their number). */
export function listNotebooks(): string[] {
  return readdirSync(NOTEBOOKS_DIR)
    .filter((f) => f.endsWith('.ipynb'))
    .sort()
    .map((f) => path.join(NOTEBOOKS_DIR, f));
}

/** Whether Jupyter's nbconvert can be run (`apt-get install jupyter-nbconvert` or `pip install nbconvert`). */
export function haveNbconvert(): boolean {
  const r = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/** Path of the Deno executable shipped by the `deno` npm package (its platform package's binary). */
export function denoBinary(): string {
  const require = createRequire(import.meta.url);
  const api = require('deno/install_api.cjs') as { runInstall(): string };
  return api.runInstall();
}

/** A kernel environment: a temporary folder holding the Deno kernelspec, Jupyter's runtime files and Deno's cache. */
export interface KernelHome {
  /** The temporary folder. */
  dir: string;
  /** The environment for `jupyter nbconvert` (JUPYTER_PATH, JUPYTER_DATA_DIR, JUPYTER_RUNTIME_DIR, DENO_DIR, ...). */
  env: NodeJS.ProcessEnv;
  /** Removes the folder. */
  dispose(): void;
}

/** Writes the Deno kernelspec into a fresh temporary JUPYTER_PATH. */
export function makeKernelHome(): KernelHome {
  const dir = mkdtempSync(path.join(tmpdir(), 'sasha-notebooks-'));
  const spec = path.join(dir, 'jupyter', 'kernels', KERNEL_NAME);
  mkdirSync(spec, { recursive: true });
  // the kernelspec of `deno jupyter --install`, with the binary from node_modules
  const kernel = { argv: [denoBinary(), 'jupyter', '--kernel', '--conn', '{connection_file}'], display_name: 'Deno', language: 'typescript' };
  writeFileSync(path.join(spec, 'kernel.json'), JSON.stringify(kernel, null, 2) + '\n');
  for (const sub of ['runtime', 'data', 'config', 'deno']) mkdirSync(path.join(dir, sub), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_PATH: path.join(dir, 'jupyter'),
    JUPYTER_DATA_DIR: path.join(dir, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
    JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
    JUPYTER_PLATFORM_DIRS: '1',
    DENO_DIR: path.join(dir, 'deno'),
    DENO_NO_UPDATE_CHECK: '1',
    NO_COLOR: '1',
    PYTHONPATH: [path.join(root, 'scripts'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
  };
  delete env.SASHA_BACKEND; // the notebooks choose their backend with initBackend()
  return { dir, env, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What {@link executeNotebook} did. */
export interface NotebookRun {
  /** The executed notebook's path. */
  output: string;
  /** Wall time of nbconvert, in seconds. */
  seconds: number;
  /** nbconvert's exit status (0: every cell ran without error). */
  status: number | null;
  /** nbconvert's messages (the failing cell and its error when status is not 0). */
  log: string;
}

/**
 * Executes one notebook with nbconvert and the Deno kernel. The kernel starts in the
 * notebook's own folder (so `./display.ts` and the package resolve as when a person opens it).
 *
 * @param file the `.ipynb` file.
 * @param options `outDir`: write the executed copy there (default: in place); `home`: a kernel
 *   home from {@link makeKernelHome} (default: a fresh one, removed afterwards).
 */
export function executeNotebook(file: string, options: { outDir?: string; home?: KernelHome; cellTimeout?: number } = {}): NotebookRun {
  const home = options.home ?? makeKernelHome();
  try {
    const args = [
      'nbconvert',
      '--to',
      'notebook',
      // nbconvert's ExecutePreprocessor, with the late output of Deno's kernel kept (scripts/nbconvert_deno.py)
      '--NotebookExporter.preprocessors=nbconvert_deno.DenoExecutePreprocessor',
      '--DenoExecutePreprocessor.enabled=True',
      `--DenoExecutePreprocessor.kernel_name=${KERNEL_NAME}`,
      `--DenoExecutePreprocessor.timeout=${options.cellTimeout ?? CELL_TIMEOUT_S}`,
      '--DenoExecutePreprocessor.startup_timeout=120',
      '--DenoExecutePreprocessor.record_timing=False',
      ...(options.outDir ? ['--output-dir', options.outDir] : ['--inplace']),
      file,
    ];
    const t0 = performance.now();
    const r = spawnSync('jupyter', args, { cwd: path.dirname(file), env: home.env, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    const seconds = (performance.now() - t0) / 1000;
    const output = options.outDir ? path.join(options.outDir, path.basename(file)) : file;
    const log = `${r.error ? `${r.error.message}\n` : ''}${r.stdout ?? ''}${r.stderr ?? ''}`;
    return { output, seconds, status: r.status, log };
  } finally {
    if (!options.home) home.dispose();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const outDir = at >= 0 ? path.resolve(args.splice(at, 2)[1]) : undefined;
  if (!haveNbconvert()) {
    console.error('Executing the notebooks needs Jupyter nbconvert: apt-get install jupyter-nbconvert (Debian, Ubuntu) or pip install nbconvert.');
    process.exit(1);
  }
  if (!existsSync(path.join(root, 'dist', 'index.js'))) {
    console.error('The notebooks import the built package: run `npm run build` first (`npm run notebooks` does).');
    process.exit(1);
  }
  const files = listNotebooks().filter((f) => args.length === 0 || args.some((a) => path.basename(f).startsWith(a)));
  if (files.length === 0) {
    console.error(`No notebook in ${path.relative(root, NOTEBOOKS_DIR)}/ matches ${args.join(', ')}.`);
    process.exit(1);
  }
  if (outDir) mkdirSync(outDir, { recursive: true });
  const home = makeKernelHome();
  let failed = 0;
  let total = 0;
  try {
    for (const file of files) {
      process.stdout.write(`${path.relative(root, file)} ... `);
      const run = executeNotebook(file, { outDir, home });
      total += run.seconds;
      if (run.status === 0) {
        console.log(`${run.seconds.toFixed(1)} s`);
      } else {
        failed++;
        console.log(`failed after ${run.seconds.toFixed(1)} s\n${run.log}`);
      }
    }
  } finally {
    home.dispose();
  }
  console.log(`${files.length - failed} of ${files.length} notebooks executed in ${total.toFixed(1)} s${outDir ? ` into ${outDir}` : ''}`);
  process.exit(failed > 0 ? 1 : 0);
}
