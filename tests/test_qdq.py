"""Models that carry their own quantization (ONNX QDQ): import, formats, rounding, onnxruntime.

The shipped example (examples/qdq, configs/digits_qdq.yaml: onnxruntime's quantize_static with
power-of-two scales) builds with no calibration data, keeps the model's formats, and its golden
model equals onnxruntime on every validation sample (==); small hand-written QDQ models pin the
errors (non-power-of-two scales, zero points, per-channel scales on an axis other than the output
channels'), per-channel weight and bias scales, snap_scales and partial quantization.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgagen.config import load_config
from fpgagen.errors import BackendError, ConfigError, ModelError
from fpgagen.flow import run_quantization, verify
from fpgagen.frontend.onnx import from_model
from fpgagen.frontend.oracle import compare_onnxruntime

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "digits_qdq.yaml"


@pytest.fixture(scope="module")
def digits_build():
    return run_quantization(load_config(CONFIG), progress=False)


def _model_scales(path) -> dict:
    m = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def test_digits_qdq_builds_without_calibration_and_keeps_the_models_formats(digits_build):
    b = digits_build
    q = b.qgraph
    assert load_config(CONFIG)["data"]["calibration"] is None and b.calibration.samples == 0
    inits = _model_scales(ROOT / "examples" / "qdq" / "digits_qdq.onnx")

    def frac(name):
        return -int(np.log2(float(np.ravel(inits[name])[0])))

    assert str(q.input_fmt) == f"u8.{frac('input_scale')}" and q.input_rounding == "nearest-even"
    conv1, pool1, conv2, add1, flat, fc = q.layers
    assert [layer.op for layer in q.layers] == ["conv", "maxpool", "conv", "add", "flatten", "dense"]
    assert str(conv1.out_fmt) == f"u8.{frac('relu1_scale')}" and str(conv1.w_fmt) == f"s8.{frac('conv1.weight_scale')}"
    assert str(conv1.b_fmt) == f"s32.{frac('conv1.bias_quantized_scale')}" == f"s32.{conv1.acc_frac}"
    assert str(conv2.out_fmt) == f"u8.{frac('relu2_scale')}" and str(add1.out_fmt) == f"u8.{frac('add1_scale')}"
    assert str(fc.out_fmt) == f"s8.{frac('logits_scale')}" and str(fc.w_fmt) == f"s8.{frac('fc.weight_scale')}"
    # the uint8 quantizer of the conv outputs is the model's Relu: fused, clamping at 0
    assert conv1.activation is not None and (conv1.lo, conv1.hi) == (0, 255)
    assert {layer.rounding for layer in q.layers if layer.requantizes} == {"nearest-even"}
    # the model's integers, unchanged: the weights are the initializers
    np.testing.assert_array_equal(conv1.weight, inits["conv1.weight_quantized"])
    np.testing.assert_array_equal(conv1.bias, inits["conv1.bias_quantized"])
    assert any("no calibration" in note for note in q.notes)


def test_digits_qdq_golden_equals_onnxruntime_on_every_validation_sample(digits_build):
    b = digits_build
    r = compare_onnxruntime(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"], r["tensor"]) == (450, 0, "logits")
    # the rounding mode matters: rounding half away from zero differs from onnxruntime
    for layer in b.qgraph.layers:
        layer.rounding = "nearest-away"
    try:
        away = compare_onnxruntime(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    finally:
        for layer in b.qgraph.layers:
            layer.rounding = "nearest-even" if layer.requantizes else "nearest-away"
    assert away["mismatches"] > 0


def test_digits_qdq_per_channel_equals_onnxruntime_on_every_validation_sample():
    """The example quantized with onnxruntime's per_channel=True: its conv and Gemm layers keep a
    weight format per output channel, and the golden model equals onnxruntime on all 450 digits."""
    b = run_quantization(load_config(ROOT / "configs" / "digits_qdq_pc.yaml"), progress=False)
    mac = [layer for layer in b.qgraph.layers if layer.weight is not None]
    assert len(mac) == 3 and all(layer.per_channel for layer in mac)
    assert b.calibration.samples == 0
    r = compare_onnxruntime(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"]) == (450, 0)


def test_verify_records_bit_exact_vs_onnxruntime(tmp_path):
    results, _ = verify(CONFIG, ["c", "hls"], 3, tmp_path, progress=False)
    assert results["c"]["mismatches"] == results["hls"]["mismatches"] == 0
    assert results["onnxruntime"]["result"] == "bit-exact vs onnxruntime on 450 samples"




# -- hand-written QDQ models -------------------------------------------------------------------------
def qdq_model(in_scale=2.0**-7, out_scale=2.0**-4, zp_out=0, w_scale=2.0**-6, quantize_mid=True,
              fc_scale=2.0**-7, fc_axis=0) -> onnx.ModelProto:
    """input -> Q/DQ -> Conv 3x3 (2 ch) -> Q/DQ (uint8) -> Flatten -> [Q/DQ] -> Gemm -> Q/DQ (int8).
    ``w_scale`` / ``fc_scale``: one scale, or a list (per channel: the conv's 2 outputs, the Gemm's
    3 outputs on ``fc_axis`` 0 of its [3, 32] weight; its biases then per channel too)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qdq(x, name, scale, zp):
        s, z = const(f"{name}_scale", np.float32(scale)), const(f"{name}_zp", zp)
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{name}_q"], name=f"{name}_Q"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", s, z], [f"{name}_dq"], name=f"{name}_DQ"))
        return f"{name}_dq"

    def dq_const(name, q, scale, axis=0):
        s = const(f"{name}_scale", np.asarray(scale, np.float32))
        z = const(f"{name}_zp", np.zeros(np.shape(scale), q.dtype))
        args = {"axis": axis} if np.ndim(scale) else {}
        nodes.append(helper.make_node("DequantizeLinear", [const(f"{name}_q", q), s, z], [name], name=f"{name}_DQ",
                                      **args))
        return name

    x = qdq("input", "in", in_scale, np.uint8(0))
    wq = rng.integers(-127, 128, (2, 1, 3, 3)).astype(np.int8)
    w = dq_const("w", wq, w_scale)
    b = dq_const("b", rng.integers(-500, 500, 2).astype(np.int32), in_scale * np.asarray(w_scale))
    nodes.append(helper.make_node("Conv", [x, w, b], ["conv"], name="conv", pads=[1, 1, 1, 1]))
    c = qdq("conv", "c", out_scale, np.uint8(zp_out))
    nodes.append(helper.make_node("Flatten", [c], ["flat"], name="flat"))
    f = qdq("flat", "f", out_scale, np.uint8(zp_out)) if quantize_mid else "flat"
    fw = dq_const("fw", rng.integers(-127, 128, (3, 32)).astype(np.int8), fc_scale, fc_axis)
    fb_scale = out_scale * (np.asarray(fc_scale) if fc_axis == 0 else np.ravel(fc_scale)[0])
    fb = dq_const("fb", rng.integers(-99, 99, 3).astype(np.int32), fb_scale)
    nodes.append(helper.make_node("Gemm", [f, fw, fb], ["fc"], name="fc", transB=1))
    y = qdq("fc", "y", 2.0**-3, np.int8(0))
    graph = helper.make_graph(nodes, "qdq_small", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def small_config(tmp_path, model, calibration=True, snap=False) -> dict:
    path = tmp_path / "qdq_small.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(1).uniform(-0.2, 1.0, (40, 1, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x, y=np.zeros(40, np.int64))
    cfg = {"model": str(path), "data": {"validation": str(tmp_path / "x.npz")},
           "quantization": {"snap_scales": snap}}
    if calibration:
        cfg["data"]["calibration"] = str(tmp_path / "x.npz")
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(cfg))
    return load_config(tmp_path / "c.yaml")


def test_small_qdq_model_equals_onnxruntime(tmp_path):
    b = run_quantization(small_config(tmp_path, qdq_model(), calibration=False), progress=False)
    assert [str(layer.out_fmt) for layer in b.qgraph.layers] == ["u8.4", "u8.4", "s8.3"]
    r = compare_onnxruntime(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"]) == (40, 0)


def test_a_scale_that_is_not_a_power_of_two_is_an_error_naming_the_tensor(tmp_path):
    model = qdq_model(out_scale=0.05)
    with pytest.raises(ModelError, match=r"node 'c_Q' \(QuantizeLinear\): tensor 'conv' has scale 0\.0500000007, not a "
                                         r"power of two; fpgagen's formats scale by powers of two: the nearest is "
                                         r"2\*\*-4 = 0\.0625 \(re-export with power-of-two scales, or set "
                                         r"quantization\.snap_scales: true to round it\)"):
        from_model(model)


def test_snap_scales_rounds_them_and_says_so(tmp_path):
    b = run_quantization(small_config(tmp_path, qdq_model(out_scale=0.05, w_scale=0.013), snap=True),
                         progress=False)
    assert str(b.qgraph.layers[0].out_fmt) == "u8.4" and str(b.qgraph.layers[0].w_fmt) == "s8.6"
    notes = " ".join(b.qgraph.notes)
    assert "snapped the scale 0.0500000007 of 'conv' (QuantizeLinear 'c_Q') to the power of two 2**-4 = 0.0625" in notes
    assert b.validation.samples == 40


def test_a_zero_point_is_an_error(tmp_path):
    with pytest.raises(ModelError, match=r"node 'c_Q' \(QuantizeLinear\): tensor 'conv' has zero point 3; fpgagen's "
                                         r"formats are symmetric: expected zero point 0"):
        from_model(qdq_model(zp_out=3))


def test_per_channel_weight_and_bias_scales_are_kept_per_channel(tmp_path):
    """onnxruntime's quantize_static(per_channel=True) form: a weight scale per output channel on
    axis 0, the int32 bias at x_scale * w_scale_c: each channel keeps its format (the per-channel
    datapath of every backend) and the golden model equals onnxruntime."""
    model = qdq_model(w_scale=[2.0**-6, 2.0**-4], fc_scale=[2.0**-7, 2.0**-5, 2.0**-8])
    b = run_quantization(small_config(tmp_path, model, calibration=False), progress=False)
    conv, fc = b.qgraph.layers[0], b.qgraph.layers[-1]
    assert conv.per_channel and [str(f) for f in conv.w_fmts] == ["s8.6", "s8.4"]
    assert fc.per_channel and [str(f) for f in fc.w_fmts] == ["s8.7", "s8.5", "s8.8"]
    assert conv.shifts.tolist() == [7 + 6 - 4, 7 + 4 - 4] and fc.shifts.tolist() == [4 + 7 - 3, 4 + 5 - 3, 4 + 8 - 3]
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert conv.bias.tolist() == init["b_q"].tolist() and fc.bias.tolist() == init["fb_q"].tolist()
    assert [str(f) for f in b.plan.channel_biases["fc"]] == ["s32.11", "s32.9", "s32.12"]  # 2**-4 * fc_scale
    r = compare_onnxruntime(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"]) == (40, 0)


def test_verify_per_channel_qdq_on_every_target(tmp_path):
    cfg = small_config(tmp_path, qdq_model(w_scale=[2.0**-6, 2.0**-4], fc_scale=[2.0**-7, 2.0**-5, 2.0**-8]),
                       calibration=False)
    results, _ = verify(cfg, ["c", "hls", "verilog"], 3, tmp_path / "out", progress=False)
    assert {t: (results[t]["samples"], results[t]["mismatches"]) for t in ("c", "hls", "verilog")} == \
        {t: (3, 0) for t in ("c", "hls", "verilog")}


def test_the_c_runtime_keeps_the_features_a_model_uses(tmp_path):
    """The emitted fpgagen_nn.h switches off what a model does not use (per-channel formats,
    nearest-even rounding); a model that uses them refuses a runtime built without."""
    from fpgagen.backends import c as cb

    model = qdq_model(w_scale=[2.0**-6, 2.0**-4])  # per-channel conv, nearest-even requantizers
    b = run_quantization(small_config(tmp_path, model, calibration=False), progress=False)
    out = tmp_path / "c"
    cb.generate(b).write(out)
    header = (out / "fpgagen_nn.h").read_text()
    assert "#define FPGAGEN_PER_CHANNEL 1\n" in header and "#define FPGAGEN_ROUND_EVEN 1\n" in header
    cb.compile_host(out, tmp_path / "ok")
    with pytest.raises(BackendError, match=r"'qdq_small' needs a runtime built with FPGAGEN_PER_CHANNEL 1"):
        cb.compile_host(out, tmp_path / "bad", extra=["-DFPGAGEN_PER_CHANNEL=0"])
    plain = run_quantization(load_config(ROOT / "configs" / "digits_cnn.yaml"), progress=False)
    cb.generate(plain).write(tmp_path / "plain")
    header = (tmp_path / "plain" / "fpgagen_nn.h").read_text()
    assert "#define FPGAGEN_PER_CHANNEL 0  /* not used by 'digits_cnn' */" in header
    assert "#define FPGAGEN_ROUND_EVEN 0  /* not used by 'digits_cnn' */" in header


def test_per_channel_scales_not_on_the_output_channels_are_an_error(tmp_path):
    # the Gemm's [3, 32] weight (transB=1) with 32 scales on axis 1: one per input, not per output
    with pytest.raises(ModelError, match=r"node 'fc' \(Gemm\): weight 'fw' has per-channel scales on axis 1, but the "
                                         r"layer's output channels are its axis 0; supported: scales per output channel"):
        from_model(qdq_model(fc_scale=[2.0**-7] * 32, fc_axis=1))
    # 2 scales on axis 1 of the conv's [2, 1, 3, 3] weight: the axis has 1 slice
    model = qdq_model(w_scale=[2.0**-6, 2.0**-4])
    next(n for n in model.graph.node if n.name == "w_DQ").attribute[0].i = 1
    with pytest.raises(ModelError, match=r"node 'w_DQ' \(DequantizeLinear\): constant 'w_q' of shape \[2, 1, 3, 3\] "
                                         r"has 2 scales on axis 1; supported: one scale per tensor, or one per slice "
                                         r"of one axis"):
        from_model(model)


def test_tensors_the_model_does_not_quantize_are_calibrated(tmp_path):
    model = qdq_model(quantize_mid=False)
    # the conv output is quantized by the model; the flatten passes it: nothing left to calibrate
    b = run_quantization(small_config(tmp_path, model, calibration=False), progress=False)
    assert b.calibration.samples == 0
    # drop the conv's quantizer too: its output needs calibration data
    for n in [n for n in model.graph.node if n.name in ("c_Q", "c_DQ")]:
        model.graph.node.remove(n)
    for n in model.graph.node:
        n.input[:] = ["conv" if i == "c_dq" else i for i in n.input]
    with pytest.raises(ConfigError, match=r"data\.calibration: missing; the model gives 2 tensors their formats, "
                                          r"but not 'conv': give calibration data"):
        run_quantization(small_config(tmp_path, model, calibration=False), progress=False)
    b = run_quantization(small_config(tmp_path, model), progress=False)
    assert b.calibration.samples == 40
    assert any("calibrated the 1 tensor(s) the model does not quantize: 'conv'" in n for n in b.qgraph.notes)
    assert b.qgraph.layers[0].rounding == "nearest-away" and b.qgraph.layers[-1].rounding == "nearest-even"


def test_a_float_model_still_needs_calibration_data(tmp_path):
    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml")
    cfg["data"]["calibration"] = None
    with pytest.raises(ConfigError, match=r"data\.calibration: missing; the model carries no quantization \(QDQ, "
                                          r"QONNX\) of 'input'"):
        run_quantization(cfg, progress=False)


def test_verify_verilog_rounds_half_to_even(tmp_path):
    """The Verilog of a QDQ model (ROUND_EVEN on every requantizer) equals the golden model, which
    equals onnxruntime (a small model: a short simulation)."""
    cfg = small_config(tmp_path, qdq_model(), calibration=False)
    cfg["targets"] = ["verilog"]
    results, out = verify(cfg, ["verilog"], 3, tmp_path / "out", progress=False)
    assert (results["verilog"]["samples"], results["verilog"]["mismatches"]) == (3, 0)
    assert results["onnxruntime"]["result"] == "bit-exact vs onnxruntime on 40 samples"
    top = next((out / "verilog").glob("fpgagen_qdq_small*.v")).read_text()
    assert top.count(".ROUND_EVEN(1)") == 2  # conv, fc
