"""The new ops through the HLS backend, end to end: LeakyRelu (fused and standalone), channel
Concat, nearest Resize and zero Pad.

Each case is a small float :class:`Graph` built by hand, calibrated, lowered to the integer IR,
generated as a whole model by :mod:`fpgagen.backends.hls` and C-simulated with g++; every output
integer must equal the golden model's (:func:`fpgagen.golden.model.run_int`) on real samples
and on the extremes of the input format (all-max, all-min, alternating). Cases: a LeakyRelu fused
into conv, dense, average/global pools and a residual add (alpha 0.1, 0.25, -0.5, 1.5, 0.01); a
standalone LeakyRelu on the model input and after a max pool; Concat of 2 and 3 inputs whose
formats differ, of the model input (which another layer also reads), of the same tensor twice,
of vectors (also of flattened maps, read through an index table), with a fused LeakyRelu; Resize
and Pad between convs. An ONNX model with the new ops
goes through the whole flow (import, passes, calibration, lowering). Also: the rendered config
structs (two cases again with explicit PE/SIMD), no undefined behaviour (-fsanitize=undefined), and
the error for a LeakyRelu product wider than 64 bits.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fpgagen import flow
from fpgagen.backends import hls
from fpgagen.errors import BackendError
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node, conv_output_hw
from fpgagen.ops.activation import LeakyRelu
from fpgagen.ops.pad import PadParams
from fpgagen.ops.resize import ResizeParams
from fpgagen.targets import GoldenRun
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window
from test_hls_backend import build_for

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


class G:
    """A float graph under construction: nodes and shapes, with small random weights."""

    def __init__(self, name: str, shape, seed: int):
        self.name, self.rng = name, np.random.default_rng(seed)
        self.nodes, self.shapes = [], {"x": tuple(shape)}

    def _add(self, name, op, inputs, shape, onnx_op, **kw) -> str:
        self.nodes.append(Node(name, op, list(inputs), name, onnx_nodes=[f"/{self.name}/{name}"], onnx_op=onnx_op,
                               **kw))
        self.shapes[name] = tuple(shape)
        return name

    def conv(self, name, x, co, kernel=3, stride=1, pads=(1, 1, 1, 1), act=None, scale=0.6) -> str:
        c, h, w = self.shapes[x]
        oh, ow = conv_output_hw((h, w), (kernel, kernel), (stride, stride), pads)
        return self._add(name, "conv", [x], (co, oh, ow), "Conv",
                         params=ConvParams((kernel, kernel), (stride, stride), pads),
                         weight=self.rng.normal(0, scale, (co, c, kernel, kernel)),
                         bias=self.rng.normal(0, 0.3, co), activation=act)

    def dense(self, name, x, n, act=None) -> str:
        return self._add(name, "dense", [x], (n,), "Gemm", weight=self.rng.normal(0, 0.5, (n, self.shapes[x][0])),
                         bias=self.rng.normal(0, 0.3, n), activation=act)

    def flatten(self, name, x) -> str:
        return self._add(name, "flatten", [x], (int(np.prod(self.shapes[x])),), "Flatten")

    def pool(self, name, op, x, kernel=2, stride=2, pads=(0, 0, 0, 0), act=None) -> str:
        c, h, w = self.shapes[x]
        oh, ow = conv_output_hw((h, w), (kernel, kernel), (stride, stride), pads)
        params = (AvgPoolParams if op == "avgpool" else Window)((kernel, kernel), (stride, stride), pads)
        return self._add(name, op, [x], (c, oh, ow), "MaxPool" if op == "maxpool" else "AveragePool", params=params,
                         activation=act)

    def gap(self, name, x, act=None) -> str:
        return self._add(name, "gap", [x], (self.shapes[x][0], 1, 1), "GlobalAveragePool", activation=act)

    def add(self, name, a, b, act=None) -> str:
        return self._add(name, "add", [a, b], self.shapes[a], "Add", activation=act)

    def leakyrelu(self, name, x, alpha) -> str:
        return self._add(name, "leakyrelu", [x], self.shapes[x], "LeakyRelu", activation=LeakyRelu(alpha))

    def concat(self, name, xs, act=None) -> str:
        first = self.shapes[xs[0]]
        shape = (sum(self.shapes[x][0] for x in xs), *first[1:])
        return self._add(name, "concat", xs, shape, "Concat", activation=act)

    def resize(self, name, x, factors) -> str:
        c, h, w = self.shapes[x]
        return self._add(name, "resize", [x], (c, h * factors[0], w * factors[1]), "Resize",
                         params=ResizeParams(tuple(factors)))

    def pad(self, name, x, pads) -> str:
        c, h, w = self.shapes[x]
        top, left, bottom, right = pads
        return self._add(name, "pad", [x], (c, h + top + bottom, w + left + right), "Pad", params=PadParams(pads))

    def graph(self, output: str) -> Graph:
        out_shape = self.shapes[output]
        return Graph(self.name, "x", output, self.nodes, self.shapes, onnx_output_shape=out_shape).validate()


# -- the cases --------------------------------------------------------------------------------------
def fused_mac_graph() -> Graph:
    """conv + leaky(0.1) -> resize 2x2 -> pad -> conv + leaky(1.5) -> maxpool -> flatten -> dense + leaky(0.01)."""
    g = G("fused_mac", (2, 5, 4), 1)
    a = g.conv("c1", "x", 3, act=LeakyRelu(0.1))
    r = g.resize("up", a, (2, 2))
    p = g.pad("pad", r, (1, 0, 2, 1))
    b = g.conv("c2", p, 4, stride=2, pads=(0, 0, 0, 0), act=LeakyRelu(1.5))
    m = g.pool("mp", "maxpool", b)
    f = g.flatten("flat", m)
    return g.graph(g.dense("fc", f, 5, act=LeakyRelu(0.01)))


def fused_pool_add_graph() -> Graph:
    """conv -> avgpool + leaky(0.25) -> add(avgpool, conv) + leaky(-0.5) -> conv -> gap + leaky(0.1)."""
    g = G("fused_pool_add", (3, 6, 6), 2)
    a = g.conv("c1", "x", 3, kernel=1, pads=(0, 0, 0, 0), scale=1.2)
    p = g.pool("ap", "avgpool", a, kernel=3, stride=1, pads=(1, 1, 1, 1), act=LeakyRelu(0.25))
    s = g.add("res", p, a, act=LeakyRelu(-0.5))
    b = g.conv("c2", s, 4, kernel=1, pads=(0, 0, 0, 0))
    return g.graph(g.gap("gp", b, act=LeakyRelu(0.1)))


def standalone_graph() -> Graph:
    """leakyrelu(0.25) on the model input -> conv -> maxpool -> leakyrelu(0.1) -> resize (1, 3) -> conv
    -> a standalone ReLU (op leakyrelu without a slope: what the passes leave of a ReLU no layer took)."""
    g = G("standalone", (2, 5, 5), 3)
    a = g.leakyrelu("lr_in", "x", 0.25)
    b = g.conv("c1", a, 3)
    m = g.pool("mp", "maxpool", b, kernel=2, stride=1)
    c = g.leakyrelu("lr_mp", m, 0.1)
    r = g.resize("up", c, (1, 3))
    d = g.conv("c2", r, 2, kernel=1, pads=(0, 0, 0, 0))
    return g.graph(g._add("relu_out", "leakyrelu", [d], g.shapes[d], "Relu", activation="relu"))


def concat_input_graph() -> Graph:
    """concat(x, conv(x)) + leaky(0.1): the model input (also read by the conv) in the concat; then
    a 3-input concat of formats that differ (incl. pad and resize outputs) -> conv."""
    g = G("concat_input", (2, 4, 5), 4)
    a = g.conv("c1", "x", 3, scale=1.5)
    k = g.concat("cat1", ["x", a], act=LeakyRelu(0.1))
    b = g.conv("c2", k, 2, kernel=1, pads=(0, 0, 0, 0), scale=0.2)
    p = g.pad("pad", g.pool("mp", "maxpool", b, kernel=3, stride=1, pads=(0, 0, 0, 0)), (1, 1, 1, 1))
    k3 = g.concat("cat3", [b, a, p])
    return g.graph(g.conv("c3", k3, 3, kernel=3, stride=2))


def concat_twice_graph() -> Graph:
    """concat(a, a, x) of the same tensor twice (a is read by a third layer too) -> conv + add."""
    g = G("concat_twice", (1, 5, 3), 5)
    a = g.conv("c1", "x", 2, act="relu")
    k = g.concat("cat", [a, a, "x"])
    b = g.conv("c2", k, 2, kernel=1, pads=(0, 0, 0, 0))
    return g.graph(g.add("res", b, a, act=LeakyRelu(0.1)))


def concat_vectors_graph() -> Graph:
    """concat of two dense outputs and the flattened (1-channel) input -> dense: vectors (PIXELS = 1)."""
    g = G("concat_vectors", (1, 1, 6), 6)
    f = g.flatten("flat", "x")
    a = g.dense("d1", f, 5, act=LeakyRelu(0.1))
    b = g.dense("d2", f, 3)
    k = g.concat("cat", [a, b, f], act=LeakyRelu(0.25))
    return g.graph(g.dense("d3", k, 4))


def concat_flat_graph() -> Graph:
    """concat of flattened maps (stored in HWC order: read through an index table) and a dense
    output: the flattened model input, a dense on it, a flattened conv map; + leaky(0.1) -> dense."""
    g = G("concat_flat", (2, 3, 4), 7)
    f = g.flatten("flat_x", "x")
    a = g.dense("d1", f, 5)
    m = g.flatten("flat_c", g.conv("c1", "x", 3))
    k = g.concat("cat", [f, a, m], act=LeakyRelu(0.1))
    return g.graph(g.dense("d2", k, 4))


GRAPHS = {fn.__name__.removesuffix("_graph"): fn for fn in (fused_mac_graph, fused_pool_add_graph, standalone_graph,
                                                           concat_input_graph, concat_twice_graph,
                                                           concat_vectors_graph, concat_flat_graph)}


#: cases whose input is calibrated on [0, 1] (an unsigned input format: concat of u8 and s8 inputs)
UNSIGNED_INPUT = ("concat_input",)
#: cases run again with explicit PE/SIMD on their MAC layers (the requantizer is per output)
PARALLEL = {"fused_mac": {"c1": {"pe": 3, "simd": 2}, "c2": {"pe": 2, "simd": 3}, "fc": {"pe": 5, "simd": 4}},
            "concat_input": {"c2": {"pe": 2, "simd": 5}, "c3": {"pe": 3, "simd": 7}}}
CASE_NAMES = sorted(GRAPHS) + [f"{name}_parallel" for name in sorted(PARALLEL)]


def extreme_inputs(build, n: int = 24) -> np.ndarray:
    """``n`` verification samples; the first three all-max, all-min and alternating min/max."""
    q = build.qgraph
    xq, _ = flow.verification_inputs(build, n)
    fmt = q.input_fmt
    xq[0], xq[1] = fmt.max_int, fmt.min_int
    flat = xq[2].reshape(-1)
    flat[0::2], flat[1::2] = fmt.min_int, fmt.max_int
    return xq


def verify_at_extremes(build, target, n: int = 24):
    """The C simulation of ``target`` on :func:`extreme_inputs`: (result, inputs, golden trace)."""
    q = build.qgraph
    xq = extreme_inputs(build, n)
    _, trace = run_int(q, xq, trace=True)
    return hls.verify(build, target, xq, GoldenRun(trace[q.output], trace)), xq, trace


@pytest.fixture(scope="module", params=CASE_NAMES)
def case(request, tmp_path_factory):
    name = request.param.removesuffix("_parallel")
    build = build_for(GRAPHS[name](), np.random.default_rng(len(name)), signed=name not in UNSIGNED_INPUT)
    if name != request.param:
        build.cfg["parallelism"]["layers"] = PARALLEL[name]
    target = tmp_path_factory.mktemp(f"hls_{request.param}") / "hls"
    hls.generate(build).write(target)
    result, xq, trace = verify_at_extremes(build, target)
    cpp = (target / f"{result['top']}.cpp").read_text()
    return dict(name=request.param, build=build, xq=xq, trace=trace, result=result, cpp=cpp, target=target)


@pytest.mark.parametrize("case", [n for n in CASE_NAMES if n.endswith("_parallel")], indirect=True)
def test_parallelism_is_rendered(case):
    for layer, p in PARALLEL[case["name"].removesuffix("_parallel")].items():
        block = case["cpp"].split(f"struct {layer}_cfg {{")[1].split("};\n")[0]
        assert f"static constexpr int PE = {p['pe']};" in block and f"static constexpr int SIMD = {p['simd']};" in block


def test_bit_exact_in_c_simulation(case):
    r = case["result"]
    assert (r["samples"], r["mismatches"]) == (24, 0), r


def test_no_undefined_behaviour(case, tmp_path):
    """The same C simulation built with -fsanitize=undefined (any signed overflow or bad shift
    aborts it) gives the same integers."""
    top, target = case["result"]["top"], case["target"]
    binary, _, _ = hls.compile_csim(target, top, tmp_path, extra_flags=("-fsanitize=undefined",
                                                                       "-fno-sanitize-recover=all"))
    np.savetxt(tmp_path / "in.txt", case["xq"].reshape(len(case["xq"]), -1), fmt="%d")
    hls.run_csim(binary, tmp_path / "in.txt", tmp_path / "out.txt")
    got = np.array((tmp_path / "out.txt").read_text().split(), dtype=np.int64).reshape(len(case["xq"]), -1)
    q = case["build"].qgraph
    want = np.asarray(case["trace"][q.output]).reshape(len(case["xq"]), -1)
    assert got.tolist() == want.tolist()


def test_inputs_reach_the_extremes(case):
    q = case["build"].qgraph
    assert case["xq"].max() == q.input_fmt.max_int and case["xq"].min() == q.input_fmt.min_int


def test_leaky_layers_take_both_paths(case):
    """Every layer with a LeakyRelu (alpha > 0) outputs negative and positive integers on these
    inputs; its slope and the two-path requantizer are in its config struct."""
    q, trace, cpp = case["build"].qgraph, case["trace"], case["cpp"]
    leaky = [layer for layer in q.layers if layer.leaky is not None]
    assert leaky, "no LeakyRelu layer"
    for layer in leaky:
        out = np.asarray(trace[layer.output])
        if layer.leaky.alpha > 0:
            assert (out < 0).any() and (out > 0).any(), layer.name
        ident = hls.plan_model(q, case["build"].cfg).trace_names[layer.name]
        block = cpp.split(f"struct {ident}_cfg {{")[1].split("};\n")[0]
        assert "static constexpr bool LEAKY = true;" in block, layer.name
        assert f"static constexpr int ALPHA = {layer.leaky.alpha}, ALPHA_FRAC = {layer.leaky.frac};" in block


def test_new_ops_are_rendered(case):
    """Each new op is one library call (concat: one per input) of the IR's own numbers."""
    q, cpp = case["build"].qgraph, case["cpp"]
    plan = hls.plan_model(q, case["build"].cfg)
    idents = plan.trace_names
    for layer in q.layers:
        ident = idents.get(layer.name)
        if layer.op == "concat":
            for i, shift in enumerate(layer.params.shifts):
                c, h, w = plan.layouts[layer.inputs[i]]  # a vector stored as a flattened map: gathered
                flat = len(q.shapes[layer.inputs[i]]) == 1 and c > 1 and h * w > 1
                gather = f"fpgagen_nn::concat_input_gather<{ident}_cfg, {ident}_cfg::in{i}>(x{i}, y, " \
                         f"{ident.upper()}_INDEX);"
                plain = f"fpgagen_nn::concat_input<{ident}_cfg, {ident}_cfg::in{i}>(x{i}, y);"
                assert (gather if flat else plain) in cpp, (layer.name, i)
                assert f"OFFSET = {sum(layer.params.channels[:i])}, SHIFT = {shift}; }};" in cpp
        elif layer.op == "resize":
            fh, fw = layer.params.factors
            assert f"fpgagen_nn::resize_nearest<{ident}_cfg>(x, y);" in cpp
            assert f"static constexpr int FH = {fh}, FW = {fw};" in cpp
        elif layer.op == "pad":
            assert f"fpgagen_nn::pad<{ident}_cfg>(x, y);" in cpp
            assert "PAD_TOP = %d, PAD_LEFT = %d, PAD_BOTTOM = %d, PAD_RIGHT = %d;" % layer.params.pads in cpp
        elif layer.op == "leakyrelu":
            assert f"fpgagen_nn::leakyrelu<{ident}_cfg>(x, y);" in cpp


def test_cases_cover_the_new_ops():
    """Across the cases: every new op, every requantizing op with a fused LeakyRelu, each alpha,
    concat of the model input, of one tensor twice, of 3 inputs of different formats."""
    seen_ops, fused, alphas = set(), set(), set()
    for name, fn in GRAPHS.items():
        graph = fn()
        for node in graph.nodes:
            seen_ops.add(node.op)
            if isinstance(node.activation, LeakyRelu):
                alphas.add(node.activation.alpha)
                if node.op != "leakyrelu":
                    fused.add(node.op)
    assert {"leakyrelu", "concat", "resize", "pad"} <= seen_ops
    assert fused == {"conv", "dense", "avgpool", "gap", "add", "concat"}
    assert {0.1, 0.25, -0.5, 1.5, 0.01} <= alphas
    cat = [n for n in concat_input_graph().nodes if n.op == "concat"]
    assert "x" in cat[0].inputs and len(cat[1].inputs) == 3
    assert [n.inputs for n in concat_twice_graph().nodes if n.op == "concat"] == [["c1", "c1", "x"]]


def test_concat_inputs_of_different_formats():
    build = build_for(concat_input_graph(), np.random.default_rng(len("concat_input")), signed=False)
    q = build.qgraph
    cat1, cat3 = q.layer("cat1"), q.layer("cat3")
    assert not cat1.in_fmts[0].signed and cat1.in_fmts[1].signed  # the u8 model input and a signed map
    assert len(set(cat3.in_fmts)) > 1 and len(set(cat3.params.shifts)) > 1


def test_leaky_product_wider_than_64_bits_is_an_error():
    build = build_for(fused_mac_graph(), np.random.default_rng(1))
    layer = build.qgraph.layer("c1")
    layer.acc_width = 64 - 9 + 1  # 56 bits times a 9-bit slope (205 -> 9 signed bits): 65 > 64
    assert layer.leaky.alpha == 205
    with pytest.raises(BackendError, match=r"layer 'c1' \(conv\): its fused LeakyRelu multiplies the 56-bit "
                                           r"accumulator by the slope 205 \(9 bits\): 65 bits, more than the 64"):
        hls.plan_model(build.qgraph, build.cfg)
    layer.acc_width = 55  # 64 bits: fits
    hls.plan_model(build.qgraph, build.cfg)


def test_onnx_model_through_the_flow(tmp_path):
    """An ONNX model with the new ops, through import, passes, calibration and lowering as a user
    runs it (``flow.verify``), then at the input extremes: a LeakyRelu on the model input
    (standalone), one fused into a conv and into a Gemm (alpha -0.5), one after a max pool (the
    passes move it to the layer that can take it), Resize (scales), a 3-input Concat incl. the
    model input, and a Pad that no conv can take."""
    onnx = pytest.importorskip("onnx")
    from fpgagen.config import resolve_config
    from models_onnx import Net

    n = Net((2, 6, 6), opset=13, seed=3, name="newops")
    x2 = n.node("LeakyRelu", ["x"], alpha=0.3)
    b1 = n.node("LeakyRelu", [n.conv(x2, 2, 4, pads=[1, 1, 1, 1])], alpha=0.1)
    up = n.node("Resize", [n.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2]), "", n.const([1, 1, 2, 2])],
                mode="nearest")
    cat = n.node("Concat", [b1, up, "x"], axis=1)
    pad = n.node("Pad", [cat, n.const([0, 0, 1, 1, 0, 0, 0, 0], dtype=np.int64)])
    lr = n.node("LeakyRelu", [n.node("MaxPool", [pad], kernel_shape=[2, 2], strides=[2, 2])], alpha=0.05)
    y = n.node("LeakyRelu", [n.gemm(n.flatten(lr), 72, 5)], alpha=-0.5)
    onnx.save(n.model(y), tmp_path / "newops.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.normal(size=(40, 2, 6, 6)).astype(np.float32))
    cfg = resolve_config({"name": "newops", "model": str(tmp_path / "newops.onnx"),
                          "data": {"calibration": str(tmp_path / "cal.npz")}, "targets": ["hls"]}, base=tmp_path)
    results, out = flow.verify(cfg, targets=["hls"], samples=16, out=tmp_path / "out", progress=False)
    assert (results["hls"]["samples"], results["hls"]["mismatches"]) == (16, 0)

    build = flow.run_quantization(cfg, progress=False)
    q = build.qgraph
    ops = [(layer.op, layer.leaky is not None) for layer in q.layers]
    assert ("leakyrelu", True) in ops and ("conv", True) in ops and ("dense", True) in ops
    assert {"resize", "concat", "pad"} <= {op for op, _ in ops}
    assert next(layer for layer in q.layers if layer.op == "concat").inputs[2] == q.input
    r, _, _ = verify_at_extremes(build, out / "hls", 16)
    assert (r["samples"], r["mismatches"]) == (16, 0)


def test_digits_ops_acceptance_model(tmp_path):
    """configs/digits_ops.yaml (examples/ops: every new op, PE 2 x SIMD 4) on the HLS target alone:
    bit-exact on validation samples and at the input extremes."""
    from pathlib import Path

    from fpgagen.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "digits_ops.yaml")
    cfg["targets"] = ["hls"]
    results, out = flow.verify(cfg, targets=["hls"], samples=32, out=tmp_path / "out", progress=False)
    assert (results["hls"]["samples"], results["hls"]["mismatches"]) == (32, 0)
    build = flow.run_quantization(cfg, progress=False)
    q = build.qgraph
    assert {"leakyrelu", "concat", "resize", "pad"} <= {layer.op for layer in q.layers}
    r, _, _ = verify_at_extremes(build, out / "hls", 16)
    assert (r["samples"], r["mismatches"]) == (16, 0)


def test_every_ir_op_has_an_emitter():
    """Each op of the IR (fpgagen.ops) has an HLS emitter, except flatten (a buffer alias)."""
    from fpgagen import ops

    assert set(hls.EMITTERS) == set(ops.names()) - {"flatten"}
