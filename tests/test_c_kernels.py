"""The C runtime's kernels (templates/c/fpgagen_nn.c) against the golden kernels.

Every case is a small float Graph (conv, grouped/depthwise conv, dense, max/average/global
pools, add, flatten) calibrated on random data and lowered to the integer IR like a real model
(as tests/test_golden.py does); some weights, biases and shifts are then pushed to extremes.
All cases become models of ONE test harness, compiled with gcc's strict flags (and the address
and undefined-behaviour sanitizers where gcc has them) twice: with the 64-bit two-pixel path of
the host and with it off (FPGAGEN_PAIRS=0, the code 32-bit MCUs run). Each model runs on inputs
that include its input format's extremes (-128/127, 0/255) and every layer's output is compared
with the golden model's, integer by integer.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess

import numpy as np
import pytest

from fpgagen.backends import c as cb
from fpgagen.errors import BackendError
from fpgagen.golden import kernels as gk
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node, conv_output_hw
from fpgagen.quant.calibrate import calibrate
from fpgagen.ops._mac import set_mac_widths
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window
from reference import ref_requant

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


# -------------------------------------------------------------------------------------------
# cases
# -------------------------------------------------------------------------------------------
def lower_graph(graph: Graph, rng, signed_input: bool, input_fmt: str | None = None, per_channel=False):
    shape = graph.shapes[graph.input]
    x = (rng.normal(0, 1, (24, *shape)) if signed_input else rng.uniform(0, 2, (24, *shape))).astype(np.float32)
    over = {graph.input: {"output": input_fmt}} if input_fmt else {}
    cal = calibrate(graph, x, batch_size=12, progress=False)
    q, _ = lower(graph, choose_formats(cal, QuantOptions(method="max", overrides=over, per_channel=per_channel)))
    return q


def refresh_acc_width(layer) -> None:
    set_mac_widths(layer)


def push_weight_extremes(q, rng) -> None:
    """Put -128 and 127 into every conv/dense layer's weights (a few places)."""
    for layer in q.layers:
        if layer.op in ("conv", "dense"):
            flat = layer.weight.reshape(-1)
            idx = rng.choice(flat.size, size=min(flat.size, 4), replace=False)
            flat[idx[::2]] = -128
            flat[idx[1::2]] = 127
            refresh_acc_width(layer)


def int_inputs(q, rng, n: int = 6) -> np.ndarray:
    """Random input integers with whole samples at the format's minimum and maximum."""
    fmt = q.input_fmt
    shape = tuple(q.shapes[q.input])
    xq = rng.integers(fmt.min_int, fmt.max_int + 1, size=(n, *shape))
    xq[0] = fmt.min_int
    xq[1] = fmt.max_int
    xq[2].reshape(-1)[::2] = fmt.min_int
    xq[2].reshape(-1)[1::2] = fmt.max_int
    return xq.astype(np.int64)


def conv_graph(name, rng, cin, hw, cout, kernel, stride, pads, groups=1, act=None) -> Graph:
    oh, ow = conv_output_hw(hw, kernel, stride, pads)
    w = rng.normal(0, 0.4, (cout, cin // groups, *kernel))
    b = rng.normal(0, 0.3, cout)
    node = Node("conv", "conv", ["x"], "y", ConvParams(kernel=kernel, stride=stride, pads=pads, groups=groups), w, b, act,
                ["Conv_0"], "Conv")
    return Graph(name, "x", "y", [node], {"x": (cin, *hw), "y": (cout, oh, ow)}).validate()


def conv_cases(rng):
    out = []
    for i, (kernel, stride, pads) in enumerate(itertools.product(
            (1, 3, 5), (1, 2), ((0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 1)))):
        signed = i % 2 == 1
        g = conv_graph(f"conv_k{kernel}_s{stride}_p{''.join(map(str, pads))}", rng, 3, (7, 9), 11, (kernel, kernel),
                       (stride, stride), pads, act="relu" if i % 3 == 0 else None)
        out.append((g, signed))
    specials = [
        # depthwise, depthwise with a channel multiplier, grouped with a remainder channel per group
        conv_graph("conv_depthwise", rng, 5, (6, 7), 5, (3, 3), (1, 1), (1, 1, 1, 1), groups=5),
        conv_graph("conv_depthwise_x2_s2", rng, 3, (7, 6), 6, (3, 3), (2, 2), (1, 0, 1, 2), groups=3, act="relu"),
        conv_graph("conv_groups2", rng, 4, (5, 5), 18, (3, 3), (1, 1), (0, 1, 2, 1), groups=2),
        conv_graph("conv_groups2_wide", rng, 16, (4, 5), 16, (3, 3), (1, 1), (1, 1, 1, 1), groups=2),
        # rectangular kernel and a 1-D map (C, 1, W), asymmetric strides
        conv_graph("conv_1x3_row", rng, 3, (1, 11), 9, (1, 3), (1, 2), (0, 1, 0, 1)),
        conv_graph("conv_3x1", rng, 2, (8, 5), 8, (3, 1), (2, 1), (1, 0, 0, 0), act=("clip", 0.0, 1.5)),
        # padding wider than the kernel: border windows lie wholly in the padding
        conv_graph("conv_all_pad_border", rng, 3, (4, 5), 10, (1, 1), (1, 1), (1, 2, 1, 1)),
        # one output pixel per row / the whole map in one window
        conv_graph("conv_whole_map", rng, 7, (3, 3), 17, (3, 3), (1, 1), (0, 0, 0, 0)),
        # many input channels: long runs; 32 outputs: four full blocks
        conv_graph("conv_deep", rng, 33, (5, 5), 32, (3, 3), (1, 1), (1, 1, 1, 1), act="relu"),
        # in_c a multiple of 4 (groups of four taps): the Cortex-M4's two-pixel kernel, with a
        # rest channel, clipped windows, an odd number of groups, strides; one window beyond its
        # lane buffer (280 taps)
        conv_graph("conv_quads_pad", rng, 8, (6, 7), 11, (3, 3), (1, 1), (1, 1, 1, 1), act="relu"),
        conv_graph("conv_quads_pad_signed", rng, 8, (6, 7), 11, (3, 3), (1, 1), (1, 1, 1, 1)),
        conv_graph("conv_quads_s2_asym", rng, 4, (7, 6), 16, (3, 3), (2, 1), (2, 0, 1, 1)),
        conv_graph("conv_quads_valid", rng, 16, (5, 6), 8, (3, 3), (1, 1), (0, 0, 0, 0), act="relu"),
        conv_graph("conv_quads_1x1", rng, 12, (3, 5), 9, (1, 1), (1, 1), (0, 0, 0, 0)),
        conv_graph("conv_quads_over_lanes", rng, 8, (7, 8), 8, (5, 7), (1, 1), (2, 3, 2, 3)),
        conv_graph("conv_quads_all_pad_border", rng, 4, (4, 5), 9, (1, 1), (1, 1), (1, 2, 1, 1)),
        conv_graph("conv_quads_all_pad_border_s", rng, 8, (4, 5), 16, (1, 1), (1, 1), (2, 1, 1, 2)),
        # depthwise (the depthwise packing): four channels at a time on the Cortex-M4, a block of
        # eight, tails; strides, asymmetric pads, windows wholly in the padding, a 5x5 kernel
        conv_graph("conv_dw13", rng, 13, (6, 7), 13, (3, 3), (1, 1), (1, 1, 1, 1), groups=13, act="relu"),
        conv_graph("conv_dw13_signed", rng, 13, (6, 7), 13, (3, 3), (1, 1), (1, 1, 1, 1), groups=13),
        conv_graph("conv_dw12_s2_asym", rng, 12, (7, 6), 12, (3, 3), (2, 2), (1, 0, 1, 2), groups=12),
        conv_graph("conv_dw8_all_pad_border", rng, 8, (4, 5), 8, (1, 1), (1, 1), (1, 2, 1, 1), groups=8),
        conv_graph("conv_dw16_k5", rng, 16, (6, 6), 16, (5, 5), (1, 1), (2, 2, 2, 2), groups=16, act="relu"),
        conv_graph("conv_dw16_k5_signed", rng, 16, (6, 6), 16, (5, 5), (1, 2), (2, 2, 2, 2), groups=16),
    ]
    out += [(g, i % 2 == 0) for i, g in enumerate(specials)]
    return out


def dense_graph(name, rng, n_in, n_out, act=None) -> Graph:
    node = Node("fc", "dense", ["x"], "y", None, rng.normal(0, 0.3, (n_out, n_in)), rng.normal(0, 0.3, n_out), act,
                ["Gemm_0"], "Gemm")
    return Graph(name, "x", "y", [node], {"x": (n_in,), "y": (n_out,)}, onnx_output_shape=(n_out,)).validate()


def dense_cases(rng):
    out = []
    for i, (n_in, n_out) in enumerate(itertools.product((1, 7, 64), (1, 3, 8, 13, 19))):
        out.append((dense_graph(f"dense_{n_in}x{n_out}", rng, n_in, n_out, "relu" if i % 4 == 1 else None),
                    i % 2 == 0))
    # fan-ins beyond the packed sums' `fold` (summed in stretches), one not a multiple of 4
    out.append((dense_graph("dense_long_601x16", rng, 601, 16), False))
    out.append((dense_graph("dense_long_1030x9", rng, 1030, 9, "relu"), True))
    return out


def pool_graph(name, rng, op, c, hw, kernel=None, stride=None, pads=None, count_include_pad=False,
               before_conv=True, act=None) -> Graph:
    """x -> (1x1 conv) -> pool; the conv makes the pool's input an intermediate tensor."""
    nodes, shapes = [], {"x": (c, *hw)}
    src = "x"
    if before_conv:
        nodes.append(Node("pre", "conv", ["x"], "p", ConvParams((1, 1)), rng.normal(0, 0.5, (c, c, 1, 1)),
                          rng.normal(0, 0.2, c), None, ["Conv_0"], "Conv"))
        shapes["p"] = (c, *hw)
        src = "p"
    if op == "gap":
        nodes.append(Node("pool", "gap", [src], "y"))
        shapes["y"] = (c, 1, 1)
    else:
        params = (AvgPoolParams(kernel, stride, pads, count_include_pad) if op == "avgpool" else
                  Window(kernel, stride, pads))
        nodes.append(Node("pool", op, [src], "y", activation=act, params=params))
        shapes["y"] = (c, *conv_output_hw(hw, kernel, stride, pads))
    return Graph(name, "x", "y", nodes, shapes).validate()


def pool_cases(rng):
    specs = [
        ("maxpool_k2s2_odd", "maxpool", 5, (7, 9), (2, 2), (2, 2), (0, 0, 0, 0)),       # in place
        ("maxpool_k3s1p1", "maxpool", 3, (5, 6), (3, 3), (1, 1), (1, 1, 1, 1)),         # not in place
        ("maxpool_k3s2_asym", "maxpool", 9, (7, 7), (3, 3), (2, 2), (1, 0, 1, 1)),
        ("maxpool_k2s1", "maxpool", 4, (4, 5), (2, 2), (1, 1), (0, 0, 0, 0)),
        ("avgpool_excl_pad", "avgpool", 3, (5, 7), (3, 3), (2, 2), (1, 1, 1, 1)),       # per-position reciprocals
        ("avgpool_incl_pad", "avgpool", 3, (5, 7), (3, 3), (2, 2), (1, 1, 1, 1)),
        ("avgpool_k2s2", "avgpool", 6, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
        ("avgpool_asym", "avgpool", 5, (5, 4), (2, 3), (1, 2), (0, 1, 1, 0)),
    ]
    out = []
    for i, (name, op, c, hw, k, s, p) in enumerate(specs):
        g = pool_graph(name, rng, op, c, hw, k, s, p, count_include_pad=name.endswith("incl_pad"),
                       before_conv=i % 3 != 2)
        out.append((g, i % 2 == 0))
    # a max pool with a fused ReLU / Clip clamps its maxima (signed inputs: the clamp bites)
    out.append((pool_graph("maxpool_relu", rng, "maxpool", 3, (5, 6), (2, 2), (2, 2), (0, 0, 1, 0), act="relu"), True))
    out.append((pool_graph("maxpool_clip_input", rng, "maxpool", 2, (5, 5), (3, 3), (1, 1), (1, 1, 1, 1),
                           before_conv=False, act=("clip", 0.0, 0.5)), True))
    # four channels at a time on the Cortex-M4 (a tail channel; the clamp in the words)
    out.append((pool_graph("maxpool_relu_wide", rng, "maxpool", 9, (5, 6), (2, 2), (2, 2), (0, 0, 1, 0), act="relu"),
                True))
    out.append((pool_graph("maxpool_clip_k3_wide", rng, "maxpool", 8, (5, 5), (3, 3), (1, 1), (1, 1, 1, 1),
                           before_conv=False, act=("clip", 0.0, 0.5)), True))
    out.append((pool_graph("maxpool_k2s2_u8_wide", rng, "maxpool", 12, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0)), False))
    # average pools four 8-bit channels at a time on the Cortex-M4 (tails; 16-bit lanes emptied
    # every 256 pixels: a 400-pixel window)
    out.append((pool_graph("avgpool_k2s2_wide", rng, "avgpool", 8, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0)), False))
    out.append((pool_graph("avgpool_excl_pad_wide", rng, "avgpool", 9, (5, 7), (3, 3), (2, 2), (1, 1, 1, 1)), True))
    out.append((pool_graph("gap_400_signed", rng, "gap", 8, (20, 20)), True))
    out.append((pool_graph("gap_400", rng, "gap", 12, (20, 20), before_conv=False), False))
    out.append((pool_graph("gap_odd", rng, "gap", 7, (5, 3)), True))
    out.append((pool_graph("gap_input", rng, "gap", 3, (4, 4), before_conv=False), False))
    return out


def residual_graph(name, rng, c, hw, act="relu", reuse_after=False) -> Graph:
    conv = ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1)
    nodes = [
        Node("c1", "conv", ["x"], "a", conv, rng.normal(0, 0.4, (c, c, 3, 3)), rng.normal(0, 0.2, c), None,
             ["Conv_0"], "Conv"),
        Node("c2", "conv", ["a"], "b", conv, rng.normal(0, 0.4, (c, c, 3, 3)), rng.normal(0, 0.2, c), "relu",
             ["Conv_1"], "Conv"),
        Node("res", "add", ["b", "x"], "r", None, activation=act),
    ]
    shapes = {"x": (c, *hw), "a": (c, *hw), "b": (c, *hw), "r": (c, *hw)}
    if reuse_after:  # `a` is read again after the add: the add may only reuse b's bytes
        nodes.append(Node("res2", "add", ["r", "a"], "s", None))
        shapes["s"] = (c, *hw)
    nodes += [Node("gap", "gap", [nodes[-1].output], "g"), Node("flat", "flatten", ["g"], "f"),
              Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.4, (5, c)), rng.normal(0, 0.2, 5))]
    shapes.update(g=(c, 1, 1), f=(c,), y=(5,))
    return Graph(name, "x", "y", nodes, shapes, onnx_output_shape=(5,)).validate()


def flatten_graph(name, rng) -> Graph:
    """conv -> maxpool -> flatten -> dense: the dense takes its columns in HWC order."""
    nodes = [
        Node("c1", "conv", ["x"], "a", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
             rng.normal(0, 0.4, (6, 3, 3, 3)), rng.normal(0, 0.2, 6), "relu", ["Conv_0"], "Conv"),
        Node("mp", "maxpool", ["a"], "p", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))),
        Node("flat", "flatten", ["p"], "f"),
        Node("fc", "dense", ["f"], "h", None, rng.normal(0, 0.3, (12, 6 * 2 * 3)), rng.normal(0, 0.2, 12), "relu",
             ["Gemm_0"], "Gemm"),
        Node("fc2", "dense", ["h"], "y", None, rng.normal(0, 0.3, (4, 12)), rng.normal(0, 0.2, 4), None,
             ["Gemm_1"], "Gemm"),
    ]
    shapes = {"x": (3, 5, 7), "a": (6, 5, 7), "p": (6, 2, 3), "f": (36,), "h": (12,), "y": (4,)}
    return Graph(name, "x", "y", nodes, shapes, onnx_output_shape=(4,)).validate()


def patched_dense_cases(rng):
    """Requantization extremes: shifts from -3 to 70, 64-bit biases, clamps, int8 extreme weights."""
    out = []
    for shift in (-3, 0, 1, 5, 17, 31, 40, 62, 63, 70):
        g = dense_graph(f"dense_shift_{shift}".replace("-", "m"), rng, 9, 10)
        q = lower_graph(g, rng, signed_input=shift % 2 == 0)
        layer = q.layers[0]
        if shift > 20:  # large shifts need large accumulators: a 64-bit bias
            layer.bias = rng.integers(-(2**45), 2**45, size=layer.bias.shape)
            layer.bias[0] = 2**45
            layer.bias[1] = -(2**45)
            layer.bias[2] = 2 ** (shift - 1) if shift < 47 else 0  # an exact half
        elif shift > 0:
            layer.bias[0] = 2 ** (shift - 1)
            layer.bias[1] = -(2 ** (shift - 1))
        refresh_acc_width(layer)
        layer.shift = shift
        out.append((q, f"dense_shift_{shift}"))
    # a fused ReLU clamp and a Clip: lo/hi inside the format
    g = dense_graph("dense_clip", rng, 5, 9, act=("clip", 0.0, 0.5))
    out.append((lower_graph(g, rng, signed_input=True), "dense_clip"))
    return out


def spread_channels(graph: Graph, rng) -> Graph:
    """Scale each output channel's weights by its own power of two (2**-6 .. 2**2, as BN folding
    does), so per-channel weight formats differ by up to the word length."""
    node = graph.nodes[0]
    co = len(node.weight)
    scale = np.exp2(rng.integers(-6, 3, co)).reshape(co, *([1] * (node.weight.ndim - 1)))
    node.weight = (node.weight * scale).astype(node.weight.dtype)
    return graph


def per_channel_cases(rng):
    """Per-channel weight formats (a pre-alignment per output channel) on every conv/dense path:
    the fast conv (quads and interleaved), depthwise, grouped, dense (blocks and rest rows), the
    wide path (a fused LeakyRelu), left shifts; weights pushed to int8's extremes."""
    graphs = [
        (conv_graph("pc_conv_quads", rng, 8, (6, 7), 11, (3, 3), (1, 1), (1, 1, 1, 1), act="relu"), False),
        (conv_graph("pc_conv_interleaved", rng, 3, (7, 9), 11, (3, 3), (2, 2), (1, 1, 1, 1)), True),
        (conv_graph("pc_conv_dw13", rng, 13, (6, 7), 13, (3, 3), (1, 1), (1, 1, 1, 1), groups=13, act="relu"), False),
        (conv_graph("pc_conv_dw12_signed", rng, 12, (7, 6), 12, (3, 3), (2, 2), (1, 0, 1, 2), groups=12), True),
        (conv_graph("pc_conv_groups2", rng, 4, (5, 5), 18, (3, 3), (1, 1), (0, 1, 2, 1), groups=2), True),
        (conv_graph("pc_conv_leaky", rng, 3, (5, 6), 10, (3, 3), (1, 1), (1, 1, 1, 1), act=("leakyrelu", 0.1)), True),
        (dense_graph("pc_dense_64x19", rng, 64, 19, "relu"), False),
        (dense_graph("pc_dense_7x13", rng, 7, 13), True),
        (dense_graph("pc_dense_leaky", rng, 9, 10, ("leakyrelu", 0.2)), True),
    ]
    out = []
    for graph, signed in graphs:
        q = lower_graph(spread_channels(graph, rng), rng, signed, "s8.5" if signed else "u8.6", per_channel=True)
        assert q.layers[0].per_channel and q.layers[0].align.max() > 0, graph.name
        push_weight_extremes(q, rng)
        out.append((graph.name, q))
    # shifts from left (< 0) to right (> 0) within one layer: an output format 12 bits finer
    q = lower_graph(spread_channels(dense_graph("pc_dense_left", rng, 7, 13), rng), rng, True, "s8.5",
                    per_channel=True)
    layer = q.layers[0]
    layer.shift -= 12
    layer.shifts = layer.shifts - 12
    assert layer.shifts.min() < 0 < layer.shifts.max()
    out.append(("pc_dense_left", q))
    # pre-aligned accumulators beyond 30 bits (large biases): the 64-bit requantization of the fast path
    q = lower_graph(spread_channels(dense_graph("pc_dense_wide", rng, 9, 11), rng), rng, True, "s8.5",
                    per_channel=True)
    layer = q.layers[0]
    layer.bias = np.where(np.arange(11) % 2 == 0, 1, -1) * (1 << 26) + layer.bias
    set_mac_widths(layer)
    assert layer.acc_width <= 32 < layer.align_width
    out.append(("pc_dense_wide", q))
    return out


def all_cases():
    rng = np.random.default_rng(20240601)
    graphs = conv_cases(rng) + dense_cases(rng) + pool_cases(rng)
    graphs += [(residual_graph("residual", rng, 4, (5, 6)), False),
               (residual_graph("residual_signed", rng, 3, (4, 4), act=None, reuse_after=True), True),
               (flatten_graph("flatten_hwc", rng), False)]
    cases = []
    for graph, signed in graphs:
        q = lower_graph(graph, rng, signed, "s8.5" if signed else "u8.6")
        push_weight_extremes(q, rng)
        cases.append((graph.name, q))
    cases += [(name, q) for q, name in patched_dense_cases(rng)]
    cases += per_channel_cases(rng)
    return [(name, q, int_inputs(q, rng)) for name, q in cases]


CASES = all_cases()


# -------------------------------------------------------------------------------------------
# one build, every case
# -------------------------------------------------------------------------------------------
def sanitizer_flags(tmp) -> list[str]:
    """The sanitizers, if gcc can link them here."""
    src = tmp / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    proc = subprocess.run(["gcc", *SANITIZE, str(src), "-o", str(tmp / "probe")], capture_output=True)
    return SANITIZE if proc.returncode == 0 else []


def write_harness(tmp, cases) -> list:
    """One model header per (name, qgraph, ...) case, the runtime, the Cortex-M4 files and ONE
    harness over all of them in ``tmp``; returns the models."""
    models = [cb.build_model(case[1], case[0]) for case in cases]
    headers = []
    for m in models:
        (tmp / f"{m.prefix}.h").write_text(cb.render_model_h(m))
        headers.append(f"{m.prefix}.h")
    for rel in (*cb.RUNTIME_FILES, *cb.ARM_FILES):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(cb.read_library_file(f"c/{rel}"))
    (tmp / "harness.c").write_text(cb.render_harness(models, headers))
    return models


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """case name -> {"pairs": trace, "scalar": trace}: every layer's output from both builds."""
    tmp = tmp_path_factory.mktemp("c_kernels")
    models = write_harness(tmp, CASES)
    san = sanitizer_flags(tmp)
    xqs = [xq for _, _, xq in CASES]
    result = {name: {} for name, _, _ in CASES}
    for build, extra in (("pairs", []), ("scalar", ["-DFPGAGEN_PAIRS=0"])):
        exe = cb.compile_host(tmp, tmp / build / "harness", extra=["-DFPGAGEN_TRACE", *san, *extra])
        _, traces = cb.run_samples([str(exe)], tmp / build, models, xqs, f"kernel harness ({build})", trace=True)
        for (name, _, _), trace in zip(CASES, traces):
            result[name][build] = trace
    return result


@pytest.mark.parametrize("name", [name for name, _, _ in CASES])
def test_every_layer_matches_golden(runs, name):
    _, q, xq = next(case for case in CASES if case[0] == name)
    _, golden = run_int(q, xq, trace=True)
    for build, trace in runs[name].items():
        for layer in q.layers:
            got = trace[layer.output].reshape(len(xq), -1)
            want = golden[layer.output].reshape(len(xq), -1)
            assert got.tolist() == want.tolist(), f"{name}: layer {layer.name} ({layer.op}) differs ({build} build)"


def test_cases_cover_the_runtime():
    """The sweep reaches every kernel path: both input signednesses, blocks and single channels,
    grouped convs, 64-bit biases, every shift regime, in-place and separate pools."""
    layers = [(name, layer) for name, q, _ in CASES for layer in q.layers]
    ops = {layer.op for _, layer in layers}
    assert ops == {"conv", "dense", "maxpool", "avgpool", "gap", "add", "flatten"}
    macs = [layer for _, layer in layers if layer.op in ("conv", "dense")]
    assert {layer.in_fmts[0].signed for layer in macs} == {True, False}
    assert any(layer.weight.shape[0] % 8 for layer in macs) and any(layer.weight.shape[0] >= 16 for layer in macs)
    assert any(layer.op == "conv" and layer.params.groups > 1 for layer in macs)
    assert any(layer.acc_width > 32 for layer in macs)
    shifts = {layer.shift for _, layer in layers if layer.requantizes}
    assert min(shifts) < 0 and 0 in shifts and max(shifts) >= 63
    assert any(layer.weight.min() == -128 and layer.weight.max() == 127 for layer in macs)
    # the three packings of the fast path (depthwise for both input signednesses); fan-ins
    # beyond `fold` for both input signednesses
    packings = {cb.packing_code(layer) for layer in macs if layer.weight.shape[0] >= 8}
    assert packings == {0, 1, 2}
    assert {layer.in_fmts[0].signed for layer in macs if cb.depthwise(layer)} == {True, False}
    infos = {name: cb.tensor_infos(q) for name, q, _ in CASES}
    long = [(name, layer) for name, q, _ in CASES for layer in q.layers if layer.op == "dense"
            and layer.weight.shape[1] > cb.fold_taps(layer, infos[name][layer.inputs[0]])]
    assert {layer.in_fmts[0].signed for _, layer in long} == {True, False}
    plans = {name: cb.build_model(q, name).plan for name, q, _ in CASES}
    in_place = {kind for plan in plans.values() for kind, _ in plan.shares.values()}
    assert in_place == {"view", "in-place"}
    assert not cb.pool_in_place_ok((3, 5, 6), (3, 5, 6), Window(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1)))
    avg = [layer for _, layer in layers if layer.op == "avgpool"]
    assert any(np.ndim(layer.params.recip) == 2 for layer in avg) and any(np.ndim(layer.params.recip) == 0 for layer in avg)


# -------------------------------------------------------------------------------------------
# requantize on its own, and what the generator refuses
# -------------------------------------------------------------------------------------------
def test_requantize_matches_golden(tmp_path):
    accs = [0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 2**20 + 2**19, -(2**20 + 2**19), 2**31 - 1, -(2**31),
            2**40 + 5, -(2**40 + 5), 2**60 - 1, -(2**60)]
    accs += [s * (2**k + d) for k in range(1, 40, 3) for d in (-1, 0, 1) for s in (1, -1)]
    shifts = [-20, -5, -1, 0, 1, 2, 3, 7, 8, 15, 31, 32, 33, 47, 61, 62, 63, 64, 80]
    bounds = [(-128, 127), (0, 255), (0, 96), (-(2**31), 2**31 - 1)]
    cases = [(a, s, lo, hi) for a in accs for s in shifts for lo, hi in bounds
             if s >= 0 or abs(a) < 2 ** (60 + s)]  # the runtime's documented range
    # the narrow (32-bit) form where the generator allows it: |acc| * 2**max(0, -shift) < 2**29
    narrow = [(a, s, lo, hi) for a, s, lo, hi in cases if abs(a) * 2 ** max(0, -s) < 2**29]
    narrow += [(s * (2**29 - 1 - d), k, -128, 127) for s in (1, -1) for d in (0, 1) for k in (1, 15, 28, 29, 30, 31, 40)]
    assert len(narrow) > 500
    got = run_requantize(tmp_path, [c + (0,) for c in cases] + [c + (1,) for c in narrow],
                         "fpgagen_requantize_narrow", "fpgagen_requantize", "")
    want = [int(gk.requantize(np.array([a]), s, lo, hi)[0]) for a, s, lo, hi in cases + narrow]
    assert got == want


def run_requantize(tmp_path, cases, narrow_fn: str, wide_fn: str, extra_arg: str) -> list[int]:
    """Compile and run ``narrow_fn`` / ``wide_fn`` (acc, shift, lo, hi[extra_arg]) of the C runtime on
    ``cases`` ``(acc, shift, lo, hi, narrow)``: the results."""
    rows = ",\n".join(f"{{INT64_C({a}), {s}, INT32_C({lo}), INT32_C({hi}), {n}}}" for a, s, lo, hi, n in cases)
    (tmp_path / "rq.c").write_text(
        '#include <stdio.h>\n#include "fpgagen_nn.h"\n'
        "static const struct { int64_t acc; int32_t shift, lo, hi, narrow; } cases[] = {\n" + rows + "\n};\n"
        "int main(void) {\n    size_t i;\n    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {\n"
        "        printf(\"%ld\\n\", (long)(cases[i].narrow\n"
        f"            ? {narrow_fn}((int32_t)cases[i].acc, cases[i].shift, cases[i].lo, cases[i].hi{extra_arg})\n"
        f"            : {wide_fn}(cases[i].acc, cases[i].shift, cases[i].lo, cases[i].hi{extra_arg})));\n"
        "    }\n    return 0;\n}\n")
    for rel in cb.RUNTIME_FILES:
        (tmp_path / rel).write_text(cb.read_library_file(f"c/{rel}"))
    exe = cb.compile_host(tmp_path, tmp_path / "rq", sources=("rq.c", "fpgagen_nn.c"), extra=sanitizer_flags(tmp_path))
    return [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]


def test_requantize_half_to_even_matches_golden(tmp_path):
    """fpgagen_requantize_rounded / _narrow_rounded with even = 1 (SPEC.md 3's nearest-even mode):
    the ties k + 1/2 of every shift, at 0 and at the int8 / uint8 extremes, and the wide range."""
    accs = [0, 1, -1, 2**40 + 5, -(2**40 + 5), 2**60 - 1, -(2**60), 2**31 - 1, -(2**31)]
    shifts = [-5, 0, 1, 2, 3, 7, 8, 15, 31, 33, 62, 63]
    for s in (1, 2, 3, 7, 8, 15, 31, 33, 62):
        for k in (0, 1, 2, 3, -1, -2, -3, 126, 127, 128, -127, -128, -129, 254, 255, 256):
            for d in (-1, 0, 1):
                accs.append(k * 2**s + 2 ** (s - 1) + d)
    bounds = [(-128, 127), (0, 255)]
    cases = [(a, s, lo, hi, 0) for a in accs for s in shifts for lo, hi in bounds
             if (s >= 0 or abs(a) < 2 ** (60 + s)) and abs(a) < 2**61]
    cases += [(a, s, lo, hi, 1) for a, s, lo, hi, _ in cases if abs(a) * 2 ** max(0, -s) < 2**29]
    got = run_requantize(tmp_path, cases, "fpgagen_requantize_narrow_rounded", "fpgagen_requantize_rounded", ", 1")
    want = [ref_requant(a, s, lo, hi, even=True) for a, s, lo, hi, _ in cases]
    assert got == want
    gold = [int(gk.requantize(np.array([a]), s, lo, hi, None, "nearest-even")[0]) for a, s, lo, hi, _ in cases]
    assert gold == want
    assert want != [ref_requant(a, s, lo, hi) for a, s, lo, hi, _ in cases]  # the ties do differ


def test_generator_refuses_what_the_runtime_cannot_do():
    rng = np.random.default_rng(7)
    q = lower_graph(dense_graph("wide", rng, 4, 3), rng, signed_input=False)
    q.fmts[q.output] = type(q.output_fmt)(True, 17, 4)
    with pytest.raises(BackendError, match=r"tensor 'y' \(output of layer 'fc'\) has format s17.4; .*"
                                           r"int16_t/uint16_t elements, so formats of at most 16 bits"):
        cb.build_model(q)
    q = lower_graph(dense_graph("huge_fan_in", rng, 4, 3), rng, signed_input=False)
    q.layers[0].weight[0, 0] = 2**60
    with pytest.raises(BackendError, match=r"layer 'fc' \(dense\): a sum of products can reach \d+, beyond the "
                                           r"runtime's int64_t accumulator"):
        cb.build_model(q)
    q = lower_graph(dense_graph("far_shift", rng, 4, 3), rng, signed_input=False)
    q.layers[0].shift = -60
    with pytest.raises(BackendError, match=r"layer 'fc' \(dense\): a \d+-bit accumulator shifted left by 60"):
        cb.build_model(q)
