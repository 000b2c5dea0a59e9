"""``pad``: constant-zero padding of a feature map (ONNX Pad), incl. asymmetric pads.

Exact: the output format is the input's (0 is in every format). :func:`merge_pads` (a pass) moves
a Pad into the padding of the conv(s) reading it where that is the same computation; what
remains is a layer of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fpgagen.golden import windows as win
from fpgagen.ops.registry import ExactOp, register


def pad_zeros(x: np.ndarray, pads) -> np.ndarray:
    """The op's kernel (float and golden integer alike): zero padding ``(top, left, bottom,
    right)`` of ``[N, C, H, W]`` (0 is in every format)."""
    return win.pad(x, pads, 0)


@dataclass(frozen=True)
class PadParams:
    """Zero padding ``(top, left, bottom, right)`` of a feature map."""

    pads: tuple[int, int, int, int]


@register
class Pad(ExactOp):
    name = "pad"
    params_type = PadParams
    needs_params = True
    onnx_ops = ("Pad",)

    def import_onnx(self, im, node, index, t, attrs):
        im.need_layout(node, index, t, (2, 3), "Pad needs a feature map (C, W) or (C, H, W)")
        rank = len(t.shape) + 1
        if im.opset < 11:
            im.check_attrs(node, index, attrs, ("mode", "pads", "paddings", "value"))
            pads = attrs.get("pads", attrs.get("paddings"))
            if pads is None:
                raise im.err(node, index, "attribute 'pads' is missing")
            value = float(attrs.get("value", 0.0))
            axes = list(range(rank))
        else:
            im.check_attrs(node, index, attrs, ("mode",))
            pads = im.need_const(node, index, 1, "pads")
            cv = im.opt_const(node, index, 2, "constant_value")
            value = 0.0 if cv is None or np.size(cv) == 0 else float(np.asarray(cv).reshape(-1)[0])
            ax = im.opt_const(node, index, 3, "axes")
            axes = list(range(rank)) if ax is None else [int(a) % rank for a in np.asarray(ax).reshape(-1)]
        mode = attrs.get("mode", "constant")
        if mode != "constant":
            raise im.err(node, index, f"attribute 'mode' = {mode!r} is not supported; supported: 'constant' (zeros)")
        if value != 0:
            raise im.err(node, index, f"constant_value = {value:g} is not supported; supported: 0")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise im.err(node, index, f"pads has {len(pads)} values; expected {2 * len(axes)} (begin and end of "
                                      f"{len(axes)} axes)")
        begin, end = [0] * rank, [0] * rank
        for i, axis in enumerate(axes):
            begin[axis], end[axis] = pads[i], pads[len(axes) + i]
        if min(pads) < 0:
            raise im.err(node, index, f"pads = {pads} has negative values (a crop); supported: pads >= 0")
        if begin[0] or end[0] or begin[1] or end[1]:
            raise im.err(node, index, f"pads = {pads} pads the batch or channel axis; supported: spatial axes only")
        if rank == 3:  # (C, W) is (C, 1, W) in the IR
            top = bottom = 0
            left, right = begin[2], end[2]
        else:
            top, left, bottom, right = begin[2], begin[3], end[2], end[3]
        shape = tuple(d + b + e for d, b, e in zip(t.shape, begin[1:], end[1:]))
        if not any((top, left, bottom, right)):
            im.emit(node, index, "identity", [t], t.shape, pending=True)
            return
        im.emit(node, index, "pad", [t], shape, params=PadParams((top, left, bottom, right)))

    def kernel(self, x, params):
        return pad_zeros(x, params.pads)


def merge_pads(graph) -> bool:
    """Merge one ``pad`` into the conv(s) that read it (their zero padding grows by its pads) when
    every reader is a conv and the pad's output is not the model output; True when changed."""
    for node in graph.nodes:
        if node.op != "pad" or node.output == graph.output:
            continue
        readers = graph.consumers(node.output)
        if not readers or any(r.op != "conv" for r in readers):
            continue
        for r in readers:
            r.params = replace(r.params, pads=tuple(a + b for a, b in zip(r.params.pads, node.params.pads)))
            r.inputs = [node.inputs[0] if x == node.output else x for x in r.inputs]
            r.onnx_nodes = r.onnx_nodes + node.onnx_nodes
        graph.nodes.remove(node)
        graph.shapes.pop(node.output, None)
        return True
    return False
