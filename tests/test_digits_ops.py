"""The op-centric core's acceptance model (examples/ops/digits_ops.onnx): LeakyRelu fused and
standalone, a channel Concat also of the model input, Resize by scales and by sizes, an asymmetric
Pad merged into a conv and one of its own. Its float run matches onnxruntime; it builds and
verifies bit-exactly on every target (Verilog in cocotb + Verilator, HLS in C simulation, C on the
host), and the Verilog runs at its analytic cycles per frame."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_frontend import check_against_ort

from fpgagen import flow
from fpgagen.config import load_config
from fpgagen.ops.pad import PadParams
from fpgagen.ops.resize import ResizeParams
from fpgagen.toolchain import verilator_root

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "ops" / "digits_ops.onnx"
CONFIG = ROOT / "configs" / "digits_ops.yaml"


def test_float_matches_onnxruntime_and_the_ir_has_every_new_op():
    g = check_against_ort(onnx.load(str(MODEL)), batches=(1, 5))
    ops = [n.op for n in g.nodes]
    assert ops.count("concat") == 2 and ops.count("resize") == 2 and ops.count("leakyrelu") == 1
    assert [n.params for n in g.nodes if n.op == "pad"] == [PadParams((0, 0, 1, 1))]  # the other merged:
    assert g.node("/conv2/Conv").params.pads == (1, 0, 0, 1)                      # top 1, right 1
    assert [n.params for n in g.nodes if n.op == "resize"] == [ResizeParams((2, 2))] * 2
    assert g.node("/cat1/Concat").inputs[0] == g.input
    assert sum(1 for n in g.nodes if n.activation is not None and n.activation.text.startswith("leakyrelu")) == 3


def test_the_example_script_rebuilds_the_model_byte_for_byte(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_digits_ops", ROOT / "examples" / "ops" / "make_digits_ops.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.HERE = tmp_path
    mod.main()
    assert (tmp_path / "digits_ops.onnx").read_bytes() == MODEL.read_bytes()


def needs(tool: str):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


@pytest.mark.parametrize("target", [
    pytest.param("c", marks=needs("cc")),
    pytest.param("hls", marks=needs("g++")),
    pytest.param("verilog", marks=pytest.mark.skipif(verilator_root() is None and shutil.which("verilator") is None,
                                                     reason="Verilator is not installed")),
])
def test_bit_exact_on_every_target(target, tmp_path):
    cfg = {**load_config(CONFIG), "targets": [target]}  # build only the target under test
    results, out = flow.verify(cfg, targets=[target], samples=8, out=tmp_path / "out", progress=False)
    r = results[target]
    assert r["samples"] == 8 and r["mismatches"] == 0, r
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"]["fixed"] >= 0.93 and summary["validation"]["top1_agreement"] >= 0.95
    if target == "verilog":
        analytic = r["cycles_per_frame_analytic"]
        assert analytic == summary["hardware"]["pipeline_cycles"]
        assert abs(r["cycles_per_frame"] - analytic) <= 0.1 * analytic, (r["cycles_per_frame"], analytic)


def test_integer_model_follows_the_float_model():
    b = flow.run_quantization(load_config(CONFIG), progress=False)
    assert b.validation.samples == 450
    acc = b.validation.accuracy  # measured: float 0.958, fixed point 0.947
    assert acc["float"] >= 0.95 and acc["fixed"] >= 0.93 and b.validation.agreement >= 0.95
