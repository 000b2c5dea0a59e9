"""Wide streams (issue 14): EW elements per beat between Verilog layers, chosen per edge for the
folding's interval, width converters where two ends differ, bit-exact and at the analytic rate."""

from __future__ import annotations

import pytest

from fpgagen.backends.rtl import widths as W
from fpgagen.errors import BackendError
from fpgagen.flow import build, run_quantization, verify

from test_folding import cfg_of


@pytest.fixture(scope="module")
def digits():
    return run_quantization(cfg_of("digits_cnn", pe=1, simd=1), progress=False).qgraph


def test_rules_divide_and_cap(digits):
    q = digits
    conv2 = next(ly for ly in q.layers if ly.name == "/conv2/Conv")
    pool = next(ly for ly in q.layers if ly.op == "maxpool")
    w = W.widths(q, conv2, pe=4, simd=2)
    assert not w.tied and (w.ins, w.outs) == ((1, 2), (1, 2, 4))  # EW_IN divides SIMD, EW_OUT divides PE
    c = q.shapes[pool.inputs[0]][0]
    p = W.widths(q, pool)
    assert p.tied and p.ins == tuple(d for d in range(1, min(c, 8) + 1) if c % d == 0)  # 64 bits of 8-bit elements
    # the narrowest width that keeps up with the interval; the widest where none does
    n = W.elements(q, pool.inputs[0])
    assert W.choose(q, pool, 1, 1, n) == (1, 1)
    assert W.choose(q, pool, 1, 1, n // 2) == (2, 2)
    assert W.choose(q, pool, 1, 1, 1) == (p.ins[-1], p.ins[-1])
    assert W.stream_bound(q, pool) == n // p.ins[-1]


def test_mac_ew_errors_name_the_layer(digits):
    from fpgagen.backends.rtl.conv2d import conv2d_instance

    conv2 = next(ly for ly in digits.layers if ly.name == "/conv2/Conv")
    with pytest.raises(BackendError, match=r"layer '/conv2/Conv' \(conv\): fpgagen_conv2d takes EW_IN \(input "
                                           r"elements per beat\) as an integer dividing SIMD 4, got 3"):
        conv2d_instance(digits, conv2, 4, 4, ew_in=3)
    with pytest.raises(BackendError, match=r"EW_OUT \(output elements per beat\) as an integer dividing PE 4, got 8"):
        conv2d_instance(digits, conv2, 4, 4, ew_out=8)


def test_digits_cnn_beyond_the_one_element_cap_is_bit_exact(tmp_path):
    """{multipliers: 128}: 192 cycles/frame, below the 512 that conv1's 512 outputs at one element
    per beat allowed; measured = analytic, 0 mismatches."""
    c = cfg_of("digits_cnn", multipliers=128)
    c["targets"] = ["verilog"]
    b, out = build(c, tmp_path / "wide", progress=False)
    hw = b.hardware
    assert hw["pipeline_cycles"] == 192 < 512
    assert max(row.get("ew_out", 1) for row in hw["layers"].values()) > 1
    results, _ = verify(c, ["verilog"], 3, tmp_path / "wide", progress=False)
    r = results["verilog"]
    assert r["mismatches"] == 0
    assert r["cycles_per_frame"] == hw["pipeline_cycles"], r



def residual_net():
    """Two residual blocks (an identity skip and a strided 1x1 shortcut): forks, join FIFOs and
    adds on wide streams."""
    from models_onnx import Net

    n = Net((3, 8, 8), seed=5, batch=1)
    a = n.relu(n.conv("x", 3, 8, pads=[1, 1, 1, 1], name="/c0/Conv"))
    b = n.relu(n.conv(a, 8, 8, pads=[1, 1, 1, 1], name="/c1/Conv"))
    b = n.conv(b, 8, 8, pads=[1, 1, 1, 1], name="/c2/Conv")
    y = n.relu(n.node("Add", [a, b]))
    c = n.relu(n.conv(y, 8, 16, pads=[1, 1, 1, 1], strides=[2, 2], name="/c3/Conv"))
    d = n.conv(y, 8, 16, k=(1, 1), strides=[2, 2], name="/sc/Conv")
    z = n.node("GlobalAveragePool", [n.relu(n.node("Add", [c, d]))])
    return n.model(n.gemm(n.flatten(z), 16, 4, name="/fc/Gemm"))


def test_residual_blocks_on_wide_streams_are_bit_exact_under_back_pressure(tmp_path):
    """{multipliers: 800}: 192 cycles/frame, 4 elements per beat through the first block's fork,
    skip FIFO and add, 2 through the second's; the cocotb testbench (random input pauses,
    back-pressure on the output, frames back to back) gets the golden integers, and the
    free-running harness the analytic cycles per frame."""
    import numpy as np
    import onnx
    import yaml

    onnx.save(residual_net(), tmp_path / "res.onnx")
    np.savez(tmp_path / "cal.npz", x=np.random.default_rng(7).uniform(-1, 1, (64, 3, 8, 8)).astype(np.float32))
    cfg = {"name": "res", "model": "res.onnx", "data": {"calibration": "cal.npz"}, "targets": ["verilog"],
           "parallelism": {"multipliers": 800}, "verify": {"samples": 3}}
    (tmp_path / "res.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    b, out = build(tmp_path / "res.yaml", tmp_path / "out", progress=False)
    rows = b.hardware["layers"]
    assert b.hardware["pipeline_cycles"] == 192
    assert (rows["/add12/Add"].get("ew_in"), rows["/add21/Add"].get("ew_in")) == (4, 2), rows
    results, _ = verify(tmp_path / "res.yaml", ["verilog"], 3, tmp_path / "out", progress=False)
    r = results["verilog"]
    assert (r["mismatches"], r["cycles_per_frame"]) == (0, 192), r
    cfg["verify"]["verilog_sim"] = "cocotb"
    (tmp_path / "res_cocotb.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    results, _ = verify(tmp_path / "res_cocotb.yaml", ["verilog"], 3, tmp_path / "out_cocotb", progress=False)
    assert (results["verilog"]["samples"], results["verilog"]["mismatches"]) == (3, 0), results["verilog"]
