"""Parameters and ROM files of ``fpgagen_dense`` (templates/verilog/fpgagen_dense.v).

The builder takes the weight matrix in *stream order*: column ``i`` multiplies the ``i``-th
element of the input stream. After a Flatten of a (C, H, W) map the stream is HWC, so the
caller (the Verilog backend) passes ``layer.weight[:, hwc_order(shape)]``; for a plain
vector input the IR's ``[Out, In]`` matrix is already in stream order.
"""

from __future__ import annotations

import numpy as np

from fpgagen.backends import hwc_order
from fpgagen.backends.rtl.resources import Memory, mac_out, model_of
from fpgagen.backends.rtl.widths import ew_rule, mac_rule
from fpgagen.backends.rtl import (RtlInstance, check_mac_ew, check_mac_layer, check_pairs, check_parallelism, dsp_pair, emits,
                                  leaky_text, mac_params, mac_parallelism, pairs_text, where)
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import ident

MODULE = "fpgagen_dense"


def dense_cycles(n_in: int, n_out: int, pe: int, simd: int, ew_in: int = 1, ew_out: int = 1) -> int:
    """Cycles per frame, frames back to back: compute, input (``ew_in`` elements per beat) or
    output (``ew_out``), whichever is slowest."""
    return max((n_out // pe) * (n_in // simd), n_in // ew_in, n_out // ew_out)


def dense_instance(q: QGraph, layer: QLayer, pe: int, simd: int, weights_in_stream_order=None,
                   prefix: str | None = None, pairs: bool | int = False, ew_in: int = 1, ew_out: int = 1) -> RtlInstance:
    """``fpgagen_dense`` for ``layer`` with ``pe`` neurons x ``simd`` inputs per cycle (``pairs``:
    two products per DSP block, ``DSP_PAIR`` 1 (any two) or 2 (two neurons sharing an input, PE even)).

    ROM files are named ``<prefix>_weights.mem`` and ``<prefix>_bias.mem`` (prefix: the layer
    name as an identifier). See the module header for their layout.
    """
    check_mac_layer(layer, MODULE, "dense")
    prefix = ident(prefix or layer.name)
    weight = np.asarray(layer.weight if weights_in_stream_order is None else weights_in_stream_order)
    n_out, n_in = layer.weight.shape
    if weight.shape != (n_out, n_in):
        raise BackendError(
            f"{where(layer)}: weights in stream order must have shape {(n_out, n_in)}, got {tuple(weight.shape)}"
        )
    in_shape, out_shape = q.shapes.get(layer.inputs[0]), q.shapes.get(layer.output)
    if in_shape is not None and int(np.prod(in_shape)) != n_in:
        raise BackendError(f"{where(layer)}: {n_in} weight columns but the input has "
                           f"{int(np.prod(in_shape))} elements {tuple(in_shape)}")
    if out_shape is not None and int(np.prod(out_shape)) != n_out:
        raise BackendError(f"{where(layer)}: {n_out} neurons but the output has {int(np.prod(out_shape))} elements")
    check_parallelism(layer, pe, simd, (n_out, "outputs"), (n_in, "inputs"))
    ng, nk = n_out // pe, n_in // simd
    pairs = check_pairs(layer, MODULE, pairs, pe)
    # line g*nk + k: weights of neurons g*pe + p for inputs k*simd + s, element (p, s) at p*simd + s
    blocks = weight.reshape(ng, pe, nk, simd).transpose(0, 2, 1, 3).reshape(ng * nk, pe * simd)
    params, mems = mac_params(layer, blocks, pe, simd, {"N_IN": n_in, "N_OUT": n_out}, prefix,
                              f"{ng}x{nk}", f"line g*{nk}+k", pairs=pairs)
    ews = check_mac_ew(layer, MODULE, pe, simd, ew_in, ew_out)
    params.update(ews)
    cycles = dense_cycles(n_in, n_out, pe, simd, ew_in, ew_out)
    describe = (f"dense {n_in} -> {n_out}, in {layer.in_fmts[0]} w {layer.w_fmt} out {layer.out_fmt}, "
                f"acc s{layer.acc_width}, shift {layer.shift}{leaky_text(layer)}, PE {pe} x SIMD {simd}, "
                f"{pairs_text(pairs)}"
                f"{f'{ew_in} in / {ew_out} out elements per beat, ' if ews else ''}{cycles} cycles/frame")
    return RtlInstance(MODULE, params, mems, cycles, describe)


@emits("dense")
def _emit(prefix, q, layer, cfg, source, ew=(1, 1)):
    pe, simd = mac_parallelism(cfg, q, layer)
    weights = layer.weight
    carried = source(layer.inputs[0])
    if carried != layer.inputs[0]:
        # the input is a flattened map travelling in HWC order: permute the weight columns
        weights = layer.weight[:, hwc_order(q.shapes[carried])]
    return [dense_instance(q, layer, pe, simd, weights, prefix, dsp_pair(cfg, layer, pe), ew_in=ew[0],
                           ew_out=ew[1])], pe, simd


ew_rule("dense")(mac_rule)


def _dense_multipliers(p: dict) -> int:
    return p["PE"] * p["SIMD"]


def _dense_holds(p: dict) -> int:
    """The whole input vector (no output before its last element), and the next one."""
    return 2 * p["N_IN"]


@model_of("fpgagen_dense", multipliers=_dense_multipliers, holds=_dense_holds)
def dense_memories(p: dict) -> list[Memory]:
    """The weight and bias ROMs, the input buffer and fpgagen_mac_out's buffers of one instance."""
    nk, ng = p["N_IN"] // p["SIMD"], p["N_OUT"] // p["PE"]
    return [Memory("wrom", "rom", ng * nk, p["PE"] * p["SIMD"] * p["W_WIDTH"], block=True),
            Memory("brom", "rom", ng, p["PE"] * p["BIAS_WIDTH"]),
            Memory("xbuf", "buffer", 2 * nk, p["SIMD"] * p["IN_WIDTH"]),
            *mac_out(p, nk)]
