"""Parameters of the exact layout modules ``fpgagen_resize`` and ``fpgagen_pad`` (templates/verilog).

Both take a (C, H, W) map in HWC order and give a larger one in HWC order in the input format,
``ew`` elements per beat in and out (EW consecutive channels of one pixel, EW dividing C; they
move words of EW elements): a frame takes its number of output elements / EW cycles.

- ``fpgagen_resize``: nearest upsampling by the integer factors ``params.factors = (fh, fw)``
  through a row buffer of W*C/EW words of EW elements;
- ``fpgagen_pad``: zero padding ``params.pads = (top, left, bottom, right)``, no buffer.
"""

from __future__ import annotations

from numbers import Integral

from fpgagen.backends.rtl.widths import ew_rule, lane_rule
from fpgagen.backends.rtl import RtlInstance, check_ew, check_op, emits, ew_params, ew_text, simple, where
from fpgagen.backends.rtl.resources import Memory, model_of, out_fifo
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.pad import PadParams
from fpgagen.ops.resize import ResizeParams


def _map(q: QGraph, layer: QLayer, module: str, op: str, kind, what: str, values, least: int, ew):
    """C, H, W of the one-input ``op`` layer, its checked integer ``values`` (the ``what`` of its
    ``kind`` params, each >= ``least``) and ``ew`` checked to divide C; the output format must be
    the input format."""
    check_op(layer, module, op)
    if not isinstance(layer.params, kind):
        raise BackendError(f"{where(layer)}: the integer IR has no {kind.__name__}, got {layer.params!r}")
    vals = values(layer.params)
    if any(isinstance(v, bool) or not isinstance(v, Integral) or v < least for v in vals):
        raise BackendError(f"{where(layer)}: {what} must be integers >= {least}, got {tuple(vals)}")
    if len(layer.inputs) != 1:
        raise BackendError(f"{where(layer)}: {module} takes 1 input, the layer has {len(layer.inputs)}")
    shape = q.shapes.get(layer.inputs[0])
    if shape is None or len(shape) != 3:
        raise BackendError(f"{where(layer)}: {module} takes a (C, H, W) feature map, the input "
                           f"{layer.inputs[0]!r} has shape {None if shape is None else tuple(shape)}")
    if layer.out_fmt != layer.in_fmts[0]:
        raise BackendError(f"{where(layer)}: {op} is exact, the output format {layer.out_fmt} must be the input "
                           f"format {layer.in_fmts[0]}")
    ew = check_ew(layer, module, ew, shape, f"the input {layer.inputs[0]!r}")
    return tuple(int(v) for v in shape), tuple(int(v) for v in vals), ew


def _check_out(q: QGraph, layer: QLayer, want: tuple, why: str) -> None:
    got = q.shapes.get(layer.output)
    if got is not None and tuple(int(v) for v in got) != want:
        raise BackendError(f"{where(layer)}: the output {layer.output!r} has shape {tuple(got)}, but {why} gives {want}")


def resize_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_resize`` for the nearest ``resize`` layer ``layer``, ``ew`` elements per beat."""
    module = "fpgagen_resize"
    (c, h, w), factors, ew = _map(q, layer, module, "resize", ResizeParams, "factors (fh, fw)",
                                  lambda p: tuple(p.factors), 1, ew)
    if len(factors) != 2:
        raise BackendError(f"{where(layer)}: factors must be (fh, fw), got {factors}")
    fh, fw = factors
    _check_out(q, layer, (c, h * fh, w * fw), f"upsampling {(c, h, w)} by {fh}x{fw}")
    fmt = layer.out_fmt
    cycles = c * h * fh * w * fw // ew
    words = max(w * c // ew, 2)
    params = {"WIDTH": fmt.word, "C": c, **ew_params(ew), "H": h, "W": w, "FH": fh, "FW": fw}
    describe = (f"nearest resize {c}x{h}x{w} -> {c}x{h * fh}x{w * fw} (factors {fh}x{fw}){ew_text(ew)}, {fmt}, "
                f"row buffer {words} x {ew * fmt.word} bits, {cycles} cycles/frame")
    return RtlInstance(module, params, {}, cycles, describe)


def pad_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_pad`` for the zero ``pad`` layer ``layer``, ``ew`` elements per beat."""
    module = "fpgagen_pad"
    (c, h, w), pads, ew = _map(q, layer, module, "pad", PadParams, "pads (top, left, bottom, right)",
                               lambda p: tuple(p.pads), 0, ew)
    if len(pads) != 4:
        raise BackendError(f"{where(layer)}: pads must be (top, left, bottom, right), got {pads}")
    t, l, b, r = pads
    oh, ow = h + t + b, w + l + r
    _check_out(q, layer, (c, oh, ow), f"padding {(c, h, w)} by {pads} (top, left, bottom, right)")
    fmt = layer.out_fmt
    cycles = c * oh * ow // ew
    params = {"WIDTH": fmt.word, "C": c, **ew_params(ew), "H": h, "W": w, "PAD_T": t, "PAD_L": l, "PAD_B": b,
              "PAD_R": r}
    describe = (f"zero pad {c}x{h}x{w} -> {c}x{oh}x{ow} (pads {t}/{l}/{b}/{r}){ew_text(ew)}, {fmt}, "
                f"{cycles} cycles/frame")
    return RtlInstance(module, params, {}, cycles, describe)


emits("resize")(simple(resize_instance))
emits("pad")(simple(pad_instance))
ew_rule("resize", "pad")(lane_rule)


@model_of("fpgagen_resize")
def resize_memories(p: dict) -> list[Memory]:
    """The ring of one input row (2 words for a 1-word row; words of EW elements) and the output FIFO."""
    ew = p.get("EW", 1)
    return [Memory("row", "buffer", max(p["W"] * p["C"] // ew, 2), ew * p["WIDTH"]), out_fifo(ew * p["WIDTH"])]


@model_of("fpgagen_pad")
def pad_memories(p: dict) -> list[Memory]:
    return [out_fifo(p.get("EW", 1) * p["WIDTH"])]
