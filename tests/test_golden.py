"""The integer golden model against a plain-Python reference of SPEC.md section 3.

The reference loops over Python integers (no NumPy arithmetic, no BLAS) and rounds with
``fractions.Fraction``, so it shares no code with the kernels it checks.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from fpgagen.golden import kernels as k
from reference import ref_requant, round_away  # noqa: F401
from fpgagen.golden.model import run_int
from fpgagen.ir.format import Format
from fpgagen.ir.graph import Graph, Node
from fpgagen.quant.calibrate import calibrate
from fpgagen.ops.pool import AvgPoolParams, Window, recip_constants
from fpgagen.quant.lower import QuantOptions, choose_formats, clamp_bounds, lower
from fpgagen.ops.pool import AvgPoolParams
from fpgagen.ops.conv import ConvParams


def ref_conv(x, w, b, kernel, stride, pads, groups):
    n, c, h, wd = x.shape
    co = w.shape[0]
    kh, kw = kernel
    sh, sw = stride
    top, left, bottom, right = pads
    oh = (h + top + bottom - kh) // sh + 1
    ow = (wd + left + right - kw) // sw + 1
    cg, og = c // groups, co // groups
    out = np.zeros((n, co, oh, ow), dtype=object)
    for s, o, i, j in itertools.product(range(n), range(co), range(oh), range(ow)):
        g = o // og
        acc = int(b[o])
        for ci, u, v in itertools.product(range(cg), range(kh), range(kw)):
            r, cc = i * sh + u - top, j * sw + v - left
            if 0 <= r < h and 0 <= cc < wd:
                acc += int(x[s, g * cg + ci, r, cc]) * int(w[o, ci, u, v])
        out[s, o, i, j] = acc
    return out


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (5, 5), (1, 3)])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 2, 0)])
def test_conv_acc_matches_python_reference(kernel, stride, pads):
    rng = np.random.default_rng(hash((kernel, stride, pads)) % 2**32)
    x = rng.integers(-128, 128, size=(2, 3, 7, 6))
    x[0, 0] = -128  # extremes of the int8 range
    x[1, 1] = 127
    w = rng.integers(-128, 128, size=(4, 3, *kernel))
    w[0] = -128
    b = rng.integers(-(2**20), 2**20, size=4)
    got = k.conv_acc(x, w, b, kernel, stride, pads, 1)
    assert got.dtype == np.int64
    assert got.tolist() == ref_conv(x, w, b, kernel, stride, pads, 1).tolist()


def test_depthwise_and_grouped_conv():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 4, 5, 5))
    for groups, co in ((4, 4), (2, 6)):
        w = rng.integers(-128, 128, size=(co, 4 // groups, 3, 3))
        b = rng.integers(-1000, 1000, size=co)
        got = k.conv_acc(x, w, b, (3, 3), (1, 1), (1, 1, 1, 1), groups)
        assert got.tolist() == ref_conv(x, w, b, (3, 3), (1, 1), (1, 1, 1, 1), groups).tolist()


def test_dense_acc_exact_beyond_float_mantissa():
    # 4096 products of 127*-128 overflow float32's 24-bit mantissa: the kernel must notice
    rng = np.random.default_rng(2)
    x = np.full((3, 4096), 127)
    x[1] = -128
    x[2] = rng.integers(-128, 128, size=4096)
    w = np.full((5, 4096), -128)
    w[1:] = rng.integers(-128, 128, size=(4, 4096))
    b = np.array([2**40, -(2**40), 0, 1, -1])
    want = [[sum(int(a) * int(c) for a, c in zip(xr, wr)) + int(bb) for wr, bb in zip(w, b)] for xr in x]
    assert k.dense_acc(x, w, b).tolist() == want


@pytest.mark.parametrize("shift", [-3, 0, 1, 2, 7, 15])
def test_requantize_matches_spec_formula(shift):
    acc = np.array([-(2**20), -129, -8, -7, -4, -3, -2, -1, 0, 1, 2, 3, 4, 7, 8, 2**20 + 3])
    acc = np.concatenate([acc, np.arange(-300, 300)])
    got = k.requantize(acc, shift, -128, 127)
    assert got.tolist() == [ref_requant(int(a), shift, -128, 127) for a in acc]
    got_u = k.requantize(acc, shift, 0, 255)  # fused ReLU into an unsigned format
    assert got_u.tolist() == [ref_requant(int(a), shift, 0, 255) for a in acc]


def test_pools_and_add():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(2, 3, 6, 5))
    x[0, 0, :2, :2] = -128
    got = k.maxpool(x, (2, 2), (2, 2), (0, 0, 0, 1))
    want = np.full((2, 3, 3, 3), -999)
    for i, j in itertools.product(range(3), range(3)):
        want[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    assert got.tolist() == want.tolist()

    recip, bits = recip_constants(np.array(9))
    got = k.avgpool(x, (3, 3), (3, 3), (0, 0, 0, 1), recip, bits, -128, 127)
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (0, 1)))
    for s, c, i, j in itertools.product(range(2), range(3), range(2), range(2)):
        total = int(xp[s, c, 3 * i:3 * i + 3, 3 * j:3 * j + 3].sum())
        assert got[s, c, i, j] == ref_requant(total * int(recip), bits, -128, 127)
        # the integer reciprocal stays within half an LSB of true division for int8 sums
        assert abs(Fraction(int(got[s, c, i, j])) - Fraction(total, 9)) <= Fraction(1, 2) + Fraction(1, 2**10)

    a = rng.integers(-128, 128, size=(4, 7))
    b = rng.integers(0, 256, size=(4, 7))
    got = k.add(a, b, [2, 0], 1, 0, 255)
    for i, j in itertools.product(range(4), range(7)):
        assert got[i, j] == ref_requant((int(a[i, j]) << 2) + int(b[i, j]), 1, 0, 255)


def test_recip_constants_round_half_away():
    recip, bits = recip_constants(np.array([1, 2, 3, 4, 6, 9]))
    assert bits == 16 + 4
    assert recip.tolist() == [round_away(Fraction(2**bits, n)) for n in (1, 2, 3, 4, 6, 9)]


def test_clamp_bounds():
    assert clamp_bounds(Format.parse("s8.3"), None) == (-128, 127)
    assert clamp_bounds(Format.parse("s8.3"), "relu") == (0, 127)
    assert clamp_bounds(Format.parse("u8.4"), ("clip", 0.0, 6.0)) == (0, 96)
    assert clamp_bounds(Format.parse("u8.6"), ("clip", 0.0, 6.0)) == (0, 255)


def small_cnn(rng) -> Graph:
    return Graph(
        "small", "x", "y",
        [
            Node("conv1", "conv", ["x"], "c1", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1),
                 rng.normal(0, 0.5, (4, 1, 3, 3)), rng.normal(0, 0.1, 4), "relu", ["Conv_0"], "Conv"),
            Node("pool1", "maxpool", ["c1"], "p1", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))),
            Node("conv2", "conv", ["p1"], "c2", ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=4),
                 rng.normal(0, 0.5, (4, 1, 3, 3)), rng.normal(0, 0.1, 4), None, ["Conv_1"], "Conv"),
            Node("res", "add", ["c2", "p1"], "r", None, activation="relu"),
            Node("avg", "avgpool", ["r"], "a", AvgPoolParams(kernel=(2, 2), stride=(1, 1), pads=(0, 0, 1, 1),
                                                    count_include_pad=False)),
            Node("gap", "gap", ["a"], "g"),
            Node("flat", "flatten", ["g"], "f"),
            Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.1, 3)),
        ],
        {"x": (1, 6, 6), "c1": (4, 6, 6), "p1": (4, 3, 3), "c2": (4, 3, 3), "r": (4, 3, 3),
         "a": (4, 3, 3), "g": (4, 1, 1), "f": (4,), "y": (3,)},
        onnx_output_shape=(3,),
    ).validate()


def test_lowered_graph_runs_per_spec_and_tracks_float():
    """Lower a small graph with every op, then re-run each layer with the Python reference."""
    rng = np.random.default_rng(4)
    graph = small_cnn(rng)
    x = rng.uniform(0, 1, (16, 1, 6, 6)).astype(np.float32)
    cal = calibrate(graph, x, batch_size=5, progress=False)
    assert cal.samples == 16
    plan = choose_formats(cal, QuantOptions(method="max"))
    q, _ = lower(graph, plan)
    xq = np.clip(np.round(x * 2**q.input_fmt.frac), 0, q.input_fmt.max_int).astype(np.int64)
    out, trace = run_int(q, xq[:2], trace=True)
    for layer in q.layers:
        assert trace[layer.output].dtype == np.int64
        fmt = q.fmts[layer.output]
        assert trace[layer.output].min() >= fmt.min_int and trace[layer.output].max() <= fmt.max_int
        if layer.op == "conv":
            a = layer.params
            acc = ref_conv(trace[layer.inputs[0]], layer.weight, layer.bias, a.kernel, a.stride, a.pads, a.groups)
            want = [ref_requant(int(v), layer.shift, layer.lo, layer.hi) for v in acc.ravel()]
            assert trace[layer.output].ravel().tolist() == want
            lo, hi = int(acc.min()), int(acc.max())
            assert -(2 ** (layer.acc_width - 1)) <= lo and hi < 2 ** (layer.acc_width - 1)
        if layer.op == "dense":
            xin = trace[layer.inputs[0]]
            want = [[ref_requant(sum(int(a) * int(w) for a, w in zip(row, wr)) + int(b), layer.shift,
                                 layer.lo, layer.hi) for wr, b in zip(layer.weight, layer.bias)] for row in xin]
            assert out.tolist() == want
    assert out.shape == (2, 3)
    assert q.layer("res").lo == 0 and q.layer("res").out_fmt.signed is False
    assert q.fmts["p1"] == q.fmts["c1"]  # max pool passes its input format through


def test_bias_alignment_spec_rule():
    """B is b re-expressed at Fa: a left shift when Fa >= Fb, else rounded half away."""
    rng = np.random.default_rng(5)
    graph = small_cnn(rng)
    x = rng.uniform(0, 1, (8, 1, 6, 6)).astype(np.float32)
    cal = calibrate(graph, x, progress=False)
    for bias_fmt in ("s8.2", "s8.12"):
        opts = QuantOptions(overrides={"conv1": {"bias": bias_fmt, "weight": "s8.6"}, "x": {"output": "u8.4"}})
        q, _ = lower(graph, choose_formats(cal, opts))
        layer = q.layer("conv1")
        assert layer.acc_frac == 10
        fb = Format.parse(bias_fmt).frac
        for bq, big_b in zip(layer.bias_q, layer.bias):
            assert big_b == round_away(Fraction(int(bq)) * Fraction(2) ** (layer.acc_frac - fb))


# -- issue 11: a clamping max pool, ceil_mode divisors, a model without layers -------------------------
def test_maxpool_with_fused_clamp():
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, size=(2, 3, 5, 5))
    x[0, 0] = -128
    x[1, 2] = 127
    plain = k.maxpool(x, (2, 2), (2, 2), (0, 0, 1, 1))
    for lo, hi in ((0, 127), (0, 40), (0, 0)):
        assert k.maxpool(x, (2, 2), (2, 2), (0, 0, 1, 1), lo, hi).tolist() == np.clip(plain, lo, hi).tolist()
    # the float-held integers of run_int's fast path give the same integers
    assert k.maxpool(x.astype(np.float32), (2, 2), (2, 2), (0, 0, 1, 1), 0, 40).astype(np.int64).tolist() == \
        np.clip(plain, 0, 40).tolist()


def ref_divisors(in_hw, kernel, stride, pads, counted):
    """Per window: the positions inside the input extended by ``counted`` (onnxruntime's count)."""
    (h, w), (kh, kw), (sh, sw), (top, left, bottom, right) = in_hw, kernel, stride, pads
    oh, ow = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    ct, cl, cb, cr = counted
    out = np.zeros((oh, ow), dtype=np.int64)
    for i, j in itertools.product(range(oh), range(ow)):
        r0, c0 = i * sh - top, j * sw - left
        rows = min(r0 + kh, h + cb) - max(r0, -ct)
        cols = min(c0 + kw, w + cr) - max(c0, -cl)
        out[i, j] = max(rows, 0) * max(cols, 0)
    return out


@pytest.mark.parametrize("counted", [(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 0, 1), "all"])
def test_avgpool_divisors(counted):
    from fpgagen.golden.windows import avgpool_divisors

    pads = (1, 1, 2, 2)  # e.g. pads 1 plus one row and column that ceil_mode added
    include = counted != (0, 0, 0, 0)
    counted = pads if counted == "all" else counted
    params = AvgPoolParams((3, 3), (2, 2), pads, include, counted if include and counted != pads else None)
    got = avgpool_divisors((6, 7), params)
    assert got.tolist() == ref_divisors((6, 7), (3, 3), (2, 2), pads, counted).tolist()
    if counted == pads:
        assert (got == 9).all()


def test_avgpool_ceil_include_pad_lowers_per_window_reciprocals():
    """count_include_pad with a partial ceil_mode window: the IR's reciprocals follow its divisor."""
    rng = np.random.default_rng(7)
    params = AvgPoolParams((3, 3), (2, 2), (1, 1, 2, 1), True, (1, 1, 1, 1))
    graph = Graph("ceil", "x", "y", [Node("avg", "avgpool", ["x"], "y", params=params)],
                  {"x": (2, 6, 7), "y": (2, 4, 4)}, onnx_output_shape=(2, 4, 4)).validate()
    x = rng.uniform(-1, 1, (8, 2, 6, 7)).astype(np.float32)
    q, _ = lower(graph, choose_formats(calibrate(graph, x, progress=False), QuantOptions(method="max")))
    layer = q.layer("avg")
    counts = ref_divisors((6, 7), (3, 3), (2, 2), (1, 1, 2, 1), (1, 1, 1, 1))
    assert sorted(set(counts.ravel().tolist())) == [6, 9]
    assert np.asarray(layer.params.recip).tolist() == recip_constants(counts)[0].tolist()
    xq = rng.integers(q.input_fmt.min_int, q.input_fmt.max_int + 1, (3, 2, 6, 7))
    xq[0] = q.input_fmt.min_int
    out = run_int(q, xq)
    xp = np.pad(xq, ((0, 0), (0, 0), (1, 2), (1, 1)))
    for s, c, i, j in itertools.product(range(3), range(2), range(4), range(4)):
        total = int(xp[s, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].sum())
        r = int(np.asarray(layer.params.recip)[i, j])
        assert out[s, c, i, j] == ref_requant(total * r, layer.shift, layer.lo, layer.hi)


def test_model_without_layers():
    graph = Graph("empty", "x", "x", [], {"x": (3, 1, 4)}, onnx_input_shape=(3, 4), onnx_output_shape=(3, 4))
    x = np.random.default_rng(8).uniform(-1, 1, (6, 3, 4)).astype(np.float32)
    q, _ = lower(graph.validate(), choose_formats(calibrate(graph, x, progress=False), QuantOptions()))
    assert q.layers == [] and q.input == q.output
    xq = np.arange(-6, 6).reshape(1, 3, 4)
    assert run_int(q, xq).tolist() == xq.tolist()


# -- the float fast path of conv/dense (kernels.FloatMac): exact at the mantissa's edge ------------------
def ref_dense(x, w, b):
    return [[sum(int(a) * int(c) for a, c in zip(row, wr)) + int(bb) for wr, bb in zip(w, b)] for row in x]


@pytest.mark.parametrize("shift, lo, hi", [(0, -(2**40), 2**40), (-1, -(2**40), 2**40), (3, 0, 2**30),
                                           (3, -(2**30), 2**30)])
def test_float_path_takes_float32_up_to_the_mantissa_edge(shift, lo, hi):
    """The bound max(sum|w| * x_max + |B|) + 2**(s-1) at 2**24 - 1 runs in float32, and the
    accumulator reaches it (odd: a float32 that rounded would lose it); two more and the kernel
    must leave float32, where plain float32 arithmetic does round."""
    x_max, fan_in, half = 255, 4, 2 ** (shift - 1) if shift > 0 else 0
    x = np.array([[255] * fan_in, [254, 255, 253, 255], [0] * fan_in])
    for extra, want in ((0, np.float32), (2, np.float64)):
        w = np.full((2, fan_in), 16384)
        edge = 2**24 - 1 + extra - half - fan_in * 255 * 16384
        b = np.array([edge, -edge])
        assert k.float_mac(w, b, x_max, shift, lo, hi).dtype == want
        want_acc = ref_dense(x, w, b)
        assert abs(want_acc[0][0]) == 2**24 - 1 + extra - half  # the edge itself is reached
        got = k.dense_requant(x.astype(np.float32), w, b, shift, lo, hi, x_max, as_float=True)
        assert got.dtype.kind == "f"
        assert got.astype(np.int64).tolist() == [[ref_requant(a, shift, lo, hi) for a in r] for r in want_acc]
        # acc + 2**(s-1) in plain float32: exact at the edge, rounded (2**24 + 1) past it
        plain = (x.astype(np.float32) @ w.T.astype(np.float32) + (b + half).astype(np.float32)).astype(np.int64)
        assert (plain.tolist() == [[a + half for a in r] for r in want_acc]) == (extra == 0)


def test_float_path_requantizer_rounding_cases():
    """Ties, negative accumulators into signed and unsigned ranges, left shifts: a 1-input dense
    layer makes the accumulator the input itself."""
    acc = np.concatenate([np.arange(-70, 71), [-(2**20) - 8, -(2**20) + 8, 2**20 - 8, 2**20 + 8]])
    x = acc.reshape(-1, 1)
    for shift in (-3, 0, 1, 2, 4, 7):
        for lo, hi in ((-128, 127), (0, 255), (0, 6), (-(2**30), 2**30)):
            mac = k.float_mac(np.ones((1, 1), np.int64), None, int(np.abs(acc).max()), shift, lo, hi)
            assert mac is not None and mac.dtype == np.float32
            got = k.dense_requant(x, np.ones((1, 1), np.int64), None, shift, lo, hi)
            assert got.dtype == np.int64
            assert got[:, 0].tolist() == [ref_requant(int(a), shift, lo, hi) for a in acc], (shift, lo, hi)


def test_dense_split_into_float32_segments_is_exact():
    """A wide dense layer whose accumulator passes 2**24 runs float32 segments summed in float64;
    accumulators far above 2**24, odd, come out exact."""
    rng = np.random.default_rng(11)
    fan_in = 3000
    w = rng.integers(-128, 128, size=(5, fan_in))
    w[0] = 127
    w[1] = -127
    b = np.array([1, -1, 12345, 0, -(2**30)])
    x = rng.integers(0, 256, size=(4, fan_in))
    x[0] = 255
    x[1, ::2] = 255
    x[1, 1::2] = 253
    segments = k._dense_segments(w, 255)
    assert segments is not None and len(segments) > 1
    assert segments[0][0] == 0 and segments[-1][1] == fan_in
    assert all(a[1] == b_[0] for a, b_ in zip(segments, segments[1:]))
    for k0, k1 in segments:  # each segment's partial sums are float32-exact
        assert 255 * int(np.abs(w[:, k0:k1]).max(axis=0).sum()) < 2**24
    want_acc = ref_dense(x, w, b)
    assert max(abs(a) for r in want_acc for a in r) > 2**26
    for shift, lo, hi in ((0, -(2**40), 2**40), (5, 0, 255), (5, -128, 127), (9, -(2**31), 2**31)):
        got = k.dense_requant(x.astype(np.float32), w, b, shift, lo, hi, 255, as_float=True)
        assert got.astype(np.int64).tolist() == [[ref_requant(a, shift, lo, hi) for a in r] for r in want_acc]


@pytest.mark.parametrize("kernel, stride, pads, groups", [
    ((3, 3), (1, 1), (0, 0, 0, 0), 1), ((1, 1), (1, 1), (0, 0, 0, 0), 1), ((1, 1), (1, 1), (0, 0, 0, 0), 2),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1), ((3, 1), (1, 2), (0, 1, 2, 0), 3), ((2, 2), (2, 2), (0, 0, 0, 0), 6)])
def test_conv_requant_float_path_matches_reference(kernel, stride, pads, groups, monkeypatch):
    """Every layout of conv_matmul (im2col chunks, the direct 1x1 read, groups, strides, pads)
    with the fused requantizer, near the float32 edge, against the Python reference."""
    rng = np.random.default_rng(hash((kernel, stride, pads, groups)) % 2**32)
    ci, co = 6, 6
    x = rng.integers(0, 256, size=(5, ci, 7, 6))
    x[0] = 255
    w = rng.integers(-128, 128, size=(co, ci // groups, *kernel))
    w[0] = 127
    bias = rng.integers(-1000, 1000, size=co)
    fan_in = w[0].size
    big = (2**24 - 1 - fan_in * 255 * 127 - 2**6) // 2  # accumulators within a factor 2 of the edge
    bias[0] = big if big > 0 else 0
    want_acc = ref_conv(x, w, bias, kernel, stride, pads, groups)
    # one sample per chunk, a few (the last chunk shorter), all at once
    for chunk_elements, (shift, lo, hi) in itertools.product(
            (1, 1000, 2**30), ((7, 0, 255), (7, -128, 127), (0, -(2**30), 2**30), (-2, 0, 2**31))):
        monkeypatch.setattr(k.win, "CONV_CHUNK_ELEMENTS", chunk_elements)
        assert k.float_mac(w, bias, 255, shift, lo, hi).dtype == np.float32
        for xin in (x, x.astype(np.float32)):
            got = k.conv_requant(xin, w, bias, kernel, stride, pads, groups, shift, lo, hi, 255, as_float=True)
            assert got.flags.c_contiguous
            want = np.vectorize(lambda a: ref_requant(int(a), shift, lo, hi))(want_acc)
            assert got.astype(np.int64).tolist() == want.tolist()


def test_maxpool_reshape_path_equals_windows():
    """stride == kernel without padding is a reshape (floor mode crops the rest)."""
    from fpgagen.golden import windows as win

    rng = np.random.default_rng(12)
    x = rng.integers(-128, 128, size=(2, 3, 7, 9))
    for kernel in ((2, 2), (3, 3), (2, 3), (1, 1)):
        got = win.window_max(x, kernel, kernel, (0, 0, 0, 0), -(2**63))
        assert got.tolist() == win.windows(x, kernel, kernel, (0, 0, 0, 0)).max(axis=(-1, -2)).tolist()
        xf = x.astype(np.float32)
        assert np.array_equal(win.window_max(xf, kernel, kernel, (0, 0, 0, 0), -np.inf),
                              win.windows(xf, kernel, kernel, (0, 0, 0, 0)).max(axis=(-1, -2)))


@pytest.mark.parametrize("magnitude, dtype", [(2**20, np.float64), (2**27, None)])  # 27 * 2**54 < 2**63
def test_conv_requant_beyond_float32(magnitude, dtype):
    """Wider integers: the float64 form of the requantizer, then int64 when float64 cannot hold it."""
    rng = np.random.default_rng(magnitude % 1000)
    x = rng.integers(-magnitude, magnitude, size=(2, 3, 5, 5))
    w = rng.integers(-magnitude, magnitude, size=(4, 3, 3, 3))
    w[0] = magnitude - 1
    x[0] = magnitude - 1
    b = rng.integers(-1000, 1000, size=4)
    x_max = int(np.abs(x).max())
    shift, lo, hi = 20, -(2**40), 2**40
    mac = k.float_mac(w, b, x_max, shift, lo, hi)
    assert (mac is None) if dtype is None else (mac.dtype == dtype)
    acc = ref_conv(x, w, b, (3, 3), (1, 1), (1, 1, 1, 1), 1)
    want = np.vectorize(lambda a: ref_requant(int(a), shift, lo, hi))(acc)
    assert k.conv_requant(x, w, b, (3, 3), (1, 1), (1, 1, 1, 1), 1, shift, lo, hi, x_max).tolist() == want.tolist()
