"""fpgagen_add against fpgagen.golden.kernels.add, many parameter sets in one Verilator build.

Each case is a QLayer (hand-made with the lowering's own rules, or lowered from a small float
graph) built by fpgagen.backends.rtl.add.add_instance; a generated wrapper holds one
fpgagen_add per case on its own streams. Cases: different alignments (0..7 on either input),
different formats and signedness on the two inputs (s8/u8/s16/s4), right and left shifts,
ReLU / Clip bounds, fused LeakyRelus (0.1, 1.5), one-element frames, and frames at the extremes (both inputs at their maximum,
both at their minimum, one each) so the sums saturate at both ends. Wide streams (WIDE): EW = 2,
a divisor of C and EW = C (or of the vector's length) elements per beat, in the same build.
Every case streams its frames with no pauses (cycles per frame measured == LENGTH / EW), with random
idle cycles on each input independently and random back-pressure, and with a nearly stopped
sink or nearly stopped sources.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import add as rtl_add
from fpgagen.errors import BackendError
from fpgagen.fixed import signed_width
from fpgagen.golden.kernels import add as golden_add
from fpgagen.ir.format import Format
from fpgagen.golden.kernels import requantize
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.activation import LeakyInt
from fpgagen.quant.lower import clamp_bounds
from fpgagen.ops.add import AddParams

TOP = "add_sweep"


def add_graph(f0: str, f1: str, fy: str, activation=None, shape=(3, 2, 2), name="res", leaky=None,
              rounding="nearest-away") -> QGraph:
    """A one-layer QGraph ``y = a + b`` with the lowering's rules for align/shift/bounds (and a
    fused LeakyRelu ``leaky = (A, Fal)``)."""
    fa, fb, out = Format.parse(f0), Format.parse(f1), Format.parse(fy)
    frac = max(fa.frac, fb.frac)
    align = [frac - fa.frac, frac - fb.frac]
    lo = sum(f.min_int << s for f, s in zip((fa, fb), align))
    hi = sum(f.max_int << s for f, s in zip((fa, fb), align))
    layer = QLayer(name, "add", ["a", "b"], "y", [fa, fb], out, activation=activation, params=AddParams(tuple(align)),
                   acc_frac=frac, acc_width=signed_width(lo, hi), shift=frac - out.frac,
                   leaky=None if leaky is None else LeakyInt(*leaky), rounding=rounding)
    layer.lo, layer.hi = clamp_bounds(out, activation)
    shape = tuple(shape)
    return QGraph(f"add_{name}", "a", "y", [layer], {"a": shape, "b": shape, "y": shape},
                  {"a": fa, "b": fb, "y": out})


def lowered_add_graph() -> QGraph:
    """A residual add as the real lowering produces it (two dense branches, fused ReLU)."""
    from fpgagen.ir.graph import Graph, Node
    from fpgagen.quant.calibrate import calibrate
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower

    rng = np.random.default_rng(7)
    graph = Graph("resmlp", "x", "r", [
        Node("d1", "dense", ["x"], "h", None, rng.normal(0, 0.6, (6, 5)), rng.normal(0, 0.1, 6)),
        Node("d2", "dense", ["x"], "g", None, rng.normal(0, 3.0, (6, 5)), rng.normal(0, 1.0, 6)),
        Node("res", "add", ["h", "g"], "r", None, activation="relu"),
    ], {"x": (5,), "h": (6,), "g": (6,), "r": (6,)}).validate()
    x = rng.uniform(-1, 1, (32, 5)).astype(np.float32)
    q, _ = lower(graph, choose_formats(calibrate(graph, x, progress=False), QuantOptions(method="max")))
    layer = q.layer("res")
    return QGraph("resmlp_res", "h", "r", [layer], {t: q.shapes[t] for t in ("h", "g", "r")},
                  {t: q.fmts[t] for t in ("h", "g", "r")})


def cases() -> list[tuple[str, QGraph]]:
    out = [
        ("a", add_graph("s8.4", "s8.2", "s8.3")),                        # align [0, 2], shift 1
        ("b", add_graph("u8.3", "s8.4", "u8.3", "relu")),                # mixed signedness, ReLU
        ("c", add_graph("s8.0", "s8.7", "s8.0", shape=(5,))),            # align [7, 0], shift 7
        ("d", add_graph("s8.2", "s8.2", "s8.3", shape=(1,))),            # left shift, 1-element frames
        ("e", add_graph("s16.8", "s8.3", "s8.5", shape=(2, 3, 1))),      # a 16-bit input, align [0, 5]
        ("f", add_graph("u8.5", "u8.5", "u8.4", ("clip", 0.0, 6.0), shape=(7,))),  # Clip(0, 6)
        ("g", add_graph("s8.3", "u8.1", "s8.3", "relu", shape=(4, 1, 2))),  # ReLU on a signed output
        ("h", add_graph("s4.1", "s8.6", "s16.6", shape=(9,))),           # 4-bit input, 16-bit output, shift 0
        ("i", add_graph("s8.1", "s8.1", "s8.4", shape=(3,))),            # left shift by 3, saturating
        ("lk", add_graph("s8.4", "s8.2", "s8.3", shape=(6,), leaky=(205, 11))),   # fused LeakyRelu 0.1
        ("lk2", add_graph("s8.1", "s8.1", "s8.4", shape=(3,), leaky=(192, 7))),   # LeakyRelu 1.5, left shift
        ("ev", add_graph("s8.4", "s8.2", "s8.3", shape=(8,), rounding="nearest-even")),  # ROUND_EVEN, shift 1
        ("evr", add_graph("u8.4", "u8.2", "u8.3", "relu", shape=(6,), rounding="nearest-even")),  # unsigned
        ("evl", add_graph("s8.4", "s8.2", "s8.3", shape=(6,), leaky=(205, 11), rounding="nearest-even")),
    ]
    graphs = [g for _, g in out]
    assert {g.layers[0].shift for g in graphs} >= {-3, -1, 0, 1, 7}
    out.append(("low", lowered_add_graph()))
    return out


#: wide streams: (case name, EW elements per beat), simulated as "<name>_ew<EW>"
WIDE = [("a", 3), ("b", 3), ("c", 5), ("e", 2), ("f", 7), ("g", 2), ("g", 4), ("h", 3), ("lk", 2), ("lk", 3),
        ("ev", 4), ("evl", 6), ("low", 2)]


def sweep_cases() -> list[tuple[str, QGraph, int]]:
    """(instance name, graph, EW) of every instance of the sweep."""
    named = dict(cases())
    return [(name, q, 1) for name, q in named.items()] + [(f"{name}_ew{ew}", named[name], ew) for name, ew in WIDE]


def frames_for(layer: QLayer, length: int, n_frames: int, rng: np.random.Generator):
    f0, f1 = layer.in_fmts
    lo = [f0.min_int, f1.min_int]
    hi = [f0.max_int, f1.max_int]
    a = rng.integers(lo[0], hi[0] + 1, size=(n_frames, length))
    b = rng.integers(lo[1], hi[1] + 1, size=(n_frames, length))
    a[0], b[0] = hi[0], hi[1]   # both at the top: saturates high
    a[1], b[1] = lo[0], lo[1]   # both at the bottom: saturates low (or ReLU)
    a[2], b[2] = hi[0], lo[1]
    a[3], b[3] = lo[0], hi[1]
    a[4], b[4] = 0, 0
    return a, b


def build(n_frames: int = 12):
    rng = np.random.default_rng(11)
    instances, inputs, outputs, cycles = [], {}, {}, {}
    for name, q, ew in sweep_cases():
        layer = q.layers[0]
        rtl = rtl_add.add_instance(q, layer, ew=ew)
        length = math.prod(q.shapes[layer.output])
        assert rtl.params["LENGTH"] == length and rtl.cycles * ew == length and rtl.params.get("EW", 1) == ew
        a, b = frames_for(layer, length, n_frames, rng)
        y = golden_add(a, b, layer.params.align, layer.shift, layer.lo, layer.hi, None, layer.rounding)
        if layer.leaky is not None:  # the aligned sum through the two-path requantizer
            total = (a << layer.params.align[0]) + (b << layer.params.align[1])
            y = requantize(total, layer.shift, layer.lo, layer.hi, layer.leaky, layer.rounding)
        f0, f1 = layer.in_fmts
        w0, w1, wy = rtl.params["IN0_WIDTH"], rtl.params["IN1_WIDTH"], rtl.params["OUT_WIDTH"]
        s0, s1, m = f"{name}_s0_axis", f"{name}_s1_axis", f"{name}_m_axis"
        instances.append({"name": name, "module": rtl.module, "params": rtl.params,
                          "streams": [("s0_axis", s0, ew * w0, "in"), ("s1_axis", s1, ew * w1, "in"),
                                      ("m_axis", m, ew * wy, "out")]})
        inputs[s0] = [a.tolist(), w0, ew]
        inputs[s1] = [b.tolist(), w1, ew]
        outputs[m] = [y.tolist(), wy, bool(layer.lo < 0), ew]
        cycles[m] = rtl.cycles
    return instances, {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": n_frames, "seed": 5,
                       "cycle_tolerance": 0.0}


def sources():
    return [rtlsim.LIB / f for f in ("fpgagen_add.v", "fpgagen_beat_count.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v", "fpgagen_fifo.v")]


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_add_sweep(tmp_path):
    instances, case = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, sources(), "test_add",
                                comment="fpgagen_add cases of test_add.py")
    assert measured == {p: float(c) for p, c in case["cycles"].items()}


def test_golden_cases_reach_both_ends():
    """The stimulus saturates: every case whose sums can leave [lo, hi] has outputs at the bound."""
    _, case = build()
    named = {name: q for name, q, _ in sweep_cases()}
    for p, (frames, *_) in case["outputs"].items():
        layer = named[p[: -len("_m_axis")]].layers[0]
        f0, f1 = layer.in_fmts
        ends = [(f0.min_int << layer.params.align[0]) + (f1.min_int << layer.params.align[1]),
                (f0.max_int << layer.params.align[0]) + (f1.max_int << layer.params.align[1])]
        reach = requantize(np.array(ends, np.int64), layer.shift, -(1 << 62), 1 << 62, layer.leaky).tolist()
        flat = {v for f in frames for v in f}
        if reach[0] <= layer.lo:
            assert layer.lo in flat, (p, "lo", layer.lo)
        if reach[1] >= layer.hi:
            assert layer.hi in flat, (p, "hi", layer.hi)
        assert reach[0] < layer.lo or reach[1] > layer.hi or p.startswith("h_"), p  # all but h saturate


def test_lint(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_lint_clean(TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])
    rtlsim.assert_lint_clean("fpgagen_add", sources(), {"IN0_WIDTH": 8, "IN1_WIDTH": 8, "LENGTH": 1, "ALIGN1": 3})
    rtlsim.assert_lint_clean("fpgagen_add", sources(), {"IN0_WIDTH": 4, "IN1_WIDTH": 8, "LENGTH": 12, "EW": 3})


def test_iverilog(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_builder_params():
    q = add_graph("u8.3", "s8.5", "s8.4", "relu", shape=(4, 3, 3))
    rtl = rtl_add.add_instance(q, q.layers[0])
    assert rtl.module == "fpgagen_add"
    assert rtl.params == {"IN0_WIDTH": 8, "IN0_SIGNED": 0, "IN1_WIDTH": 8, "IN1_SIGNED": 1, "OUT_WIDTH": 8,
                          "LENGTH": 36, "ALIGN0": 2, "ALIGN1": 0, "SHIFT": 1, "LO": 0, "HI": 127}
    assert rtl.cycles == 36 and rtl.mems == {}
    assert "u8.3 << 2 + s8.5 << 0, out s8.4" in rtl.describe
    even = add_graph("u8.3", "s8.5", "s8.4", "relu", shape=(4, 3, 3), rounding="nearest-even")
    assert rtl_add.add_instance(even, even.layers[0]).params == {**rtl.params, "ROUND_EVEN": 1}


def _bad(mutate):
    q = add_graph("s8.3", "s8.3", "s8.3", shape=(4,))
    mutate(q, q.layers[0])
    return q


@pytest.mark.parametrize("mutate,match", [
    (lambda q, l: setattr(l, "op", "dense"), r"layer 'res': fpgagen_add builds add layers, not 'dense'"),
    (lambda q, l: setattr(l, "params", None), r"layer 'res' \(add\): the integer IR has no alignment shift"),
    (lambda q, l: setattr(l, "params", AddParams((0, -1))),
     r"layer 'res' \(add\): input alignments must be left shifts >= 0, got \[0, -1\]"),
    (lambda q, l: setattr(l, "shift", None), r"layer 'res' \(add\): the integer IR has no shift/lo/hi"),
    (lambda q, l: q.shapes.update(b=(2, 2)), r"layer 'res' \(add\): input 'b' has shape \(2, 2\), the output \(4,\)"),
    (lambda q, l: (setattr(l, "inputs", ["a", "b", "c"]), setattr(l, "in_fmts", l.in_fmts * 2)),
     r"layer 'res' \(add\): fpgagen_add adds exactly 2 inputs, the layer has 3"),
    (lambda q, l: setattr(l, "params", AddParams((60, 0))),
     r"layer 'res' \(add\): the aligned sum needs 70 bits .* more than the 64"),
])
def test_builder_errors(mutate, match):
    q = _bad(mutate)
    with pytest.raises(BackendError, match=match):
        rtl_add.add_instance(q, q.layers[0])


def test_builder_wide():
    q = add_graph("u8.3", "s8.5", "s8.4", "relu", shape=(4, 3, 3))
    one = rtl_add.add_instance(q, q.layers[0])
    rtl = rtl_add.add_instance(q, q.layers[0], ew=2)
    keys = list(one.params)
    assert list(rtl.params) == [*keys[:6], "EW", *keys[6:]] and rtl.params["EW"] == 2
    assert rtl.cycles == 18 and "add of 36 elements, 2 elements/beat," in rtl.describe and "18 cycles/frame" in rtl.describe
    assert rtl_add.add_instance(q, q.layers[0], ew=1).params == one.params
    # what a join's FIFO must absorb is counted in elements: the output FIFO's words hold EW each
    from fpgagen.backends.rtl import resources
    assert resources.holds(rtl.module, rtl.params) == 2 * resources.holds(one.module, one.params)
    assert resources.memories(rtl.module, rtl.params)[0].width == 2 * 8 + 1


@pytest.mark.parametrize("shape,ew,match", [
    ((4, 3, 3), 3, r"EW \(elements per beat\) must divide the 4 channels of the output 'y' \(4, 3, 3\), got EW = 3$"),
    ((6,), 4, r"EW \(elements per beat\) must divide the 6 elements of the output 'y' \(6,\), got EW = 4$"),
    ((4,), -2, r"fpgagen_add takes EW \(elements per beat\) as an integer >= 1, not -2$"),
])
def test_builder_bad_ew(shape, ew, match):
    q = add_graph("s8.3", "s8.3", "s8.3", shape=shape)
    with pytest.raises(BackendError, match=r"^layer 'res' \(add\): " + match):
        rtl_add.add_instance(q, q.layers[0], ew=ew)
