"""Parameters of ``fpgagen_concat`` (templates/verilog/fpgagen_concat.v): channel concat.

The integer IR gives each input's requantizing shift ``params.shifts[i]`` (``Fx_i - Fy``, a left
shift when <= 0) and channel count ``params.channels[i]``, the shared clamp ``[lo, hi]`` and an
optional fused LeakyRelu. ``fpgagen_concat`` joins two streams; ``n`` inputs become a chain of
``n - 1`` stages, stage ``k`` joining the output of stage ``k - 1`` (or input 0) with input
``k + 1``. The chained input is already requantized and clamped, so the later stages pass it
with shift 0 and without the LeakyRelu: exact. Every stage takes and emits ``ew`` elements per
beat (EW consecutive channels of one pixel, EW dividing every input's channel count): the last
stage takes the layer's output elements / EW cycles per frame, the others fewer.
"""

from __future__ import annotations

import math

from fpgagen.backends.rtl.widths import ew_rule, lane_rule
from fpgagen.backends.rtl import (RtlInstance, bounds_params, check_ew, check_op, emits, ew_params, ew_text,
                                  leaky_params, leaky_text, rounding_params, where)
from fpgagen.backends.rtl.resources import Memory, model_of, out_fifo
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.concat import ConcatParams

MODULE = "fpgagen_concat"


def concat_instances(q: QGraph, layer: QLayer, ew: int = 1) -> list[RtlInstance]:
    """The chain of ``fpgagen_concat`` stages of the ``concat`` layer ``layer`` (one for two
    inputs); stage ``k``'s input 0 is stage ``k - 1``'s output (input 0 of the layer for
    ``k = 0``), its input 1 the layer's input ``k + 1``; ``ew`` elements per beat everywhere."""
    check_op(layer, MODULE, "concat")
    p = layer.params
    n = len(layer.inputs)
    if not isinstance(p, ConcatParams):
        raise BackendError(f"{where(layer)}: the integer IR has no ConcatParams (shifts, channels), got {p!r}")
    if n < 2 or len(layer.in_fmts) != n or len(p.shifts) != n or len(p.channels) != n:
        raise BackendError(f"{where(layer)}: a concat needs 2 or more inputs with one format, shift and channel "
                           f"count each; got {n} inputs, {len(layer.in_fmts)} formats, shifts {list(p.shifts)}, "
                           f"channels {list(p.channels)}")
    if any(int(s) != s for s in p.shifts) or any(int(c) != c or c < 1 for c in p.channels):
        raise BackendError(f"{where(layer)}: shifts {list(p.shifts)} must be integers and channels "
                           f"{list(p.channels)} integers >= 1")
    out_shape = q.shapes.get(layer.output)
    if out_shape is None:
        raise BackendError(f"{where(layer)}: the graph has no shape for its output {layer.output!r}")
    out_shape = tuple(int(v) for v in out_shape)
    if out_shape[0] != sum(p.channels):
        raise BackendError(f"{where(layer)}: the output {layer.output!r} has {out_shape[0]} channels {out_shape}, "
                           f"the inputs' channels {list(p.channels)} sum to {sum(p.channels)}")
    for t, c in zip(layer.inputs, p.channels):
        shape = q.shapes.get(t)
        if shape is not None and tuple(shape) != (c, *out_shape[1:]):
            raise BackendError(f"{where(layer)}: input {t!r} has shape {tuple(shape)}, expected {(c, *out_shape[1:])} "
                               f"({c} channels, the output's {out_shape[1:]} pixels)")
    for t, c in zip(layer.inputs, p.channels):
        ew = check_ew(layer, MODULE, ew, (int(c), *out_shape[1:]), f"the input {t!r}")
    bounds = bounds_params(layer)
    leaky = leaky_params(layer, always=True)
    pixels = math.prod(out_shape[1:])
    y_fmt = layer.out_fmt
    stages = []
    for k in range(n - 1):
        f0 = layer.in_fmts[0] if k == 0 else y_fmt
        f1 = layer.in_fmts[k + 1]
        c0, c1 = (int(p.channels[0]) if k == 0 else sum(int(c) for c in p.channels[:k + 1])), int(p.channels[k + 1])
        params = {
            "IN0_WIDTH": f0.word, "IN0_SIGNED": int(f0.signed),
            "IN1_WIDTH": f1.word, "IN1_SIGNED": int(f1.signed),
            "OUT_WIDTH": y_fmt.word, "C0": c0, "C1": c1, **ew_params(ew), "PIXELS": int(pixels),
            "SHIFT0": int(p.shifts[0]) if k == 0 else 0, "SHIFT1": int(p.shifts[k + 1]),
            **bounds,
            "LEAKY0": leaky["LEAKY"] if k == 0 else 0, "LEAKY1": leaky["LEAKY"],
            "ALPHA": leaky["ALPHA"], "ALPHA_FRAC": leaky["ALPHA_FRAC"],
            **rounding_params(layer),
        }
        cycles = pixels * (c0 + c1) // ew
        first = (f"{layer.inputs[0]!r} {f0} >> {p.shifts[0]}" if k == 0
                 else f"stage {k - 1} ({c0} channels, {y_fmt}) as is")
        stage = f"stage {k} of {n - 1}, " if n > 2 else ""
        describe = (f"concat {stage}{first} + {layer.inputs[k + 1]!r} {f1} >> {p.shifts[k + 1]}: {c0} + {c1} "
                    f"channels x {pixels} pixels{ew_text(ew)}, out {y_fmt}, clamp [{layer.lo}, {layer.hi}]{leaky_text(layer)}, "
                    f"{cycles} cycles/frame")
        stages.append(RtlInstance(MODULE, params, {}, int(cycles), describe))
    return stages


@emits("concat")
def _emit(prefix, q, layer, cfg, source, ew=(1, 1)):
    return concat_instances(q, layer, ew=ew[0]), 1, 1


ew_rule("concat")(lane_rule)


@model_of("fpgagen_concat")
def concat_memories(p: dict) -> list[Memory]:
    return [out_fifo(p.get("EW", 1) * p["OUT_WIDTH"])]
