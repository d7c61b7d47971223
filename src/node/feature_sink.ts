/**
 * Writing extracted features to disk in the reference layout, one slide at a time, so that an
 * extraction run can stop and resume and several machines can share a cohort.
 *
 * Layout under the output directory:
 * ```
 * parts/lr/<slide_id>.h5   /<slide_id>/feat (N, d) float16, /<slide_id>/coords (N, 2), attr label
 * parts/hr/<slide_id>.h5   /<slide_id>/feat (N, k, d) float16, /<slide_id>/coords (N, k, 2), attr label
 * lr.h5, hr.h5             the same groups for the whole cohort (written by merge)
 * ```
 * Every file is written under a temporary name and renamed; a slide is complete when its
 * low-res part exists (the high-res part is written first).
 *
 * @packageDocumentation
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as H5 from 'h5wasm';
import { DataError, ValueError } from '../core/errors.js';
import type { ProgressCallback } from '../core/progress.js';
import type { FeatureSink, SlideFeatures } from '../wsi/extract.js';
import { H5Writer } from './h5/h5_writer.js';
import { bytesToInt32, h5Group, openH5, readNumberAttr, readRaw } from './h5/h5file.js';

/** Options of {@link H5FeatureSink}. @category IO */
export interface H5FeatureSinkOptions {
  /** Whether high-res features U are written (default true). */
  highRes?: boolean;
  /** Element type of `feat` (default `'float16'`, as the reference). */
  dtype?: 'float16' | 'float32';
}

/** Paths of the merged cohort files. @category IO */
export interface MergedFeatureFiles {
  lrH5: string;
  hrH5?: string;
}

const ID_RE = /^[^/.][^/]*$/;

/**
 * A {@link FeatureSink} writing one h5 file per slide and resolution in the reference layout
 * (`parts/lr/<id>.h5`, `parts/hr/<id>.h5`), and merging them into the cohort files `lr.h5` and
 * `hr.h5` that `sasha train` reads.
 *
 * @example
 * ```ts
 * const sink = new H5FeatureSink('work/feats');
 * await extractCohort(slides, { encoder, sink, tiling });
 * if (sink.complete(ids)) await sink.merge(ids);   // work/feats/lr.h5, work/feats/hr.h5
 * ```
 * @category IO
 */
export class H5FeatureSink implements FeatureSink {
  readonly highRes: boolean;
  readonly dtype: 'float16' | 'float32';

  /** @param dir output directory (created on the first write). */
  constructor(
    readonly dir: string,
    options: H5FeatureSinkOptions = {},
  ) {
    this.highRes = options.highRes ?? true;
    this.dtype = options.dtype ?? 'float16';
  }

  /** Path of a slide's part file. */
  partPath(id: string, resolution: 'lr' | 'hr'): string {
    return join(this.dir, 'parts', resolution, `${id}.h5`);
  }

  /** Default paths of the merged cohort files. */
  get mergedPaths(): MergedFeatureFiles {
    return { lrH5: join(this.dir, 'lr.h5'), ...(this.highRes ? { hrH5: join(this.dir, 'hr.h5') } : {}) };
  }

  async has(id: string): Promise<boolean> {
    return existsSync(this.partPath(id, 'lr')) && (!this.highRes || existsSync(this.partPath(id, 'hr')));
  }

  /** Whether every slide of `ids` has its parts. */
  complete(ids: readonly string[]): boolean {
    return ids.every((id) => existsSync(this.partPath(id, 'lr')) && (!this.highRes || existsSync(this.partPath(id, 'hr'))));
  }

  async write(id: string, f: SlideFeatures, meta: { label?: number; encoder: string }): Promise<void> {
    if (!ID_RE.test(id)) throw new DataError(`Slide id '${id}' cannot be an HDF5 group name (no '/', no leading '.'). Rename the file.`);
    if (this.highRes && (!f.highRes || !f.highResCoords || f.k === 0)) {
      throw new DataError(`Slide '${id}' has no high-res features; extract with a high-res level or write low-res only.`);
    }
    mkdirSync(join(this.dir, 'parts', 'lr'), { recursive: true });
    if (this.highRes) {
      mkdirSync(join(this.dir, 'parts', 'hr'), { recursive: true });
      await this.writePart(this.partPath(id, 'hr'), id, f.highRes as Float32Array, [f.n, f.k, f.dim], f.highResCoords as Int32Array, [f.n, f.k, 2], {
        label: meta.label,
        patch_level: f.highResLevel,
        patch_size: f.patchSize,
      });
    }
    // The low-res part is written last: its presence marks the slide complete.
    await this.writePart(this.partPath(id, 'lr'), id, f.lowRes, [f.n, f.dim], f.coords, [f.n, 2], {
      label: meta.label,
      patch_level: f.lowResLevel,
      patch_size: f.patchSize,
    });
  }

  private async writePart(
    path: string,
    id: string,
    feat: Float32Array,
    featShape: number[],
    coords: Int32Array,
    coordShape: number[],
    attrs: Record<string, number | undefined>,
  ): Promise<void> {
    const w = await H5Writer.create(path);
    try {
      w.createGroup(id);
      if (this.dtype === 'float16') w.writeFloat16(`${id}/feat`, feat, featShape);
      else w.writeFloat32(`${id}/feat`, feat, featShape);
      w.writeInt(`${id}/coords`, coords, coordShape, '<i8');
      for (const [name, value] of Object.entries(attrs)) {
        if (value === undefined || (name === 'label' && value < 0)) continue;
        w.writeNumberAttr(id, name, value);
      }
      await w.commit();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  /**
   * Merges the parts of `ids` (in that order) into the cohort files, copying the stored bytes
   * (float16 stays bit-identical). Each cohort file is written under a temporary name and renamed.
   *
   * @param out destination paths (default `lr.h5` and `hr.h5` in the output directory).
   * @throws DataError naming the first slide whose parts are missing.
   */
  async merge(ids: readonly string[], out: MergedFeatureFiles = this.mergedPaths, onProgress?: ProgressCallback): Promise<MergedFeatureFiles> {
    if (ids.length === 0) throw new ValueError('Expected at least one slide to merge, but got none.');
    const missing = ids.find((id) => !existsSync(this.partPath(id, 'lr')) || (this.highRes && !existsSync(this.partPath(id, 'hr'))));
    if (missing !== undefined) throw new DataError(`Slide '${missing}' has no features in '${this.dir}/parts' yet; extract it before merging.`);
    const jobs: ['lr' | 'hr', string][] = [['lr', out.lrH5]];
    if (this.highRes) {
      if (!out.hrH5) throw new ValueError('Expected a path for the merged high-res file (hrH5).');
      jobs.push(['hr', out.hrH5]);
    }
    for (const [res, target] of jobs) {
      const w = await H5Writer.create(target);
      try {
        let done = 0;
        for (const id of ids) {
          const file = await openH5(this.partPath(id, res), `the ${res} part of slide '${id}'`);
          try {
            await copySlide(file, w, id);
          } finally {
            file.close();
          }
          onProgress?.({ task: `merge ${res}`, done: ++done, total: ids.length });
        }
        await w.commit();
      } catch (e) {
        w.abort();
        throw e;
      }
    }
    return out;
  }
}

/** Copies group `id` (feat, coords, numeric attributes) from an open part file into a writer. */
async function copySlide(file: H5.File, w: H5Writer, id: string): Promise<void> {
  const feat = await readRaw(file, `${id}/feat`);
  const coords = await readRaw(file, `${id}/coords`);
  w.createGroup(id);
  if (feat.type === 'float16') {
    const bits = new Uint16Array(feat.bytes.buffer.slice(feat.bytes.byteOffset, feat.bytes.byteOffset + feat.bytes.byteLength) as ArrayBuffer);
    w.writeFloat16(`${id}/feat`, bits, feat.shape);
  } else if (feat.type === 'float32') {
    w.writeFloat32(`${id}/feat`, new Float32Array(feat.bytes.buffer.slice(feat.bytes.byteOffset, feat.bytes.byteOffset + feat.bytes.byteLength) as ArrayBuffer), feat.shape);
  } else {
    throw new DataError(`'${file.filename}': expected float16 or float32 features, but got ${feat.type}.`);
  }
  w.writeInt(`${id}/coords`, bytesToInt32(coords.bytes, coords.type, `${file.filename}:${id}/coords`), coords.shape, '<i8');
  const group = h5Group(file, id);
  for (const name of ['label', 'patch_level', 'patch_size']) {
    const v = readNumberAttr(group, name, `${file.filename}:${id}`);
    if (v !== undefined) w.writeNumberAttr(id, name, v);
  }
}
