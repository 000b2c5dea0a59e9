"""``conv``: a 2-D convolution (a 1-D conv is ``(C, 1, W)``), grouped or depthwise.

Attributes ``kernel (kh, kw)``, ``stride (sh, sw)``, ``pads (top, left, bottom, right)``,
``groups``; constants ``weight [Co, Ci/groups, kh, kw]``, ``bias [Co]``. Integer datapath: SPEC.md 3.
"""

from __future__ import annotations

import math

from fpgagen.golden import kernels as k
from fpgagen.golden import windows as win
from fpgagen.ops._mac import lower_mac, x_max
from fpgagen.ops.registry import Op, register


@register
class Conv(Op):
    name = "conv"

    def run_float(self, node, args, dtype):
        a = node.attrs
        return win.conv_matmul(args[0], node.weight, a["kernel"], a["stride"], a["pads"], a["groups"], dtype, node.bias)

    def lower(self, node, layer, ctx):
        lower_mac(node, layer, ctx)

    def run_int(self, layer, args, as_float):
        a = layer.attrs
        return k.conv_requant(args[0], layer.weight, layer.bias, a["kernel"], a["stride"], a["pads"], a["groups"],
                              layer.shift, layer.lo, layer.hi, x_max(layer), as_float, layer.leaky)

    def macs(self, layer, shapes):
        return int(layer.weight[0].size * math.prod(shapes[layer.output]))
