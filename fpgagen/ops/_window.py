"""What conv and pooling share at import: an ONNX window's kernel, stride and pads in IR form.

``im`` is the ONNX importer (:mod:`fpgagen.frontend.onnx`): its ``err`` names the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fpgagen.golden.windows import conv_output_hw
from fpgagen.names import fmt_shape


@dataclass(frozen=True)
class Window:
    """A sliding window in IR (2-D) form: ``kernel (kh, kw)``, ``stride (sh, sw)``,
    ``pads (top, left, bottom, right)`` (a 1-D window is ``(1, k)`` over ``(C, 1, W)``)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)


def window_params(im, node, index, t, attrs: dict, kernel: tuple[int, ...],
                  pool: bool) -> Window:
    """kernel/stride/pads in IR (2-D) form from ONNX attributes, for a (C, W) or (C, H, W) input."""
    nd = len(t.shape) - 1
    if len(kernel) != nd:
        raise im.err(node, index, f"{len(kernel)}-D kernel on an input of per-sample shape {fmt_shape(t.shape)}")
    spatial = t.shape[1:]
    strides = tuple(attrs.get("strides", (1,) * nd))
    dil = tuple(attrs.get("dilations", (1,) * nd))
    if any(d != 1 for d in dil):
        raise im.err(node, index, f"attribute 'dilations' = {list(dil)} is not supported; supported: dilations all 1")
    if len(strides) != nd or any(s < 1 for s in strides):
        raise im.err(node, index, f"attribute 'strides' = {list(strides)} is not valid for a {nd}-D window")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = tuple(attrs.get("pads", (0,) * (2 * nd)))
        if len(pads) != 2 * nd or any(p < 0 for p in pads):
            raise im.err(node, index, f"attribute 'pads' = {list(pads)} is not valid for a {nd}-D window")
        begin, end = list(pads[:nd]), list(pads[nd:])
    elif auto_pad == "VALID":
        begin, end = [0] * nd, [0] * nd
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s in zip(spatial, kernel, strides):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
    else:
        raise im.err(node, index, f"attribute 'auto_pad' = {auto_pad!r} is not supported; supported: "
                                  f"NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    if pool and attrs.get("ceil_mode", 0):
        for i, (size, k, s) in enumerate(zip(spatial, kernel, strides)):
            span = size + begin[i] + end[i] - k
            out = -(-span // s) + 1
            if (out - 1) * s >= size + begin[i]:  # the last window would start in the end padding
                out -= 1  # as onnxruntime (and PyTorch) do; onnx's shape inference keeps it, so
                im.inferred.clear()  # stop cross-checking shapes against it from here on
            end[i] += max((out - 1) * s + k - (size + begin[i] + end[i]), 0)
    if nd == 1:
        return Window((1, int(kernel[0])), (1, int(strides[0])), (0, int(begin[0]), 0, int(end[0])))
    return Window(tuple(int(k) for k in kernel), tuple(int(s) for s in strides),
                  (int(begin[0]), int(begin[1]), int(end[0]), int(end[1])))


def window_out_shape(im, node, index, t, channels: int, p: Window) -> tuple[int, ...]:
    h, w = t.irs[1:]
    oh, ow = conv_output_hw((h, w), p.kernel, p.stride, p.pads)
    if oh < 1 or ow < 1:
        raise im.err(node, index, f"the window {p.kernel} does not fit the input {fmt_shape(t.shape)} "
                                  f"with pads {p.pads}")
    return (channels, ow) if len(t.shape) == 2 else (channels, oh, ow)
