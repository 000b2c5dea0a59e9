"""Parameters of the stream plumbing: ``fpgagen_fork``, ``fpgagen_fifo`` and ``fpgagen_dwc`` (templates/verilog).

The fork and the FIFO move one element per cycle, so they never limit a pipeline's rate: their
analytic cycles per frame are 0 (the layers they connect set the rate). The width converter moves
min(EW_A, EW_B) elements per cycle; its cycles per frame are that bound. ``name`` (optional) is the stream or
layer the instance serves, for error messages.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from fpgagen.backends import hwc_order
from fpgagen.backends.rtl import RtlInstance, emits
from fpgagen.backends.rtl.resources import Memory, model_of
from fpgagen.errors import BackendError

FORK = "fpgagen_fork"
FIFO = "fpgagen_fifo"

#: tdata bits a stream may carry (the widest accumulator the library emits)
MAX_WIDTH = 64


def _for(name: str | None) -> str:
    return f" for {name!r}" if name else ""


def _check_width(module: str, width, name: str | None) -> int:
    if isinstance(width, bool) or not isinstance(width, Integral) or not 1 <= width <= MAX_WIDTH:
        raise BackendError(f"{module}{_for(name)}: tdata width must be an integer of 1..{MAX_WIDTH} bits, "
                           f"not {width!r}")
    return int(width)


def fork_instance(width: int, name: str | None = None) -> RtlInstance:
    """``fpgagen_fork``: one ``width``-bit stream to two outputs with independent back-pressure."""
    width = _check_width(FORK, width, name)
    return RtlInstance(FORK, {"WIDTH": width}, {}, 0,
                       f"fork of a {width}-bit stream into two, 1 element/cycle, latency 1")


def fifo_instance(width: int, depth: int, name: str | None = None) -> RtlInstance:
    """``fpgagen_fifo``: ``depth`` elements of ``width`` bits (+ tlast) in a RAM, plus one in the
    output register."""
    width = _check_width(FIFO, width, name)
    if isinstance(depth, bool) or not isinstance(depth, Integral) or depth < 1:
        raise BackendError(f"{FIFO}{_for(name)}: depth must be an integer >= 1 element, not {depth!r}")
    return RtlInstance(FIFO, {"WIDTH": width, "DEPTH": int(depth)}, {}, 0,
                       f"FIFO of {depth} x {width}-bit elements (+ tlast; RAM of at least 2), "
                       f"1 element/cycle, latency 2")


DWC = "fpgagen_dwc"


def dwc_instance(width: int, ew_a: int, ew_b: int, elements: int, name: str | None = None) -> RtlInstance:
    """``fpgagen_dwc``: a stream of ``ew_a`` elements per beat re-cut into ``ew_b`` per beat
    (element order kept); both must divide the frame's ``elements``. It moves min(ew_a, ew_b)
    elements per cycle, so a frame takes elements / min(ew_a, ew_b) cycles."""
    width = _check_width(DWC, width, name)
    vals = {"EW_A": ew_a, "EW_B": ew_b, "elements": elements}
    for key, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise BackendError(f"{DWC}{_for(name)}: {key} must be an integer >= 1, not {v!r}")
    ew_a, ew_b, elements = int(ew_a), int(ew_b), int(elements)
    for key, v in (("EW_A", ew_a), ("EW_B", ew_b)):
        if elements % v:
            raise BackendError(f"{DWC}{_for(name)}: {key} = {v} elements per beat does not divide the "
                               f"frame's {elements} elements")
    cycles = elements // min(ew_a, ew_b)
    return RtlInstance(DWC, {"WIDTH": width, "EW_A": ew_a, "EW_B": ew_b}, {}, cycles,
                       f"width converter {ew_a} -> {ew_b} elements of {width} bits per beat, "
                       f"buffer of {2 * ew_a + ew_b} elements, {cycles} cycles/frame, latency 1")


HWC_TO_CHW = "fpgagen_hwc_to_chw"


def hwc_to_chw_instance(width: int, shape, name: str | None = None) -> RtlInstance:
    """``fpgagen_hwc_to_chw``: a ``(C, H, W)`` map streamed in HWC order re-emitted in CHW order
    (the element order of an ONNX Flatten), two frame buffers, one element per cycle: a frame
    takes C*H*W cycles."""
    width = _check_width(HWC_TO_CHW, width, name)
    if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in shape):
        raise BackendError(f"{HWC_TO_CHW}{_for(name)}: the map must be (C, H, W) of integers >= 1, "
                           f"not {tuple(shape)!r}")
    c, h, w = (int(v) for v in shape)
    n = c * h * w
    return RtlInstance(HWC_TO_CHW, {"WIDTH": width, "C": c, "H": h, "W": w}, {}, n,
                       f"HWC to CHW reorder of a {c}x{h}x{w} map of {width}-bit elements, RAM of 2 x {n} "
                       f"words, {n} cycles/frame, latency {n + 2}")


@emits("flatten")
def _emit_flatten(prefix, q, layer, cfg, source, ew=(1, 1)):
    """A flatten that reorders (the dataflow plan aliases the others): HWC to CHW."""
    shape = q.shapes[layer.inputs[0]]
    return [hwc_to_chw_instance(q.fmts[layer.inputs[0]].word, shape, layer.name)], 1, 1


@model_of("fpgagen_fifo")
def fifo_memories(p: dict) -> list[Memory]:
    return [Memory("fifo", "buffer", max(p["DEPTH"], 2), p["WIDTH"] + 1)]


@model_of("fpgagen_hwc_to_chw")
def hwc_to_chw_memories(p: dict) -> list[Memory]:
    return [Memory("reorder", "buffer", 2 * p["C"] * p["H"] * p["W"], p["WIDTH"])]


@model_of("fpgagen_dwc", holds=lambda p: 2 * p["EW_A"] + p["EW_B"])
def dwc_memories(p: dict) -> list[Memory]:
    return []  # a register gearbox of 2*EW_A + EW_B elements


@model_of("fpgagen_fork")
def fork_memories(p: dict) -> list[Memory]:
    return []  # registers only


def flatten_reorders(q, layer) -> bool:
    """Whether the flatten ``layer`` needs hardware (``fpgagen_hwc_to_chw``, one element per beat):
    its map's HWC stream order differs from the CHW order of its output and something other than
    a dense layer (which permutes its weight columns instead) reads that output."""
    shape = q.shapes[layer.inputs[0]]
    if np.array_equal(hwc_order(shape), np.arange(math.prod(shape))):
        return False
    readers = [r for r in q.layers if layer.output in r.inputs]
    return layer.output == q.output or any(r.op != "dense" for r in readers)
