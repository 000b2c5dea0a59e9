"""Per-channel weight formats (SPEC.md 3, ``quantization.per_channel``): format choice, the IR's
shift vector, the golden model channel by channel, the pre-alignment every backend computes
(exactly the per-channel rounding), the config key, formats.yaml, the report, and C + HLS end
to end on a small depthwise-separable model (Verilog: hdl_tests/test_conv2d.py, test_dense.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from fpgagen.errors import ConfigError, QuantizationError
from fpgagen.fixed import shift_round
from fpgagen.golden import kernels as k
from fpgagen.golden.model import run_int
from fpgagen.ir.format import Format
from fpgagen.ir.graph import Graph, Node, conv_output_hw
from fpgagen.ops.conv import ConvParams
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower


def _scaled(rng, shape, exps):
    """Random weights, output channel c scaled by 2**exps[c] (as BN folding scales channels)."""
    w = rng.normal(0, 0.5, shape)
    return w * np.exp2(np.asarray(exps, np.float64)).reshape(-1, *([1] * (len(shape) - 1)))


def separable_graph(seed: int = 0) -> Graph:
    """conv 3x3 (1 -> 6, ReLU) -> depthwise 3x3 (6, ReLU) -> pointwise 1x1 (6 -> 4) -> flatten ->
    dense (4*4*4 -> 5): every channel scaled by its own power of two."""
    rng = np.random.default_rng(seed)
    hw = (6, 6)
    same = ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1))
    nodes = [
        Node("c1", "conv", ["x"], "a", same, _scaled(rng, (6, 1, 3, 3), [-3, 0, 1, -1, -5, 0]),
             rng.normal(0, 0.2, 6), "relu", ["c1"], "Conv"),
        Node("dw", "conv", ["a"], "b", ConvParams(kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), groups=6),
             _scaled(rng, (6, 1, 3, 3), [0, -4, 2, -2, -6, 1]), rng.normal(0, 0.2, 6), "relu", ["dw"], "Conv"),
        Node("pw", "conv", ["b"], "c", ConvParams(kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)),
             _scaled(rng, (4, 6, 1, 1), [-2, 1, 0, -5]), rng.normal(0, 0.2, 4), None, ["pw"], "Conv"),
        Node("fl", "flatten", ["c"], "f", None, onnx_nodes=["fl"], onnx_op="Flatten"),
        Node("fc", "dense", ["f"], "y", None, _scaled(rng, (5, 36), [0, -3, 1, -6, -1]), rng.normal(0, 0.2, 5),
             None, ["fc"], "Gemm"),
    ]
    oh = conv_output_hw(hw, (3, 3), (2, 2), (1, 1, 1, 1))
    shapes = {"x": (1, *hw), "a": (6, *hw), "b": (6, *oh), "c": (4, *oh), "f": (36,), "y": (5,)}
    return Graph("separable", "x", "y", nodes, shapes, onnx_output_shape=(5,)).validate()


@pytest.fixture(scope="module")
def cal():
    g = separable_graph()
    x = np.random.default_rng(1).uniform(0, 1, (64, 1, 6, 6)).astype(np.float32)
    return calibrate(g, x, progress=False)


def _q(cal, **kw):
    return lower(cal.graph, choose_formats(cal, QuantOptions(**kw)))[0]


def test_each_channel_chooses_its_own_format(cal):
    q = _q(cal, per_channel=True, weight_method="max")
    dw = q.layer("dw")
    assert dw.per_channel and len(dw.w_fmts) == 6
    w = cal.graph.nodes[1].weight
    own = [Format.from_msb(int(np.floor(np.log2(np.abs(row).max()))), True, 8) for row in w]  # max: own top bit
    cap = min(f.frac for f in own) + 8  # at most word bits above the coarsest channel
    assert max(f.frac for f in own) > cap  # the 2**-6 channel is capped here
    assert list(dw.w_fmts) == [f if f.frac <= cap else Format(True, 8, cap) for f in own]
    assert dw.w_fmt == max(dw.w_fmts, key=lambda f: f.frac)
    x_frac, y_frac = dw.in_fmts[0].frac, dw.out_fmt.frac
    assert dw.shifts.tolist() == [x_frac + f.frac - y_frac for f in dw.w_fmts]  # s_c = Fx + Fw_c - Fy
    assert dw.shift == dw.shifts.max() and dw.acc_frac == x_frac + dw.w_fmt.frac
    assert dw.align.tolist() == (dw.shift - dw.shifts).tolist()
    b = cal.graph.nodes[1].bias  # B_c at Fa_c
    bq = np.round(b * 2.0**dw.b_fmt.frac)
    want = [shift_round(bq[c:c + 1].astype(np.int64), dw.b_fmt.frac - x_frac - f.frac)[0] for c, f in enumerate(dw.w_fmts)]
    assert dw.bias.tolist() == want
    assert "per channel" in dw.describe() and f"shift {dw.shifts.min()}..{dw.shifts.max()}" in dw.describe()


def test_per_tensor_is_unchanged(cal):
    q = _q(cal)
    assert not any(layer.per_channel for layer in q.layers)
    assert all(layer.shifts is None and layer.w_fmts is None for layer in q.layers)
    assert q.layer("dw").channel_shifts == q.layer("dw").shift


def test_accumulator_widths_hold_every_channel(cal):
    from fpgagen.ops._mac import channel_mac_bounds

    for layer in _q(cal, per_channel=True).layers:
        if not layer.per_channel:
            continue
        lo, hi = channel_mac_bounds(layer.weight, layer.bias, layer.in_fmts[0])
        assert max(max(-v, w).bit_length() + 1 for v, w in zip(lo, hi)) <= layer.acc_width
        aligned = [(int(a) << int(d), int(b) << int(d)) for a, b, d in zip(lo, hi, layer.align)]
        assert all(-(1 << (layer.align_width - 1)) <= a and b < (1 << (layer.align_width - 1)) for a, b in aligned)
        assert layer.align_width <= layer.acc_width + int(layer.align.max())


def test_a_dead_channel_does_not_widen_the_accumulator():
    """Channel formats stop word bits above the coarsest channel's: a channel of weights near 1e-15
    gets frac coarsest + 8, not 60 (its outputs lie below the output LSB either way)."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (3, 4))
    w[1] *= 1e-15
    g = Graph("dead", "x", "y", [Node("fc", "dense", ["x"], "y", None, w, None)], {"x": (4,), "y": (3,)}).validate()
    c = calibrate(g, rng.normal(0, 1, (16, 4)).astype(np.float32), progress=False)
    layer = _q(c, per_channel=True).layers[0]
    fracs = [f.frac for f in layer.w_fmts]
    assert fracs[1] == min(fracs) + 8 and layer.align.max() == 8


def test_layer_overrides_and_equal_channels(cal):
    off = _q(cal, per_channel=True, overrides={"dw": {"per_channel": False}, "Gemm": {"per_channel": False}})
    assert [ly.name for ly in off.layers if ly.per_channel] == ["c1", "pw"]
    on = _q(cal, per_channel=False, overrides={"dw": {"per_channel": True}})
    assert [ly.name for ly in on.layers if ly.per_channel] == ["dw"]
    # channels that choose one format: the per-tensor datapath (no alignment), also under true
    g = Graph("same", "x", "y", [Node("fc", "dense", ["x"], "y", None, np.array([[0.5, -0.25], [0.75, 0.1]]), None)],
              {"x": (2,), "y": (2,)}).validate()
    c = calibrate(g, np.ones((2, 2), np.float32), progress=False)
    assert not _q(c, per_channel=True, weight_method="max").layers[0].per_channel


def test_auto_keeps_per_channel_where_the_output_wins(cal):
    """auto measures both on calibration inputs and keeps per-channel formats only where the final
    output's SQNR rises by at least AUTO_MIN_GAIN_DB; unresolved, choose_formats refuses it."""
    from fpgagen import api
    from fpgagen.quant.per_channel import AUTO_MIN_GAIN_DB, output_sqnr_db, resolve_per_channel

    x = np.random.default_rng(1).uniform(0, 1, (64, 1, 6, 6)).astype(np.float32)
    keep, why = resolve_per_channel(cal.graph, cal, QuantOptions(per_channel="auto"), x)
    gain = output_sqnr_db(cal.graph, _q(cal, per_channel=True), x) - output_sqnr_db(cal.graph, _q(cal), x)
    assert keep == (gain >= AUTO_MIN_GAIN_DB)
    assert why.startswith(f"per_channel auto: {'per-channel' if keep else 'per-tensor'} weight formats (output SQNR ")
    assert resolve_per_channel(cal.graph, cal, QuantOptions(per_channel=False), x) == (False, "")
    q = api.quantize_model(cal, per_channel="auto", x=x)
    assert any(layer.per_channel for layer in q.layers) == keep
    with pytest.raises(QuantizationError, match=r"per_channel='auto' measures both quantizations on the "
                                                r"calibration inputs: pass them as x="):
        api.quantize_model(cal, per_channel="auto")
    with pytest.raises(QuantizationError, match=r"per_channel 'auto' must be resolved to true or false"):
        _q(cal, per_channel="auto")


def test_pre_alignment_is_exactly_the_per_channel_rounding():
    """What every backend computes, (acc << d_c) rounded by max(s), equals rounding by s_c (SPEC.md 3),
    for right and left shifts, half-way values, both signs and a LeakyRelu's negative path."""
    rng = np.random.default_rng(7)
    shifts = np.array([-3, 0, 1, 2, 5, 9, 13, 13])
    top = int(shifts.max())
    acc = rng.integers(-(1 << 20), 1 << 20, (400, len(shifts)))
    acc[:8] = [[(2 * i + 1) << max(0, s - 1) if s > 0 else i for s in shifts] for i in range(-4, 4)]  # halves
    for lo, hi, leaky in ((-128, 127, None), (0, 255, None), (-128, 127, (205, 11)), (-32768, 32767, (-128, 8))):
        want = k.requantize(acc, shifts, lo, hi, leaky)
        for c, s in enumerate(shifts):
            assert want[:, c].tolist() == k.requantize(acc[:, c], int(s), lo, hi, leaky).tolist()
        aligned = acc << (top - shifts)
        assert k.requantize(aligned, top, lo, hi, leaky).tolist() == want.tolist()


def test_golden_float_path_equals_the_integer_path(cal):
    """The fast float form of conv/dense (per-row scales) gives the integers of conv_acc +
    requantize channel by channel."""
    q = _q(cal, per_channel=True)
    rng = np.random.default_rng(5)
    xq = rng.integers(0, 256, (9, 1, 6, 6))
    _, trace = run_int(q, xq, trace=True)
    values = {"x": xq}
    for layer in q.layers:
        x = values[layer.inputs[0]]
        if layer.op == "conv":
            a = layer.params
            acc = k.conv_acc(x, layer.weight, layer.bias, a.kernel, a.stride, a.pads, a.groups)
        elif layer.op == "dense":
            acc = k.dense_acc(x.reshape(len(x), -1), layer.weight, layer.bias)
        else:
            values[layer.output] = trace[layer.output]
            continue
        assert k.float_mac(layer.weight, layer.bias, 255, layer.shifts, layer.lo, layer.hi) is not None
        want = k.requantize(acc, layer.shifts, layer.lo, layer.hi)
        assert trace[layer.output].tolist() == want.tolist(), layer.name
        values[layer.output] = trace[layer.output]


def test_per_channel_is_no_worse_here(cal):
    """On channels scaled 2**-6 .. 2**2 per-channel formats keep more of the float output."""
    from fpgagen.quant.validate import validate

    x = np.random.default_rng(9).uniform(0, 1, (64, 1, 6, 6)).astype(np.float32)
    noise = {}
    for mode in (False, True):
        v = validate(cal.graph, _q(cal, per_channel=mode), x)
        t = v.traces["y"]
        noise[mode] = t.noise / t.signal
    assert noise[True] < noise[False]


def test_given_channel_formats_and_their_errors(cal):
    q = _q(cal, per_channel=True)
    given = [str(f) for f in q.layer("dw").w_fmts]
    again = _q(cal, overrides={"dw": {"weight": given}})
    assert again.layer("dw").per_channel and [str(f) for f in again.layer("dw").w_fmts] == given
    with pytest.raises(QuantizationError, match=r"layer 'dw': 2 per-channel weight formats given; expected one "
                                                r"per output channel, 6"):
        _q(cal, overrides={"dw": {"weight": ["s8.4", "s8.5"]}})
    with pytest.raises(QuantizationError, match=r"layer 'dw': per-channel weight formats must share word length "
                                                r"and signedness, got s8.4, u8.4"):
        _q(cal, overrides={"dw": {"weight": ["s8.4", "u8.4"] * 3}})


def _config(tmp_path, per_channel):
    from fpgagen.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": "m.onnx", "data": {"calibration": "x.npy"},
                                    "quantization": {"per_channel": per_channel}}))
    (tmp_path / "m.onnx").write_bytes(b"")
    np.save(tmp_path / "x.npy", np.zeros((1, 2), np.float32))
    return load_config(path)


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_config_key(tmp_path, value):
    assert _config(tmp_path, value)["quantization"]["per_channel"] == value


def test_config_key_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"quantization\.per_channel: expected true, false or auto, got 'yes'"):
        _config(tmp_path, "yes")
    from fpgagen.config import load_config

    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump({"model": "m.onnx", "data": {"calibration": "x.npy"},
                                    "quantization": {"layers": {"conv": {"per_channel": "auto"}}}}))
    with pytest.raises(ConfigError, match=r"quantization\.layers\.conv\.per_channel: expected true or false, "
                                          r"got 'auto'"):
        load_config(path)


def _build(cal):
    from fpgagen.flow import Build

    plan = choose_formats(cal, QuantOptions(per_channel=True))
    q, stats = lower(cal.graph, plan)
    cfg = {"name": "separable", "parallelism": {"pe": 2, "simd": 2, "layers": {}}, "verify": {"samples": 6}}
    x = np.random.default_rng(11).uniform(0, 1, (6, 1, 6, 6)).astype(np.float32)
    return Build(cfg, cal.graph, cal, plan, q, stats, x_calib=x)


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("g++") is None, reason="gcc/g++ not installed")
def test_c_and_hls_bit_exact_end_to_end(tmp_path, cal):
    """The generated C (host) and HLS C++ (C simulation) of the per-channel model give the golden
    integers of every layer."""
    from fpgagen.backends import c as cb
    from fpgagen.backends import hls
    from fpgagen.flow import verification_inputs

    b = _build(cal)
    xq, golden = verification_inputs(b, 6)
    cb.generate(b).write(tmp_path / "c")
    r = cb.verify_host(b, tmp_path / "c", xq, golden)
    assert r["samples"] == 6 and r["mismatches"] == 0, r
    header = (tmp_path / "c" / "model.h").read_text()
    assert header.count("__align[") == 4 and header.count("__align,") == 4  # the 4 layers: arrays, descriptors
    hls.generate(b).write(tmp_path / "hls")
    r = hls.verify(b, tmp_path / "hls", xq, golden)
    assert r["samples"] == 6 and r["mismatches"] == 0, r


def test_summary_report_and_formats_yaml(tmp_path, cal):
    """summary.json lists the channel formats and shifts, the report shows their ranges, and
    formats.yaml's per-channel lists repeat the build exactly."""
    from fpgagen.flow import formats_yaml, layer_rows
    from fpgagen.report.html import layer_table

    b = _build(cal)
    b.validation, b.hardware = None, None
    rows = layer_rows(b)
    dw = next(r for r in rows if r["name"] == "dw")
    assert dw["weight_channels"] == [str(f) for f in b.qgraph.layer("dw").w_fmts]
    assert dw["shifts"] == b.qgraph.layer("dw").shifts.tolist()
    table = layer_table({"input": {"tensor": "x", "shape": [1, 6, 6], "format": "u8.8"}, "layers": rows})
    shown = next(r for r in table if r["name"] == "dw")
    assert shown["weight"].endswith(" per channel") and ".." in shown["weight"]
    assert shown["shift"] == f"{min(dw['shifts'])}..{max(dw['shifts'])}"
    layers = yaml.safe_load(formats_yaml(b))["quantization"]["layers"]
    assert isinstance(layers["dw"]["weight"], list)
    again = _q(cal, overrides=layers)  # per_channel off: the lists alone give the same IR
    for a, b2 in zip(b.qgraph.layers, again.layers):
        assert a.w_fmts == b2.w_fmts and a.out_fmt == b2.out_fmt, a.name
        if a.weight is not None:
            assert np.array_equal(a.weight, b2.weight) and np.array_equal(a.bias, b2.bias), a.name
            assert np.array_equal(np.asarray(a.channel_shifts), np.asarray(b2.channel_shifts)), a.name
