"""``maxpool``, ``avgpool`` and ``gap`` (global average pool).

``maxpool`` parameters: a :class:`~fpgagen.ops._window.Window` (``kernel``, ``stride``, ``pads``);
``avgpool``: :class:`AvgPoolParams` (the window, ``count_include_pad``, ``count_pads`` and the
lowering's reciprocals); ``gap``: :class:`GapParams` (the lowering's reciprocal). A max pool is
exact (its output format is its input's; padding never wins; a fused ReLU/Clip clamps the maxima). An average pool sums the window and multiplies by the
integer reciprocal of its count (a scalar, or ``[OH, OW]`` where counts vary at the border), then
requantizes with ``shift = recip_bits + Fx - Fy`` (SPEC.md 3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.fixed import signed_width
from fpgagen.golden import kernels as k
from fpgagen.golden import windows as win
from fpgagen.ops._window import Window, window_out_shape, window_params
from fpgagen.ops.registry import Op, register

#: bits of precision of an average pool's integer reciprocal, beyond the window count's bits
RECIP_PRECISION = 16


@dataclass(frozen=True)
class AvgPoolParams(Window):
    """An average pool's window; ``count_include_pad``: the divisor counts the zero padding
    (``count_pads``, where ceil_mode's extra end padding is not counted: the pads it does count).
    The lowering adds the integer reciprocals of the window counts: ``recip`` (an int, or an
    ``[OH, OW]`` array where the counts vary at the border) ``= round(2**recip_bits / count)``."""

    count_include_pad: bool = False
    count_pads: tuple[int, int, int, int] | None = None
    recip: object = None
    recip_bits: int | None = None


@dataclass(frozen=True)
class GapParams:
    """A global average pool's integer reciprocal ``recip = round(2**recip_bits / (H*W))`` (the lowering's)."""

    recip: int
    recip_bits: int


def recip_constants(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer reciprocals ``round(2**bits / count)`` (half away) and ``bits``."""
    counts = np.asarray(counts, np.int64)
    bits = RECIP_PRECISION + int(int(counts.max()) - 1).bit_length()
    recip = ((np.int64(1) << np.int64(bits + 1)) + counts) // (2 * counts)
    return recip, bits


def _ints(args):
    return [a.astype(np.int64, copy=False) for a in args]


def _pool_common(im, node, index, t, attrs, allowed, what) -> Window:
    im.check_attrs(node, index, attrs, allowed)
    im.need_layout(node, index, t, (2, 3), f"{what} expects [C, W] or [C, H, W]")
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))
    if not kernel:
        raise im.err(node, index, "attribute 'kernel_shape' is missing")
    return window_params(im, node, index, t, attrs, kernel, pool=True)


def _maxpool(im, node, index, t, attrs) -> None:
    if int(attrs.get("storage_order", 0)) != 0:
        raise im.err(node, index, f"attribute 'storage_order' = {attrs['storage_order']} is not supported; "
                                  f"supported: 0")
    p = _pool_common(im, node, index, t, attrs,
                     ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"),
                     "MaxPool")
    im.emit(node, index, "maxpool", [t], window_out_shape(im, node, index, t, t.shape[0], p), params=p)


def _avgpool(im, node, index, t, attrs) -> None:
    include = bool(attrs.get("count_include_pad", 0))
    p = _pool_common(im, node, index, t, attrs,
                     ("auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"),
                     "AveragePool")
    counted = None
    if include and attrs.get("ceil_mode", 0):
        # the divisor counts the pads but not the end padding ceil_mode adds (as onnxruntime does)
        plain = window_params(im, node, index, t, {**attrs, "ceil_mode": 0}, p.kernel[-len(t.shape) + 1:],
                              pool=True)
        if plain.pads != p.pads:
            counted = plain.pads
    im.emit(node, index, "avgpool", [t], window_out_shape(im, node, index, t, t.shape[0], p),
            params=AvgPoolParams(p.kernel, p.stride, p.pads, include, counted))


def _global_pool(im, node, index, t, attrs) -> None:
    im.check_attrs(node, index, attrs, ())
    im.need_layout(node, index, t, (2, 3), f"{node.op_type} expects [C, W] or [C, H, W]")
    shape = (t.shape[0],) + (1,) * (len(t.shape) - 1)
    if node.op_type == "GlobalAveragePool":
        im.emit(node, index, "gap", [t], shape)
    else:
        h, w = t.irs[1:]
        im.emit(node, index, "maxpool", [t], shape, params=Window((h, w)))


def _reduce_mean(im, node, index, t, attrs) -> None:
    """ReduceMean over the spatial axes (Keras GlobalAveragePooling2D as tf2onnx writes it, after
    its transpose optimizer: axes [2, 3] of NCHW, keepdims 0): a global average pool."""
    if im.opset < 18:
        im.check_attrs(node, index, attrs, ("axes", "keepdims"))
        axes = attrs.get("axes")
    else:
        im.check_attrs(node, index, attrs, ("keepdims", "noop_with_empty_axes"))
        c = im.opt_const(node, index, 1, "axes")
        axes = None if c is None or np.size(c) == 0 else [int(a) for a in np.ravel(c)]
    rank = len(t.shape) + 1
    spatial = list(range(2, rank))
    got = None if axes is None else sorted(int(a) % rank for a in axes)
    if rank not in (3, 4) or got != spatial:
        raise im.err(node, index, f"axes {'(all)' if axes is None else list(axes)} on [batch, "
                                  f"{', '.join(map(str, t.shape))}]; supported: the spatial axes of a feature map "
                                  f"(axes [2, 3] of [batch, C, H, W], [2] of [batch, C, W]): a global average pool")
    im.need_layout(node, index, t, (2, 3), "ReduceMean expects [C, W] or [C, H, W]")
    pooled = (t.shape[0],) + (1,) * (len(t.shape) - 1)
    if int(attrs.get("keepdims", 1)):
        im.emit(node, index, "gap", [t], pooled)
        return
    # keepdims 0: the pool, then its flatten to [C] under the node's output name
    inner = _node_with_output(node, f"{node.output[0]}/gap")
    im.alias(node, index, im.emit(inner, index, "gap", [t], pooled), (t.shape[0],))


def _node_with_output(node, output: str):
    """A copy of the ONNX ``node`` whose first output is ``output`` (one ONNX node, two IR layers)."""
    copy = type(node)()
    copy.CopyFrom(node)
    copy.output[0] = output
    return copy


@register
class MaxPool(Op):
    name = "maxpool"
    params_type = Window
    needs_params = True
    passes_format = True
    commutes = "monotone"
    import_rules = {"MaxPool": _maxpool, "GlobalMaxPool": _global_pool}

    def run_float(self, node, args, dtype):
        a = node.params
        return win.window_max(args[0], a.kernel, a.stride, a.pads, -np.inf)

    def lower(self, node, layer, ctx):
        if node.activation is not None:  # a fused ReLU/Clip clamps the maxima (passes/activations.py)
            if not node.activation.monotone or node.activation.leaky() is not None:
                raise QuantizationError(f"layer {node.name!r} (maxpool): a {node.activation.text} cannot clamp "
                                        f"a max pool (it changes the format)")
            layer.lo, layer.hi = node.activation.bounds(layer.out_fmt)

    def run_int(self, layer, args, as_float):
        a = layer.params
        return k.maxpool(args[0], a.kernel, a.stride, a.pads, layer.lo, layer.hi)


def _lower_average(layer, counts, x_fmt) -> tuple[object, int]:
    """Accumulator and shift of an averaging layer; its reciprocal(s) and their bits."""
    recip, bits = recip_constants(counts)
    layer.acc_frac = x_fmt.frac + bits
    n_max = int(np.max(counts))
    layer.acc_width = signed_width(n_max * x_fmt.min_int * int(np.max(recip)), n_max * x_fmt.max_int * int(np.max(recip)))
    layer.shift = layer.acc_frac - layer.out_fmt.frac
    return (int(recip) if recip.ndim == 0 else recip), bits


@register
class AvgPool(Op):
    name = "avgpool"
    params_type = AvgPoolParams
    needs_params = True
    import_rules = {"AveragePool": _avgpool}

    def run_float(self, node, args, dtype):
        a, x = node.params, args[0]
        total = win.windows(x, a.kernel, a.stride, a.pads, 0).sum(axis=(-1, -2))
        return total / win.avgpool_divisors(x.shape[2:], a)

    def lower(self, node, layer, ctx):
        counts = win.avgpool_divisors(ctx.shapes[node.inputs[0]][1:], node.params)
        if (counts == counts.flat[0]).all():
            counts = np.array(counts.flat[0])
        recip, bits = _lower_average(layer, counts, layer.in_fmts[0])
        layer.params = replace(node.params, recip=recip, recip_bits=bits)

    def run_int(self, layer, args, as_float):
        a, (x,) = layer.params, _ints(args)
        return k.avgpool(x, a.kernel, a.stride, a.pads, a.recip, layer.shift, layer.lo, layer.hi,
                         layer.leaky, layer.rounding)


@register
class GlobalAvgPool(Op):
    name = "gap"
    params_type = GapParams
    import_rules = {"GlobalAveragePool": _global_pool, "ReduceMean": _reduce_mean}

    def run_float(self, node, args, dtype):
        return args[0].mean(axis=(2, 3), keepdims=True)

    def lower(self, node, layer, ctx):
        _, h, w = ctx.shapes[node.inputs[0]]
        layer.params = GapParams(*_lower_average(layer, np.array(h * w), layer.in_fmts[0]))

    def run_int(self, layer, args, as_float):
        (x,) = _ints(args)
        return k.gap(x, layer.params.recip, layer.shift, layer.lo, layer.hi, layer.leaky, layer.rounding)
