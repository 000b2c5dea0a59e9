"""Tiny ONNX models built with onnx.helper for the frontend tests.

:class:`Net` writes a model node by node; the ``m_*`` functions build one model per op/attribute
variant (``CASES`` lists them with the opsets they are built for).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference


class Net:
    """A model under construction: one float input ``x`` with a batch axis (``"N"`` or fixed)."""

    def __init__(self, in_shape, opset: int = 13, batch="N", seed: int = 0, name: str = "net"):
        self.opset = opset
        self.in_shape = tuple(in_shape)
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.name = name
        self.count = 0

    def const(self, value, name: str | None = None, dtype=np.float32) -> str:
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def rand(self, *shape, scale: float = 0.5, name: str | None = None) -> str:
        return self.const(self.rng.standard_normal(shape) * scale, name)

    def node(self, op: str, inputs, name: str | None = "", n_out: int = 1, **attrs) -> str:
        self.count += 1
        outs = [f"t{self.count}_{i}" for i in range(n_out)]
        if name == "":
            name = f"/{op.lower()}{self.count}/{op}"
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name or None, **attrs))
        return outs[0]

    def model(self, output: str, infer: bool = True) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [self.batch, *self.in_shape])
        y = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
        opset = [helper.make_opsetid("", self.opset)]
        ir = helper.find_min_ir_version_for(opset)
        inputs = [x]
        if ir < 4:  # before IR 4 every initializer is also a graph input
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.inits]
        graph = helper.make_graph(self.nodes, self.name, inputs, [y], self.inits)
        model = helper.make_model(graph, opset_imports=opset, ir_version=max(ir, 3))
        if infer:  # fill in the output's shape (IR 3 requires one)
            model.graph.output[0].CopyFrom(shape_inference.infer_shapes(model).graph.output[0])
        if not model.graph.output[0].type.tensor_type.HasField("shape"):
            model.graph.output[0].type.tensor_type.shape.SetInParent()
        return model

    # -- layers
    def conv(self, x, ci, co, k=(3, 3), bias=True, groups=1, name="", **attrs) -> str:
        w = self.rand(co, ci // groups, *k)
        ins = [x, w] + ([self.rand(co)] if bias else [])
        return self.node("Conv", ins, name=name, group=groups, **attrs)

    def gemm(self, x, k, m, name="", **attrs) -> str:
        w = self.rand(m, k, scale=0.3)
        return self.node("Gemm", [x, w, self.rand(m)], name=name, transB=1, **attrs)

    def bn(self, x, c, name="") -> str:
        r = self.rng
        parts = [r.uniform(0.5, 1.5, c), r.standard_normal(c), r.standard_normal(c) * 0.3, r.uniform(0.5, 2, c)]
        attrs = {"spatial": 1} if self.opset < 9 else {}
        return self.node("BatchNormalization", [x, *(self.const(p) for p in parts)], name=name, epsilon=1e-3, **attrs)

    def relu(self, x) -> str:
        return self.node("Relu", [x])

    def flatten(self, x) -> str:
        return self.node("Flatten", [x], axis=1)

    def clip(self, x, lo=None, hi=None) -> str:
        if self.opset < 11:
            attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
            return self.node("Clip", [x], **attrs)
        ins = [x, "" if lo is None else self.const(lo), "" if hi is None else self.const(hi)]
        while ins[-1] == "":
            ins.pop()
        return self.node("Clip", ins)

    def axes_node(self, op, x, axes) -> str:
        if self.opset < 13:
            return self.node(op, [x], axes=list(axes))
        return self.node(op, [x, self.const(axes, dtype=np.int64)])


# -- the models ---------------------------------------------------------------------------------
def m_conv_basic(opset):
    n = Net((3, 7, 6), opset)
    return n.model(n.conv("x", 3, 4, pads=[1, 1, 1, 1]))


def m_conv_nobias_stride_asym(opset):
    n = Net((2, 9, 8), opset)
    return n.model(n.conv("x", 2, 3, bias=False, strides=[2, 1], pads=[0, 1, 2, 0]))


def m_conv_nonsquare(opset):
    n = Net((2, 6, 7), opset)
    y = n.conv("x", 2, 3, k=(1, 3), pads=[0, 1, 0, 1])
    return n.model(n.conv(y, 3, 2, k=(3, 1), strides=[2, 2]))


def _auto_pad(mode, stride, size):
    def build(opset):
        n = Net((2, size, size + 1), opset)
        return n.model(n.conv("x", 2, 3, auto_pad=mode, strides=[stride, stride]))
    build.__name__ = f"m_conv_{mode.lower()}_s{stride}_{size}"
    return build


def m_conv_depthwise(opset):
    n = Net((4, 6, 6), opset)
    y = n.relu(n.conv("x", 4, 4, groups=4, pads=[1, 1, 1, 1]))
    return n.model(n.conv(y, 4, 6, groups=2, k=(1, 1)))


def m_conv1d(opset):
    n = Net((3, 12), opset)
    y = n.relu(n.conv("x", 3, 4, k=(3,), strides=[2], pads=[1, 2]))
    return n.model(n.conv(y, 4, 2, k=(2,), auto_pad="SAME_UPPER"))


def m_conv1d_pool_gap(opset):
    n = Net((2, 16), opset)
    y = n.conv("x", 2, 4, k=(3,), pads=[1, 1])
    y = n.node("MaxPool", [y], kernel_shape=[2], strides=[2])
    y = n.node("AveragePool", [y], kernel_shape=[3], strides=[1], pads=[1, 1])
    y = n.node("GlobalAveragePool", [y])
    return n.model(n.gemm(n.flatten(y), 4, 3))


def m_gemm_variants(opset):
    n = Net((5,), opset)
    y = n.node("Gemm", ["x", n.rand(5, 4), n.rand(4)], alpha=0.5, beta=2.0)  # transB=0, C [M]
    y = n.node("Gemm", [y, n.rand(3, 4), n.rand(1, 3)], transB=1, alpha=1.5)  # C [1, M]
    y = n.node("Gemm", [y, n.rand(3, 2), n.const(0.25)], beta=-1.0)  # scalar C
    return n.model(y)


def m_gemm_no_c(opset):
    n = Net((6,), opset)
    y = n.flatten(n.node("Gemm", ["x", n.rand(4, 6)], transB=1))  # Flatten of a vector: nothing
    return n.model(n.node("Gemm", [y, n.rand(4, 2)]))


def m_output_relabel(opset):
    """The model output is a relabelling the IR cannot hold ([N, 2, 3]): only the output shape says it."""
    n = Net((4,), opset)
    y = n.node("Reshape", [n.gemm("x", 4, 6), n.const([-1, 2, 3], dtype=np.int64)])
    return n.model(n.axes_node("Unsqueeze", y, [1]))


def m_squeeze_no_axes(opset):
    n = Net((3, 4, 4), opset)
    y = n.node("GlobalAveragePool", [n.conv("x", 3, 4, pads=[1, 1, 1, 1])])
    y = n.node("Squeeze", [y])
    return n.model(n.gemm(y, 4, 2))


def m_gemm_transa(opset):
    n = Net((6,), opset)
    t = n.node("Transpose", ["x"], perm=[1, 0])
    y = n.node("Gemm", [t, n.rand(6, 4), n.rand(4)], transA=1)
    y = n.node("Transpose", [n.node("Transpose", [y], perm=[1, 0])])  # there and back
    return n.model(n.node("Gemm", [y, n.rand(4, 3), n.rand(3)]))


def m_matmul_add(opset):
    n = Net((6,), opset)
    y = n.node("Add", [n.node("MatMul", ["x", n.rand(6, 5)]), n.rand(5)])
    y = n.relu(y)
    y = n.node("Add", [n.rand(1, 3), n.node("MatMul", [y, n.rand(5, 3)])])  # constant first
    return n.model(n.node("MatMul", [y, n.rand(3, 2)]))  # no bias


def m_residual(opset):
    n = Net((3, 5, 5), opset)
    a = n.relu(n.conv("x", 3, 3, pads=[1, 1, 1, 1]))
    b = n.conv(a, 3, 3, pads=[1, 1, 1, 1])
    y = n.relu(n.node("Add", [b, "x"]))
    return n.model(n.node("Add", [y, n.conv(y, 3, 3, k=(1, 1))]))


def m_add_channel_const(opset):
    n = Net((3, 4, 4), opset)
    y = n.conv("x", 3, 2, bias=False)
    y = n.node("Add", [y, n.rand(1, 2, 1, 1)])
    y = n.node("Mul", [y, n.rand(2, 1, 1)])
    y = n.node("Sub", [y, n.const(0.5)])
    return n.model(n.relu(n.node("Div", [y, n.const([[[2.0]], [[4.0]]])])))


def m_input_normalization(opset):
    n = Net((2, 6, 6), opset)
    y = n.node("Div", [n.node("Sub", ["x", n.rand(2, 1, 1)]), n.const(np.array([0.5, 2.0]).reshape(2, 1, 1))])
    y = n.relu(n.conv(y, 2, 3))  # no padding: the input affine folds forward
    y = n.node("Sub", [n.const(1.0), n.flatten(y)])
    return n.model(n.gemm(y, 3 * 4 * 4, 4))


def m_clip_relu6(opset):
    n = Net((2, 6, 6), opset)
    y = n.clip(n.conv("x", 2, 3, pads=[1, 1, 1, 1]), 0.0, 6.0)
    y = n.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = n.clip(n.relu(n.conv(y, 3, 4, k=(1, 1))), 0.0, 0.5)
    return n.model(y)


def m_clip_open(opset):
    n = Net((4,), opset)
    y = n.clip(n.gemm("x", 4, 5), 0.0)  # min only: a ReLU
    y = n.clip(y)  # no bounds: removed
    return n.model(n.gemm(y, 5, 3))


def m_relu_through_pool_flatten(opset):
    n = Net((2, 6, 6), opset)
    y = n.conv("x", 2, 3, pads=[1, 1, 1, 1])
    y = n.relu(n.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    y = n.relu(n.flatten(n.node("MaxPool", [n.conv(y, 3, 2)], kernel_shape=[1, 1])))
    return n.model(y)


def m_maxpool_variants(opset):
    n = Net((2, 7, 7), opset)
    a = n.node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    a = n.node("MaxPool", [n.conv(a, 2, 2, k=(1, 1))], kernel_shape=[2, 2], auto_pad="SAME_UPPER")
    a = n.node("MaxPool", [n.conv(a, 2, 2, k=(1, 1))], kernel_shape=[2, 3], strides=[1, 2], pads=[1, 0, 0, 1])
    return n.model(n.node("GlobalMaxPool", [n.conv(a, 2, 3, k=(1, 1))]))


def m_pool_ceil_edge(opset):
    """ceil_mode where the last window would start in the end padding: onnxruntime drops it."""
    n = Net((1, 4, 5), opset)
    y = n.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 1, 1, 1], ceil_mode=1)
    return n.model(n.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1))


def m_avgpool_variants(opset):
    n = Net((2, 7, 7), opset)
    a = n.node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    b = n.node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    y = n.node("Add", [n.conv(a, 2, 2, k=(1, 1)), n.conv(b, 2, 2, k=(1, 1))])
    y = n.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    y = n.node("AveragePool", [n.relu(y)], kernel_shape=[2, 2], auto_pad="SAME_LOWER")
    return n.model(n.node("GlobalAveragePool", [y]))


def m_reshape_flatten(opset):
    n = Net((3, 4, 4), opset)
    y = n.relu(n.conv("x", 3, 2, pads=[1, 1, 1, 1]))
    y = n.node("Reshape", [y, n.const([0, -1], dtype=np.int64)])
    return n.model(n.gemm(y, 32, 3))


def m_reshape_shape_chain(opset):
    """``x.view(x.size(0), -1)`` as old PyTorch exports write it: Shape, Gather, Unsqueeze, Concat."""
    n = Net((2, 3, 3), opset)
    y = n.relu(n.conv("x", 2, 4, pads=[1, 1, 1, 1]))
    s = n.node("Shape", [y])
    b = n.node("Gather", [s, n.node("Constant", [], value=numpy_helper.from_array(np.array(0, np.int64)))], axis=0)
    b = n.axes_node("Unsqueeze", b, [0])
    shape = n.node("Concat", [b, n.const([-1], dtype=np.int64)], axis=0)
    return n.model(n.gemm(n.node("Reshape", [y, shape]), 36, 2))


def m_batch1_reshape(opset):
    n = Net((2, 4, 4), opset, batch=1)
    y = n.node("Reshape", [n.relu(n.conv("x", 2, 3)), n.const([1, 12], dtype=np.int64)])
    return n.model(n.node("Softmax", [n.gemm(y, 12, 5)], axis=1))


def m_weight_reshape(opset):
    """CNTK style: the conv weight stored flat, reshaped (and transposed) by constant nodes."""
    n = Net((2, 5, 5), opset)
    w = n.const(n.rng.standard_normal(3 * 2 * 3 * 3) * 0.5)
    shape = n.node("Constant", [], value=numpy_helper.from_array(np.array([2, 3, 3, 3], np.int64)))
    w = n.node("Transpose", [n.node("Reshape", [w, shape])], perm=[1, 0, 2, 3])
    w = n.node("Cast", [w], to=TensorProto.FLOAT)
    bias = n.node("Mul", [n.const(np.arange(3)), n.node("Constant", [], value_float=0.5)]) if opset >= 12 else \
        n.const(np.arange(3) * 0.5)
    y = n.node("Conv", ["x", w, bias], pads=[1, 1, 1, 1])
    wf = n.node("Transpose", [n.const(n.rng.standard_normal((75, 2)) * 0.2)], perm=[1, 0])
    c = [n.const(np.zeros(2))] if opset < 11 else []
    return n.model(n.node("Gemm", [n.flatten(y), wf, *c], transB=1))


def m_squeeze_gap(opset):
    n = Net((3, 5, 5), opset)
    y = n.node("GlobalAveragePool", [n.relu(n.conv("x", 3, 4))])
    y = n.axes_node("Squeeze", y, [2, 3])
    return n.model(n.gemm(y, 4, 2))


def m_unsqueeze_conv1d(opset):
    """A 1-D signal run through a 2-D conv: Unsqueeze to [N, C, 1, W], then Squeeze back."""
    n = Net((2, 10), opset)
    y = n.axes_node("Unsqueeze", "x", [2])
    y = n.relu(n.conv(y, 2, 3, k=(1, 3), pads=[0, 1, 0, 1]))
    y = n.axes_node("Squeeze", y, [-2])
    y = n.conv(y, 3, 2, k=(3,))
    return n.model(y)


def m_transpose_relabel(opset):
    n = Net((3, 4, 4), opset)
    y = n.node("GlobalAveragePool", [n.conv("x", 3, 5, pads=[1, 1, 1, 1])])
    y = n.node("Transpose", [y], perm=[0, 2, 3, 1])  # [N, 1, 1, C]: the same data order
    y = n.node("Reshape", [y, n.const([-1, 5], dtype=np.int64)])
    return n.model(n.gemm(y, 5, 3))


def m_bn_after_conv(opset):
    n = Net((2, 5, 5), opset)
    y = n.relu(n.bn(n.conv("x", 2, 3, pads=[1, 1, 1, 1]), 3))
    y = n.bn(n.conv(y, 3, 4, bias=False, strides=[2, 2]), 4)
    return n.model(y)


def m_bn_forward(opset):
    """BN after a ReLU: folded forward into the unpadded conv, and through a flatten into a dense."""
    n = Net((2, 6, 6), opset)
    y = n.bn(n.relu(n.conv("x", 2, 3)), 3)
    y = n.bn(n.relu(n.conv(y, 3, 3, pads=[0, 0, 0, 0])), 3)
    return n.model(n.gemm(n.flatten(y), 12, 4))


def m_bn_input_and_dense(opset):
    n = Net((2, 4, 4), opset)
    y = n.relu(n.conv(n.bn("x", 2), 2, 3, k=(2, 2), strides=[2, 2]))
    y = n.bn(n.gemm(n.flatten(y), 12, 5), 5)  # 1-D BN after a dense
    return n.model(n.node("LogSoftmax", [y], axis=1 if opset < 13 else -1))


def m_identity_dropout(opset):
    n = Net((4,), opset)
    y = n.node("Identity", [n.gemm("x", 4, 6)])
    if opset < 12:
        y = n.node("Dropout", [y], ratio=0.3)
    else:
        y = n.node("Dropout", [y, n.const(0.3), n.const(False, dtype=bool)])
    y = n.node("Dropout", [n.relu(y)])
    return n.model(n.node("Identity", [n.node("Softmax", [n.node("Identity", [n.gemm(y, 6, 3)])])]))


def m_cast_float(opset):
    n = Net((4,), opset)
    y = n.node("Cast", [n.gemm("x", 4, 3)], to=TensorProto.FLOAT)
    return n.model(y)


def m_unnamed(opset):
    n = Net((2, 4, 4), opset)
    y = n.node("Relu", [n.conv("x", 2, 2, name=None)], name=None)
    return n.model(n.node("Gemm", [n.flatten(y), n.rand(2, 8)], name=None, transB=1))


def m_mlp_batch1(opset):
    n = Net((8,), opset, batch=1)
    return n.model(n.gemm(n.relu(n.gemm("x", 8, 6)), 6, 4))


CASES = {
    m_conv_basic: (7, 11, 13, 21),
    m_conv_nobias_stride_asym: (9, 13),
    m_conv_nonsquare: (13,),
    _auto_pad("SAME_UPPER", 2, 5): (8, 13),
    _auto_pad("SAME_UPPER", 2, 6): (13,),
    _auto_pad("SAME_LOWER", 2, 5): (11,),
    _auto_pad("SAME_LOWER", 1, 4): (17,),
    _auto_pad("VALID", 2, 6): (13,),
    _auto_pad("NOTSET", 1, 4): (13,),
    m_conv_depthwise: (7, 13),
    m_conv1d: (10, 18),
    m_conv1d_pool_gap: (13,),
    m_gemm_variants: (7, 13),
    m_gemm_no_c: (11, 21),
    m_gemm_transa: (13,),
    m_output_relabel: (11, 13),
    m_squeeze_no_axes: (11, 13),
    m_matmul_add: (7, 13),
    m_residual: (9, 14),
    m_add_channel_const: (7, 14),
    m_input_normalization: (13,),
    m_clip_relu6: (7, 11, 13),
    m_clip_open: (7, 12),
    m_relu_through_pool_flatten: (13,),
    m_maxpool_variants: (10, 12, 19),
    m_avgpool_variants: (10, 19, 21),
    m_pool_ceil_edge: (10, 19),
    m_reshape_flatten: (7, 14),
    m_reshape_shape_chain: (9, 13),
    m_batch1_reshape: (13,),
    m_weight_reshape: (7, 13),
    m_squeeze_gap: (11, 13),
    m_unsqueeze_conv1d: (11, 13, 21),
    m_transpose_relabel: (13,),
    m_bn_after_conv: (7, 9, 15),
    m_bn_forward: (14,),
    m_bn_input_and_dense: (9, 15),
    m_identity_dropout: (7, 12, 13),
    m_cast_float: (13,),
    m_unnamed: (13,),
    m_mlp_batch1: (13,),
}
