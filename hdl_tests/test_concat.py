"""fpgagen_concat against fpgagen.golden.kernels.concat, many layers in one Verilator build.

Each case is a hand-made concat QLayer (shifts s_i = Fx_i - Fy, the output format's bounds or a
ReLU's, an optional fused LeakyRelu) built by fpgagen.backends.rtl.concat.concat_instances: two
inputs give one fpgagen_concat, n inputs a chain of n - 1 joined inside the wrapper. Cases:
right and left shifts and shift 0 per input, mixed signedness and words (u8, s4, s16 inputs,
a 16-bit output), vectors (one pixel), single-channel parts, 3 and 4 inputs (chains), the same
data on both inputs, LeakyRelu slopes 0.1 and -0.5 and frames at the extremes (every input at its
maximum, at its minimum, alternating) so that every case saturates. Wide streams (WIDE): EW = 2,
a divisor of the channel counts and EW = C_i elements per beat, chains included, in the same
build. Every case streams its frames with no pauses (cycles per frame measured == PIXELS *
sum(C_i) / EW), with random idle cycles
on each input independently and random back-pressure, and with a nearly stopped sink or
nearly stopped sources.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import concat as rtl_concat
from fpgagen.errors import BackendError
from fpgagen.golden.kernels import concat as golden_concat
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.activation import LeakyInt
from fpgagen.ops.concat import ConcatParams

TOP = "concat_sweep"
N_FRAMES = 8


def concat_graph(in_fmts, channels, fy: str, pixels=(2, 2), relu=False, leaky=None, name="cat",
                 rounding="nearest-away") -> QGraph:
    """A one-layer QGraph ``y = concat(x0, x1, ...)`` with the lowering's shift and bound rules."""
    fxs, out = [Format.parse(f) for f in in_fmts], Format.parse(fy)
    names = [f"x{i}" for i in range(len(fxs))]
    params = ConcatParams(tuple(f.frac - out.frac for f in fxs), tuple(channels))
    layer = QLayer(name, "concat", names, "y", fxs, out, params=params,
                   leaky=None if leaky is None else LeakyInt(*leaky), rounding=rounding)
    layer.lo, layer.hi = (0 if relu else out.min_int), out.max_int
    shapes = {t: (c, *pixels) for t, c in zip(names, channels)}
    shapes["y"] = (sum(channels), *pixels)
    return QGraph(f"concat_{name}", "x0", "y", [layer], shapes, {**dict(zip(names, fxs)), "y": out})


def cases() -> list[tuple[str, QGraph]]:
    out = [
        ("a", concat_graph(["s8.4", "s8.2"], (3, 2), "s8.3")),                       # shifts 1, -1
        ("b", concat_graph(["u8.3", "s8.5"], (2, 3), "s8.4", relu=True)),            # mixed signedness, ReLU
        ("c", concat_graph(["s8.4", "s8.4"], (1, 1), "s8.8", (4, 1), leaky=(205, 11))),  # LeakyRelu 0.1, << 4
        ("d", concat_graph(["s8.3", "u8.2", "s16.6"], (2, 1, 3), "s8.2", (3, 2), leaky=(-128, 8))),  # chain of 2
        ("e", concat_graph(["s8.0", "s8.7"], (5, 7), "s8.0", ())),                    # vectors, shifts 0, 7
        ("f", concat_graph(["s8.1", "s8.6", "s8.3", "s4.2"], (1, 1, 1, 2), "s8.3", (1, 1))),  # chain of 3
        ("g", concat_graph(["s8.5", "s8.5"], (2, 2), "s8.5", (2, 3))),                # the same tensor twice
        ("h", concat_graph(["s8.2", "u8.0"], (1, 4), "s16.6", (2, 2))),               # 16-bit out, left shifts
        ("ev", concat_graph(["s8.2", "s8.6"], (3, 2), "s8.3", rounding="nearest-even")),  # ROUND_EVEN, shifts -1, 3
        ("evl", concat_graph(["s8.2", "s8.5"], (1, 2), "s8.3", (3, 1), leaky=(192, 7), rounding="nearest-even")),
        # channel counts with common divisors, for the wide streams
        ("w2", concat_graph(["s8.4", "s8.2"], (4, 2), "s8.3", (2, 2))),
        ("w3", concat_graph(["s8.3", "s8.6", "s16.6"], (6, 3, 9), "s8.4", (2, 1), leaky=(205, 11))),  # chain of 2
        ("wv", concat_graph(["s8.5", "s8.1"], (8, 4), "s8.3", ())),                                  # vectors
        ("w4", concat_graph(["s8.2", "s8.6"], (4, 4), "s8.3", (1, 3), relu=True, rounding="nearest-even")),
    ]
    shifts = {s for _, q in out for s in q.layers[0].params.shifts}
    assert {-6, -4, -1, 0, 1, 3, 7} <= shifts, shifts
    return out


#: wide streams: (case name, EW elements per beat), simulated as "<name>_ew<EW>"
WIDE = [("g", 2), ("w2", 2), ("w3", 3), ("wv", 2), ("wv", 4), ("w4", 2), ("w4", 4)]


def sweep_cases() -> list[tuple[str, QGraph, int]]:
    """(instance name, graph, EW) of every instance of the sweep."""
    named = dict(cases())
    return [(name, q, 1) for name, q in named.items()] + [(f"{name}_ew{ew}", named[name], ew) for name, ew in WIDE]


def frames_for(layer: QLayer, shapes, n_frames: int, rng: np.random.Generator, same: bool):
    """Per input [N, C_i, ...] frames: all maximum, all minimum, alternating, zeros, random."""
    xs = []
    for i, (f, shape) in enumerate(zip(layer.in_fmts, shapes)):
        x = rng.integers(f.min_int, f.max_int + 1, size=(n_frames, *shape))
        x[0], x[1] = f.max_int, f.min_int
        x[2] = f.max_int if i % 2 else f.min_int
        x[3] = 0
        xs.append(x)
    if same:  # the same tensor on both inputs
        xs[1] = xs[0].copy()
    return xs


def hwc(frames: np.ndarray) -> list[list[int]]:
    """[N, C, H, W] (or [N, C]) -> one stream-ordered list per frame."""
    if frames.ndim == 2:
        return frames.tolist()
    return [f.transpose(1, 2, 0).ravel().tolist() for f in frames]


def instances_of(name: str, q: QGraph, ew: int = 1):
    """The wrapper instances of a case's chain, its input streams and its output stream."""
    layer = q.layers[0]
    stages = rtl_concat.concat_instances(q, layer, ew=ew)
    assert len(stages) == len(layer.inputs) - 1
    ins = [f"{name}_s{i}_axis" for i in range(len(layer.inputs))]
    out = f"{name}_m_axis"
    insts = []
    prev = ins[0]
    for k, rtl in enumerate(stages):
        last = k == len(stages) - 1
        m = out if last else f"{name}_k{k}_axis"
        p = rtl.params
        insts.append({"name": f"{name}_{k}", "module": rtl.module, "params": p,
                      "streams": [("s0_axis", prev, ew * p["IN0_WIDTH"], "in" if k == 0 else "wire"),
                                  ("s1_axis", ins[k + 1], ew * p["IN1_WIDTH"], "in"),
                                  ("m_axis", m, ew * p["OUT_WIDTH"], "out" if last else "wire")]})
        prev = m
    return insts, ins, out, stages


def build(n_frames: int = N_FRAMES):
    rng = np.random.default_rng(17)
    instances, inputs, outputs, cycles = [], {}, {}, {}
    for name, q, ew in sweep_cases():
        layer = q.layers[0]
        insts, ins, out, stages = instances_of(name, q, ew)
        shapes = [q.shapes[t] for t in layer.inputs]
        xs = frames_for(layer, shapes, n_frames, rng, same=name.split("_")[0] == "g")
        y = golden_concat(xs, layer.params.shifts, layer.lo, layer.hi, layer.leaky, layer.rounding)
        assert stages[-1].cycles * ew == math.prod(q.shapes["y"])
        assert all(st.params.get("EW", 1) == ew for st in stages)
        instances += insts
        for t, f, x in zip(ins, layer.in_fmts, xs):
            inputs[t] = [hwc(x), f.word, ew]
        outputs[out] = [hwc(y), layer.out_fmt.word, bool(layer.lo < 0), ew]
        cycles[out] = stages[-1].cycles
    case = {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": n_frames, "seed": 9,
            "cycle_tolerance": 0.0}
    return instances, case


def sources():
    return [rtlsim.LIB / f for f in ("fpgagen_concat.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v", "fpgagen_fifo.v")]


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_concat_sweep(tmp_path):
    instances, case = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, sources(), "test_concat",
                                comment="fpgagen_concat cases of test_concat.py")
    assert set(measured) == set(case["cycles"])
    assert measured == {p: float(c) for p, c in case["cycles"].items()}


def test_golden_cases_saturate():
    """The stimulus saturates: every case but those that cannot (g: shift 0 into the same format;
    h: left shifts into 16 bits) has outputs at the upper bound, and at the lower one but for d
    (its negative LeakyRelu slope makes every output >= 0)."""
    _, case = build()
    named = dict(cases())
    for p, (frames, *_) in case["outputs"].items():
        name = p[: -len("_m_axis")].split("_ew")[0]
        layer = named[name].layers[0]
        flat = {v for f in frames for v in f}
        if name not in ("g", "h"):
            assert layer.hi in flat and (layer.lo in flat or name == "d"), (p, layer.lo, layer.hi, min(flat), max(flat))


def test_lint(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_lint_clean(TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])
    rtlsim.assert_lint_clean("fpgagen_concat", sources(), {"C0": 1, "C1": 1, "PIXELS": 1})
    rtlsim.assert_lint_clean("fpgagen_concat", sources(), {"C0": 6, "C1": 2, "EW": 2, "PIXELS": 3, "LEAKY0": 1,
                                                           "ALPHA": 205, "ALPHA_FRAC": 11})
    rtlsim.assert_lint_clean("fpgagen_concat", sources(), {"C0": 5, "C1": 2, "PIXELS": 9, "LEAKY1": 1,
                                                           "ALPHA": 205, "ALPHA_FRAC": 11, "SHIFT0": -3})


def test_iverilog(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path):
    instances, _ = build(n_frames=5)
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_builder_params():
    q = concat_graph(["u8.3", "s8.5", "s16.6"], (2, 3, 1), "s8.4", (3, 3), leaky=(205, 11))
    first, second = rtl_concat.concat_instances(q, q.layers[0])
    assert first.module == second.module == "fpgagen_concat"
    assert first.params == {"IN0_WIDTH": 8, "IN0_SIGNED": 0, "IN1_WIDTH": 8, "IN1_SIGNED": 1, "OUT_WIDTH": 8,
                            "C0": 2, "C1": 3, "PIXELS": 9, "SHIFT0": -1, "SHIFT1": 1, "LO": -128, "HI": 127,
                            "LEAKY0": 1, "LEAKY1": 1, "ALPHA": 205, "ALPHA_FRAC": 11}
    # the chained input is already in the output format and clamped: shift 0, no LeakyRelu
    assert second.params == {"IN0_WIDTH": 8, "IN0_SIGNED": 1, "IN1_WIDTH": 16, "IN1_SIGNED": 1, "OUT_WIDTH": 8,
                             "C0": 5, "C1": 1, "PIXELS": 9, "SHIFT0": 0, "SHIFT1": 2, "LO": -128, "HI": 127,
                             "LEAKY0": 0, "LEAKY1": 1, "ALPHA": 205, "ALPHA_FRAC": 11}
    assert (first.cycles, second.cycles) == (45, 54) and first.mems == second.mems == {}
    assert "stage 1 of 2" in second.describe and "LeakyRelu 205*2**-11" in second.describe


def test_chain_is_exact():
    """concat(concat(a, b), c) with shift 0 and no LeakyRelu on the chained part equals the
    one-step golden concat, LeakyRelu and saturation included."""
    rng = np.random.default_rng(3)
    xs = [rng.integers(-128, 128, size=(50, c, 2, 2)) for c in (2, 1, 3)]
    shifts, lo, hi, leaky = (2, -1, 4), -128, 127, (205, 11)
    inner = golden_concat(xs[:2], shifts[:2], lo, hi, leaky)
    chained = np.concatenate([golden_concat([inner], [0], lo, hi), golden_concat(xs[2:], shifts[2:], lo, hi, leaky)],
                             axis=1)
    assert (chained == golden_concat(xs, shifts, lo, hi, leaky)).all()


def _bad(mutate):
    q = concat_graph(["s8.3", "s8.3"], (2, 2), "s8.3", (2, 2))
    mutate(q, q.layers[0])
    return q


@pytest.mark.parametrize("mutate,match", [
    (lambda q, l: setattr(l, "op", "add"), r"layer 'cat': fpgagen_concat builds concat layers, not 'add'"),
    (lambda q, l: setattr(l, "params", None), r"layer 'cat' \(concat\): the integer IR has no ConcatParams"),
    (lambda q, l: setattr(l, "params", ConcatParams((0,), (2,))),
     r"layer 'cat' \(concat\): a concat needs 2 or more inputs .* shifts \[0\], channels \[2\]"),
    (lambda q, l: setattr(l, "params", ConcatParams((0, 0), (2, 0))),
     r"layer 'cat' \(concat\): shifts \[0, 0\] must be integers and channels \[2, 0\] integers >= 1"),
    (lambda q, l: q.shapes.update(y=(5, 2, 2)),
     r"layer 'cat' \(concat\): the output 'y' has 5 channels \(5, 2, 2\), the inputs' channels \[2, 2\] sum to 4"),
    (lambda q, l: q.shapes.update(x1=(2, 2, 3)),
     r"layer 'cat' \(concat\): input 'x1' has shape \(2, 2, 3\), expected \(2, 2, 2\)"),
    (lambda q, l: setattr(l, "lo", None), r"layer 'cat' \(concat\): the integer IR has no lo/hi"),
    (lambda q, l: setattr(l, "leaky", LeakyInt(1 << 17, 20)),
     r"layer 'cat' \(concat\): the LeakyRelu slope A = 131072 .* outside the -65535..65535"),
])
def test_builder_errors(mutate, match):
    q = _bad(mutate)
    with pytest.raises(BackendError, match=match):
        rtl_concat.concat_instances(q, q.layers[0])


def test_builder_wide():
    q = concat_graph(["u8.3", "s8.5", "s16.6"], (2, 4, 6), "s8.4", (3, 3), leaky=(205, 11))
    one = rtl_concat.concat_instances(q, q.layers[0])
    wide = rtl_concat.concat_instances(q, q.layers[0], ew=2)
    for a, b in zip(one, wide):
        keys = list(a.params)
        assert list(b.params) == [*keys[:7], "EW", *keys[7:]] and b.params["EW"] == 2
        assert b.cycles * 2 == a.cycles and "pixels, 2 elements/beat, out s8.4" in b.describe
    assert [st.cycles for st in wide] == [27, 54]


@pytest.mark.parametrize("channels,pixels,ew,match", [
    ((2, 3), (2, 2), 2, r"EW \(elements per beat\) must divide the 3 channels of the input 'x1' \(3, 2, 2\), "
                        r"got EW = 2$"),
    ((4, 6), (2, 2), 4, r"EW \(elements per beat\) must divide the 6 channels of the input 'x1' \(6, 2, 2\), "
                        r"got EW = 4$"),
    ((6, 4), (), 4, r"EW \(elements per beat\) must divide the 6 elements of the input 'x0' \(6,\), got EW = 4$"),
    ((2, 2), (2, 2), None, r"fpgagen_concat takes EW \(elements per beat\) as an integer >= 1, not None$"),
])
def test_builder_bad_ew(channels, pixels, ew, match):
    q = concat_graph(["s8.3", "s8.3"], channels, "s8.3", pixels)
    with pytest.raises(BackendError, match=r"^layer 'cat' \(concat\): " + match):
        rtl_concat.concat_instances(q, q.layers[0], ew=ew)
