/**
 * The fuzzing child process: runs cases `[from, to)` of each target it is given, one JSON line
 * per case. Started by `harness.ts` with a heap limit; the parent watches its memory and time
 * and kills it on a hang or an allocation past the cap.
 *
 * argv[2]: JSON `{ jobs: [{ target, from, to }], seedsDir, workDir, seed }`.
 * stdout: `{"ready": true}` once loaded, `{"begin": i, "target"}` before case i, then
 * `{"target", "case": i, "outcome", ...}`.
 */
import '@tensorflow/tfjs-backend-cpu';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../src/core/backend.js';
import { SashaError } from '../../src/core/errors.js';
import { tf } from '../../src/core/tf.js';
import { fuzzTarget, warmUp, type SeedBundle } from './fuzz_targets.js';
import { caseRng, mutate } from './mutate.js';

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as { jobs: { target: string; from: number; to: number }[]; seedsDir: string; workDir: string; seed: number };
  await initBackend('cpu');
  const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  await warmUp();
  say({ ready: true });
  for (const job of args.jobs) {
    const target = fuzzTarget(job.target);
    const bundles = JSON.parse(readFileSync(join(args.seedsDir, `${job.target}.json`), 'utf8')) as SeedBundle[];
    const seedRoot = join(args.seedsDir, job.target);
    for (let i = job.from; i < job.to; i++) {
      say({ begin: i, target: job.target });
      const rng = caseRng(args.seed, job.target, i);
      const bundle = bundles[rng.int(bundles.length)];
      const file = bundle.files[rng.int(bundle.files.length)];
      const root = join(args.workDir, 'case');
      rmSync(root, { recursive: true, force: true });
      mkdirSync(args.workDir, { recursive: true });
      cpSync(join(seedRoot, bundle.name), root, { recursive: true });
      const m = mutate(new Uint8Array(readFileSync(join(root, file.path))), file.kind, rng);
      writeFileSync(join(root, file.path), m.bytes);
      const tensors = tf.memory().numTensors;
      const t0 = performance.now();
      let outcome: 'accepted' | 'error' | 'foreign';
      let message: string | undefined;
      try {
        await target.read(root, bundle);
        outcome = 'accepted';
      } catch (e) {
        outcome = e instanceof SashaError ? 'error' : 'foreign';
        message = `${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 400)}`;
        if (outcome === 'foreign') message += `\n${String((e as Error)?.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
      }
      const ms = performance.now() - t0;
      const leaked = tf.memory().numTensors - tensors;
      say({
        target: job.target,
        case: i,
        outcome,
        ms: +ms.toFixed(1),
        kind: m.kind,
        file: `${bundle.name}/${file.path}`,
        leaked,
        message: outcome === 'error' ? message?.slice(0, 200) : message,
      });
    }
  }
  say({ done: true });
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`fuzz child failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(3);
  },
);
