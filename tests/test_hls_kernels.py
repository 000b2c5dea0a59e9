"""The HLS layer library (``templates/hls/fpgagen_nn.h``) against the golden kernels.

Every case is a small float :class:`Graph` built by hand (one layer, or two where the layer needs
them: flatten + dense, conv + add), calibrated and lowered as in ``test_golden.py`` and generated
as a whole model through the HLS backend. All cases' generated ``.cpp`` files go into ONE
translation unit with a small driver (one g++ run for the whole sweep); the driver runs every
case's array top and stream top on the same integers and prints the outputs, which must equal
:func:`fpgagen.golden.model.run_int` integer for integer. The same run checks ``requantize``
directly over shifts -40..62, int32/int64 accumulators and several clamp ranges.

Sweeps (as the Verilog library's): kernel 1/3/5, stride 1/2, padding 0/1/asymmetric, odd sizes,
channels that the parallelism does not divide (the default PE/SIMD is clipped) and explicit
PE/SIMD that do, groups and depthwise, signed and unsigned inputs at the extremes of their range
(-128/127, 0/255), saturating weights (-128/127), outputs clamped at both ends, left shifts.

The new ops' kernels are also instantiated directly (hand-written CFG structs, a second driver):
a fused LeakyRelu (alpha 0.1, 0.25, -0.5, 1.5, 0.01 and slopes with Fal <= 0) in conv2d, dense,
avgpool, gap and add, the standalone leakyrelu, concat (2 and 3 inputs, mixed signedness and
widths, shifts <= 0, the same tensor twice, vectors, a flattened map read through an index
table), resize_nearest and pad, each against
fpgagen.golden.kernels; requantize_leaky against an exact Fraction reference.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest

from fpgagen.backends import from_hwc, hls, to_hwc
from reference import ref_requant, round_away  # noqa: F401
from fpgagen.flow import Build
from fpgagen.golden import kernels as k
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node, conv_output_hw
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.render import read_library_file
from fpgagen.ops.pool import AvgPoolParams, Window
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pad import pad_zeros
from fpgagen.ops.resize import resize_nearest

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

SAMPLES = 6  # per case: all-min, all-max, alternating min/max, 3 random
#: both drivers run under the undefined-behaviour sanitizer: a signed overflow or a shift out of
#: range aborts them
UBSAN = ("-fsanitize=undefined", "-fno-sanitize-recover=all")


@dataclass
class Case:
    name: str
    graph: Graph
    signed_input: bool = False
    overrides: dict = field(default_factory=dict)
    parallelism: dict = field(default_factory=lambda: {"pe": 1, "simd": 1, "layers": {}})
    #: expected (pe, simd) of a layer, checked in the generated code
    expect_par: dict = field(default_factory=dict)
    #: quantization.per_channel (the weights of layer "L" get a power of two per output channel)
    per_channel: bool = False


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, name)) * 7919)


def conv_graph(name, c, h, w, co, kernel, stride, pads, groups=1, activation=None) -> Graph:
    rng = _rng(name)
    oh, ow = conv_output_hw((h, w), kernel, stride, pads)
    node = Node("L", "conv", ["x"], "y", ConvParams(kernel=kernel, stride=stride, pads=pads, groups=groups),
                rng.normal(0, 0.6, (co, c // groups, *kernel)), rng.normal(0, 0.3, co), activation,
                [f"/{name}/Conv"], "Conv")
    return Graph(name, "x", "y", [node], {"x": (c, h, w), "y": (co, oh, ow)}).validate()


def spread_channels(graph: Graph) -> Graph:
    """Layer "L"'s output channel c scaled by its own power of two (2**-6 .. 2**2, as BN folding
    does): per-channel weight formats then differ by up to the word length."""
    node = next(n for n in graph.nodes if n.name == "L")
    co = len(node.weight)
    scale = np.exp2(_rng(graph.name + "/spread").integers(-6, 3, co))
    node.weight = node.weight * scale.reshape(co, *([1] * (node.weight.ndim - 1)))
    return graph


def dense_graph(name, n_in, n_out, activation=None, flatten_from=None) -> Graph:
    rng = _rng(name)
    nodes, shapes, src = [], {}, "x"
    if flatten_from is not None:
        nodes.append(Node("flat", "flatten", ["x"], "f", None, onnx_nodes=[f"/{name}/Flatten"], onnx_op="Flatten"))
        shapes.update(x=flatten_from, f=(math.prod(flatten_from),))
        src, n_in = "f", math.prod(flatten_from)
    else:
        shapes["x"] = (n_in,)
    nodes.append(Node("L", "dense", [src], "y", None, rng.normal(0, 0.5, (n_out, n_in)), rng.normal(0, 0.3, n_out),
                      activation, [f"/{name}/Gemm"], "Gemm"))
    shapes["y"] = (n_out,)
    return Graph(name, "x", "y", nodes, shapes, onnx_output_shape=(n_out,)).validate()


def pool_graph(name, op, c, h, w, kernel, stride, pads, count_include_pad=False, activation=None,
               count_pads=None) -> Graph:
    # count_pads: ceil_mode's extra end padding is not counted
    params = (AvgPoolParams(kernel, stride, pads, count_include_pad, count_pads) if op == "avgpool" else
              Window(kernel, stride, pads))
    oh, ow = conv_output_hw((h, w), kernel, stride, pads)
    node = Node("L", op, ["x"], "y", params=params, activation=activation, onnx_nodes=[f"/{name}/Pool"],
                onnx_op="MaxPool" if op == "maxpool" else "AveragePool")
    return Graph(name, "x", "y", [node], {"x": (c, h, w), "y": (c, oh, ow)}).validate()


def gap_graph(name, c, h, w) -> Graph:
    node = Node("L", "gap", ["x"], "y", onnx_nodes=[f"/{name}/GlobalAveragePool"], onnx_op="GlobalAveragePool")
    return Graph(name, "x", "y", [node], {"x": (c, h, w), "y": (c, 1, 1)}).validate()


def add_graph(name, c, h, w, activation=None) -> Graph:
    """y = conv1x1(x) + x: an add whose inputs have different formats (and a forked input)."""
    rng = _rng(name)
    conv = Node("pre", "conv", ["x"], "p", ConvParams(kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), groups=1),
                rng.normal(0, 1.5, (c, c, 1, 1)), rng.normal(0, 0.3, c), None, [f"/{name}/Conv"], "Conv")
    add = Node("L", "add", ["p", "x"], "y", None, activation=activation, onnx_nodes=[f"/{name}/Add"], onnx_op="Add")
    return Graph(name, "x", "y", [conv, add], {"x": (c, h, w), "p": (c, h, w), "y": (c, h, w)}).validate()


def flat_add_graph(name, first: str) -> Graph:
    """A flattened (2, 3, 4) map (HWC in its buffer) added to a dense layer's vector or to a
    flattened (4, 3, 2) map: the add reads one input through an index table."""
    rng = _rng(name)
    nodes = [Node("flat", "flatten", ["x"], "f", onnx_nodes=[f"/{name}/Flatten"], onnx_op="Flatten")]
    shapes = {"x": (2, 3, 4), "f": (24,), "y": (24,)}
    if first == "map":  # the other input: a (1, 3) conv to (4, 3, 2), flattened
        nodes += [Node("c", "conv", ["x"], "m", ConvParams(kernel=(1, 3), stride=(1, 1), pads=(0, 0, 0, 0), groups=1),
                       rng.normal(0, 0.6, (4, 2, 1, 3)), rng.normal(0, 0.3, 4), None, [f"/{name}/Conv"], "Conv"),
                  Node("flat2", "flatten", ["m"], "v", onnx_nodes=[f"/{name}/Flatten2"], onnx_op="Flatten")]
        shapes.update(m=(4, 3, 2), v=(24,))
        inputs = ["f", "v"]
    else:
        nodes.append(Node("d", "dense", ["f"], "v", None, rng.normal(0, 0.4, (24, 24)), rng.normal(0, 0.3, 24), None,
                          [f"/{name}/Gemm"], "Gemm"))
        shapes["v"] = (24,)
        inputs = ["f", "v"] if first == "flat" else ["v", "f"]
    nodes.append(Node("L", "add", inputs, "y", None, activation="relu", onnx_nodes=[f"/{name}/Add"], onnx_op="Add"))
    return Graph(name, "x", "y", nodes, shapes, onnx_output_shape=(24,)).validate()


def par(pe=1, simd=1, layers=None) -> dict:
    return {"pe": pe, "simd": simd, "layers": layers or {}}


def all_cases() -> list[Case]:
    cases = []
    pads_sweep = {"p0": (0, 0, 0, 0), "p1": (1, 1, 1, 1), "pa": (0, 1, 2, 0)}
    # conv: kernel x stride x padding; odd sizes; parallelism alternating clipped / explicit
    for i, (kk, s, (pn, pads)) in enumerate(itertools.product((1, 3, 5), (1, 2), pads_sweep.items())):
        name = f"conv_k{kk}_s{s}_{pn}"
        signed = i % 2 == 1
        if i % 3 == 0:  # 5 out, 3 in: the default PE 4 / SIMD 2 do not divide -> clipped to 1
            g, p, exp = conv_graph(name, 3, 9, 7, 5, (kk, kk), (s, s), pads), par(4, 2), (1, 1)
        elif i % 3 == 1:  # explicit PE/SIMD that divide 6 and 4
            g, p, exp = conv_graph(name, 4, 7, 8, 6, (kk, kk), (s, s), pads, activation="relu"), \
                par(layers={"L": {"pe": 3, "simd": 2}}), (3, 2)
        else:  # 6 out, 6 in with default 4/4 -> clipped to 3/3
            g, p, exp = conv_graph(name, 6, 5, 6, 6, (kk, kk), (s, s), pads), par(4, 4), (3, 3)
        ov = {"L": {"weight": "s8.7"}} if i % 4 == 0 else {}  # weights saturate at -128/127
        if i % 5 == 2:
            ov.setdefault("L", {})["output"] = "s8.7"  # outputs clamp at both ends
        cases.append(Case(name, g, signed, ov, p, {"L": exp}))
    cases += [
        Case("conv_depthwise", conv_graph("conv_depthwise", 4, 7, 7, 4, (3, 3), (2, 2), (1, 1, 1, 1), groups=4),
             True, {}, par(layers={"L": {"pe": 2}}), {"L": (2, 1)}),
        Case("conv_grouped", conv_graph("conv_grouped", 4, 6, 5, 6, (3, 3), (1, 1), (1, 0, 1, 2), groups=2,
                                        activation=("clip", 0.0, 1.0)), False, {},
             par(layers={"L": {"pe": 3, "simd": 2}}), {"L": (3, 2)}),
        Case("conv_leftshift", conv_graph("conv_leftshift", 2, 5, 5, 3, (3, 3), (1, 1), (1, 1, 1, 1)), False,
             {"x": {"output": "u8.8"}, "L": {"weight": "s8.7", "output": "s8.16"}}),
        # dense: odd sizes, explicit parallelism, signed input, saturating weights, ReLU and Clip
        Case("dense_odd", dense_graph("dense_odd", 13, 7), False, {}, par(4, 4), {"L": (1, 1)}),
        Case("dense_par", dense_graph("dense_par", 12, 8, "relu"), True, {"L": {"weight": "s8.7"}},
             par(layers={"L": {"pe": 4, "simd": 3}}), {"L": (4, 3)}),
        Case("dense_clip", dense_graph("dense_clip", 9, 6, ("clip", 0.0, 0.5)), True, {"L": {"output": "u8.8"}},
             par(2, 3), {"L": (2, 3)}),
        Case("dense_flatten", dense_graph("dense_flatten", 0, 5, flatten_from=(3, 4, 5)), True, {},
             par(layers={"L": {"pe": 5, "simd": 4}}), {"L": (5, 4)}),
        # pools
        Case("maxpool_k2_s2", pool_graph("maxpool_k2_s2", "maxpool", 3, 7, 9, (2, 2), (2, 2), (0, 0, 0, 0)), True),
        Case("maxpool_k3_s1_p1", pool_graph("maxpool_k3_s1_p1", "maxpool", 2, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1))),
        Case("maxpool_k3_s2_pa", pool_graph("maxpool_k3_s2_pa", "maxpool", 3, 8, 7, (3, 3), (2, 2), (0, 1, 2, 0)), True),
        Case("maxpool_k5_s2", pool_graph("maxpool_k5_s2", "maxpool", 2, 9, 11, (5, 5), (2, 2), (2, 2, 2, 2))),
        # a ReLU / Clip the pool takes (no conv before it): the maximum is clamped
        Case("maxpool_relu", pool_graph("maxpool_relu", "maxpool", 3, 7, 6, (2, 2), (2, 2), (0, 0, 1, 1),
                                        activation="relu"), True),
        Case("maxpool_clip", pool_graph("maxpool_clip", "maxpool", 2, 6, 6, (3, 3), (2, 2), (1, 1, 1, 1),
                                        activation=("clip", 0.0, 0.25)), True),
        Case("avgpool_k2_s2", pool_graph("avgpool_k2_s2", "avgpool", 3, 7, 9, (2, 2), (2, 2), (0, 0, 0, 0))),
        Case("avgpool_k3_exclpad", pool_graph("avgpool_k3_exclpad", "avgpool", 2, 6, 5, (3, 3), (1, 1), (1, 1, 1, 1)),
             True),
        Case("avgpool_k3_inclpad", pool_graph("avgpool_k3_inclpad", "avgpool", 2, 6, 5, (3, 3), (2, 2), (1, 1, 1, 1),
                                              count_include_pad=True)),
        Case("avgpool_ceil_inclpad", pool_graph("avgpool_ceil_inclpad", "avgpool", 2, 6, 7, (3, 3), (2, 2),
                                                (1, 1, 2, 1), count_include_pad=True, count_pads=(1, 1, 1, 1)), True),
        Case("avgpool_k5_s2_pa", pool_graph("avgpool_k5_s2_pa", "avgpool", 3, 9, 8, (5, 5), (2, 2), (0, 1, 2, 0)), True,
             {"L": {"output": "s8.7"}}),
        Case("gap_odd", gap_graph("gap_odd", 5, 7, 3)),
        Case("gap_signed", gap_graph("gap_signed", 3, 5, 5), True, {"L": {"output": "s8.8"}}),
        # residual add: different fracs and signedness, forked input, ReLU; a left-shifting one
        Case("add_relu", add_graph("add_relu", 3, 5, 4, "relu"), True),
        Case("add_mixed", add_graph("add_mixed", 2, 3, 7), False, {"x": {"output": "u8.8"}, "pre": {"output": "s8.3"}}),
        Case("add_leftshift", add_graph("add_leftshift", 2, 4, 3), True,
             {"x": {"output": "s8.6"}, "pre": {"output": "s8.2"}, "L": {"output": "s8.7"}}),
        # inputs stored in different orders: a flattened map and a vector (both ways), two maps
        Case("add_flat_dense", flat_add_graph("add_flat_dense", "flat"), True),
        Case("add_dense_flat", flat_add_graph("add_dense_flat", "dense"), True),
        Case("add_two_flat_maps", flat_add_graph("add_two_flat_maps", "map"), True),
    ]
    # per-channel weight formats: a shift per output channel (pre-aligned) with PE lanes over
    # several channel blocks, depthwise, grouped, a fused LeakyRelu, a flattened input
    pc = [
        Case("pc_conv_par", conv_graph("pc_conv_par", 4, 7, 8, 6, (3, 3), (1, 1), (1, 1, 1, 1), activation="relu"),
             False, {}, par(layers={"L": {"pe": 3, "simd": 2}}), {"L": (3, 2)}),
        Case("pc_conv_depthwise", conv_graph("pc_conv_depthwise", 6, 7, 7, 6, (3, 3), (2, 2), (1, 1, 1, 1), groups=6),
             True, {}, par(layers={"L": {"pe": 2}}), {"L": (2, 1)}),
        Case("pc_conv_grouped", conv_graph("pc_conv_grouped", 4, 6, 5, 6, (3, 3), (1, 1), (1, 0, 1, 2), groups=2),
             True, {}, par(layers={"L": {"pe": 3, "simd": 2}}), {"L": (3, 2)}),
        Case("pc_conv_leaky", conv_graph("pc_conv_leaky", 3, 5, 6, 8, (3, 3), (1, 1), (1, 1, 1, 1),
                                         activation=("leakyrelu", 0.1)), True, {}, par(4, 1), {"L": (4, 1)}),
        Case("pc_dense_par", dense_graph("pc_dense_par", 12, 8, "relu"), True, {},
             par(layers={"L": {"pe": 4, "simd": 3}}), {"L": (4, 3)}),
        Case("pc_dense_flatten", dense_graph("pc_dense_flatten", 0, 5, flatten_from=(3, 4, 5)), True, {},
             par(layers={"L": {"pe": 5, "simd": 4}}), {"L": (5, 4)}),
        Case("pc_dense_leaky", dense_graph("pc_dense_leaky", 9, 10, ("leakyrelu", 0.25)), False, {}, par(2, 3),
             {"L": (2, 3)}),
    ]
    for case in pc:
        spread_channels(case.graph)
        case.per_channel = True
    return cases + pc


CASES = all_cases()


def extreme_inputs(fmt, shape, rng) -> np.ndarray:
    n = math.prod(shape)
    rows = [np.full(n, fmt.min_int), np.full(n, fmt.max_int),
            np.where(np.arange(n) % 2 == 0, fmt.min_int, fmt.max_int)]
    rows += [rng.integers(fmt.min_int, fmt.max_int + 1, n) for _ in range(SAMPLES - len(rows))]
    return np.stack(rows).astype(np.int64).reshape((SAMPLES, *shape))


def lower_case(case: Case):
    rng = _rng(case.name)
    shape = case.graph.shapes["x"]
    lo = -1.0 if case.signed_input else 0.0
    x = rng.uniform(lo, 1.0, (16, *shape)).astype(np.float32)
    cal = calibrate(case.graph, x, batch_size=8, progress=False)
    plan = choose_formats(cal, QuantOptions(method="max", overrides=case.overrides, per_channel=case.per_channel))
    q, stats = lower(case.graph, plan)
    if case.per_channel:
        assert q.layer("L").per_channel and q.layer("L").align.max() > 0, case.name
    cfg = {"parallelism": case.parallelism, "verify": {"samples": 2}}
    return Build(cfg, case.graph, cal, plan, q, stats, x_calib=x)


# -- requantize sweep ------------------------------------------------------------------------------
RQ_SHIFTS = (-40, -7, -1, 0, 1, 2, 3, 7, 15, 24, 31, 32, 33, 40, 62)
RQ_RANGES = (("int8_t", -128, 127), ("uint8_t", 0, 255), ("int8_t", 0, 127), ("uint8_t", 0, 96),
             ("int16_t", -32768, 32767))


def rq_values(acc_bits: int) -> list[int]:
    top = 2 ** (acc_bits - 1)
    vals = {0, 1, -1, 2, -2, top - 1, -top, top // 2, -top // 2, 127, -128, 255, 128, -129}
    for s in (1, 2, 3, 7, 15, 24, 31):
        for base in (1, 3, -1, -3, 1000, -1000):
            for d in (-1, 0, 1):
                v = base * 2**s + (2 ** (s - 1) if s else 0) * np.sign(base) + d
                if -top <= v < top:
                    vals.add(int(v))
    rng = np.random.default_rng(acc_bits)
    vals.update(int(v) for v in rng.integers(-top, top, 200, dtype=np.int64))
    return sorted(vals)


def rq_jobs():
    """Every shift and range, rounding half away from zero; then half to even (SPEC.md 3's
    nearest-even mode) on every shift of the int8, uint8 and int16 ranges."""
    for acc_t, bits in (("int32_t", 32), ("int64_t", 63)):
        for shift, (out_t, lo, hi) in itertools.product(RQ_SHIFTS, RQ_RANGES):
            yield acc_t, bits, shift, out_t, lo, hi, False
        for shift, (out_t, lo, hi) in itertools.product(RQ_SHIFTS, RQ_RANGES[:2] + RQ_RANGES[4:]):
            yield acc_t, bits, shift, out_t, lo, hi, True


# -- the one compile --------------------------------------------------------------------------------
def tagged_rows(stdout: str) -> dict[str, list]:
    """A driver's lines ``<tag> v0 v1 ...`` -> {tag: [[v0, v1, ...], ...]} in order."""
    by_tag: dict[str, list] = {}
    for line in stdout.splitlines():
        tag, *vals = line.split()
        by_tag.setdefault(tag, []).append([int(v) for v in vals])
    return by_tag


def driver_source(tops: list[tuple[str, str, int]]) -> str:
    lines = ["#include <cstdint>", "#include <cstdio>", ""]
    lines += [f'#include "{path}"' for _, path, _ in tops]
    lines += [
        "",
        "template <int IN, int OUT, typename In, typename Out>",
        "int run_case(const char* name, int samples, void (*array_top)(const In*, Out*),",
        "             void (*stream_top)(hls::stream<In>&, hls::stream<Out>&), std::FILE* in) {",
        "    static In x[IN];",
        "    static Out y[OUT], ys[OUT];",
        "    for (int s = 0; s < samples; ++s) {",
        "        for (int i = 0; i < IN; ++i) {",
        "            long long v;",
        "            if (std::fscanf(in, \"%lld\", &v) != 1) return 2;",
        "            x[i] = static_cast<In>(v);",
        "        }",
        "        array_top(x, y);",
        "        hls::stream<In> xs;",
        "        hls::stream<Out> yss;",
        "        for (int i = 0; i < IN; ++i) xs.write(x[i]);",
        "        stream_top(xs, yss);",
        "        for (int i = 0; i < OUT; ++i) ys[i] = yss.read();",
        "        std::printf(\"%s\", name);",
        "        for (int i = 0; i < OUT; ++i) {",
        "            if (y[i] != ys[i]) return 3;",
        "            std::printf(\" %lld\", static_cast<long long>(y[i]));",
        "        }",
        "        std::printf(\"\\n\");",
        "    }",
        "    return 0;",
        "}",
        "",
        "template <int S, int64_t LO, int64_t HI, typename Out, bool E, typename Acc, int N>",
        "void rq(const char* tag, const long long (&v)[N]) {",
        "    std::printf(\"%s\", tag);",
        "    for (int i = 0; i < N; ++i)",
        "        std::printf(\" %lld\", static_cast<long long>(",
        "            fpgagen_nn::requantize<S, LO, HI, Out, E>(static_cast<Acc>(v[i]))));",
        "    std::printf(\"\\n\");",
        "}",
        "",
    ]
    for acc_t, bits in (("int32_t", 32), ("int64_t", 63)):
        vals = ", ".join(f"{v}LL" if v != -(2**63) else "INT64_MIN" for v in rq_values(bits))
        lines.append(f"static const long long RQ_{bits}[] = {{{vals}}};")
    lines += ["", "int main(int argc, char** argv) {", "    if (argc != 2) return 2;",
              "    std::FILE* in = std::fopen(argv[1], \"r\");", "    if (in == nullptr) return 2;", "    int rc = 0;"]
    for top, _, samples in tops:
        t = top.upper()
        lines.append(f"    if ((rc = run_case<{t}_IN_SIZE, {t}_OUT_SIZE, {top}_in_t, {top}_out_t>"
                     f"(\"{top}\", {samples}, {top}, {top}_stream, in)) != 0) return rc;")
    for n, (acc_t, bits, shift, out_t, lo, hi, even) in enumerate(rq_jobs()):
        lines.append(f"    rq<{shift}, {lo}, {hi}, {out_t}, {str(even).lower()}, {acc_t}>(\"rq{n}\", RQ_{bits});")
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Lower, generate and compile every case once; run the driver; return per-case results."""
    root = tmp_path_factory.mktemp("hls_kernels")
    results, tops = {}, []
    inputs = []
    for case in CASES:
        build = lower_case(case)
        q = build.qgraph
        files = hls.generate(build)
        case_dir = root / case.name
        files.write(case_dir)
        plan = hls.plan_model(q, build.cfg)
        xq = extreme_inputs(q.input_fmt, q.shapes[q.input], _rng(case.name + "x"))
        golden, trace = run_int(q, xq, trace=True)
        inputs.append(to_hwc(xq, plan.in_layout))
        tops.append((plan.top, str(case_dir / f"{plan.top}.cpp"), len(xq)))
        results[case.name] = dict(build=build, plan=plan, xq=xq, golden=golden, trace=trace,
                                  cpp=(case_dir / f"{plan.top}.cpp").read_text())
    (root / "driver.cpp").write_text(driver_source(tops))
    (root / "inputs.txt").write_text("".join(" ".join(map(str, row.tolist())) + "\n" for block in inputs
                                             for row in block))
    cmd = ["g++", *hls.CXXFLAGS, *UBSAN, "-o", str(root / "driver"), str(root / "driver.cpp")]
    comp = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert comp.returncode == 0, comp.stdout + comp.stderr[-4000:]
    run = subprocess.run([str(root / "driver"), str(root / "inputs.txt")], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, f"driver exit {run.returncode} (3: array and stream tops disagree)\n{run.stderr}"
    by_tag = tagged_rows(run.stdout)
    for case in CASES:
        r = results[case.name]
        got = np.array(by_tag[r["plan"].top], dtype=np.int64)
        r["got"] = from_hwc(got, r["plan"].out_layout)
    results["_rq"] = by_tag
    results["_build"] = (root, cmd, run.stdout)
    return results


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_layer_matches_golden(sweep, name):
    r = sweep[name]
    want = r["golden"].reshape(len(r["xq"]), -1)
    assert r["got"].tolist() == want.tolist()


@pytest.mark.parametrize("name", [c.name for c in CASES if c.expect_par])
def test_parallelism_is_rendered(sweep, name):
    case = next(c for c in CASES if c.name == name)
    cpp = sweep[name]["cpp"]
    for layer, (pe, simd) in case.expect_par.items():
        block = cpp.split(f"struct {layer}_cfg {{")[1].split("};")[0]
        assert f"static constexpr int PE = {pe};" in block
        assert f"static constexpr int SIMD = {simd};" in block
        if pe > 1:
            assert f"ARRAY_PARTITION variable={layer}_W cyclic factor={pe} dim=1" in cpp


def test_sweep_reaches_the_extremes(sweep):
    """The sweep does exercise saturating weights, both clamp bounds and left shifts."""
    layers = [sweep[c.name]["build"].qgraph.layer("L") for c in CASES]
    weights = np.concatenate([np.ravel(l.weight) for l in layers if l.weight is not None])
    assert weights.min() == -128 and weights.max() == 127
    assert any(l.shift is not None and l.shift <= 0 for l in layers)
    hit_lo = hit_hi = False
    for c in CASES:
        r, layer = sweep[c.name], sweep[c.name]["build"].qgraph.layer("L")
        if layer.requantizes:
            hit_lo |= bool((r["got"] == layer.lo).any() and layer.lo < 0)
            hit_hi |= bool((r["got"] == layer.hi).any())
    assert hit_lo and hit_hi


def test_clamping_pools_and_gathering_adds_are_rendered(sweep):
    cpp = sweep["maxpool_clip"]["cpp"]
    q = sweep["maxpool_clip"]["build"].qgraph
    layer = q.layer("L")
    assert layer.out_fmt.signed and layer.lo == 0 and 0 < layer.hi < layer.out_fmt.max_int
    assert f"static constexpr int64_t HI = {layer.hi};" in cpp and "narrowed by a fused clip(0,0.25)" in cpp
    assert (sweep["maxpool_clip"]["got"] == layer.hi).any() and (sweep["maxpool_clip"]["got"] == 0).any()
    assert (sweep["maxpool_clip"]["xq"] < 0).any()
    for name in ("add_flat_dense", "add_dense_flat", "add_two_flat_maps"):
        assert "fpgagen_nn::add_gather<L_cfg>(a, b, y, L_INDEX);" in sweep[name]["cpp"], name
    recip = np.asarray(sweep["avgpool_ceil_inclpad"]["build"].qgraph.layer("L").params.recip)
    assert recip.shape == (4, 4) and len(set(recip.ravel().tolist())) == 2  # 9 and 6 positions counted


@pytest.mark.parametrize("which", ["sweep", "kernel_sweep"])
def test_unoptimised_build_links_and_agrees(request, which):
    """-O0 as well: C++14 needs an out-of-class definition of a ``static constexpr`` member that is
    odr-used (bound to a reference, address taken), which -O2 can hide; the library uses them
    only as constants, so every case (the models' and the direct kernel cases') links and gives
    the same integers."""
    root, cmd, stdout = request.getfixturevalue(which)["_build"]
    cmd = [("-O0" if flag == "-O2" else flag) for flag in cmd]
    cmd[cmd.index("-o") + 1] = str(root / "driver_O0")
    comp = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert comp.returncode == 0, comp.stderr[-4000:]
    args = [str(root / "inputs.txt")] if which == "sweep" else []
    run = subprocess.run([str(root / "driver_O0"), *args], capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0 and run.stdout == stdout


def test_requantize_matches_golden(sweep):
    by_tag = sweep["_rq"]
    for n, (acc_t, bits, shift, out_t, lo, hi, even) in enumerate(rq_jobs()):
        vals = rq_values(bits)
        got = by_tag[f"rq{n}"][0]
        want = [ref_requant(v, shift, lo, hi, even) for v in vals]
        assert got == want, (acc_t, shift, out_t, lo, hi, even)
        # where the golden kernel's int64 arithmetic is valid (no overflow of the left shift, |acc| < 2**62)
        ok = [i for i, v in enumerate(vals) if (shift > 0 or abs(v) < 2 ** (62 + shift)) and abs(v) < 2**62]
        gold = k.requantize(np.array([vals[i] for i in ok], dtype=np.int64), shift, lo, hi, None,
                            "nearest-even" if even else "nearest-away")
        assert gold.tolist() == [want[i] for i in ok], (acc_t, shift)


# -- the new ops' kernels, instantiated directly ----------------------------------------------------
# Each case is a hand-written CFG struct and one library call on constant arrays (no lowering):
# a fused LeakyRelu in every requantizing kernel (conv2d, dense, avgpool, gap, add), the standalone
# leakyrelu, concat, resize_nearest and pad. All go into one more translation unit; every output
# integer must equal the golden kernels' (fpgagen.golden.kernels) on inputs that include the
# extremes of each input type. requantize_leaky is also swept against an exact Fraction reference.
ALPHAS = (0.1, 0.25, -0.5, 1.5, 0.01)
CTYPES = {"int8_t": (-128, 127), "uint8_t": (0, 255), "int16_t": (-32768, 32767), "uint16_t": (0, 65535),
          "int32_t": (-2**31, 2**31 - 1), "int64_t": (-2**63, 2**63 - 1)}


def leaky_int(alpha: float) -> tuple[int, int]:
    """(A, Fal) of SPEC.md 3: the largest Fal whose A = round_away(alpha * 2**Fal) fits an 8-bit word
    (signed when alpha < 0)."""
    lo, hi = (-128, 127) if alpha < 0 else (0, 255)
    frac = 30
    while not lo <= round_away(Fraction(alpha) * 2**frac) <= hi:
        frac -= 1
    return round_away(Fraction(alpha) * 2**frac), frac


LEAKIES = [leaky_int(a) for a in ALPHAS] + [(150, -1), (255, 0), (-128, 7)]  # alpha 300, 255, -1


def ref_leaky(acc: int, shift: int, lo: int, hi: int, leaky, even: bool = False) -> int:
    a, frac = leaky
    return ref_requant(acc, shift, lo, hi, even) if acc >= 0 else ref_requant(acc * a, shift + frac, lo, hi, even)


def samples_of(ctype: str, n: int, rng, count: int = SAMPLES, lo=None, hi=None) -> np.ndarray:
    """``count`` rows of ``n`` integers of ``ctype`` (or of [lo, hi]): all-min, all-max, alternating,
    random."""
    tlo, thi = CTYPES[ctype]
    lo, hi = tlo if lo is None else lo, thi if hi is None else hi
    rows = [np.full(n, lo), np.full(n, hi), np.where(np.arange(n) % 2 == 0, lo, hi)]
    rows += [rng.integers(lo, hi + 1, n) for _ in range(count - len(rows))]
    return np.stack(rows).astype(np.int64)


@dataclass
class KernelCase:
    name: str
    cfg: list  # lines of struct cfg
    call: str  # the library call on x0.., y (and the case's constants)
    inputs: list  # [(ctype, [S, n] ints in buffer order)]
    out_t: str
    want: np.ndarray  # [S, out] in buffer order
    consts: list = field(default_factory=list)  # [(ctype, name, ints)]
    #: with a LeakyRelu: the outputs the same kernel gives without it (the sweep must differ)
    plain: np.ndarray | None = None


def leaky_cfg(leaky) -> list:
    if leaky is None:
        return []
    return ["static constexpr bool LEAKY = true;", f"static constexpr int ALPHA = {leaky[0]}, ALPHA_FRAC = {leaky[1]};"]


def shift_for(acc: np.ndarray, out_bits: int = 8, extra: int = 1) -> int:
    """A shift that saturates the largest accumulators (by ``extra`` bits) and keeps the rest."""
    return int(np.abs(acc).max()).bit_length() - (out_bits - 1) - extra


def hwc(x: np.ndarray) -> np.ndarray:
    return to_hwc(x, x.shape[1:])


def conv_kernel_case(name, rng, in_t, c, h, w, co, kern, stride, pads, groups, leaky, hi=None) -> KernelCase:
    x = samples_of(in_t, c * h * w, rng).reshape(-1, c, h, w)
    wt = rng.integers(-128, 128, (co, c // groups, kern, kern))
    wt.reshape(-1)[:2] = (-128, 127)
    b = rng.integers(-3000, 3000, co)
    acc = k.conv_acc(x, wt, b, (kern, kern), (stride, stride), pads, groups)
    shift = shift_for(acc)
    lo, hi = -128, 127 if hi is None else hi
    oh, ow = acc.shape[2:]
    cfg = ["using in_t = %s;" % in_t, "using out_t = int8_t;", "using w_t = int8_t;", "using acc_t = int32_t;",
           f"static constexpr int IN_C = {c}, IN_H = {h}, IN_W = {w};",
           f"static constexpr int OUT_C = {co}, OUT_H = {oh}, OUT_W = {ow};",
           f"static constexpr int KERNEL_H = {kern}, KERNEL_W = {kern};",
           f"static constexpr int STRIDE_H = {stride}, STRIDE_W = {stride};",
           "static constexpr int PAD_TOP = %d, PAD_LEFT = %d, PAD_BOTTOM = %d, PAD_RIGHT = %d;" % tuple(pads),
           f"static constexpr int GROUPS = {groups}, PE = {co // groups if groups > 1 else 1}, SIMD = 1;",
           f"static constexpr int SHIFT = {shift};", f"static constexpr int64_t LO = {lo}, HI = {hi};",
           *leaky_cfg(leaky)]
    want = k.requantize(acc, shift, lo, hi, leaky)
    return KernelCase(name, cfg, "fpgagen_nn::conv2d<cfg>(x0, y, W, B);", [(in_t, hwc(x))], "int8_t", hwc(want),
                      [("int8_t", "W", wt), ("int32_t", "B", b)], hwc(k.requantize(acc, shift, lo, hi)))


def dense_kernel_case(name, rng, in_t, w_t, acc_t, out_t, n_in, n_out, pe, simd, leaky, shift=None,
                      small=False) -> KernelCase:
    """``small``: weights in [-2, 2] and biases in [-50, 50] (a left shift that does not always saturate)."""
    x = samples_of(in_t, n_in, rng)
    wlo, whi = (-2, 2) if small else CTYPES[w_t]
    wt = rng.integers(wlo, whi + 1, (n_out, n_in), dtype=np.int64)
    wt.reshape(-1)[:2] = (wlo, whi)
    b = rng.integers(-50, 51, n_out) if small else rng.integers(-1000, 1000, n_out)
    acc = k.dense_acc(x, wt, b)
    shift = shift_for(acc, int(out_t[3:-2])) if shift is None else shift
    lo, hi = CTYPES[out_t]
    cfg = [f"using in_t = {in_t};", f"using out_t = {out_t};", f"using w_t = {w_t};", f"using acc_t = {acc_t};",
           f"static constexpr int IN = {n_in}, OUT = {n_out}, PE = {pe}, SIMD = {simd};",
           f"static constexpr int SHIFT = {shift};", f"static constexpr int64_t LO = {lo}, HI = {hi};",
           *leaky_cfg(leaky)]
    want = k.requantize(acc, shift, lo, hi, leaky)
    return KernelCase(name, cfg, "fpgagen_nn::dense<cfg>(x0, y, W, B);", [(in_t, x)], out_t, want,
                      [(w_t, "W", wt), (acc_t, "B", b)], k.requantize(acc, shift, lo, hi))


def avgpool_kernel_case(name, rng, c, h, w, kern, stride, pads, per_position, leaky) -> KernelCase:
    x = samples_of("int8_t", c * h * w, rng).reshape(-1, c, h, w)
    total = k.window_sum(x, (kern, kern), (stride, stride), pads)
    oh, ow = total.shape[2:]
    recip = rng.integers(200, 2000, (oh, ow)) if per_position else np.array([round(2**12 / kern**2)])
    acc = total * (recip if per_position else recip[0])
    shift = shift_for(acc)
    cfg = ["using in_t = int8_t;", "using out_t = int8_t;", "using acc_t = int32_t;",
           f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w}, OUT_H = {oh}, OUT_W = {ow};",
           f"static constexpr int KERNEL_H = {kern}, KERNEL_W = {kern};",
           f"static constexpr int STRIDE_H = {stride}, STRIDE_W = {stride};",
           "static constexpr int PAD_TOP = %d, PAD_LEFT = %d, PAD_BOTTOM = %d, PAD_RIGHT = %d;" % tuple(pads),
           f"static constexpr int RECIP_SIZE = {recip.size};",
           f"static constexpr int SHIFT = {shift};", "static constexpr int64_t LO = -128, HI = 127;",
           *leaky_cfg(leaky)]
    want = k.requantize(acc, shift, -128, 127, leaky)
    return KernelCase(name, cfg, "fpgagen_nn::avgpool<cfg>(x0, y, R);", [("int8_t", hwc(x))], "int8_t", hwc(want),
                      [("int32_t", "R", recip.reshape(-1))], hwc(k.requantize(acc, shift, -128, 127)))


def gap_kernel_case(name, rng, in_t, c, h, w, leaky) -> KernelCase:
    x = samples_of(in_t, c * h * w, rng).reshape(-1, c, h, w)
    recip = round(2**14 / (h * w))
    acc = x.sum(axis=(2, 3)) * recip
    shift = shift_for(acc)
    cfg = [f"using in_t = {in_t};", "using out_t = int8_t;", "using acc_t = int32_t;",
           f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};", f"static constexpr int64_t RECIP = {recip};",
           f"static constexpr int SHIFT = {shift};", "static constexpr int64_t LO = -128, HI = 127;",
           *leaky_cfg(leaky)]
    want = k.requantize(acc, shift, -128, 127, leaky)
    return KernelCase(name, cfg, "fpgagen_nn::gap<cfg>(x0, y);", [(in_t, hwc(x))], "int8_t", want,
                      plain=k.requantize(acc, shift, -128, 127))


def add_kernel_case(name, rng, in0, in1, size, align, shift, leaky, hi=127) -> KernelCase:
    a, b = samples_of(in0, size, rng), samples_of(in1, size, rng)
    b[2] = b[2][::-1]  # the alternating rows meet min with max
    acc = (a << align[0]) + (b << align[1])
    cfg = [f"using in0_t = {in0};", f"using in1_t = {in1};", "using out_t = int8_t;", "using acc_t = int32_t;",
           f"static constexpr int SIZE = {size}, ALIGN0 = {align[0]}, ALIGN1 = {align[1]};",
           f"static constexpr int SHIFT = {shift};", f"static constexpr int64_t LO = -128, HI = {hi};",
           *leaky_cfg(leaky)]
    want = k.requantize(acc, shift, -128, hi, leaky)
    return KernelCase(name, cfg, "fpgagen_nn::add<cfg>(x0, x1, y);", [(in0, a), (in1, b)], "int8_t", want,
                      plain=k.requantize(acc, shift, -128, hi))


def leakyrelu_kernel_case(name, rng, in_t, out_t, size, shift, leaky, hi=None) -> KernelCase:
    x = samples_of(in_t, size, rng)
    lo, thi = CTYPES[out_t] if leaky is not None or out_t.startswith("uint") else (0, CTYPES[out_t][1])
    hi = thi if hi is None else hi
    cfg = [f"using in_t = {in_t};", f"using out_t = {out_t};", f"static constexpr int SIZE = {size};",
           f"static constexpr int SHIFT = {shift};", f"static constexpr int64_t LO = {lo}, HI = {hi};",
           *leaky_cfg(leaky)]
    return KernelCase(name, cfg, "fpgagen_nn::leakyrelu<cfg>(x0, y);", [(in_t, x)], out_t,
                      k.leakyrelu(x, shift, lo, hi, leaky), plain=k.requantize(x, shift, lo, hi))


def concat_kernel_case(name, rng, parts, hw, leaky, lo=-128, hi=127, same=False) -> KernelCase:
    """``parts``: (ctype, channels, shift) per input; with ``same`` every input is x0's tensor."""
    h, w = hw
    xs = []
    for i, (ctype, ch, _) in enumerate(parts):
        xs.append(xs[0] if same and i else samples_of(ctype, ch * h * w, rng).reshape(-1, ch, h, w))
    shifts = [s for _, _, s in parts]
    want = k.concat(xs, shifts, lo, hi, leaky)
    cout = sum(ch for _, ch, _ in parts)
    cfg = ["using out_t = int8_t;", f"static constexpr int PIXELS = {h * w}, C = {cout};",
           f"static constexpr int64_t LO = {lo}, HI = {hi};", *leaky_cfg(leaky)]
    calls, offset = [], 0
    for i, (ctype, ch, s) in enumerate(parts):
        cfg.append(f"struct in{i} {{ using in_t = {ctype}; static constexpr int C = {ch}, OFFSET = {offset}, "
                   f"SHIFT = {s}; }};")
        calls.append(f"fpgagen_nn::concat_input<cfg, cfg::in{i}>(x{i}, y);")
        offset += ch
    return KernelCase(name, cfg, " ".join(calls), [(ctype, hwc(x)) for (ctype, _, _), x in zip(parts, xs)],
                      "int8_t", hwc(want), plain=hwc(k.concat(xs, shifts, lo, hi)))


def concat_gather_kernel_case(name, rng, map_part, vec_part, leaky) -> KernelCase:
    """A vector concat of a flattened (c, h, w) map (its buffer in HWC order, read through the
    index table) and a vector: ``map_part = (ctype, (c, h, w), shift)``, ``vec_part = (ctype, n, shift)``."""
    (mt, shape, ms), (vt, n, vs) = map_part, vec_part
    m = math.prod(shape)
    fm = samples_of(mt, m, rng).reshape(-1, *shape)
    vec = samples_of(vt, n, rng)
    flat = fm.reshape(len(fm), -1)
    want = k.concat([flat, vec], (ms, vs), -128, 127, leaky)
    index = np.concatenate([hls.gather_index((m, 1, 1), shape), np.arange(n)])
    cfg = ["using out_t = int8_t;", f"static constexpr int PIXELS = 1, C = {m + n};",
           "static constexpr int64_t LO = -128, HI = 127;", *leaky_cfg(leaky),
           f"struct in0 {{ using in_t = {mt}; static constexpr int C = {m}, OFFSET = 0, SHIFT = {ms}; }};",
           f"struct in1 {{ using in_t = {vt}; static constexpr int C = {n}, OFFSET = {m}, SHIFT = {vs}; }};"]
    call = ("fpgagen_nn::concat_input_gather<cfg, cfg::in0>(x0, y, INDEX); "
            "fpgagen_nn::concat_input<cfg, cfg::in1>(x1, y);")
    return KernelCase(name, cfg, call, [(mt, hwc(fm)), (vt, vec)], "int8_t", want, [("uint16_t", "INDEX", index)],
                      plain=k.concat([flat, vec], (ms, vs), -128, 127))


def resize_kernel_case(name, rng, ctype, c, h, w, factors) -> KernelCase:
    x = samples_of(ctype, c * h * w, rng).reshape(-1, c, h, w)
    want = resize_nearest(x, factors)
    cfg = [f"using in_t = {ctype};", f"using out_t = {ctype};",
           f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w}, FH = {factors[0]}, FW = {factors[1]};",
           f"static constexpr int OUT_H = {h * factors[0]}, OUT_W = {w * factors[1]};"]
    return KernelCase(name, cfg, "fpgagen_nn::resize_nearest<cfg>(x0, y);", [(ctype, hwc(x))], ctype, hwc(want))


def pad_kernel_case(name, rng, ctype, c, h, w, pads) -> KernelCase:
    x = samples_of(ctype, c * h * w, rng).reshape(-1, c, h, w)
    want = pad_zeros(x, pads)
    top, left, bottom, right = pads
    cfg = [f"using in_t = {ctype};", f"using out_t = {ctype};",
           f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};",
           f"static constexpr int PAD_TOP = {top}, PAD_LEFT = {left}, PAD_BOTTOM = {bottom}, PAD_RIGHT = {right};",
           f"static constexpr int OUT_H = {h + top + bottom}, OUT_W = {w + left + right};"]
    return KernelCase(name, cfg, "fpgagen_nn::pad<cfg>(x0, y);", [(ctype, hwc(x))], ctype, hwc(want))


def kernel_cases() -> list[KernelCase]:
    rng = np.random.default_rng(2026)
    cases = []
    a01, a025, am05, a15, a001 = LEAKIES[:5]
    # fused LeakyRelu in every requantizing kernel
    for i, leaky in enumerate(LEAKIES):
        in_t = ("int8_t", "uint8_t")[i % 2]
        cases.append(conv_kernel_case(f"conv_leaky{i}", rng, in_t, 3, 6, 5, 4, 3, 1 + i % 2,
                                      ((1, 1, 1, 1), (0, 1, 2, 0))[i % 2], 1, leaky, hi=(None, 90)[i % 3 == 2]))
        cases.append(dense_kernel_case(f"dense_leaky{i}", rng, in_t, "int8_t", "int32_t", "int8_t", 13, 6,
                                       (1, 3, 6)[i % 3], (1, 13)[i % 2], leaky))
        cases.append(avgpool_kernel_case(f"avgpool_leaky{i}", rng, 2, 6, 5, 3, 1 + i % 2, (1, 1, 1, 1), i % 2 == 1,
                                         leaky))
        cases.append(gap_kernel_case(f"gap_leaky{i}", rng, ("int8_t", "int16_t")[i % 2], 3, 5, 4, leaky))
        cases.append(add_kernel_case(f"add_leaky{i}", rng, "int8_t", ("uint8_t", "int8_t")[i % 2], 30,
                                     ((0, 2), (3, 0))[i % 2], (1, 2, 3)[i % 3], leaky, hi=(127, 100)[i % 2]))
    cases += [
        conv_kernel_case("conv_depthwise_leaky", rng, "int8_t", 4, 7, 6, 4, 3, 2, (1, 1, 1, 1), 4, am05),
        conv_kernel_case("conv_noleaky", rng, "uint8_t", 3, 5, 5, 2, 3, 1, (1, 1, 1, 1), 1, None),
        # 16-bit inputs and weights: int64_t accumulator, acc * ALPHA in int64_t
        dense_kernel_case("dense_wide_leaky", rng, "int16_t", "int16_t", "int64_t", "int16_t", 9, 4, 2, 3, a001),
        dense_kernel_case("dense_wide_neg", rng, "int16_t", "int16_t", "int64_t", "int16_t", 9, 4, 4, 1, am05),
        # left shifts on both paths (SHIFT + ALPHA_FRAC <= 0)
        dense_kernel_case("dense_leftshift_leaky", rng, "int8_t", "int8_t", "int32_t", "int16_t", 3, 4, 1, 1,
                          (150, -1), shift=-2, small=True),
        dense_kernel_case("dense_leftshift_a15", rng, "int8_t", "int8_t", "int32_t", "int16_t", 2, 3, 3, 2,
                          a15, shift=-7, small=True),
    ]
    # standalone LeakyRelu: input types, shifts (<= 0 too), slopes, output types, a narrowed HI
    for i, leaky in enumerate(LEAKIES):
        for j, (in_t, out_t, shift) in enumerate((("int8_t", "int8_t", 0), ("uint8_t", "int8_t", 1),
                                                  ("int8_t", "int8_t", -2), ("int16_t", "int8_t", 7),
                                                  ("int8_t", "int16_t", -9), ("int8_t", "int8_t", 3))):
            cases.append(leakyrelu_kernel_case(f"leakyrelu_{i}_{j}", rng, in_t, out_t, 17, shift, leaky,
                                               hi=100 if j == 5 else None))
    # no slope: a standalone ReLU (LO = 0) or Clip that no layer could take
    cases += [leakyrelu_kernel_case("leakyrelu_relu", rng, "int8_t", "uint8_t", 17, -1, None),
              leakyrelu_kernel_case("leakyrelu_clip", rng, "int16_t", "int8_t", 17, 4, None, hi=50)]
    # concat: 2 and 3 inputs, mixed signedness and widths, shifts <= 0, the same tensor twice, vectors
    cases += [
        concat_kernel_case("concat2", rng, [("int8_t", 3, 1), ("int8_t", 2, 0)], (4, 5), None),
        concat_kernel_case("concat2_relu", rng, [("int8_t", 3, 2), ("uint8_t", 2, 1)], (3, 3), None, lo=0),
        concat_kernel_case("concat3_mixed", rng, [("uint8_t", 2, 1), ("int8_t", 3, -1), ("int16_t", 1, 8)],
                           (3, 4), None),
        concat_kernel_case("concat3_leaky", rng, [("int8_t", 1, 0), ("uint8_t", 4, 2), ("int8_t", 2, -2)],
                           (2, 3), a01),
        concat_kernel_case("concat3_leaky_neg", rng, [("int16_t", 2, 9), ("int8_t", 2, 0), ("uint8_t", 1, 1)],
                           (3, 2), am05, hi=90),
        concat_kernel_case("concat_same_twice", rng, [("int8_t", 3, 0), ("int8_t", 3, 0)], (3, 4), None, same=True),
        concat_kernel_case("concat_same_twice_leaky", rng, [("int8_t", 2, 1), ("int8_t", 2, 1)], (2, 2), a15,
                           same=True),
        concat_kernel_case("concat_vectors", rng, [("int8_t", 7, -1), ("int8_t", 5, 1), ("uint8_t", 3, 0)],
                           (1, 1), a025),
        concat_kernel_case("concat_leftshift_leaky", rng, [("int8_t", 2, -3), ("int8_t", 2, -8)], (2, 2),
                           (150, -1)),
        concat_gather_kernel_case("concat_gather", rng, ("int8_t", (3, 2, 4), 1), ("uint8_t", 5, 0), None),
        concat_gather_kernel_case("concat_gather_leaky", rng, ("uint8_t", (2, 3, 3), -1), ("int16_t", 4, 8), a01),
    ]
    for i, (c, h, w, f) in enumerate(((1, 1, 1, (1, 1)), (3, 4, 5, (2, 2)), (2, 3, 3, (3, 1)), (2, 2, 3, (1, 4)),
                                      (4, 3, 2, (2, 3)))):
        cases.append(resize_kernel_case(f"resize_{i}", rng, ("int8_t", "uint8_t", "int16_t")[i % 3], c, h, w, f))
    for i, (c, h, w, pads) in enumerate(((2, 3, 3, (0, 0, 0, 0)), (3, 4, 5, (1, 1, 1, 1)), (2, 3, 4, (0, 2, 3, 1)),
                                         (1, 2, 2, (2, 0, 0, 0)), (4, 1, 3, (0, 0, 2, 5)))):
        cases.append(pad_kernel_case(f"pad_{i}", rng, ("uint8_t", "int8_t", "int16_t")[i % 3], c, h, w, pads))
    return cases


KERNEL_CASES = kernel_cases()

# requantize_leaky: accumulator types (negative values kept where acc * ALPHA fits int64_t), shifts, slopes
RQL_ACCS = (("int16_t", 16), ("int32_t", 32), ("int64_t", 63))


def rql_values(bits: int) -> list[int]:
    """Accumulators of ``bits``; in int64_t the negative ones (which are multiplied by ALPHA) above
    -2**54, the positive ones up to 2**62 - 1 (never multiplied)."""
    return [v for v in rq_values(bits) if bits < 63 or v >= -2**54]
RQL_SHIFTS = (-12, -3, 0, 1, 4, 11, 20, 33, 50)
RQL_RANGES = (("int8_t", -128, 127), ("int16_t", -32768, 1000))


def rql_jobs():
    """Every combination rounding half away from zero; every other one also half to even."""
    jobs = list(itertools.product(RQL_ACCS, RQL_SHIFTS, LEAKIES, RQL_RANGES))
    for (acc_t, bits), shift, leaky, (out_t, lo, hi) in jobs:
        yield acc_t, bits, shift, leaky, out_t, lo, hi, False
    for (acc_t, bits), shift, leaky, (out_t, lo, hi) in jobs[::2]:
        yield acc_t, bits, shift, leaky, out_t, lo, hi, True


def kernel_driver_source(cases: list[KernelCase]) -> str:
    lines = ['#include <cstdint>', '#include <cstdio>', '', '#include "fpgagen_nn.h"', '',
             "template <typename T>",
             "void print_row(const char* name, const T* y, int n) {",
             "    std::printf(\"%s\", name);",
             "    for (int i = 0; i < n; ++i) std::printf(\" %lld\", static_cast<long long>(y[i]));",
             "    std::printf(\"\\n\");",
             "}", "",
             "template <int S, int64_t LO, int64_t HI, typename Out, int A, int F, bool E, typename Acc, int N>",
             "void rql(const char* tag, const long long (&v)[N]) {",
             "    std::printf(\"%s\", tag);",
             "    for (int i = 0; i < N; ++i)",
             "        std::printf(\" %lld\", static_cast<long long>(",
             "            fpgagen_nn::requantize_leaky<S, LO, HI, Out, A, F, E>(static_cast<Acc>(v[i]))));",
             "    std::printf(\"\\n\");",
             "}", ""]
    for acc_t, bits in RQL_ACCS:
        lines.append(f"static const long long RQL_{bits}[] = {{{', '.join(f'{v}LL' for v in rql_values(bits))}}};")
    for n, case in enumerate(cases):
        samples = len(case.want)
        lines += ["", f"namespace kc{n} {{  // {case.name}", "struct cfg {"]
        lines += [f"    {line}" for line in case.cfg]
        lines.append("};")
        for ctype, cname, values in case.consts:
            dims = "".join(f"[{d}]" for d in np.shape(values))
            lines.append(f"static const {ctype} {cname}{dims} =\n{hls.c_array(np.asarray(values))};")
        for i, (ctype, values) in enumerate(case.inputs):
            lines.append(f"static const {ctype} X{i}[{samples}][{values.shape[1]}] =\n{hls.c_array(values)};")
        lines += ["void run() {", f"    static {case.out_t} y[{case.want.shape[1]}];",
                  f"    for (int s = 0; s < {samples}; ++s) {{"]
        lines += [f"        const {ctype}* x{i} = X{i}[s];" for i, (ctype, _) in enumerate(case.inputs)]
        lines += [f"        {case.call}", f"        print_row(\"{case.name}\", y, {case.want.shape[1]});", "    }",
                  "}", f"}}  // namespace kc{n}"]
    lines += ["", "int main() {"]
    lines += [f"    kc{n}::run();" for n in range(len(cases))]
    for n, (acc_t, bits, shift, (a, f), out_t, lo, hi, even) in enumerate(rql_jobs()):
        lines.append(f"    rql<{shift}, {lo}, {hi}, {out_t}, {a}, {f}, {str(even).lower()}, {acc_t}>(\"rql{n}\", "
                     f"RQL_{bits});")
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def kernel_sweep(tmp_path_factory):
    """Compile and run the direct kernel cases once: {tag: [rows of ints]}."""
    root = tmp_path_factory.mktemp("hls_newops_kernels")
    (root / "driver.cpp").write_text(kernel_driver_source(KERNEL_CASES))
    for name in hls.LIBRARY:
        (root / name).write_text(read_library_file(f"hls/{name}"))
    cmd = ["g++", *hls.CXXFLAGS, *UBSAN, f"-I{root}", "-o", str(root / "driver"), str(root / "driver.cpp")]
    comp = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert comp.returncode == 0, comp.stderr[-4000:]
    run = subprocess.run([str(root / "driver")], capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    by_tag = tagged_rows(run.stdout)
    by_tag["_build"] = (root, cmd, run.stdout)
    return by_tag


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.name)
def test_new_kernel_matches_golden(kernel_sweep, case):
    assert kernel_sweep[case.name] == case.want.tolist()


def test_new_kernel_cases_reach_both_paths_and_the_bounds():
    """The sweep is not vacuous: every case with a LeakyRelu takes both paths (some outputs
    differ from the same kernel's without it, some nonzero ones agree), the MAC and pool cases
    reach both bounds, and the slopes are SPEC.md's. (Unsigned-only inputs of a standalone
    leakyrelu are never negative: they check that the positive path alone is right.)"""
    for case in KERNEL_CASES:
        leaky = any(line.startswith("static constexpr bool LEAKY") for line in case.cfg)
        if leaky and any(ctype.startswith("int") for ctype, _ in case.inputs):  # unsigned: never negative
            assert (case.want != case.plain).any(), case.name
            assert ((case.want == case.plain) & (case.want != 0)).any(), case.name
    leaky = [c for c in KERNEL_CASES if c.name.startswith(("conv_leaky", "dense_leaky", "avgpool_leaky"))]
    assert any((c.want == -128).any() for c in leaky) and any((c.want == 127).any() for c in leaky)
    assert {leaky_int(a) for a in ALPHAS} == {(205, 11), (128, 9), (-128, 8), (192, 7), (164, 14)}


def test_requantize_leaky_matches_reference(kernel_sweep):
    for n, (acc_t, bits, shift, leaky, out_t, lo, hi, even) in enumerate(rql_jobs()):
        vals = rql_values(bits)
        got = kernel_sweep[f"rql{n}"][0]
        want = [ref_leaky(v, shift, lo, hi, leaky, even) for v in vals]
        assert got == want, (acc_t, shift, leaky, out_t, lo, hi, even)
        # the golden kernel where its int64 arithmetic is valid (no overflow of a left shift)
        a, frac = leaky
        ok = [i for i, v in enumerate(vals)
              if abs(v * (a if v < 0 else 1)) < 2 ** (62 + min(0, shift + (frac if v < 0 else 0)))]
        gold = k.requantize(np.array([vals[i] for i in ok], dtype=np.int64), shift, lo, hi, leaky,
                            "nearest-even" if even else "nearest-away")
        assert gold.tolist() == [want[i] for i in ok], (acc_t, shift, leaky, even)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
