"""What conv and dense share: quantizing weights and bias, the accumulator's proven width."""

from __future__ import annotations

import numpy as np

from fpgagen.fixed import quantize_with_stats, shift_round, signed_width
from fpgagen.ir.format import Format


def weight_key(layer: str) -> str:
    return f"{layer}.weight"


def bias_key(layer: str) -> str:
    return f"{layer}.bias"


def mac_bounds(wq: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[int, int]:
    """The lowest and highest accumulator over every input in ``x_fmt``'s range (exact, in Python ints)."""
    w = wq.reshape(wq.shape[0], -1).astype(object)
    xlo, xhi = x_fmt.min_int, x_fmt.max_int
    pos = np.where(wq.reshape(wq.shape[0], -1) > 0, w, 0).sum(axis=1)
    neg = np.where(wq.reshape(wq.shape[0], -1) < 0, w, 0).sum(axis=1)
    hi = pos * xhi + neg * xlo + bias.astype(object)
    lo = pos * xlo + neg * xhi + bias.astype(object)
    return int(min(lo)), int(max(hi))


def lower_mac(node, layer, ctx) -> None:
    """Weights and bias to integers (SPEC.md 3): ``B`` at ``Fa = Fx + Fw``, width, shift."""
    plan, stats = ctx.plan, ctx.stats
    x_fmt = layer.in_fmts[0]
    w_fmt = plan.weights[node.name]
    wq, stats.weights[node.name] = quantize_with_stats(node.weight, w_fmt, plan.rounding, name=weight_key(node.name))
    acc_frac = x_fmt.frac + w_fmt.frac
    co = node.weight.shape[0]
    if node.bias is not None:
        b_fmt = plan.biases[node.name]
        bq, stats.biases[node.name] = quantize_with_stats(node.bias, b_fmt, plan.rounding, name=bias_key(node.name))
        # SPEC 3: B is b re-expressed at the accumulator frac (left shift, or offline rounding)
        bias = shift_round(bq, b_fmt.frac - acc_frac, plan.rounding)
        layer.b_fmt, layer.bias_q = b_fmt, bq
    else:
        bias = np.zeros(co, np.int64)
    layer.weight, layer.w_fmt, layer.bias = wq, w_fmt, bias
    lo, hi = mac_bounds(wq, bias, x_fmt)
    layer.acc_frac = acc_frac
    layer.acc_width = signed_width(lo, hi)
    layer.shift = acc_frac - layer.out_fmt.frac


def x_max(layer) -> int:
    """The largest |x| the layer's input format holds."""
    fmt = layer.in_fmts[0]
    return max(abs(fmt.min_int), abs(fmt.max_int))
