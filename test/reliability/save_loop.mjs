// A writer that the crash-safety tests kill with SIGKILL at random points: it saves two HAFED
// models in turn into one folder and updates a model-directory manifest after each save,
// forever. It loads the built package (dist/), so that it starts quickly.
//
//   node test/reliability/save_loop.mjs DIR
// prints "ready", then "saved <i> <A|B>" after each save.
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../../dist/index.js';
import { Hafed } from '../../dist/hafed/index.js';
import { fileIO, updateModelManifest } from '../../dist/node/index.js';
import { MODELS } from './save_loop_models.mjs';

const dir = process.argv[2];
await initBackend('cpu');
const models = MODELS.map((config) => new Hafed(config));
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const which = i % 2 === 0 ? 1 : 0; // the folder starts with A (saved by the test): B first
  await models[which].save(fileIO(`${dir}/hafed`));
  await updateModelManifest(dir, { saves: i, holds: which === 0 ? 'A' : 'B' });
  process.stdout.write(`saved ${i} ${which === 0 ? 'A' : 'B'}\n`);
}
