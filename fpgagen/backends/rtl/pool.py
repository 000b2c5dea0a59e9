"""Parameters (and the reciprocal ROM) of the pooling modules of the Verilog library.

- ``fpgagen_maxpool`` (templates/verilog/fpgagen_maxpool.v): exact, output format = input format.
- ``fpgagen_avgpool`` (templates/verilog/fpgagen_avgpool.v): window sum times the IR's integer
  reciprocal ``recip`` (a parameter, or a ROM ``<prefix>_recip.mem`` of OH*OW words when it
  varies per output position), requantized by ``shift`` to ``[lo, hi]``.
- ``fpgagen_gap`` (templates/verilog/fpgagen_gap.v): per-channel sum over H*W times ``recip``.

All three stream a (C, H, W) map in HWC order, ``ew`` elements per beat (EW consecutive
channels of one pixel, EW dividing C; 1 by default), and emit (C, OH, OW) in HWC order, EW
elements per beat, input and output concurrently: a frame takes ``max(C*H*W, C*OH*OW) / EW``
cycles (:func:`pool_cycles`). They share the window engine ``fpgagen_pool_window`` (EW lanes
over C/EW words per pixel), which needs every pad smaller than the kernel.
"""

from __future__ import annotations

import numpy as np

from fpgagen.backends.rtl.resources import Memory, clog2, model_of, out_fifo
from fpgagen.backends.rtl.widths import ew_rule, lane_rule
from fpgagen.backends.rtl import (MAX_ACC_WIDTH, RtlInstance, check_ew, check_op, emits, ew_params, ew_text,
                                  hex_words, leaky_text, requant_params, simple, where)
from fpgagen.errors import BackendError
from fpgagen.golden.windows import window_counts
from fpgagen.ir.graph import activation_name, conv_output_hw
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import ident, quoted

#: the largest reciprocal a Verilog integer parameter holds (a ROM word may be wider)
MAX_RECIP_PARAM = (1 << 31) - 1
#: the widest reciprocal ROM word fpgagen_avgpool takes
MAX_RECIP_WIDTH = 62


def pool_cycles(c: int, h: int, w: int, oh: int, ow: int, ew: int = 1) -> int:
    """Cycles per frame, frames back to back: ``ew`` elements per beat in and out, concurrently."""
    return max(c * h * w, c * oh * ow) // ew


def pool_slots(g: dict) -> int:
    """Output rows the window engine keeps in flight, each a slot of OW*C/EW partial-result words
    (fpgagen_pool_window's NS: NI filling plus those being emitted, more for very short rows)."""
    h, w, kh, sh, oh, ow = (g[k] for k in ("H", "W", "KH", "SH", "OH", "OW"))
    c = g["C"] // g.get("EW", 1)  # words (beats) per pixel
    ni = min((kh + sh - 1) // sh, oh)
    wrap = h - max(0, (oh - 1) * sh - g["PAD_T"])  # input rows from a frame's last opened row to the next frame
    open_t = min(sh, wrap) * w * c if oh > 1 else h * w * c
    busy_t = min(kh, h) * w * c + ow * c + 6
    return max(ni + min(ni, 2), -(-busy_t // open_t))


def buffer_words(g: dict) -> int:
    """Words of partial results (maxima or sums, EW lanes a word) fpgagen_pool_window stores."""
    nj = min((g["KW"] + g["SW"] - 1) // g["SW"], g["OW"])
    return pool_slots(g) * nj * (-(-g["OW"] // nj)) * (g["C"] // g.get("EW", 1))


def _geometry(q: QGraph, layer: QLayer, module: str, op: str, reciprocal: bool = False, ew: int = 1) -> dict:
    """C, EW, H, W, kernel, stride, pads and OH, OW of a pooling layer of ``op``, checked for
    ``module`` (and, with ``reciprocal``, that the integer IR gives the averaging reciprocal;
    ``ew``: elements per beat, checked to divide C)."""
    check_op(layer, module, op)
    in_shape = q.shapes.get(layer.inputs[0])
    if in_shape is None or len(in_shape) != 3:
        raise BackendError(f"{where(layer)}: {module} takes a (C, H, W) feature map, the input "
                           f"{layer.inputs[0]!r} has shape {None if in_shape is None else tuple(in_shape)}")
    c, h, w = (int(v) for v in in_shape)
    ew = check_ew(layer, module, ew, in_shape, f"the input {layer.inputs[0]!r}")
    if layer.op == "gap":
        kernel, stride, pads = (h, w), (1, 1), (0, 0, 0, 0)
    else:
        kernel, stride, pads = layer.params.kernel, layer.params.stride, layer.params.pads
        if len(kernel) != 2 or len(stride) != 2 or len(pads) != 4:
            raise BackendError(f"{where(layer)}: needs a 2-D kernel, stride and 4 pads, got kernel {kernel}, "
                               f"stride {stride}, pads {pads}")
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    if min(kh, kw, sh, sw) < 1:
        raise BackendError(f"{where(layer)}: kernel {kernel} and stride {stride} must be >= 1")
    if not (0 <= pt < kh and 0 <= pb < kh and 0 <= pl < kw and 0 <= pr < kw):
        raise BackendError(f"{where(layer)}: {module} needs every pad smaller than the kernel (a window of padding "
                           f"only has no value); got pads {pads} (top, left, bottom, right) for kernel {kernel}")
    if h + pt + pb < kh or w + pl + pr < kw:
        raise BackendError(f"{where(layer)}: the {kh}x{kw} kernel does not fit the padded "
                           f"{h + pt + pb}x{w + pl + pr} input")
    oh, ow = conv_output_hw((h, w), kernel, stride, pads)
    out_shape = q.shapes.get(layer.output)
    if out_shape is not None and tuple(out_shape) != (c, oh, ow):
        raise BackendError(f"{where(layer)}: the output {layer.output!r} has shape {tuple(out_shape)}, but a "
                           f"{kh}x{kw} window, stride {stride}, pads {pads} over {tuple(in_shape)} gives "
                           f"{(c, oh, ow)}")
    recip = getattr(layer.params, "recip", None), getattr(layer.params, "recip_bits", None)
    if reciprocal and any(r is None for r in recip):
        raise BackendError(f"{where(layer)}: the integer IR has no reciprocal (recip, recip_bits)")
    return {"C": c, "EW": ew, "H": h, "W": w, "KH": kh, "KW": kw, "SH": sh, "SW": sw,
            "PAD_T": pt, "PAD_L": pl, "PAD_B": pb, "PAD_R": pr, "OH": oh, "OW": ow}


def _geo_params(g: dict) -> dict:
    """C, (EW when > 1), H, W, the window, strides and pads: the modules' declaration order."""
    return {"C": g["C"], **ew_params(g["EW"]),
            **{k: g[k] for k in ("H", "W", "KH", "KW", "SH", "SW", "PAD_T", "PAD_L", "PAD_B", "PAD_R")}}


def _geo_text(g: dict) -> str:
    return (f"{g['C']}x{g['H']}x{g['W']} -> {g['C']}x{g['OH']}x{g['OW']}, window {g['KH']}x{g['KW']}, "
            f"stride {g['SH']}x{g['SW']}, pads {g['PAD_T']}/{g['PAD_L']}/{g['PAD_B']}/{g['PAD_R']}{ew_text(g['EW'])}")


def _cycles(g: dict) -> int:
    return pool_cycles(g["C"], g["H"], g["W"], g["OH"], g["OW"], g["EW"])


def maxpool_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_maxpool`` for ``layer`` (exact: the output format is the input format), ``ew``
    elements per beat in and out."""
    module = "fpgagen_maxpool"
    g = _geometry(q, layer, module, "maxpool", ew=ew)
    x_fmt = layer.in_fmts[0]
    if layer.out_fmt != x_fmt:
        raise BackendError(f"{where(layer)}: a max pool passes its input format through, but the output "
                           f"format is {layer.out_fmt} and the input {x_fmt}")
    lo, hi = layer.clamp_bounds
    params = {"IN_WIDTH": x_fmt.word, "IN_SIGNED": int(x_fmt.signed), **_geo_params(g), "LO": lo, "HI": hi}
    cycles = _cycles(g)
    clamp = f", clamp [{lo}, {hi}] ({activation_name(layer.activation)})" if layer.activation else ""
    describe = (f"maxpool {_geo_text(g)}, {x_fmt}{clamp}, line buffer {buffer_words(g)} x {g['EW'] * x_fmt.word} "
                f"bits, {cycles} cycles/frame")
    return RtlInstance(module, params, {}, cycles, describe)


def _acc_width(layer: QLayer, x_fmt, most: int) -> int:
    """The IR's accumulator width, checked to hold every sum * reciprocal: at most ``most`` (the
    largest real-pixel count times its reciprocal) times an input value."""
    if layer.acc_width is None:
        raise BackendError(f"{where(layer)}: the integer IR has no accumulator width")
    acc_width = int(layer.acc_width)
    if not 2 <= acc_width <= MAX_ACC_WIDTH:
        raise BackendError(f"{where(layer)}: a {acc_width}-bit accumulator (sum * reciprocal) is outside the "
                           f"2..{MAX_ACC_WIDTH} bits fpgagen_requant takes")
    lo, hi = int(x_fmt.min_int) * most, int(x_fmt.max_int) * most
    if lo < -(1 << (acc_width - 1)) or hi > (1 << (acc_width - 1)) - 1:
        raise BackendError(f"{where(layer)}: sum * reciprocal spans [{lo}, {hi}], more than the IR's {acc_width}-bit "
                           f"accumulator holds")
    return acc_width


def avgpool_instance(q: QGraph, layer: QLayer, prefix: str | None = None, ew: int = 1) -> RtlInstance:
    """``fpgagen_avgpool`` for ``layer``, ``ew`` elements per beat in and out; a reciprocal that
    varies per output position (border windows with ``count_include_pad = 0``) becomes the ROM
    ``<prefix>_recip.mem`` (prefix: the layer name as an identifier), OH*OW unsigned words, line
    ``oh*OW + ow``."""
    module = "fpgagen_avgpool"
    g = _geometry(q, layer, module, "avgpool", reciprocal=True, ew=ew)
    rq = requant_params(layer)
    x_fmt, y_fmt = layer.in_fmts[0], layer.out_fmt
    recip = np.asarray(layer.params.recip, np.int64)
    if recip.ndim not in (0, 2) or (recip.ndim == 2 and recip.shape != (g["OH"], g["OW"])):
        raise BackendError(f"{where(layer)}: recip must be a scalar or one per output position "
                           f"{(g['OH'], g['OW'])}, got shape {recip.shape}")
    if recip.size and int(recip.min()) < 1:
        raise BackendError(f"{where(layer)}: reciprocals must be positive integers, got {int(recip.min())}")
    if recip.ndim == 2 and (recip == recip.flat[0]).all():
        recip = recip.reshape(-1)[0]  # one count everywhere: a parameter, not a ROM
    rmax = int(recip.max())
    recip_width = max(1, rmax.bit_length())
    counts = window_counts((g["H"], g["W"]), (g["KH"], g["KW"]), (g["SH"], g["SW"]),
                           (g["PAD_T"], g["PAD_L"], g["PAD_B"], g["PAD_R"]))
    acc_width = _acc_width(layer, x_fmt, int((counts * recip).max()))
    prefix = ident(prefix or layer.name)
    mems = {}
    if recip.ndim == 0:
        if rmax > MAX_RECIP_PARAM:
            raise BackendError(f"{where(layer)}: the reciprocal {rmax} does not fit a 32-bit Verilog parameter")
        recip_params = {"RECIP_ROM": 0, "RECIP": rmax, "RECIP_FILE": ""}
        recip_text = f"recip {rmax}"
    else:
        if recip_width > MAX_RECIP_WIDTH:
            raise BackendError(f"{where(layer)}: {recip_width}-bit reciprocals are wider than the "
                               f"{MAX_RECIP_WIDTH} bits fpgagen_avgpool takes")
        name = f"{prefix}_recip.mem"
        mems[name] = (f"// {quoted(layer.name)}: reciprocals round(2**{layer.params.recip_bits} / count) per output position, "
                      f"{g['OH']}x{g['OW']} words of {recip_width} bits (line oh*{g['OW']}+ow)\n"
                      + "\n".join(hex_words(recip.reshape(-1), recip_width)) + "\n")
        recip_params = {"RECIP_ROM": 1, "RECIP": 0, "RECIP_FILE": name}
        recip_text = f"recip ROM {name}"
    params = {
        "IN_WIDTH": x_fmt.word,
        "IN_SIGNED": int(x_fmt.signed),
        "OUT_WIDTH": y_fmt.word,
        **_geo_params(g),
        "ACC_WIDTH": acc_width,
        "RECIP_WIDTH": recip_width,
        **recip_params,
        **rq,
    }
    cycles = _cycles(g)
    describe = (f"avgpool {_geo_text(g)}, in {x_fmt} out {y_fmt}, {recip_text} ({layer.params.recip_bits} bits), "
                f"acc s{acc_width}, shift {layer.shift}, clamp [{layer.lo}, {layer.hi}]{leaky_text(layer)}, "
                f"line buffer {buffer_words(g)} sums, {cycles} cycles/frame")
    return RtlInstance(module, params, mems, cycles, describe)


def gap_instance(q: QGraph, layer: QLayer, ew: int = 1) -> RtlInstance:
    """``fpgagen_gap`` for ``layer``: per-channel sum over H*W times the scalar ``recip``, ``ew``
    elements per beat in and out."""
    module = "fpgagen_gap"
    g = _geometry(q, layer, module, "gap", reciprocal=True, ew=ew)
    recip = np.asarray(layer.params.recip, np.int64)
    if recip.ndim != 0:
        raise BackendError(f"{where(layer)}: a global average pool has one reciprocal, got shape {recip.shape}")
    recip = int(recip)
    if not 1 <= recip <= MAX_RECIP_PARAM:
        raise BackendError(f"{where(layer)}: the reciprocal {recip} must be a positive 32-bit Verilog parameter")
    rq = requant_params(layer)
    x_fmt, y_fmt = layer.in_fmts[0], layer.out_fmt
    n = g["H"] * g["W"]
    acc_width = _acc_width(layer, x_fmt, n * recip)
    params = {
        "IN_WIDTH": x_fmt.word,
        "IN_SIGNED": int(x_fmt.signed),
        "OUT_WIDTH": y_fmt.word,
        "C": g["C"],
        **ew_params(g["EW"]),
        "H": g["H"],
        "W": g["W"],
        "ACC_WIDTH": acc_width,
        "RECIP_WIDTH": recip.bit_length(),
        "RECIP": recip,
        **rq,
    }
    cycles = pool_cycles(g["C"], g["H"], g["W"], 1, 1, g["EW"])
    describe = (f"gap {g['C']}x{g['H']}x{g['W']} -> {g['C']}{ew_text(g['EW'])}, in {x_fmt} out {y_fmt}, recip {recip} "
                f"({layer.params.recip_bits} bits), acc s{acc_width}, shift {layer.shift}, clamp [{layer.lo}, {layer.hi}]"
                f"{leaky_text(layer)}, "
                f"{cycles} cycles/frame")
    return RtlInstance(module, params, {}, cycles, describe)


@emits("avgpool")
def _emit_avgpool(prefix, q, layer, cfg, source, ew=(1, 1)):
    return [avgpool_instance(q, layer, prefix, ew=ew[0])], 1, 1


emits("maxpool")(simple(maxpool_instance))
emits("gap")(simple(gap_instance))
ew_rule("avgpool", "maxpool", "gap")(lane_rule)


def _pool_out(p: dict) -> tuple[int, int]:
    """OH, OW of a pooling window engine."""
    return ((p["H"] + p["PAD_T"] + p["PAD_B"] - p["KH"]) // p["SH"] + 1,
            (p["W"] + p["PAD_L"] + p["PAD_R"] - p["KW"]) // p["SW"] + 1)


def _pool_window(p: dict, dw: int) -> Memory:
    """fpgagen_pool_window: NS x NJ banks of WPB*C/EW words of EW partial results of ``dw`` bits."""
    oh, ow = _pool_out(p)
    g = dict(p, OH=oh, OW=ow)
    nj = min((p["KW"] + p["SW"] - 1) // p["SW"], ow)
    wpb = -(-ow // nj)
    ew = p.get("EW", 1)
    return Memory("window", "buffer", wpb * (p["C"] // ew), dw * ew, pool_slots(g) * nj)


def _pool_holds(p: dict) -> int:
    """Input elements taken ahead of the outputs: the output rows in flight (the window engine's
    slots, SH input rows each) and one window's rows."""
    oh, ow = _pool_out(p)
    return (pool_slots(dict(p, OH=oh, OW=ow)) * p["SH"] + p["KH"]) * p["W"] * p["C"]


def _gap_holds(p: dict) -> int:
    """A whole map (its one output row needs the last input), and the next map's first pixel."""
    return (p["H"] * p["W"] + 1) * p["C"]


@model_of("fpgagen_maxpool", holds=_pool_holds)
def maxpool_memories(p: dict) -> list[Memory]:
    return [_pool_window(p, p["IN_WIDTH"]), out_fifo(p.get("EW", 1) * p["IN_WIDTH"])]


@model_of("fpgagen_avgpool", holds=_pool_holds)
def avgpool_memories(p: dict) -> list[Memory]:
    out = [_pool_window(p, p["IN_WIDTH"] + 1 + clog2(p["KH"] * p["KW"])), out_fifo(p.get("EW", 1) * p["OUT_WIDTH"])]
    if p.get("RECIP_ROM"):
        oh, ow = _pool_out(p)
        out.append(Memory("rrom", "rom", oh * ow, p["RECIP_WIDTH"]))
    return out


@model_of("fpgagen_gap", holds=_gap_holds)
def gap_memories(p: dict) -> list[Memory]:
    """An fpgagen_avgpool of one window over the whole map."""
    return avgpool_memories(dict(p, KH=p["H"], KW=p["W"], SH=1, SW=1, PAD_T=0, PAD_L=0, PAD_B=0, PAD_R=0,
                                 RECIP_ROM=0))
