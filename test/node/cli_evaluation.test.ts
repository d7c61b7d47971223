import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticCohort, SYNTHETIC_PRESETS, syntheticSlide, syntheticSplit, syntheticTumourFractions, tumourClass } from '../../src/wsi/synthetic/index.js';
import { readModelManifest, writeSyntheticCohortFiles } from '../../src/node/index.js';
import { findPolicy } from '../../src/node/cli/model_eval.js';
import { parseBudgets } from '../../src/node/cli/eval_sweep.js';
import { recordedFlags } from '../../src/node/cli/args.js';
import type { PolicyManifestEntry } from '../../src/node/cli/train_sasha.js';
import { lastJson, sasha } from './cli_capture.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'sasha-eval-'));
let files: { lrH5: string; hrH5: string; split: string };
let model: string;

beforeAll(async () => {
  files = await writeSyntheticCohortFiles(tmp(), generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, seed: 11 }));
  model = path.join(tmp(), 'model');
  const r = await sasha(
    'train', 'all', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', model,
    '--budget', '0.2', '--hafed-epochs', '2', '--tsu-epochs', '2', '--policy-epochs', '1', '--seed', '3', '--quiet',
  );
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

const PNG = [0x89, 0x50, 0x4e, 0x47];

describe('sasha eval --budgets (budget sweep with calibration)', () => {
  it('evaluates every budget in one run, names the nearest trained policy and writes the plots', async () => {
    const plots = path.join(tmp(), 'plots');
    const r = await sasha('eval', '--model', model, '--budgets', '1,0.1,0.2,0.5', '--plots', plots, '--json', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(j.budgets.map((b: { budget: number }) => b.budget)).toEqual([0.1, 0.2, 0.5, 1]);
    for (const b of j.budgets) {
      for (const key of ['accuracy', 'auc', 'f1', 'ece', 'balancedAccuracy', 'n', 'reliability']) expect(b).toHaveProperty(key);
      expect(b.n).toBe(3);
      expect(b.reliability).toHaveLength(15);
      // the reliability bins hold every slide, and the ECE is their weighted gap
      expect(b.reliability.reduce((a: number, x: { count: number }) => a + x.count, 0)).toBe(3);
      const ece = b.reliability.reduce((a: number, x: { count: number; accuracy: number; confidence: number }) => (x.count ? a + (x.count / 3) * Math.abs(x.accuracy - x.confidence) : a), 0);
      expect(b.ece).toBeCloseTo(ece, 12);
    }
    // only f = 0.2 has a policy: 0.1 and 0.5 use it and say so; budget 1 is HAFED
    expect(j.budgets[0]).toMatchObject({ budget: 0.1, policyBudget: 0.2, policySlot: '0.2' });
    expect(j.budgets[1]).toMatchObject({ budget: 0.2, policyBudget: 0.2 });
    expect(j.budgets[2]).toMatchObject({ budget: 0.5, policyBudget: 0.2 });
    expect(j.budgets[3]).not.toHaveProperty('policyBudget');
    expect(j.budgets[3].zoomedFraction).toBe(1);
    expect(j.budgets[1].zoomedFraction).toBeGreaterThanOrEqual(0.2);
    // budget 1 equals `sasha eval --budget 1` (HAFED on every high-res patch)
    const full = lastJson((await sasha('eval', '--model', model, '--budget', '1', '--json', '--quiet')).stdout);
    expect(j.budgets[3].accuracy).toBe(full.accuracy);
    expect(j.budgets[3].auc).toBeCloseTo(full.auc, 6);
    // the plots: one curve and a reliability diagram per budget, SVG and PNG
    expect(readdirSync(plots).sort()).toEqual(
      ['accuracy_ece_vs_budget', 'reliability_f0.1', 'reliability_f0.2', 'reliability_f0.5', 'reliability_f1'].flatMap((b) => [`${b}.png`, `${b}.svg`]).sort(),
    );
    expect([...readFileSync(path.join(plots, 'accuracy_ece_vs_budget.png')).subarray(0, 4)]).toEqual(PNG);
    const svg = readFileSync(path.join(plots, 'accuracy_ece_vs_budget.svg'), 'utf8');
    expect(svg.match(/<circle /g)).toHaveLength(8); // 4 budgets x (accuracy, ECE)
    expect(svg).toContain(j.budgets[0].accuracy.toFixed(3));
    // the human table names the policy used for each budget
    const human = await sasha('eval', '--model', model, '--budgets', '0.1,1', '--quiet');
    expect(human.stdout).toMatch(/0\.1 +learned \(policy of f = 0\.2\)/);
    expect(human.stdout).toMatch(/1 +HAFED \(all high-res\)/);
  });

  it('bad input: malformed budgets, both flags, plots without a sweep', async () => {
    for (const bad of ['0,0.2', '0.2,x', '1.5', '']) {
      const r = await sasha('eval', '--model', model, '--budgets', bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--budgets to be a comma-separated list of fractions in \(0, 1\]/);
    }
    const both = await sasha('eval', '--model', model, '--budgets', '0.2,1', '--budget', '0.2');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/either --budget .* or --budgets/);
    const plots = await sasha('eval', '--model', model, '--plots', tmp());
    expect(plots.stderr).toMatch(/--plots needs --budgets/);
    expect(parseBudgets('1, 0.2,0.2 ,0.05')).toEqual([0.05, 0.2, 1]);
    const help = await sasha('eval', '--help');
    expect(help.code).toBe(0);
    for (const flag of ['--budgets', '--plots', '--json']) expect(help.stdout).toContain(flag);
  });
});

describe('sasha ablate', () => {
  it('lists what is missing without training (exit 3), then trains it, evaluates every row and resumes', async () => {
    const dry = await sasha('ablate', '--model', model, '--budget', '0.2', '--no-train', '--json', '--quiet', '--resamples', '200');
    expect(dry.code).toBe(3);
    const d = lastJson(dry.stdout);
    expect(d.complete).toBe(false);
    const status = Object.fromEntries(d.rows.map((r: { name: string; status: string }) => [r.name, r.status]));
    expect(status).toEqual({ default: 'evaluated', 'single-branch': 'missing', 'global-update': 'missing', random: 'evaluated', 'top-attention': 'evaluated', 'z-only': 'missing' });
    expect(d.rows.find((r: { name: string }) => r.name === 'global-update').command).toBe(`sasha train policy --model ${model} --budget 0.2 --update global`);
    expect(existsSync(path.join(model, 'ablations'))).toBe(false);

    const full = await sasha('ablate', '--model', model, '--budget', '0.2', '--json', '--quiet', '--resamples', '200');
    expect(full.code, full.stderr).toBe(0);
    const j = lastJson(full.stdout);
    expect(j.complete).toBe(true);
    expect(j.rows.map((r: { name: string }) => r.name)).toEqual(['default', 'single-branch', 'global-update', 'random', 'top-attention', 'z-only']);
    for (const r of j.rows) {
      expect(r.status).toBe('evaluated');
      expect(r.n).toBe(3);
      for (const key of ['accuracy', 'auc', 'f1', 'ece', 'balancedAccuracy']) expect(r).toHaveProperty(key);
      expect(r.accuracy * 3).toBeCloseTo(Math.round(r.accuracy * 3), 9);
      if (r.name !== 'default') {
        // the comparison counts slides: right only by SASHA, right only by the row
        const v = r.vsDefault;
        expect(v.accuracyDifference * 3).toBeCloseTo(v.defaultOnlyRight - v.rowOnlyRight, 9);
        expect(v.mcnemarP).toBeGreaterThan(0);
        expect(v.mcnemarP).toBeLessThanOrEqual(1);
      }
    }
    expect(j.rows.find((r: { name: string }) => r.name === 'global-update').trainedNow).toEqual(['policy-0.2-global']);
    expect(j.rows.find((r: { name: string }) => r.name === 'single-branch').trainedNow).toEqual(['hafed', 'tsu', 'policy-0.2']);
    // the targeted policy is untouched; the global one has its own slot; the ablated models are whole directories
    const m = readModelManifest(model);
    expect(Object.keys(m.policies as object).sort()).toEqual(['0.2', '0.2-global']);
    expect((m.policies as Record<string, PolicyManifestEntry>)['0.2-global']).toMatchObject({ path: 'policy-0.2-global', update: 'global', env: { update: 'global' } });
    const single = readModelManifest(path.join(model, 'ablations', 'single-branch'));
    expect(single.hafed!.config).toMatchObject({ numBranches2: 1 });
    // the variants keep the default's training settings: same epochs and seed, one change
    expect(single.hafed!.train).toMatchObject({ epochs: 2 });
    expect(single.hafed!.seed).toBe(3);
    expect(readModelManifest(path.join(model, 'ablations', 'z-only')).hafed).toMatchObject({ input: 'lowRes', seed: 3, train: { epochs: 2 } });

    // a second run trains nothing and gives the same table
    const again = await sasha('ablate', '--model', model, '--budget', '0.2', '--json', '--quiet', '--resamples', '200');
    expect(again.code).toBe(0);
    const a = lastJson(again.stdout);
    expect(a.rows.some((r: { trainedNow?: string[] }) => r.trainedNow)).toBe(false);
    expect(a.rows.map((r: { accuracy: number }) => r.accuracy)).toEqual(j.rows.map((r: { accuracy: number }) => r.accuracy));

    // the human table
    const human = await sasha('ablate', '--model', model, '--rows', 'random', '--resamples', '100', '--quiet');
    expect(human.stdout).toMatch(/^row +accuracy +AUC +F1 +McNemar p +AUC diff \[95% CI\] +AUC p$/m);
    expect(human.stdout).toMatch(/^random +\d\.\d{3} /m);
  }, 240_000);

  it('bad input: no model, a budget of 1, unknown rows, a model without f_S', async () => {
    const none = await sasha('ablate', '--model', path.join(tmp(), 'nothing'));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/is not a model directory: sasha\.json is missing/);
    const one = await sasha('ablate', '--model', model, '--budget', '1');
    expect(one.stderr).toMatch(/--budget < 1/);
    const rows = await sasha('ablate', '--model', model, '--rows', 'default,magic');
    expect(rows.code).toBe(2);
    expect(rows.stderr).toMatch(/--rows to list rows among default, single-branch, global-update, random, top-attention, z-only/);
    const bare = path.join(tmp(), 'bare');
    expect((await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', bare, '--epochs', '1', '--quiet')).code).toBe(0);
    const noTsu = await sasha('ablate', '--model', bare);
    expect(noTsu.code).toBe(2);
    expect(noTsu.stderr).toMatch(/holds no f_S; run 'sasha train tsu --model/);
    const help = await sasha('ablate', '--help');
    expect(help.stdout).toMatch(/--no-train/);
    expect(help.stdout).toMatch(/--json/);
  });
});

describe('presets across stages', () => {
  it('--preset tcga sets HAFED, f_S and PPO settings; later stages follow the directory; flags win', async () => {
    const out = path.join(tmp(), 'tcga');
    const r = await sasha(
      'train', 'all', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out,
      '--preset', 'tcga', '--hafed-epochs', '1', '--tsu-epochs', '1', '--policy-epochs', '1', '--json', '--quiet',
    );
    expect(r.code, r.stderr).toBe(0);
    const m = readModelManifest(out);
    expect(m.preset).toBe('tcga');
    expect(m.hafed!.config).toMatchObject({ numBranches2: 1, maskDrop: 0.4 });
    expect(m.hafed!.train).toMatchObject({ lr: 4e-4, weightDecay: 1e-4, epochs: 1 });
    expect(m.tsu).toMatchObject({ train: { learningRate: 3e-4, weightDecay: 5e-3, tau: 0.95, epochs: 1 } });
    expect((m.policies as Record<string, PolicyManifestEntry>)['0.2'].ppo).toMatchObject({ gaeLambda: 0.95, clipCoef: 0.1 });
    // a later policy on the directory takes tcga without the flag; an explicit flag wins
    const p = await sasha('train', 'policy', '--model', out, '--budget', '0.1', '--epochs', '1', '--json', '--quiet');
    expect(lastJson(p.stdout).preset).toBe('tcga');
    expect((readModelManifest(out).policies as Record<string, PolicyManifestEntry>)['0.1'].ppo).toMatchObject({ gaeLambda: 0.95, clipCoef: 0.1 });
    const c16 = await sasha('train', 'policy', '--model', out, '--budget', '0.1', '--epochs', '1', '--preset', 'camelyon16', '--json', '--quiet');
    expect(lastJson(c16.stdout).preset).toBe('camelyon16');
    expect((readModelManifest(out).policies as Record<string, PolicyManifestEntry>)['0.1'].ppo).toMatchObject({ gaeLambda: 0.94, clipCoef: 0.2 });
    // the ablation of a one-branch model reports single-branch as the default itself, untrained
    const ab = lastJson((await sasha('ablate', '--model', out, '--rows', 'single-branch', '--json', '--quiet', '--resamples', '100')).stdout);
    const sb = ab.rows.find((x: { name: string }) => x.name === 'single-branch');
    expect(sb.source).toMatch(/already has M2 = 1/);
    expect(sb.accuracy).toBe(ab.rows[0].accuracy);
    expect(existsSync(path.join(out, 'ablations'))).toBe(false);
    const bad = await sasha('train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--preset', 'c16');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--preset to be one of default, reference, camelyon16, tcga, but got 'c16'/);
    const help = await sasha('train', 'tsu', '--help');
    expect(help.stdout).toMatch(/from --preset: default 1000, reference 1000, camelyon16 1000, tcga 500/);
  }, 120_000);
});

describe('policy slots and recorded flags', () => {
  const entry = (budget: number, update: 'tsu' | 'global' = 'tsu'): PolicyManifestEntry => ({
    path: `policy-${budget}${update === 'tsu' ? '' : '-' + update}`,
    budget,
    update,
    env: { budget, tau: 0.95, rewriteOnce: true, update },
    ppo: {},
    epochs: 1,
    seed: 0,
    bestEpoch: 0,
    bestScore: 0,
  });
  const policies = { '0.1': entry(0.1), '0.3': entry(0.3), '0.2-global': entry(0.2, 'global') };

  it('finds the exact slot, the targeted fallback of the global update, and the nearest budget', () => {
    expect(findPolicy(policies, 0.1, 'tsu')?.slot).toBe('0.1');
    expect(findPolicy(policies, 0.2, 'tsu')).toBeUndefined();
    // 0.2 is 0.1 from both 0.1 and 0.3: the larger budget wins the tie
    expect(findPolicy(policies, 0.2, 'tsu', { nearest: true })?.slot).toBe('0.3');
    expect(findPolicy(policies, 0.05, 'tsu', { nearest: true })?.slot).toBe('0.1');
    expect(findPolicy(policies, 0.2, 'global')?.slot).toBe('0.2-global');
    // no global policy for 0.1: the targeted one of the budget
    expect(findPolicy(policies, 0.1, 'global')).toMatchObject({ slot: '0.1', update: 'tsu' });
    expect(findPolicy(policies, 0.5, 'global', { nearest: true })).toMatchObject({ slot: '0.2-global', update: 'global' });
  });

  it('records training flags, not locations or switches', () => {
    expect(
      recordedFlags({ values: { epochs: '3', seed: '1', model: '/m', out: '/o', 'lr-h5': 'a', json: true, resume: true, quiet: true, preset: 'tcga' }, positionals: [], json: true }),
    ).toEqual({ epochs: '3', seed: '1', preset: 'tcga' });
  });
});

describe('sasha compression', () => {
  it('reports every slide and the cohort from the files, with the pixel size given or recorded', async () => {
    const r = await sasha('compression', '--model', model, '--sub-patch-size', '256', '--json', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(j.slides).toHaveLength(12);
    expect(j.dtype).toBe('float16');
    for (const s of j.slides) {
      expect(s.stateBytes).toBe(s.numPatches * 16 * 2); // tiny cohort: d = 16, float16
      expect(s.featureRatio).toBe(16);
      expect(s.pixelRatio).toBe((16 * 256 * 256 * 3) / (16 * 2));
    }
    expect(j.cohort.numPatches).toBe(j.slides.reduce((a: number, s: { numPatches: number }) => a + s.numPatches, 0));
    expect(j.files.hrH5.bytes).toBeGreaterThan(j.files.lrH5.bytes);
    // the test subset of the split only
    const t = lastJson((await sasha('compression', '--model', model, '--subset', 'test', '--json', '--quiet')).stdout);
    expect(t.slides).toHaveLength(3);
    expect(t.cohort).not.toHaveProperty('pixelRatio');
    const human = await sasha('compression', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--sub-patch-size', '32', '--quiet');
    expect(human.stdout).toMatch(/^cohort \(12 slides\) +\d+ +[\d.]+ KiB +[\d.]+ KiB +16\.0 /m);
  });

  it('bad input: no files, swapped files, a bad subset', async () => {
    expect((await sasha('compression')).stderr).toMatch(/needs --lr-h5 and --hr-h5/);
    const swapped = await sasha('compression', '--lr-h5', files.hrH5, '--hr-h5', files.lrH5);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toMatch(/hr\.h5', slide 'slide_000': expected 'feat' of rank 2 .* This looks like a high-res file/);
    expect((await sasha('compression', '--model', model, '--subset', 'everything')).stderr).toMatch(/--subset to be 'train', 'val', 'test' or 'all'/);
    expect((await sasha('compression', '--model', model, '--sub-patch-size', '0')).stderr).toMatch(/--sub-patch-size to be an integer >= 1/);
    const help = await sasha('compression', '--help');
    expect(help.code).toBe(0);
    for (const flag of ['--model', '--lr-h5', '--hr-h5', '--subset', '--json']) expect(help.stdout).toContain(flag);
  });
});

describe('sasha interpret', () => {
  const config = { ...SYNTHETIC_PRESETS.tiny, seed: 11 };
  /** Squares over every tumour sub-patch (512 level-0 px; j = 4 xi + yi) of a synthetic slide. */
  const squares = (id: string) => {
    const slide = syntheticSlide(config, Number(id.split('_')[1]));
    const out: number[][] = [];
    for (let i = 0; i < slide.n; i++) {
      for (let j = 0; j < slide.k; j++) {
        if (slide.truth.subPatchClass[i * slide.k + j] !== tumourClass(config)) continue;
        const x = slide.coords[2 * i] + Math.floor(j / 4) * 512;
        const y = slide.coords[2 * i + 1] + (j % 4) * 512;
        out.push([x, y, x + 512, y, x + 512, y + 512, x, y + 512]);
      }
    }
    return { slide, out };
  };
  const asap = (polys: number[][]) =>
    `<?xml version="1.0"?><ASAP_Annotations><Annotations>${polys
      .map((p, a) => `<Annotation Name="A${a}" Type="Polygon" PartOfGroup="Tumor"><Coordinates>${[0, 1, 2, 3].map((q) => `<Coordinate Order="${q}" X="${p[2 * q]}" Y="${p[2 * q + 1]}"/>`).join('')}</Coordinates></Annotation>`)
      .join('')}</Annotations></ASAP_Annotations>`;
  const geojson = (polys: number[][]) =>
    JSON.stringify({
      type: 'FeatureCollection',
      features: polys.map((p) => ({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[0, 1, 2, 3, 0].map((q) => [p[2 * q], p[2 * q + 1]])] }, properties: { classification: { name: 'Tumor' } } })),
    });

  it('measures tumour fraction and attention of zoomed vs other patches per policy, from ASAP XML and GeoJSON', async () => {
    const ann = tmp();
    const test = syntheticSplit(config).test;
    const positives = test.filter((id) => syntheticSlide(config, Number(id.split('_')[1])).label === 1);
    expect(positives.length).toBeGreaterThan(0);
    positives.forEach((id, i) => writeFileSync(path.join(ann, i % 2 ? `${id}.geojson` : `${id}.xml`), i % 2 ? geojson(squares(id).out) : asap(squares(id).out)));
    const r = await sasha('interpret', '--model', model, '--annotations', ann, '--patch-size', '2048', '--samples', '8', '--json', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r.stdout);
    expect(j.annotations.slides).toBe(positives.length);
    expect(j.policies.map((p: { policy: string }) => p.policy)).toEqual(['learned', 'random', 'top-attention']);
    // the annotations give back the generator's truth: the pooled tumour fractions sum to the lesion sub-patches / k
    const truthSum = positives.reduce((a, id) => a + syntheticTumourFractions(squares(id).slide, config).reduce((x, y) => x + y, 0), 0);
    const patches = positives.reduce((a, id) => a + squares(id).slide.n, 0);
    const allPatches = test.reduce((a, id) => a + syntheticSlide(config, Number(id.split('_')[1])).n, 0);
    for (const p of j.policies) {
      const t = p.tumourFraction;
      expect(t.zoomed.n + t.notZoomed.n).toBe(patches);
      expect(t.zoomed.mean * t.zoomed.n + t.notZoomed.mean * t.notZoomed.n).toBeCloseTo(truthSum, 4);
      expect(t.pValue).toBeGreaterThan(0);
      expect(t.pValue).toBeLessThanOrEqual(1);
      // attention N a over all test slides averages exactly 1
      const a = p.attention;
      expect(a.zoomed.n + a.notZoomed.n).toBe(allPatches);
      expect((a.zoomed.mean * a.zoomed.n + a.notZoomed.mean * a.notZoomed.n) / allPatches).toBeCloseTo(1, 5);
    }
    // the human table: one line per policy with both means
    const human = await sasha('interpret', '--model', model, '--annotations', ann, '--patch-size', '2048', '--policies', 'top-attention', '--quiet');
    expect(human.stdout).toMatch(/^top-attention +[\d.]+ \/ [\d.]+ +/m);
  });

  it('bad input names the file and the slide', async () => {
    const ann = tmp();
    const id = syntheticSplit(config).test[0];
    expect((await sasha('interpret', '--model', model, '--annotations', ann, '--patch-size', '2048')).stderr).toMatch(/No annotation in .* matches a test slide \(expected files named <slide>\.xml/);
    writeFileSync(path.join(ann, `${id}.xml`), '<ASAP_Annotations><Annotations><Annotation Name="x" PartOfGroup="Tumor" Type="Polygon"><Coordinates><Coordinate Order="0" X="1" Y="nope"/><Coordinate Order="1" X="2" Y="2"/><Coordinate Order="2" X="3" Y="1"/></Coordinates></Annotation></Annotations></ASAP_Annotations>');
    const bad = await sasha('interpret', '--model', model, '--annotations', ann, '--patch-size', '2048');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${id}.xml', annotation 'x': coordinate 0 is not a number`);
    expect(bad.stderr).toContain(`(slide '${id}')`);
    writeFileSync(path.join(ann, `${id}.xml`), asap([[9e6, 9e6, 9e6 + 512, 9e6, 9e6 + 512, 9e6 + 512, 9e6, 9e6 + 512]]));
    const far = await sasha('interpret', '--model', model, '--annotations', ann, '--patch-size', '2048');
    expect(far.stderr).toMatch(new RegExp(`${id}\\.xml' \\(slide '${id}'\\): a Tumor polygon spans .* outside the slide`));
    const noSize = await sasha('interpret', '--model', model, '--annotations', ann);
    expect(noSize.stderr).toMatch(/level-0 patch size is unknown.*Pass --patch-size/);
    expect((await sasha('interpret', '--model', model, '--annotations', ann, '--heatmaps', tmp())).stderr).toMatch(/--heatmaps needs --slides/);
    expect((await sasha('interpret', '--model', model, '--annotations', path.join(ann, 'none'))).stderr).toMatch(/Cannot find the annotation folder/);
    expect((await sasha('interpret', '--model', model, '--annotations', ann, '--policies', 'learned,oracle')).stderr).toMatch(/--policies among learned, random/);
    const help = await sasha('interpret', '--help');
    expect(help.code).toBe(0);
    for (const flag of ['--annotations', '--policies', '--heatmaps', '--patch-size', '--json']) expect(help.stdout).toContain(flag);
  });
});
