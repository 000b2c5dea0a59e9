"""``add``: a residual add of two tensors of the same shape.

Both inputs are aligned to the larger frac by left shifts (:class:`AddParams` ``align``, set by
the lowering), added exactly in
``acc_width`` bits, then requantized with ``shift = frac - Fy`` (SPEC.md 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgagen.fixed import signed_width
from fpgagen.golden import kernels as k
from fpgagen.ops.registry import Op, register


@dataclass(frozen=True)
class AddParams:
    """The left shift of each input that aligns it to the larger frac."""

    align: tuple[int, int]


@register
class Add(Op):
    name = "add"
    params_type = AddParams

    def run_float(self, node, args, dtype):
        return args[0] + args[1]

    def lower(self, node, layer, ctx):
        in_fmts = layer.in_fmts
        frac = max(f.frac for f in in_fmts)
        layer.params = AddParams(tuple(frac - f.frac for f in in_fmts))
        lo = sum(f.min_int << s for f, s in zip(in_fmts, layer.params.align))
        hi = sum(f.max_int << s for f, s in zip(in_fmts, layer.params.align))
        layer.acc_frac, layer.acc_width = frac, signed_width(lo, hi)
        layer.shift = frac - layer.out_fmt.frac

    def run_int(self, layer, args, as_float):
        a, b = (x.astype(np.int64, copy=False) for x in args)
        return k.add(a, b, layer.params.align, layer.shift, layer.lo, layer.hi, layer.leaky,
                     layer.rounding)
