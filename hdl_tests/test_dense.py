"""fpgagen_dense against fpgagen.golden.kernels dense_acc + requantize, in one Verilator build.

Each case is a dense QLayer (hand-made with the lowering's accumulator-width rule, or lowered
from a small float MLP) built by fpgagen.backends.rtl.dense.dense_instance, whose ``.mem`` ROM
files go into the simulation directory; a generated wrapper holds one fpgagen_dense per case on
its own streams. The sweep covers odd sizes (7x5, 64x10, 12x6, 3x12, 5x3, 1x1), PE and SIMD of
1, of the full size and in between (compute-, input- and output-bound cases), signed and
unsigned inputs at their extremes (-128/127, 0/255; one 16-bit input with 4-bit weights),
weight rows of all -128 and all 127, large positive and negative biases, right and left
shifts, ReLU / Clip / 16-bit outputs, fused LeakyRelus (0.1, and -0.5 with a left shift), and weights
given in a permuted stream order; and the products two per fpgagen_mul8x8x2 (``DSP_PAIR``, the
iCE40 SB_MAC16's 8x8 mode: the ``x2*`` cases, odd and even product counts, u8/s8/u4/s4 inputs,
4-bit weights, per-channel formats, a LeakyRelu, a permuted stream, a lowered layer). All cases
stream several frames back to back: with no pauses (the measured cycles per frame must be
within 10 % of dense_cycles), with random idle cycles and random back-pressure, with a nearly
stopped sink and with nearly stopped sources.
"""

from __future__ import annotations

import numpy as np
import pytest

import rtlsim
from fpgagen.backends.rtl import dense as rtl_dense
from fpgagen.errors import BackendError
from fpgagen.fixed import signed_width
from fpgagen.golden.kernels import dense_acc, requantize
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops._mac import set_mac_widths
from fpgagen.ops.activation import LeakyInt
from fpgagen.quant.lower import clamp_bounds

TOP = "dense_sweep"
N_FRAMES = 7


def mac_bounds(w: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[int, int]:
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, w, 0).sum(axis=1)
    hi = pos * x_fmt.max_int + neg * x_fmt.min_int + bias
    lo = pos * x_fmt.min_int + neg * x_fmt.max_int + bias
    return int(lo.min()), int(hi.max())


def dense_graph(n_in: int, n_out: int, x_fmt: str, out_word: int, out_signed: bool, activation=None,
                shift: int | None = None, w_range=(-128, 127), big_bias: bool = False, seed: int = 0,
                name: str = "fc", w_frac: int = 6, w_word: int = 8, leaky=None, rounding="nearest-away") -> QGraph:
    """A one-layer QGraph: random int8 weights with rows of all -128 / all 127, biases at the
    accumulator frac, shift chosen so the outputs spread over the output range (and saturate)."""
    rng = np.random.default_rng(seed)
    xf, wf = Format.parse(x_fmt), Format(True, w_word, w_frac)
    w = rng.integers(w_range[0], w_range[1] + 1, size=(n_out, n_in))
    w[0] = -128 if w_range[0] == -128 else w_range[0]
    if n_out > 1:
        w[1] = w_range[1]
    span = max(abs(w_range[0]), w_range[1]) * max(abs(xf.min_int), xf.max_int) * n_in
    bias = rng.integers(-span // 8 - 1, span // 8 + 1, size=n_out)
    if big_bias:
        bias[0] = span          # large positive on the all -128 row
        bias[-1] = -span        # large negative
    lo, hi = mac_bounds(w, bias, xf)
    typical = np.abs(dense_acc(rng.integers(xf.min_int, xf.max_int + 1, size=(16, n_in)), w, bias))
    if shift is None:
        shift = max(1, int(np.percentile(typical, 75)).bit_length() - (out_word - 1))
    acc_frac = xf.frac + wf.frac
    y_fmt = Format(out_signed, out_word, acc_frac - shift)
    layer = QLayer(name, "dense", ["x"], "y", [xf], y_fmt, activation=activation, weight=w, w_fmt=wf,
                   bias=bias, b_fmt=Format(True, 16, acc_frac), acc_frac=acc_frac,
                   acc_width=signed_width(lo, hi), shift=shift, leaky=None if leaky is None else LeakyInt(*leaky),
                   rounding=rounding)
    layer.lo, layer.hi = clamp_bounds(y_fmt, activation)
    return QGraph(f"dense_{name}", "x", "y", [layer], {"x": (n_in,), "y": (n_out,)}, {"x": xf, "y": y_fmt})


def per_channel(q: QGraph, spread: int, seed: int, name: str = "fc") -> QGraph:
    """Layer ``name`` with per-channel weight formats: output channel c's shift ``s_c = shift - d_c``
    (``d_c`` in 0..spread, some channel 0 and some ``spread``), its weights' format ``d_c`` bits coarser
    than ``w_fmt``; the accumulator widths recomputed (the lowering's rule)."""
    layer = q.layer(name)
    d = np.random.default_rng(seed).integers(0, spread + 1, len(layer.weight))
    d[0], d[-1] = spread, 0
    layer.shifts = np.int64(layer.shift) - d
    layer.w_fmts = tuple(Format(layer.w_fmt.signed, layer.w_fmt.word, layer.w_fmt.frac - int(v)) for v in d)
    set_mac_widths(layer)
    return q


def lowered_mlp(per_channel: bool = False) -> QGraph:
    """A 16 -> 12 (ReLU) -> 10 MLP as the real calibration and lowering produce it (with
    ``per_channel``: each output channel's weights scaled by its own power of two first, and
    per-channel weight formats)."""
    from fpgagen.ir.graph import Graph, Node
    from fpgagen.quant.calibrate import calibrate
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower

    rng = np.random.default_rng(9)
    graph = Graph("mlp", "x", "y", [
        Node("fc1", "dense", ["x"], "h", None, rng.normal(0, 0.4, (12, 16)), rng.normal(0, 0.2, 12), "relu"),
        Node("fc2", "dense", ["h"], "y", None, rng.normal(0, 0.4, (10, 12)), rng.normal(0, 0.2, 10)),
    ], {"x": (16,), "h": (12,), "y": (10,)}).validate()
    x = rng.uniform(-1, 1, (64, 16)).astype(np.float32)
    if per_channel:
        for node in graph.nodes:
            node.weight = node.weight * np.exp2(rng.integers(-5, 3, len(node.weight)))[:, None]
    q, _ = lower(graph, choose_formats(calibrate(graph, x, progress=False), QuantOptions(per_channel=per_channel)))
    assert all(layer.per_channel for layer in q.layers) or not per_channel
    return q


# name -> (QGraph, layer name, PE, SIMD, stream permutation seed or None)
def cases() -> dict:
    mlp, mlp_pc = lowered_mlp(), lowered_mlp(per_channel=True)
    return {
        "a": (dense_graph(7, 5, "s8.4", 8, True, seed=1), "fc", 1, 1, None),
        "b": (dense_graph(7, 5, "u8.4", 8, True, "relu", seed=2), "fc", 5, 7, None),
        "c": (dense_graph(7, 5, "s8.2", 8, False, "relu", big_bias=True, seed=3), "fc", 1, 7, None),
        "d": (dense_graph(7, 5, "u8.0", 8, True, seed=4), "fc", 5, 1, None),
        "e": (dense_graph(64, 10, "s8.5", 8, True, big_bias=True, seed=5), "fc", 1, 1, None),
        "f": (dense_graph(64, 10, "u8.8", 8, True, big_bias=True, seed=6), "fc", 2, 4, None),
        "g": (dense_graph(64, 10, "s8.3", 8, False, ("clip", 0.0, 6.0), seed=7, w_frac=12), "fc", 5, 16, None),
        "h": (dense_graph(64, 10, "u8.2", 8, True, seed=8), "fc", 10, 8, None),
        "i": (dense_graph(12, 6, "s8.1", 16, True, shift=-1, w_range=(-16, 16), seed=9), "fc", 3, 2, None),
        "j": (dense_graph(1, 1, "s8.0", 8, True, big_bias=True, seed=10), "fc", 1, 1, None),
        "k": (dense_graph(6, 4, "s8.3", 8, True, seed=11), "fc", 2, 3, 5),
        "l": (dense_graph(16, 4, "u8.3", 8, True, seed=12), "fc", 1, 4, None),   # compute == input
        "o": (dense_graph(3, 12, "s8.3", 8, True, "relu", seed=13), "fc", 12, 3, None),  # output-bound
        "p": (dense_graph(3, 12, "u8.3", 8, True, seed=14), "fc", 4, 1, None),
        "q": (dense_graph(5, 3, "s16.8", 16, True, w_range=(-8, 7), w_word=4, seed=15), "fc", 3, 5, None),
        "lk": (dense_graph(12, 6, "s8.3", 8, True, seed=16, leaky=(205, 11)), "fc", 3, 4, None),  # LeakyRelu 0.1
        "lkn": (dense_graph(7, 4, "s8.3", 16, True, shift=-2, w_range=(-16, 16), seed=17, leaky=(-128, 8)),
                "fc", 2, 7, None),  # LeakyRelu -0.5, left shift: SHIFT + Fal = 6
        "ev": (dense_graph(12, 6, "s8.3", 8, True, seed=18, rounding="nearest-even"), "fc", 3, 4, None),  # ROUND_EVEN
        "evl": (dense_graph(12, 6, "s8.3", 8, True, seed=19, leaky=(205, 11), rounding="nearest-even"), "fc", 2, 3,
                None),
        "m1": (mlp, "fc1", 4, 4, None),
        "m2": (mlp, "fc2", 2, 3, None),
        # per-channel weight formats: a pre-alignment per output channel, PE lanes over several
        # channel groups, right, mixed and left shifts, saturation, a LeakyRelu, lowered layers
        "pc1": (per_channel(dense_graph(7, 5, "s8.4", 8, True, seed=31), 3, 1), "fc", 5, 7, None),
        "pc2": (per_channel(dense_graph(64, 10, "u8.8", 8, True, big_bias=True, seed=32), 8, 2), "fc", 2, 4, None),
        "pc3": (per_channel(dense_graph(12, 6, "s8.1", 16, True, shift=1, w_range=(-16, 16), seed=33), 4, 3),
                "fc", 3, 2, None),
        "pc4": (per_channel(dense_graph(6, 4, "s8.3", 8, False, "relu", seed=34), 5, 4), "fc", 1, 3, 7),
        "pclk": (per_channel(dense_graph(12, 6, "s8.3", 8, True, seed=35, leaky=(205, 11)), 6, 5), "fc", 3, 4, None),
        "pcm1": (mlp_pc, "fc1", 4, 4, None),
        "pcm2": (mlp_pc, "fc2", 5, 3, None),
        # DSP_PAIR: two products per fpgagen_mul8x8x2 (the iCE40 SB_MAC16's 8x8 mode): an odd
        # number of products (the last pair half empty, one product alone), u8 x s8 (255 x -128)
        # and s8 x s8 (-128 x -128) extremes, 4-bit inputs and weights (operands extended to 8
        # bits, a leaf narrower than 16), unsigned 4-bit inputs, per-channel formats, a LeakyRelu,
        # a permuted stream, a lowered layer
        "x2a": (dense_graph(7, 5, "s8.4", 8, True, seed=41), "fc", 5, 7, None, True),
        "x2b": (dense_graph(7, 5, "u8.4", 8, True, "relu", seed=42), "fc", 1, 7, None, True),
        "x2c": (dense_graph(64, 10, "u8.8", 8, True, big_bias=True, seed=43), "fc", 2, 4, None, True),
        "x2d": (dense_graph(1, 1, "s8.0", 8, True, big_bias=True, seed=44), "fc", 1, 1, None, True),
        "x2e": (dense_graph(3, 12, "u8.3", 8, True, seed=45), "fc", 4, 1, None, True),
        "x2f": (dense_graph(5, 3, "s4.2", 8, True, w_range=(-8, 7), w_word=4, seed=46), "fc", 3, 5, None, True),
        "x2g": (dense_graph(6, 4, "u4.0", 8, True, seed=47), "fc", 2, 3, 5, True),
        "x2h": (per_channel(dense_graph(12, 6, "s8.3", 8, True, seed=48, leaky=(205, 11)), 6, 5), "fc", 3, 4,
                None, True),
        "x2i": (mlp, "fc1", 4, 4, None, True),
        # wide streams (EW_IN dividing SIMD in, EW_OUT dividing PE out): stream-bound ones (64
        # inputs / 2 per beat, 24 outputs / 4 per beat against fewer compute cycles), a permuted
        # stream, pairs, the widest (8 of 8 bits)
        "ewa": (dense_graph(64, 4, "s8.4", 8, True, seed=51), "fc", 4, 16, None, False, 2, 1),
        "ewb": (dense_graph(8, 24, "u8.4", 8, True, "relu", seed=52), "fc", 12, 8, None, False, 4, 4),
        "ewc": (dense_graph(12, 6, "s8.3", 8, True, seed=53), "fc", 6, 4, 7, True, 2, 3),
        "ewd": (dense_graph(16, 8, "s8.3", 8, True, seed=54), "fc", 8, 8, None, False, 8, 8),
        # DSP_PAIR 2 (the 7-series DSP48E1: neurons 2q and 2q+1 share their input, one 25 x 18
        # multiplication of it and both weights packed): s8 and u8 inputs at the extremes, 4-bit
        # operands, per-channel formats with a LeakyRelu, a permuted stream, wide streams
        "xsa": (dense_graph(7, 6, "s8.4", 8, True, seed=61), "fc", 6, 7, None, 2),
        "xsb": (dense_graph(8, 4, "u8.4", 8, True, "relu", seed=62), "fc", 2, 4, None, 2),
        "xsc": (dense_graph(64, 10, "u8.8", 8, True, big_bias=True, seed=63), "fc", 2, 4, None, 2),
        "xsd": (dense_graph(5, 4, "s4.2", 8, True, w_range=(-8, 7), w_word=4, seed=64), "fc", 4, 5, None, 2),
        "xse": (per_channel(dense_graph(12, 6, "s8.3", 8, True, seed=65, leaky=(205, 11)), 6, 5), "fc", 2, 4, 9, 2),
        "xsf": (dense_graph(16, 8, "s8.3", 8, True, seed=66), "fc", 8, 8, None, 2, 4, 4),
    }


def input_frames(fmt: Format, n_in: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.integers(fmt.min_int, fmt.max_int + 1, size=(n_frames, n_in))
    x[0], x[1] = fmt.max_int, fmt.min_int
    x[2, 0::2], x[2, 1::2] = fmt.max_int, fmt.min_int
    return x


def build(n_frames: int = N_FRAMES):
    """Wrapper instances, the stream case and the ROM files (name -> text)."""
    rng = np.random.default_rng(21)
    instances, inputs, outputs, cycles, mems = [], {}, {}, {}, {}
    for name, (q, lname, pe, simd, perm_seed, *rest) in cases().items():
        pairs, ew_in, ew_out = (list(rest) + [False, 1, 1][len(rest):])[:3]
        layer = q.layer(lname)
        n_out, n_in = layer.weight.shape
        x = input_frames(layer.in_fmts[0], n_in, n_frames, rng)
        y = requantize(dense_acc(x, layer.weight, layer.bias), layer.channel_shifts, layer.lo, layer.hi, layer.leaky,
                       layer.rounding)
        order, stream_w = np.arange(n_in), None
        if perm_seed is not None:  # the input stream carries x[order]; the columns follow
            order = np.random.default_rng(perm_seed).permutation(n_in)
            stream_w = layer.weight[:, order]
        rtl = rtl_dense.dense_instance(q, layer, pe, simd, stream_w, prefix=f"{name}_{lname}", pairs=int(pairs),
                                       ew_in=ew_in, ew_out=ew_out)
        assert rtl.params.get("DSP_PAIR", 0) == int(pairs)
        assert rtl.cycles == rtl_dense.dense_cycles(n_in, n_out, pe, simd, ew_in, ew_out)
        mems.update(rtl.mems)
        wi, wo = rtl.params["IN_WIDTH"], rtl.params["OUT_WIDTH"]
        instances.append(rtlsim.stream_instance(name, rtl, wi, wo))
        inputs[f"{name}_s_axis"] = [x[:, order].tolist(), wi, ew_in]
        outputs[f"{name}_m_axis"] = [y.tolist(), wo, bool(layer.lo < 0), ew_out]
        cycles[f"{name}_m_axis"] = rtl.cycles
    case = {"inputs": inputs, "outputs": outputs, "cycles": cycles, "frames": n_frames, "seed": 2}
    return instances, case, mems


def sources():
    return [rtlsim.LIB / f for f in ("fpgagen_dense.v", "fpgagen_mac_out.v", "fpgagen_requant_lane.v", "fpgagen_requant.v", "fpgagen_leaky_pre.v",
                                    "fpgagen_fifo.v", "fpgagen_mul8x8x2.v")]


# ---- cocotb side: every stream, four pause phases ------------------------------------------
stream = rtlsim.phase_tests()


# ---- pytest side -------------------------------------------------------------------------
def test_dense_sweep(tmp_path):
    """Every case bit-exact under the four pause phases, and its measured cycles per frame (frames
    back to back, free-running sink) equal to the analytic max(compute, inputs / EW_IN,
    outputs / EW_OUT) exactly: the pairs and the wide streams included."""
    instances, case, mems = build()
    measured = rtlsim.run_sweep(tmp_path, TOP, instances, case, sources(), "test_dense", mems,
                                comment="fpgagen_dense cases of test_dense.py")
    assert measured == case["cycles"]


def test_stimulus_reaches_the_extremes():
    """The golden outputs of the sweep saturate at both ends where the bounds allow."""
    _, case, _ = build()
    named = cases()
    both = 0
    for p, (frames, *_) in case["outputs"].items():
        q, lname = named[p[: -len("_m_axis")]][:2]
        layer = q.layer(lname)
        flat = {v for f in frames for v in f}
        both += layer.lo in flat and layer.hi in flat
        assert layer.lo in flat or layer.hi in flat, p
    assert both >= 8


def test_lint(tmp_path):
    instances, _, _ = build(n_frames=3)
    rtlsim.assert_lint_clean(TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_iverilog(tmp_path):
    instances, _, _ = build(n_frames=3)
    rtlsim.assert_iverilog_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)])


def test_yosys(tmp_path):
    instances, _, mems = build(n_frames=3)
    rtlsim.assert_yosys_clean(tmp_path, TOP, [*sources(), rtlsim.write_wrapper(tmp_path, TOP, instances)], mems=mems)


def test_yosys_memories(tmp_path):
    """Yosys infers the weight ROM, the bias ROM and the input double buffer as memories."""
    q, lname, pe, simd, _ = cases()["f"]
    rtl = rtl_dense.dense_instance(q, q.layer(lname), pe, simd, prefix="f")
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_dense", sources(), rtl.params, rtl.mems, memories=3)


def test_rom_layout():
    """Weight line g*NK + k holds neurons g*PE+p x inputs k*SIMD+s, element p*SIMD+s at the LSB end."""
    q = dense_graph(4, 2, "s8.0", 8, True, seed=0)
    layer = q.layers[0]
    layer.weight = np.array([[1, 2, 3, 4], [-1, -2, -3, -128]])
    layer.bias = np.array([5, -6])
    rtl = rtl_dense.dense_instance(q, layer, 2, 2, prefix="t")
    w = [ln for ln in rtl.mems["t_weights.mem"].splitlines() if not ln.startswith("//")]
    b = [ln for ln in rtl.mems["t_bias.mem"].splitlines() if not ln.startswith("//")]
    assert w == ["feff0201", "80fd0403"]  # (p, s) = (1,1) (1,0) (0,1) (0,0) from the left
    assert rtl.params["BIAS_WIDTH"] == 4 and b == ["a5"]
    assert rtl.params["W_WIDTH"] == 8 and rtl.params["WEIGHT_FILE"] == "t_weights.mem"


def test_cycles():
    assert rtl_dense.dense_cycles(64, 10, 1, 1) == 640
    assert rtl_dense.dense_cycles(64, 10, 2, 4) == 80
    assert rtl_dense.dense_cycles(64, 10, 10, 64) == 64   # input-bound
    assert rtl_dense.dense_cycles(3, 12, 12, 3) == 12     # output-bound


def _graph():
    return dense_graph(7, 5, "s8.4", 8, True, seed=1)


@pytest.mark.parametrize("pe,simd,match", [
    (3, 1, r"layer 'fc' \(dense\): PE 3 must divide the layer's 5 outputs"),
    (10, 1, r"layer 'fc' \(dense\): PE 10 must divide the layer's 5 outputs"),
    (1, 2, r"layer 'fc' \(dense\): SIMD 2 must divide the layer's 7 inputs"),
    (1, 0, r"layer 'fc' \(dense\): SIMD 0 must divide the layer's 7 inputs"),
])
def test_parallelism_errors(pe, simd, match):
    q = _graph()
    with pytest.raises(BackendError, match=match):
        rtl_dense.dense_instance(q, q.layers[0], pe, simd)


@pytest.mark.parametrize("mutate,kw,match", [
    (lambda q, l: setattr(l, "op", "conv"), {}, r"layer 'fc': fpgagen_dense builds dense layers, not 'conv'"),
    (lambda q, l: setattr(l, "acc_width", 70), {}, r"layer 'fc' \(dense\): a 70-bit accumulator is wider than"),
    (lambda q, l: q.shapes.update(x=(8,)), {}, r"layer 'fc' \(dense\): 7 weight columns but the input has 8"),
    (lambda q, l: None, {"weights_in_stream_order": np.zeros((5, 6), np.int64)},
     r"layer 'fc' \(dense\): weights in stream order must have shape \(5, 7\), got \(5, 6\)"),
    (lambda q, l: setattr(l, "shift", None), {}, r"layer 'fc' \(dense\): the integer IR has no shift/lo/hi"),
    (lambda q, l: setattr(l, "bias", np.full(5, 1 << 20)), {},
     r"layer 'fc' \(dense\): bias needs 22 bits, more than the 18-bit accumulator"),
])
def test_builder_errors(mutate, kw, match):
    q = _graph()
    mutate(q, q.layers[0])
    with pytest.raises(BackendError, match=match):
        rtl_dense.dense_instance(q, q.layers[0], 1, 1, **kw)


@pytest.mark.parametrize("family, cell", [("ice40", "$__ICE40_RAM4K_")])
def test_weights_in_block_ram(tmp_path, family, cell):
    """The weight ROM is synthesised into block RAM, also when it is small enough for Yosys to
    prefer flip-flops and LUTs (a 16 -> 4 layer: 64 words of 8 bits), never into flip-flops."""
    q = dense_graph(16, 4, "u8.4", 8, False, seed=3)
    rtl = rtl_dense.dense_instance(q, q.layers[0], 1, 1, prefix="fc")
    inst = rtlsim.stream_instance("fc", rtl, 8, 8)
    log = rtlsim.synth_memory_log(tmp_path, "bram_dense", [inst], sources(), rtl.mems, family)
    assert f"mapping memory bram_dense.u_fc.wrom via {cell}" in log, log
    assert "FF mapping for memory bram_dense.u_fc.wrom" not in log, log
