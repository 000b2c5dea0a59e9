"""fpgagen_dwc: every element delivered in order with its tlast, at min(EW_A, EW_B) elements/cycle.

One Verilator build per (WIDTH, EW_A, EW_B): dividing and non-dividing pairs (3 -> 2, 4 -> 6,
1 -> 8, 8 -> 1, equal widths) and 8-bit extremes (0x00, 0x7f, 0x80, 0xff). Frames are multiples
of lcm(EW_A, EW_B) elements long. The cocotb test drives the input and the sink by hand: a free
phase (no pauses) measures the steady-state rate of back-to-back frames (cycles per frame ==
elements / min(EW_A, EW_B)), then random input idles and output back-pressure check order and
tlast.
"""

from __future__ import annotations

import math
import os
import random

import pytest

import rtlsim
from fpgagen.backends.rtl import resources
from fpgagen.backends.rtl import stream as rtl_stream
from fpgagen.errors import BackendError

SOURCES = [rtlsim.LIB / "fpgagen_dwc.v"]
# (WIDTH, EW_A, EW_B)
CASES = [(8, 1, 1), (8, 3, 2), (8, 4, 6), (8, 1, 8), (8, 8, 1), (8, 2, 2), (5, 6, 4)]

try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a test dependency
    cocotb = None

if cocotb is not None:
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge

    def frames(width: int, unit: int, n: int, rng: random.Random) -> list[list[int]]:
        top = (1 << width) - 1
        ext = [0, top >> 1, (top >> 1) + 1, top]
        out = [[(3 * i + 1) & top for i in range(4 * unit)] for _ in range(4)]  # equal frames for the rate
        out.append([ext[i % 4] for i in range(unit)])
        while len(out) < n:
            out.append([rng.randint(0, top) for _ in range(unit * rng.randint(1, 5))])
        return out

    async def run(dut, width, ea, eb, fr, p_idle, p_stall, rng):
        """Stream ``fr``; return the received frames and the cycle of each output tlast."""
        beats = []
        for f in fr:
            for k in range(0, len(f), ea):
                beats.append((f[k:k + ea], k + ea == len(f)))
        want = sum(len(f) for f in fr)
        got, cur, lasts = [], [], []
        bi, cyc = 0, 0
        dut.s_axis_tvalid.value = 0
        dut.m_axis_tready.value = 0
        while len(got) < len(fr):
            # drive before the edge
            if bi < len(beats) and rng.random() >= p_idle:
                vals, last = beats[bi]
                dut.s_axis_tdata.value = sum(v << (e * width) for e, v in enumerate(vals))
                dut.s_axis_tlast.value = int(last)
                dut.s_axis_tvalid.value = 1
            else:
                dut.s_axis_tvalid.value = 0
            dut.m_axis_tready.value = int(rng.random() >= p_stall)
            await ReadOnly()
            if dut.s_axis_tvalid.value == 1 and dut.s_axis_tready.value == 1:
                bi += 1
            if dut.m_axis_tvalid.value == 1 and dut.m_axis_tready.value == 1:
                d = int(dut.m_axis_tdata.value)
                cur += [(d >> (e * width)) & ((1 << width) - 1) for e in range(eb)]
                if dut.m_axis_tlast.value == 1:
                    got.append(cur)
                    cur = []
                    lasts.append(cyc)
            await RisingEdge(dut.clk)
            cyc += 1
            assert cyc < 20 * want + 200, f"timeout: {len(got)} of {len(fr)} frames after {cyc} cycles"
        dut.s_axis_tvalid.value = 0
        return got, lasts

    @cocotb.test()
    async def dwc_stream(dut):
        width, ea, eb = (int(os.environ[k]) for k in ("DWC_WIDTH", "DWC_A", "DWC_B"))
        rng = random.Random(ea * 100 + eb)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        dut.s_axis_tvalid.value = 0
        dut.m_axis_tready.value = 0
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        unit = ea * eb // math.gcd(ea, eb)
        fr = frames(width, unit, 24, rng)
        got, lasts = await run(dut, width, ea, eb, fr, 0.0, 0.0, rng)
        assert got == fr, f"free phase: frames differ (first: got {got[0]}, sent {fr[0]})"
        per_frame = (lasts[3] - lasts[0]) / 3
        analytic = 4 * unit / min(ea, eb)
        assert per_frame == analytic, f"{ea}->{eb}: {per_frame} cycles per {4 * unit}-element frame, " \
                                      f"expected {analytic}"
        for p_idle, p_stall in ((0.3, 0.3), (0.0, 0.85), (0.85, 0.0)):
            fr = frames(width, unit, 16, rng)
            got, _ = await run(dut, width, ea, eb, fr, p_idle, p_stall, rng)
            assert got == fr, f"phase idle={p_idle} stall={p_stall}: frames differ"


@pytest.mark.parametrize("width,ea,eb", CASES)
def test_dwc(tmp_path, width, ea, eb):
    rtlsim.run_cocotb("fpgagen_dwc", SOURCES, {"WIDTH": width, "EW_A": ea, "EW_B": eb}, "test_dwc",
                      tmp_path, extra_env={"DWC_WIDTH": width, "DWC_A": ea, "DWC_B": eb})


@pytest.mark.parametrize("width,ea,eb", CASES)
def test_lint(width, ea, eb):
    rtlsim.assert_lint_clean("fpgagen_dwc", SOURCES, {"WIDTH": width, "EW_A": ea, "EW_B": eb})


def test_yosys(tmp_path):
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_dwc", SOURCES, {"WIDTH": 8, "EW_A": 3, "EW_B": 2})


def test_builder():
    d = rtl_stream.dwc_instance(8, 4, 6, 24 * 22 * 22, name="conv3")
    assert (d.module, d.params, d.mems, d.cycles) == ("fpgagen_dwc", {"WIDTH": 8, "EW_A": 4, "EW_B": 6}, {},
                                                       24 * 22 * 22 // 4)
    assert rtl_stream.dwc_instance(8, 8, 1, 16).cycles == 16
    # a register gearbox: no RAM; it holds up to 2*EW_A + EW_B elements (the deadlock sizing counts them)
    assert resources.memories("fpgagen_dwc", d.params) == []
    assert resources.holds("fpgagen_dwc", d.params) == 2 * 4 + 6 + resources.PIPELINE_ELEMENTS


@pytest.mark.parametrize("args,match", [
    ((8, 4, 6, 20), r"fpgagen_dwc for 'x': EW_B = 6 elements per beat does not divide the frame's 20 elements"),
    ((8, 0, 2, 4), r"fpgagen_dwc for 'x': EW_A must be an integer >= 1, not 0"),
    ((65, 1, 2, 4), r"fpgagen_dwc for 'x': tdata width must be an integer of 1..64 bits, not 65"),
])
def test_builder_errors(args, match):
    with pytest.raises(BackendError, match=match):
        rtl_stream.dwc_instance(*args, name="x")
