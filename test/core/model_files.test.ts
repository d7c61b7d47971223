import { describe, expect, it } from 'vitest';
import { DataError, modelFilesFromPicked, modelFilesFromUrl, readModelArtifacts, readModelJson, tf } from '../../src/core/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const blob = (name: string, path: string, bytes: Uint8Array) => ({ name, webkitRelativePath: path, arrayBuffer: async () => bytes.slice().buffer });

/** A model.json with two weights in two files, and the files' bytes. */
function twoFileModel(): { json: string; a: Float32Array; b: Float32Array } {
  const a = Float32Array.from([1, 2, 3]);
  const b = Float32Array.from([-4, 5.5]);
  const json = JSON.stringify({
    modelTopology: { any: 'thing' },
    format: 'test',
    weightsManifest: [
      { paths: ['w1.bin'], weights: [{ name: 'a', shape: [3], dtype: 'float32' }] },
      { paths: ['w2.bin'], weights: [{ name: 'b', shape: [2], dtype: 'float32' }] },
    ],
  });
  return { json, a, b };
}

describe('modelFilesFromPicked', () => {
  it('finds the model directory inside the picked folder and reads its files by relative path', async () => {
    const files = modelFilesFromPicked([
      blob('README', 'models/README', enc('hi')),
      blob('sasha.json', 'models/c16/sasha.json', enc('{"x": 1}')),
      blob('model.json', 'models/c16/hafed/model.json', enc('{}')),
    ]);
    expect(files.name).toBe('models/c16');
    expect(await readModelJson(files, 'sasha.json')).toEqual({ x: 1 });
    expect(await files.read('./hafed/../hafed/model.json')).toEqual(enc('{}'));
    expect(await files.read('README')).toBeNull();
    expect(await files.read('nothing.json')).toBeNull();
  });

  it('assembles the weights a model.json lists, in manifest order', async () => {
    const { json, a, b } = twoFileModel();
    const files = modelFilesFromPicked(
      new Map([
        ['enc/model.json', blob('model.json', '', enc(json))],
        ['enc/w1.bin', blob('w1.bin', '', new Uint8Array(a.buffer))],
        ['enc/w2.bin', blob('w2.bin', '', new Uint8Array(b.buffer))],
      ]),
    );
    const art = (await readModelArtifacts(files, 'enc'))!;
    expect(art.weightSpecs!.map((s) => s.name)).toEqual(['a', 'b']);
    const data = new Float32Array(tf.io.CompositeArrayBuffer.join(art.weightData!));
    expect(Array.from(data)).toEqual([1, 2, 3, -4, 5.5]);
    expect(await readModelArtifacts(files, 'missing')).toBeNull();
  });

  it('names the missing weights file and the corrupt JSON', async () => {
    const { json } = twoFileModel();
    const files = modelFilesFromPicked(new Map([['model.json', blob('model.json', '', enc(json))], ['bad.json', blob('bad.json', '', enc('{oops'))]]));
    await expect(readModelArtifacts(files, '')).rejects.toThrow(/weights file 'w1.bin' listed in 'model.json' is missing/);
    await expect(readModelJson(files, 'bad.json')).rejects.toThrow(DataError);
    await expect(readModelJson(files, 'bad.json')).rejects.toThrow(/'bad.json' in .* is not valid JSON/);
  });
});

describe('modelFilesFromUrl', () => {
  it('fetches relative to the directory URL; 404 reads as missing, other statuses are errors naming the URL', async () => {
    const asked: string[] = [];
    const files = modelFilesFromUrl('https://example.org/models/c16', {
      fetch: async (url) => {
        asked.push(url);
        if (url.endsWith('/sasha.json')) return new Response('{"ok": true}', { status: 200 });
        if (url.endsWith('/broken.json')) return new Response('no', { status: 500, statusText: 'Server Error' });
        return new Response('not found', { status: 404 });
      },
    });
    expect(files.name).toBe('https://example.org/models/c16/');
    expect(await readModelJson(files, 'sasha.json')).toEqual({ ok: true });
    expect(await files.read('hafed/model.json')).toBeNull();
    await expect(files.read('broken.json')).rejects.toThrow(/Cannot fetch 'https:\/\/example.org\/models\/c16\/broken.json': HTTP 500/);
    expect(asked).toEqual(['https://example.org/models/c16/sasha.json', 'https://example.org/models/c16/hafed/model.json', 'https://example.org/models/c16/broken.json']);
    const down = modelFilesFromUrl('https://example.org/m/', { fetch: async () => Promise.reject(new TypeError('Failed to fetch')) });
    await expect(down.read('sasha.json')).rejects.toThrow(/Failed to fetch.*CORS/);
  });

  it('refuses a weight entry nested too deeply to print with one readable line', async () => {
    const { json } = twoFileModel();
    const deep = json.replace('"shape":[3]', `"shape":${'['.repeat(200_000)}1${']'.repeat(200_000)}`);
    expect(deep.length).toBeGreaterThan(400_000);
    const files = modelFilesFromPicked(new Map([['model.json', blob('model.json', '', enc(deep))]]));
    const err = await readModelArtifacts(files, '').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/weight 'a' has the shape a value nested too deeply to print, not a list of non-negative integers/);
    const long = json.replace('"dtype":"float32"', `"dtype":"${'x'.repeat(500)}"`);
    const err2 = await readModelArtifacts(modelFilesFromPicked(new Map([['model.json', blob('model.json', '', enc(long))]])), '').catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/has the unknown dtype "x{56}\.\.\.\. The file is corrupt/);
  });
});
