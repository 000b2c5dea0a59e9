"""``concat``: a channel concat of two or more tensors (ONNX Concat along axis 1).

Feature maps of the same height and width (or vectors) are joined along their channels in input
order. Each input is requantized to the output format with its own shift ``s_i = Fx_i - Fy``
(SPEC.md 3), clamped to the output's ``[lo, hi]`` (narrowed by a fused ReLU/Clip, or on two paths
for a fused LeakyRelu). The same tensor may appear more than once; the model input may be one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgagen.golden import kernels as k
from fpgagen.names import fmt_shape, quoted
from fpgagen.ops.registry import Op, register


@dataclass(frozen=True)
class ConcatParams:
    """Channel concat: input ``i`` (``channels[i]`` channels) is requantized by ``shifts[i]``."""

    shifts: tuple[int, ...]
    channels: tuple[int, ...]


@register
class Concat(Op):
    name = "concat"
    params_type = ConcatParams
    onnx_ops = ("Concat",)

    def import_onnx(self, im, node, index, t, attrs):
        im.check_attrs(node, index, attrs, ("axis",))
        if "axis" not in attrs:
            raise im.err(node, index, "attribute 'axis' is missing (it is required)")
        names = [n for n in node.input if n]
        consts = [n for n in names if n in im.consts]
        if consts:
            raise im.err(node, index, f"input {quoted(consts[0])} is a constant; supported: Concat of computed tensors "
                                      f"along channels")
        ins = [im.tensors[n] for n in names]
        rank = len(t.shape) + 1
        axis = int(attrs["axis"])
        if not -rank <= axis < rank:
            raise im.err(node, index, f"attribute 'axis' = {axis} is out of range for rank {rank}")
        if axis % rank != 1:
            raise im.err(node, index, f"attribute 'axis' = {axis} (of rank {rank}) is not supported; supported: the "
                                      f"channel axis (1, or {1 - rank})")
        for x in ins:
            im.need_layout(node, index, x, (1, 2, 3), "Concat needs every input in an IR layout")
            if x.shape[1:] != t.shape[1:] or len(x.shape) != len(t.shape):
                raise im.err(node, index, f"inputs of per-sample shapes {fmt_shape(t.shape)} and {fmt_shape(x.shape)} differ "
                                          f"in more than the channel axis")
        if len(ins) == 1:
            im.emit(node, index, "identity", ins, t.shape, pending=True)
            return
        shape = (sum(x.shape[0] for x in ins), *t.shape[1:])
        im.emit(node, index, "concat", ins, shape)

    def run_float(self, node, args, dtype):
        return np.concatenate(args, axis=1)

    def lower(self, node, layer, ctx):
        layer.params = ConcatParams(tuple(f.frac - layer.out_fmt.frac for f in layer.in_fmts),
                                    tuple(int(ctx.shapes[t][0]) for t in node.inputs))

    def run_int(self, layer, args, as_float):
        return k.concat(args, layer.params.shifts, layer.lo, layer.hi, layer.leaky, layer.rounding)
