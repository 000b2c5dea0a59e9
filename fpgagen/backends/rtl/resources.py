"""Resource estimates of a generated design, before synthesis.

Per library module instance: its multipliers (one int8 product each) and its memories (weight,
bias and reciprocal ROMs, line buffers, window buffers, FIFOs), each as ``depth x width`` from the
module's own localparams (the formulas below are the Verilog's, written once more in Python:
``tests/test_synth.py`` checks them against the memories Yosys infers from the generated design,
bit for bit). From the memories and a device's block-RAM shapes, an estimate of the block RAMs
(each memory packed into the fewest blocks of one of the device's aspect ratios; small ones left
to logic, as Yosys does). These are estimates: ``fpgagen synth`` gives the tools' counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Memory:
    """One memory of a module instance (``count`` identical copies)."""

    name: str
    kind: str  # "rom" (constants: $readmemh) or "buffer" (written at run time)
    depth: int
    width: int
    count: int = 1
    #: declared ``(* rom_style = "block" *)``: the tools put it in block RAM whatever its size
    block: bool = False

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.count


def _clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def _out_fifo(width: int) -> Memory:
    """The 2-deep output fpgagen_fifo of a module."""
    return Memory("out", "buffer", 2, width + 1)


def _mac_out(p: dict, chunks: int) -> list[Memory]:
    """fpgagen_mac_out's result buffer (NR groups of PE outputs) and its output FIFO."""
    pe, simd = p["PE"], p["SIMD"]
    lv = _clog2(simd + 1)
    per = max(chunks, pe)
    rt = lv + pe + 6 + (1 if p.get("LEAKY") else 0)  # a LeakyRelu's product is registered
    nr = (rt + per - 1) // per + 1
    return [Memory("rbuf", "buffer", nr, pe * p["OUT_WIDTH"]), _out_fifo(p["OUT_WIDTH"])]


def _conv_rows(p: dict) -> int:
    from fpgagen.backends.rtl.conv2d import conv2d_line_rows

    return conv2d_line_rows(p["H"], p["W"], (p["KH"], p["KW"]), (p["SH"], p["SW"]),
                            (p["PAD_T"], p["PAD_L"], p["PAD_B"], p["PAD_R"]))


def _pool_out(p: dict) -> tuple[int, int]:
    """OH, OW of a pooling window engine."""
    return ((p["H"] + p["PAD_T"] + p["PAD_B"] - p["KH"]) // p["SH"] + 1,
            (p["W"] + p["PAD_L"] + p["PAD_R"] - p["KW"]) // p["SW"] + 1)


def _pool_window(p: dict, dw: int) -> Memory:
    """fpgagen_pool_window: NS x NJ banks of WPB*C partial results."""
    from fpgagen.backends.rtl.pool import pool_slots

    oh, ow = _pool_out(p)
    g = dict(p, OH=oh, OW=ow)
    nj = min((p["KW"] + p["SW"] - 1) // p["SW"], ow)
    wpb = -(-ow // nj)
    return Memory("window", "buffer", wpb * p["C"], dw, pool_slots(g) * nj)


def memories(module: str, p: dict) -> list[Memory]:
    """The memories of one instance of library ``module`` with parameters ``p``."""
    if module == "fpgagen_conv2d":  # KU taps per cycle: KU line buffer banks of ceil(W/KU) columns
        cig, ku = p["CI"] // p["GROUPS"], p.get("KU", 1)
        nk, nkg, ng, nu = p["CI"] // p["SIMD"], cig // p["SIMD"], p["CO"] // p["PE"], p["KW"] // ku
        return [Memory("wrom", "rom", ng * p["KH"] * nu * nkg, p["PE"] * p["SIMD"] * ku * p["W_WIDTH"], block=True),
                Memory("brom", "rom", ng, p["PE"] * p["BIAS_WIDTH"]),
                Memory("lbuf", "buffer", _conv_rows(p) * -(-p["W"] // ku) * nk, p["SIMD"] * p["IN_WIDTH"], ku),
                *_mac_out(dict(p, SIMD=p["SIMD"] * ku), p["KH"] * nu * nkg)]
    if module == "fpgagen_dense":
        nk, ng = p["N_IN"] // p["SIMD"], p["N_OUT"] // p["PE"]
        return [Memory("wrom", "rom", ng * nk, p["PE"] * p["SIMD"] * p["W_WIDTH"], block=True),
                Memory("brom", "rom", ng, p["PE"] * p["BIAS_WIDTH"]),
                Memory("xbuf", "buffer", 2 * nk, p["SIMD"] * p["IN_WIDTH"]),
                *_mac_out(p, nk)]
    if module == "fpgagen_maxpool":
        return [_pool_window(p, p["IN_WIDTH"]), _out_fifo(p["IN_WIDTH"])]
    if module == "fpgagen_avgpool":
        out = [_pool_window(p, p["IN_WIDTH"] + 1 + _clog2(p["KH"] * p["KW"])), _out_fifo(p["OUT_WIDTH"])]
        if p.get("RECIP_ROM"):
            oh, ow = _pool_out(p)
            out.append(Memory("rrom", "rom", oh * ow, p["RECIP_WIDTH"]))
        return out
    if module == "fpgagen_gap":  # an fpgagen_avgpool of one window over the whole map
        return memories("fpgagen_avgpool", dict(p, KH=p["H"], KW=p["W"], SH=1, SW=1, PAD_T=0, PAD_L=0, PAD_B=0,
                                                PAD_R=0, RECIP_ROM=0))
    if module == "fpgagen_fifo":
        return [Memory("fifo", "buffer", max(p["DEPTH"], 2), p["WIDTH"] + 1)]
    if module == "fpgagen_hwc_to_chw":
        return [Memory("reorder", "buffer", 2 * p["C"] * p["H"] * p["W"], p["WIDTH"])]
    if module in ("fpgagen_add", "fpgagen_act", "fpgagen_concat"):
        return [_out_fifo(p["OUT_WIDTH"])]
    if module == "fpgagen_resize":  # the ring of one input row (2 words for a 1-word row)
        return [Memory("row", "buffer", max(p["W"] * p["C"], 2), p["WIDTH"]), _out_fifo(p["WIDTH"])]
    if module == "fpgagen_pad":
        return [_out_fifo(p["WIDTH"])]
    return []  # fork: registers only


def multipliers(module: str, p: dict) -> int:
    """int8 x int8 products per cycle of one instance."""
    return p["PE"] * p["SIMD"] * p.get("KU", 1) if module in ("fpgagen_conv2d", "fpgagen_dense") else 0


#: block RAM shapes per device family, (depth, width) per aspect ratio
BLOCK_SHAPES = {
    "ice40": [(256, 16), (512, 8), (1024, 4), (2048, 2)],  # SB_RAM40_4K
    "ecp5": [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)],  # DP16KD
    "xc7": [(512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1)],  # RAMB36E1
}
#: the shallowest buffer Yosys puts in a block RAM rather than in logic (flip-flops on the
#: iCE40, which has no LUT RAM; LUT RAM on ECP5 and 7-series), read off its memory_libmap
#: decisions on the benchmark designs; the small ROMs (biases, reciprocals) stay in logic, the
#: weight ROMs are forced into blocks. An estimate, an upper bound where Yosys prunes constant
#: bit columns of a ROM
MIN_BLOCK_DEPTH = {"ice40": 8, "ecp5": 65, "xc7": 65}


def blocks(mem: Memory, family: str) -> int:
    """Block RAMs ``mem`` takes on ``family`` (0 when it stays in logic)."""
    if not mem.block and (mem.kind == "rom" or mem.depth < MIN_BLOCK_DEPTH[family]):
        return 0
    one = min(math.ceil(mem.depth / d) * math.ceil(mem.width / w) for d, w in BLOCK_SHAPES[family])
    return one * mem.count


def mac_layer_blocks(q, layer, pe: int, simd: int, family: str, taps: int = 1) -> int:
    """Block RAMs of a conv/dense layer's weight ROM and input buffer at ``pe`` x ``simd`` (x ``taps``, a conv's KU) (the
    memories that grow with its parallelism), from :func:`memories` of the module's parameters."""
    x_bits = layer.in_fmts[0].word
    p = {"PE": pe, "SIMD": simd, "W_WIDTH": layer.w_fmt.word if layer.w_fmt is not None else 8,
         "IN_WIDTH": x_bits, "BIAS_WIDTH": 0, "OUT_WIDTH": 0}  # the bias ROM and outputs stay in logic
    if layer.op == "conv":
        c, h, w = q.shapes[layer.inputs[0]]
        a = layer.params
        p.update(CI=c, CO=q.shapes[layer.output][0], GROUPS=a.groups, H=h, W=w, KU=taps,
                 KH=a.kernel[0], KW=a.kernel[1], SH=a.stride[0], SW=a.stride[1],
                 PAD_T=a.pads[0], PAD_L=a.pads[1], PAD_B=a.pads[2], PAD_R=a.pads[3])
        module = "fpgagen_conv2d"
    else:
        p.update(N_IN=q.shapes[layer.inputs[0]][0], N_OUT=q.shapes[layer.output][0])
        module = "fpgagen_dense"
    return sum(blocks(m, family) for m in memories(module, p) if m.name in ("wrom", "lbuf", "xbuf"))
