"""Automatic folding: the fastest balanced PE/SIMD within a multiplier budget, the cheapest
reaching a target; its cycle model is the Verilog library's, and simulation agrees."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import yaml

from fpgagen.backends.folding import fold, layer_cycles, options
from fpgagen.backends.parallelism import layer_dims
from fpgagen.config import load_config, resolve_config
from fpgagen.errors import BackendError, ConfigError
from fpgagen.flow import build, run_quantization

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def cfg_of(name: str, **parallelism) -> dict:
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    raw["targets"] = []
    raw["data"]["validation"] = None
    raw["data"]["samples"] = 128
    raw["parallelism"] = parallelism or "auto"
    return resolve_config(raw, f"{name}.yaml", CONFIGS, name)


@pytest.fixture(scope="module")
def quantized():
    return {n: run_quantization(cfg_of(n, pe=1, simd=1), progress=False).qgraph for n in ("digits_cnn", "digits_mlp")}


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
def test_cycle_model_is_the_verilog_backends(quantized, name):
    from fpgagen.backends.verilog import plan_design

    q = quantized[name]
    for pe, simd in [(1, 1), (2, 4), (4, 8)]:
        cfg = cfg_of(name, pe=pe, simd=simd)
        d = plan_design(q, cfg)
        for ly in q.layers:
            if ly.name in d.layer_cycles:
                row = d.layer_cycles[ly.name]
                assert layer_cycles(q, ly, row["pe"], row["simd"]) == row["cycles"], (ly.name, pe, simd)


@pytest.mark.parametrize("name, budget", [("digits_mlp", 7), ("digits_mlp", 40), ("digits_cnn", 9),
                                          ("digits_cnn", 21), ("digits_cnn", 52)])
def test_fastest_within_budget_is_optimal(quantized, name, budget):
    q = quantized[name]
    f = fold(q, budget=budget)
    assert f.multipliers <= budget
    mac = [ly for ly in q.layers if layer_dims(q, ly) is not None]
    others = max([layer_cycles(q, ly) for ly in q.layers if layer_dims(q, ly) is None] + [0])
    best = min(max([o.cycles for o in combo] + [others])
               for combo in itertools.product(*(options(q, ly) for ly in mac))
               if sum(o.multipliers for o in combo) <= budget)
    assert f.interval == best
    # balanced: no layer could give up multipliers and still keep up
    for ly in mac:
        pe, simd = f.layers[ly.name]
        cheaper = [o for o in options(q, ly) if o.multipliers < pe * simd and o.cycles <= f.interval]
        assert not cheaper, ly.name


def test_balanced_folding_beats_the_uniform_one(quantized):
    from fpgagen.backends.verilog import plan_design

    q = quantized["digits_cnn"]
    uniform = plan_design(q, cfg_of("digits_cnn", pe=4, simd=8))
    mults = sum(v["multipliers"] for v in uniform.layer_cycles.values())
    f = fold(q, target_cycles=uniform.pipeline_cycles)
    assert (mults, uniform.pipeline_cycles) == (52, 1152)
    assert f.interval <= 1152 and f.multipliers <= 21
    assert fold(q, budget=52).interval < 1152


def test_target_that_a_stream_cannot_reach(quantized):
    q = quantized["digits_cnn"]
    with pytest.raises(BackendError, match=r"parallelism.target_cycles: 100 cycles per frame cannot be reached: "
                                           r"layer '/conv1/Conv' \(conv\) takes at least 576"):
        fold(q, target_cycles=100)


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match="parallelism: auto needs a budget or a target"):
        run_quantization(cfg_of("digits_mlp"), progress=False)
    with pytest.raises(BackendError, match=r"the design needs 80 multipliers, more than the budget of 20 "
                                           r"\(hardware.multipliers\); the largest is layer '/fc1/Gemm' with PE 4 x "
                                           r"SIMD 8 = 32"):
        c = cfg_of("digits_mlp", pe=4, simd=8)
        c["hardware"]["multipliers"] = 20
        run_quantization(c, progress=False)
    with pytest.raises(ConfigError, match="parallelism.pe: cannot be combined with automatic folding"):
        cfg_of("digits_mlp", auto=True, pe=2)
    with pytest.raises(ConfigError, match="give target_cycles or target_fps, not both"):
        cfg_of("digits_mlp", target_cycles=100, target_fps=5.0)


def test_device_budget_and_target_fps(quantized):
    c = cfg_of("digits_cnn")
    c["hardware"].update(device="ice40-up5k", clock_mhz=24.0, multipliers=8)
    b = run_quantization(c, progress=False)
    assert b.folding.multipliers <= 8 and b.folding.how == "fastest within 8 multipliers"
    c = cfg_of("digits_cnn", target_fps=20000.0)
    c["hardware"]["clock_mhz"] = 24.0
    b = run_quantization(c, progress=False)
    assert b.folding.interval <= 24e6 // 20000


def test_saved_config_repeats_the_folding_and_simulation_agrees(tmp_path):
    from fpgagen.flow import verify

    c = cfg_of("digits_cnn", multipliers=21)
    c["targets"] = ["verilog"]
    b, out = build(c, tmp_path / "auto", progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["folding"]["multipliers"] <= 21 and s["folding"]["interval_cycles"] == s["hardware"]["pipeline_cycles"]
    for name, par in s["folding"]["layers"].items():
        assert s["hardware"]["layers"][name]["pe"] == par["pe"] and s["hardware"]["layers"][name]["simd"] == par["simd"]
    saved = load_config(out / "config.resolved.yaml")
    assert saved["parallelism"]["auto"] is False and saved["parallelism"]["layers"] == s["folding"]["layers"]
    b2, _ = build(saved, tmp_path / "again", progress=False)
    assert b2.hardware["layers"] == b.hardware["layers"]
    results, _ = verify(c, ["verilog"], 2, tmp_path / "auto", progress=False)
    r = results["verilog"]
    assert r["mismatches"] == 0
    assert r["cycles_per_frame"] == s["hardware"]["pipeline_cycles"], r
