"""Parameters of ``fpgagen_add`` (templates/verilog/fpgagen_add.v): the residual add.

The integer IR gives each input's left shift ``params.align[i]`` (to the larger frac), the
requantizing ``shift`` and the clamp ``[lo, hi]``; the two inputs may have different formats
(word length, signedness). The module takes one beat of ``ew`` elements of each input and emits
``ew`` sums per beat (EW dividing the channels of a map, or the elements of a vector; one
requantizer per lane), so a frame takes its number of elements / EW cycles.
"""

from __future__ import annotations

import math

from fpgagen.backends.rtl.widths import ew_rule, lane_rule
from fpgagen.backends.rtl import (RtlInstance, check_ew, check_op, emits, ew_params, ew_text, leaky_text, requant_params,
                                  simple, where)
from fpgagen.backends.rtl.resources import Memory, model_of, out_fifo
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer

MODULE = "fpgagen_add"

#: the widest aligned sum the module (and fpgagen_requant) takes
MAX_SUM_WIDTH = 64


def add_sum_width(in_words, aligns) -> int:
    """Bits of the exact aligned sum as fpgagen_add computes it (each input as signed, +1 carry)."""
    return max(w + 1 + a for w, a in zip(in_words, aligns)) + 1


def add_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_add`` for the two-input ``add`` layer ``layer``, ``ew`` elements per beat on both
    inputs and the output."""
    check_op(layer, MODULE, "add")
    if len(layer.inputs) != 2 or len(layer.in_fmts) != 2:
        raise BackendError(f"{where(layer)}: fpgagen_add adds exactly 2 inputs, the layer has {len(layer.inputs)}")
    align = layer.params.align if layer.params is not None else None
    if align is None or len(align) != 2:
        raise BackendError(f"{where(layer)}: the integer IR has no alignment shift per input (align {align!r})")
    if any(int(a) != a or a < 0 for a in align):
        raise BackendError(f"{where(layer)}: input alignments must be left shifts >= 0, got {list(align)}")
    rq = requant_params(layer)
    shapes = [q.shapes.get(t) for t in layer.inputs]
    out_shape = q.shapes.get(layer.output)
    if out_shape is None:
        raise BackendError(f"{where(layer)}: the graph has no shape for its output {layer.output!r}")
    length = math.prod(out_shape)
    for t, shape in zip(layer.inputs, shapes):
        if shape is not None and tuple(shape) != tuple(out_shape):
            raise BackendError(f"{where(layer)}: input {t!r} has shape {tuple(shape)}, the output {tuple(out_shape)}; "
                               f"fpgagen_add adds streams of the same shape (no broadcasting)")
    ew = check_ew(layer, MODULE, ew, out_shape, f"the output {layer.output!r}")
    f0, f1 = layer.in_fmts
    y_fmt = layer.out_fmt
    sum_width = add_sum_width((f0.word, f1.word), align)
    if sum_width > MAX_SUM_WIDTH:
        raise BackendError(f"{where(layer)}: the aligned sum needs {sum_width} bits (inputs {f0} << {align[0]}, "
                           f"{f1} << {align[1]}), more than the {MAX_SUM_WIDTH} fpgagen_add takes")
    params = {
        "IN0_WIDTH": f0.word,
        "IN0_SIGNED": int(f0.signed),
        "IN1_WIDTH": f1.word,
        "IN1_SIGNED": int(f1.signed),
        "OUT_WIDTH": y_fmt.word,
        "LENGTH": int(length),
        **ew_params(ew),
        "ALIGN0": int(align[0]),
        "ALIGN1": int(align[1]),
        **rq,
    }
    cycles = int(length) // ew
    describe = (f"add of {length} elements{ew_text(ew)}, in {f0} << {align[0]} + {f1} << {align[1]}, out {y_fmt}, "
                f"shift {layer.shift}, clamp [{layer.lo}, {layer.hi}]{leaky_text(layer)}, {cycles} cycles/frame")
    return RtlInstance(MODULE, params, {}, cycles, describe)


emits("add")(simple(add_instance))
ew_rule("add")(lane_rule)


@model_of("fpgagen_add")
def add_memories(p: dict) -> list[Memory]:
    return [out_fifo(p.get("EW", 1) * p["OUT_WIDTH"])]
