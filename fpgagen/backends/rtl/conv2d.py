"""Parameters and ROM files of ``fpgagen_conv2d`` (templates/verilog/fpgagen_conv2d.v).

The module takes the input map in HWC stream order and gives the output map in HWC stream
order; the IR keeps conv weights as ``[Co, Ci/groups, KH, KW]``, which the builder packs into
the module's ROM layout (see the module header). Grouped and depthwise convs (``groups`` > 1)
are built with SIMD dividing ``Ci/groups`` and PE dividing ``Co/groups`` (the PE channels of one
pass lie in one group) or a multiple ``PG*Co/groups`` of it, PG dividing ``groups`` (one pass
computes PG whole groups; the line buffer then has PG lanes, one per group of the pass, so that
each PE lane reads its own group's input channels: a depthwise conv at PE 8 reads 8 channels per
cycle). ``taps`` (the module's KU) kernel taps of one row are multiplied
per cycle beside them (KU divides KW): PE*SIMD*KU multipliers.
"""

from __future__ import annotations

import numpy as np

from fpgagen.backends.parallelism import layer_taps, pe_choices
from fpgagen.backends.rtl.resources import Memory, mac_out, model_of
from fpgagen.backends.rtl.widths import ew_rule, mac_rule
from fpgagen.backends.rtl import (RtlInstance, check_mac_ew, check_mac_layer, check_pairs, check_parallelism, dsp_pair, emits,
                                  leaky_text, mac_params, mac_parallelism, pairs_text, where)
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import ident

MODULE = "fpgagen_conv2d"


def conv2d_out_size(h: int, w: int, kernel, stride, pads) -> tuple[int, int]:
    """(OH, OW) of a conv over an ``h`` x ``w`` map; pads are (top, left, bottom, right)."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    return (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1


def conv2d_cycles(ci: int, co: int, h: int, w: int, kernel, stride, pads, pe: int, simd: int,
                  groups: int = 1, taps: int = 1, ew_in: int = 1, ew_out: int = 1) -> int:
    """Cycles per frame, frames back to back: compute (MACs / (PE*SIMD*KU), a tap having
    Ci/groups inputs, KU = ``taps`` taps of a kernel row per cycle), input (H*W*Ci beats) or
    output (OH*OW*Co beats), whichever is slowest."""
    oh, ow = conv2d_out_size(h, w, kernel, stride, pads)
    kh, kw = kernel
    compute = oh * ow * (co // pe) * kh * (kw // taps) * (ci // groups // simd)
    return max(compute, h * w * ci // ew_in, oh * ow * co // ew_out)


def conv2d_lanes(ci: int, co: int, groups: int, pe: int, simd: int) -> tuple[int, bool]:
    """(PG, one word): the line buffer lanes of fpgagen_conv2d at ``pe`` x ``simd`` (PG: the
    whole channel groups of one pass when PE spans groups, else 1) and whether a group's input
    channels are one word (CI/GROUPS = SIMD), which lets a beat carry whole words of several lanes."""
    cog = co // groups
    return (pe // cog if pe > cog else 1), ci // groups == simd


def layer_lanes(q: QGraph, layer: QLayer, pe: int, simd: int) -> tuple[int, bool]:
    """:func:`conv2d_lanes` of the conv ``layer`` (its channels from the graph's shapes)."""
    ci, co = int(q.shapes[layer.inputs[0]][0]), int(q.shapes[layer.output][0])
    return conv2d_lanes(ci, co, layer.params.groups, pe, simd)


def input_lanes(q: QGraph, layer: QLayer, pe: int, simd: int) -> int:
    """The input groups fpgagen_mac_out reads of a MAC ``layer`` at ``pe`` x ``simd`` (its
    ``XG``): a conv's line buffer lanes (:func:`conv2d_lanes`), else 1."""
    return layer_lanes(q, layer, pe, simd)[0] if layer.op == "conv" else 1


def conv2d_line_rows(h: int, w: int, kernel, stride, pads) -> int:
    """Input rows the module's line buffer holds (its ``ROWS`` localparam, the same formula):
    the fewest for which the next window's inputs arrive while the current window is computed,
    also at a row and at a frame change; at least KH, at most 2*H."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    oh, ow = conv2d_out_size(h, w, kernel, stride, pads)
    iy_last = (oh - 1) * sh - pt
    c0_last = min(max((ow - 1) * sw - pl, 0), w - 1)
    fn_last = 0 if iy_last < 0 else h * w if iy_last >= h else iy_last * w + c0_last
    m0_row, m0_col = min(kh - 1 - pt, h - 1), min(kw - 1 - pl, w - 1)
    m0 = 0 if m0_row < 0 or m0_col < 0 else m0_row * w + m0_col  # a padding-only window waits for pixel 0
    need = max((kh - 1) * w + sw + kw, (sh + kh - 1) * w + m0_col + 1 - c0_last, h * w - fn_last + m0 + 1)
    rows = min(max(-(-need // w), kh), 2 * h)
    return max(rows, 1)


def conv2d_instance(q: QGraph, layer: QLayer, pe: int, simd: int, prefix: str | None = None,
                    taps: int = 1, pairs: bool | int = False, ew_in: int = 1, ew_out: int = 1) -> RtlInstance:
    """``fpgagen_conv2d`` for ``layer`` with ``pe`` output channels x ``simd`` input channels x
    ``taps`` kernel taps of a row (the module's KU, dividing KW; 1 leaves KU out) per cycle
    (``pairs``: two products per DSP block, ``DSP_PAIR`` 1 (any two) or 2 (two PE lanes sharing an
    input, an even number of PE lanes per line buffer lane)).

    ROM files are named ``<prefix>_weights.mem`` and ``<prefix>_bias.mem`` (prefix: the layer
    name as an identifier). See the module header for their layout.
    """
    check_mac_layer(layer, MODULE, "conv")
    prefix = ident(prefix or layer.name)
    params = layer.params  # ConvParams
    groups = params.groups
    weight = np.asarray(layer.weight)
    if weight.ndim != 4:
        raise BackendError(f"{where(layer)}: weights must be [Co, Ci/groups, KH, KW], got shape "
                           f"{tuple(weight.shape)}")
    co, cig, kh, kw = (int(v) for v in weight.shape)
    if groups < 1 or co % groups:
        raise BackendError(f"{where(layer)}: groups={groups} must be >= 1 and divide the {co} output channels")
    ci = cig * groups
    kernel, stride, pads = params.kernel, params.stride, params.pads
    if kernel != (kh, kw):
        raise BackendError(f"{where(layer)}: kernel {kernel} does not match the weights' {kh}x{kw} taps")
    if len(stride) != 2 or min(stride) < 1 or len(pads) != 4 or min(pads) < 0:
        raise BackendError(f"{where(layer)}: stride {stride} must be 2 values >= 1 and pads {pads} "
                           f"4 values >= 0 (top, left, bottom, right)")
    in_shape, out_shape = q.shapes.get(layer.inputs[0]), q.shapes.get(layer.output)
    if in_shape is None or len(in_shape) != 3:
        raise BackendError(f"{where(layer)}: the input must be a (C, H, W) map, got shape {in_shape}")
    c_in, h, w = (int(v) for v in in_shape)
    if c_in != ci:
        per = "" if groups == 1 else f" ({groups} groups of {cig})"
        raise BackendError(f"{where(layer)}: the weights take {ci} input channels{per} but the input has "
                           f"{c_in} {tuple(in_shape)}")
    if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
        raise BackendError(f"{where(layer)}: the {kh}x{kw} kernel is larger than the padded "
                           f"{h + pads[0] + pads[2]}x{w + pads[1] + pads[3]} input")
    oh, ow = conv2d_out_size(h, w, kernel, stride, pads)
    if out_shape is not None and tuple(int(v) for v in out_shape) != (co, oh, ow):
        raise BackendError(f"{where(layer)}: the output shape {tuple(out_shape)} does not match "
                           f"(Co, OH, OW) = {(co, oh, ow)} from the input {tuple(in_shape)}, kernel, stride and pads")
    if groups == 1:
        check_parallelism(layer, pe, simd, (co, "output channels"), (ci, "input channels"))
    else:
        check_parallelism(layer, 1, simd, (co, "output channels"),
                          (cig, f"input channels per group (Ci/groups, groups={groups})"))
        if pe not in pe_choices(co, groups, whole_groups=True):
            raise BackendError(f"{where(layer)}: PE {pe} must divide the layer's {co // groups} output channels per "
                               f"group (Co/groups, groups={groups}) or be a multiple of them dividing its {co} "
                               f"output channels (whole groups per pass; allowed: "
                               f"{', '.join(map(str, pe_choices(co, groups, whole_groups=True)))})")
    if isinstance(taps, bool) or not isinstance(taps, (int, np.integer)) or taps < 1 or kw % taps:
        raise BackendError(f"{where(layer)}: taps (KU) {taps} must divide the kernel's {kw} columns (KW)")
    ng, nk, ku = co // pe, cig // simd, int(taps)
    lanes, one_word = conv2d_lanes(ci, co, groups, pe, simd)
    pairs = check_pairs(layer, MODULE, pairs, pe, lanes)
    # line ((g*KH + ky)*(KW/KU) + u)*nk + k: W[g*pe + p, k*simd + s, ky, u*ku + j] at element
    # (p*ku + j)*simd + s (s: a channel of the group of output channel g*pe + p, which the
    # module's line buffer lane p // (Co/groups) holds when a pass spans groups; KU = 1: element
    # p*simd + s of tap kx = u)
    blocks = (weight.reshape(ng, pe, nk, simd, kh, kw // ku, ku)
              .transpose(0, 4, 5, 2, 1, 6, 3)
              .reshape(ng * kh * (kw // ku) * nk, pe * ku * simd))
    geometry = {"CI": ci, "CO": co, "H": h, "W": w, "KH": kh, "KW": kw, "SH": stride[0], "SW": stride[1],
                "PAD_T": pads[0], "PAD_L": pads[1], "PAD_B": pads[2], "PAD_R": pads[3], "GROUPS": groups}
    if ku == 1:
        params, mems = mac_params(layer, blocks, pe, simd, geometry, prefix, f"{ng}x{kh}x{kw}x{nk}",
                                  f"line ((g*{kh}+ky)*{kw}+kx)*{nk}+k", pairs=pairs)
    else:
        params, mems = mac_params(layer, blocks, pe, simd, geometry, prefix, f"{ng}x{kh}x{kw // ku}x{nk}",
                                  f"line ((g*{kh}+ky)*{kw // ku}+u)*{nk}+k, taps kx = u*{ku}+j", taps=ku,
                                  pairs=pairs)
    ews = check_mac_ew(layer, MODULE, pe, simd, ew_in, ew_out, lanes, one_word)
    params.update(ews)
    cycles = conv2d_cycles(ci, co, h, w, kernel, stride, pads, pe, simd, groups, ku, ew_in, ew_out)
    rows = conv2d_line_rows(h, w, kernel, stride, pads)
    kind = "" if groups == 1 else f"{'depthwise' if groups == ci == co else 'grouped'} ({groups} groups) "
    describe = (f"{kind}conv {ci}x{h}x{w} -> {co}x{oh}x{ow}, kernel {kh}x{kw} stride {stride[0]}x{stride[1]} "
                f"pads {'/'.join(map(str, pads))}, in {layer.in_fmts[0]} w {layer.w_fmt} out {layer.out_fmt}, "
                f"acc s{layer.acc_width}, shift {layer.shift}{leaky_text(layer)}, PE {pe} x SIMD {simd}"
                f"{f' x KU {ku} taps' if ku > 1 else ''}, "
                f"line buffer {rows} rows{f' in {ku} banks' if ku > 1 else ''}"
                f"{f' of {lanes} lanes (groups per pass)' if lanes > 1 else ''}, "
                f"{pairs_text(pairs)}"
                f"{f'{ew_in} in / {ew_out} out elements per beat, ' if ews else ''}{cycles} cycles/frame")
    return RtlInstance(MODULE, params, mems, cycles, describe)


@emits("conv")
def _emit(prefix, q, layer, cfg, source, ew=(1, 1)):
    pe, simd = mac_parallelism(cfg, q, layer)
    return [conv2d_instance(q, layer, pe, simd, prefix, taps=layer_taps(cfg, q, layer),
                            pairs=dsp_pair(cfg, layer, pe, input_lanes(q, layer, pe, simd)), ew_in=ew[0],
                            ew_out=ew[1])], pe, simd


@ew_rule("conv")
def _conv_widths(q: QGraph, layer: QLayer, pe: int = 1, simd: int = 1):
    """:func:`mac_rule` with the line buffer's lanes (a depthwise conv takes whole words of
    several lanes per beat)."""
    return mac_rule(q, layer, pe, simd, *layer_lanes(q, layer, pe, simd))


def _conv_multipliers(p: dict) -> int:
    return p["PE"] * p["SIMD"] * p.get("KU", 1)


def _conv_holds(p: dict) -> int:
    """Input elements taken ahead of the outputs: the line buffer's rows (it takes a row only
    where one it holds is no longer needed by the outputs still to come) and the row being
    computed."""
    rows = conv2d_line_rows(p["H"], p["W"], (p["KH"], p["KW"]), (p["SH"], p["SW"]),
                            (p["PAD_T"], p["PAD_L"], p["PAD_B"], p["PAD_R"]))
    return (rows + 1) * p["W"] * p["CI"]


@model_of("fpgagen_conv2d", multipliers=_conv_multipliers, holds=_conv_holds)
def conv2d_memories(p: dict) -> list[Memory]:
    """The weight and bias ROMs, the line buffer (KU taps per cycle: KU banks of ceil(W/KU)
    columns; a pass of PG > 1 whole groups: PG lanes per bank, each CI/(PG*SIMD) words per pixel)
    and fpgagen_mac_out's buffers of one instance with parameters ``p``."""
    cig, ku = p["CI"] // p["GROUPS"], p.get("KU", 1)
    lanes = conv2d_lanes(p["CI"], p["CO"], p["GROUPS"], p["PE"], p["SIMD"])[0]  # the module's PG
    nk, nkg, ng, nu = p["CI"] // p["SIMD"] // lanes, cig // p["SIMD"], p["CO"] // p["PE"], p["KW"] // ku
    rows = conv2d_line_rows(p["H"], p["W"], (p["KH"], p["KW"]), (p["SH"], p["SW"]),
                            (p["PAD_T"], p["PAD_L"], p["PAD_B"], p["PAD_R"]))
    return [Memory("wrom", "rom", ng * p["KH"] * nu * nkg, p["PE"] * p["SIMD"] * ku * p["W_WIDTH"], block=True),
            Memory("brom", "rom", ng, p["PE"] * p["BIAS_WIDTH"]),
            Memory("lbuf", "buffer", rows * -(-p["W"] // ku) * nk, p["SIMD"] * p["IN_WIDTH"], ku * lanes),
            *mac_out(dict(p, SIMD=p["SIMD"] * ku), p["KH"] * nu * nkg)]
