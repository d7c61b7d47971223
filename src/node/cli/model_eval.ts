/**
 * Evaluation of a model directory at one budget, shared by `sasha eval` (one budget or a
 * sweep), `sasha ablate` and `sasha interpret`: finds the policy for the budget (its own slot,
 * or the nearest trained budget when asked), runs the episodes and returns per-slide results.
 *
 * @packageDocumentation
 */
import { DataError } from '../../core/errors.js';
import type { ProgressCallback } from '../../core/progress.js';
import { resolveWsiEnvConfig, type WsiEnvConfig } from '../../mdp/index.js';
import { ActorCritic } from '../../ppo/index.js';
import { evaluateFullResolution, evaluateSasha, makePolicy, type PolicyName, type SashaEvaluation } from '../../pipeline/index.js';
import { StateMlp } from '../../tsu/index.js';
import type { ClassificationMetrics } from '../../eval/index.js';
import { loadModelComponent } from '../model_dir.js';
import { policySlot, tsuTau, type ModelData, type PolicyManifestEntry } from './train_sasha.js';
import type { TsuManifestEntry } from './train_tsu.js';

/** A trained policy found in a model directory. */
export interface FoundPolicy {
  /** Its slot (`'0.2'`, `'0.2-global'`). */
  slot: string;
  entry: PolicyManifestEntry;
  /** The budget it was trained for. */
  budget: number;
  /** The state update it was trained with. */
  update: WsiEnvConfig['update'];
}

/**
 * The policy to evaluate at `budget` with `update`: the slot of that budget and update; for the
 * global update without its own policy, the targeted policy of the budget; with `nearest`, the
 * policy of the nearest trained budget (same update; ties go to the larger budget).
 * @returns undefined when none fits.
 */
export function findPolicy(
  policies: Record<string, PolicyManifestEntry>,
  budget: number,
  update: WsiEnvConfig['update'],
  options: { nearest?: boolean } = {},
): FoundPolicy | undefined {
  const found = (slot: string): FoundPolicy | undefined => {
    const entry = policies[slot];
    return entry ? { slot, entry, budget: entry.budget, update: entry.update ?? (slot.includes('-') ? (slot.split('-')[1] as WsiEnvConfig['update']) : 'tsu') } : undefined;
  };
  const exact = found(policySlot(budget, update)) ?? (update !== 'tsu' ? found(policySlot(budget, 'tsu')) : undefined);
  if (exact || !options.nearest) return exact;
  let best: FoundPolicy | undefined;
  for (const slot of Object.keys(policies)) {
    const p = found(slot);
    if (!p || p.update !== update) continue;
    const d = Math.abs(p.budget - budget);
    const bestD = best ? Math.abs(best.budget - budget) : Infinity;
    if (d < bestD - 1e-12 || (Math.abs(d - bestD) <= 1e-12 && best && p.budget > best.budget)) best = p;
  }
  if (best || update === 'tsu') return best;
  return findPolicy(policies, budget, 'tsu', options);
}

/** What {@link evaluateAtBudget} evaluates. */
export interface BudgetEvalRequest {
  /** Fraction of patches zoomed into; 1 = HAFED on every high-res patch. */
  budget: number;
  /** The zoom policy (ignored at budget 1). */
  policy: PolicyName;
  /** The state update (ignored at budget 1). */
  update: 'tsu' | 'global';
  /** Slides to evaluate. */
  ids: readonly string[];
  /** Seed of the random policy and of the environments. */
  seed: number;
  /** Use the policy of the nearest trained budget when the budget has none. */
  nearest?: boolean;
  /** Keep each final state's attention over the patches. */
  keepAttention?: boolean;
  onProgress?: ProgressCallback;
  log?: (message: string) => void;
}

/** What {@link evaluateAtBudget} returns: the evaluation and which policy produced it. */
export interface BudgetEvalResult {
  evaluation: SashaEvaluation;
  /** The learned policy used (`policy: 'learned'` below budget 1). */
  trained?: FoundPolicy;
  /** The tau of the environment (f_S's), absent at budget 1. */
  tau?: number;
}

/**
 * Evaluates the model of `data` at one budget: HAFED on V at budget 1, else episodes of the
 * chosen policy with f_S (or the global update) and the final states classified.
 * @throws DataError naming the command to run when f_S or the policy is missing.
 */
export async function evaluateAtBudget(data: ModelData, request: BudgetEvalRequest): Promise<BudgetEvalResult> {
  const { budget, policy, update, ids, seed } = request;
  const dir = data.dir;
  if (budget >= 1) {
    const evaluation = await evaluateFullResolution({ classifier: data.hafed, dataset: data.withV, ids, keepAttention: request.keepAttention, onProgress: request.onProgress });
    return { evaluation };
  }
  const tsuEntry = data.manifest.tsu as TsuManifestEntry | undefined;
  if (!tsuEntry) throw new DataError(`The model directory '${dir}' holds no f_S; run 'sasha train tsu --model ${dir}' first.`);
  const policies = (data.manifest.policies ?? {}) as Record<string, PolicyManifestEntry>;
  let trained: FoundPolicy | undefined;
  if (policy === 'learned') {
    trained = findPolicy(policies, budget, update, { nearest: request.nearest });
    if (!trained) {
      const have = Object.keys(policies);
      throw new DataError(
        `No policy trained for budget ${budget} in '${dir}'${have.length ? ` (trained for: ${have.join(', ')})` : ''}. ` +
          `Run 'sasha train policy --model ${dir} --budget ${budget}', or evaluate with --policy random|top-attention.`,
      );
    }
    if (trained.budget !== budget) request.log?.(`No policy trained for f = ${budget}: using the one trained for f = ${trained.budget} (policy-${trained.slot}).`);
    if (trained.update !== update) {
      request.log?.(
        `No policy trained under the ${update} update for f = ${trained.budget}: evaluating the ${trained.update}-trained policy-${trained.slot} ` +
          `under the ${update} update (train one with 'sasha train policy --model ${dir} --budget ${trained.budget} --update ${update}').`,
      );
    }
  }
  const fS = await loadModelComponent(dir, tsuEntry.path, 'f_S', (io) => StateMlp.load(io));
  let model: ActorCritic | null = null;
  try {
    if (trained) model = await loadModelComponent(dir, trained.entry.path, 'policy', (io) => ActorCritic.load(io, { dim: data.dataset.dim }));
    const tau = trained?.entry.env.tau ?? tsuTau(tsuEntry);
    const env = resolveWsiEnvConfig({ ...(trained?.entry.env ?? {}), budget, tau, update });
    const evaluation = await evaluateSasha({
      classifier: data.hafed,
      fS,
      policy: makePolicy(policy, { model: model ?? undefined, classifier: data.hafed, seed }),
      dataset: data.withV,
      ids,
      env,
      seed,
      keepAttention: request.keepAttention,
      onProgress: request.onProgress,
    });
    return { evaluation, trained, tau };
  } finally {
    fS.dispose();
    model?.dispose();
  }
}

/** The metric fields every evaluation command prints (`--json`). */
export function metricFields(m: ClassificationMetrics): Record<string, unknown> {
  return { accuracy: m.accuracy, balancedAccuracy: m.balancedAccuracy, auc: m.auc, perClassAuc: m.perClassAuc, f1: m.f1, ece: m.ece, n: m.n };
}

/** The fraction of the patches of `ev`'s slides that were zoomed into. */
export function zoomedFraction(ev: SashaEvaluation, numPatches: (id: string) => number): number {
  const zoomed = ev.slides.reduce((a, s) => a + s.actions.length, 0);
  return zoomed / ev.slides.reduce((a, s) => a + numPatches(s.id), 0);
}

/** The JSON fields naming the policy of a {@link BudgetEvalResult}. */
export function policyFields(r: BudgetEvalResult): Record<string, unknown> {
  return r.trained ? { policySlot: r.trained.slot, policyBudget: r.trained.budget, policyUpdate: r.trained.update } : {};
}
