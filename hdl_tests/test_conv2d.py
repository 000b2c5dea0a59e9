"""fpgagen_conv2d against fpgagen.golden.kernels.conv_acc + requantize, many parameter sets in one build.

One Verilator build: a generated wrapper holds one fpgagen_conv2d per parameter set, each on its
own pair of AXI streams (``<case>_s_axis_*`` / ``<case>_m_axis_*``), its parameters and ROM files
from :func:`fpgagen.backends.rtl.conv2d.conv2d_instance`. The sweep covers kernels 1/3/5 (and
non-square ones), strides 1/2, padding 0/1/2 and an asymmetric one (and windows lying in the
padding only), odd map sizes, a 1-D conv, channel counts that are not powers of two (Ci=3, Co=5,
...) with PE/SIMD 1 and > 1, signed and unsigned inputs, ReLU clamps (to an unsigned and to a
signed format), compute-, input- and output-bound layers, grouped and depthwise convs
(depthwise 3x3 pad 1, depthwise stride 2, depthwise with 2 outputs per group and PE 2, groups=2
with PE 2 x SIMD 3, an input-bound grouped 1x1 with PE 3 x SIMD 4), a fused LeakyRelu, and one layer lowered from
a float graph by calibrate -> lower. Frames: random values, all minimum (-128 / 0), all maximum
(127 / 255) and a random mix of both extremes; weights include whole output channels of -128
and of 127. Every case streams its frames back to back three
times: without stalls, where the cycles between consecutive output tlasts are checked against
the builder's analytic cycles per frame (within 10 %); with random source idle cycles and sink
back-pressure (30 % each); and with heavy ones (50 % idle, 85 % back-pressure).

A third build (``GROUP_CASES``) sweeps PE lanes over whole groups (PE a multiple of Co/groups:
the line buffer's lanes, one per group of a pass): depthwise convs at PE 2..16 (all channels in
one pass), with channel multipliers 2 and 4, grouped convs with 2..3 inputs per group and SIMD
1/2, strides 1/2, asymmetric padding, KU 3/5 taps with lanes, output- and input-bound layers, a
map of one column and a LeakyRelu; measured cycles per frame equal the analytic ones exactly.

A second build (``TAP_CASES``) sweeps kernel-tap unrolling (KU = 1, 2, 3, 5 with KW 2, 3, 4, 5):
1-channel and multi-channel inputs, strides 1/2 (a horizontal stride that moves the first column's
bank), asymmetric padding and padding wider than KU, a map narrower than KU, depthwise convs, an
output- and an input-bound layer, a LeakyRelu and a lowered layer, under the same three pause
patterns; there the measured cycles per frame must equal the analytic ones exactly.

A fifth build (``PAIR_CASES``) computes the products two per fpgagen_mul8x8x2 (``DSP_PAIR``, the
iCE40 SB_MAC16's 8x8 mode): odd and even product counts, u8 and s8 inputs at their extremes,
taps, depthwise lanes, groups, per-channel formats, a LeakyRelu and a lowered layer; bit-exact
under the three pause patterns at exactly the analytic cycles per frame.
"""

from __future__ import annotations

from dataclasses import replace

import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl.conv2d import conv2d_instance, conv2d_line_rows
from fpgagen.errors import BackendError
from fpgagen.golden.kernels import conv_acc, requantize
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops._mac import set_mac_widths
from fpgagen.ops.activation import LeakyInt
from fpgagen.ops.conv import ConvParams

SOURCES = [rtlsim.LIB / f for f in ("fpgagen_conv2d.v", "fpgagen_mac_out.v", "fpgagen_requant_lane.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v",
                                    "fpgagen_fifo.v", "fpgagen_mul8x8x2.v")]
TOP = "conv2d_sweep"
N_FRAMES = 4
TOLERANCE = 0.10


@dataclass(frozen=True)
class Case:
    name: str
    ci: int
    co: int
    h: int
    w: int
    kernel: tuple
    stride: tuple
    pads: tuple      # top, left, bottom, right
    pe: int
    simd: int
    signed: bool     # input format signed (s8) or unsigned (u8)
    act: str = ""    # "" (s8 out), "relu_u" (u8 out, [0, 255]), "relu_s" (s8 out, [0, 127])
    lowered: bool = False  # build the layer by calibrate -> lower from a float graph
    groups: int = 1  # grouped / depthwise conv: weights [co, ci/groups, kh, kw]
    leaky: tuple | None = None  # a fused LeakyRelu (A, Fal)
    taps: int = 1    # KU: kernel taps of one row per cycle (divides KW)
    rounding: str = "nearest-away"  # "nearest-even": ROUND_EVEN (an imported model's quantizer)
    spread: int = 0  # per-channel weight formats: channel shifts s_c = SHIFT - d_c, d_c in 0..spread
    pairs: bool | int = False  # DSP_PAIR: 1 two products per fpgagen_mul8x8x2 (the iCE40 SB_MAC16's 8x8 mode), 2 two PE lanes sharing an input (DSP48E1)
    ew_in: int = 1   # EW_IN: input elements per beat (divides SIMD, or SIMD x a divisor of the lanes)
    ew_out: int = 1  # EW_OUT: output elements per beat (divides PE)


CASES = [
    # 3x3, pad 1, odd 5x7 map, Ci=3 / Co=5, PE 1: compute-bound
    Case("k3s1p1", 3, 5, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), 1, 3, True),
    # 3x3 stride 2, unsigned input, ReLU to u8, PE 3 x SIMD 2
    Case("k3s2p1", 4, 6, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1), 3, 2, False, "relu_u"),
    # 5x5 no padding (the line buffer holds 10 rows of the 7-row map), ReLU on a signed format
    Case("k5s1p0", 2, 4, 7, 6, (5, 5), (1, 1), (0, 0, 0, 0), 2, 1, True, "relu_s"),
    # 5x5 stride 2 pad 2 on an even map
    Case("k5s2p2", 3, 2, 9, 8, (5, 5), (2, 2), (2, 2, 2, 2), 1, 3, False),
    # 1x1: input-bound (160 input beats, 20 compute cycles)
    Case("k1s1", 8, 4, 4, 5, (1, 1), (1, 1), (0, 0, 0, 0), 4, 8, True),
    # 1x1 stride 2 (odd rows and columns never read), compute ~ input
    Case("k1s2", 3, 6, 5, 7, (1, 1), (2, 2), (0, 0, 0, 0), 2, 1, False, "relu_u"),
    # non-square kernel, strides 2x1, asymmetric padding (top 0, left 1, bottom 1, right 0)
    Case("asym", 1, 3, 6, 5, (3, 2), (2, 1), (0, 1, 1, 0), 1, 1, True),
    # 2x2 stride 2, Co=16 in parallel: output-bound
    Case("k2s2", 2, 16, 6, 6, (2, 2), (2, 2), (0, 0, 0, 0), 16, 2, True),
    # compute = input (9 cycles per pixel each): the hardest overlap
    Case("k3bal", 9, 2, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), 2, 9, True),
    # 5x5 over a 5x5 map (one output pixel): the line buffer double-buffers the frame
    Case("k5full", 2, 3, 5, 5, (5, 5), (1, 1), (0, 0, 0, 0), 1, 1, True),
    # input-bound, the last input row is never read: the compute side finishes a frame first
    Case("k3s2p0", 4, 2, 8, 8, (3, 3), (2, 2), (0, 0, 0, 0), 2, 4, True),
    # padding 2 around a 2x2 kernel: windows in the padding only (bias-only outputs)
    Case("bigpad", 1, 2, 3, 3, (2, 2), (1, 1), (2, 2, 2, 2), 2, 1, True),
    # a 1-D conv as a (C, 1, W) map: kernel 1x3, stride 1x2
    Case("conv1d", 3, 4, 1, 9, (1, 3), (1, 2), (0, 1, 0, 1), 2, 3, True),
    # a layer lowered from a float graph (calibrated formats, fused ReLU)
    Case("lowered", 3, 4, 7, 7, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, False, "relu_u", lowered=True),
    # depthwise 3x3 pad 1 (Ci = Co = groups = 4: one channel per group, so PE 1 x SIMD 1)
    Case("dw3", 4, 4, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True, groups=4),
    # depthwise stride 2, unsigned input, ReLU to u8
    Case("dws2", 3, 3, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), 1, 1, False, "relu_u", groups=3),
    # depthwise, 2 outputs per channel (Co = 2*Ci), PE 2, asymmetric padding, ReLU on s8
    Case("dwx2", 4, 8, 5, 5, (3, 3), (1, 1), (1, 0, 1, 2), 2, 1, True, "relu_s", groups=4),
    # groups=2: Ci=6 (3 per group), Co=4 (2 per group), PE 2 x SIMD 3
    Case("grp2", 6, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, False, groups=2),
    # grouped 1x1, input-bound: Ci=8 / Co=6 in 2 groups, PE 3 x SIMD 4
    Case("grp1x1", 8, 6, 4, 5, (1, 1), (1, 1), (0, 0, 0, 0), 3, 4, True, groups=2),
    # a fused LeakyRelu 0.1 (A = 205, Fal = 11) on a 3x3 conv, PE 2 x SIMD 3
    Case("leaky", 3, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, True, leaky=(205, 11)),
    Case("even", 3, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, True, "relu_u", rounding="nearest-even"),
    Case("evenlk", 2, 4, 4, 5, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, False, leaky=(205, 11), rounding="nearest-even"),
]

#: kernel-tap unrolling (KU): every case's measured cycles per frame must equal the analytic ones
TAP_CASES = [
    # KU 1 on a 1-channel 3x3 (today's schedule) and the same layer at KU 3
    Case("u1k3", 1, 4, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), 2, 1, True, taps=1),
    Case("u3k3", 1, 4, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), 2, 1, True, taps=3),
    # a 1-channel 5x5 pad 2 at KU 5 (the first layer of an MNIST-like model), odd 9x11 map
    Case("u5k5", 1, 6, 9, 11, (5, 5), (1, 1), (2, 2, 2, 2), 3, 1, False, "relu_u", taps=5),
    # KU 5, stride 2, asymmetric padding, Ci 2 x SIMD 2
    Case("u5s2", 2, 3, 9, 10, (5, 5), (2, 2), (2, 1, 1, 2), 1, 2, True, taps=5),
    # KU 3, horizontal stride 2 (the first column's bank changes by 2 per window), pads 0/2/1/0
    Case("u3s12", 3, 4, 7, 8, (3, 3), (1, 2), (0, 2, 1, 0), 2, 3, True, taps=3),
    # KU 2 on a 3x4 kernel, Ci 4 x SIMD 2, uneven padding, a map width not divisible by KU
    Case("u2k34", 4, 2, 6, 7, (3, 4), (1, 1), (1, 1, 1, 2), 1, 2, True, "relu_s", taps=2),
    # KU 2, padding left 3 > KU, a 1x2 kernel (a partly padded row: slots before column 0)
    Case("u2pad", 2, 3, 3, 5, (1, 2), (1, 1), (0, 3, 0, 3), 3, 1, True, taps=2),
    # KU 3 on a map of 2 columns: bank 2 is never written, a window of padding and 2 columns
    Case("u3narrow", 2, 2, 4, 2, (3, 3), (1, 1), (1, 1, 1, 1), 1, 2, False, taps=3),
    # KU 3 on a 1x1 map (one column, padding on both sides; found by tools/fuzz.py seed 111)
    Case("u3w1", 4, 5, 1, 1, (3, 3), (1, 1), (1, 2, 1, 2), 5, 2, False, taps=3),
    # depthwise 3x3 at KU 3 (Ci = Co = groups = 4)
    Case("u3dw", 4, 4, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True, groups=4, taps=3),
    # depthwise stride 2, 2 outputs per group, PE 2, KU 5
    Case("u5dws2", 2, 4, 9, 9, (5, 5), (2, 2), (2, 2, 2, 2), 2, 1, False, "relu_u", groups=2, taps=5),
    # output-bound: Co 8 in parallel, 3 cycles of taps per pixel
    Case("u3out", 1, 8, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), 8, 1, True, taps=3),
    # input-bound: 4 input beats per pixel, 3 compute cycles
    Case("u3in", 4, 2, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 2, 4, True, taps=3),
    # a fused LeakyRelu at KU 3
    Case("u3leaky", 3, 4, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 2, 1, True, leaky=(205, 11), taps=3),
    # a layer lowered from a float graph at KU 5
    Case("u5low", 1, 3, 8, 8, (5, 5), (1, 1), (2, 2, 2, 2), 1, 1, False, "relu_u", lowered=True, taps=5),
]

#: PE lanes spanning groups (PE a multiple PG*Co/groups of a group's outputs: PG line buffer
#: lanes, each PE lane reading its own group's channels): measured cycles == analytic ones exactly
GROUP_CASES = [
    # depthwise, 8 channels, PE 4: two passes of 4 channels per pixel
    Case("g_dw4", 8, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, groups=8),
    # depthwise, PE 8 = all channels in one pass, stride 2, unsigned input, ReLU to u8
    Case("g_dw8s2", 8, 8, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), 8, 1, False, "relu_u", groups=8),
    # depthwise with 2 outputs per channel (Co = 2*Ci), PE 4 (2 groups per pass), asymmetric pads
    Case("g_dwx2", 4, 8, 5, 5, (3, 3), (1, 1), (1, 0, 1, 2), 4, 1, True, "relu_s", groups=4),
    # groups=4: Ci 8 (2 per group), Co 8 (2 per group), PE 4 (2 groups) x SIMD 2
    Case("g_grp4", 8, 8, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 4, 2, True, groups=4),
    # groups=3: Ci 9 (3 per group) with SIMD 1 (3 words per group), Co 6, PE 6 (all groups)
    Case("g_grp3", 9, 6, 4, 5, (3, 3), (1, 1), (0, 1, 1, 0), 6, 1, False, groups=3),
    # groups=4, Ci 8 / Co 4 (1 output, 2 inputs per group), PE 2 x SIMD 2, 5x5 stride 2 pad 2
    Case("g_grp5s2", 8, 4, 8, 9, (5, 5), (2, 2), (2, 2, 2, 2), 2, 2, True, groups=4),
    # depthwise 6 channels, PE 3 x KU 3 (lanes and banks together)
    Case("g_dwku3", 6, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 3, 1, True, groups=6, taps=3),
    # groups=2, Ci 4 / Co 2, PE 2 x SIMD 2 x KU 5, stride 2, asymmetric padding
    Case("g_grpku5", 4, 2, 7, 9, (5, 5), (2, 2), (2, 1, 1, 2), 2, 2, False, "relu_u", groups=2, taps=5),
    # depthwise x4 (Co 16 = 4*Ci), PE 8 x KU 3: output-bound
    Case("g_dwout", 4, 16, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 8, 1, True, groups=4, taps=3),
    # depthwise 16 channels, PE 16 x KU 3, 1-row kernel: input-bound (16 beats per pixel, 1 cycle)
    Case("g_dwin", 16, 16, 4, 6, (1, 3), (1, 1), (0, 1, 0, 1), 16, 1, True, groups=16, taps=3),
    # depthwise 1x1 on a map of one column, PE 2
    Case("g_dw1x1", 4, 4, 3, 1, (1, 1), (1, 1), (0, 0, 0, 0), 2, 1, True, groups=4),
    # a fused LeakyRelu, depthwise PE 4
    Case("g_dwleaky", 4, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, leaky=(205, 11), groups=4),
]


#: per-channel weight formats: each lane's pre-alignment from the channel table (PE lanes over
#: several channel groups, depthwise and grouped, a LeakyRelu, taps, a lowered layer)
PC_CASES = [
    Case("pc3x2", 4, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 3, 2, True, spread=6),
    Case("pcdwx2", 4, 8, 5, 5, (3, 3), (1, 1), (1, 0, 1, 2), 2, 1, False, "relu_u", groups=4, spread=8),
    Case("pcdw", 5, 5, 6, 5, (3, 3), (2, 2), (1, 1, 1, 1), 1, 1, True, "relu_s", groups=5, spread=3),
    Case("pcgrp", 6, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, True, groups=2, spread=5),
    Case("pcleaky", 3, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1, 3, True, leaky=(205, 11), spread=4),
    Case("pcu3", 1, 8, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, taps=3, spread=7),
    Case("pclow", 3, 6, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), 2, 3, False, "relu_u", lowered=True, spread=6),
]


#: two products per fpgagen_mul8x8x2 (DSP_PAIR): odd and even product counts (a pair's top half
#: empty; one product alone), u8 inputs (255 x -128) and s8 ones (-128 x -128), a 1-channel 5x5 at
#: KU 5 (an MNIST first layer), depthwise lanes (pairs spanning input groups), grouped with taps,
#: per-channel formats with a LeakyRelu, a lowered layer: bit-exact, measured cycles == analytic
#: wide streams: EW_IN input and EW_OUT output elements per beat (issue 14)
EW_CASES = [
    # the output is the bound at one element per beat: 24 channels x 8x8, PE 12 x SIMD 8
    Case("ewout", 8, 24, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), 12, 8, True, ew_in=2, ew_out=3),
    Case("ewio", 4, 8, 6, 7, (3, 3), (2, 1), (1, 1, 0, 1), 8, 4, False, "relu_u", ew_in=4, ew_out=8),
    Case("ewku", 2, 6, 7, 9, (3, 3), (1, 1), (1, 1, 1, 1), 6, 2, True, "relu_s", taps=3, ew_in=2, ew_out=2),
    Case("ewgrp", 8, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 2, True, groups=2, ew_in=2, ew_out=4),
    Case("ewpc", 4, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 6, 4, True, leaky=(205, 11), spread=6, ew_in=4, ew_out=6),
    Case("ewx2", 4, 6, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1), 6, 2, False, "relu_u", pairs=True, ew_in=2, ew_out=3),
    # stream-bound: the output (512 elements / 2 per beat = 256 > 64 compute) and the input (512 / 2)
    Case("ewobnd", 1, 8, 8, 8, (1, 1), (1, 1), (0, 0, 0, 0), 8, 1, True, ew_out=2),
    Case("ewibnd", 8, 1, 8, 8, (1, 1), (1, 1), (0, 0, 0, 0), 1, 8, True, ew_in=2),
    Case("ewmax", 8, 8, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), 8, 8, False, "relu_u", ew_in=8, ew_out=8),
    # EW_IN > SIMD: whole words of several line buffer lanes per beat (one word per group)
    # depthwise 8 channels, PE 8 (8 lanes), all 8 channels in one beat, stride 2, u8 in
    Case("ewdw8", 8, 8, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), 8, 1, False, "relu_u", groups=8, ew_in=8, ew_out=8),
    # depthwise, PE 4 of 8 channels (two passes per pixel), 2 lanes per beat
    Case("ewdw2", 8, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, groups=8, ew_in=2, ew_out=4),
    # depthwise 16, 1x3 kernel at KU 3: input-bound (16 channels / 4 per beat > 1 compute cycle)
    Case("ewdwin", 16, 16, 4, 6, (1, 3), (1, 1), (0, 1, 0, 1), 16, 1, True, groups=16, taps=3, ew_in=4, ew_out=8),
    # depthwise 6 channels, PE 6 x KU 3, 3 lanes per beat (lanes 0 and 3 start a beat)
    Case("ewdwku", 6, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 6, 1, True, "relu_s", groups=6, taps=3, ew_in=3, ew_out=2),
    # depthwise x2 (Co = 2*Ci, 2 outputs per group), PE 4 = 2 lanes, asymmetric pads
    Case("ewdwx2", 4, 8, 5, 5, (3, 3), (1, 1), (1, 0, 1, 2), 4, 1, True, groups=4, ew_in=2, ew_out=2),
    # groups 4 of 2 channels, SIMD 2 (one word per group), PE 4 = 2 lanes: 4 elements a beat
    Case("ewgrpw", 8, 8, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 4, 2, True, groups=4, ew_in=4, ew_out=4),
    # depthwise lanes, two products per DSP block, a LeakyRelu with per-channel formats
    Case("ewdwx2p", 8, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, groups=8, pairs=True,
         leaky=(205, 11), spread=5, ew_in=4, ew_out=2),
]

PAIR_CASES = [
    Case("x2k5", 1, 6, 9, 11, (5, 5), (1, 1), (2, 2, 2, 2), 3, 1, False, "relu_u", taps=5, pairs=True),
    Case("x2u", 4, 6, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1), 3, 2, False, "relu_u", pairs=True),
    Case("x2s", 3, 5, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), 1, 3, True, pairs=True),
    Case("x2dw", 8, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 4, 1, True, groups=8, pairs=True),
    Case("x2gku", 4, 2, 7, 9, (5, 5), (2, 2), (2, 1, 1, 2), 2, 2, False, "relu_u", groups=2, taps=5, pairs=True),
    Case("x2pc", 4, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 3, 2, True, leaky=(205, 11), spread=6, pairs=True),
    Case("x2low", 1, 3, 8, 8, (5, 5), (1, 1), (2, 2, 2, 2), 1, 1, False, "relu_u", lowered=True, taps=5, pairs=True),
    Case("x2one", 2, 3, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True, pairs=True),
    # DSP_PAIR 2 (the 7-series DSP48E1): PE lanes 2q and 2q+1 share their input element
    Case("xsk5", 1, 6, 9, 11, (5, 5), (1, 1), (2, 2, 2, 2), 6, 1, False, "relu_u", taps=5, pairs=2),
    Case("xsu", 4, 6, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1), 2, 2, False, "relu_u", pairs=2),
    Case("xss", 3, 4, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), 4, 3, True, pairs=2),
    # grouped, 4 outputs per group, PE 8 over 2 lanes (4 lanes per input group: 2 pairs each)
    Case("xsgrp", 4, 8, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), 8, 2, True, groups=2, pairs=2),
    # depthwise x2 (2 outputs per channel), PE 4 over 2 lanes: each pair is one channel's two outputs
    Case("xsdwx2", 4, 8, 5, 5, (3, 3), (1, 1), (1, 0, 1, 2), 4, 1, True, "relu_s", groups=4, pairs=2),
    Case("xspc", 4, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 6, 2, True, leaky=(205, 11), spread=6, pairs=2),
    Case("xsew", 4, 8, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), 8, 4, False, "relu_u", pairs=2, ew_in=2, ew_out=4),
]


# ---- layers and stimulus -------------------------------------------------------------------------
def out_size(c: Case) -> tuple[int, int]:
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = c.kernel, c.stride, c.pads
    return (c.h + pt + pb - kh) // sh + 1, (c.w + pl + pr - kw) // sw + 1


def acc_bounds(weight: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[int, int]:
    """The exact range of every accumulator over all inputs of ``x_fmt``."""
    w = weight.reshape(weight.shape[0], -1).astype(np.int64)
    pos, neg = np.where(w > 0, w, 0).sum(axis=1), np.where(w < 0, w, 0).sum(axis=1)
    hi = pos * x_fmt.max_int + neg * x_fmt.min_int + bias
    lo = pos * x_fmt.min_int + neg * x_fmt.max_int + bias
    return int(lo.min()), int(hi.max())


def signed_width(lo: int, hi: int) -> int:
    width = 2
    while not (-(1 << (width - 1)) <= lo and hi < (1 << (width - 1))):
        width += 1
    return width


def frames_for(c: Case, x_fmt: Format, rng: np.random.Generator, random_frame=None) -> np.ndarray:
    """N_FRAMES input maps: random, all minimum, all maximum, random extremes."""
    lo, hi = x_fmt.min_int, x_fmt.max_int
    shape = (c.ci, c.h, c.w)
    first = rng.integers(lo, hi + 1, size=shape) if random_frame is None else random_frame
    frames = [first, np.full(shape, lo), np.full(shape, hi), np.where(rng.random(shape) < 0.5, lo, hi)]
    return np.stack(frames[:N_FRAMES]).astype(np.int64)


def hand_layer(c: Case, rng: np.random.Generator) -> tuple[QGraph, QLayer, np.ndarray]:
    """A QLayer built by hand: full-range int8 weights (output channel 0 all -128, channel 1 all
    127), random biases, the exact accumulator width, a shift that spreads the random frame's
    outputs over the range (the extreme frames saturate)."""
    x_fmt = Format.parse("s8.4" if c.signed else "u8.4")
    w_fmt = Format.parse("s8.6")
    kh, kw = c.kernel
    weight = rng.integers(-128, 128, size=(c.co, c.ci // c.groups, kh, kw))
    weight[0] = -128
    if c.co > 1:
        weight[1] = 127
    bias = rng.integers(-(1 << 12), 1 << 12, size=c.co)
    x = frames_for(c, x_fmt, rng)
    acc = conv_acc(x[:1], weight, bias, c.kernel, c.stride, c.pads, c.groups)
    shift = max(1, int(np.median(np.abs(acc))).bit_length() - 5)
    out_fmt = Format.parse("u8.3" if c.act == "relu_u" else "s8.3")
    lo, hi = {"": (-128, 127), "relu_u": (0, 255), "relu_s": (0, 127)}[c.act]
    oh, ow = out_size(c)
    layer = QLayer(
        name=f"/{c.name}/Conv", op="conv", inputs=["x"], output="y", in_fmts=[x_fmt], out_fmt=out_fmt,
        params=ConvParams(kernel=c.kernel, stride=c.stride, pads=c.pads, groups=c.groups),
        activation="relu" if c.act else None, weight=weight, w_fmt=w_fmt, bias=bias,
        b_fmt=Format.parse("s16.10"), acc_frac=x_fmt.frac + w_fmt.frac,
        acc_width=signed_width(*acc_bounds(weight, bias, x_fmt)), shift=shift, lo=lo, hi=hi,
        leaky=None if c.leaky is None else LeakyInt(*c.leaky), rounding=c.rounding,
    )
    if c.spread:  # per-channel: channel c's weights d_c bits coarser, its shift d_c smaller
        d = rng.integers(0, c.spread + 1, c.co)
        d[0], d[-1] = c.spread, 0
        layer.shifts = np.int64(shift) - d
        layer.w_fmts = tuple(Format(True, 8, w_fmt.frac - int(v)) for v in d)
        set_mac_widths(layer)
    q = QGraph(c.name, "x", "y", [layer], {"x": (c.ci, c.h, c.w), "y": (c.co, oh, ow)},
               {"x": x_fmt, "y": out_fmt})
    return q, layer, x


def lowered_layer(c: Case, rng: np.random.Generator) -> tuple[QGraph, QLayer, np.ndarray]:
    """A one-conv float graph, calibrated on random data and lowered to the integer IR."""
    from fpgagen.golden.model import run_int
    from fpgagen.ir.graph import Graph, Node
    from fpgagen.quant.calibrate import calibrate
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower

    oh, ow = out_size(c)
    weight = rng.normal(0, 0.4, (c.co, c.ci, *c.kernel))
    if c.spread:  # each output channel scaled by its own power of two (as BN folding does)
        weight *= np.exp2(rng.integers(-c.spread, 1, c.co)).reshape(-1, 1, 1, 1)
    node = Node("conv", "conv", ["x"], "y", ConvParams(kernel=c.kernel, stride=c.stride, pads=c.pads, groups=1),
                weight, rng.normal(0, 0.2, c.co), "relu" if c.act else None, ["Conv_0"], "Conv")
    graph = Graph(c.name, "x", "y", [node], {"x": (c.ci, c.h, c.w), "y": (c.co, oh, ow)},
                  onnx_output_shape=(c.co, oh, ow)).validate()
    xf = rng.uniform(0, 1, (16, c.ci, c.h, c.w)).astype(np.float32)
    cal = calibrate(graph, xf, progress=False)
    q, _ = lower(graph, choose_formats(cal, QuantOptions(per_channel=bool(c.spread))))
    layer = q.layers[0]
    assert layer.per_channel == bool(c.spread)
    x_fmt = layer.in_fmts[0]
    xq = np.clip(np.round(xf[0] * 2.0**x_fmt.frac), x_fmt.min_int, x_fmt.max_int).astype(np.int64)
    x = frames_for(c, x_fmt, rng, random_frame=xq)
    # the golden model of the whole (one-layer) graph agrees with the kernels used below
    want = requantize(conv_acc(x, layer.weight, layer.bias, c.kernel, c.stride, c.pads), layer.channel_shifts,
                      layer.lo, layer.hi)
    assert run_int(q, x).tolist() == want.tolist()
    return q, layer, x


def build_case(c: Case, index: int):
    rng = np.random.default_rng(1000 + index)
    q, layer, x = (lowered_layer if c.lowered else hand_layer)(c, rng)
    inst = conv2d_instance(q, layer, c.pe, c.simd, prefix=c.name, taps=c.taps, pairs=c.pairs,
                           ew_in=c.ew_in, ew_out=c.ew_out)
    assert inst.params.get("DSP_PAIR", 0) == int(c.pairs)
    acc = conv_acc(x, layer.weight, layer.bias, c.kernel, c.stride, c.pads, c.groups)
    y = requantize(acc, layer.channel_shifts, layer.lo, layer.hi, layer.leaky, layer.rounding)
    assert (acc >= -(1 << (layer.acc_width - 1))).all() and (acc < (1 << (layer.acc_width - 1))).all()
    frames_in = [f.transpose(1, 2, 0).ravel().tolist() for f in x]     # HWC stream order
    frames_out = [f.transpose(1, 2, 0).ravel().tolist() for f in y]
    return layer, inst, frames_in, frames_out


def sweep(cases=CASES, tolerance=TOLERANCE, offset=0):
    """Wrapper instances, the stream case and the ROM files of every case."""
    instances, mems = [], {}
    case = {"inputs": {}, "outputs": {}, "cycles": {}, "frames": N_FRAMES, "cycle_tolerance": tolerance, "seed": 7}
    for i, c in enumerate(cases):
        layer, inst, frames_in, frames_out = build_case(c, i + offset)
        wi, wo = inst.params["IN_WIDTH"], inst.params["OUT_WIDTH"]
        instances.append(rtlsim.stream_instance(c.name, inst, wi, wo))
        mems.update(inst.mems)
        case["inputs"][f"{c.name}_s_axis"] = [frames_in, wi, c.ew_in]
        case["outputs"][f"{c.name}_m_axis"] = [frames_out, wo, bool(layer.lo < 0), c.ew_out]
        case["cycles"][f"{c.name}_m_axis"] = inst.cycles
    return instances, case, mems


# ---- cocotb side: every case's frames back to back without pauses (cycles per frame within
# 10 % of the analytic figure), with random idle cycles and back-pressure (30 % each) and with
# heavy ones (50 % idle, 85 % back-pressure) ------------------------------------------------------
stream = rtlsim.phase_tests(("free", "random", "throttle"))


# ---- pytest side -------------------------------------------------------------------------------
def test_conv2d_sweep(tmp_path):
    instances, case, mems = sweep()
    rtlsim.run_sweep(tmp_path, TOP, instances, case, SOURCES, "test_conv2d", mems,
                     comment="one fpgagen_conv2d per parameter set of test_conv2d.py")


def test_conv2d_taps_sweep(tmp_path):
    """Kernel-tap unrolling: every KU case bit-exact under the three pause patterns, and its
    measured cycles per frame (frames back to back, no pauses) equal to the analytic figure."""
    instances, case, mems = sweep(TAP_CASES, 0.0, len(CASES))
    measured = rtlsim.run_sweep(tmp_path, "conv2d_taps_sweep", instances, case, SOURCES, "test_conv2d", mems,
                                comment="one fpgagen_conv2d per KU parameter set of test_conv2d.py")
    assert measured == case["cycles"]


def test_conv2d_groups_sweep(tmp_path):
    """PE lanes over whole groups (depthwise and grouped): every case bit-exact under the three
    pause patterns, and its measured cycles per frame equal to the analytic figure."""
    instances, case, mems = sweep(GROUP_CASES, 0.0, len(CASES) + len(TAP_CASES))
    measured = rtlsim.run_sweep(tmp_path, "conv2d_groups_sweep", instances, case, SOURCES, "test_conv2d", mems,
                                comment="one fpgagen_conv2d per group-lane parameter set of test_conv2d.py")
    assert measured == case["cycles"]


def test_conv2d_per_channel_sweep(tmp_path):
    """Per-channel weight formats: every case bit-exact under the three pause patterns."""
    instances, case, mems = sweep(PC_CASES, TOLERANCE, len(CASES) + len(TAP_CASES))
    rtlsim.run_sweep(tmp_path, "conv2d_pc_sweep", instances, case, SOURCES, "test_conv2d", mems,
                     comment="one fpgagen_conv2d per per-channel parameter set of test_conv2d.py")


def test_conv2d_pairs_sweep(tmp_path):
    """Two products per fpgagen_mul8x8x2: every case bit-exact under the three pause patterns, and
    its measured cycles per frame equal to the analytic figure (the pairs keep the timing)."""
    offset = len(CASES) + len(TAP_CASES) + len(GROUP_CASES) + len(PC_CASES)
    instances, case, mems = sweep(PAIR_CASES, 0.0, offset)
    measured = rtlsim.run_sweep(tmp_path, "conv2d_pairs_sweep", instances, case, SOURCES, "test_conv2d", mems,
                                comment="one fpgagen_conv2d per DSP_PAIR parameter set of test_conv2d.py")
    assert measured == case["cycles"]


def test_conv2d_wide_streams_sweep(tmp_path):
    """EW_IN / EW_OUT elements per beat: every case bit-exact under the three pause patterns, and
    its measured cycles per frame equal to the analytic max(compute, input / EW_IN, output / EW_OUT)."""
    offset = len(CASES) + len(TAP_CASES) + len(GROUP_CASES) + len(PC_CASES) + len(PAIR_CASES)
    instances, case, mems = sweep(EW_CASES, 0.0, offset)
    measured = rtlsim.run_sweep(tmp_path, "conv2d_ew_sweep", instances, case, SOURCES, "test_conv2d", mems,
                                comment="one fpgagen_conv2d per wide-stream parameter set of test_conv2d.py")
    assert measured == case["cycles"]


def test_taps_cycles_model():
    """conv2d_cycles: MACs / (PE*SIMD*KU) or the streams; KU = 1 is the schedule without taps."""
    from fpgagen.backends.rtl.conv2d import conv2d_cycles

    args = (1, 6, 28, 28, (5, 5), (1, 1), (2, 2, 2, 2), 6, 1)
    assert conv2d_cycles(*args) == conv2d_cycles(*args, 1, 1) == 28 * 28 * 25
    assert conv2d_cycles(*args, 1, 5) == 28 * 28 * 6  # output-bound: 6 outputs per pixel, 5 cycles
    assert conv2d_cycles(1, 6, 28, 28, (5, 5), (1, 1), (2, 2, 2, 2), 1, 1, 1, 5) == 28 * 28 * 6 * 5


ALL_CASES = CASES + TAP_CASES + GROUP_CASES + PC_CASES + PAIR_CASES + EW_CASES


@pytest.mark.parametrize("c", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_conv2d_lint(c):
    _, inst, _, _ = build_case(c, ALL_CASES.index(c))
    rtlsim.assert_lint_clean("fpgagen_conv2d", SOURCES, inst.params)


def test_conv2d_iverilog(tmp_path):
    instances, _, _ = sweep()
    instances += sweep(TAP_CASES, 0.0, len(CASES))[0]
    instances += sweep(GROUP_CASES, 0.0, len(CASES) + len(TAP_CASES))[0]
    instances += sweep(PC_CASES, 0.0, len(CASES) + len(TAP_CASES))[0]
    instances += sweep(PAIR_CASES, 0.0, len(CASES) + len(TAP_CASES) + len(GROUP_CASES) + len(PC_CASES))[0]
    instances += sweep(EW_CASES, 0.0, len(CASES) + len(TAP_CASES) + len(GROUP_CASES) + len(PC_CASES)
                       + len(PAIR_CASES))[0]
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_conv2d_yosys(tmp_path):
    """Yosys elaborates the module and infers three memories (line buffer, weight and bias ROMs)."""
    _, inst, _, _ = build_case(CASES[1], 1)
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_conv2d", SOURCES, inst.params, inst.mems, memories=3)


def test_conv2d_yosys_taps(tmp_path):
    """With KU = 5 Yosys infers the weight and bias ROMs and five line buffer banks."""
    c = TAP_CASES[3]
    _, inst, _, _ = build_case(c, len(CASES) + 3)
    assert inst.params["KU"] == 5
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_conv2d", SOURCES, inst.params, inst.mems, memories=2 + 5)


def test_conv2d_yosys_lanes(tmp_path):
    """A depthwise conv at PE 3 x KU 3 (3 groups per pass): Yosys infers the weight and bias ROMs
    and 3 x 3 line buffer RAMs (KU banks of PG lanes), as the resource model counts them."""
    from fpgagen.backends.rtl.resources import memories

    i = next(i for i, c in enumerate(GROUP_CASES) if c.name == "g_dwku3")
    _, inst, _, _ = build_case(GROUP_CASES[i], len(CASES) + len(TAP_CASES) + i)
    lbuf = [m for m in memories("fpgagen_conv2d", inst.params) if m.name == "lbuf"]
    assert [m.count for m in lbuf] == [9]
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_conv2d", SOURCES, inst.params, inst.mems, memories=2 + 9)


def test_conv2d_yosys_per_channel(tmp_path):
    """Per-channel weight formats elaborate in Yosys (the packed ALIGN table as a sized literal) and
    add no memory: the table is constants."""
    c = PC_CASES[0]
    _, inst, _, _ = build_case(c, len(CASES) + len(TAP_CASES))
    assert inst.params["ALIGN_MAX"] == c.spread and inst.params["ALIGN"].width == c.co * 3
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_conv2d", SOURCES, inst.params, inst.mems, memories=3)


# ---- the builder ---------------------------------------------------------------------------------
@pytest.mark.parametrize("groups, taps, pe", [(1, 1, 2), (2, 1, 2), (1, 2, 2), (2, 2, 2), (2, 1, 4), (2, 2, 4)])
def test_rom_layout_round_trips(groups, taps, pe):
    """Unpacking the weight/bias ROM text per the module header gives the IR's integers back
    (grouped: weights [Co, Ci/groups, KH, KW], lines of CIG/SIMD words per tap group; KU taps
    of a row per line, element ((p*KU + j)*SIMD + s); PE 4 over both groups: the same layout)."""
    c = Case("rom", 6, 4, 5, 5, (3, 2), (1, 1), (1, 1, 1, 1), pe, 3 // groups, True, groups=groups, taps=taps)
    q, layer, _ = hand_layer(c, np.random.default_rng(3))
    inst = conv2d_instance(q, layer, c.pe, c.simd, taps=taps)
    p = inst.params
    assert p["GROUPS"] == groups and p.get("KU", 1) == taps and ("KU" in p) == (taps > 1)
    wbits, nk, ng, nu = p["W_WIDTH"], c.ci // groups // c.simd, c.co // c.pe, 2 // taps
    wlines = [ln for ln in inst.mems["rom_Conv_weights.mem"].splitlines() if not ln.startswith("//")]
    assert len(wlines) == ng * 3 * nu * nk
    got = np.zeros_like(layer.weight)
    for g in range(ng):
        for ky in range(3):
            for u in range(nu):
                for k in range(nk):
                    word = int(wlines[((g * 3 + ky) * nu + u) * nk + k], 16)
                    for pp in range(c.pe):
                        for j in range(taps):
                            for s in range(c.simd):
                                v = (word >> (((pp * taps + j) * c.simd + s) * wbits)) & ((1 << wbits) - 1)
                                got[g * c.pe + pp, k * c.simd + s, ky, u * taps + j] = \
                                    v - (1 << wbits) * (v >> (wbits - 1))
    assert got.tolist() == layer.weight.tolist()
    bbits = p["BIAS_WIDTH"]
    blines = [int(ln, 16) for ln in inst.mems["rom_Conv_bias.mem"].splitlines() if not ln.startswith("//")]
    bias = [((blines[g] >> (pp * bbits)) & ((1 << bbits) - 1)) for g in range(ng) for pp in range(c.pe)]
    bias = [v - (1 << bbits) * (v >> (bbits - 1)) for v in bias]
    assert bias == layer.bias.tolist()
    assert (p["CI"], p["CO"], p["H"], p["W"], p["KH"], p["KW"]) == (6, 4, 5, 5, 3, 2)
    assert (p["PAD_T"], p["PAD_L"], p["PAD_B"], p["PAD_R"], p["PE"], p["SIMD"]) == (1, 1, 1, 1, pe, c.simd)
    # cycles: max(compute 5*6 pixels * ng sets of PE channels * 6 taps * nk words, input 150, output 120)
    assert inst.cycles == max(30 * ng * 6 * nk // taps, 150) == max((30 * 4 * 6 * 6 // groups) // (c.pe * c.simd * taps), 150)
    assert "line buffer" in inst.describe and f"PE {pe} x SIMD {c.simd}" in inst.describe
    assert (f"x KU {taps} taps" in inst.describe) == (taps > 1)
    assert ("grouped (2 groups) conv" in inst.describe) == (groups == 2)


def test_line_rows():
    # pad 1: the last window row pair plus the next frame's first window fit in 3 rows
    assert conv2d_line_rows(28, 28, (3, 3), (1, 1), (1, 1, 1, 1)) == 3
    # no padding: the last 3 rows and the next frame's first 2 rows + 3 pixels
    assert conv2d_line_rows(28, 28, (3, 3), (1, 1), (0, 0, 0, 0)) == 5
    # 5x5 on 7x6, no padding: the next frame's first window (28 pixels) beside the last one
    assert conv2d_line_rows(7, 6, (5, 5), (1, 1), (0, 0, 0, 0)) == 10
    assert conv2d_line_rows(5, 5, (5, 5), (1, 1), (0, 0, 0, 0)) == 10   # double-buffered (2*H)
    assert conv2d_line_rows(4, 5, (1, 1), (1, 1), (0, 0, 0, 0)) == 1
    assert conv2d_line_rows(5, 7, (1, 1), (2, 2), (0, 0, 0, 0)) == 2


def test_line_rows_matches_module(tmp_path):
    """The builder's conv2d_line_rows is the module's ROWS localparam (iverilog prints it)."""
    if not rtlsim.have_iverilog():
        pytest.skip("iverilog is not installed: cannot read the module's ROWS")
    shapes = [(c.h, c.w, c.kernel, c.stride, c.pads) for c in CASES]
    shapes += [(28, 28, (3, 3), (1, 1), (1, 1, 1, 1)), (28, 28, (5, 5), (1, 1), (0, 0, 0, 0)),
               (5, 5, (5, 5), (1, 1), (0, 0, 0, 0)), (12, 10, (3, 3), (2, 2), (0, 1, 1, 0))]
    lines = []
    for i, (h, w, (kh, kw), (sh, sw), (pt, pl, pb, pr)) in enumerate(shapes):
        lines.append(f"    fpgagen_conv2d #(.CI(1), .CO(1), .H({h}), .W({w}), .KH({kh}), .KW({kw}), .SH({sh}), "
                     f".SW({sw}), .PAD_T({pt}), .PAD_L({pl}), .PAD_B({pb}), .PAD_R({pr}), "
                     f".WEIGHT_FILE(\"w.mem\"), .BIAS_FILE(\"b.mem\")) u_{i} ();")
        lines.append(f'    initial $display("rows %0d %0d", {i}, u_{i}.ROWS);')
    tb = tmp_path / "rows_tb.v"
    tb.write_text("module rows_tb;\n" + "\n".join(lines) + "\nendmodule\n")
    (tmp_path / "w.mem").write_text("00\n")
    (tmp_path / "b.mem").write_text("0000\n")
    cmd = ["iverilog", "-g2012", "-s", "rows_tb", "-o", str(tmp_path / "rows.vvp"), *map(str, SOURCES), str(tb)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(["vvp", "-n", str(tmp_path / "rows.vvp")], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    got = {int(a): int(b) for _, a, b in (ln.split() for ln in res.stdout.splitlines() if ln.startswith("rows "))}
    want = {i: conv2d_line_rows(h, w, k, s, p) for i, (h, w, k, s, p) in enumerate(shapes)}
    assert got == want, res.stdout + res.stderr


def test_builder_errors():
    c = Case("bad", 3, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True)
    q, layer, _ = hand_layer(c, np.random.default_rng(4))
    with pytest.raises(BackendError, match=r"layer '/bad/Conv' \(conv\): PE 3 must divide the layer's 4 output"):
        conv2d_instance(q, layer, 3, 1)
    with pytest.raises(BackendError, match=r"layer '/bad/Conv' \(conv\): SIMD 2 must divide the layer's 3 input"):
        conv2d_instance(q, layer, 1, 2)
    with pytest.raises(BackendError, match=r"SIMD 0 must divide"):
        conv2d_instance(q, layer, 1, 0)
    with pytest.raises(BackendError, match=r"layer '/bad/Conv' \(conv\): taps \(KU\) 2 must divide the kernel's 3 "
                                           r"columns \(KW\)"):
        conv2d_instance(q, layer, 1, 1, taps=2)
    wide = QLayer(**{**layer.__dict__, "acc_width": 65})
    with pytest.raises(BackendError, match=r"'/bad/Conv' \(conv\): a 65-bit accumulator is wider than the 64"):
        conv2d_instance(q, wide, 1, 1)
    g = Case("grp", 6, 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True, groups=2)
    qg, grouped, _ = hand_layer(g, np.random.default_rng(5))
    conv2d_instance(qg, grouped, 2, 3)  # fits: PE divides Co/groups = 2, SIMD Ci/groups = 3
    wide = conv2d_instance(qg, grouped, 4, 3)  # fits: PE 4 = both groups in one pass (2 line buffer lanes)
    assert "of 2 lanes (groups per pass)" in wide.describe
    t = Case("grp3", 8, 12, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1, 1, True, groups=4)
    qt, three, _ = hand_layer(t, np.random.default_rng(6))
    with pytest.raises(BackendError, match=r"'/grp3/Conv' \(conv\): PE 2 must divide the layer's 3 output channels "
                                           r"per group \(Co/groups, groups=4\) or be a multiple of them dividing its "
                                           r"12 output channels \(whole groups per pass; allowed: 1, 3, 6, 12\)"):
        conv2d_instance(qt, three, 2, 1)  # divides Co = 12, but neither inside a group nor whole groups
    with pytest.raises(BackendError, match=r"'/grp/Conv' \(conv\): SIMD 2 must divide the layer's 3 input channels "
                                           r"per group \(Ci/groups, groups=2\)"):
        conv2d_instance(qg, grouped, 1, 2)
    odd = QLayer(**{**grouped.__dict__, "params": replace(grouped.params, groups=3)})
    with pytest.raises(BackendError, match=r"'/grp/Conv' \(conv\): groups=3 must be >= 1 and divide the 4 output"):
        conv2d_instance(qg, odd, 1, 1)
    dense = QLayer(**{**layer.__dict__, "op": "dense", "params": None})
    with pytest.raises(BackendError, match=r"'/bad/Conv': fpgagen_conv2d builds conv layers, not 'dense'"):
        conv2d_instance(q, dense, 1, 1)
    q_bad = QGraph("bad", "x", "y", [layer], {"x": (3, 5, 5), "y": (4, 4, 4)}, q.fmts)
    with pytest.raises(BackendError, match=r"output shape \(4, 4, 4\) does not match \(Co, OH, OW\) = \(4, 5, 5\)"):
        conv2d_instance(q_bad, layer, 1, 1)
    q_ci = QGraph("bad", "x", "y", [layer], {"x": (2, 5, 5), "y": (4, 5, 5)}, q.fmts)
    with pytest.raises(BackendError, match=r"weights take 3 input channels but the input has 2"):
        conv2d_instance(q_ci, layer, 1, 1)

