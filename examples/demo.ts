/**
 * Demo: generate the `small` synthetic cohort, write it as h5 feature files in the reference
 * layout, read it back lazily, and print what was read.
 *
 * Run: npm run demo
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeBag, initBackend } from '../src/index.js';
import { formatCohortSummary, generateSyntheticCohort, summarizeCohort, summarizeSlides, SYNTHETIC_PRESETS } from '../src/wsi/index.js';
import { H5FeatureDataset, readSplitFile, writeSyntheticCohortFiles } from '../src/node/index.js';

async function main(): Promise<void> {
  const t0 = performance.now();
  const backend = await initBackend();
  const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);

  const cohort = generateSyntheticCohort(SYNTHETIC_PRESETS.small);
  console.log(`Generated the 'small' synthetic cohort on tfjs-${backend} (${seconds()} s):`);
  console.log(indent(formatCohortSummary(summarizeCohort(cohort))));

  const dir = mkdtempSync(join(tmpdir(), 'sasha-demo-'));
  try {
    const files = await writeSyntheticCohortFiles(dir, cohort);
    cohort.bags.forEach(disposeBag);
    const sizes = readdirSync(dir).map((f) => `${f} (${(statSync(join(dir, f)).size / 2 ** 20).toFixed(2)} MiB)`);
    console.log(`\nWrote ${sizes.join(', ')} to ${dir} (${seconds()} s).`);

    const dataset = await H5FeatureDataset.open(files);
    const split = readSplitFile(files.split, dataset);
    const numPatches: number[] = [];
    let checked = 0;
    for (const id of dataset.ids) {
      numPatches.push(dataset.numPatches(id));
      const bag = await dataset.load(id, ['lowRes', 'highRes']);
      checked += bag.highRes!.size;
      disposeBag(bag);
    }
    console.log(`\nRead back through H5FeatureDataset (float16 feat, ${(checked / 1e6).toFixed(1)} M high-res values, ${seconds()} s):`);
    console.log(
      indent(formatCohortSummary(summarizeSlides({ ids: dataset.ids, labels: dataset.labels, numPatches, dim: dataset.dim, k: dataset.k, split }))),
    );
    dataset.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nDone in ${seconds()} s.`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

main().catch((e) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
