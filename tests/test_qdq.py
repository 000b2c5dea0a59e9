"""Models that carry their own quantization (ONNX QDQ): import, formats, rounding, onnxruntime.

The shipped example (examples/qdq, configs/digits_qdq.yaml: onnxruntime's quantize_static with
power-of-two scales) builds with no calibration data, keeps the model's formats, and its golden
model equals onnxruntime on every validation sample (==); small hand-written QDQ models pin the
errors (non-power-of-two scales, zero points, per-channel weights), snap_scales and partial
quantization.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgagen.config import load_config
from fpgagen.errors import ConfigError, ModelError
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


def test_verify_records_bit_exact_vs_onnxruntime(tmp_path):
    results, _ = verify(CONFIG, ["c", "hls"], 3, tmp_path, progress=False)
    assert results["c"]["mismatches"] == results["hls"]["mismatches"] == 0
    assert results["onnxruntime"]["result"] == "bit-exact vs onnxruntime on 450 samples"




# -- hand-written QDQ models -------------------------------------------------------------------------
def qdq_model(in_scale=2.0**-7, out_scale=2.0**-4, zp_out=0, w_scale=2.0**-6, per_channel=False,
              quantize_mid=True) -> onnx.ModelProto:
    """input -> Q/DQ -> Conv 3x3 (2 ch) -> Q/DQ (uint8) -> Flatten -> [Q/DQ] -> Gemm -> Q/DQ (int8)."""
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

    def dq_const(name, q, scale):
        s = const(f"{name}_scale", np.asarray(scale, np.float32))
        z = const(f"{name}_zp", np.zeros(np.shape(scale), q.dtype))
        args = {"axis": 0} if np.ndim(scale) else {}
        nodes.append(helper.make_node("DequantizeLinear", [const(f"{name}_q", q), s, z], [name], name=f"{name}_DQ",
                                      **args))
        return name

    x = qdq("input", "in", in_scale, np.uint8(0))
    wq = rng.integers(-127, 128, (2, 1, 3, 3)).astype(np.int8)
    w = dq_const("w", wq, np.full(2, w_scale) if per_channel else w_scale)
    b = dq_const("b", rng.integers(-500, 500, 2).astype(np.int32), in_scale * w_scale)
    nodes.append(helper.make_node("Conv", [x, w, b], ["conv"], name="conv", pads=[1, 1, 1, 1]))
    c = qdq("conv", "c", out_scale, np.uint8(zp_out))
    nodes.append(helper.make_node("Flatten", [c], ["flat"], name="flat"))
    f = qdq("flat", "f", out_scale, np.uint8(zp_out)) if quantize_mid else "flat"
    fw = dq_const("fw", rng.integers(-127, 128, (3, 32)).astype(np.int8), 2.0**-7)
    fb = dq_const("fb", rng.integers(-99, 99, 3).astype(np.int32), out_scale * 2.0**-7)
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


def test_per_channel_weight_scales_are_an_error_naming_the_weight(tmp_path):
    with pytest.raises(ModelError, match=r"node 'w_DQ' \(DequantizeLinear\): weight 'w_q' has per-channel scales "
                                         r"\(2 scales on axis 0\); supported: one scale per tensor"):
        from_model(qdq_model(per_channel=True))


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
