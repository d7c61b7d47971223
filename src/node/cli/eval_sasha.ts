/**
 * `sasha eval` at a budget f < 1: every slide of the subset is zoomed into with a policy
 * (`--policy learned|random|top-attention|greedy-attention`), the state updated with f_S
 * (`--update tsu`) or the global update (`--update global`), and the final state classified.
 *
 * @packageDocumentation
 */
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import type { SplitSubset } from '../../core/data.js';
import { resolveWsiEnvConfig } from '../../mdp/index.js';
import { ActorCritic } from '../../ppo/index.js';
import { POLICY_NAMES, evaluateSasha, makePolicy, type PolicyName } from '../../pipeline/index.js';
import { StateMlp } from '../../tsu/index.js';
import { writeFileAtomic } from '../io/file_io.js';
import { loadModelComponent } from '../model_dir.js';
import type { CommandIO, ParsedArgs } from './args.js';
import { progressBars } from './progress_bar.js';
import { budgetKey, openModelData, tsuTau, type PolicyManifestEntry } from './train_sasha.js';
import type { TsuManifestEntry } from './train_tsu.js';

/** Evaluates a model directory at budget `budget` < 1; returns the `--json` result. */
export async function evalAtBudget(dir: string, args: ParsedArgs, io: CommandIO, budget: number, subset: SplitSubset): Promise<Record<string, unknown>> {
  const policyName = (args.values.policy ?? 'learned') as PolicyName;
  if (!POLICY_NAMES.includes(policyName)) throw new ValueError(`Expected --policy to be one of ${POLICY_NAMES.join(', ')}, but got '${String(policyName)}'.`);
  const update = (args.values.update ?? 'tsu') as string;
  if (update !== 'tsu' && update !== 'global') throw new ValueError(`Expected --update to be 'tsu' or 'global', but got '${update}'.`);
  const seed = Number(args.values.seed ?? 0);
  const t0 = Date.now();
  const data = await openModelData(dir, args);
  const tsuEntry = data.manifest.tsu as TsuManifestEntry | undefined;
  const policies = (data.manifest.policies ?? {}) as Record<string, PolicyManifestEntry>;
  const entry = policies[budgetKey(budget)];
  let fS: StateMlp | null = null;
  let model: ActorCritic | null = null;
  const bars = progressBars(io.interactive);
  try {
    if (!tsuEntry) throw new DataError(`The model directory '${dir}' holds no f_S; run 'sasha train tsu --model ${dir}' first.`);
    if (policyName === 'learned' && !entry) {
      const have = Object.keys(policies);
      throw new DataError(
        `No policy trained for budget ${budget} in '${dir}'${have.length ? ` (trained for: ${have.join(', ')})` : ''}. ` +
          `Run 'sasha train policy --model ${dir} --budget ${budget}', or evaluate with --policy random|top-attention.`,
      );
    }
    fS = await loadModelComponent(dir, tsuEntry.path, 'f_S', (io) => StateMlp.load(io));
    if (policyName === 'learned') model = await loadModelComponent(dir, entry.path, 'policy', (io) => ActorCritic.load(io, { dim: data.dataset.dim }));
    const ids = data.split[subset];
    if (ids.length === 0) throw new DataError(`The split has no ${subset} slides.`);
    const env = resolveWsiEnvConfig({ ...(entry?.env ?? {}), budget, tau: entry?.env.tau ?? tsuTau(tsuEntry), update });
    io.log(`Evaluating SASHA at f = ${budget} (policy ${policyName}, ${update} update) on ${ids.length} ${subset} slides.`);
    const ev = await evaluateSasha({
      classifier: data.hafed,
      fS,
      policy: makePolicy(policyName, { model: model ?? undefined, classifier: data.hafed, seed }),
      dataset: data.withV,
      ids,
      env,
      seed,
      onProgress: bars.onProgress,
    });
    if (typeof args.values.predictions === 'string' && args.values.predictions !== '') {
      const c = data.hafed.numClasses;
      const header = ['slide_id', 'label', 'pred', ...Array.from({ length: c }, (_, j) => `prob_${j}`), 'zoomed'].join(',');
      const lines = ev.slides.map((s) => {
        const pred = s.probs.indexOf(Math.max(...s.probs));
        return [s.id, s.label, pred, ...s.probs.map((x) => x.toPrecision(6)), s.actions.join(' ')].join(',');
      });
      await writeFileAtomic(path.resolve(args.values.predictions), [header, ...lines].join('\n') + '\n');
    }
    const zoomed = ev.slides.reduce((a, s) => a + s.actions.length, 0);
    const patches = ev.slides.reduce((a, s) => a + data.dataset.numPatches(s.id), 0);
    return {
      accuracy: ev.metrics.accuracy,
      balancedAccuracy: ev.metrics.balancedAccuracy,
      auc: ev.metrics.auc,
      f1: ev.metrics.f1,
      ece: ev.metrics.ece,
      n: ev.metrics.n,
      budget,
      seconds: (Date.now() - t0) / 1000,
      subset,
      model: dir,
      policy: policyName,
      update,
      meanCrossEntropy: ev.meanCrossEntropy,
      zoomedFraction: zoomed / patches,
      confusion: ev.metrics.confusion,
    };
  } finally {
    bars.stop();
    fS?.dispose();
    model?.dispose();
    data.close();
  }
}
