"""``conv``: a 2-D convolution (a 1-D conv is ``(C, 1, W)``), grouped or depthwise.

Parameters :class:`ConvParams` (``kernel (kh, kw)``, ``stride (sh, sw)``, ``pads (top, left,
bottom, right)``, ``groups``); constants ``weight [Co, Ci/groups, kh, kw]``, ``bias [Co]``. Integer datapath: SPEC.md 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpgagen.golden import kernels as k
from fpgagen.golden import windows as win
from fpgagen.names import fmt_shape
from fpgagen.ops._mac import lower_mac, x_max
from fpgagen.ops._window import Window, window_out_shape, window_params
from fpgagen.ops.registry import Op, register


@dataclass(frozen=True)
class ConvParams(Window):
    """A conv's window and its channel groups (``groups`` divides Ci and Co; Ci: depthwise)."""

    groups: int = 1


def _conv(im, node, index, t, attrs) -> None:
    im.check_attrs(node, index, attrs, ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
    if node.input[0] in im.consts:
        raise im.err(node, index, "the data input is a constant but the weight is computed; expected "
                                  "the data first and a constant weight")
    w = im.need_const(node, index, 1, "the weight")
    b = im.opt_const(node, index, 2, "the bias")
    if w.ndim not in (3, 4):
        raise im.err(node, index, f"weight of shape {fmt_shape(w.shape)}: only 1-D and 2-D convolutions "
                                  f"(3-D or 4-D weights) are supported")
    im.need_layout(node, index, t, (w.ndim - 1,), f"a {w.ndim - 2}-D Conv expects [C, W]" if w.ndim == 3
                   else "a 2-D Conv expects [C, H, W]")
    groups = int(attrs.get("group", 1))
    ci, co = t.shape[0], w.shape[0]
    if groups < 1 or ci % groups or co % groups or w.shape[1] * groups != ci:
        raise im.err(node, index, f"group={groups} does not fit {ci} input channels and weight "
                                  f"{fmt_shape(w.shape)} (expected [Co, C/group, ...])")
    kernel = tuple(int(k) for k in w.shape[2:])
    if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != kernel:
        raise im.err(node, index, f"attribute 'kernel_shape' = {list(attrs['kernel_shape'])} does not match "
                                  f"the weight shape {fmt_shape(w.shape)}")
    p = window_params(im, node, index, t, attrs, kernel, pool=False)
    if b is not None and b.shape != (co,):
        raise im.err(node, index, f"bias of shape {fmt_shape(b.shape)}; expected [{co}]")
    w4 = w.reshape(co, w.shape[1], 1, kernel[0]) if w.ndim == 3 else w
    shape = window_out_shape(im, node, index, t, co, p)
    im.emit(node, index, "conv", [t], shape, params=ConvParams(p.kernel, p.stride, p.pads, groups),
            weight=w4.astype(np.float32), bias=None if b is None else b.astype(np.float32))


@register
class Conv(Op):
    name = "conv"
    params_type = ConvParams
    needs_params = True
    import_rules = {"Conv": _conv}

    def run_float(self, node, args, dtype):
        a = node.params
        return win.conv_matmul(args[0], node.weight, a.kernel, a.stride, a.pads, a.groups, dtype, node.bias)

    def lower(self, node, layer, ctx):
        lower_mac(node, layer, ctx)

    def run_int(self, layer, args, as_float):
        a = layer.params
        return k.conv_requant(args[0], layer.weight, layer.bias, a.kernel, a.stride, a.pads, a.groups,
                              layer.channel_shifts, layer.lo, layer.hi, x_max(layer), as_float, layer.leaky,
                              layer.rounding)

    def macs(self, layer, shapes):
        return int(layer.weight[0].size * math.prod(shapes[layer.output]))

    def fold_dims(self, layer, shapes):
        return shapes[layer.output][0], shapes[layer.inputs[0]][0] // layer.params.groups
