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
MACS = {"resnet8": 12_501_632, "ds_cnn": 2_550_528, "mobilenet_v1_025": 7_489_664, "fc_autoencoder": 264_192}


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


def test_script_writes_configs_that_build(tmp_path):
    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    paths = models.write(tmp_path, calib=16)
    assert sorted(p.name for p in paths) == sorted(f"{n}.yaml" for n in models.MODELS)
    cfg = load_config(tmp_path / "ds_cnn.yaml")
    b = run_quantization(cfg, progress=False)
    assert [ly.op for ly in b.qgraph.layers if ly.op == "conv"].count("conv") == 9
