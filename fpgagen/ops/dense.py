"""``dense``: a fully-connected layer ``y = W x + b`` on a vector (ONNX Gemm / MatMul).

Constants ``weight [Out, In]``, ``bias [Out]``. Integer datapath: SPEC.md 3.
"""

from __future__ import annotations

from fpgagen.golden import kernels as k
from fpgagen.ops._mac import lower_mac, x_max
from fpgagen.ops.registry import Op, register


@register
class Dense(Op):
    name = "dense"

    def run_float(self, node, args, dtype):
        y = args[0].astype(dtype, copy=False) @ node.weight.astype(dtype, copy=False).T
        if node.bias is not None:
            y = y + node.bias.astype(dtype)
        return y

    def lower(self, node, layer, ctx):
        lower_mac(node, layer, ctx)

    def run_int(self, layer, args, as_float):
        return k.dense_requant(args[0], layer.weight, layer.bias, layer.shift, layer.lo, layer.hi, x_max(layer),
                               as_float, layer.leaky)

    def macs(self, layer, shapes):
        return int(layer.weight.size)

    def fold_dims(self, layer, shapes):
        return shapes[layer.output][0], shapes[layer.inputs[0]][0]
