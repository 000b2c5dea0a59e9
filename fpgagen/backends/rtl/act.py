"""Parameters of ``fpgagen_act`` (templates/verilog/fpgagen_act.v): elementwise requantization.

The standalone LeakyRelu (op ``leakyrelu``) requantizes every element of its input, the input
integer itself being the accumulator: ``kernels.leakyrelu(x, shift, lo, hi, leaky)`` with
``shift = Fx - Fy``. ``ew`` elements per beat in and out (EW dividing the channels of a map, or
the elements of a vector; one requantizer per lane): a frame takes its number of elements / EW
cycles.
"""

from __future__ import annotations

import math

from fpgagen.backends.rtl.widths import ew_rule, lane_rule
from fpgagen.backends.rtl import (RtlInstance, check_ew, check_op, emits, ew_params, ew_text, leaky_text, requant_params,
                                  simple, where)
from fpgagen.backends.rtl.resources import Memory, model_of, out_fifo
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer

MODULE = "fpgagen_act"


def act_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_act`` for the standalone ``leakyrelu`` layer ``layer``, ``ew`` elements per beat."""
    check_op(layer, MODULE, "leakyrelu")
    if len(layer.inputs) != 1 or len(layer.in_fmts) != 1:
        raise BackendError(f"{where(layer)}: a LeakyRelu has 1 input, the layer has {len(layer.inputs)}")
    if layer.leaky is None:
        raise BackendError(f"{where(layer)}: the integer IR has no LeakyRelu slope (leaky) for the layer")
    rq = requant_params(layer)
    in_shape, out_shape = q.shapes.get(layer.inputs[0]), q.shapes.get(layer.output)
    if out_shape is None:
        raise BackendError(f"{where(layer)}: the graph has no shape for its output {layer.output!r}")
    if in_shape is not None and tuple(in_shape) != tuple(out_shape):
        raise BackendError(f"{where(layer)}: input {layer.inputs[0]!r} has shape {tuple(in_shape)}, the output "
                           f"{tuple(out_shape)}; an elementwise LeakyRelu keeps the shape")
    ew = check_ew(layer, MODULE, ew, out_shape, f"the output {layer.output!r}")
    x_fmt, y_fmt = layer.in_fmts[0], layer.out_fmt
    length = math.prod(out_shape)
    cycles = int(length) // ew
    params = {"IN_WIDTH": x_fmt.word, "IN_SIGNED": int(x_fmt.signed), "OUT_WIDTH": y_fmt.word,
              "LENGTH": int(length), **ew_params(ew), **rq}
    describe = (f"leakyrelu of {length} elements{ew_text(ew)}, in {x_fmt} out {y_fmt}, shift {layer.shift}, "
                f"clamp [{layer.lo}, {layer.hi}]{leaky_text(layer)}, {cycles} cycles/frame")
    return RtlInstance(MODULE, params, {}, cycles, describe)


emits("leakyrelu")(simple(act_instance))
ew_rule("leakyrelu")(lane_rule)


@model_of("fpgagen_act")
def act_memories(p: dict) -> list[Memory]:
    return [out_fifo(p.get("EW", 1) * p["OUT_WIDTH"])]
