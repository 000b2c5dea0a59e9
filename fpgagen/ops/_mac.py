"""What conv and dense share: quantizing weights and bias, the accumulator's proven width."""

from __future__ import annotations

import numpy as np

from fpgagen.fixed import quantize_with_stats, shift_round, signed_width
from fpgagen.ir.format import Format


def weight_key(layer: str) -> str:
    return f"{layer}.weight"


def bias_key(layer: str) -> str:
    return f"{layer}.bias"


def channel_mac_bounds(wq: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the lowest and highest accumulator over every input in ``x_fmt``'s range
    (exact: object arrays of Python ints)."""
    w = wq.reshape(wq.shape[0], -1).astype(object)
    xlo, xhi = x_fmt.min_int, x_fmt.max_int
    pos = np.where(wq.reshape(wq.shape[0], -1) > 0, w, 0).sum(axis=1)
    neg = np.where(wq.reshape(wq.shape[0], -1) < 0, w, 0).sum(axis=1)
    hi = pos * xhi + neg * xlo + bias.astype(object)
    lo = pos * xlo + neg * xhi + bias.astype(object)
    return lo, hi


def mac_bounds(wq: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[int, int]:
    """The lowest and highest accumulator over every input in ``x_fmt``'s range (exact, in Python ints)."""
    lo, hi = channel_mac_bounds(wq, bias, x_fmt)
    return int(min(lo)), int(max(hi))


def _quantize_weights(node, plan, stats):
    """The integer weights and, per output channel, their format's frac (a scalar per-tensor)."""
    fmts = plan.channel_weights.get(node.name)
    name = weight_key(node.name)
    if fmts is None:
        w_fmt = plan.weights[node.name]
        wq, stats.weights[node.name] = quantize_with_stats(node.weight, w_fmt, plan.rounding, name=name)
        return wq, w_fmt.frac
    rows, total = [], None
    for c, fmt in enumerate(fmts):
        q, st = quantize_with_stats(node.weight[c], fmt, plan.rounding, name=f"{name}[{c}]")
        rows.append(q)
        total = st if total is None else total + st
    stats.weights[node.name] = total
    return np.stack(rows), np.array([f.frac for f in fmts], np.int64)


def lower_mac(node, layer, ctx) -> None:
    """Weights and bias to integers (SPEC.md 3): ``B`` at ``Fa = Fx + Fw``, width, shift."""
    plan, stats = ctx.plan, ctx.stats
    x_fmt = layer.in_fmts[0]
    w_fmt = plan.weights[node.name]  # per-channel: the finest channel format
    wq, w_frac = _quantize_weights(node, plan, stats)
    acc_frac = x_fmt.frac + w_frac  # per-channel: Fa_c, a vector
    co = node.weight.shape[0]
    if node.bias is not None:
        b_fmt = plan.biases[node.name]
        b_fmts = plan.channel_biases.get(node.name)  # the model's, per channel (imported quantization)
        if b_fmts is None:
            bq, stats.biases[node.name] = quantize_with_stats(node.bias, b_fmt, plan.rounding, name=bias_key(node.name))
            b_frac = np.full(co, b_fmt.frac, np.int64)
        else:
            parts = [quantize_with_stats(node.bias[c:c + 1], f, plan.rounding, name=f"{bias_key(node.name)}[{c}]")
                     for c, f in enumerate(b_fmts)]
            bq = np.concatenate([q for q, _ in parts])
            stats.biases[node.name] = sum((st for _, st in parts[1:]), parts[0][1])
            b_frac = np.array([f.frac for f in b_fmts], np.int64)
        # SPEC 3: B is b re-expressed at the accumulator frac (left shift, or offline rounding);
        # per channel: B_c at Fa_c
        if np.ndim(acc_frac) == 0 and b_fmts is None:
            bias = shift_round(bq, b_fmt.frac - acc_frac, plan.rounding)
        else:
            fa = np.broadcast_to(acc_frac, (co,))
            bias = np.array([shift_round(bq[c:c + 1], int(b_frac[c]) - int(fa[c]), plan.rounding)[0]
                             for c in range(co)], np.int64)
        layer.b_fmt, layer.bias_q = b_fmt, bq
    else:
        bias = np.zeros(co, np.int64)
    layer.weight, layer.w_fmt, layer.bias = wq, w_fmt, bias
    layer.acc_frac = x_fmt.frac + w_fmt.frac
    layer.shift = layer.acc_frac - layer.out_fmt.frac
    if np.ndim(acc_frac):
        layer.w_fmts = tuple(plan.channel_weights[node.name])
        layer.shifts = acc_frac - layer.out_fmt.frac
    set_mac_widths(layer)


def set_mac_widths(layer) -> None:
    """``acc_width`` (the widest channel's accumulator over every input in the input format's range)
    and, per-channel, ``align_width`` (the widest pre-aligned accumulator ``acc_c << align[c]``),
    from the layer's integer weights and bias."""
    bias = np.zeros(len(layer.weight), np.int64) if layer.bias is None else np.asarray(layer.bias, np.int64)
    lo, hi = channel_mac_bounds(layer.weight, bias, layer.in_fmts[0])
    layer.acc_width = signed_width(int(min(lo)), int(max(hi)))
    if layer.shifts is not None:
        align = [int(d) for d in layer.align]
        layer.align_width = signed_width(min(int(v) << d for v, d in zip(lo, align)),
                                         max(int(v) << d for v, d in zip(hi, align)))


def x_max(layer) -> int:
    """The largest |x| the layer's input format holds."""
    fmt = layer.in_fmts[0]
    return max(abs(fmt.min_int), abs(fmt.max_int))
