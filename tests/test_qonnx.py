"""QONNX ``Quant`` / ``BipolarQuant`` import (FINN/Brevitas style), bit widths below 8, narrow
ranges and rounding modes, against qonnx's own executor (skipped where qonnx is not installed).

The shipped example (examples/qdq/digits_qonnx.onnx, configs/digits_qonnx.yaml: 4-bit weights and
activations) builds with no calibration data and equals qonnx's executor on every validation
sample; small hand-written models cover 2- and 3-bit formats, narrow ranges, HALF_UP rounding,
binary weights and the errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgagen.config import load_config
from fpgagen.errors import ModelError
from fpgagen.flow import run_quantization, verify
from fpgagen.frontend.onnx import from_model
from fpgagen.frontend.oracle import compare_qonnx

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "digits_qonnx.yaml"
DOMAIN = "qonnx.custom_op.general"


def needs_qonnx():
    return pytest.importorskip("qonnx", reason="qonnx is not installed (pip install qonnx): no executor to compare")


@pytest.fixture(scope="module")
def digits_build():
    return run_quantization(load_config(CONFIG), progress=False)


def test_digits_qonnx_keeps_its_4_bit_formats_without_calibration(digits_build):
    q = digits_build.qgraph
    assert digits_build.calibration.samples == 0
    assert [str(layer.out_fmt) for layer in q.layers] == ["u4.2", "u4.2", "u4.2", "u4.1", "u4.1", "s8.5"]
    assert [str(layer.w_fmt) for layer in q.layers if layer.w_fmt] == ["s4.2", "s4.3", "s8.4"]
    # narrow 4-bit weights: -7..7
    assert all(-7 <= layer.weight.min() and layer.weight.max() <= 7 for layer in q.layers[:3] if layer.w_fmt)
    assert {layer.rounding for layer in q.layers if layer.requantizes} == {"nearest-even"}


def test_digits_qonnx_equals_qonnx_executor_on_every_validation_sample(digits_build):
    needs_qonnx()
    b = digits_build
    r = compare_qonnx(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"], r["tensor"]) == (450, 0, "logits")


# -- hand-written QONNX models -----------------------------------------------------------------------
def qonnx_model(act_bits=3, act_signed=0, act_narrow=0, w_bits=2, w_narrow=1, mode="ROUND", bipolar=False,
                act_scale=2.0**-2, w_scale=2.0**-1) -> onnx.ModelProto:
    """input -> Quant (u8) -> Conv 3x3 (3 ch, Quant or BipolarQuant weights, 32-bit bias) ->
    Quant (act_bits) -> Flatten -> Gemm (Quant 5-bit weights) -> Quant (s6). ``w_scale``: one
    scale, or 3 (per output channel: a [3, 1, 1, 1] scale, the bias's [3])."""
    rng = np.random.default_rng(3)
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(src, name, scale, bits, signed, narrow=0, rounding="ROUND"):
        nodes.append(helper.make_node("Quant", [src, const(f"{name}_s", scale), const(f"{name}_z", 0.0),
                                                const(f"{name}_b", bits)], [name], name=name, domain=DOMAIN,
                                      signed=signed, narrow=narrow, rounding_mode=rounding))
        return name

    s_in, s_w = 2.0**-6, np.asarray(w_scale)
    s_w = s_w.reshape(3, 1, 1, 1) if s_w.ndim else s_w
    x = quant("input", "xq", s_in, 8, 0)
    w = const("w", rng.normal(0, 0.6, (3, 1, 3, 3)))
    if bipolar:
        nodes.append(helper.make_node("BipolarQuant", [w, const("wq_s", s_w)], ["wq"], name="wq", domain=DOMAIN))
        wq = "wq"
    else:
        wq = quant(w, "wq", s_w, w_bits, 1, w_narrow)
    bq = quant(const("b", rng.normal(0, 0.3, 3)), "bq", s_in * s_w.reshape(-1) if s_w.ndim else s_in * s_w, 32, 1)
    nodes.append(helper.make_node("Conv", [x, wq, bq], ["conv"], name="conv", pads=[1, 1, 1, 1]))
    a = quant("conv", "aq", act_scale, act_bits, act_signed, act_narrow, mode)
    nodes.append(helper.make_node("Flatten", [a], ["flat"], name="flat"))
    fq = quant(const("fw", rng.normal(0, 0.5, (4, 48))), "fwq", 2.0**-3, 5, 1, 1)
    nodes.append(helper.make_node("Gemm", [ "flat", fq], ["fc"], name="fc", transB=1))
    y = quant("fc", "y", 2.0**-2, 6, 1, 0, mode)
    graph = helper.make_graph(nodes, "qonnx_small", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                 ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    return model


def small_build(tmp_path, model, samples=60):
    path = tmp_path / "qonnx_small.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(5).uniform(0.0, 4.0, (samples, 1, 4, 4)).astype(np.float32)
    x[:3] = np.array([0.0, 3.99, 2.0 ** -7])[:, None, None, None]  # zeros, saturation, a tie of the input
    np.savez(tmp_path / "x.npz", x=x, y=np.zeros(samples, np.int64))
    (tmp_path / "c.yaml").write_text(f"model: {path}\ndata: {{validation: {tmp_path / 'x.npz'}}}\ntargets: [c, hls]\n")
    cfg = load_config(tmp_path / "c.yaml")
    return cfg, run_quantization(cfg, progress=False)


@pytest.mark.parametrize("kw, fmts, lo_hi", [
    (dict(), ["u3.2", "u3.2", "s6.2"], (0, 7)),                                  # 3-bit ReLU, 2-bit ternary weights
    (dict(act_bits=4, act_signed=1, act_narrow=1), ["s4.2", "s4.2", "s6.2"], (-7, 7)),  # narrow signed: -7..7
    (dict(act_bits=2, act_signed=0, act_narrow=1, act_scale=0.5), ["u2.1", "u2.1", "s6.2"], (0, 2)),  # 0..2
    (dict(mode="HALF_UP", act_bits=5, act_signed=1), ["s5.2", "s5.2", "s6.2"], (-16, 15)),
    (dict(bipolar=True, act_bits=8, act_signed=1), ["s8.2", "s8.2", "s6.2"], (-128, 127)),
])
def test_small_qonnx_models_equal_qonnx_executor(tmp_path, kw, fmts, lo_hi):
    needs_qonnx()
    cfg, b = small_build(tmp_path, qonnx_model(**kw))
    q = b.qgraph
    assert [str(layer.out_fmt) for layer in q.layers] == fmts
    assert (q.layers[0].lo, q.layers[0].hi) == lo_hi
    rounding = "nearest-away" if kw.get("mode") == "HALF_UP" else "nearest-even"
    assert q.layers[0].rounding == q.layers[-1].rounding == rounding
    if kw.get("bipolar"):
        assert str(q.layers[0].w_fmt) == "s2.1" and set(np.unique(q.layers[0].weight)) == {-1, 1}
    r = compare_qonnx(cfg["model"], b.graph, q, b.x_valid)
    assert (r["samples"], r["mismatches"]) == (60, 0)


def test_per_channel_weight_scales_equal_qonnx_executor(tmp_path):
    """A Quant with a [Co, 1, 1, 1] scale (Brevitas' per-channel weights): a format per output
    channel, the 32-bit bias per channel too; equal to the qonnx executor."""
    needs_qonnx()
    cfg, b = small_build(tmp_path, qonnx_model(w_scale=[2.0**-1, 2.0**-2, 1.0], act_bits=8))
    conv = b.qgraph.layers[0]
    assert conv.per_channel and [str(f) for f in conv.w_fmts] == ["s2.1", "s2.2", "s2.0"]
    r = compare_qonnx(cfg["model"], b.graph, b.qgraph, b.x_valid)
    assert (r["samples"], r["mismatches"]) == (60, 0)


def test_sub_8_bit_formats_verify_on_every_backend(tmp_path):
    """3-bit activations, 2-bit weights: C, HLS and Verilog equal the golden model, which equals qonnx."""
    cfg, _ = small_build(tmp_path, qonnx_model())
    cfg["targets"] = ["c", "hls", "verilog"]
    results, _ = verify(cfg, ["c", "hls", "verilog"], 3, tmp_path / "out", progress=False)
    assert [results[t]["mismatches"] for t in ("c", "hls", "verilog")] == [0, 0, 0]
    if "qonnx" in results and results["qonnx"]["samples"]:
        assert results["qonnx"]["result"] == "bit-exact vs qonnx on 60 samples"


def test_unsupported_rounding_modes_and_bipolar_activations_are_errors():
    with pytest.raises(ModelError, match=r"node 'aq' \(Quant\): rounding_mode 'FLOOR' is not supported; supported: "
                                         r"ROUND, HALF_EVEN, HALF_UP"):
        from_model(qonnx_model(mode="FLOOR"))
    model = qonnx_model()
    model.graph.node.append(helper.make_node("BipolarQuant", ["y", "wq_s"], ["z"], name="sign", domain=DOMAIN))
    model.graph.output[0].name = "z"
    with pytest.raises(ModelError, match=r"node 'sign' \(BipolarQuant\): BipolarQuant of the computed tensor 'y' is "
                                         r"a sign activation; supported: BipolarQuant of a constant"):
        from_model(model)


def test_quant_scale_and_bit_width_errors():
    model = qonnx_model(act_scale=0.3)
    with pytest.raises(ModelError, match=r"node 'aq' \(Quant\): tensor 'conv' has scale 0\.300000012, not a power of "
                                         r"two; .* the nearest is 2\*\*-2 = 0\.25"):
        from_model(model)
    model = qonnx_model(act_bits=1)
    with pytest.raises(ModelError, match=r"node 'aq' \(Quant\): bitwidth \[1\.0\]: supported: one integer bit width "
                                         r"of 2 to 16 for a tensor"):
        from_model(model)
