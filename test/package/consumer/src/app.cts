// CommonJS: the same package through require().
import sasha = require('sasha-wsi');
import core = require('sasha-wsi/core');
import node = require('sasha-wsi/node');

sasha.initBackend().then((backend: sasha.BackendName) => {
  const h = new sasha.Hafed({ dim: 8, k: 4, seed: 1 });
  const { probs } = h.classify(core.tf.ones([5, 8]) as core.tf.Tensor2D);
  console.log(JSON.stringify({ backend, version: sasha.VERSION, classes: probs.shape[1], io: typeof node.fileIO }));
});
