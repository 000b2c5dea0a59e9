"""fpgagen_hwc_to_chw: a (C, H, W) map in HWC stream order out in CHW (Flatten) order.

One Verilator build holds one instance per shape: the 3x6x10 map of the issue, 1x1x1 (a
one-element frame), 4x1x1 and 1x3x1 (the identity orders), 2x2x2 on 1-bit data, 5x3x4 on 13 bits
and 16x4x4 on 8 bits (the digits CNN's last map). Each instance streams frames back to back -
all-zero, all-ones, a counting frame (every element its own CHW index, so a wrong order shows
where it went) and random ones - and every output element must equal ``x.ravel()`` of the CHW
map (the golden Flatten), with tlast on the last. Four phases: no pauses (measured cycles per
frame within 10 % of C*H*W, the analytic figure), random idle cycles and back-pressure, a nearly
stopped sink and a nearly stopped source. Also Verilator -Wall lint, Icarus and Yosys elaboration
(Yosys infers the frame buffers as one memory).
"""

from __future__ import annotations

import numpy as np
import pytest

import rtlsim
from fpgagen.backends import hwc_order
from fpgagen.backends.rtl import stream as rtl_stream
from fpgagen.errors import BackendError

TOP = "hwc_to_chw_sweep"
SOURCES = [rtlsim.LIB / "fpgagen_hwc_to_chw.v"]
# name -> (width, (C, H, W))
SHAPES = {"m3x6x10": (8, (3, 6, 10)), "m1x1x1": (8, (1, 1, 1)), "m4x1x1": (8, (4, 1, 1)), "m1x3x1": (6, (1, 3, 1)),
          "m2x2x2": (1, (2, 2, 2)), "m5x3x4": (13, (5, 3, 4)), "m16x4x4": (8, (16, 4, 4))}


def build(n_random: int = 4):
    rng = np.random.default_rng(17)
    instances, inputs, outputs, cycles = [], {}, {}, {}
    for name, (width, shape) in SHAPES.items():
        rtl = rtl_stream.hwc_to_chw_instance(width, shape, name)
        n = int(np.prod(shape))
        top = (1 << width) - 1
        maps = [np.zeros(n, np.int64), np.full(n, top), np.arange(n) & top]
        maps += [rng.integers(0, top + 1, n) for _ in range(n_random)]
        instances.append(rtlsim.stream_instance(name, rtl, width, width))
        inputs[f"{name}_s_axis"] = [[m[hwc_order(shape)].tolist() for m in maps], width]  # HWC stream order
        outputs[f"{name}_m_axis"] = [[m.tolist() for m in maps], width, False]  # CHW: the Flatten's order
        if n >= 4:
            cycles[f"{name}_m_axis"] = rtl.cycles
    return instances, {"inputs": inputs, "outputs": outputs, "cycles": cycles, "seed": 5}


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_hwc_to_chw_sweep(tmp_path):
    instances, case = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, SOURCES, "test_hwc_to_chw",
                                comment="fpgagen_hwc_to_chw cases of test_hwc_to_chw.py")
    assert set(measured) == set(case["cycles"])


def test_lint(tmp_path):
    instances, _ = build(1)
    rtlsim.assert_lint_clean(TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_iverilog(tmp_path):
    instances, _ = build(1)
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys_memory(tmp_path):
    rtl = rtl_stream.hwc_to_chw_instance(8, (3, 6, 10))
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_hwc_to_chw", SOURCES, rtl.params, memories=1)


def test_builder():
    rtl = rtl_stream.hwc_to_chw_instance(8, (3, 6, 10))
    assert rtl.module == "fpgagen_hwc_to_chw" and rtl.params == {"WIDTH": 8, "C": 3, "H": 6, "W": 10}
    assert rtl.cycles == 180 and "180 cycles/frame" in rtl.describe


@pytest.mark.parametrize("width,shape,match", [
    (0, (3, 6, 10), r"fpgagen_hwc_to_chw for 'f': tdata width must be an integer of 1\.\.64 bits, not 0"),
    (8, (3, 60), r"fpgagen_hwc_to_chw for 'f': the map must be \(C, H, W\) of integers >= 1, not \(3, 60\)"),
    (8, (3, 0, 2), r"the map must be \(C, H, W\) of integers >= 1, not \(3, 0, 2\)"),
])
def test_builder_errors(width, shape, match):
    with pytest.raises(BackendError, match=match):
        rtl_stream.hwc_to_chw_instance(width, shape, "f")
