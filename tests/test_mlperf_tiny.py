"""The MLPerf Tiny reference architectures of examples/mlperf_tiny import, match onnxruntime in
float and quantize (seeded random weights; the shipped script writes them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mlperf_tiny_models", ROOT / "examples" / "mlperf_tiny" / "models.py")
models = importlib.util.module_from_spec(spec)
sys.modules["mlperf_tiny_models"] = models
spec.loader.exec_module(models)

#: MACs of one inference (the MLPerf Tiny reference figures: ResNet-8 12.5 M, MobileNetV1 0.25 7.5 M)
MACS = {"resnet8": 12_501_632, "ds_cnn": 2_656_768, "mobilenet_v1_025": 7_489_664, "fc_autoencoder": 264_192}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_architecture_imports_and_matches_onnxruntime(tmp_path, name):
    ort = pytest.importorskip("onnxruntime")
    from fpgagen.frontend.onnx import load_onnx
    from fpgagen.golden.float_exec import run_float

    m = models.MODELS[name]()
    assert models.macs(m) == MACS[name]
    path = tmp_path / f"{name}.onnx"
    import onnx

    onnx.save(m, path)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
    x = np.random.default_rng(5).standard_normal((2, *shape)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(2)])
    got = run_float(load_onnx(path), x)
    np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", list(models.MODELS_NHWC))
def test_nhwc_export_imports_matches_onnxruntime_and_the_nchw_model(tmp_path, name):
    """The tf2onnx-style NHWC export (Transpose at the input, ZeroPadding2D before the strided convs,
    AveragePool + Transpose + Reshape + MatMul + Add + Softmax) of the same weights: onnxruntime on
    NHWC data equals the NCHW model's softmax, and fpgagen's IR equals the NCHW model's."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from fpgagen.frontend.onnx import load_onnx
    from fpgagen.golden.float_exec import run_float

    base = name.removesuffix("_nhwc")
    m, m_nchw = models.MODELS_NHWC[name](), models.MODELS[base]()
    assert models.macs(m) == MACS[base]
    ops = {n.op_type for n in m.graph.node}
    assert {"Transpose", "Pad", "MatMul", "Add", "Softmax"} <= ops and "Gemm" not in ops
    onnx.save(m, tmp_path / "nhwc.onnx")
    onnx.save(m_nchw, tmp_path / "nchw.onnx")
    shape = [d.dim_value for d in m_nchw.graph.input[0].type.tensor_type.shape.dim][1:]
    x = np.random.default_rng(5).standard_normal((2, *shape)).astype(np.float32)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    runs = {}
    for key, xs in (("nhwc", x_nhwc), ("nchw", x)):
        sess = ort.InferenceSession(str(tmp_path / f"{key}.onnx"), providers=["CPUExecutionProvider"])
        runs[key] = np.concatenate([sess.run(None, {"input": xs[i:i + 1]})[0] for i in range(2)])
    np.testing.assert_allclose(runs["nhwc"], _softmax(runs["nchw"]), rtol=1e-4, atol=1e-5)

    g, g_nchw = load_onnx(tmp_path / "nhwc.onnx"), load_onnx(tmp_path / "nchw.onnx")
    assert g.onnx_input_shape == (*shape[1:], shape[0]) and g.shapes[g.input] == tuple(shape)
    assert any(note.startswith("dropped Softmax") for note in g.notes)
    logits = np.asarray(run_float(g, x_nhwc))  # NHWC data, as the model takes it
    np.testing.assert_allclose(_softmax(logits), runs["nhwc"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, np.asarray(run_float(g_nchw, x)), rtol=1e-4, atol=1e-4)
    # the same layers: every ZeroPadding2D merged into its conv (the pads of the NCHW model's conv)
    convs = [(n.params, n.weight.shape) for n in g.nodes if n.op == "conv"]
    assert convs == [(n.params, n.weight.shape) for n in g_nchw.nodes if n.op == "conv"]
    assert [n.op for n in g.nodes if n.op not in ("avgpool", "gap")] == \
        [n.op for n in g_nchw.nodes if n.op not in ("avgpool", "gap")]


def test_script_writes_configs_that_build(tmp_path):
    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    paths = models.write(tmp_path, calib=16)
    assert sorted(p.name for p in paths) == sorted(f"{n}.yaml" for n in (*models.MODELS, *models.MODELS_NHWC))
    builds = {}
    for name in ("ds_cnn", "ds_cnn_nhwc"):
        builds[name] = run_quantization(load_config(tmp_path / f"{name}.yaml"), progress=False)
        assert [ly.op for ly in builds[name].qgraph.layers if ly.op == "conv"].count("conv") == 9
    # the same samples (transposed) calibrate both to the same formats and the same integers
    fmts = [[str(ly.out_fmt) for ly in builds[n].qgraph.layers if ly.op == "conv"] for n in builds]
    assert fmts[0] == fmts[1]
    from fpgagen.golden.model import quantize_input, run_int

    x = np.load(tmp_path / "ds_cnn_calib.npz")["x"]
    q, q_nhwc = builds["ds_cnn"].qgraph, builds["ds_cnn_nhwc"].qgraph
    assert np.array_equal(run_int(q, quantize_input(q, x)), run_int(q_nhwc, quantize_input(q_nhwc, x.transpose(0, 2, 3, 1))))
