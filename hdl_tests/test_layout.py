"""fpgagen_resize and fpgagen_pad against the golden kernels of their ops (resize_nearest, pad_zeros).

Each case is a hand-made resize / pad QLayer (the output format is the input format) built by
fpgagen.backends.rtl.layout; a generated wrapper holds one instance per case on its own streams.
Resize: factors 1..3 in either direction, the identity (1x1), 1-word rows (C = W = 1: a ring of
2 words), a 1-row map, many channels, 4-, 8- (signed and unsigned) and 16-bit words. Pad: all
four sides, one side only, asymmetric pads, pads larger than the map, no padding at all and a
1x1 map. Frames: all minimum, all maximum, then distinct values (every element differs from its
neighbours, so any misplaced element shows) and random ones. Wide streams (WIDE): EW = 2, a
divisor of C and EW = C elements per beat (a 1-word row of EW elements included), in the same
build. Every case streams its frames with no pauses (cycles per frame measured == the output
elements of a frame / EW), with random idle cycles and back-pressure, and with a nearly stopped
sink or source.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import layout as rtl_layout
from fpgagen.backends.rtl import resources
from fpgagen.errors import BackendError
from fpgagen.ops.pad import pad_zeros as golden_pad
from fpgagen.ops.resize import resize_nearest
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops.pad import PadParams
from fpgagen.ops.resize import ResizeParams

TOP = "layout_sweep"
N_FRAMES = 5


def layout_graph(op: str, shape, fmt: str, value, name: str | None = None) -> QGraph:
    """A one-layer QGraph of ``op`` ("resize": factors (fh, fw); "pad": (top, left, bottom, right))."""
    f = Format.parse(fmt)
    c, h, w = shape
    if op == "resize":
        params, out = ResizeParams(tuple(value)), (c, h * value[0], w * value[1])
    else:
        t, l, b, r = value
        params, out = PadParams(tuple(value)), (c, h + t + b, w + l + r)
    name = name or op
    layer = QLayer(name, op, ["x"], "y", [f], f, params=params)
    return QGraph(f"{op}_{name}", "x", "y", [layer], {"x": tuple(shape), "y": out}, {"x": f, "y": f})


# name -> (op, (C, H, W), format, factors or pads)
CASES = {
    "r22": ("resize", (3, 2, 2), "s8.4", (2, 2)),
    "r13": ("resize", (1, 3, 4), "u8.2", (1, 3)),
    "r31": ("resize", (2, 3, 3), "s8.0", (3, 1)),
    "r11": ("resize", (4, 2, 3), "s8.3", (1, 1)),      # the identity
    "r1w": ("resize", (1, 1, 1), "s8.5", (1, 1)),      # a 1-word row, identity
    "r1w22": ("resize", (1, 2, 1), "u8.0", (2, 2)),    # 1-word rows
    "r1w32": ("resize", (1, 1, 1), "s4.1", (3, 2)),    # a 1x1 map, 4-bit words
    "rrow": ("resize", (2, 1, 5), "s16.8", (2, 1)),    # a 1-row map, 16-bit words
    "r23c": ("resize", (5, 3, 2), "s8.6", (2, 3)),
    "pall": ("pad", (3, 2, 2), "s8.4", (1, 1, 1, 1)),
    "pasym": ("pad", (1, 3, 4), "u8.2", (0, 2, 1, 0)),
    "pbig": ("pad", (2, 1, 1), "s8.1", (2, 0, 0, 3)),  # pads larger than the map
    "pnone": ("pad", (1, 2, 2), "s8.7", (0, 0, 0, 0)),
    "ptop": ("pad", (4, 3, 3), "s16.3", (1, 0, 0, 0)),
    "pbr": ("pad", (2, 2, 3), "s4.0", (0, 0, 2, 2)),
    "p1x1": ("pad", (1, 1, 1), "u8.0", (1, 1, 1, 1)),
    # channel counts with divisors, for the wide streams
    "r6": ("resize", (6, 2, 3), "s8.2", (2, 2)),
    "r4w1": ("resize", (4, 2, 1), "u8.1", (2, 3)),   # with EW = 4: 1-word rows
    "p6": ("pad", (6, 2, 3), "s8.3", (0, 1, 1, 2)),   # (a top pad emits the next frame's first row early)
}
#: wide streams: (case name, EW elements per beat), simulated as "<name>_ew<EW>"
WIDE = [("r22", 3), ("r11", 2), ("r11", 4), ("r31", 2), ("r6", 2), ("r6", 3), ("r6", 6), ("r4w1", 4), ("r4w1", 2),
        ("pall", 3), ("ptop", 2), ("ptop", 4), ("pbr", 2), ("p6", 3), ("p6", 6)]


def instance(q: QGraph, ew: int = 1):
    layer = q.layers[0]
    return (rtl_layout.resize_instance if layer.op == "resize" else rtl_layout.pad_instance)(q, layer, ew=ew)


def frames_for(fmt: Format, shape, rng: np.random.Generator) -> np.ndarray:
    lo, hi = fmt.min_int, fmt.max_int
    n = math.prod(shape)
    distinct = (np.arange(n) % (hi - lo)) + lo + 1  # never 0 unless the word is tiny, neighbours differ
    frames = [np.full(shape, lo), np.full(shape, hi), distinct.reshape(shape)]
    frames += [rng.integers(lo, hi + 1, size=shape) for _ in range(N_FRAMES - 3)]
    return np.stack(frames).astype(np.int64)


def hwc(frames: np.ndarray) -> list[list[int]]:
    return [f.transpose(1, 2, 0).ravel().tolist() for f in frames]


def build():
    rng = np.random.default_rng(31)
    instances, inputs, outputs, cycles = [], {}, {}, {}
    sweep = [(name, spec, 1) for name, spec in CASES.items()] + [(f"{name}_ew{ew}", CASES[name], ew)
                                                                 for name, ew in WIDE]
    for name, (op, shape, fmt, value), ew in sweep:
        q = layout_graph(op, shape, fmt, value, name)
        rtl = instance(q, ew)
        f = q.fmts["x"]
        x = frames_for(f, shape, rng)
        y = resize_nearest(x, value) if op == "resize" else golden_pad(x, value)
        assert rtl.cycles * ew == math.prod(q.shapes["y"]) == math.prod(y.shape[1:])
        assert rtl.params.get("EW", 1) == ew
        instances.append(rtlsim.stream_instance(name, rtl, f.word, f.word))
        inputs[f"{name}_s_axis"] = [hwc(x), f.word, ew]
        outputs[f"{name}_m_axis"] = [hwc(y), f.word, bool(f.signed), ew]
        cycles[f"{name}_m_axis"] = rtl.cycles
    case = {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": N_FRAMES, "seed": 4,
            "cycle_tolerance": 0.0}
    return instances, case


def sources():
    return [rtlsim.LIB / f for f in ("fpgagen_resize.v", "fpgagen_pad.v", "fpgagen_fifo.v")]


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_layout_sweep(tmp_path):
    instances, case = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, sources(), "test_layout",
                                comment="fpgagen_resize / fpgagen_pad cases of test_layout.py")
    assert measured == {p: float(c) for p, c in case["cycles"].items()}


def test_lint(tmp_path):
    instances, _ = build()
    rtlsim.assert_lint_clean(TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_iverilog(tmp_path):
    instances, _ = build()
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


@pytest.mark.parametrize("params,memories", [
    ({"WIDTH": 8, "C": 3, "H": 4, "W": 5, "FH": 2, "FW": 2}, 2),   # the row ring and the output FIFO
    ({"WIDTH": 8, "C": 1, "H": 2, "W": 1, "FH": 3, "FW": 1}, 2),
    ({"WIDTH": 8, "C": 6, "EW": 3, "H": 4, "W": 5, "FH": 2, "FW": 2}, 2),
])
def test_yosys_resize(tmp_path, params, memories):
    """Yosys elaborates fpgagen_resize cleanly; its memories are the ones resources.memories() lists."""
    assert len(resources.memories("fpgagen_resize", params)) == memories
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_resize", sources(), params, memories=1)


def test_yosys(tmp_path):
    instances, _ = build()
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_builder_params():
    q = layout_graph("resize", (3, 4, 5), "u8.3", (2, 3))
    rtl = rtl_layout.resize_instance(q, q.layers[0])
    assert (rtl.module, rtl.params) == ("fpgagen_resize", {"WIDTH": 8, "C": 3, "H": 4, "W": 5, "FH": 2, "FW": 3})
    assert rtl.cycles == 3 * 8 * 15 and rtl.mems == {}
    assert "nearest resize 3x4x5 -> 3x8x15 (factors 2x3), u8.3, row buffer 15 x 8 bits" in rtl.describe
    q = layout_graph("pad", (2, 3, 3), "s8.4", (1, 0, 2, 3))
    rtl = rtl_layout.pad_instance(q, q.layers[0])
    assert (rtl.module, rtl.params) == ("fpgagen_pad", {"WIDTH": 8, "C": 2, "H": 3, "W": 3, "PAD_T": 1, "PAD_L": 0,
                                                        "PAD_B": 2, "PAD_R": 3})
    assert rtl.cycles == 2 * 6 * 6
    assert "zero pad 2x3x3 -> 2x6x6 (pads 1/0/2/3), s8.4" in rtl.describe


@pytest.mark.parametrize("op,mutate,match", [
    ("resize", lambda q, l: setattr(l, "op", "pad"), r"layer 'resize': fpgagen_resize builds resize layers, not 'pad'"),
    ("resize", lambda q, l: setattr(l, "params", None), r"layer 'resize' \(resize\): the integer IR has no ResizeParams"),
    ("resize", lambda q, l: setattr(l, "params", ResizeParams((0, 2))),
     r"layer 'resize' \(resize\): factors \(fh, fw\) must be integers >= 1, got \(0, 2\)"),
    ("resize", lambda q, l: setattr(l, "params", ResizeParams((2,))),
     r"layer 'resize' \(resize\): factors must be \(fh, fw\), got \(2,\)"),
    ("resize", lambda q, l: q.shapes.update(x=(12,)),
     r"layer 'resize' \(resize\): fpgagen_resize takes a \(C, H, W\) feature map, the input 'x' has shape \(12,\)"),
    ("resize", lambda q, l: q.shapes.update(y=(3, 4, 5)),
     r"layer 'resize' \(resize\): the output 'y' has shape \(3, 4, 5\), but upsampling \(3, 2, 2\) by 2x2 "
     r"gives \(3, 4, 4\)"),
    ("resize", lambda q, l: setattr(l, "out_fmt", Format.parse("s8.3")),
     r"layer 'resize' \(resize\): resize is exact, the output format s8.3 must be the input format s8.4"),
    ("pad", lambda q, l: setattr(l, "params", PadParams((1, -1, 0, 0))),
     r"layer 'pad' \(pad\): pads \(top, left, bottom, right\) must be integers >= 0, got \(1, -1, 0, 0\)"),
    ("pad", lambda q, l: setattr(l, "params", ResizeParams((1, 1))), r"layer 'pad' \(pad\): the integer IR has no PadParams"),
    ("pad", lambda q, l: q.shapes.update(y=(3, 2, 2)),
     r"layer 'pad' \(pad\): the output 'y' has shape \(3, 2, 2\), but padding \(3, 2, 2\) by \(1, 1, 1, 1\) "
     r"\(top, left, bottom, right\) gives \(3, 4, 4\)"),
])
def test_builder_errors(op, mutate, match):
    q = layout_graph(op, (3, 2, 2), "s8.4", (2, 2) if op == "resize" else (1, 1, 1, 1))
    mutate(q, q.layers[0])
    builder = rtl_layout.resize_instance if op == "resize" else rtl_layout.pad_instance
    with pytest.raises(BackendError, match=match):
        builder(q, q.layers[0])


def test_builder_wide():
    q = layout_graph("resize", (6, 4, 5), "u8.3", (2, 3))
    rtl = rtl_layout.resize_instance(q, q.layers[0], ew=3)
    assert rtl.params == {"WIDTH": 8, "C": 6, "EW": 3, "H": 4, "W": 5, "FH": 2, "FW": 3}
    assert rtl.cycles == 6 * 8 * 15 // 3
    assert "(factors 2x3), 3 elements/beat, u8.3, row buffer 10 x 24 bits" in rtl.describe
    assert resources.memories("fpgagen_resize", rtl.params)[0].depth == 10
    q = layout_graph("pad", (4, 3, 3), "s8.4", (1, 0, 2, 3))
    rtl = rtl_layout.pad_instance(q, q.layers[0], ew=2)
    assert list(rtl.params)[:3] == ["WIDTH", "C", "EW"] and rtl.cycles == 4 * 6 * 6 // 2
    assert "EW" not in rtl_layout.pad_instance(q, q.layers[0], ew=1).params


@pytest.mark.parametrize("op", ["resize", "pad"])
def test_builder_bad_ew(op):
    q = layout_graph(op, (3, 2, 2), "s8.4", (2, 2) if op == "resize" else (1, 1, 1, 1))
    builder = rtl_layout.resize_instance if op == "resize" else rtl_layout.pad_instance
    with pytest.raises(BackendError, match=rf"^layer '{op}' \({op}\): EW \(elements per beat\) must divide the 3 "
                                           rf"channels of the input 'x' \(3, 2, 2\), got EW = 2$"):
        builder(q, q.layers[0], ew=2)
    with pytest.raises(BackendError, match=rf"^layer '{op}' \({op}\): fpgagen_{op} takes EW \(elements per beat\) "
                                           rf"as an integer >= 1, not '2'$"):
        builder(q, q.layers[0], ew="2")
