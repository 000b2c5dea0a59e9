"""The HLS backend's emitters, one per op (registered into ``plan.EMITTERS``), and the rendering of the
generated files (see :mod:`fpgagen.backends.hls`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgagen.backends import hwc_order
from fpgagen.backends.hls.plan import (
    CSIM_SAMPLES,
    CXX_STD,
    CXXFLAGS,
    LIBRARY,
    Const,
    Emit,
    ModelPlan,
    _fmt_comment,
    _trivial,
    acc_ctype,
    data_ctype,
    emits,
    gather_index,
    layout_of,
    plan_model,
)
from fpgagen.ir.graph import activation_name
from fpgagen.ir.qgraph import QLayer
from fpgagen.ir.format import channel_formats_text, range_text
from fpgagen.names import quoted
from fpgagen.outdir import FileSet
from fpgagen.render import read_library_file, render
from fpgagen.targets import reference_samples
from fpgagen.version import __version__


def _shift_comment(shift: int) -> str:
    return ("requantize: round half away from zero by SHIFT bits" if shift > 0 else
            "requantize: exact left shift by -SHIFT bits")


def _requant_cfg(layer: QLayer) -> list:
    """SHIFT (unless the layer has one per input: concat), LO, HI and a fused LeakyRelu's slope."""
    narrowed = layer.activation is not None and layer.leaky is None
    lines = [] if layer.shift is None else [(f"static constexpr int SHIFT = {layer.shift};",
                                             _shift_comment(layer.shift))]
    lines += [
        (f"static constexpr int64_t LO = {layer.lo};", "saturation bounds (format range"
         + (f", narrowed by {activation_name(layer.activation)})" if narrowed else ")")),
        (f"static constexpr int64_t HI = {layer.hi};", ""),
    ]
    if layer.leaky is not None:
        alpha, frac = layer.leaky
        what = "" if layer.op == "leakyrelu" else f"fused {activation_name(layer.activation)}: "
        lines += [("static constexpr bool LEAKY = true;",
                   f"{what}a negative accumulator is requantized as acc * ALPHA by SHIFT + ALPHA_FRAC"),
                  (f"static constexpr int ALPHA = {alpha}, ALPHA_FRAC = {frac};", f"slope {alpha} * 2**-{frac}")]
    if layer.rounding == "nearest-even":
        lines += [("static constexpr bool ROUND_EVEN = true;",
                   "round half to even (the imported model's quantizer), not half away from zero")]
    return lines


def _window_cfg(a) -> list:
    (kh, kw), (sh, sw), (top, left, bottom, right) = a.kernel, a.stride, a.pads
    return [
        (f"static constexpr int KERNEL_H = {kh}, KERNEL_W = {kw};", ""),
        (f"static constexpr int STRIDE_H = {sh}, STRIDE_W = {sw};", ""),
        (f"static constexpr int PAD_TOP = {top}, PAD_LEFT = {left}, PAD_BOTTOM = {bottom}, PAD_RIGHT = {right};",
         "zero padding"),
    ]


def _mac_cfg(e: Emit, acc_t: str) -> list:
    layer = e.layer
    if not layer.per_channel:
        return [(f"using w_t = {data_ctype(layer.w_fmt)};", f"{layer.w_fmt} (weights)"),
                (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (accumulator; bias {layer.b_fmt})")]
    align = [int(d) for d in layer.align]
    return [(f"using w_t = {data_ctype(layer.w_fmt)};",
             f"{channel_formats_text(layer.w_fmts)} (per-channel weight formats)"),
            (f"using acc_t = {acc_t};", f"s{layer.align_width} (the pre-aligned accumulator at frac {layer.acc_frac}; "
                                        f"bias {layer.b_fmt} at each channel's frac)"),
            (f"static constexpr int ALIGN_MAX = {max(align)};",
             f"per-channel shifts {range_text(layer.shifts)}: channel c's accumulator is shifted left by "
             f"align(c) = SHIFT - s_c, then rounded by SHIFT"),
            (f"static int align(int c) {{ return {e.name}_A[c]; }}", f"{e.name}_A: the weights header")]


@emits("conv")
def _conv(e: Emit) -> None:
    layer, a = e.layer, e.layer.params
    ci, h, w = e.feature_map()
    co, oh, ow = e.out_shape
    groups = a.groups
    acc_t = acc_ctype(layer)
    e.cfg = e.types + _mac_cfg(e, acc_t) + [
        (f"static constexpr int IN_C = {ci}, IN_H = {h}, IN_W = {w};", ""),
        (f"static constexpr int OUT_C = {co}, OUT_H = {oh}, OUT_W = {ow};", ""),
        *_window_cfg(a),
        (f"static constexpr int GROUPS = {groups};", "depthwise" if groups == ci and groups > 1 else ""),
        (f"static constexpr int PE = {e.pe};", "output channels computed in parallel"),
        (f"static constexpr int SIMD = {e.simd};", "input channels of one tap multiplied in parallel"),
        (f"static constexpr int KU = {e.taps};", "kernel taps of one row multiplied in parallel"),
        *_requant_cfg(layer),
    ]
    e.mac_consts(np.asarray(layer.weight), acc_t, "[OUT_C][IN_C/GROUPS][KERNEL_H][KERNEL_W]")
    e.call = f"fpgagen_nn::conv2d<{e.ident}_cfg>(x, y, {e.name}_W, {e.name}_B);"
    e.read_factors = [e.taps * (e.simd if groups == 1 else e.simd * max(1, -(-e.pe // (co // groups))))]
    e.write_factor = e.pe


@emits("dense")
def _dense(e: Emit) -> None:
    layer = e.layer
    acc_t = acc_ctype(layer)
    weight = np.asarray(layer.weight)
    order = "index order"
    if not _trivial(e.in_layouts[0]):
        weight = weight[:, hwc_order(e.in_layouts[0])]
        order = f"columns in the HWC order of the flattened {list(e.in_layouts[0])} map"
    e.cfg = e.types + _mac_cfg(e, acc_t) + [
        (f"static constexpr int IN = {e.in_shape[0]}, OUT = {e.out_shape[0]};", ""),
        (f"static constexpr int PE = {e.pe};", "neurons computed in parallel"),
        (f"static constexpr int SIMD = {e.simd};", "inputs per neuron multiplied in parallel"),
        *_requant_cfg(layer),
    ]
    e.mac_consts(weight, acc_t, "[OUT][IN]", f" ({order})")
    e.call = f"fpgagen_nn::dense<{e.ident}_cfg>(x, y, {e.name}_W, {e.name}_B);"
    e.read_factors, e.write_factor = [e.simd], e.pe


@emits("maxpool", "avgpool")
def _pool(e: Emit) -> None:
    layer = e.layer
    c, h, w = e.feature_map()
    _, oh, ow = e.out_shape
    e.cfg = e.types + [
        (f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};", ""),
        (f"static constexpr int OUT_H = {oh}, OUT_W = {ow};", ""),
        *_window_cfg(layer.params),
    ]
    if layer.op == "maxpool":
        lo, hi = layer.clamp_bounds
        e.cfg += [
            (f"static constexpr int64_t LO = {lo};", "clamp bounds (" + (
                f"the format range, narrowed by a fused {activation_name(layer.activation)})"
                if layer.activation else "the format range: no clamp)")),
            (f"static constexpr int64_t HI = {hi};", ""),
        ]
        e.call = f"fpgagen_nn::maxpool<{e.ident}_cfg>(x, y);"
        return
    acc_t = acc_ctype(layer)
    recip = np.asarray(layer.params.recip, dtype=np.int64).reshape(-1)
    e.cfg += [
        (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (window sum x reciprocal)"),
        (f"static constexpr int RECIP_SIZE = {recip.size};",
         "one reciprocal per output position (real pixels per window vary)" if recip.size > 1
         else "every window counts the same pixels"),
        *_requant_cfg(layer),
    ]
    what = "per output position [OUT_H * OUT_W]" if recip.size > 1 else "of the window size"
    e.consts = [Const(f"{e.name}_RECIP", acc_t, recip,
                      f"{quoted(layer.name)} reciprocals {what}: round(2**{layer.params.recip_bits} / count)")]
    e.call = f"fpgagen_nn::avgpool<{e.ident}_cfg>(x, y, {e.name}_RECIP);"


@emits("gap")
def _gap(e: Emit) -> None:
    layer = e.layer
    c, h, w = e.feature_map()
    acc_t = acc_ctype(layer)
    e.cfg = e.types + [
        (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (sum x reciprocal)"),
        (f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};", ""),
        (f"static constexpr int64_t RECIP = {int(np.asarray(layer.params.recip).reshape(-1)[0])};",
         f"round(2**{layer.params.recip_bits} / {h * w})"),
        *_requant_cfg(layer),
    ]
    e.call = f"fpgagen_nn::gap<{e.ident}_cfg>(x, y);"


@emits("add")
def _add(e: Emit) -> None:
    layer, in_t = e.layer, e.in_t
    if len(layer.inputs) != 2:
        raise e.error(f"expected 2 inputs, got {len(layer.inputs)}")
    # the inputs may be stored in different orders (a flattened map in HWC order and a vector,
    # or two maps flattened from different shapes): b is then read through an index table
    index = gather_index(e.in_layouts[0], e.in_layouts[1])
    acc_t = acc_ctype(layer)
    e.cfg = [
        (f"using in0_t = {in_t[0]};", _fmt_comment(layer.in_fmts[0], layer.inputs[0])),
        (f"using in1_t = {in_t[1]};", _fmt_comment(layer.in_fmts[1], layer.inputs[1])),
        (f"using out_t = {e.out_t};", _fmt_comment(layer.out_fmt, layer.output)),
        (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (aligned sum)"),
        (f"static constexpr int SIZE = {e.in_size};", ""),
        (f"static constexpr int ALIGN0 = {layer.params.align[0]}, ALIGN1 = {layer.params.align[1]};",
         "left shifts aligning both inputs to the larger frac"),
        *_requant_cfg(layer),
    ]
    e.params = [f"const {in_t[0]} a[{e.in_size}]", f"const {in_t[1]} b[{e.in_size}]", f"{e.out_t} y[{e.out_size}]"]
    e.call = f"fpgagen_nn::add<{e.ident}_cfg>(a, b, y);"
    if index is not None:
        index_t = "uint16_t" if e.in_size <= 1 << 16 else "uint32_t"
        e.consts = [Const(f"{e.name}_INDEX", index_t, index,
                          f"{quoted(layer.name)}: position in b's buffer ({_order(e.in_layouts[1], True)}) of the "
                          f"element at each position of a's ({_order(e.in_layouts[0], True)})")]
        e.call = f"fpgagen_nn::add_gather<{e.ident}_cfg>(a, b, y, {e.name}_INDEX);"
    e.read_factors = [1, 1]
    e.out_layout = tuple(e.in_layouts[0])


@emits("leakyrelu")
def _leakyrelu(e: Emit) -> None:
    # elementwise: any buffer order (its output is stored like its input); without a slope
    # (leaky None: a ReLU/Clip that no layer could take) it only requantizes and clamps
    e.cfg = e.types + [(f"static constexpr int SIZE = {e.in_size};", ""), *_requant_cfg(e.layer)]
    e.call = f"fpgagen_nn::leakyrelu<{e.ident}_cfg>(x, y);"
    e.out_layout = tuple(e.in_layouts[0])


@emits("concat")
def _concat(e: Emit) -> None:
    layer, p = e.layer, e.layer.params
    n = len(layer.inputs)
    if n < 2 or len(p.shifts) != n or len(p.channels) != n:
        raise e.error(f"{n} inputs, {len(p.shifts)} shifts and {len(p.channels)} channel counts; expected 2 or more "
                      f"inputs, one shift and one channel count each")
    c_out, h, w = e.out_layout
    e.cfg = [(f"using out_t = {e.out_t};", _fmt_comment(layer.out_fmt, layer.output)),
             (f"static constexpr int PIXELS = {h * w}, C = {c_out};",
              "output pixels (1: vectors) and channels per pixel"),
             *_requant_cfg(layer)]
    e.params, calls, offset = [], [], 0
    index = np.arange(c_out)  # vectors: the position in its input's buffer of each output element
    gathered = []
    for i, (tensor, fmt, shift, ch) in enumerate(zip(layer.inputs, layer.in_fmts, p.shifts, p.channels)):
        if layout_of(e.q.shapes[tensor]) != (ch, h, w) or offset + ch > c_out:
            raise e.error(f"input {i} {quoted(tensor)} has shape {list(e.q.shapes[tensor])}; expected {ch} channels "
                          f"of {h} x {w}")
        ctype = data_ctype(fmt)
        e.cfg.append((f"struct in{i} {{ using in_t = {ctype}; static constexpr int C = {ch}, OFFSET = {offset}, "
                      f"SHIFT = {shift}; }};", f"{_fmt_comment(fmt, tensor)}; {_shift_comment(shift)}"))
        e.params.append(f"const {ctype} x{i}[{ch * h * w}]")
        # a vector input that is a flattened map (stored in HWC order) is read through the index table
        order = gather_index((ch, 1, 1), e.in_layouts[i]) if h * w == 1 else None
        if order is None:
            e.check_layout(i)
            calls.append(f"fpgagen_nn::concat_input<{e.ident}_cfg, {e.ident}_cfg::in{i}>(x{i}, y);")
        else:
            index[offset:offset + ch] = order
            gathered.append(f"{i} ({_order(e.in_layouts[i], True)})")
            calls.append(f"fpgagen_nn::concat_input_gather<{e.ident}_cfg, {e.ident}_cfg::in{i}>(x{i}, y, "
                         f"{e.name}_INDEX);")
        offset += ch
    if offset != c_out:
        raise e.error(f"its inputs have {offset} channels; its output {quoted(layer.output)} has {c_out}")
    if gathered:
        e.consts = [Const(f"{e.name}_INDEX", "uint16_t" if c_out <= 1 << 16 else "uint32_t", index,
                          f"{quoted(layer.name)}: position in its input's buffer of each output element "
                          f"(read for input {', '.join(gathered)})")]
    e.params.append(f"{e.out_t} y[{e.out_size}]")
    e.call = "\n    ".join(calls)  # one call per input, each writing its channels
    e.read_factors = [1] * n


@emits("resize", "pad")
def _resize_pad(e: Emit) -> None:
    layer = e.layer
    c, h, w = e.feature_map()
    if e.in_t[0] != e.out_t:
        raise e.error(f"input format {layer.in_fmts[0]} and output format {layer.out_fmt} differ; the op is exact "
                      f"and keeps its input's format")
    _, oh, ow = e.out_shape
    e.cfg = e.types + [(f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};", ""),
                       (f"static constexpr int OUT_H = {oh}, OUT_W = {ow};", "")]
    if layer.op == "resize":
        fh, fw = layer.params.factors
        e.cfg.append((f"static constexpr int FH = {fh}, FW = {fw};", "nearest: every pixel FH x FW times"))
        e.call = f"fpgagen_nn::resize_nearest<{e.ident}_cfg>(x, y);"
    else:
        top, left, bottom, right = layer.params.pads
        e.cfg.append((f"static constexpr int PAD_TOP = {top}, PAD_LEFT = {left}, PAD_BOTTOM = {bottom}, "
                      f"PAD_RIGHT = {right};", "zero padding"))
        e.call = f"fpgagen_nn::pad<{e.ident}_cfg>(x, y);"


# -- rendering -------------------------------------------------------------------------------------
def _order(layout, flattened: bool) -> str:
    if _trivial(layout) and layout[1] * layout[2] == 1:
        return "index order"
    if flattened:
        return f"the HWC order of the flattened {list(layout)} map"
    return "HWC order"


def _context(plan: ModelPlan, samples: int) -> dict:
    q = plan.q
    in_fmt, out_fmt = q.input_fmt, q.output_fmt
    flat_out = len(q.shapes[q.output]) == 1 and not _trivial(plan.out_layout)
    return dict(
        top=plan.top, TOP=plan.top.upper(), impl=f"{plan.top}_impl", version=__version__,
        # names for comments (quoted, escaped); identifiers are plan.top and the plan's idents
        model=quoted(q.name), source=quoted(Path(q.source).name if q.source else q.name), notes=list(q.notes),
        layers=plan.layers, headers=plan.headers, buffers=plan.buffers, statements=plan.statements,
        in_buffer=plan.in_buffer, out_buffer=plan.out_buffer,
        input={"tensor": quoted(q.input), "shape": list(q.shapes[q.input]), "fmt": str(in_fmt),
               "ctype": data_ctype(in_fmt), "layout": plan.in_layout, "size": plan.in_size,
               "min": in_fmt.min_int, "max": in_fmt.max_int, "frac": in_fmt.frac,
               "order": _order(plan.in_layout, False)},
        output={"tensor": quoted(q.output), "shape": list(q.shapes[q.output]), "fmt": str(out_fmt),
                "ctype": data_ctype(out_fmt), "layout": plan.out_layout, "size": plan.out_size,
                "min": out_fmt.min_int, "max": out_fmt.max_int, "frac": out_fmt.frac,
                "order": _order(plan.out_layout, flat_out)},
        consts=plan.consts, cxxflags=" ".join(CXXFLAGS), cxx_std=CXX_STD, samples=samples,
    )


def _ints_text(rows: np.ndarray) -> str:
    return "".join(" ".join(map(str, row)) + "\n" for row in np.asarray(rows, np.int64).reshape(len(rows), -1).tolist())


def csim_samples(build, count: int = CSIM_SAMPLES):
    """Up to ``count`` real input samples (IR layout ints) and the golden outputs, or None."""
    want = (build.cfg or {}).get("verify", {}).get("samples", count)
    ref = reference_samples(build, min(count, want))
    return None if ref is None else (ref[0], ref[1].output)


def generate(build) -> FileSet:
    q = build.qgraph
    plan = plan_model(q, build.cfg)
    files = FileSet()
    for name in LIBRARY:
        files.add(name, read_library_file(f"hls/{name}"))
    samples = csim_samples(build)
    ctx = _context(plan, 0 if samples is None else len(samples[0]))
    files.add(f"{plan.top}.h", render("hls/model.h.j2", **ctx))
    files.add(f"{plan.top}_weights.h", render("hls/weights.h.j2", **ctx))
    files.add(f"{plan.top}.cpp", render("hls/model.cpp.j2", **ctx))
    files.add(f"{plan.top}_tb.cpp", render("hls/tb.cpp.j2", **ctx))
    files.add("run_hls.tcl", render("hls/run_hls.tcl.j2", **ctx))
    files.add("Makefile", render("hls/Makefile.j2", **ctx))
    if samples is not None:
        xq, out = samples
        files.add("csim_input.txt", _ints_text(xq))
        files.add("csim_expected.txt", _ints_text(out))
    return files


