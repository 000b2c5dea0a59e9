"""Stream widths: how many elements per beat each layer's module takes and gives, and the widths
the Verilog backend gives every stream for a pipeline interval.

A wide stream carries EW elements per beat (element e at bits ``[e*WIDTH +: WIDTH]``, EW
consecutive elements of the HWC stream: EW channels of one pixel). What a module accepts is
registered with its op (:data:`EW_RULES`, ``@ew_rule``, beside the op's emitter):

- the lane modules (pools, activations, add, concat, pad, resize): one EW for every input and the
  output, dividing the channels of each (:func:`lane_rule`);
- ``fpgagen_conv2d`` / ``fpgagen_dense``: ``EW_IN`` dividing SIMD (a beat fills part of one line
  buffer word; a conv whose line buffer has a lane per channel group of one word, as a depthwise
  conv at PE > 1: also SIMD times a divisor of the lanes, whole words into several lanes) and
  ``EW_OUT`` dividing PE (a beat is part of one output group), independently (:func:`mac_rule`);
- any other op (the HWC-to-CHW reorder): one element per beat.

No stream is wider than :data:`fpgagen.backends.rtl.stream.MAX_WIDTH` bits. The folding's cycle
model (:func:`stream_bound`) and the backend's choice (:func:`choose`) use the same rules, so
``parallelism: auto`` never picks multipliers a stream cannot feed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fpgagen.backends.parallelism import divisors
from fpgagen.backends.rtl import mac_ins
from fpgagen.backends.rtl.stream import flatten_reorders
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.tables import registrar

#: tdata bits a stream may carry (as :data:`fpgagen.backends.rtl.stream.MAX_WIDTH`)
MAX_BEAT_BITS = 64

#: IR op -> ``rule(q, layer, pe, simd) -> Widths``: the elements per beat its module takes
EW_RULES: dict = {}
#: register the stream-width rule of IR ops
ew_rule = registrar(EW_RULES, "stream width rules")
_loaded = False


@dataclass(frozen=True)
class Widths:
    """The elements per beat a module accepts: on its inputs (every input alike) and its output,
    ascending; ``tied``: one EW for both (the lane modules)."""

    ins: tuple
    outs: tuple
    tied: bool = False


ONE = Widths((1,), (1,), True)


def _cap(ws, word: int) -> tuple:
    """``ws`` without the widths over :data:`MAX_BEAT_BITS` bits of ``word``-bit elements."""
    top = max(1, MAX_BEAT_BITS // max(int(word), 1))
    return tuple(w for w in ws if w <= top) or (1,)


def _channels(shape) -> int:
    """What EW divides: the channels C of a (C, H, W) map (a beat stays in one pixel), all the
    elements of a flat tensor."""
    return int(shape[0]) if len(shape) == 3 else int(math.prod(shape))


def lane_rule(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1) -> Widths:
    """One EW for all streams of the layer, dividing the channels of every input and the output."""
    c = math.gcd(*[_channels(q.shapes[t]) for t in (*layer.inputs, layer.output)])
    word = max(q.fmts[t].word for t in (*layer.inputs, layer.output))
    ws = _cap(divisors(c), word)
    return Widths(ws, ws, True)


def mac_rule(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1, lanes: int = 1, one_word: bool = False) -> Widths:
    """EW_IN of :func:`mac_ins`, EW_OUT divides PE."""
    return Widths(_cap(mac_ins(simd, lanes, one_word), q.fmts[layer.inputs[0]].word),
                  _cap(divisors(pe), q.fmts[layer.output].word), False)


def widths(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1) -> Widths:
    """The registered rule of ``layer``'s op (one element per beat without one)."""
    global _loaded
    if not _loaded:  # every builder registers its rule (one imported alone would leave the rest out)
        from fpgagen.backends.rtl import load_builders

        load_builders()
        _loaded = True
    rule = EW_RULES.get(layer.op)
    return ONE if rule is None else rule(q, layer, pe, simd)


def elements(q: QGraph, tensor: str) -> int:
    return int(math.prod(q.shapes[tensor]))


def port_bound(q: QGraph) -> int:
    """The fewest cycles per frame of any pipeline of ``q``: its input and output ports carry one
    element per beat (a converter widens a stream for the layers behind it, not the port's rate)."""
    return max(elements(q, q.input), elements(q, q.output))


def stream_bound(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1, ew=None) -> int:
    """The fewest cycles per frame the layer's streams allow at their widest: every input and the
    output through once at the most elements per beat its module takes (or at ``ew`` = (EW in,
    EW out) given)."""
    w = widths(q, layer, pe, simd)
    e_in, e_out = (w.ins[-1], w.outs[-1]) if ew is None else ew
    sizes = [elements(q, t) // e_in for t in layer.inputs] + [elements(q, layer.output) // e_out]
    return max(sizes)


def layer_bound(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1, taps: int = 1, ew=None) -> int:
    """The Verilog library's analytic cycles per frame of ``layer`` at ``pe`` x ``simd`` x ``taps``:
    ``max(MACs / multipliers, stream bound)`` (:func:`stream_bound`: its streams at their widest,
    or at ``ew``), what the folding (:func:`fpgagen.backends.folding.layer_cycles`) and the
    backend's choice of widths both use."""
    from fpgagen.backends.parallelism import layer_dims, macs

    compute = -(-macs(q, layer) // (pe * simd * taps)) if layer_dims(q, layer) is not None else 0
    return max(compute, stream_bound(q, layer, pe, simd, ew))


def layer_cycles(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1, taps: int = 1, ew=None) -> int:
    """Analytic cycles per frame of ``layer`` at ``pe`` x ``simd`` x ``taps``, as the folding
    (:mod:`fpgagen.backends.folding`) and the Verilog backend's stream widths count it:
    :func:`layer_bound` (``max(MACs / multipliers, stream bound)``, the streams at the most
    elements per beat the layer's module takes, or at ``ew`` = (EW in, EW out)); a flatten that
    reorders (fpgagen_hwc_to_chw, one element per beat) its elements, one that only relabels 0.
    A pipeline takes the most of its layers' and :func:`port_bound`."""
    if layer.op == "flatten":
        return elements(q, layer.output) if flatten_reorders(q, layer) else 0
    return layer_bound(q, layer, pe, simd, taps, ew)


def pipeline_cycles(q: QGraph, foldings: dict) -> int:
    """Analytic cycles per frame of the pipeline of ``q`` at ``foldings`` (layer name -> (pe, simd,
    taps); a layer not named at (1, 1, 1)), frames back to back: its slowest layer
    (:func:`layer_cycles`) or its ports (:func:`port_bound`)."""
    return max([port_bound(q)] + [layer_cycles(q, ly, *foldings.get(ly.name, (1, 1, 1))) for ly in q.layers])


def _least(ws, need: int) -> int:
    """The smallest width of ``ws`` carrying ``need`` elements per beat, else the widest."""
    return next((w for w in ws if w >= need), ws[-1])


def choose(q: QGraph, layer: QLayer, pe: int, simd: int, interval: int, given: int | None = None) -> tuple[int, int]:
    """(EW in, EW out) of ``layer`` for a pipeline of ``interval`` cycles per frame: the narrowest
    widths that move each stream's frame within the interval (the widest where none does: the
    layer is then the bound). ``given``: the width its (single) input arrives at, kept when it is
    allowed and enough, so that no converter is needed."""
    w = widths(q, layer, pe, simd)
    interval = max(int(interval), 1)
    need_in = max([-(-elements(q, t) // interval) for t in layer.inputs] + [1])
    need_out = -(-elements(q, layer.output) // interval)
    if w.tied:
        need = max(need_in, need_out)
        if given is not None and len(layer.inputs) == 1 and given in w.ins and given >= need:
            return given, given
        ew = _least(w.ins, need)
        return ew, ew
    ew_in = given if given is not None and given in w.ins and given >= need_in else _least(w.ins, need_in)
    return ew_in, _least(w.outs, need_out)

