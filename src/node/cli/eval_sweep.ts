/**
 * `sasha eval --budgets 0.05,0.1,0.2,0.3,0.5,1`: one model at several budgets in one run, with
 * accuracy, AUC, F1 and the expected calibration error per budget, and with `--plots DIR` a plot
 * of accuracy and ECE against the budget plus a reliability diagram per budget (SVG and PNG).
 *
 * @packageDocumentation
 */
import path from 'node:path';
import { DataError, ValueError } from '../../core/errors.js';
import type { SplitSubset } from '../../core/data.js';
import { reliabilityBins, reliabilityDiagramSvg } from '../../eval/index.js';
import { budgetSweepSvg } from '../../pipeline/index.js';
import { writePlot } from '../plots.js';
import type { CommandIO, ParsedArgs } from './args.js';
import { policyAndUpdateFlags } from './eval_sasha.js';
import { evaluateAtBudget, metricFields, policyFields, zoomedFraction } from './model_eval.js';
import { progressBars } from './progress_bar.js';
import { budgetKey, openModelData } from './train_sasha.js';

/** Number of confidence bins of the reliability diagrams (and of the ECE). */
const BINS = 15;

/** Parses `--budgets` (a comma-separated list of fractions in (0, 1]), sorted, without repeats. */
export function parseBudgets(raw: unknown): number[] {
  const text = typeof raw === 'string' ? raw.trim() : '';
  const parts = text === '' ? [] : text.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  const bad = parts.find((p, i) => p === '' || !Number.isFinite(values[i]) || values[i] <= 0 || values[i] > 1);
  if (parts.length === 0 || bad !== undefined) {
    throw new ValueError(`Expected --budgets to be a comma-separated list of fractions in (0, 1], e.g. 0.05,0.1,0.2,1, but got '${String(raw)}'.`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Runs the sweep; returns the `--json` result `{ budgets: [...], ... }`. */
export async function evalSweep(dir: string, args: ParsedArgs, io: CommandIO, subset: SplitSubset): Promise<Record<string, unknown>> {
  const budgets = parseBudgets(args.values.budgets);
  const { policyName, update } = policyAndUpdateFlags(args);
  const seed = Number(args.values.seed ?? 0);
  const plotsDir = typeof args.values.plots === 'string' && args.values.plots !== '' ? path.resolve(args.values.plots) : undefined;
  const t0 = Date.now();
  const data = await openModelData(dir, args);
  const bars = progressBars(io.interactive);
  const rows: Record<string, unknown>[] = [];
  const plots: string[] = [];
  try {
    const ids = data.split[subset];
    if (ids.length === 0) throw new DataError(`The split has no ${subset} slides.`);
    io.log(`Evaluating at budgets ${budgets.join(', ')} (policy ${policyName}, ${update} update) on ${ids.length} ${subset} slides.`);
    for (let b = 0; b < budgets.length; b++) {
      const budget = budgets[b];
      const t1 = Date.now();
      const r = await evaluateAtBudget(data, {
        budget,
        policy: policyName,
        update,
        ids,
        seed,
        nearest: true,
        log: io.log,
        onProgress: (e) => bars.onProgress({ ...e, task: `f = ${budget}` }),
      });
      const ev = r.evaluation;
      const labels = ev.slides.map((s) => s.label);
      const probs = ev.slides.map((s) => s.probs);
      const row: Record<string, unknown> = {
        budget,
        method: budget >= 1 ? 'HAFED (every high-res patch)' : policyName,
        ...(budget < 1 ? { update } : {}),
        ...policyFields(r),
        ...metricFields(ev.metrics),
        meanCrossEntropy: ev.meanCrossEntropy,
        zoomedFraction: budget >= 1 ? 1 : zoomedFraction(ev, (id) => data.dataset.numPatches(id)),
        seconds: (Date.now() - t1) / 1000,
        reliability: reliabilityBins(labels, probs, BINS).map((x) => ({ ...x, accuracy: Number.isNaN(x.accuracy) ? null : x.accuracy, confidence: Number.isNaN(x.confidence) ? null : x.confidence })),
        confusion: ev.metrics.confusion,
      };
      rows.push(row);
      if (plotsDir) {
        const title = budget >= 1 ? 'HAFED, every high-res patch (f = 1)' : `SASHA f = ${budget} (${policyName}${r.trained && r.trained.budget !== budget ? `, policy of f = ${r.trained.budget}` : ''})`;
        const svg = reliabilityDiagramSvg(reliabilityBins(labels, probs, BINS), {
          title,
          subtitle: `ECE ${ev.metrics.ece.toFixed(3)}, accuracy ${ev.metrics.accuracy.toFixed(3)}, ${ev.metrics.n} ${subset} slides`,
        });
        const out = await writePlot(path.join(plotsDir, `reliability_f${budgetKey(budget)}`), svg);
        plots.push(out.svg, out.png);
      }
      io.log(`f = ${budget}: accuracy ${ev.metrics.accuracy.toFixed(3)}, AUC ${ev.metrics.auc.toFixed(3)}, F1 ${ev.metrics.f1.toFixed(3)}, ECE ${ev.metrics.ece.toFixed(3)}`);
    }
    if (plotsDir) {
      const svg = budgetSweepSvg(
        rows.map((r) => ({ budget: r.budget as number, accuracy: r.accuracy as number, ece: r.ece as number })),
        `Accuracy and calibration against the budget (${String(rows[0].n)} ${subset} slides)`,
      );
      const out = await writePlot(path.join(plotsDir, 'accuracy_ece_vs_budget'), svg);
      plots.unshift(out.svg, out.png);
    }
    return { model: dir, subset, policy: policyName, update, budgets: rows, ...(plotsDir ? { plots } : {}), seconds: (Date.now() - t0) / 1000 };
  } finally {
    bars.stop();
    data.close();
  }
}

/** The human table of a sweep. */
export function renderSweep(result: Record<string, unknown>): string {
  const rows = result.budgets as Record<string, unknown>[];
  const f = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  const lines = [
    `budget  policy                          accuracy  AUC    F1     ECE    n`,
    ...rows.map((r) => {
      const pol = r.budget === 1 ? 'HAFED (all high-res)' : `${String(r.method)}${r.policyBudget !== undefined && r.policyBudget !== r.budget ? ` (policy of f = ${String(r.policyBudget)})` : ''}`;
      return `${String(r.budget).padEnd(8)}${pol.padEnd(32)}${f(r.accuracy).padEnd(10)}${f(r.auc).padEnd(7)}${f(r.f1).padEnd(7)}${f(r.ece).padEnd(7)}${String(r.n)}`;
    }),
  ];
  if (Array.isArray(result.plots)) lines.push('', 'plots:', ...(result.plots as string[]).map((p) => `  ${p}`));
  return lines.join('\n');
}
