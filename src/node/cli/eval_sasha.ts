/**
 * `sasha eval` at a budget f < 1: every slide of the subset is zoomed into with a policy
 * (`--policy learned|random|top-attention|greedy-attention`), the state updated with f_S
 * (`--update tsu`) or the global update (`--update global`), and the final state classified.
 * With `--update global` the learned policy is the one trained under the global update
 * (`policy-<f>-global`) when the directory holds it.
 *
 * @packageDocumentation
 */
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import type { SplitSubset } from '../../core/data.js';
import { POLICY_NAMES, type PolicyName } from '../../pipeline/index.js';
import { writeFileAtomic } from '../io/file_io.js';
import type { CommandIO, ParsedArgs } from './args.js';
import { progressBars } from './progress_bar.js';
import { evaluateAtBudget, metricFields, policyFields, zoomedFraction } from './model_eval.js';
import { openModelData } from './train_sasha.js';

/** Reads `--policy` and `--update`. */
export function policyAndUpdateFlags(args: ParsedArgs): { policyName: PolicyName; update: 'tsu' | 'global' } {
  const policyName = (args.values.policy ?? 'learned') as PolicyName;
  if (!POLICY_NAMES.includes(policyName)) throw new ValueError(`Expected --policy to be one of ${POLICY_NAMES.join(', ')}, but got '${String(policyName)}'.`);
  const update = (args.values.update ?? 'tsu') as string;
  if (update !== 'tsu' && update !== 'global') throw new ValueError(`Expected --update to be 'tsu' or 'global', but got '${update}'.`);
  return { policyName, update };
}

/** Evaluates a model directory at budget `budget` < 1; returns the `--json` result. */
export async function evalAtBudget(dir: string, args: ParsedArgs, io: CommandIO, budget: number, subset: SplitSubset): Promise<Record<string, unknown>> {
  const { policyName, update } = policyAndUpdateFlags(args);
  const seed = Number(args.values.seed ?? 0);
  const t0 = Date.now();
  const data = await openModelData(dir, args);
  const bars = progressBars(io.interactive);
  try {
    const ids = data.split[subset];
    if (ids.length === 0) throw new DataError(`The split has no ${subset} slides.`);
    io.log(`Evaluating SASHA at f = ${budget} (policy ${policyName}, ${update} update) on ${ids.length} ${subset} slides.`);
    const r = await evaluateAtBudget(data, { budget, policy: policyName, update, ids, seed, onProgress: bars.onProgress, log: io.log });
    const ev = r.evaluation;
    if (typeof args.values.predictions === 'string' && args.values.predictions !== '') {
      const c = data.hafed.numClasses;
      const header = ['slide_id', 'label', 'pred', ...Array.from({ length: c }, (_, j) => `prob_${j}`), 'zoomed'].join(',');
      const lines = ev.slides.map((s) => {
        const pred = s.probs.indexOf(Math.max(...s.probs));
        return [s.id, s.label, pred, ...s.probs.map((x) => x.toPrecision(6)), s.actions.join(' ')].join(',');
      });
      await writeFileAtomic(path.resolve(args.values.predictions), [header, ...lines].join('\n') + '\n');
    }
    return {
      ...metricFields(ev.metrics),
      budget,
      seconds: (Date.now() - t0) / 1000,
      subset,
      model: dir,
      policy: policyName,
      update,
      ...policyFields(r),
      meanCrossEntropy: ev.meanCrossEntropy,
      zoomedFraction: zoomedFraction(ev, (id) => data.dataset.numPatches(id)),
      confusion: ev.metrics.confusion,
    };
  } finally {
    bars.stop();
    data.close();
  }
}
