"""fpgagen_fifo and fpgagen_fork: every element delivered, in order, with its tlast.

One Verilator build holds FIFOs of depth 1, 2, 3 (odd), 5, 8 and 16 (powers of two), 1-, 8- and
13-bit wide, and two forks; each has its own streams. Frames of random lengths (1..23 elements,
so tlast also lands on one-element frames) run through every instance at once in four phases:
no pauses (one element per cycle measured), random idle/back-pressure, a nearly stopped sink
(the FIFOs run full) and a nearly stopped source (they run empty); each fork output has its own
random back-pressure. A capacity test stops the sinks: a FIFO then takes exactly max(DEPTH, 2) + 1
elements (RAM + output register) and a fork with one output stopped takes 2 (head + skid).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import stream as rtl_stream
from fpgagen.errors import BackendError

# (name, width, depth)
FIFOS = [("q1", 8, 1), ("q2", 8, 2), ("q3", 13, 3), ("q5", 1, 5), ("q8", 8, 8), ("q16", 8, 16)]
# (name, width)
FORKS = [("f8", 8), ("f3", 3)]
TOP = "fifo_fork_sweep"
SOURCES = [rtlsim.LIB / "fpgagen_fifo.v", rtlsim.LIB / "fpgagen_fork.v"]


def frames_for(width: int, n_frames: int, rng: random.Random) -> list[list[int]]:
    top = (1 << width) - 1
    out = [[top] * 3, [0], [1], list(range(7))]  # extremes, one-element frames
    while len(out) < n_frames:
        out.append([rng.randint(0, top) for _ in range(rng.randint(1, 23))])
    return [[v & top for v in f] for f in out]


def build_case() -> tuple[list[dict], dict]:
    rng = random.Random(42)
    instances, inputs, outputs, cycles, capacity = [], {}, {}, {}, []
    for name, width, depth in FIFOS:
        instances.append(rtlsim.stream_instance(name, rtl_stream.fifo_instance(width, depth), width, width))
        s, m = f"{name}_s_axis", f"{name}_m_axis"
        frames = [[5 & ((1 << width) - 1)] * 4] * 3 + frames_for(width, 24, rng)  # 3 equal frames first
        inputs[s] = [frames, width]
        outputs[m] = [frames, width, False]
        capacity.append({"in": s, "stall": [m], "free": [], "accept": max(depth, 2) + 1, "width": width})
    for name, width in FORKS:
        rtl = rtl_stream.fork_instance(width)
        s, m0, m1 = f"{name}_s_axis", f"{name}_m0_axis", f"{name}_m1_axis"
        instances.append({"name": name, "module": rtl.module, "params": rtl.params,
                          "streams": [("s_axis", s, width, "in"), ("m0_axis", m0, width, "out"),
                                      ("m1_axis", m1, width, "out")]})
        frames = [[3 & ((1 << width) - 1)] * 4] * 3 + frames_for(width, 24, rng)
        inputs[s] = [frames, width]
        outputs[m0] = [frames, width, False]
        outputs[m1] = [frames, width, False]
        capacity.append({"in": s, "stall": [m1], "free": [m0], "accept": 2, "width": width})
    # the first frames are 4 elements long: streamed at one element per cycle, 4 cycles apart
    for p in outputs:
        cycles[p] = 4
    case = {"inputs": inputs, "outputs": outputs, "capacity": capacity, "seed": 3, "frames": 30,
            "first_frames_only": 3, "cycles": cycles}
    return instances, case


# ---- cocotb side -------------------------------------------------------------------------
try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a test dependency
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def rate_and_order(dut):
        """No pauses: every stream in order; the first (equal) frames at one element per cycle."""
        case = rtlsim.read_case()
        tb = rtlsim.StreamTB(dut, sources=tuple(case["inputs"]), sinks=tuple(case["outputs"]))
        await tb.reset()
        await tb.run({p: (v[0], v[1]) for p, v in case["inputs"].items()},
                     {p: (v[0], v[1], v[2]) for p, v in case["outputs"].items()}, timeout_cycles=4000)
        n = case["first_frames_only"]
        for p, analytic in case["cycles"].items():
            lasts = tb.last_cycles[p][:n]
            measured = (lasts[-1] - lasts[0]) / (n - 1)
            assert measured == analytic, f"{p}: {measured} cycles per {analytic}-element frame, expected {analytic}"

    stream = rtlsim.phase_tests(("random", "stall", "starve"))

    @cocotb.test()
    async def capacity(dut):
        """Stopped sinks: a FIFO holds max(DEPTH, 2) + 1 elements, a fork with one output stopped 2;
        after the release every element arrives in order."""
        from cocotb.triggers import ReadOnly, RisingEdge, with_timeout
        from cocotbext.axi import AxiStreamFrame

        case = rtlsim.read_case()
        tb = rtlsim.StreamTB(dut, sources=tuple(case["inputs"]), sinks=tuple(case["outputs"]))
        await tb.reset()
        caps = case["capacity"]
        for c in caps:
            for p in c["stall"]:
                tb.sinks[p].pause = True
        taken = {c["in"]: 0 for c in caps}

        async def watch():
            while True:
                await RisingEdge(dut.clk)
                await ReadOnly()
                for p in taken:
                    if getattr(dut, f"{p}_tvalid").value == 1 and getattr(dut, f"{p}_tready").value == 1:
                        taken[p] += 1

        cocotb.start_soon(watch())
        sent = {}
        for c in caps:
            n = c["accept"] + 3
            sent[c["in"]] = [(7 * i + 1) & ((1 << c["width"]) - 1) for i in range(n)]
            await tb.sources[c["in"]].send(AxiStreamFrame(sent[c["in"]]))
        await tb.cycles(2 * max(c["accept"] for c in caps) + 20)
        for c in caps:
            p = c["in"]
            assert taken[p] == c["accept"], f"{p}: took {taken[p]} elements with {c['stall']} stopped, " \
                                            f"expected {c['accept']}"
            assert getattr(dut, f"{p}_tready").value == 0, f"{p}: tready high while full"
            for m in c["stall"]:
                assert getattr(dut, f"{m}_tvalid").value == 1, f"{m}: tvalid low while holding data"
        for c in caps:
            for p in c["stall"]:
                tb.sinks[p].pause = False
        for c in caps:
            for m in c["stall"] + c["free"]:
                got = await with_timeout(tb.sinks[m].recv(), 2000, "ns")
                assert list(got.tdata) == sent[c["in"]], f"{m}: got {list(got.tdata)}, sent {sent[c['in']]}"


# ---- pytest side -------------------------------------------------------------------------
def test_fifo_fork_streams(tmp_path):
    instances, case = build_case()
    rtlsim.run_sweep(tmp_path, TOP, instances, case, SOURCES, "test_fifo_fork",
                     comment="FIFOs and forks of test_fifo_fork.py")


@pytest.mark.parametrize("module,params", [
    ("fpgagen_fifo", {"WIDTH": 8, "DEPTH": 1}),
    ("fpgagen_fifo", {"WIDTH": 1, "DEPTH": 2}),
    ("fpgagen_fifo", {"WIDTH": 13, "DEPTH": 5}),
    ("fpgagen_fifo", {"WIDTH": 8, "DEPTH": 6272}),
    ("fpgagen_fork", {"WIDTH": 8}),
    ("fpgagen_fork", {"WIDTH": 1}),
])
def test_lint(module, params):
    rtlsim.assert_lint_clean(module, [rtlsim.LIB / f"{module}.v"], params)


def test_lint_wrapper(tmp_path):
    instances, _ = build_case()
    rtlsim.assert_lint_clean(TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_iverilog(tmp_path):
    instances, _ = build_case()
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path):
    instances, _ = build_case()
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_builders():
    fifo = rtl_stream.fifo_instance(8, 36)
    assert (fifo.module, fifo.params, fifo.mems, fifo.cycles) == ("fpgagen_fifo", {"WIDTH": 8, "DEPTH": 36}, {}, 0)
    fork = rtl_stream.fork_instance(13)
    assert (fork.module, fork.params, fork.cycles) == ("fpgagen_fork", {"WIDTH": 13}, 0)


@pytest.mark.parametrize("call,match", [
    (lambda: rtl_stream.fifo_instance(8, 0, name="res"),
     r"fpgagen_fifo for 'res': depth must be an integer >= 1 element, not 0"),
    (lambda: rtl_stream.fifo_instance(8, 2.5), r"fpgagen_fifo: depth must be an integer >= 1 element, not 2.5"),
    (lambda: rtl_stream.fifo_instance(0, 4), r"fpgagen_fifo: tdata width must be an integer of 1..64 bits, not 0"),
    (lambda: rtl_stream.fork_instance(65, name="x"),
     r"fpgagen_fork for 'x': tdata width must be an integer of 1..64 bits, not 65"),
    (lambda: rtl_stream.fifo_instance(np.int64(8), np.int64(3)).params, None),
])
def test_builder_errors(call, match):
    if match is None:  # NumPy integers are accepted
        assert call() == {"WIDTH": 8, "DEPTH": 3}
        return
    with pytest.raises(BackendError, match=match):
        call()
