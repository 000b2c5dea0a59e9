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
from fpgagen.backends.parallelism import layer_folding
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


def folding_of(cfg, q, layer):
    return layer_folding(cfg, q, layer, whole_groups=True)


@pytest.fixture(scope="module")
def quantized():
    return {n: run_quantization(cfg_of(n, pe=1, simd=1), progress=False).qgraph for n in ("digits_cnn", "digits_mlp")}


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
def test_cycle_model_is_the_verilog_backends(quantized, name):
    from fpgagen.backends.verilog import plan_design

    q = quantized[name]
    for pe, simd, taps in [(1, 1, 1), (2, 4, 1), (4, 8, 1), (1, 1, 3), (2, 4, 3)]:
        cfg = cfg_of(name, pe=pe, simd=simd, taps=taps)
        d = plan_design(q, cfg)
        for ly in q.layers:
            if ly.name in d.layer_cycles:
                row = d.layer_cycles[ly.name]
                assert row["taps"] == (taps if ly.op == "conv" else 1)
                ew = (row.get("ew_in", 1), row.get("ew_out", 1))  # the stream widths the backend chose
                assert layer_cycles(q, ly, row["pe"], row["simd"], row["taps"], ew) == row["cycles"], (ly.name, pe, simd)
                # never slower than the folding's interval (every layer at its widest streams)
                assert row["cycles"] <= max(layer_cycles(q, r, *folding_of(cfg, q, r)) for r in q.layers), ly.name
                assert row["multipliers"] == (row["pe"] * row["simd"] * row["taps"] if ly.op in ("conv", "dense")
                                              else 0)


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
        cheaper = [o for o in options(q, ly) if o.multipliers < math.prod(f.layers[ly.name]) and o.cycles <= f.interval]
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
                                           r"layer '/conv1/Conv' \(conv\) takes at least 192 \(its streams at their widest\)"):
        fold(q, target_cycles=100)  # 4,608 MACs / (PE 8 x taps 3); its 512 outputs leave 8 per beat at PE 8


def test_taps_use_a_budget_pe_and_simd_cannot(quantized):
    """The 1-channel first conv of the digits CNN: SIMD divides Ci = 1, so PE x SIMD stops at its
    8 output channels (4,608 MACs / 8 = 576 cycles) and leaves a budget unused; unrolling the 3
    taps of a kernel row spends it: 40 multipliers give 768 cycles/frame instead of 1,152 (21
    used), 80 give 384 instead of 576 (42 used): its 512 outputs leave more than one per beat (a
    wide stream), so the output stream no longer stops it at 512."""
    q = quantized["digits_cnn"]
    conv1 = next(ly for ly in q.layers if ly.name == "/conv1/Conv")
    assert max(o.multipliers for o in options(q, conv1, max_taps=1)) == 8
    for budget, without, with_taps in [(40, 1152, 768), (80, 576, 384)]:
        plain, taps = fold(q, budget=budget, max_taps=1), fold(q, budget=budget)
        assert (plain.interval, taps.interval) == (without, with_taps), budget
        assert all(f[2] == 1 for f in plain.layers.values()) and taps.layers["/conv1/Conv"][2] == 3
        assert plain.multipliers < taps.multipliers <= budget
    assert all(o.multipliers == o.pe * o.simd * o.taps for o in options(q, conv1))
    assert {o.taps for o in options(q, conv1)} == {1, 3}


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


@pytest.mark.parametrize("name, budget", [("digits_mlp", 7), ("digits_cnn", 9), ("digits_cnn", 21)])
def test_a_block_budget_like_the_multiplier_budget_gives_the_same_folding(quantized, name, budget):
    """Blocks counted as multipliers: the block budget binds exactly as the multiplier budget does."""
    q = quantized[name]
    f = fold(q, budget=10_000, blocks=lambda ly, o: o.multipliers, block_budget=budget)
    g = fold(q, budget=budget)
    assert (f.layers, f.interval, f.multipliers) == (g.layers, g.interval, g.multipliers)


def test_layers_trade_multipliers_for_blocks(quantized):
    """Narrow options cost more blocks (as narrow weight ROMs pack worse): the folding moves the
    layers to wider options within the multiplier budget until the blocks fit, at the fastest
    interval where that is possible, and never exceeds either budget."""
    q = quantized["digits_cnn"]
    mac = [ly for ly in q.layers if layer_dims(q, ly) is not None]

    def blocks(ly, o):
        return 6 if o.multipliers < 4 else 1

    f = fold(q, budget=40, blocks=blocks, block_budget=len(mac) + 2)
    chosen = {ly.name: next(o for o in options(q, ly) if o.folding == f.layers[ly.name]) for ly in mac}
    assert sum(blocks(ly, chosen[ly.name]) for ly in mac) <= len(mac) + 2 and f.multipliers <= 40
    assert all(o.multipliers >= 4 for o in chosen.values())  # one narrow layer alone takes 6 blocks
    plain = fold(q, budget=40)
    assert f.interval >= plain.interval  # the block budget can only slow it down
    with pytest.raises(BackendError, match=r"no folding reaches \d+ cycles/frame within 1 block RAMs"):
        fold(q, target_cycles=plain.interval, blocks=blocks, block_budget=1)


@pytest.mark.skipif(not (ROOT.parent / "shared" / "models").is_dir(), reason="../shared (the MNIST CNN) is absent")
def test_mnist_cnn_folding_fits_the_ecp5_85f_block_rams():
    """The MNIST CNN of ../shared on the ECP5-85F: the fastest folding within its 156 multipliers
    overfills the 208 DP16KD (224 estimated, 225 placed); folded with the block model it fits."""
    raw = yaml.safe_load((CONFIGS / "mnist_cnn.yaml").read_text())
    raw.update(targets=["verilog"], parallelism="auto", hardware={"device": "ecp5-85f"})
    raw["data"]["validation"] = None
    raw["data"]["samples"] = 64
    b = run_quantization(resolve_config(raw, "mnist_cnn.yaml", CONFIGS, "mnist_cnn"), progress=False)
    from fpgagen.backends.verilog import estimate_resources, plan_design

    r = estimate_resources(plan_design(b.qgraph, b.cfg), b.cfg["hardware"])
    assert r["total"]["brams"] <= 208 - 4 and r["fits"]
    assert b.folding.multipliers <= 156 and b.folding.interval < 50_000
    assert "block RAMs" in b.folding.how


def test_device_budget_and_target_fps(quantized):
    c = cfg_of("digits_cnn")
    c["hardware"].update(device="ice40-up5k", clock_mhz=24.0, multipliers=8)
    b = run_quantization(c, progress=False)
    assert b.folding.multipliers <= 8
    assert b.folding.how == "fastest within 8 multipliers and the ice40-up5k's block RAMs (estimated)"
    c = cfg_of("digits_cnn", target_fps=20000.0)
    c["hardware"]["clock_mhz"] = 24.0
    b = run_quantization(c, progress=False)
    assert b.folding.interval <= 24e6 // 20000


def test_two_products_per_dsp_block_on_the_up5k(quantized):
    """The UP5K's SB_MAC16 computes two int8 products (int8_per_dsp 2): its budget is 16
    products, a layer's products take whole blocks (an odd count costs one more; a layer whose
    words are wider than 8 bits cannot pair: a block per product), and ``parallelism: auto`` fills
    the 8 blocks: faster than the one-product-per-block budget of 8, every layer paired, the DSP
    blocks of the estimate (ceil(products / 2) per layer) within the device's."""
    from fpgagen.backends.folding import product_cost
    from fpgagen.backends.verilog import estimate_resources, plan_design
    from fpgagen.devices import DEVICES

    assert DEVICES["ice40-up5k"].int8_per_dsp == 2
    assert {n: d.int8_per_dsp for n, d in DEVICES.items() if d.family != "ecp5"} == {
        "ice40-up5k": 2, "xc7a35t": 2, "xc7z020": 2}
    assert {d.int8_per_dsp for d in DEVICES.values() if d.family == "ecp5"} == {1}
    q = quantized["digits_cnn"]
    c = cfg_of("digits_cnn")
    c["hardware"]["device"] = "ice40-up5k"
    cost = product_cost(c, q)
    conv1 = q.layers[0].name
    assert [cost(conv1, (m, 1, 1)) for m in (1, 2, 3, 4, 5)] == [2, 2, 4, 4, 6]
    assert cost(conv1, (1, 1, 3)) == 4  # any two products share an SB_MAC16, taps too
    wide = q.layers[0].in_fmts[0]
    q.layers[0].in_fmts[0] = type(wide)(wide.signed, 16, wide.frac)
    try:
        assert [product_cost(c, q)(conv1, (m, 1, 1)) for m in (1, 3)] == [2, 6]  # 16-bit inputs: one product per block
    finally:
        q.layers[0].in_fmts[0] = wide
    c["hardware"]["device"] = "xc7a35t"  # a DSP48E1 takes two PE lanes reading one input
    x7 = product_cost(c, q)
    assert [x7(conv1, f) for f in ((2, 1, 1), (4, 1, 3), (3, 1, 1), (1, 1, 3), (1, 1, 1))] == [2, 12, 6, 6, 2]
    c["hardware"]["device"] = "ecp5-25f"
    assert [product_cost(c, q)(conv1, (m, 1, 1)) for m in (1, 3)] == [1, 3]
    # options by cost: never two of one cost (the slower of equal cost is dominated)
    costs = [cost(conv1, o.folding) for o in options(q, q.layers[0], None, lambda f: cost(conv1, f))]
    assert costs == sorted(set(costs))

    raw = yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text())
    raw.update(targets=[], parallelism="auto", hardware={"device": "ice40-up5k"})
    raw["data"].update(validation=None, samples=128)
    b = run_quantization(resolve_config(raw, "digits_cnn.yaml", CONFIGS, "digits_cnn"), progress=False)
    assert b.cfg["hardware"]["multipliers"] == 16  # the device's budget: 8 blocks x 2 products
    assert b.folding.how == "fastest within 16 multipliers and the ice40-up5k's block RAMs (estimated)"
    raw["hardware"]["multipliers"] = 8
    one = run_quantization(resolve_config(raw, "digits_cnn.yaml", CONFIGS, "digits_cnn"), progress=False)
    assert b.folding.interval < one.folding.interval
    d = plan_design(b.qgraph, b.cfg)
    mac = [i for i in d.instances if i.module in ("fpgagen_conv2d", "fpgagen_dense")]
    assert mac and all(dict(i.params)["DSP_PAIR"] == "1" for i in mac)
    r = estimate_resources(d, b.cfg["hardware"])
    blocks = sum(-(-math.prod(f) // 2) for f in b.folding.layers.values())
    assert r["total"]["dsps"] == blocks <= 8 and r["available"]["dsps"] == 8 and r["fits"]
    assert r["total"]["multipliers"] == b.folding.multipliers <= 16


def test_saved_config_repeats_the_folding_and_simulation_agrees(tmp_path):
    from fpgagen.flow import verify

    c = cfg_of("digits_cnn", multipliers=21)
    c["targets"] = ["verilog"]
    b, out = build(c, tmp_path / "auto", progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["folding"]["multipliers"] <= 21 and s["folding"]["interval_cycles"] == s["hardware"]["pipeline_cycles"]
    for name, par in s["folding"]["layers"].items():
        assert all(s["hardware"]["layers"][name][k] == par[k] for k in ("pe", "simd", "taps"))
    saved = load_config(out / "config.resolved.yaml")
    assert saved["parallelism"]["auto"] is False and saved["parallelism"]["layers"] == s["folding"]["layers"]
    b2, _ = build(saved, tmp_path / "again", progress=False)
    assert b2.hardware["layers"] == b.hardware["layers"]
    results, _ = verify(c, ["verilog"], 2, tmp_path / "auto", progress=False)
    r = results["verilog"]
    assert r["mismatches"] == 0
    assert r["cycles_per_frame"] == s["hardware"]["pipeline_cycles"], r


def test_the_model_ports_bound_the_folding():
    """The model's input and output ports carry one element per beat (a converter widens the
    stream behind the port, not its rate): the digits MLP's 64 inputs bound it at 64 cycles/frame,
    so `auto` on the xc7a35t (180 int8 products in its 90 DSP48E1s) buys the 44 multipliers that
    reach 64, not the 170 of a 16-cycle interval the port cannot feed; the folding's interval is
    the Verilog design's analytic cycles."""
    from fpgagen.backends.rtl.widths import port_bound
    from fpgagen.backends.verilog import plan_design

    raw = yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text())
    raw.update(targets=[], parallelism="auto", hardware={"device": "xc7a35t"})
    raw["data"].update(validation=None, samples=128)
    b = run_quantization(resolve_config(raw, "digits_mlp.yaml", CONFIGS, "digits_mlp"), progress=False)
    assert port_bound(b.qgraph) == 64
    assert (b.folding.interval, b.folding.multipliers) == (64, 44), b.folding
    assert plan_design(b.qgraph, b.cfg).pipeline_cycles == b.folding.interval
