/**
 * The one place the library imports TensorFlow.js.
 *
 * Importing `@tensorflow/tfjs-layers` registers every gradient (the Node bundle of tfjs-core
 * registers none by itself), and importing `@tensorflow/tfjs-backend-cpu` guarantees that a
 * backend exists even before {@link initBackend} runs. Library code uses the functional API
 * only (`tf.reshape(x, s)`, never `x.reshape(s)`): chained ops are not registered in Node.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';

export { tf, tfl };
