"""The MNIST CNN with two 5x5 convs (examples/mnist5x5) on the iCE40 UP5K: the shipped
configs/mnist5x5_up5k.yaml, folded by ``parallelism: auto`` alone, fits the UP5K's multipliers (two
int8 products per SB_MAC16: 16 in 8 blocks) and block RAMs (the estimate), reaches >= 9 MACs/cycle
on the analytic cycle model, and its Verilog is bit-exact in Verilator at the analytic cycles.
Place and route is in the README (``fpgagen synth``: minutes, not run here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fpgagen.backends.parallelism import macs
from fpgagen.config import load_config
from fpgagen.flow import build, verify

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "mnist5x5_up5k.yaml"
DATA = ROOT.parent / "shared" / "data" / "mnist_1k.npz"

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"{DATA} (../shared, the 1,000 MNIST digits) is absent")


def test_mnist5x5_fits_the_up5k_fast_and_bit_exact(tmp_path):
    cfg = load_config(CONFIG)
    cfg["targets"] = ["verilog"]  # the shipped config's other targets do not change the design
    assert cfg["hardware"]["device"] == "ice40-up5k" and cfg["hardware"]["clock_mhz"] == 24.0
    b, out = build(cfg, tmp_path, progress=False)
    q = b.qgraph
    convs = [ly for ly in q.layers if ly.op == "conv"]
    assert [tuple(ly.params.kernel) for ly in convs] == [(5, 5), (5, 5)]

    s = json.loads((out / "summary.json").read_text())
    res = s["hardware"]["resources"]
    assert res["device"] == "ice40-up5k"
    assert res["available"]["multipliers"] == 16 and res["available"]["dsps"] == 8 and res["available"]["brams"] == 30
    assert res["total"]["multipliers"] <= 16 and res["total"]["dsps"] <= 8 and res["total"]["brams"] <= 30
    assert res["fits"] is True
    assert s["folding"]["how"] == "fastest within 16 multipliers and the ice40-up5k's block RAMs (estimated)"
    # every conv and dense layer computes its products two per SB_MAC16 (fpgagen_mac_out's DSP_PAIR)
    top = (out / "verilog" / f"{b.hardware['top']}.v").read_text()
    assert top.count(".DSP_PAIR(1)") == 3

    total = sum(macs(q, ly) for ly in q.layers)
    assert total == 24 * 24 * 8 * 25 + 8 * 8 * 16 * 8 * 25 + 256 * 10  # conv1, conv2, fc
    cycles = s["hardware"]["pipeline_cycles"]
    assert cycles == s["folding"]["interval_cycles"]
    assert total / cycles >= 9, (total, cycles, s["folding"]["layers"])
    assert s["accuracy"]["fixed"] >= s["accuracy"]["float"] - 0.01  # 8 bits lose at most 1 point

    results, _ = verify(cfg, ["verilog"], 2, out, progress=False)
    r = results["verilog"]
    assert r["samples"] == 2 and r["mismatches"] == 0
    assert r["cycles_per_frame"] == cycles  # simulated frames back to back = the analytic model
