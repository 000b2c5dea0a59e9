"""The user's flow end to end on the shipped digits examples: config -> build directory.

Checks what ``fpgagen build`` promises: ``summary.json`` fields, accuracy close to float, the
saved formats repeat the build exactly, byte-identical output, in-place updates that keep
foreign files, and nothing written when a build fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import fpgagen
from fpgagen.config import load_config, resolve_config
from fpgagen.errors import BackendError, ConfigError
from fpgagen.flow import build, calibration_only

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
SHARED = ROOT.parent / "shared"


def mlp_cfg(**changes) -> dict:
    raw = yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text())
    raw["targets"] = []
    raw.update(changes)
    return resolve_config(raw, "digits_mlp.yaml", CONFIGS, "digits_mlp")


@pytest.fixture(scope="module")
def mlp_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    b, _ = build(mlp_cfg(), out, progress=False)
    return b, out


def test_summary_has_the_promised_fields(mlp_build):
    b, out = mlp_build
    s = json.loads((out / "summary.json").read_text())
    assert s["name"] == "digits_mlp"
    assert [layer["op"] for layer in s["layers"]] == ["dense", "dense", "dense"]
    for layer in s["layers"]:
        for key in ("name", "op", "weight", "bias", "output", "shift", "overflow_rate", "underflow_rate"):
            assert key in layer, key
        for key in ("weight", "bias", "output"):
            assert str(fpgagen.Format.parse(layer[key])) == layer[key]  # canonical strings
        assert isinstance(layer["shift"], int)
        assert 0.0 <= layer["overflow_rate"] <= 1.0 and 0.0 <= layer["underflow_rate"] <= 1.0
    assert s["layers"][0]["onnx_nodes"][0] == "/fc1/Gemm"
    assert set(s["accuracy"]) == {"float", "fixed"}
    assert s["validation"]["samples"] == 450
    assert sorted(p.name for p in out.iterdir()) == [
        "config.resolved.yaml", "formats.yaml", "histograms.json", "report.html", "summary.json"]


def test_fixed_point_accuracy_close_to_float(mlp_build):
    b, _ = mlp_build
    acc = b.summary()["accuracy"]
    assert acc["float"] == pytest.approx(0.9756, abs=1e-3)  # the example's onnxruntime figure
    assert acc["fixed"] >= acc["float"] - 0.005  # issue 3: within 0.5 points


def test_saved_formats_and_config_repeat_the_build(mlp_build, tmp_path):
    b, out = mlp_build
    raw = yaml.safe_load((out / "config.resolved.yaml").read_text())
    raw["quantization"]["layers"] = yaml.safe_load((out / "formats.yaml").read_text())["quantization"]["layers"]
    b2, _ = build(resolve_config(raw, "config.resolved.yaml", out), tmp_path / "again", progress=False)
    assert [(l.name, str(l.out_fmt), str(l.w_fmt), l.shift) for l in b2.qgraph.layers] == \
        [(l.name, str(l.out_fmt), str(l.w_fmt), l.shift) for l in b.qgraph.layers]
    for l1, l2 in zip(b.qgraph.layers, b2.qgraph.layers):
        assert l1.weight.tolist() == l2.weight.tolist() and l1.bias.tolist() == l2.bias.tolist()
    assert b2.summary()["accuracy"] == b.summary()["accuracy"]


def test_build_output_is_byte_identical(mlp_build, tmp_path):
    _, out = mlp_build
    build(mlp_cfg(), tmp_path, progress=False)
    for name in ("summary.json", "histograms.json", "formats.yaml", "report.html"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_existing_output_is_updated_in_place_and_foreign_files_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "summary.json").write_text("stale")
    build(mlp_cfg(), tmp_path, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "summary.json").read_text())["name"] == "digits_mlp"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_build_writes_nothing(tmp_path):
    cfg = mlp_cfg(targets=["hls"], parallelism={"layers": {"/fc1/Gemm": {"pe": 5}}})
    with pytest.raises(BackendError, match=r"parallelism\.layers\./fc1/Gemm\.pe: 5 must divide the layer's 32"):
        build(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_override_naming_no_layer_is_an_error(tmp_path):
    cfg = mlp_cfg(quantization={"layers": {"/fc9/Gemm": {"output": "s8.3"}}})
    with pytest.raises(ConfigError, match=r"quantization\.layers\./fc9/Gemm: no layer, op type or input named"):
        build(cfg, tmp_path, progress=False)


def test_per_layer_override_is_applied(tmp_path):
    cfg = mlp_cfg(quantization={"layers": {"/fc2/Gemm": {"output": "u8.2"}, "Gemm": {"weight": "s8.7"}}})
    b, _ = build(cfg, tmp_path, progress=False)
    assert str(b.qgraph.layer("/fc2/Gemm").out_fmt) == "u8.2"
    assert {str(l.w_fmt) for l in b.qgraph.layers} == {"s8.7"}


def test_calibrate_only_writes_histograms_and_formats(tmp_path):
    b, out = calibration_only(mlp_cfg(), tmp_path, progress=False)
    assert (out / "histograms.json").is_file() and (out / "formats.yaml").is_file()
    hists = json.loads((out / "histograms.json").read_text())
    assert {"input", "/fc1/Gemm.weight", "/fc1/Gemm.bias"} <= set(hists)
    assert b.validation is None


def test_cnn_build_within_half_a_point(tmp_path):
    cfg = load_config(CONFIGS / "digits_cnn.yaml")
    cfg["targets"] = []
    b, _ = build(cfg, tmp_path, progress=False)
    acc = b.summary()["accuracy"]
    assert acc["float"] == pytest.approx(0.98, abs=1e-3)
    assert acc["fixed"] >= acc["float"] - 0.005
    assert [l.op for l in b.qgraph.layers] == ["conv", "maxpool", "conv", "maxpool", "flatten", "dense"]


@pytest.mark.skipif(not (SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx").is_file(),
                    reason="../shared (the MNIST CNN) is absent")
def test_mnist_build_within_0_3_points(tmp_path):
    cfg = load_config(CONFIGS / "mnist_cnn.yaml")
    b, _ = build(cfg, tmp_path, progress=False)
    acc = b.summary()["accuracy"]
    assert acc["fixed"] >= acc["float"] - 0.003
    assert acc["float"] > 0.95


def test_python_api_steps_match_the_build(mlp_build):
    b, _ = mlp_build
    graph = fpgagen.load(b.cfg["model"])
    cal = fpgagen.calibrate(graph, b.x_calib)
    q = fpgagen.quantize_model(cal, method=b.cfg["quantization"]["method"])
    assert [str(l.out_fmt) for l in q.layers] == [str(l.out_fmt) for l in b.qgraph.layers]
    v = fpgagen.validate(graph, q, b.x_valid, b.y_valid)
    assert v.accuracy == b.validation.accuracy
    xq = fpgagen.quantize_input(q, b.x_valid[:5])
    out = fpgagen.run_golden(q, xq)
    assert out.dtype == np.int64 and out.shape == (5, 10)


def test_rounding_of_weights_is_configurable(tmp_path):
    away, _ = build(mlp_cfg(), tmp_path / "a", progress=False)
    floor, _ = build(mlp_cfg(quantization={"rounding": "floor", "per_channel": False}), tmp_path / "f",
                     progress=False)
    layer = "/fc1/Gemm"
    wa, wf = away.qgraph.layer(layer), floor.qgraph.layer(layer)
    assert wa.w_fmt == wf.w_fmt
    scale = 2.0 ** wa.w_fmt.frac
    w = away.graph.node(layer).weight.astype(np.float64) * scale
    assert wf.weight.tolist() == np.clip(np.floor(w), wf.w_fmt.min_int, wf.w_fmt.max_int).astype(int).tolist()
    assert wa.weight.tolist() == fpgagen.quantize(away.graph.node(layer).weight, wa.w_fmt).tolist()
    assert (wf.weight <= wa.weight).all() and (wf.weight != wa.weight).any()
