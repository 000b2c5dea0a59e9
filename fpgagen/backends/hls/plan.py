"""The HLS backend's plan: names and C++ types, the emitter contract (:class:`Emit`, ``EMITTERS``),
every layer's code and the model's buffers, forks and calls (see :mod:`fpgagen.backends.hls`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fpgagen.backends import hwc_order
from fpgagen.backends.dataflow import OUTPUT, plan_dataflow
from fpgagen.backends.parallelism import check_parallelism_keys, layer_parallelism, layer_taps
from fpgagen.errors import BackendError
from fpgagen.fixed import signed_width
from fpgagen.ir.format import Format, channel_formats_text, range_text
from fpgagen.ir.graph import activation_name
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import Namespace, ident, quoted
from fpgagen.tables import registrar

#: the C++ standard of the generated code, the same for g++ (Makefile, :func:`verify`) and Vitis
#: HLS (run_hls.tcl): Vitis HLS's front end compiles C++14, so the C simulation checks that level
#: (the code needs nothing newer: every ``static constexpr`` member is used only as a constant)
CXX_STD = "c++14"
#: g++ flags of the C simulation (the Makefile's CXXFLAGS). ``-Wno-unknown-pragmas``: g++ does
#: not know ``#pragma HLS`` (and cannot be told otherwise from inside a file).
CXXFLAGS = (f"-std={CXX_STD}", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas")
#: the hand-written files every generated model ships with
LIBRARY = ("fpgagen_nn.h", "fpgagen_stream.h")
#: at most this many samples go into csim_input.txt (the Vitis/Makefile C simulation)
CSIM_SAMPLES = 20
#: seconds a C simulation may run before it is treated as hung
RUN_TIMEOUT = 600


# -- names and types ---------------------------------------------------------------------------
#: identifiers the generated code uses verbatim: the library's namespaces, macros and include
#: guards, and the parameter names of the layer and top functions
LIBRARY_NAMES = ("fpgagen_nn", "fpgagen_stream", "hls", "std", "detail", "FPGAGEN_TRACE", "FPGAGEN_NN_H",
                 "FPGAGEN_STREAM_H", "FPGAGEN_HAVE_HLS_STREAM", "x", "y", "a", "b", "w")
#: what the generated files append to the top's name (functions, types, constants, files, guards)
TOP_SUFFIXES = ("stream", "impl", "in_t", "out_t", "weights", "tb", "csim", "prj", "h", "weights_h",
                "in_c", "in_h", "in_w", "in_size", "in_min", "in_max", "out_c", "out_h", "out_w", "out_size")


def unique_family(ns: Namespace, name: str, derive) -> str:
    """``ns.unique(name)``, retried until none of the identifiers ``derive(base)`` builds from it
    is taken either; those are then reserved in ``ns`` too."""
    while True:
        base = ns.unique(name)
        derived = derive(base)
        if not any(d in ns for d in derived):
            for d in derived:
                ns.reserve(d)
            return base


def _top_family(top: str) -> list[str]:
    return [f"{top}_{suffix}" for suffix in TOP_SUFFIXES]


def _layer_family(ident: str) -> list[str]:
    return [f"{ident}_cfg", f"layer_{ident}", f"{ident}_W", f"{ident}_B", f"{ident}_RECIP", f"{ident}_INDEX"]


def top_name(q: QGraph) -> str:
    """``fpgagen_<model>``: the top functions' and the files' name (lower case, ASCII)."""
    return unique_family(Namespace(LIBRARY_NAMES), f"fpgagen_{ident(q.name)}", _top_family).lower()


def data_ctype(fmt: Format) -> str:
    """The ``<cstdint>`` type holding every integer of ``fmt`` (int8_t/uint8_t for 8-bit data)."""
    bits = 8 if fmt.word <= 8 else 16 if fmt.word <= 16 else 32
    return f"{'int' if fmt.signed else 'uint'}{bits}_t"


def acc_ctype(layer: QLayer) -> str:
    """The exact-width signed type of a layer's accumulator (``acc_width`` bits of the IR; a
    per-channel layer's pre-aligned accumulator, ``align_width`` bits).

    With a fused LeakyRelu the library also forms ``acc * ALPHA`` (in int64_t when the
    accumulator is): that needs ``acc_width`` plus ALPHA's signed bits, at most 64."""
    width = layer.requant_width
    if width is None:
        raise BackendError(f"layer {quoted(layer.name)} ({layer.op}): the integer IR gives no accumulator width")
    if width > 64:
        raise BackendError(
            f"layer {quoted(layer.name)} ({layer.op}): its accumulator needs {width} bits, more than the 64 bits "
            f"of int64_t, the widest C++ integer the HLS backend uses; use narrower formats for this layer"
        )
    if layer.leaky is not None:
        alpha = layer.leaky.alpha
        product = width + signed_width(alpha, alpha)
        if product > 64:
            raise BackendError(
                f"layer {quoted(layer.name)} ({layer.op}): its fused LeakyRelu multiplies the {width}-bit accumulator "
                f"by the slope {alpha} ({signed_width(alpha, alpha)} bits): {product} bits, more than the 64 bits of "
                f"int64_t, the widest C++ integer the HLS backend uses; use narrower formats for this layer"
            )
    return "int32_t" if width <= 32 else "int64_t"


def layout_of(shape) -> tuple[int, int, int]:
    """(C, H, W) of a tensor as stored: a vector of N is (N, 1, 1)."""
    shape = tuple(shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 1:
        return (shape[0], 1, 1)
    raise BackendError(f"a tensor of shape {list(shape)}: expected (C, H, W) or a vector")


def _trivial(layout) -> bool:
    c, h, w = layout
    return c == 1 or h * w == 1


def gather_index(layout_a, layout_b) -> np.ndarray | None:
    """For two buffers of the same elements stored in the orders of ``layout_a`` and ``layout_b``
    (HWC of that (C, H, W)): the position in b of the element at each position of a, or None
    when both orders are the same."""
    order_a, order_b = hwc_order(tuple(layout_a)), hwc_order(tuple(layout_b))
    if np.array_equal(order_a, order_b):
        return None
    position_b = np.empty_like(order_b)
    position_b[order_b] = np.arange(order_b.size)
    return position_b[order_a]


def c_array(values: np.ndarray, indent: str = "    ", width: int = 100) -> str:
    """A brace initializer of an integer array, nested like its dimensions, wrapped to ``width``."""
    values = np.asarray(values)

    def flat(v) -> list[str]:
        items = v.astype(np.int64).astype(str).tolist()
        per_line = max(1, (width - 2 * len(indent)) // (max(map(len, items), default=1) + 2))
        lines = [", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
        lines[-1] = lines[-1].rstrip(",")
        return lines

    def rec(v, depth: int) -> list[str]:
        pad = indent * depth
        if v.ndim == 1:
            body = flat(v)
            if len(body) == 1:
                return [pad + "{" + body[0] + "}"]
            return [pad + "{"] + [pad + indent + ln for ln in body] + [pad + "}"]
        if v.size * 2 <= width:  # small enough that it may fit on one line
            text = _inline(v)
            if len(pad) + len(text) <= width:
                return [pad + text]
        lines = [pad + "{"]
        for i, sub in enumerate(v):
            part = rec(sub, depth + 1)
            if i < len(v) - 1:
                part[-1] += ","
            lines += part
        return lines + [pad + "}"]

    return "\n".join(rec(values, 0))


def _inline(v) -> str:
    if np.ndim(v) == 0:
        return str(int(v))
    return "{" + ", ".join(_inline(x) for x in v) + "}"


# -- the plan of a model -----------------------------------------------------------------------
@dataclass
class Const:
    """A ``static const`` array of the weights header."""

    name: str
    ctype: str
    values: np.ndarray
    comment: str

    @property
    def dims(self) -> str:
        return "".join(f"[{d}]" for d in self.values.shape)

    @property
    def initializer(self) -> str:
        return c_array(self.values)


@dataclass
class Buffer:
    """A local array of the top functions' dataflow region."""

    ident: str
    ctype: str
    size: int
    comment: str
    factor: int = 1

    @property
    def pragmas(self) -> list[str]:
        if self.factor <= 1:
            return []
        if self.factor >= self.size:
            return [f"ARRAY_PARTITION variable={self.ident} complete"]
        return [f"ARRAY_PARTITION variable={self.ident} cyclic factor={self.factor}"]


@dataclass
class LayerCode:
    layer: QLayer
    ident: str
    pe: int
    simd: int
    header: str
    cfg: list  # (declaration, comment)
    consts: list  # Const
    params: list  # C parameter declarations
    pragmas: list  # #pragma HLS ... lines in the layer function
    call: str  # the library call
    out_size: int
    #: (C, H, W) of the output buffer's data
    out_layout: tuple = (1, 1, 1)
    #: reads: input index -> (partition factor the layer wants on that buffer)
    read_factors: list = field(default_factory=list)
    write_factor: int = 1

    @property
    def func(self) -> str:
        return f"layer_{self.ident}"


@dataclass
class ModelPlan:
    top: str
    q: QGraph
    layers: list  # LayerCode (no flatten)
    buffers: list  # Buffer
    statements: list  # (comment, C statement) of the dataflow body, in order
    in_buffer: str
    out_buffer: str
    in_layout: tuple
    out_layout: tuple
    #: tensor name -> (C, H, W) order of its buffer
    layouts: dict
    #: layer name -> the ident its trace lines carry
    trace_names: dict
    #: one provenance line per IR layer (flattens included)
    headers: list = field(default_factory=list)

    @property
    def in_size(self) -> int:
        return math.prod(self.in_layout)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_layout)

    @property
    def consts(self) -> list:
        return [c for lc in self.layers for c in lc.consts]


def _layer_idents(q: QGraph, top: str) -> dict[str, str]:
    """The identifier of every layer with code (not a flatten), unique in the ``<top>_impl``
    namespace together with everything derived from it (``<id>_cfg``, ``layer_<id>``, ``<ID>_W``, ...)."""
    ns = Namespace([*LIBRARY_NAMES, top, *_top_family(top)])
    return {layer.name: unique_family(ns, layer.name, _layer_family) for layer in q.layers if layer.op != "flatten"}


def _provenance(layer: QLayer) -> str:
    """``'name': ONNX 'node', 'node' (Op)``, every name quoted for a comment."""
    nodes = ", ".join(quoted(n) for n in layer.onnx_nodes) or "-"
    return f"{quoted(layer.name)}: ONNX {nodes} ({layer.onnx_op or layer.op})"


def _fmt_comment(fmt: Format, tensor: str) -> str:
    return f"{fmt} (tensor {quoted(tensor)})"


@dataclass
class Emit:
    """What an op's emitter reads (the layer, its shapes, types and parallelism) and fills in (its
    config struct, constants, parameters, pragmas and library call)."""

    q: QGraph
    layer: QLayer
    ident: str
    pe: int
    simd: int
    #: (C, H, W) order of each input's buffer
    in_layouts: list
    cfg: list = field(default_factory=list)
    consts: list = field(default_factory=list)
    params: list = field(default_factory=list)
    pragmas: list = field(default_factory=list)
    call: str = ""
    read_factors: list = field(default_factory=lambda: [1])
    write_factor: int = 1
    out_layout: tuple = ()
    #: kernel taps of one row per cycle (conv; parallelism taps)
    taps: int = 1

    def __post_init__(self) -> None:
        self.params = [f"const {self.in_t[0]} x[{self.in_size}]", f"{self.out_t} y[{self.out_size}]"]
        self.out_layout = layout_of(self.out_shape)

    @property
    def in_t(self) -> list[str]:
        return [data_ctype(f) for f in self.layer.in_fmts]

    @property
    def out_t(self) -> str:
        return data_ctype(self.layer.out_fmt)

    @property
    def in_shape(self) -> tuple:
        return tuple(self.q.shapes[self.layer.inputs[0]])

    @property
    def out_shape(self) -> tuple:
        return tuple(self.q.shapes[self.layer.output])

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    @property
    def name(self) -> str:
        """The prefix of the layer's constants (``<NAME>_W``, ...)."""
        return self.ident.upper()

    @property
    def types(self) -> list:
        """``in_t`` and ``out_t`` of a one-input layer's config."""
        layer = self.layer
        return [(f"using in_t = {self.in_t[0]};", _fmt_comment(layer.in_fmts[0], layer.inputs[0])),
                (f"using out_t = {self.out_t};", _fmt_comment(layer.out_fmt, layer.output))]

    def error(self, message: str) -> BackendError:
        return BackendError(f"layer {quoted(self.layer.name)} ({self.layer.op}): {message}")

    def check_layout(self, i: int) -> None:
        """Input ``i`` is stored as its own shape (not a flattened map in another order)."""
        layout = self.in_layouts[i]
        if not _trivial(layout) and tuple(layout) != layout_of(self.q.shapes[self.layer.inputs[i]]):
            raise self.error(f"its input {quoted(self.layer.inputs[i])} is a flattened {list(layout)} feature map "
                             f"(stored in HWC order); the HLS backend only lets a dense layer read a flattened "
                             f"feature map")

    def feature_map(self) -> tuple[int, int, int]:
        """(C, H, W) of a one-input layer's input, checked to be a feature map stored as one."""
        self.check_layout(0)
        if len(self.in_shape) != 3:
            raise self.error(f"input {quoted(self.layer.inputs[0])} has shape {list(self.in_shape)}; expected a "
                             f"feature map (C, H, W)")
        return self.in_shape

    def mac_consts(self, weight: np.ndarray, acc_t: str, dims: str, order: str = "") -> None:
        """The weights ``<NAME>_W`` and biases ``<NAME>_B`` of a conv/dense, partitioned for PE/SIMD."""
        layer, name = self.layer, self.name
        self.consts = [Const(f"{name}_W", data_ctype(layer.w_fmt), weight,
                             f"{quoted(layer.name)} weights {dims}{order}, {layer.w_fmt}"),
                       Const(f"{name}_B", acc_t, np.asarray(layer.bias),
                             f"{quoted(layer.name)} biases B at the accumulator frac "
                             + ("of each channel" if layer.per_channel else f"{layer.acc_frac}")
                             + f" (from {layer.b_fmt})")]
        if layer.per_channel:  # read by the cfg's align(c) (fpgagen_nn.h channel_align)
            self.consts.append(Const(f"{name}_A", "int8_t", np.asarray(layer.align, np.int64),
                                     f"{quoted(layer.name)} per-channel pre-alignment align[c] = SHIFT - s_c "
                                     f"(weights {channel_formats_text(layer.w_fmts)}, shifts {range_text(layer.shifts)})"))
        if self.pe > 1:
            self.pragmas += [f"ARRAY_PARTITION variable={name}_W cyclic factor={self.pe} dim=1",
                             f"ARRAY_PARTITION variable={name}_B cyclic factor={self.pe} dim=1"]
            if layer.per_channel:
                self.pragmas.append(f"ARRAY_PARTITION variable={name}_A cyclic factor={self.pe} dim=1")
        if self.simd > 1:
            self.pragmas.append(f"ARRAY_PARTITION variable={name}_W cyclic factor={self.simd} dim=2")


#: op -> its emitter (fills in an :class:`Emit`); an op without one has no HLS code
EMITTERS: dict = {}


#: register the decorated function as the HLS emitter of IR ops (once per op)
emits = registrar(EMITTERS, "HLS emitters")


def _layer_code(q: QGraph, layer: QLayer, ident: str, cfg: dict, in_layouts: list) -> LayerCode:
    """The config struct, constants and library call of one layer (its op's emitter)."""
    emitter = EMITTERS.get(layer.op)
    if emitter is None:
        raise BackendError(f"layer {quoted(layer.name)}: the HLS library has no function for op {layer.op!r}")
    pe, simd = layer_parallelism(cfg, q, layer)
    e = Emit(q, layer, ident, pe, simd, list(in_layouts), taps=layer_taps(cfg, q, layer))
    emitter(e)
    act = f", fused {activation_name(layer.activation)}" if layer.activation and layer.op != "leakyrelu" else ""
    header = (f"{_provenance(layer)} -> {quoted(layer.output)} {list(e.out_shape)}; {layer.describe()}{act}; "
              f"PE {pe} x SIMD {simd}" + (f" x taps {e.taps}" if e.taps > 1 else ""))
    return LayerCode(layer, ident, pe, simd, header, e.cfg, e.consts, e.params, e.pragmas, e.call, e.out_size,
                     e.out_layout, e.read_factors, e.write_factor)


def plan_model(q: QGraph, cfg: dict) -> ModelPlan:
    """Every layer function, constant, buffer and call of the generated model; errors before writing."""
    check_parallelism_keys(cfg or {}, q)
    top = top_name(q)
    idents = _layer_idents(q, top)
    # a flatten is only a relabelling: its output shares its input's buffer (the layouts say how
    # its readers index it)
    flow = plan_dataflow(q, lambda q, layer: True)
    alias = flow.alias
    layouts: dict[str, tuple] = {q.input: layout_of(q.shapes[q.input])}
    codes: list[LayerCode] = []
    headers: list[str] = []
    for layer in q.layers:
        if layer.output in alias:
            layouts[layer.output] = layouts[layer.inputs[0]]
            headers.append(f"{_provenance(layer)} -> {quoted(layer.output)} {list(q.shapes[layer.output])}; "
                           f"flatten: no code, shares the buffer of {quoted(alias[layer.output])} (HWC order)")
            continue
        for i, fmt in enumerate(layer.in_fmts):
            want = q.fmts.get(layer.inputs[i])
            if want is not None and want != fmt:
                raise BackendError(
                    f"layer {quoted(layer.name)}: input {quoted(layer.inputs[i])} is {want} but the layer expects {fmt}"
                )
        lc = _layer_code(q, layer, idents[layer.name], cfg, [layouts[t] for t in layer.inputs])
        layouts[layer.output] = lc.out_layout
        codes.append(lc)
        headers.append(lc.header)

    code_of = {lc.layer.name: lc for lc in codes}
    # the top functions' local arrays: one scope, apart from everything the bodies name
    local = Namespace([*LIBRARY_NAMES, top, *_top_family(top)])
    buffers: dict[str, Buffer] = {}
    produced = flow.produced()
    for t in produced:
        buffers[t] = Buffer(local.unique(f"t_{t}"), data_ctype(q.fmts[t]), math.prod(q.shapes[t]),
                            f"{quoted(t)} {list(q.shapes[t])} {q.fmts[t]}")
    for lc in codes:
        buffers[lc.layer.output].factor = lc.write_factor

    statements = []
    # forks: a buffer read n > 1 times is copied by a chain of n - 1 duplicates (one reader per
    # buffer in a dataflow region)
    taps: dict = {}
    forks_after: dict[str, list] = {}
    for tensor, rs in flow.readers.items():
        current = buffers[tensor]
        for k, read in enumerate(flow.fork_chain(tensor)):
            who = code_of[read.reader].ident if read.reader != OUTPUT else "output"
            a = Buffer(local.unique(f"{current.ident}_to_{who}"), current.ctype, current.size,
                       f"copy of {quoted(tensor)} for {who}")
            b = Buffer(local.unique(f"{buffers[tensor].ident}_rest{k}"), current.ctype, current.size,
                       f"copy of {quoted(tensor)} for its other readers")
            forks_after.setdefault(tensor, []).append(
                (f"{quoted(tensor)} is read {len(rs)} times: one copy per reader",
                 f"fpgagen_nn::duplicate<{current.size}>({current.ident}, {a.ident}, {b.ident});", a, b))
            taps[(read.reader, read.index)] = a
            current = b
        taps[(rs[-1].reader, rs[-1].index)] = current
    for lc in codes:
        for i, t in enumerate(lc.layer.inputs):
            tap = taps[(lc.layer.name, i)]
            tap.factor = math.lcm(tap.factor, lc.read_factors[i])

    ordered: list[Buffer] = [buffers[q.input]]
    for comment, stmt, a, b in forks_after.get(q.input, []):
        statements.append((comment, stmt))
        ordered += [a, b]
    for lc in codes:
        args = [taps[(lc.layer.name, i)].ident for i in range(len(lc.layer.inputs))]
        args.append(buffers[lc.layer.output].ident)
        statements.append((quoted(lc.layer.name), f"{top}_impl::{lc.func}({', '.join(args)});"))
        ordered.append(buffers[lc.layer.output])
        for comment, stmt, a, b in forks_after.get(lc.layer.output, []):
            statements.append((comment, stmt))
            ordered += [a, b]
    return ModelPlan(
        top=top, q=q, layers=codes, buffers=ordered, statements=statements,
        in_buffer=buffers[q.input].ident, out_buffer=taps[(OUTPUT, 0)].ident,
        in_layout=layouts[q.input], out_layout=layouts[q.output],
        layouts=layouts, trace_names={lc.layer.name: lc.ident for lc in codes}, headers=headers,
    )


