"""Depthwise and grouped convs with PE across groups: the folding gives a depthwise conv more
than one PE lane (each lane a different channel, reading its own input channel from its line
buffer lane), and the Verilog stays bit-exact at the analytic cycles per frame; HLS and C stay
bit-exact on the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from fpgagen.backends.folding import options
from fpgagen.backends.parallelism import layer_parallelism, pe_choices
from fpgagen.errors import BackendError
from models_onnx import Net


def test_pe_choices_span_whole_groups():
    # depthwise (one output per group): every divisor of Co
    assert pe_choices(8, 8, whole_groups=True) == [1, 2, 4, 8]
    # 3 outputs per group: inside a group (1, 3) or whole groups (6, 12), never 2 or 4
    assert pe_choices(12, 4, whole_groups=True) == [1, 3, 6, 12]
    assert pe_choices(12, 4) == [1, 2, 3, 4, 6, 12]  # the HLS rule: any divisor of Co
    assert pe_choices(12, 1, whole_groups=True) == [1, 2, 3, 4, 6, 12]  # a plain conv


def depthwise_separable(seed: int = 3) -> onnx.ModelProto:
    """conv 1 -> 8 (3x3) -> depthwise 3x3 (8 groups) -> grouped 1x1 (2 groups of 4 -> 2 x 6)
    -> GAP -> dense: the DS-CNN block, small."""
    n = Net((1, 6, 7), seed=seed, batch=1)
    y = n.relu(n.conv("x", 1, 8, pads=[1, 1, 1, 1], name="/c1/Conv"))
    y = n.relu(n.conv(y, 8, 8, groups=8, pads=[1, 1, 1, 1], name="/dw/Conv"))
    y = n.relu(n.conv(y, 8, 12, k=(1, 1), groups=2, name="/gw/Conv"))
    y = n.node("GlobalAveragePool", [y])
    return n.model(n.gemm(n.flatten(y), 12, 3, name="/fc/Gemm"))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    d = tmp_path_factory.mktemp("dwpe")
    onnx.save(depthwise_separable(), d / "dwsep.onnx")
    x = np.random.default_rng(7).uniform(-1, 1, (64, 1, 6, 7)).astype(np.float32)
    np.savez(d / "cal.npz", x=x)
    cfg = {"name": "dwsep", "model": "dwsep.onnx", "data": {"calibration": "cal.npz"},
           "targets": ["verilog", "hls", "c"], "parallelism": {"multipliers": 60, "taps": 1, "layers": {"/gw/Conv": {"pe": 12, "simd": 2}}},
           "verify": {"samples": 3}}
    (d / "dwsep.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return d / "dwsep.yaml"


def test_folding_gives_the_depthwise_conv_pe_lanes(config):
    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    b = run_quantization(load_config(config), progress=False)
    q = b.qgraph
    dw = next(ly for ly in q.layers if ly.name == "/dw/Conv")
    assert dw.params.groups == 8
    # PE 2, 4, 8 span groups (before: PE 1 only, 3,024 cycles at best)
    assert [o.pe for o in options(q, dw, max_taps=1)] == [1, 2, 4, 8]
    b.cfg["parallelism"]["layers"] = {"/gw/Conv": {"pe": 4}}  # 6 outputs per group: 4 fits neither way
    with pytest.raises(BackendError, match=r"parallelism\.layers\./gw/Conv\.pe: 4 must divide the layer's 6 outputs "
                                           r"per group \(Co/groups, groups=2\) or be a multiple of them \(whole groups "
                                           r"per pass\) \(layer '/gw/Conv', conv; allowed: 1, 2, 3, 6, 12\)"):
        layer_parallelism(b.cfg, q, q.layers[2], whole_groups=True)
    assert layer_parallelism(b.cfg, q, q.layers[2]) == (4, 1)  # HLS: any divisor of Co


def test_depthwise_pe_across_groups_is_bit_exact_on_every_target(config):
    """A budget of 60 multipliers without tap unrolling: the folding gives the depthwise conv PE 8
    (all 8 channels per cycle, 8 line buffer lanes); the grouped 1x1 is set to PE 12 over both
    groups (2 lanes) x SIMD 2; the
    Verilog is bit-exact and its measured cycles per frame are the analytic ones; HLS C
    simulation and the C runtime are bit-exact on the same model."""
    from fpgagen.flow import verify

    results, out = verify(config, targets=["verilog", "hls", "c"], samples=3, out=config.parent / "out",
                          progress=False)
    folding = yaml.safe_load((out / "config.resolved.yaml").read_text())["parallelism"]["layers"]
    assert folding["/dw/Conv"]["pe"] == 8 and folding["/gw/Conv"]["pe"] == 12, folding
    for target in ("verilog", "hls", "c"):
        assert (results[target]["samples"], results[target]["mismatches"]) == (3, 0), (target, results[target])
    v = results["verilog"]
    assert v["cycles_per_frame"] == v["cycles_per_frame_analytic"], v
    top = (out / "verilog" / "fpgagen_dwsep.v").read_text()
    assert "lanes (groups per pass)" in top


def test_ds_cnn_configs_fold_to_the_readme_figures(tmp_path):
    """configs/ds_cnn_128.yaml and ds_cnn_192.yaml on the example script's DS-CNN: the analytic
    cycles per frame the README quotes (measured = analytic in `fpgagen verify`), the depthwise
    convs' PE across channels where the budget buys it."""
    import importlib.util
    import shutil
    import sys

    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("mlperf_tiny_models", root / "examples" / "mlperf_tiny" / "models.py")
    models = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mlperf_tiny_models", models)
    spec.loader.exec_module(models)
    out = tmp_path / "examples" / "mlperf_tiny" / "out"
    out.mkdir(parents=True)
    onnx.save(models.ds_cnn(), out / "ds_cnn.onnx")
    np.savez(out / "ds_cnn_calib.npz", x=np.random.default_rng(100).standard_normal((16, 1, 49, 10)).astype(np.float32))
    (tmp_path / "configs").mkdir()
    got = {}
    for name, taps in (("ds_cnn_128", None), ("ds_cnn_128", 1), ("ds_cnn_192", None)):
        shutil.copy(root / "configs" / f"{name}.yaml", tmp_path / "configs")
        cfg = load_config(tmp_path / "configs" / f"{name}.yaml")
        if taps is not None:
            cfg["parallelism"]["taps"] = taps
        f = run_quantization(cfg, progress=False).folding
        got[name, taps] = (f.interval, f.multipliers, f.layers["/dw1/Conv"])
    assert got == {("ds_cnn_128", None): (32000, 93, (1, 1, 3)), ("ds_cnn_128", 1): (32000, 97, (4, 1, 1)),
                   ("ds_cnn_192", None): (16000, 185, (2, 1, 3))}


def test_depthwise_lanes_take_whole_words_per_beat(config, tmp_path):
    """A depthwise conv's line buffer has a lane per channel (PE lanes over groups of one word):
    a beat may carry SIMD times a divisor of the lanes, whole words written to several lanes at
    once, so its input stream no longer bounds it at one element per beat. At 128 multipliers
    the backend gives /dw/Conv 4 elements per beat (336 inputs in 126 cycles), bit-exact at the
    analytic cycles per frame."""
    from fpgagen.backends.rtl import widths as W
    from fpgagen.backends.rtl.conv2d import conv2d_instance
    from fpgagen.config import load_config
    from fpgagen.flow import build, run_quantization, verify

    q = run_quantization(load_config(config), progress=False).qgraph
    dw = next(ly for ly in q.layers if ly.name == "/dw/Conv")
    gw = next(ly for ly in q.layers if ly.name == "/gw/Conv")
    assert W.widths(q, dw, pe=8, simd=1).ins == (1, 2, 4, 8)  # 8 lanes of one channel each
    assert W.widths(q, dw, pe=4, simd=1).ins == (1, 2, 4)
    assert W.widths(q, dw, pe=1, simd=1).ins == (1,)  # one lane: EW_IN divides SIMD
    assert W.widths(q, gw, pe=12, simd=4).ins == (1, 2, 4, 8)  # 2 lanes of one 4-channel word
    assert W.widths(q, gw, pe=12, simd=2).ins == (1, 2)  # two words per group: parts of one word only
    with pytest.raises(BackendError, match=r"layer '/dw/Conv' \(conv\): fpgagen_conv2d takes EW_IN \(input elements "
                                           r"per beat\) as an integer dividing SIMD 1 or SIMD times a divisor of its "
                                           r"4 line buffer lanes \(allowed: 1, 2, 4\), got 8"):
        conv2d_instance(q, dw, 4, 1, ew_in=8)

    cfg = yaml.safe_load(config.read_text())
    cfg["parallelism"] = {"multipliers": 128}
    cfg["targets"] = ["verilog"]
    (config.parent / "dw128.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    b, out = build(config.parent / "dw128.yaml", tmp_path / "out", progress=False)
    row = b.hardware["layers"]["/dw/Conv"]
    assert (row["pe"], row.get("ew_in")) == (8, 4), row
    assert b.hardware["pipeline_cycles"] == 126
    results, _ = verify(config.parent / "dw128.yaml", ["verilog"], 3, tmp_path / "out", progress=False)
    v = results["verilog"]
    assert (v["mismatches"], v["cycles_per_frame"]) == (0, v["cycles_per_frame_analytic"]), v
    assert v["cycles_per_frame_analytic"] == 126
