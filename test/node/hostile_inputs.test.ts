// The nine faults found by feeding the CLI hostile and damaged input (one test each), and the
// containment of model directories. Every case must end in one readable line naming the file,
// in a bounded time, with exit code 2 (the library's own error class).
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/core/index.js';
import { generateSyntheticCohort, SYNTHETIC_PRESETS, type SyntheticCohort } from '../../src/wsi/synthetic/index.js';
import { Hafed } from '../../src/hafed/index.js';
import { DataError } from '../../src/core/index.js';
import { fileIO, loadSashaModel, openSlide, writeFeatureFiles, writeSplitFile, writeSyntheticCohortFiles, writeSyntheticSlide } from '../../src/node/index.js';
import { cli, type CliRun } from './cli_capture.js';
import { tempDir } from '../wsi/fixtures.js';
import { TAG, entryOf, putUint, setEntryValue, tiffLayout } from '../reliability/tiff_layout.js';

const tmp = tempDir('sasha-hostile-');
afterAll(() => tmp.cleanup());

const TILE = ['--level', '2', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--quiet', '--json'];
const EXTRACT = ['--lr-level', '2', '--hr-level', '1', '--patch-size', '32', '--a-t', '0.1', '--a-h', '0.1', '--dim', '8', '--input-size', '16', '--reader', 'main', '--quiet', '--json'];

let slide: Uint8Array;

/** Writes a damaged copy of the slide and returns its path. */
function damaged(name: string, damage: (bytes: Uint8Array) => void): string {
  const bytes = Uint8Array.from(slide);
  damage(bytes);
  const file = tmp.path(`${name}.tif`);
  writeFileSync(file, bytes);
  return file;
}

/** The command failed with the library's error (exit 2) in one line, without a stack trace. */
function expectOneLineError(run: CliRun, pattern: RegExp): void {
  expect(run.code).toBe(2);
  const lines = run.stderr.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr).not.toMatch(/undefined\.?\s*$/);
  expect(run.stderr).toMatch(pattern);
}

/** `sasha tile` and `sasha extract` on one slide: both must fail with `pattern`, within `seconds`. */
async function bothRefuse(file: string, pattern: RegExp, seconds = 20): Promise<void> {
  for (const argv of [
    ['tile', file, '--out', tmp.path(`tile-${Math.random()}`), ...TILE],
    ['extract', file, '--out', tmp.path(`ex-${Math.random()}`), ...EXTRACT],
  ]) {
    const t0 = performance.now();
    const run = await cli(argv);
    expect((performance.now() - t0) / 1000, `${argv[0]} time`).toBeLessThan(seconds);
    expectOneLineError(run, pattern);
  }
}

beforeAll(async () => {
  const s = await writeSyntheticSlide(tmp.path('slide.tif'), { width: 1024, height: 768, seed: 0 });
  slide = new Uint8Array(readFileSync(s.path));
});

describe('damaged TIFF slides (found cases 1, 2, 7, 9)', () => {
  it('1: an IFD chain that loops back ends in an error, not a hang', async () => {
    const file = damaged('loop', (b) => {
      const L = tiffLayout(b);
      putUint(b, L.ifds[L.ifds.length - 1].nextAt, L.ifds[0].offset, 4, L.le);
    });
    await bothRefuse(file, /corrupt: image directory 3 points back to the directory at byte \d+ \(a loop\)/);
  });

  it('2: a tile width of 0 and a JPEGTables count of 0x7FFFFFFF are refused before anything is allocated', async () => {
    const zeroWidth = damaged('tile_width_0', (b) => {
      const L = tiffLayout(b);
      setEntryValue(b, L, entryOf(L, 1, TAG.TileWidth), 0);
    });
    await bothRefuse(zeroWidth, /Expected the tiles of level 1 of slide 'tile_width_0.tif' to be at least 1 x 1 pixels, but got 0 x 256/);
    const hugeTables = damaged('tables_count', (b) => {
      const L = tiffLayout(b);
      putUint(b, entryOf(L, 0, TAG.JPEGTables).countAt, 0x7fffffff, 4, L.le);
    });
    const before = process.memoryUsage().rss;
    await bothRefuse(hugeTables, /tag 347 of image directory 0 claims 2147483647 values/);
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 2 ** 20);
    const hugeTile = damaged('tile_65536', (b) => {
      const L = tiffLayout(b);
      setEntryValue(b, L, entryOf(L, 0, TAG.TileWidth), 65535);
    });
    await bothRefuse(hugeTile, /tiles of level 0 of slide 'tile_65536.tif' are 65535 x 256 pixels, more than this reader decodes at once/);
  });

  it('7: tile refuses damaged JPEG data as extract does (cut end, random bytes)', async () => {
    const cut = tmp.path('cut.tif');
    writeFileSync(cut, slide.subarray(0, slide.length - 100));
    await bothRefuse(cut, /'cut.tif' is truncated or corrupt: tag 347 of image directory 2 needs bytes \d+ to \d+, outside the file/);
    // Random damage inside the JPEG data of the segmentation level's tile: libvips decoded such
    // tiles to wrong pixels (a wrong tissue mask, exit 0); both commands must now refuse them.
    const L = tiffLayout(slide);
    const off = entryOf(L, 2, TAG.TileOffsets).dataAt;
    const count = entryOf(L, 2, TAG.TileByteCounts).dataAt;
    const v = new DataView(slide.buffer, slide.byteOffset);
    const start = v.getUint32(off, L.le);
    const len = v.getUint32(count, L.le);
    for (const seed of [0, 1, 2]) {
      const file = damaged(`random_${seed}`, (b) => {
        let x = 12345 + seed;
        for (let i = 0; i < 20; i++) {
          x = (x * 1103515245 + 12345) >>> 0;
          b[start + 600 + (x % (len - 1200))] = x >>> 24;
        }
      });
      await bothRefuse(file, /Cannot decode tile \(0, 0\) of level 2 of slide 'random_\d.tif'/);
    }
  });

  it('9: tiles stored with byte count 0 read as background with a warning', async () => {
    const file = damaged('empty_tiles', (b) => {
      const L = tiffLayout(b);
      const counts = entryOf(L, 0, TAG.TileByteCounts);
      setEntryValue(b, L, counts, 0, 0);
      setEntryValue(b, L, counts, 0, 5);
    });
    const s = await openSlide(file);
    expect(s.warnings).toEqual([
      "Slide 'empty_tiles.tif': 2 of 12 tiles of level 0 are stored with no data (byte count 0); they read as background. " +
        'A scanner leaves empty tiles out on purpose; otherwise the file is damaged.',
    ]);
    const px = await s.readRegion(0, 0, 0, 4, 4);
    expect(Array.from(px)).toEqual(new Array(48).fill(255));
    await s.close();
    const out = tmp.path('tile-empty');
    const run = await cli(['tile', file, '--out', out, ...TILE.filter((f) => f !== '--quiet')]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/2 of 12 tiles of level 0 are stored with no data/);
    const rec = JSON.parse(readFileSync(join(out, 'tiling.json'), 'utf8'))[0];
    expect(rec.warnings).toHaveLength(1);
    const ex = await cli(['extract', file, '--out', tmp.path('ex-empty'), ...EXTRACT.filter((f) => f !== '--quiet')]);
    expect(ex.code).toBe(0);
    expect(ex.stderr).toMatch(/2 of 12 tiles of level 0 are stored with no data/);
  });
});

describe('feature files and labels (found cases 4, 5, 6)', () => {
  let c16: SyntheticCohort;
  let files64: { lrH5: string; hrH5: string; split: string };
  let files32: { lrH5: string; hrH5: string; split: string };

  /** The changed slide: one of the training slides. */
  let TARGET = '';

  beforeAll(async () => {
    c16 = generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 16 });
    TARGET = c16.split.train[1];
    mkdirSync(tmp.path('c64'));
    mkdirSync(tmp.path('c32'));
    files64 = await writeSyntheticCohortFiles(tmp.path('c64'), generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 64 }));
    files32 = await writeSyntheticCohortFiles(tmp.path('c32'), generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, dim: 32 }));
  });

  /** Writes the 16-wide cohort with one slide changed by `change`. */
  async function cohortWith(name: string, change: (bag: SyntheticCohort['bags'][number]) => Partial<SyntheticCohort['bags'][number]>) {
    const dir = tmp.path(name);
    mkdirSync(dir);
    const made: tf.Tensor[] = [];
    const bags = c16.bags.map((b) => {
      if (b.id !== TARGET) return b;
      const patch = change(b);
      for (const t of Object.values(patch)) if (t instanceof tf.Tensor) made.push(t);
      return { ...b, ...patch };
    });
    const files = { lrH5: join(dir, 'lr.h5'), hrH5: join(dir, 'hr.h5'), split: join(dir, 'split.json') };
    await writeFeatureFiles({ lrH5: files.lrH5, hrH5: files.hrH5 }, bags, { patchSizeLevel0: c16.config.patchSizeLevel0 });
    writeSplitFile(files.split, c16.split);
    made.forEach((t) => t.dispose());
    return files;
  }

  it('4: high-res features of another width than the low-res ones (and the model) are refused by train and eval, also with --input lowRes', async () => {
    const out = tmp.path('m64z');
    const bad = ['--lr-h5', files64.lrH5, '--hr-h5', files32.hrH5, '--split', files64.split];
    expectOneLineError(
      await cli(['train', 'hafed', ...bad, '--out', out, '--input', 'lowRes', '--epochs', '1', '--quiet']),
      /c32\/hr.h5', slide 'slide_000': 'feat' has shape \[\d+, 16, 32\], but the low-res file has \[\d+, 64\] \(N and d must match\)/,
    );
    expect(readdirSync(tmp.dir)).not.toContain('m64z');
    const ok = await cli(['train', 'hafed', '--lr-h5', files64.lrH5, '--split', files64.split, '--out', out, '--input', 'lowRes', '--epochs', '1', '--quiet']);
    expect(ok.code).toBe(0);
    expectOneLineError(await cli(['eval', '--model', out, '--hr-h5', files32.hrH5, '--quiet']), /'feat' has shape \[\d+, 16, 32\], but the low-res file has \[\d+, 64\]/);
    expectOneLineError(
      await cli(['eval', '--model', out, '--lr-h5', files32.lrH5, '--split', files32.split, '--quiet']),
      /The model was trained on features with d = 64, but .*c32\/lr.h5' has d = 32/,
    );
  });

  it('5: a label outside the classes is an error naming the slide; the class count comes from --num-classes', async () => {
    const files = await cohortWith('label7', () => ({ label: 7 }));
    const out = tmp.path('m-label7');
    const run = await cli(['train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '1', '--quiet']);
    expectOneLineError(run, new RegExp(`Slide '${TARGET}' has label 7 in '.*label7/lr.h5', outside`));
    expect(run.stderr).toMatch(/outside the 2 classes \(0 to 1\)\. Fix the label, or pass --num-classes 8/);
    const eight = await cli(['train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', out, '--epochs', '1', '--num-classes', '8', '--quiet', '--json']);
    expect(eight.code).toBe(0);
    const model = await Hafed.load(fileIO(join(out, 'hafed')));
    expect(model.numClasses).toBe(8);
    model.dispose();
  });

  it('6: NaN in the low-res features is found by train hafed on U (Z is recorded for the later stages)', async () => {
    const files = await cohortWith('nan_lr', (b) => {
      const z = b.lowRes!.arraySync() as number[][];
      z[3][2] = NaN;
      return { lowRes: tf.tensor2d(z) };
    });
    const run = await cli(['train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', tmp.path('m-nan'), '--epochs', '1', '--quiet']);
    expectOneLineError(run, new RegExp(`nan_lr/lr.h5', slide '${TARGET}': features contain NaN at flat index 50\\. Re-extract the features of this slide`));
  });
});

describe('model directories (found cases 3, 8) and containment', () => {
  let model: string;

  beforeAll(async () => {
    const dir = tmp.path('cohort16');
    mkdirSync(dir);
    const files = await writeSyntheticCohortFiles(dir, generateSyntheticCohort(SYNTHETIC_PRESETS.tiny));
    model = tmp.path('model');
    const run = await cli(['train', 'hafed', '--lr-h5', files.lrH5, '--hr-h5', files.hrH5, '--split', files.split, '--out', model, '--epochs', '1', '--quiet']);
    expect(run.code).toBe(0);
  });

  /** A copy of the trained model directory, changed by `change`. */
  function copyWith(name: string, change: (dir: string) => void): string {
    const dir = tmp.path(name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(model, dir, { recursive: true });
    change(dir);
    return dir;
  }
  const weightsOf = (dir: string) => join(dir, 'hafed', readdirSync(join(dir, 'hafed')).find((f) => f.endsWith('.bin'))!);
  const editJson = (file: string, edit: (j: any) => void) => {
    const j = JSON.parse(readFileSync(file, 'utf8'));
    edit(j);
    writeFileSync(file, JSON.stringify(j));
  };

  it('3: weight and component paths that leave the directory are refused (.., absolute, symlinks), nothing outside is read', async () => {
    const secret = tmp.path('secret.bin');
    writeFileSync(secret, Buffer.alloc(64));
    const cases: [string, (dir: string) => void, RegExp][] = [
      ['dotdot-weights', (d) => editJson(join(d, 'hafed', 'model.json'), (j) => (j.weightsManifest[0].paths = ['../../secret.bin'])), /weights path '..\/..\/secret.bin' in '.*hafed\/model.json' leaves the folder/],
      ['abs-weights', (d) => editJson(join(d, 'hafed', 'model.json'), (j) => (j.weightsManifest[0].paths = ['/etc/passwd'])), /weights path '\/etc\/passwd' in '.*hafed\/model.json' is an absolute path/],
      ['dotdot-manifest', (d) => editJson(join(d, 'sasha.json'), (j) => (j.hafed.path = '../model/hafed')), /path of 'hafed' '..\/model\/hafed' in '.*dotdot-manifest\/sasha.json' leaves the folder/],
      ['abs-manifest', (d) => editJson(join(d, 'sasha.json'), (j) => (j.hafed.path = '/etc')), /path of 'hafed' '\/etc' in .* is an absolute path/],
      [
        'symlink-weights',
        (d) => {
          const w = weightsOf(d);
          rmSync(w);
          symlinkSync(secret, w);
        },
        /file 'weights\.[^']+\.bin' in '.*symlink-weights\/hafed' is a link that leaves the folder/,
      ],
      [
        'symlink-component',
        (d) => {
          rmSync(join(d, 'hafed'), { recursive: true });
          symlinkSync(join(model, 'hafed'), join(d, 'hafed'));
        },
        /path of 'hafed' 'hafed' in '.*symlink-component' is a link that leaves the folder/,
      ],
    ];
    for (const [name, change, pattern] of cases) {
      const dir = copyWith(name, change);
      expectOneLineError(await cli(['eval', '--model', dir, '--quiet']), pattern);
      await expect(loadSashaModel(dir, { withoutPolicy: true })).rejects.toThrow(DataError);
    }
  });

  it('8: a weights file cut in half, or a weight path to the wrong file, gives one line naming the file', async () => {
    const cut = copyWith('cut-weights', (d) => {
      const w = weightsOf(d);
      const b = readFileSync(w);
      writeFileSync(w, b.subarray(0, b.length >> 1));
    });
    expectOneLineError(
      await cli(['eval', '--model', cut, '--quiet']),
      /Weights file '.*cut-weights\/hafed\/weights\.[^']+\.bin' holds \d+ bytes, but '.*model.json' describes \d+ \(\d+ weights\)\. The file is truncated or belongs to another model/,
    );
    const wrong = copyWith('wrong-weights', (d) => editJson(join(d, 'hafed', 'model.json'), (j) => (j.weightsManifest[0].paths = ['model.json'])));
    expectOneLineError(await cli(['eval', '--model', wrong, '--quiet']), /Weights file '.*wrong-weights\/hafed\/model.json' holds \d+ bytes, but .* describes/);
    const notJson = copyWith('bad-json', (d) => writeFileSync(join(d, 'hafed', 'model.json'), '{"modelTopology": {'));
    expectOneLineError(await cli(['eval', '--model', notJson, '--quiet']), /'model.json' in '.*bad-json\/hafed' is not valid JSON .*the file is corrupt/);
  });
});
