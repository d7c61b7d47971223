/**
 * Average ranks with ties, shared by the rank statistics (ROC AUC, Mann-Whitney U).
 *
 * @packageDocumentation
 * @internal
 */

/**
 * 1-based ranks of `values`, tied values sharing the mean of their ranks, and the tie term
 * `sum_t (t^3 - t)` over the groups of t tied values (0 without ties).
 * @example
 * ```ts
 * averageRanks([0.4, 0.1, 0.4]); // { ranks: [2.5, 1, 2.5], tieTerm: 6 }
 * ```
 * @internal
 */
export function averageRanks(values: ArrayLike<number>): { ranks: Float64Array; tieTerm: number } {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(n);
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = avg;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  return { ranks, tieTerm };
}
