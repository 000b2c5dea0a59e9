"""The HLS C++ backend on whole models, end to end through :mod:`fpgagen.flow`.

The digits MLP and CNN of ``examples/digits`` and the MNIST CNN of ../shared are calibrated,
lowered, generated and C-simulated with g++; every output integer must equal the golden
model's. Also: the generated text is deterministic and carries its provenance, ``make csim``
and the Vitis Tcl script are complete, a corrupted weight is located to its layer, compiler
errors and bad inputs raise errors that name what is wrong.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpgagen import flow
from fpgagen.backends import hls
from fpgagen.config import load_config
from fpgagen.errors import BackendError
from fpgagen.flow import Build
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node
from fpgagen.names import quoted
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.targets import GoldenRun
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MNIST_MODEL = SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx"
MNIST_DATA = SHARED / "data" / "mnist_1k.npz"

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


def config(name: str, **changes) -> dict:
    """A shipped config with only the HLS target (plus ``changes`` at the top level)."""
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    cfg["targets"] = ["hls"]
    cfg.update(changes)
    return cfg


@pytest.fixture(scope="module")
def digits_cnn():
    """The digits CNN quantized once, its HLS files generated into a directory."""
    return flow.run_quantization(config("digits_cnn"), progress=False)


def write_target(build, out: Path) -> Path:
    files = hls.generate(build)
    files.write(out / "hls")
    return out / "hls"


def golden_for(build, samples: int):
    return flow.verification_inputs(build, samples)


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_digits_models_bit_exact(name, tmp_path):
    results, out = flow.verify(config(name), targets=["hls"], samples=60, out=tmp_path, progress=False)
    r = results["hls"]
    assert r["samples"] == 60
    assert r["mismatches"] == 0
    assert r["compile_cached"] is False and r["compile_seconds"] > 0
    assert json.loads((out / "verify.json").read_text())["hls"]["mismatches"] == 0
    top = f"fpgagen_{name}"
    for f in (f"{top}.cpp", f"{top}.h", f"{top}_weights.h", f"{top}_tb.cpp", "fpgagen_nn.h", "fpgagen_stream.h",
              "run_hls.tcl", "Makefile", "csim_input.txt", "csim_expected.txt"):
        assert (out / "hls" / f).is_file(), f


def test_tap_unrolled_convs_bit_exact(tmp_path):
    """parallelism.taps: the conv kernel unrolls KU taps of a kernel row per pipelined step
    (#pragma HLS UNROLL of conv_taps); C simulation stays bit-exact."""
    cfg = config("digits_cnn")
    cfg["parallelism"]["taps"] = 3
    results, out = flow.verify(cfg, targets=["hls"], samples=20, out=tmp_path, progress=False)
    assert (results["hls"]["samples"], results["hls"]["mismatches"]) == (20, 0)
    code = (out / "hls" / "fpgagen_digits_cnn.h").read_text() + (out / "hls" / "fpgagen_digits_cnn.cpp").read_text()
    assert code.count("static constexpr int KU = 3;") == 2 and "x taps 3" in code


def test_16_bit_words_use_int16_data_and_int64_accumulators(tmp_path):
    cfg = config("digits_mlp")
    cfg["quantization"] = dict(cfg["quantization"], word_length=16, bias_word_length=32)
    results, out = flow.verify(cfg, targets=["hls"], samples=40, out=tmp_path, progress=False)
    assert (results["hls"]["samples"], results["hls"]["mismatches"]) == (40, 0)
    cpp = (out / "hls" / "fpgagen_digits_mlp.cpp").read_text()
    assert "using in_t = uint16_t;" in cpp and "using w_t = int16_t;" in cpp and "using acc_t = int64_t;" in cpp


@pytest.mark.skipif(not (MNIST_MODEL.is_file() and MNIST_DATA.is_file()), reason="../shared (MNIST model/data) absent")
def test_mnist_cnn_bit_exact(tmp_path):
    cfg = config("mnist_cnn", parallelism={"pe": 4, "simd": 4, "layers": {"/fc1/Gemm": {"pe": 8, "simd": 16}}})
    cfg["data"] = dict(cfg["data"], samples=300, validation=None)  # calibrate on 300 real digits
    results, out = flow.verify(cfg, targets=["hls"], samples=100, out=tmp_path, progress=False)
    assert results["hls"]["samples"] == 100
    assert results["hls"]["mismatches"] == 0
    cpp = (out / "hls" / "fpgagen_mnist.cpp").read_text()
    # fc1 reads the flattened 24x22x22 map: its weight columns are in HWC order, PE 8 x SIMD 16
    assert "columns in the HWC order of the flattened [24, 22, 22] map" in (out / "hls" / "fpgagen_mnist_weights.h").read_text()
    block = cpp.split("struct fc1_Gemm_cfg {")[1].split("};")[0]
    assert "PE = 8;" in block and "SIMD = 16;" in block


def test_verify_recompiles_only_when_the_sources_change(digits_cnn, tmp_path):
    target = write_target(digits_cnn, tmp_path)
    xq, golden = golden_for(digits_cnn, 10)
    first = hls.verify(digits_cnn, target, xq, golden)
    again = hls.verify(digits_cnn, target, xq, golden)
    assert first["mismatches"] == again["mismatches"] == 0
    assert first["compile_cached"] is False and again["compile_cached"] is True
    assert again["compile_seconds"] == 0

    # corrupt one weight of the second conv: the mismatch is located to that layer
    weights = target / "fpgagen_digits_cnn_weights.h"
    text = weights.read_text()
    first = re.compile(r"-?\d+").search(text, text.index("= {", text.index("CONV2_CONV_W[")))
    wrong = -100 if int(first.group()) > 0 else 100
    weights.write_text(text[:first.start()] + str(wrong) + text[first.end():])
    bad = hls.verify(digits_cnn, target, xq, golden)
    assert bad["compile_cached"] is False
    assert bad["mismatches"] > 0
    assert bad["first_mismatch_layer"] == "/conv2/Conv"
    assert 0 <= bad["first_mismatch_sample"] < 10


def test_generated_text_is_deterministic_and_names_its_sources(digits_cnn):
    again = flow.run_quantization(config("digits_cnn"), progress=False)
    a, b = hls.generate(digits_cnn), hls.generate(again)
    assert sorted(a.files) == sorted(b.files)
    for rel in a.files:
        assert a.files[rel] == b.files[rel], rel
    q = digits_cnn.qgraph
    for rel in ("fpgagen_digits_cnn.cpp", "fpgagen_digits_cnn.h", "fpgagen_digits_cnn_weights.h",
                "fpgagen_digits_cnn_tb.cpp"):
        text = a.files[rel].decode()
        assert "Model 'digits_cnn' (source: 'digits_cnn.onnx')" in text
        for layer in q.layers:
            assert f"'{layer.name}': ONNX '{layer.onnx_nodes[0]}'" in text
            assert str(layer.out_fmt) in text
        assert "PE 4 x SIMD 1" in text and "PE 4 x SIMD 8" in text  # conv1 (1 input channel), conv2
    cpp = a.files["fpgagen_digits_cnn.cpp"].decode()
    assert cpp.count("#pragma HLS DATAFLOW") == 2  # array and stream tops
    assert "#pragma HLS INTERFACE axis port=x" in cpp
    assert "ARRAY_PARTITION variable=CONV2_CONV_W cyclic factor=4 dim=1" in cpp
    assert "ARRAY_PARTITION variable=CONV2_CONV_W cyclic factor=8 dim=2" in cpp
    lib = a.files["fpgagen_nn.h"].decode()
    assert lib.count("round_shift<SHIFT, Acc, EVEN>::apply") == 1  # rounding written once
    assert "#pragma HLS PIPELINE II=1" in lib and "#pragma HLS UNROLL" in lib
    # only <cstdint> types in the generated model
    assert not re.search(r"\b(int|short|long|char)\s+\w+\[", cpp)
    weights = a.files["fpgagen_digits_cnn_weights.h"].decode()
    assert "static const int8_t CONV1_CONV_W[8][1][3][3]" in weights
    assert "static const int32_t CONV1_CONV_B[8]" in weights


def test_makefile_csim_and_vitis_script(digits_cnn, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    target = write_target(digits_cnn, tmp_path)
    makefile = (target / "Makefile").read_text()
    assert "CXXFLAGS = -std=c++14 -pedantic -O2 -Wall -Wextra -Werror -Wno-unknown-pragmas" in makefile
    res = subprocess.run(["make", "-s", "csim"], cwd=target, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 differ from csim_expected.txt" in res.stdout
    assert (target / "csim_output.txt").read_text() == (target / "csim_expected.txt").read_text()
    tcl = (target / "run_hls.tcl").read_text()
    for cmd in ("open_project", "set_top $top", "add_files fpgagen_digits_cnn.cpp", "add_files -tb fpgagen_digits_cnn_tb.cpp",
                "csim_design", "csynth_design", "export_design"):
        assert cmd in tcl, cmd
    # Vitis HLS compiles C++14: the generated code and the library must be clean at that level
    res = subprocess.run(["g++", "-std=c++14", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                          "-fsyntax-only", "fpgagen_digits_cnn.cpp", "fpgagen_digits_cnn_tb.cpp"],
                         cwd=target, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_testbench_rejects_bad_input(digits_cnn, tmp_path):
    target = write_target(digits_cnn, tmp_path)
    binary, _, _ = hls.compile_csim(target, "fpgagen_digits_cnn", tmp_path / "sim")
    (tmp_path / "in.txt").write_text(" ".join(["300"] * 64) + "\n")
    res = subprocess.run([str(binary), str(tmp_path / "in.txt"), str(tmp_path / "out.txt")], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 2
    fmt = digits_cnn.qgraph.input_fmt
    assert f"sample 0, value 0: 300 is outside [{fmt.min_int}, {fmt.max_int}] ({fmt})" in res.stderr
    (tmp_path / "in.txt").write_text("1 2 3\n")
    res = subprocess.run([str(binary), str(tmp_path / "in.txt"), str(tmp_path / "out.txt")], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 2 and "expected 64 integers, got 3" in res.stderr
    with pytest.raises(BackendError, match=r"failed \(exit code 2\)"):
        hls.run_csim(binary, tmp_path / "in.txt", tmp_path / "out.txt")


def map_output_graph(rng) -> Graph:
    """conv -> maxpool -> depthwise conv -> residual add -> flatten: the output is a flattened map."""
    return Graph(
        "map_out", "x", "f",
        [
            Node("c1", "conv", ["x"], "a", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
                 rng.normal(0, 0.5, (4, 2, 3, 3)), rng.normal(0, 0.1, 4), "relu", ["Conv_0"], "Conv"),
            Node("p1", "maxpool", ["a"], "p", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 1, 1)),
                 onnx_nodes=["MaxPool_1"], onnx_op="MaxPool"),
            Node("dw", "conv", ["p"], "d", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=4),
                 rng.normal(0, 0.5, (4, 1, 3, 3)), rng.normal(0, 0.1, 4), None, ["Conv_2"], "Conv"),
            Node("res", "add", ["d", "p"], "r", None, activation="relu", onnx_nodes=["Add_3"], onnx_op="Add"),
            Node("flat", "flatten", ["r"], "f", onnx_nodes=["Flatten_4"], onnx_op="Flatten"),
        ],
        {"x": (2, 7, 5), "a": (4, 7, 5), "p": (4, 4, 3), "d": (4, 4, 3), "r": (4, 4, 3), "f": (48,)},
        onnx_output_shape=(48,),
    ).validate()


@pytest.mark.parametrize("which", ["small_cnn", "map_out"])
def test_hand_built_graphs_through_the_testbench(which, tmp_path):
    """Every op (avgpool with per-position reciprocals, gap, add, forks) and a flattened-map
    output, through the generated testbench's CHW <-> HWC conversion, with PE/SIMD 2."""
    from test_golden import small_cnn

    rng = np.random.default_rng(11)
    graph = small_cnn(rng) if which == "small_cnn" else map_output_graph(rng)
    x = rng.uniform(0, 1, (24, *graph.shapes[graph.input])).astype(np.float32)
    cal = calibrate(graph, x, batch_size=8, progress=False)
    plan = choose_formats(cal, QuantOptions(method="max"))
    q, stats = lower(graph, plan)
    build = Build({"parallelism": {"pe": 2, "simd": 2, "layers": {}}, "verify": {"samples": 4}}, graph, cal, plan,
                  q, stats, x_calib=x)
    target = write_target(build, tmp_path)
    xq, golden = flow.verification_inputs(build, 24)
    xq[0] = q.input_fmt.max_int  # the extremes of the input range
    xq[1] = q.input_fmt.min_int
    out, trace = run_int(q, xq, trace=True)
    r = hls.verify(build, target, xq, GoldenRun(trace[q.output], trace))
    assert (r["samples"], r["mismatches"]) == (24, 0)
    if which == "map_out":
        assert "48 values in the HWC order of the flattened [4, 4, 3] map" in (target / "fpgagen_map_out.h").read_text()


# -- errors --------------------------------------------------------------------------------------
def test_compiler_errors_raise_with_the_output_tail(digits_cnn, tmp_path):
    target = write_target(digits_cnn, tmp_path)
    cpp = target / "fpgagen_digits_cnn.cpp"
    cpp.write_text(cpp.read_text().replace("fpgagen_nn::conv2d<", "fpgagen_nn::conv3d<", 1))
    xq, golden = golden_for(digits_cnn, 2)
    with pytest.raises(BackendError, match=r"(?s)g\+\+ failed on fpgagen_digits_cnn\.cpp.*conv3d"):
        hls.verify(digits_cnn, target, xq, golden)


def test_parallelism_that_does_not_divide_names_the_layer(digits_cnn):
    cfg = dict(digits_cnn.cfg, parallelism={"pe": 1, "simd": 1, "layers": {"/conv2/Conv": {"pe": 3}}})
    with pytest.raises(BackendError, match=r"parallelism\.layers\./conv2/Conv\.pe: 3 must divide the layer's 16 outputs"):
        hls.plan_model(digits_cnn.qgraph, cfg)
    cfg = dict(digits_cnn.cfg, parallelism={"pe": 1, "simd": 1, "layers": {"conv9": {"pe": 2}}})
    with pytest.raises(BackendError, match=r"parallelism\.layers\.conv9: no layer named 'conv9'"):
        hls.plan_model(digits_cnn.qgraph, cfg)


def test_accumulator_wider_than_int64_names_the_layer(digits_cnn):
    import copy

    q = copy.deepcopy(digits_cnn.qgraph)
    q.layer("/fc/Gemm").acc_width = 70
    with pytest.raises(BackendError, match=r"layer '/fc/Gemm' \(dense\): its accumulator needs 70 bits, more than the 64"):
        hls.plan_model(q, digits_cnn.cfg)


def test_unknown_op_names_the_layer(digits_cnn):
    import copy

    q = copy.deepcopy(digits_cnn.qgraph)
    q.layer("/pool/MaxPool").op = "lrn"
    with pytest.raises(BackendError, match=r"layer '/pool/MaxPool': the HLS library has no function for op 'lrn'"):
        hls.plan_model(q, digits_cnn.cfg)


def test_verify_rejects_inputs_of_the_wrong_shape_or_range(digits_cnn, tmp_path):
    target = tmp_path / "hls"  # never compiled: the inputs are checked first
    golden = GoldenRun(np.zeros((2, 10), np.int64), {})
    fmt = digits_cnn.qgraph.input_fmt
    assert str(fmt) == "u8.8"  # the digits pixels are 0..1 (raw / 16)
    with pytest.raises(BackendError, match=r"input 'input': expected shape \[N, 1, 8, 8\], got \[2, 64\]"):
        hls.verify(digits_cnn, target, np.zeros((2, 64), np.int64), golden)
    with pytest.raises(BackendError, match=r"integers must lie in \[0, 255\] \(u8\.8\), got \[-1, 0\]"):
        hls.verify(digits_cnn, target, -np.eye(8, dtype=np.int64).reshape(1, 1, 8, 8).repeat(2, 0), golden)
    with pytest.raises(BackendError, match=r"expected integers of u8\.8, got dtype float64"):
        hls.verify(digits_cnn, target, np.zeros((2, 1, 8, 8)), golden)


# -- any name, once-rejected models (issue 11), generated-file slips (issue 16) -----------------------
MODEL_NAME = "m\"od\\el */\n卷 `x` #1"
HOSTILE_TENSORS = dict(x="in\"put\\", t1="*/t1\n", t2="卷积", t3="int", t4="#include", t5="`define",
                       t6="x" * 5000, t7="x" * 4999 + "X", t8="??/", y="q'\"\\")


def hostile_graph(rng) -> Graph:
    """Every hostile name in one model that also holds what issue 11 once rejected: a ReLU
    clamped by a max pool (its conv feeds two layers), AveragePool ceil_mode + count_include_pad
    with a partial window, a residual Add of a flattened map and a dense output."""
    t = HOSTILE_TENSORS
    nodes = [
        Node("a.b", "conv", [t["x"]], t["t1"], ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
             rng.normal(0, 0.5, (3, 2, 3, 3)), rng.normal(0, 0.1, 3), None, ["a.b"], "Conv"),
        Node("a-b", "maxpool", [t["t1"]], t["t2"], Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0)),
             activation="relu", onnx_nodes=["a-b", "line\nbreak */ \\"], onnx_op="MaxPool"),
        Node("A-B", "avgpool", [t["t1"]], t["t3"], AvgPoolParams(kernel=(3, 3), stride=(2, 2), pads=(1, 1, 2, 2),
                                                        count_include_pad=True, count_pads=(1, 1, 1, 1)),
             onnx_nodes=["A-B"], onnx_op="AveragePool"),
        Node("卷积层", "flatten", [t["t2"]], t["t4"], onnx_nodes=["卷积层"], onnx_op="Flatten"),
        Node("class", "flatten", [t["t3"]], t["t5"], onnx_nodes=["class"], onnx_op="Flatten"),
        Node("a_b", "dense", [t["t5"]], t["t6"], None, rng.normal(0, 0.3, (27, 48)), rng.normal(0, 0.1, 27),
             onnx_nodes=["a_b"], onnx_op="Gemm"),
        Node("layer_a_b", "add", [t["t4"], t["t6"]], t["t7"], None, activation="relu", onnx_nodes=["layer_a_b"],
             onnx_op="Add"),
        Node("a_b_cfg", "dense", [t["t7"]], t["t8"], None, rng.normal(0, 0.3, (5, 27)), rng.normal(0, 0.1, 5),
             onnx_nodes=["a_b_cfg"], onnx_op="Gemm"),
        Node("x" * 5000, "dense", [t["t8"]], t["y"], None, rng.normal(0, 0.5, (3, 5)), rng.normal(0, 0.1, 3),
             onnx_nodes=["x" * 5000], onnx_op="Gemm"),
    ]
    shapes = {t["x"]: (2, 6, 6), t["t1"]: (3, 6, 6), t["t2"]: (3, 3, 3), t["t3"]: (3, 4, 4), t["t4"]: (27,),
              t["t5"]: (48,), t["t6"]: (27,), t["t7"]: (27,), t["t8"]: (5,), t["y"]: (3,)}
    graph = Graph(MODEL_NAME, t["x"], t["y"], nodes, shapes, onnx_output_shape=(3,), source="/tmp/a b/m\"o*/d.onnx")
    graph.notes.append(f"removed Identity {quoted(MODEL_NAME)}: it does not change its input in inference")
    return graph.validate()


def build_for(graph, rng, signed=True, samples=24) -> Build:
    x = rng.uniform(-1 if signed else 0, 1, (samples, *graph.shapes[graph.input])).astype(np.float32)
    cal = calibrate(graph, x, batch_size=8, progress=False)
    plan = choose_formats(cal, QuantOptions(method="max"))
    q, stats = lower(graph, plan)
    return Build({"parallelism": {"pe": 1, "simd": 1, "layers": {}}, "verify": {"samples": 4}}, graph, cal, plan,
                 q, stats, x_calib=x)


def verify_extremes(build, target, n=24) -> dict:
    q = build.qgraph
    xq, _ = flow.verification_inputs(build, n)
    xq[0] = q.input_fmt.max_int
    xq[1] = q.input_fmt.min_int
    _, trace = run_int(q, xq, trace=True)
    return hls.verify(build, target, xq, GoldenRun(trace[q.output], trace))


def test_hostile_names_compile_strictly_and_are_bit_exact(tmp_path):
    rng = np.random.default_rng(16)
    build = build_for(hostile_graph(rng), rng)
    target = write_target(build, tmp_path)
    r = verify_extremes(build, target)  # compiled with hls.CXXFLAGS: -std=c++14 -pedantic -Werror ...
    assert (r["samples"], r["mismatches"]) == (24, 0)
    top = r["top"]
    assert re.fullmatch(r"fpgagen_[a-z0-9_]+", top) and len(top) <= 48
    texts = {p.name: p.read_text() for p in target.iterdir() if p.suffix in (".cpp", ".h", ".tcl", "") }
    assert set(texts) >= {f"{top}.cpp", f"{top}.h", f"{top}_weights.h", f"{top}_tb.cpp", "run_hls.tcl", "Makefile"}
    for name, text in texts.items():
        assert "*/t1" not in text and "x" * 100 not in text, name  # escaped, shortened
        assert all(ch in "\n\t" or " " <= ch <= "~" for ch in text), name  # no raw unicode, no raw control
        for line in text.splitlines():
            assert not line.endswith(("\\", "??/")), (name, line)  # no line splice in C++, Make or Tcl
    cpp = texts[f"{top}.cpp"]
    # one identifier per layer, unique case-insensitively with everything derived from it
    structs = re.findall(r"struct (\w+)_cfg \{", cpp)
    # ("layer_a_b" and "a_b_cfg" are taken by layer "a_b", "layer_a_b_2" .. "_4" by "a_b_2" .. "a_b_4")
    assert structs == ["a_b", "a_b_2", "A_B_3", "a_b_4", "layer_a_b_5", "a_b_cfg_2", structs[-1]]
    assert len({s.lower() for s in structs}) == len(structs) and len(structs[-1]) <= 40
    assert "fpgagen_nn::add_gather<layer_a_b_5_cfg>" in cpp  # the flattened map + dense output
    assert "'a-b': ONNX 'a-b', 'line\\nbreak *\\/ \\\\' (MaxPool)" in cpp
    # make csim runs with this Makefile (its comments hold the names), tclsh parses run_hls.tcl
    if shutil.which("make"):
        res = subprocess.run(["make", "-s", "csim"], cwd=target, capture_output=True, text=True, check=False)
        assert res.returncode == 0 and "0 differ from csim_expected.txt" in res.stdout, res.stdout + res.stderr
    if shutil.which("tclsh"):
        script = ("proc unknown args {}\n"  # every Vitis command is a no-op: only the syntax is checked
                  f"source {target / 'run_hls.tcl'}\n")
        res = subprocess.run(["tclsh"], input=script.replace("exit\n", ""), capture_output=True, text=True,
                             check=False)
        assert res.returncode == 0 and not res.stderr, res.stderr


def test_top_names_avoid_the_library_and_each_other():
    from fpgagen.ir.qgraph import QGraph

    def top(name):
        return hls.top_name(QGraph(name, "x", "x", [], {"x": (4,)}, {}))

    assert top("digits_cnn") == "fpgagen_digits_cnn"
    assert top("nn") != "fpgagen_nn" and top("stream") != "fpgagen_stream" and top("NN").lower() != "fpgagen_nn"
    assert top("") == "fpgagen_t" and top("卷积") == "fpgagen_t"
    assert not hasattr(hls, "c_ident")  # one sanitiser: fpgagen.names


def test_model_without_layers(tmp_path):
    graph = Graph("empty", "x", "x", [], {"x": (3, 1, 4)}, onnx_input_shape=(3, 4), onnx_output_shape=(3, 4),
                  notes=["removed Identity 'i': it does not change its input in inference"])
    rng = np.random.default_rng(17)
    build = build_for(graph.validate(), rng)
    target = write_target(build, tmp_path)
    assert (r := verify_extremes(build, target))["mismatches"] == 0 and r["samples"] == 24
    cpp = (target / "fpgagen_empty.cpp").read_text()
    assert "fpgagen_nn::copy<FPGAGEN_EMPTY_OUT_SIZE>(t_x, y);" in cpp


@pytest.mark.parametrize("target_name", ["hls", "c", "verilog"])
@pytest.mark.parametrize("model", ["m_relu_after_input_pool", "m_clip_after_shared_pool", "m_avgpool_ceil_include_pad",
                                   "m_nothing_left", "m_act_of_input_map", "m_relu_of_input_vector"])
def test_once_rejected_onnx_models_bit_exact(model, target_name, tmp_path):
    """From ONNX (tests/test_frontend.py checks them against onnxruntime), in every backend: a Relu
    after a MaxPool of the model input; a Clip after a MaxPool whose conv feeds two layers, and an
    Add of a flattened map and a dense output; AveragePool ceil_mode + count_include_pad with
    partial windows; a model that is only Identity + Dropout; activations of the model input (a
    map, a vector) as clamp layers."""
    import test_frontend
    from fpgagen.frontend.onnx import from_model
    from fpgagen.targets import backend

    graph = from_model(getattr(test_frontend, model)(13))
    rng = np.random.default_rng(18)
    build = build_for(graph, rng)
    be = backend(target_name)
    files = be.generate(build)
    files.write(tmp_path / target_name)
    target = tmp_path / target_name
    q = build.qgraph
    xq, _ = flow.verification_inputs(build, 24)
    xq[0], xq[1] = q.input_fmt.max_int, q.input_fmt.min_int
    _, trace = run_int(q, xq, trace=True)
    r = be.verify(build, target, xq, GoldenRun(trace[q.output], trace))
    assert (r["samples"], r["mismatches"]) == (24, 0)
    if model == "m_relu_after_input_pool":
        assert q.input_fmt.signed  # the clamp is needed: negative inputs reach the pool
        pool = next(layer for layer in q.layers if layer.op == "maxpool")
        assert pool.clamp_bounds[0] == 0
        # the golden clamp changes the result on these inputs (else the check above proves nothing)
        assert (trace[pool.inputs[0]].min() < 0)
    text = "".join(f.read_text() for f in target.iterdir() if f.suffix in (".cpp", ".h", ".v"))
    if target_name == "hls" and model == "m_relu_after_input_pool":
        assert "static constexpr int64_t LO = 0;  // clamp bounds (the format range, narrowed by a fused relu)" in text
    if target_name == "hls" and model == "m_clip_after_shared_pool":
        assert "fpgagen_nn::add_gather<" in text and "narrowed by a fused clip(0,0.5)" in text
    if target_name == "verilog" and model == "m_relu_after_input_pool":
        assert ".LO(0)" in text and "clamp [0, " in text


def test_makefile_comment_lines_and_one_cxx_standard(digits_cnn, tmp_path):
    target = write_target(digits_cnn, tmp_path)
    makefile = (target / "Makefile").read_text()
    header = makefile.split("CXX = ")[0].splitlines()
    assert all(line.startswith("#") for line in header) and sum("make " in line for line in header) == 3
    assert any(line.startswith("#   make hls     Vitis HLS") for line in header)
    assert "\tmake" not in makefile and "csim_expected.txt\n\n$(TOP)_csim:" in makefile
    std = f"-std={hls.CXX_STD}"
    assert hls.CXX_STD == "c++14" and std in hls.CXXFLAGS
    assert f"CXXFLAGS = {' '.join(hls.CXXFLAGS)}" in makefile
    tcl = (target / "run_hls.tcl").read_text()
    assert tcl.count(f'-cflags "{std}') == 2 and "c++17" not in tcl + makefile
    assert "c++17" not in (target / "fpgagen_nn.h").read_text().lower()
