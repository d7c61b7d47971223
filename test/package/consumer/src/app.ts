// ESM: the root entry and the subpaths, as a user imports them.
import { initBackend, Hafed, InMemoryDataset, MemoryCheckpointStore, trainHafed, tf, VERSION, type BackendName } from 'sasha-wsi';
import { matMul } from 'sasha-wsi/core';
import { MultiBranchAttention } from 'sasha-wsi/hafed';
import { generateSyntheticCohort, SYNTHETIC_PRESETS } from 'sasha-wsi/synthetic';
import { fileIO, openSlide } from 'sasha-wsi/node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const backend: BackendName = await initBackend();
const cohort = generateSyntheticCohort({ ...SYNTHETIC_PRESETS.tiny, seed: 1 });
const train = new InMemoryDataset(cohort.bags.slice(0, 4));
const { model, history } = await trainHafed({ train, model: { input: 'lowRes' }, config: { epochs: 1 }, checkpoint: new MemoryCheckpointStore() });
const dir = path.join(mkdtempSync(path.join(tmpdir(), 'consumer-')), 'hafed');
await model.save(fileIO(dir));
const again = await Hafed.load(fileIO(dir));
const product = matMul(tf.ones([1, 2]) as tf.Tensor2D, tf.ones([2, 1]) as tf.Tensor2D).dataSync()[0];
console.log(
  JSON.stringify({ backend, version: VERSION, epochs: history.length, reloaded: again.dim, product, layer: typeof MultiBranchAttention, openSlide: typeof openSlide }),
);
