"""The C target takes every format and graph the golden model can produce, and any name.

- formats: word lengths 2..16 (16-bit tensors in int16_t/uint16_t storage), unsigned weight
  formats (a layer whose weights are all >= 0), mixed word lengths per layer; conv (grouped,
  depthwise), dense, max/average/global pools, add, flatten; the fast path (8-bit, int32_t sums)
  and the wide path (int64_t sums) side by side;
- graphs: a residual add of a flattened map and a dense output (the dense layer writes its
  outputs in the map's HWC order), a model with no layers left (output = input);
- names: quotes, backslashes, newlines, ``*/``, backticks, ``#``, unicode and all-CJK, C keywords,
  names colliding after sanitising or differing only in case, 5,000 characters: the generated
  files (model.h, main.c, harness.c, Makefile) compile with the strict flags, ``make check`` and
  ``make run`` work, and every layer is bit-exact.

Every case runs in ONE harness, compiled with gcc's strict flags (and the sanitizers where gcc
has them), with the host's two-pixel path and without it (the MCU code), and on the Cortex-M4
under qemu where the tools exist; every layer's output is compared with the golden model's ==.
"""

from __future__ import annotations

from dataclasses import replace

import shutil
import subprocess
import types

import numpy as np
import pytest

from fpgagen.backends import c as cb
from fpgagen.errors import BackendError
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import Window

import test_c_kernels as tk

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def lower_with(graph: Graph, rng, word: int, signed_input: bool, overrides=None):
    shape = graph.shapes[graph.input]
    x = (rng.normal(0, 1, (24, *shape)) if signed_input else rng.uniform(0, 2, (24, *shape))).astype(np.float32)
    cal = calibrate(graph, x, batch_size=12, progress=False)
    opts = QuantOptions(word_length=word, method="max", weight_method="max", overrides=overrides or {})
    q, _ = lower(graph, choose_formats(cal, opts))
    return q


def positive_weights(graph: Graph) -> Graph:
    """The same graph with every weight made >= 0 (calibration then picks unsigned weight formats)."""
    for node in graph.nodes:
        if node.weight is not None:
            node.weight = np.abs(node.weight)
    return graph


def flatten_add_graph(name, rng, dense_first: bool, end_with_add: bool = False) -> Graph:
    """conv -> flatten f; dense(f) -> d; add(f, d) [-> dense]: a flattened map plus a dense output."""
    nodes = [
        Node("c1", "conv", ["x"], "m", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
             rng.normal(0, 0.4, (3, 2, 3, 3)), rng.normal(0, 0.2, 3), "relu", ["Conv_0"], "Conv"),
        Node("flat", "flatten", ["m"], "f"),
        Node("fc1", "dense", ["f"], "d", None, rng.normal(0, 0.3, (36, 36)), rng.normal(0, 0.2, 36), None,
             ["Gemm_0"], "Gemm"),
        Node("res", "add", ["d", "f"] if dense_first else ["f", "d"], "r", None, activation="relu"),
    ]
    shapes = {"x": (2, 3, 4), "m": (3, 3, 4), "f": (36,), "d": (36,), "r": (36,)}
    if end_with_add:
        return Graph(name, "x", "r", nodes, shapes, onnx_output_shape=(36,)).validate()
    nodes.append(Node("fc2", "dense", ["r"], "y", None, rng.normal(0, 0.3, (5, 36)), rng.normal(0, 0.2, 5), None,
                      ["Gemm_1"], "Gemm"))
    shapes["y"] = (5,)
    return Graph(name, "x", "y", nodes, shapes, onnx_output_shape=(5,)).validate()


def format_cases():
    rng = np.random.default_rng(20261202)
    cases = []

    def graphs(tag):
        return [
            tk.residual_graph(f"res_{tag}", rng, 4, (5, 6)),
            tk.flatten_graph(f"flat_{tag}", rng),
            tk.conv_graph(f"dw_{tag}", rng, 3, (6, 5), 6, (3, 3), (2, 1), (1, 0, 1, 2), groups=3, act="relu"),
            tk.conv_graph(f"grp_{tag}", rng, 4, (5, 5), 18, (3, 3), (1, 1), (0, 1, 2, 1), groups=2),
            tk.pool_graph(f"avg_{tag}", rng, "avgpool", 3, (5, 7), (3, 3), (2, 2), (1, 1, 1, 1)),
            tk.pool_graph(f"max_{tag}", rng, "maxpool", 5, (7, 9), (2, 2), (2, 2), (0, 0, 0, 0)),
            tk.pool_graph(f"gap_{tag}", rng, "gap", 7, (5, 3)),
            tk.dense_graph(f"fc_{tag}", rng, 19, 13, "relu"),
        ]

    for i, word in enumerate((2, 3, 4, 5, 7, 9, 12, 16)):
        for j, g in enumerate(graphs(f"w{word}")):
            cases.append((g.name, lower_with(g, rng, word, signed_input=(i + j) % 2 == 0)))
    # unsigned weight formats (all weights >= 0) at 4, 8 and 16 bits
    for word in (4, 8, 16):
        for j, g in enumerate(graphs(f"pos{word}")[:4] + graphs(f"pos{word}b")[7:]):
            cases.append((g.name, lower_with(positive_weights(g), rng, word, signed_input=j % 2 == 1)))
    # mixed word lengths: a 16-bit input into 8-bit layers, 8-bit layers into a 16-bit one, ...
    g = tk.residual_graph("mixed_res", rng, 4, (5, 6))
    cases.append((g.name, lower_with(g, rng, 8, True, {"x": {"word_length": 16}, "c2": {"word_length": 12},
                                                       "res": {"word_length": 16}})))
    g = tk.flatten_graph("mixed_flat", rng)
    cases.append((g.name, lower_with(g, rng, 16, False, {"c1": {"word_length": 8}, "fc2": {"word_length": 6}})))
    g = tk.pool_graph("mixed_avg", rng, "avgpool", 3, (5, 7), (3, 3), (2, 2), (1, 1, 1, 1))
    cases.append((g.name, lower_with(g, rng, 16, True, {"pool": {"word_length": 8}})))
    g = tk.pool_graph("mixed_avg_up", rng, "avgpool", 3, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0))
    cases.append((g.name, lower_with(g, rng, 8, False, {"pool": {"word_length": 16}})))
    # a flattened map plus a dense output, either operand order, inside and at the end of the model
    for k, (dense_first, end) in enumerate(((True, False), (False, False), (False, True))):
        g = flatten_add_graph(f"flat_add_{k}", rng, dense_first, end)
        cases.append((g.name, lower_with(g, rng, 8, k % 2 == 0)))
    g = flatten_add_graph("flat_add_w12", rng, True)
    cases.append((g.name, lower_with(g, rng, 12, True)))
    # no layers at all: the output is the input
    for word, signed in ((8, True), (16, False)):
        g = Graph(f"noop_w{word}", "x", "x", [], {"x": (3, 4, 5)}, onnx_output_shape=(3, 4, 5)).validate()
        cases.append((g.name, lower_with(g, rng, word, signed)))
    for _, q in cases:
        for layer in q.layers:
            if layer.op in ("conv", "dense") and layer.w_fmt.word >= 8:  # weight extremes of the format
                flat = layer.weight.reshape(-1)
                flat[0], flat[-1] = layer.w_fmt.max_int, layer.w_fmt.min_int
                tk.refresh_acc_width(layer)
    return [(name, q, tk.int_inputs(q, rng)) for name, q in cases]


CASES = format_cases()


def build_and_trace(tmp, cases, arm: bool = False):
    """name -> {build: trace} for every case, all in one harness."""
    models = tk.write_harness(tmp, cases)
    xqs = [xq for _, _, xq in cases]
    result = {name: {} for name, _, _ in cases}
    san = tk.sanitizer_flags(tmp)
    builds = [("pairs", []), ("scalar", ["-DFPGAGEN_PAIRS=0"])]
    for build, extra in builds:
        exe = cb.compile_host(tmp, tmp / build / "harness", extra=["-DFPGAGEN_TRACE", *san, *extra])
        _, traces = cb.run_samples([str(exe)], tmp / build, models, xqs, f"format harness ({build})", trace=True)
        for (name, _, _), trace in zip(cases, traces):
            result[name][build] = trace
    if arm and cb.arm_tools_missing() is None:
        elf = cb.compile_arm(tmp, tmp / "arm" / "harness.elf", extra=["-DFPGAGEN_TRACE"])
        _, traces = cb.run_samples([*cb.QEMU_CMD, str(elf)], tmp / "arm", models, xqs, "format harness (qemu)",
                                   trace=True)
        for (name, _, _), trace in zip(cases, traces):
            result[name]["cortex-m4"] = trace
    return result


def assert_traces_match(cases, runs):
    for name, q, xq in cases:
        out, golden = run_int(q, xq, trace=True)
        assert runs[name], name
        for build, trace in runs[name].items():
            for layer in q.layers:
                got = trace[layer.output].reshape(len(xq), -1)
                want = golden[layer.output].reshape(len(xq), -1)
                assert got.tolist() == want.tolist(), f"{name}: layer {layer.name} ({layer.op}) differs ({build})"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_and_trace(tmp_path_factory.mktemp("c_formats"), CASES, arm=True)


@pytest.mark.parametrize("name", [name for name, _, _ in CASES])
def test_every_format_matches_golden(runs, name):
    case = [c for c in CASES if c[0] == name]
    assert_traces_match(case, runs)
    q, xq = case[0][1], case[0][2]
    if not q.layers:  # nothing runs: the harness returns the input itself
        m = cb.build_model(q, name)
        assert m.plan.arena_bytes == m.input.nbytes and m.plan.offsets == {q.input: 0}


def test_output_files_of_16_bit_and_reordered_models(tmp_path):
    """The whole output (not only the trace) of a 16-bit model and of a model ending in an add of
    a flattened map and a dense output, through run_samples (the path `verify` takes)."""
    chosen = [c for c in CASES if c[0] in ("res_w16", "flat_add_2", "noop_w16")]
    models = tk.write_harness(tmp_path, chosen)
    exe = cb.compile_host(tmp_path, tmp_path / "harness")
    outs = cb.run_samples([str(exe)], tmp_path / "run", models, [xq for _, _, xq in chosen], "outputs")
    for (name, q, xq), got in zip(chosen, outs):
        want = run_int(q, xq)
        assert got.reshape(len(xq), -1).tolist() == want.reshape(len(xq), -1).tolist(), name
    m16, madd, _ = models
    assert m16.input.ctype in ("int16_t", "uint16_t") and m16.plan.arena_bytes % 2 == 0
    assert madd.output.layout() == "vector in HWC order of a flattened map"


def test_cases_cover_formats_and_paths():
    layers = [(name, q, layer) for name, q, _ in CASES for layer in q.layers]
    words = {fmt.word for _, q, _ in CASES for fmt in q.fmts.values()}
    assert set(range(2, 17)) - words <= {6, 10, 11, 13, 14, 15} and {2, 8, 9, 16} <= words
    kinds = {}
    for name, q, layer in layers:
        m = cb.build_model(q, name)
        for lc in m.layers:
            kinds.setdefault(lc.kind, set()).add(lc.layer.op)
    assert kinds["conv"] == {"conv"} and kinds["dense"] == {"dense"}
    assert kinds["conv_wide"] == {"conv", "dense"}  # both ops on the wide path
    assert {"maxpool", "avgpool", "add", "flatten"} <= set(kinds)
    macs = [layer for _, _, layer in layers if layer.op in ("conv", "dense")]
    assert any(not layer.w_fmt.signed and layer.w_fmt.word == 8 and layer.weight.max() > 127 for layer in macs)
    assert any(not layer.w_fmt.signed and layer.w_fmt.word == 16 for layer in macs)
    assert any(layer.w_fmt.signed and layer.w_fmt.word == 16 and layer.weight.min() == -(2**15) for layer in macs)
    sizes = {(info.size, info.signed) for name, q, _ in CASES for info in cb.tensor_infos(q).values()}
    assert sizes == {(1, True), (1, False), (2, True), (2, False)}


def test_accumulator_bound_picks_the_path():
    """The fast path only where sum |w| * max |x| < 2**31 provably (8-bit storage, int8_t weights)."""
    rng = np.random.default_rng(3)
    q = tk.lower_graph(tk.dense_graph("bound", rng, 4, 3), rng, signed_input=True, input_fmt="s8.5")
    layer = q.layers[0]
    infos = cb.tensor_infos(q)
    x, y = infos[q.input], infos[q.output]
    layer.weight = np.full((3, 2**24 // 127), 127, np.int64)  # sum |w| * 128 < 2**31
    assert cb.mac_path(layer, x, y) == (True, "")
    layer.weight = np.full((3, 2**24 // 127 + 1), 127, np.int64)  # sum |w| * 128 >= 2**31
    fast, why = cb.mac_path(layer, x, y)
    assert not fast and "beyond int32_t" in why
    layer.weight = np.full((3, 4), 200, np.int64)
    fast, why = cb.mac_path(layer, x, y)
    assert not fast and "range over [200, 200], beyond int8_t" in why


# -------------------------------------------------------------------------------------------
# names
# -------------------------------------------------------------------------------------------
HOSTILE = [
    'q"uote\'s', "back\\slash\\", "new\nline\r\n", "end */ comment /* x", "back`tick", "#hash # make",
    "ünïcødé-λ", "卷积层", "全连接", "int", "main", "a.b", "a-b", "a_b", "Case", "CASE", "x" * 5000,
    "??=trigraph", "$(shell false)", "arena", "input", "INPUT_BYTES", "fpgagen_conv", "",
]


def hostile_graph(rng) -> Graph:
    """A residual conv net whose every node and tensor has a hostile name."""
    names = iter(HOSTILE)
    t = {k: next(names) for k in ("x", "a", "b", "r", "p", "f", "y")}
    layer_names = [next(names) for _ in range(6)]
    conv = ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1)
    nodes = [
        Node(layer_names[0], "conv", [t["x"]], t["a"], conv, rng.normal(0, 0.4, (4, 4, 3, 3)),
             rng.normal(0, 0.2, 4), None, ["Conv */ #0\n"], "Conv"),
        Node(layer_names[1], "conv", [t["a"]], t["b"], conv, rng.normal(0, 0.4, (4, 4, 3, 3)),
             rng.normal(0, 0.2, 4), "relu", ["卷积"], "Conv"),
        Node(layer_names[2], "add", [t["b"], t["x"]], t["r"], None, activation="relu"),
        Node(layer_names[3], "maxpool", [t["r"]], t["p"], Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))),
        Node(layer_names[4], "flatten", [t["p"]], t["f"]),
        Node(layer_names[5], "dense", [t["f"]], t["y"], None, rng.normal(0, 0.3, (5, 4 * 2 * 3)),
             rng.normal(0, 0.2, 5), None, ['Gemm "x" \\'], "Gemm"),
    ]
    shapes = {t["x"]: (4, 5, 6), t["a"]: (4, 5, 6), t["b"]: (4, 5, 6), t["r"]: (4, 5, 6), t["p"]: (4, 2, 3),
              t["f"]: (24,), t["y"]: (5,)}
    g = Graph("model */ \"name\"\n#1 `$(x)` 模型", t["x"], t["y"], nodes, shapes, onnx_output_shape=(5,),
              notes=["removed Identity 'end */ x' \\\n#"])
    return g.validate()


def colliding_graph(rng) -> Graph:
    """Layer and tensor names that collide after sanitising, by case, or with the model's own names."""
    names = ["a.b", "a-b", "a_b", "A_B", "a_b_2", "arena", "run", "d_4", "d", "d_4 ", "int", "卷积层", "全连接"]
    nodes, shapes, src = [], {"x": (6,)}, "x"
    for i, name in enumerate(names):
        out = names[(i + 3) % len(names)] + f"/{i}"
        nodes.append(Node(name, "dense", [src], out, None, rng.normal(0, 0.4, (6, 6)), rng.normal(0, 0.2, 6),
                          "relu" if i % 2 else None, [name], "Gemm"))
        shapes[out] = (6,)
        src = out
    return Graph("a.b", "x", src, nodes, shapes, onnx_output_shape=(6,)).validate()


@pytest.fixture(scope="module")
def hostile_cases():
    rng = np.random.default_rng(11)
    out = []
    for g, signed in ((hostile_graph(rng), True), (colliding_graph(rng), False)):
        q = lower_with(g, rng, 8, signed)
        out.append((q, tk.int_inputs(q, rng)))
    return out


def test_hostile_names_in_one_harness_bit_exact(hostile_cases, tmp_path):
    cases = [(f"m{i}_" + q.name, q, xq) for i, (q, xq) in enumerate(hostile_cases)]
    runs = build_and_trace(tmp_path, cases)
    assert_traces_match(cases, runs)
    m0 = cb.build_model(cases[0][1], cases[0][0])
    header = cb.render_model_h(m0)
    idents = [lc.ident for lc in m0.layers]
    assert len({i.lower() for i in idents}) == len(idents)
    assert all(i.isascii() and i.replace("_", "a").isalnum() and len(i) <= 63 - len("__weight") for i in idents)
    # names only in comments or escaped string literals: no raw newline, comment end or backslash
    for line in header.splitlines():
        assert line.isascii(), line
        assert not line.rstrip().endswith("\\"), line
    assert header.count("*/") == header.count("/*")


def test_hostile_names_build_directory_runs_with_make(hostile_cases, tmp_path):
    """generate() -> a copy of c/ -> `make check` and `make run` (the Makefile survives '#', '$', newlines)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    q, xq = hostile_cases[0]
    x_float = np.ldexp(xq.astype(np.float64), -q.input_fmt.frac)
    build = types.SimpleNamespace(qgraph=q, cfg={"name": q.name}, x_valid=x_float, x_calib=None)
    cb.generate(build).write(tmp_path / "out" / "c")
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "out" / "c", copy)
    for goal in ("check", "run"):
        proc = subprocess.run(["make", goal], cwd=copy, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches expected_0.bin" in proc.stdout or "matches the golden model" in proc.stdout
    makefile = (copy / "Makefile").read_text()
    assert all(line.startswith(("#", "\t", "")) for line in makefile.splitlines())
    got = cb.from_bytes((copy / "output_0.bin").read_bytes(), cb.build_model(q, q.name).output)
    assert got.reshape(len(xq), -1).tolist() == run_int(q, xq).reshape(len(xq), -1).tolist()


def test_tensor_needing_two_orders_is_refused(tmp_path):
    """add(flatten(A), flatten(B)) of maps [2, 3, 4] and [4, 3, 2]: no element order serves both."""
    rng = np.random.default_rng(5)
    conv = ConvParams(kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), groups=1)

    def graph(b_channels, b_stride):
        b_shape = (b_channels, 3, 4 // b_stride)
        nodes = [
            Node("c1", "conv", ["x"], "a", conv, rng.normal(0, 0.4, (2, 2, 1, 1)), rng.normal(0, 0.2, 2)),
            Node("fa", "flatten", ["a"], "fa_out"),
            Node("c2", "conv", ["x"], "b", replace(conv, stride=(1, b_stride)),
                 rng.normal(0, 0.4, (b_channels, 2, 1, 1)), rng.normal(0, 0.2, b_channels)),
            Node("fb", "flatten", ["b"], "fb_out"),
            Node("res", "add", ["fa_out", "fb_out"], "y", None),
        ]
        shapes = {"x": (2, 3, 4), "a": (2, 3, 4), "fa_out": (24,), "b": b_shape, "fb_out": (24,), "y": (24,)}
        return Graph("two_orders", "x", "y", nodes, shapes, onnx_output_shape=(24,)).validate()

    cases = [("same_orders", lower_with(graph(2, 1), rng, 8, True))]
    cases = [(name, q, tk.int_inputs(q, rng)) for name, q in cases]
    assert_traces_match(cases, build_and_trace(tmp_path, cases))
    q = lower_with(graph(4, 2), rng, 8, True)
    with pytest.raises(BackendError, match=r"tensor 'b' would need two element orders \(HWC of 'b', "
                                           r"and HWC of 'a'\); the C target stores every tensor in one order"):
        cb.build_model(q)


def test_model_without_layers_builds_and_verifies(tmp_path):
    """Identity and Dropout only: nothing is left after the import; the C target still builds,
    and `fpgagen verify` finds it bit-exact (output = the quantized input)."""
    pytest.importorskip("onnx")
    import onnx

    from fpgagen import flow
    from fpgagen.config import resolve_config
    from models_onnx import Net

    n = Net((3, 4, 4), opset=13)
    model = n.model(n.node("Dropout", [n.node("Identity", ["x"])]))
    onnx.save(model, tmp_path / "noop.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.normal(size=(30, 3, 4, 4)).astype(np.float32))
    cfg = resolve_config({"name": "noop", "model": str(tmp_path / "noop.onnx"),
                          "data": {"calibration": str(tmp_path / "cal.npz")}, "targets": ["c"]}, base=tmp_path)
    results, out = flow.verify(cfg, targets=["c"], samples=12, out=tmp_path / "out", progress=False)
    c = results["c"]
    assert c["samples"] == 12 and c["mismatches"] == 0
    assert c["arena_bytes"] == 48 and c["macs"] == 0
    if cb.arm_tools_missing() is None:
        assert c["arm"]["mismatches"] == 0 and c["arm"]["samples"] == 12
    header = (out / "c" / "model.h").read_text()
    assert "#define NOOP_NUM_LAYERS 0" in header and "#define NOOP_OUTPUT_OFFSET 0" in header
