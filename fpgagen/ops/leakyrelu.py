"""``leakyrelu``: a standalone LeakyRelu (ONNX LeakyRelu whose input no layer can take it).

ONNX ``LeakyRelu(alpha)`` becomes an activation (:class:`~fpgagen.ops.activation.LeakyRelu`)
that the activations pass fuses into the conv/dense/add/pool/concat computing its input; where
there is none (the model input, a max pool's output, a tensor other layers read too) it is this
layer: each integer ``x`` (at Fx) is requantized to Fy on two paths (SPEC.md 3): ``x >= 0``:
``requant(x, s)``; ``x < 0``: ``requant(x * A, s + Fal)``, ``s = Fx - Fy``. Its ``activation`` is
the LeakyRelu (a ReLU/Clip after it composes into it: then it is a requantizing clamp).
"""

from __future__ import annotations

import numpy as np

from fpgagen.golden import kernels as k
from fpgagen.ops.activation import LeakyRelu, ReLU
from fpgagen.ops.registry import Op, register


@register
class LeakyReluOp(Op):
    name = "leakyrelu"
    onnx_ops = ("LeakyRelu",)

    def import_onnx(self, im, node, index, t, attrs):
        im.check_attrs(node, index, attrs, ("alpha",))
        alpha = float(np.float32(attrs.get("alpha", 0.01)))  # a float32 attribute, also its default
        act = ReLU() if alpha == 0 else LeakyRelu(alpha)  # SPEC.md 3: alpha = 0 is a ReLU
        im.emit(node, index, "act", [t], t.shape, activation=act, pending=True)

    def run_float(self, node, args, dtype):
        return args[0]  # the layer's activation (its LeakyRelu, composed with any fused after it) is applied after

    def lower(self, node, layer, ctx):
        layer.shift = layer.in_fmts[0].frac - layer.out_fmt.frac

    def run_int(self, layer, args, as_float):
        return k.leakyrelu(args[0], layer.shift, layer.lo, layer.hi, layer.leaky, layer.rounding)
