/**
 * Global state update: the ablation in which every row not yet visited is rewritten by f_S at
 * every step (as RLogist updates its whole observation), instead of only the rows similar to
 * the chosen one.
 *
 * @packageDocumentation
 */
import { applyStateUpdate, cloneTsuState, computeStateUpdate, type StateUpdateStep } from './targeted_state_update.js';
import type { StateUpdateNet, TsuState } from './types.js';

/**
 * One global state update step, as a pure function:
 * `S_t+1(i) = f_S([V(a), S_t(a), S_t(i)])` for every unvisited i != a; `S_t+1(a) = V(a)`; rows
 * visited earlier keep their V. There is no cosine test, so a step costs O(N d h).
 *
 * **Shapes:** `state.values` [N, d]; `v` [d]; f_S maps [n, 3d] to [n, d].
 *
 * @param state S_t; not modified.
 * @param action a in [0, N), not visited yet.
 * @param v V(a), [d].
 * @param fS f_S.
 * @returns the new state and the row changes (`similarSet` = every rewritten row); new arrays
 *   owned by the caller, no tensor stays alive.
 * @throws ValueError (bad action), ShapeError (wrong width of v or f_S), DataError (non-finite v).
 * @example
 * ```ts
 * const { state: s1, rows } = globalStateUpdate(s0, 3, v3, fS); // rows = [3, every other unvisited row]
 * ```
 * @see docs/reference-code.md §13.4 (RLogist: every unobserved region is updated)
 * @category TSU
 */
export function globalStateUpdate(
  state: TsuState,
  action: number,
  v: ArrayLike<number>,
  fS: StateUpdateNet,
): StateUpdateStep {
  const update = computeStateUpdate(state, action, v, fS, { update: 'global' });
  const next = cloneTsuState(state);
  applyStateUpdate(next, action, update);
  return { state: next, ...update };
}
