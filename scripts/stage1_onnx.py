#!/usr/bin/env python3
"""
Writes src/node/stage1_graphs.ts: HAFED stage 1 as three ONNX graphs (no weights inside; the
weights are inputs), run by onnxruntime-node for `createNativeStage1`.

- scores: U [n, k, d] and the gated scoring weights -> t = tanh(U W_V + b_V), s = sigmoid(U W_U + b_U)
  (each [n, k, D]) and the attention logits [n, M, k];
- pool: the logits, an additive mask [n, M, k] (0 or -1e9, STKIM) and U -> the attention
  a = softmax over k [n, M, k] and the features V = mean_M(a) U [n, d];
- backward: U, t, s, a, W_w and the gradients of V [n, d] and of a [n, M, k] -> the gradients of
  W_V, b_V, W_U, b_U, W_w, b_w (the same formulas as `subPatchBackward`).

Needs the `onnx` Python package (Debian: python3-onnx). Run: python3 scripts/stage1_onnx.py
"""
import base64
import os

import onnx
from onnx import TensorProto as T
from onnx import helper as h

F = T.FLOAT
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), 'src', 'node', 'stage1_graphs.ts')


def vi(name, shape):
    return h.make_tensor_value_info(name, F, shape)


def axes(name, values):
    return h.make_node('Constant', [], [name], value=h.make_tensor(name + '_value', T.INT64, [len(values)], values))


def scalar(name, value):
    return h.make_node('Constant', [], [name], value=h.make_tensor(name + '_value', F, [], [value]))


def model(nodes, name, inputs, outputs):
    m = h.make_model(h.make_graph(nodes, name, inputs, outputs), opset_imports=[h.make_opsetid('', 13)], producer_name='sasha-wsi')
    onnx.checker.check_model(m)
    return m.SerializeToString()


scores = model([
    h.make_node('MatMul', ['U', 'kernelV'], ['hv0']),
    h.make_node('Add', ['hv0', 'biasV'], ['hv']),
    h.make_node('MatMul', ['U', 'kernelU'], ['hu0']),
    h.make_node('Add', ['hu0', 'biasU'], ['hu']),
    h.make_node('Tanh', ['hv'], ['t']),
    h.make_node('Sigmoid', ['hu'], ['s']),
    h.make_node('Mul', ['t', 's'], ['g']),
    h.make_node('MatMul', ['g', 'kernelW'], ['sc0']),
    h.make_node('Add', ['sc0', 'biasW'], ['sc']),                 # [n, k, M]
    h.make_node('Transpose', ['sc'], ['logits'], perm=[0, 2, 1]),  # [n, M, k]
], 'stage1_scores',
    [vi('U', ['n', 'k', 'd']), vi('kernelV', ['d', 'D']), vi('biasV', ['D']), vi('kernelU', ['d', 'D']), vi('biasU', ['D']),
     vi('kernelW', ['D', 'M']), vi('biasW', ['M'])],
    [vi('t', ['n', 'k', 'D']), vi('s', ['n', 'k', 'D']), vi('logits', ['n', 'M', 'k'])])

pool = model([
    axes('axis1', [1]),
    h.make_node('Add', ['logits', 'mask'], ['masked']),
    h.make_node('Softmax', ['masked'], ['a'], axis=-1),
    h.make_node('ReduceMean', ['a'], ['abar'], axes=[1], keepdims=1),  # [n, 1, k]
    h.make_node('MatMul', ['abar', 'U'], ['f3']),                      # [n, 1, d]
    h.make_node('Squeeze', ['f3', 'axis1'], ['features']),
], 'stage1_pool',
    [vi('logits', ['n', 'M', 'k']), vi('mask', ['n', 'M', 'k']), vi('U', ['n', 'k', 'd'])],
    [vi('a', ['n', 'M', 'k']), vi('features', ['n', 'd'])])

backward = model([
    axes('axis1', [1]), axes('axis0', [0]), axes('last', [-1]), scalar('one', 1.0),
    h.make_node('Unsqueeze', ['dFeatures', 'axis1'], ['dF3']),             # [n, 1, d]
    h.make_node('Transpose', ['U'], ['UT'], perm=[0, 2, 1]),               # [n, d, k]
    h.make_node('MatMul', ['dF3', 'UT'], ['dabar']),                       # [n, 1, k]
    h.make_node('Mul', ['dabar', 'invM'], ['dabarM']),
    h.make_node('Add', ['dabarM', 'dAttention'], ['da']),                  # [n, M, k]
    h.make_node('Mul', ['a', 'da'], ['ada']),
    h.make_node('ReduceSum', ['ada', 'last'], ['sada'], keepdims=1),
    h.make_node('Sub', ['da', 'sada'], ['dd']),
    h.make_node('Mul', ['a', 'dd'], ['dl']),                               # softmax: a (da - sum a da)
    h.make_node('Transpose', ['dl'], ['dl3'], perm=[0, 2, 1]),             # [n, k, M]
    h.make_node('Flatten', ['dl3'], ['ds'], axis=2),                       # [R, M]
    h.make_node('Mul', ['t', 's'], ['g3']),
    h.make_node('Flatten', ['g3'], ['g'], axis=2),                         # [R, D]
    h.make_node('Gemm', ['g', 'ds'], ['dKernelW'], transA=1),              # [D, M]
    h.make_node('ReduceSum', ['ds', 'axis0'], ['dBiasW'], keepdims=0),
    h.make_node('Gemm', ['ds', 'kernelW'], ['dg'], transB=1),              # [R, D]
    h.make_node('Flatten', ['t'], ['t2'], axis=2),
    h.make_node('Flatten', ['s'], ['s2'], axis=2),
    h.make_node('Mul', ['t2', 't2'], ['tt']),
    h.make_node('Sub', ['one', 'tt'], ['omtt']),
    h.make_node('Mul', ['dg', 's2'], ['dgs']),
    h.make_node('Mul', ['dgs', 'omtt'], ['dhv']),                          # through tanh
    h.make_node('Sub', ['one', 's2'], ['oms']),
    h.make_node('Mul', ['s2', 'oms'], ['sds']),
    h.make_node('Mul', ['dg', 't2'], ['dgt']),
    h.make_node('Mul', ['dgt', 'sds'], ['dhu']),                           # through sigmoid
    h.make_node('Flatten', ['U'], ['U2'], axis=2),                         # [R, d]
    h.make_node('Gemm', ['U2', 'dhv'], ['dKernelV'], transA=1),
    h.make_node('ReduceSum', ['dhv', 'axis0'], ['dBiasV'], keepdims=0),
    h.make_node('Gemm', ['U2', 'dhu'], ['dKernelU'], transA=1),
    h.make_node('ReduceSum', ['dhu', 'axis0'], ['dBiasU'], keepdims=0),
], 'stage1_backward',
    [vi('U', ['n', 'k', 'd']), vi('t', ['n', 'k', 'D']), vi('s', ['n', 'k', 'D']), vi('a', ['n', 'M', 'k']),
     vi('kernelW', ['D', 'M']), vi('dFeatures', ['n', 'd']), vi('dAttention', ['n', 'M', 'k']), vi('invM', [1])],
    [vi('dKernelV', ['d', 'D']), vi('dBiasV', ['D']), vi('dKernelU', ['d', 'D']), vi('dBiasU', ['D']), vi('dKernelW', ['D', 'M']),
     vi('dBiasW', ['M'])])


def b64(data):
    text = base64.b64encode(data).decode('ascii')
    return '\n'.join("  '" + text[i:i + 96] + "' +" for i in range(0, len(text), 96)).rstrip(' +')


with open(OUT, 'w') as f:
    f.write('''/**
 * HAFED stage 1 as ONNX graphs (no weights inside; the weights are inputs), for
 * `createNativeStage1`. Generated by `scripts/stage1_onnx.py` (it documents each graph); do not
 * edit by hand.
 *
 * @packageDocumentation
 */

/** The graphs, base64-encoded ONNX models (opset 13). */
export const STAGE1_GRAPHS = {
  /** U [n, k, d] and the scoring weights -> t, s [n, k, D] and the logits [n, M, k]. */
  scores:
''' + b64(scores) + ''',
  /** The logits, an additive mask [n, M, k] and U -> the attention [n, M, k] and V [n, d]. */
  pool:
''' + b64(pool) + ''',
  /** U, t, s, a, W_w and the gradients of V and a -> the six weight gradients. */
  backward:
''' + b64(backward) + ''',
} as const;
''')
print('wrote', OUT)
