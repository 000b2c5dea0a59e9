"""fpgagen_act against fpgagen.golden.kernels.leakyrelu, many layers in one Verilator build.

Each case is a hand-made standalone LeakyRelu QLayer (``shift = Fx - Fy``, the output format's
bounds, ``leaky = LeakyInt(A, Fal)`` as the lowering quantizes alpha) built by
fpgagen.backends.rtl.act.act_instance. Cases: slopes 0.1, 0.25, 0.01, -0.5 and 1.5, right and
left shifts and shift 0, SHIFT + Fal <= 0, an unsigned input (never negative), a 16-bit input
and a 16-bit output, a 4-bit input, one-element frames and maps; every input value of the word
appears (the extremes and the rounding ties included). Wide streams (WIDE): EW = 2, a divisor
of C and EW = C (or of the vector's length) elements per beat, in the same build. Every case
streams its frames with no pauses (cycles per frame measured == the elements of a frame / EW),
with random idle cycles and back-pressure, and with a nearly stopped sink or source.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import act as rtl_act
from fpgagen.errors import BackendError
from fpgagen.golden.kernels import leakyrelu
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.activation import LeakyInt

TOP = "act_sweep"


def act_graph(fx: str, fy: str, leaky, shape=(3, 2, 2), name="lrelu", rounding="nearest-away") -> QGraph:
    """A one-layer QGraph ``y = LeakyRelu(x)`` requantized from Fx to Fy."""
    x_fmt, y_fmt = Format.parse(fx), Format.parse(fy)
    layer = QLayer(name, "leakyrelu", ["x"], "y", [x_fmt], y_fmt, shift=x_fmt.frac - y_fmt.frac,
                   lo=y_fmt.min_int, hi=y_fmt.max_int, leaky=LeakyInt(*leaky), rounding=rounding)
    shape = tuple(shape)
    return QGraph(f"act_{name}", "x", "y", [layer], {"x": shape, "y": shape}, {"x": x_fmt, "y": y_fmt})


def cases() -> list[tuple[str, QGraph]]:
    return [
        ("a", act_graph("s8.4", "s8.4", (205, 11))),                    # alpha 0.1, shift 0
        ("b", act_graph("s8.7", "s8.3", (128, 9), shape=(5, 3, 3))),     # alpha 0.25, shift 4
        ("c", act_graph("s8.2", "s8.5", (192, 7), shape=(16,))),         # alpha 1.5, shift -3, saturating
        ("d", act_graph("s16.8", "s8.4", (-128, 8), shape=(2, 4, 4))),   # alpha -0.5, a 16-bit input
        ("e", act_graph("u8.4", "s8.3", (205, 11), shape=(7,))),         # unsigned input: never negative
        ("f", act_graph("s8.3", "s16.12", (164, 14), shape=(1,))),       # alpha 0.01, 1-element frames, 16-bit out
        ("g", act_graph("s4.1", "s8.1", (3, -1), shape=(1, 1, 3))),      # 4-bit input, SHIFT + Fal = -1
        ("h", act_graph("s8.0", "s8.6", (205, 11), shape=(4,))),         # shift -6, SHIFT + Fal = 5
        ("ev", act_graph("s8.7", "s8.3", (128, 9), shape=(8,), rounding="nearest-even")),  # ROUND_EVEN, shift 4
        ("ev2", act_graph("s8.4", "s8.4", (205, 11), shape=(6,), rounding="nearest-even")),  # ties of x * A only
        ("c6", act_graph("s8.5", "s8.4", (205, 11), shape=(6, 3, 2))),   # 6 channels, for EW 2, 3, 6
    ]


#: wide streams: (case name, EW elements per beat), simulated as "<name>_ew<EW>"
WIDE = [("a", 3), ("b", 5), ("c", 4), ("c", 16), ("d", 2), ("e", 7), ("ev", 8), ("c6", 2), ("c6", 3),
        ("c6", 6)]


def sweep_cases() -> list[tuple[str, QGraph, int]]:
    """(instance name, graph, EW) of every instance of the sweep."""
    named = dict(cases())
    return [(name, q, 1) for name, q in cases()] + [(f"{name}_ew{ew}", named[name], ew) for name, ew in WIDE]


def frames_for(layer: QLayer, length: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Every value of the input word once (in order, across frames), then random frames."""
    f = layer.in_fmts[0]
    every = np.arange(f.min_int, f.max_int + 1)
    if every.size > 512:  # a 16-bit input: the extremes, around 0 and a random sample
        every = np.concatenate([every[:64], every[-64:], np.arange(-200, 200), rng.choice(every, 200)])
    n = max(n_frames, -(-every.size // length))
    x = rng.integers(f.min_int, f.max_int + 1, size=(n, length))
    x.reshape(-1)[: every.size] = every
    return x


def build(n_frames: int = 6):
    rng = np.random.default_rng(13)
    instances, inputs, outputs, cycles = [], {}, {}, {}
    for name, q, ew in sweep_cases():
        layer = q.layers[0]
        rtl = rtl_act.act_instance(q, layer, ew=ew)
        length = math.prod(q.shapes["y"])
        assert rtl.cycles * ew == length == rtl.params["LENGTH"] and rtl.params.get("EW", 1) == ew
        x = frames_for(layer, length, n_frames, rng)
        y = leakyrelu(x, layer.shift, layer.lo, layer.hi, layer.leaky, layer.rounding)
        wi, wo = rtl.params["IN_WIDTH"], rtl.params["OUT_WIDTH"]
        instances.append(rtlsim.stream_instance(name, rtl, wi, wo))
        inputs[f"{name}_s_axis"] = [x.tolist(), wi, ew]
        outputs[f"{name}_m_axis"] = [y.tolist(), wo, True, ew]
        cycles[f"{name}_m_axis"] = rtl.cycles
    case = {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": n_frames, "seed": 3,
            "cycle_tolerance": 0.0}
    return instances, case


def sources():
    return [rtlsim.LIB / f for f in ("fpgagen_act.v", "fpgagen_beat_count.v", "fpgagen_requant_lane.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v", "fpgagen_fifo.v")]


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_act_sweep(tmp_path):
    instances, case = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, sources(), "test_act",
                                comment="fpgagen_act cases of test_act.py")
    assert measured == {p: float(c) for p, c in case["cycles"].items()}


def test_golden_cases_cover_both_paths():
    """The stimulus takes the negative path (a result differing from the plain requantizer) in
    every case with a signed input, and saturates where the shifts allow it."""
    from fpgagen.golden.kernels import requantize

    _, case = build()
    named = {name: q for name, q, _ in sweep_cases()}
    for p, (frames, *_) in case["outputs"].items():
        layer = named[p[: -len("_m_axis")]].layers[0]
        x = np.array(case["inputs"][p.replace("_m_", "_s_")][0])
        plain = requantize(x, layer.shift, layer.lo, layer.hi)
        differs = (np.array(frames) != plain).any()
        assert differs == layer.in_fmts[0].signed, p
    assert {v for f in case["outputs"]["c_m_axis"][0] for v in f} >= {-128, 127}


def test_lint(tmp_path):
    instances, _ = build(n_frames=2)
    rtlsim.assert_lint_clean(TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])
    rtlsim.assert_lint_clean("fpgagen_act", sources(), {"LENGTH": 1})
    rtlsim.assert_lint_clean("fpgagen_act", sources(), {"LENGTH": 12, "EW": 4, "LEAKY": 1, "ALPHA": 205,
                                                        "ALPHA_FRAC": 11})


def test_iverilog(tmp_path):
    instances, _ = build(n_frames=2)
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path):
    instances, _ = build(n_frames=2)
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_builder_params():
    q = act_graph("s8.4", "s8.3", (205, 11), shape=(4, 3, 3))
    rtl = rtl_act.act_instance(q, q.layers[0])
    assert rtl.module == "fpgagen_act"
    assert rtl.params == {"IN_WIDTH": 8, "IN_SIGNED": 1, "OUT_WIDTH": 8, "LENGTH": 36, "SHIFT": 1, "LO": -128,
                          "HI": 127, "LEAKY": 1, "ALPHA": 205, "ALPHA_FRAC": 11}
    assert rtl.cycles == 36 and rtl.mems == {}
    assert "in s8.4 out s8.3, shift 1, clamp [-128, 127], LeakyRelu 205*2**-11" in rtl.describe


def _bad(mutate):
    q = act_graph("s8.3", "s8.3", (205, 11), shape=(4,))
    mutate(q, q.layers[0])
    return q


@pytest.mark.parametrize("mutate,match", [
    (lambda q, l: setattr(l, "op", "add"), r"layer 'lrelu': fpgagen_act builds leakyrelu layers, not 'add'"),
    (lambda q, l: setattr(l, "leaky", None), r"layer 'lrelu' \(leakyrelu\): the integer IR has no LeakyRelu slope"),
    (lambda q, l: setattr(l, "shift", None), r"layer 'lrelu' \(leakyrelu\): the integer IR has no shift/lo/hi"),
    (lambda q, l: q.shapes.update(x=(2, 2)),
     r"layer 'lrelu' \(leakyrelu\): input 'x' has shape \(2, 2\), the output \(4,\)"),
    (lambda q, l: setattr(l, "leaky", LeakyInt(70000, 11)),
     r"layer 'lrelu' \(leakyrelu\): the LeakyRelu slope A = 70000 .* outside the -65535..65535"),
])
def test_builder_errors(mutate, match):
    q = _bad(mutate)
    with pytest.raises(BackendError, match=match):
        rtl_act.act_instance(q, q.layers[0])


def test_builder_wide():
    q = act_graph("s8.4", "s8.3", (205, 11), shape=(4, 3, 3))
    one = rtl_act.act_instance(q, q.layers[0])
    rtl = rtl_act.act_instance(q, q.layers[0], ew=4)
    assert list(rtl.params) == ["IN_WIDTH", "IN_SIGNED", "OUT_WIDTH", "LENGTH", "EW", *list(one.params)[4:]]
    assert rtl.params["EW"] == 4 and rtl.cycles == 9 and one.cycles == 36
    assert "leakyrelu of 36 elements, 4 elements/beat, in s8.4" in rtl.describe and "9 cycles/frame" in rtl.describe
    assert "EW" not in rtl_act.act_instance(q, q.layers[0], ew=1).params


@pytest.mark.parametrize("shape,ew,match", [
    ((4, 3, 3), 3, r"EW \(elements per beat\) must divide the 4 channels of the output 'y' \(4, 3, 3\), got EW = 3$"),
    ((10,), 4, r"EW \(elements per beat\) must divide the 10 elements of the output 'y' \(10,\), got EW = 4$"),
    ((4,), 0, r"fpgagen_act takes EW \(elements per beat\) as an integer >= 1, not 0$"),
    ((4,), 2.0, r"fpgagen_act takes EW \(elements per beat\) as an integer >= 1, not 2.0$"),
])
def test_builder_bad_ew(shape, ew, match):
    q = act_graph("s8.3", "s8.3", (205, 11), shape=shape)
    with pytest.raises(BackendError, match=r"^layer 'lrelu' \(leakyrelu\): " + match):
        rtl_act.act_instance(q, q.layers[0], ew=ew)
