/**
 * A trained SASHA model as one bundle: HAFED (stage 1 aggregates zoomed patches, stage 2
 * classifies), the f_S network of the targeted state update, the zoom policy, and the settings
 * they were trained with (budget f, tau, update rule).
 *
 * @packageDocumentation
 */
import { tf } from '../core/tf.js';
import { DataError, ShapeError, StateError, assert } from '../core/errors.js';
import type { CheckpointStore } from '../core/checkpoint.js';
import { decodeArtifacts, encodeArtifacts, type ArtifactFormat } from '../core/io.js';
import { Hafed } from '../hafed/hafed.js';
import { resolveWsiEnvConfig, type WsiEnvConfig } from '../mdp/index.js';
import { ActorCritic } from '../ppo/index.js';
import { StateMlp } from '../tsu/index.js';
import type { SlideSource } from '../wsi/slide_source.js';
import { analyzeSlide, type AnalyzeSlideOptions, type SlideAnalysis } from './analyze_slide.js';

/** Format tag of the bundle's description. */
export const SASHA_MODEL_FORMAT = 'sasha-wsi/model';
/** Layout version of a saved bundle; a newer one is refused with a clear error. */
export const SASHA_MODEL_FORMAT_VERSION = 1;

const SASHA_MODEL_ARTIFACT: ArtifactFormat = {
  format: SASHA_MODEL_FORMAT,
  version: SASHA_MODEL_FORMAT_VERSION,
  what: 'SASHA model description',
  writtenBy: 'SashaModel.save or `sasha train`',
};

/** What a saved bundle records besides the weights. @category Pipeline */
export interface SashaModelInfo {
  /** d, the feature width. */
  dim: number;
  /** k, sub-patches per patch. */
  k: number;
  /** C, the number of classes. */
  numClasses: number;
  /** The environment settings the policy was trained with (budget f, tau, rewriteOnce, update). */
  env: WsiEnvConfig;
  /** Which parts the bundle holds. */
  parts: { hafed: boolean; tsu: boolean; policy: boolean };
  /** Free JSON (data paths, training summaries). */
  extra: Record<string, unknown>;
}

/**
 * HAFED, f_S and the zoom policy together. Parts may be missing while training is staged
 * (after `train hafed` only HAFED exists). The bundle owns its models: {@link SashaModel.dispose}.
 *
 * Stored in a {@link CheckpointStore} under the names `'hafed'`, `'tsu'`, `'policy'` and
 * `'sasha'` (the description, written last); in Node `sashaModelStore(dir)` maps them to a
 * directory with `sasha.json`.
 * @example
 * ```ts
 * const model = new SashaModel({ hafed, fS, policy, env: { budget: 0.2 } });
 * await model.save(store);
 * const again = await SashaModel.load(store, { dim: 384 });
 * ```
 * @category Pipeline
 */
export class SashaModel {
  hafed: Hafed | null;
  fS: StateMlp | null;
  policy: ActorCritic | null;
  /** The environment settings (resolved). */
  env: Readonly<WsiEnvConfig>;
  /** Free JSON saved with the bundle. */
  extra: Record<string, unknown>;
  private disposed = false;

  constructor(parts: { hafed?: Hafed | null; fS?: StateMlp | null; policy?: ActorCritic | null; env?: Partial<WsiEnvConfig>; extra?: Record<string, unknown> }) {
    this.hafed = parts.hafed ?? null;
    this.fS = parts.fS ?? null;
    this.policy = parts.policy ?? null;
    this.env = resolveWsiEnvConfig(parts.env);
    this.extra = parts.extra ?? {};
    const d = this.hafed?.dim;
    if (d !== undefined && this.fS && this.fS.dim !== d) throw new ShapeError(`Expected f_S of width ${d} (HAFED's), but got ${this.fS.dim}.`);
    if (d !== undefined && this.policy && this.policy.config.dim !== d) {
      throw new ShapeError(`Expected a policy of width ${d} (HAFED's), but got ${this.policy.config.dim}.`);
    }
  }

  /** The description saved as `'sasha'`. */
  info(): SashaModelInfo {
    this.checkAlive();
    const h = this.hafed;
    if (!h) throw new StateError('The model has no HAFED yet; train it first (sasha train hafed).');
    return {
      dim: h.dim,
      k: h.config.k,
      numClasses: h.config.numClasses,
      env: { ...this.env },
      parts: { hafed: true, tsu: this.fS !== null, policy: this.policy !== null },
      extra: this.extra,
    };
  }

  /** Requires HAFED, f_S (unless the update is `'none'`) and the policy. @internal */
  requireParts(...names: ('hafed' | 'tsu' | 'policy')[]): void {
    const fix: Record<string, string> = { hafed: 'sasha train hafed', tsu: 'sasha train tsu', policy: 'sasha train policy' };
    for (const n of names) {
      const have = n === 'hafed' ? this.hafed : n === 'tsu' ? this.fS : this.policy;
      if (!have) throw new StateError(`The model has no ${n === 'tsu' ? 'TSU (f_S)' : n === 'hafed' ? 'HAFED' : 'policy'} yet; run '${fix[n]}' first.`);
    }
  }

  /**
   * Writes every part present, then the description `'sasha'` last (a reader that finds the
   * description finds the parts it lists).
   */
  async save(store: CheckpointStore): Promise<void> {
    const info = this.info();
    if (this.hafed) await store.save('hafed', await this.hafed.toArtifacts());
    if (this.fS) await store.save('tsu', await this.fS.toArtifacts());
    if (this.policy) await store.save('policy', await this.policy.toArtifacts());
    await store.save('sasha', await encodeArtifacts(SASHA_MODEL_ARTIFACT, { ...info }));
  }

  /** Reads the description of a saved bundle (null when the store has none). */
  static async readInfo(store: CheckpointStore): Promise<SashaModelInfo | null> {
    const a = await store.load('sasha');
    if (!a) return null;
    const t = decodeArtifacts(a, SASHA_MODEL_ARTIFACT, false).description as unknown as SashaModelInfo;
    return { dim: t.dim, k: t.k, numClasses: t.numClasses, env: t.env, parts: t.parts, extra: t.extra ?? {} };
  }

  /**
   * Loads a bundle written by {@link SashaModel.save}.
   * @param expect the data's d and k: a bundle for other widths is an error naming both.
   * @throws DataError when the store holds no bundle; ShapeError on a d or k mismatch.
   */
  static async load(store: CheckpointStore, expect: { dim?: number; k?: number } = {}): Promise<SashaModel> {
    const info = await SashaModel.readInfo(store);
    if (!info) throw new DataError('No SASHA model here (no description). Point to a directory written by sasha train.');
    if (expect.dim !== undefined && expect.dim !== info.dim) {
      throw new ShapeError(`Expected a model for features of width d = ${expect.dim}, but this model was trained with d = ${info.dim}.`);
    }
    if (expect.k !== undefined && expect.k !== info.k) {
      throw new ShapeError(`Expected a model for k = ${expect.k} sub-patches per patch, but this model was trained with k = ${info.k}.`);
    }
    const part = async <T>(name: string, present: boolean, make: (a: tf.io.ModelArtifacts) => T): Promise<T | null> => {
      if (!present) return null;
      const a = await store.load(name);
      if (!a) throw new DataError(`The SASHA model lists '${name}' but it is missing; the directory is incomplete.`);
      return make(a);
    };
    const hafed = await part('hafed', info.parts.hafed, (a) => Hafed.fromArtifacts(a));
    try {
      const fS = await part('tsu', info.parts.tsu, (a) => StateMlp.fromArtifacts(a));
      const policy = await part('policy', info.parts.policy, (a) => ActorCritic.fromArtifacts(a, { dim: info.dim }));
      return new SashaModel({ hafed, fS, policy, env: info.env, extra: info.extra });
    } catch (e) {
      hafed?.dispose();
      throw e;
    }
  }

  /**
   * Analyses one slide from its pixels with lazy zoom (see {@link analyzeSlide}): only the k
   * sub-patches of the T = ceil(f N) patches the policy picks are read at high resolution.
   * @param source the slide; not closed.
   * @param options the encoder the training features were extracted with, and settings.
   * @returns the prediction, visited patches, attention, timings and counts (plain arrays).
   * @example
   * ```ts
   * const model = await loadSashaModel('models/c16', { budget: 0.2 }); // sasha-wsi/node
   * const res = await model.analyzeSlide(await openSlide('test_001.tif'), { encoder });
   * res.prediction.label;
   * ```
   */
  analyzeSlide(source: SlideSource, options: AnalyzeSlideOptions): Promise<SlideAnalysis> {
    this.checkAlive();
    return analyzeSlide(this, source, options);
  }

  /** Frees every model of the bundle. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.hafed?.dispose();
    this.fS?.dispose();
    this.policy?.dispose();
  }

  private checkAlive(): void {
    assert(!this.disposed, () => 'This SashaModel was disposed.', StateError);
  }
}
