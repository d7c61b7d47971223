/**
 * V on demand: a dataset view that adds HAFED stage-1 features (`aggregated`) computed from the
 * high-resolution features U, cached in memory after the first load.
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError } from '../core/errors.js';
import type { SlideBag, SlideDataset, SlidePart } from '../core/data.js';
import type { HighResAggregator } from '../tsu/train_tsu.js';

/** A {@link SlideDataset} that can forget its cached V. @category Pipeline */
export interface AggregatedDataset extends SlideDataset {
  /** Frees the cached V of every slide. */
  clearCache(): void;
  /** Number of slides whose V is cached. */
  readonly cachedSlides: number;
}

/**
 * Adds the `aggregated` part (V = stage 1 of HAFED applied to U) to a dataset that has
 * `highRes`. V is computed once per slide and kept as a typed array (N d floats per slide) when
 * `cache` is true (the default), as the reference's step 4 writes it to a file once.
 *
 * @param aggregator a frozen `Hafed` (or any `aggregate(U [N, k, d]) -> V [N, d]`).
 * @example
 * ```ts
 * const withV = withAggregated(dataset, hafed);
 * const bag = await withV.load(id, ['lowRes', 'aggregated']); // Z and V
 * ```
 * @category Pipeline
 */
export function withAggregated(dataset: SlideDataset, aggregator: HighResAggregator, options: { cache?: boolean } = {}): AggregatedDataset {
  const cache = options.cache ?? true;
  const stored = new Map<string, { n: number; d: number; values: Float32Array }>();
  const native = dataset.parts.includes('aggregated');
  if (!native && !dataset.parts.includes('highRes')) {
    throw new DataError('Expected a dataset with high-resolution features (U) or V, but it has neither. Pass --hr-h5 or a dataset with highRes.');
  }
  const parts: SlidePart[] = native ? [...dataset.parts] : [...dataset.parts, 'aggregated'];
  return {
    ids: dataset.ids,
    labels: dataset.labels,
    dim: dataset.dim,
    k: dataset.k,
    parts: Object.freeze(parts),
    get cachedSlides() {
      return stored.size;
    },
    clearCache: () => stored.clear(),
    close: dataset.close?.bind(dataset),
    async load(id: string, requested: readonly SlidePart[] = parts): Promise<SlideBag> {
      const wantV = requested.includes('aggregated');
      if (native || !wantV) return dataset.load(id, requested);
      const hit = stored.get(id);
      const others = requested.filter((p) => p !== 'aggregated');
      if (hit) {
        const known = dataset.labels[dataset.ids.indexOf(id)];
        const bag: SlideBag = others.length ? await dataset.load(id, others) : { id, label: known >= 0 ? known : undefined };
        return { ...bag, aggregated: tf.tensor2d(hit.values.slice(), [hit.n, hit.d]) };
      }
      const needU = !others.includes('highRes');
      const bag = await dataset.load(id, needU ? [...others, 'highRes'] : others);
      if (!bag.highRes) throw new DataError(`Slide '${id}' has no high-resolution features (U); V cannot be computed.`);
      const v = aggregator.aggregate(bag.highRes);
      if (cache) stored.set(id, { n: v.shape[0], d: v.shape[1], values: v.dataSync().slice() as Float32Array });
      if (needU) {
        bag.highRes.dispose();
        delete bag.highRes;
      }
      return { ...bag, aggregated: v };
    },
  };
}
