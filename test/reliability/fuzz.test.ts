// The fast slice of the fuzzing of every reader of untrusted bytes (the full run is
// `npx tsx scripts/fuzz.ts`, whose counts are in docs/reliability.md). Each case runs in a child
// process with a heap limit, a resident-memory cap and a CPU-time bound; every case must end
// accepted or in the library's own error class: no foreign error, crash, hang, memory kill, or
// tensor left alive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../wsi/fixtures.js';
import { FUZZ_TARGETS } from './fuzz_targets.js';
import { DEFAULT_FUZZ_LIMITS, makeSeeds, runFuzz, type FuzzReport } from './harness.js';

/** Cases per target in `npm test`; SASHA_FUZZ_CASES raises it. */
const CASES = Number(process.env.SASHA_FUZZ_CASES ?? 25);
const tmp = tempDir('sasha-fuzz-');
afterAll(() => tmp.cleanup());

let reports: FuzzReport[] = [];

beforeAll(async () => {
  await makeSeeds(tmp.path('seeds'));
  reports = await runFuzz(
    FUZZ_TARGETS.map((t) => ({ target: t.name, count: CASES })),
    { seedsDir: tmp.path('seeds'), workDir: tmp.path('work'), seed: 20261127 },
  );
}, 600_000);

describe('fuzzing the readers (fast slice)', () => {
  for (const t of FUZZ_TARGETS) {
    it(`${t.name}: ${CASES} damaged inputs end accepted or in the library's error class, in bounded time and memory`, () => {
      const r = reports.find((x) => x.target === t.name)!;
      const bad = r.findings.filter((f) => f.outcome !== 'accepted' && f.outcome !== 'error');
      expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
      expect(r.cases).toBe(CASES);
      expect(r.counts.accepted + r.counts.error).toBe(CASES);
      // the damage is real: most inputs are refused
      expect(r.counts.error).toBeGreaterThan(CASES / 4);
      expect(r.leakedCases).toBe(0);
      expect(r.maxCpuMs).toBeLessThan(DEFAULT_FUZZ_LIMITS.caseCpuMs);
      expect(r.peakRss).toBeLessThan(DEFAULT_FUZZ_LIMITS.rssCapMb * 2 ** 20);
      expect(r.maxGrowth.bytes).toBeLessThan(256 * 2 ** 20);
    });
  }
});
