import onnx
from onnx import helper as h, TensorProto as T
F=T.FLOAT; I64=T.INT64
def vi(n,t,shape): return h.make_tensor_value_info(n,t,shape)
def const(name, vals, t=I64):
    return h.make_node('Constant',[],[name],value=h.make_tensor(name+'_v',t,[len(vals)],vals))
def cf(name, v):
    return h.make_node('Constant',[],[name],value=h.make_tensor(name+'_v',F,[],[v]))
# ---------- forward ----------
# inputs: U [R,d], WV [d,D], bV [D], WU [d,D], bU [D], Ww [D,M], bw [M], mask [n,M,k] (additive: 0 or -1e9), shape_nkm [3] int64 (n,k,M), shape_nkd [3] (n,k,d), shape_nd [2] (n,d)
nodes=[
 h.make_node('Gemm',['U','WV','bV'],['hv']),
 h.make_node('Gemm',['U','WU','bU'],['hu']),
 h.make_node('Tanh',['hv'],['t']),
 h.make_node('Sigmoid',['hu'],['s']),
 h.make_node('Mul',['t','s'],['g']),
 h.make_node('Gemm',['g','Ww','bw'],['scores']),            # [R,M]
 h.make_node('Reshape',['scores','shape_nkm'],['s3']),       # [n,k,M]
 h.make_node('Transpose',['s3'],['logits'],perm=[0,2,1]),    # [n,M,k]
 h.make_node('Add',['logits','mask'],['ml']),
 h.make_node('Softmax',['ml'],['a'],axis=-1),                # opset 13: along last axis
 h.make_node('ReduceMean',['a'],['abar'],axes=[1],keepdims=1), # [n,1,k]
 h.make_node('Reshape',['U','shape_nkd'],['u3']),            # [n,k,d]
 h.make_node('MatMul',['abar','u3'],['f3']),                 # [n,1,d]
 h.make_node('Reshape',['f3','shape_nd'],['features']),
]
g=h.make_graph(nodes,'stage1_forward',
 [vi('U',F,['R','d']),vi('WV',F,['d','D']),vi('bV',F,['D']),vi('WU',F,['d','D']),vi('bU',F,['D']),vi('Ww',F,['D','M']),vi('bw',F,['M']),vi('mask',F,['n','M','k']),vi('shape_nkm',I64,[3]),vi('shape_nkd',I64,[3]),vi('shape_nd',I64,[2])],
 [vi('features',F,['n','d']),vi('a',F,['n','M','k']),vi('t',F,['R','D']),vi('s',F,['R','D'])])
onnx.save(h.make_model(g,opset_imports=[h.make_opsetid('',13)]),'/work/ortexp/stage1_forward.onnx')
# ---------- backward ----------
# inputs: U [R,d], t, s [R,D], a [n,M,k], dF [n,d], dA [n,M,k], Ww [D,M], invM scalar, shapes: shape_n1d [3] (n,1,d), shape_nkd [3], shape_RM [2] (R,M)
nodes=[
 h.make_node('Reshape',['U','shape_nkd'],['u3']),
 h.make_node('Reshape',['dF','shape_n1d'],['dF3']),
 h.make_node('Transpose',['u3'],['u3T'],perm=[0,2,1]),        # [n,d,k]
 h.make_node('MatMul',['dF3','u3T'],['dabar']),               # [n,1,k]
 h.make_node('Mul',['dabar','invM'],['dabarM']),
 h.make_node('Add',['dabarM','dA'],['da']),                   # broadcast [n,M,k]
 h.make_node('Mul',['a','da'],['ada']),
 h.make_node('ReduceSum',['ada','axes_last'],['sada'],keepdims=1),
 h.make_node('Sub',['da','sada'],['dd']),
 h.make_node('Mul',['a','dd'],['dl']),                        # [n,M,k]
 h.make_node('Transpose',['dl'],['dlT'],perm=[0,2,1]),        # [n,k,M]
 h.make_node('Reshape',['dlT','shape_RM'],['ds']),            # [R,M]
 h.make_node('Mul',['t','s'],['g']),
 h.make_node('Gemm',['g','ds'],['dWw'],transA=1),             # [D,M]
 h.make_node('ReduceSum',['ds','axes0'],['dbw'],keepdims=0),
 h.make_node('Gemm',['ds','Ww'],['dg'],transB=1),             # [R,D]
 h.make_node('Mul',['t','t'],['t2']),
 h.make_node('Sub',['one','t2'],['omt2']),
 h.make_node('Mul',['dg','s'],['dgs']),
 h.make_node('Mul',['dgs','omt2'],['dhv']),
 h.make_node('Sub',['one','s'],['oms']),
 h.make_node('Mul',['s','oms'],['sds']),
 h.make_node('Mul',['dg','t'],['dgt']),
 h.make_node('Mul',['dgt','sds'],['dhu']),
 h.make_node('Gemm',['U','dhv'],['dWV'],transA=1),
 h.make_node('ReduceSum',['dhv','axes0'],['dbV'],keepdims=0),
 h.make_node('Gemm',['U','dhu'],['dWU'],transA=1),
 h.make_node('ReduceSum',['dhu','axes0'],['dbU'],keepdims=0),
]
nodes=[const('axes_last',[-1]),const('axes0',[0]),cf('one',1.0)]+nodes
g=h.make_graph(nodes,'stage1_backward',
 [vi('U',F,['R','d']),vi('t',F,['R','D']),vi('s',F,['R','D']),vi('a',F,['n','M','k']),vi('dF',F,['n','d']),vi('dA',F,['n','M','k']),vi('Ww',F,['D','M']),vi('invM',F,[]),vi('shape_n1d',I64,[3]),vi('shape_nkd',I64,[3]),vi('shape_RM',I64,[2])],
 [vi('dWV',F,['d','D']),vi('dbV',F,['D']),vi('dWU',F,['d','D']),vi('dbU',F,['D']),vi('dWw',F,['D','M']),vi('dbw',F,['M'])])
onnx.save(h.make_model(g,opset_imports=[h.make_opsetid('',13)]),'/work/ortexp/stage1_backward.onnx')
for f in ['stage1_forward','stage1_backward']:
    onnx.checker.check_model(onnx.load('/work/ortexp/%s.onnx'%f)); print(f,'ok')
