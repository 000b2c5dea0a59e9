"""``dense``: a fully-connected layer ``y = W x + b`` on a vector (ONNX Gemm / MatMul).

Constants ``weight [Out, In]``, ``bias [Out]``. Integer datapath: SPEC.md 3.
"""

from __future__ import annotations

import numpy as np

from fpgagen.golden import kernels as k
from fpgagen.names import fmt_shape
from fpgagen.ops._mac import lower_mac, x_max
from fpgagen.ops.registry import Op, register


def _weight_2d(im, node, index, pos, what) -> np.ndarray:
    w = im.need_const(node, index, pos, what)
    if w.ndim != 2:
        raise im.err(node, index, f"{what} has shape {fmt_shape(w.shape)}; expected a 2-D matrix")
    return w.astype(np.float64)


def _gemm(im, node, index, t, attrs) -> None:
    im.check_attrs(node, index, attrs, ("alpha", "beta", "transA", "transB"))
    if node.input[0] in im.consts:
        raise im.err(node, index, "input A is a constant and B is computed; supported: A computed "
                                  "(the batch), B a constant weight")
    trans_a, trans_b = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    if trans_a != t.batch_axis:
        where = "first" if t.batch_axis == 0 else "second"
        raise im.err(node, index, f"attribute 'transA' = {trans_a} with input A having the batch on its {where} "
                                  f"axis would mix samples; supported: transA=0 on [batch, K], transA=1 on [K, batch]")
    im.need_layout(node, index, t, (1,), "Gemm expects a vector per sample ([batch, K])", allow_order=True)
    b = _weight_2d(im, node, index, 1, "input B")
    b = b.T if trans_b else b  # [K, M]
    k = t.shape[0]
    if b.shape[0] != k:
        raise im.err(node, index, f"input B{'^T' if trans_b else ''} has {b.shape[0]} rows; expected K = {k}")
    m = b.shape[1]
    weight = float(attrs.get("alpha", 1.0)) * b.T
    c = im.opt_const(node, index, 2, "input C (bias)")
    bias = None
    if c is not None:
        c = np.asarray(c, np.float64)
        if c.ndim == 2:
            if c.shape[0] != 1:
                raise im.err(node, index, f"input C of shape {fmt_shape(c.shape)} varies along the batch axis; "
                                          f"supported: C of shape [M], [1, M], [1, 1] or a scalar")
            c = c[0]
        try:
            bias = float(attrs.get("beta", 1.0)) * np.broadcast_to(c, (m,))
        except ValueError as exc:
            raise im.err(node, index, f"input C of shape {fmt_shape(c.shape)} does not broadcast to [{m}]") from exc
        bias = bias.astype(np.float32)
    im.emit(node, index, "dense", [t], (m,), weight=im.vector_weight(t, weight).astype(np.float32), bias=bias)


def _matmul(im, node, index, t, attrs) -> None:
    im.check_attrs(node, index, attrs, ())
    if node.input[0] in im.consts:
        raise im.err(node, index, "input A is a constant and B is computed; supported: A computed, B a constant")
    im.need_layout(node, index, t, (1,), "MatMul expects a vector per sample ([batch, K]) times a constant [K, M]",
                   allow_order=True)
    b = _weight_2d(im, node, index, 1, "input B")
    if b.shape[0] != t.shape[0]:
        raise im.err(node, index, f"input B has {b.shape[0]} rows; expected K = {t.shape[0]}")
    im.emit(node, index, "dense", [t], (b.shape[1],), weight=im.vector_weight(t, b.T).astype(np.float32))


@register
class Dense(Op):
    name = "dense"
    import_rules = {"Gemm": _gemm, "MatMul": _matmul}

    def run_float(self, node, args, dtype):
        y = args[0].astype(dtype, copy=False) @ node.weight.astype(dtype, copy=False).T
        if node.bias is not None:
            y = y + node.bias.astype(dtype)
        return y

    def lower(self, node, layer, ctx):
        lower_mac(node, layer, ctx)

    def run_int(self, layer, args, as_float):
        return k.dense_requant(args[0], layer.weight, layer.bias, layer.channel_shifts, layer.lo, layer.hi, x_max(layer),
                               as_float, layer.leaky, layer.rounding)

    def macs(self, layer, shapes):
        return int(layer.weight.size)

    def fold_dims(self, layer, shapes):
        return shapes[layer.output][0], shapes[layer.inputs[0]][0]
