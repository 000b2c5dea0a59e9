"""HLS C++ backend: the integer IR as C++ over the hand-written layer library ``templates/hls``.

Every layer becomes one config struct (sizes, ``<cstdint>`` types of its formats, shift, clamp
bounds, PE/SIMD) and one function calling a template of ``fpgagen_nn.h``; the top functions
chain them in a ``#pragma HLS DATAFLOW`` region. Files in ``OUT/hls/`` (``<top>`` is
``fpgagen_<model>``):

- ``fpgagen_nn.h`` (the layer library; rounding and saturation are written once, in its
  ``requantize``) and ``fpgagen_stream.h`` (``hls::stream``: Vitis's own, or a std::queue
  stand-in under plain g++), verbatim;
- ``<top>.h``: sizes and types of the input and output, the two top functions: ``<top>(x, y)``
  on arrays and ``<top>_stream(x, y)`` on ``hls::stream``s (AXI-Stream in synthesis);
- ``<top>_weights.h``: every weight, bias and reciprocal as a named ``static const`` array;
- ``<top>.cpp``: the layers and the top functions; ``<top>_tb.cpp``: the C-simulation
  testbench; ``csim_input.txt``/``csim_expected.txt``: real samples and the golden model's
  outputs for it; ``run_hls.tcl`` (Vitis HLS: csim, csynth, export); a ``Makefile``
  (``make csim`` builds the C simulation with g++ and runs it).

Ops: conv, dense, max/average/global pools, add, a standalone LeakyRelu, channel concat (one
``concat_input`` call per input, each with its own shift and input type, written at its channel
offset; a vector input that is a flattened map is read through an index table), nearest resize
and zero pad. A fused LeakyRelu is three more members of the layer's config struct (``LEAKY``,
``ALPHA``, ``ALPHA_FRAC``), which the library's requantizer reads.

Layout: feature maps live in HWC order (channel fastest, then column, then row), as the
Verilog backend streams them; vectors in index order. A Flatten is free (its output shares its
input's buffer): the Dense after it takes its weight columns in HWC order, and an Add whose
inputs are stored in different orders (a flattened map and a vector) reads its second input
through an index table, as a Concat of vectors reads a flattened map. The testbench reads and
writes CHW (ONNX) order and converts.

Names: every identifier comes from :mod:`fpgagen.names`, one :class:`~fpgagen.names.Namespace`
per C++ scope (the files' globals, the ``<top>_impl`` namespace, the top functions' locals), and
a layer's identifier is reserved together with everything derived from it (``<id>_cfg``,
``layer_<id>``, ``<ID>_W``, ...); ONNX names appear only in comments, as :func:`~fpgagen.names.quoted`.

:func:`verify` compiles the C simulation with g++ (cached by the sources' content hash), runs it
on the input integers and compares every output integer with the golden model; on a mismatch
it re-runs the first failing sample with every layer's output traced and names the first layer
that differs.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgagen.version import __version__
from fpgagen.backends import hwc_order, to_hwc
from fpgagen.backends.parallelism import check_parallelism_keys, layer_parallelism, layer_taps
from fpgagen.errors import BackendError
from fpgagen.fixed import signed_width
from fpgagen.ir.format import Format
from fpgagen.ir.graph import activation_name
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import Namespace, ident, quoted
from fpgagen.outdir import FileSet
from fpgagen.render import read_library_file, render
from fpgagen.tables import registrar
from fpgagen.targets import first_mismatch, reference_samples, register

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
    """The exact-width signed type of a layer's accumulator (``acc_width`` bits of the IR).

    With a fused LeakyRelu the library also forms ``acc * ALPHA`` (in int64_t when the
    accumulator is): that needs ``acc_width`` plus ALPHA's signed bits, at most 64."""
    width = layer.acc_width
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
    return lines


def _window_cfg(a: dict) -> list:
    (kh, kw), (sh, sw), (top, left, bottom, right) = a["kernel"], a["stride"], a["pads"]
    return [
        (f"static constexpr int KERNEL_H = {kh}, KERNEL_W = {kw};", ""),
        (f"static constexpr int STRIDE_H = {sh}, STRIDE_W = {sw};", ""),
        (f"static constexpr int PAD_TOP = {top}, PAD_LEFT = {left}, PAD_BOTTOM = {bottom}, PAD_RIGHT = {right};",
         "zero padding"),
    ]


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
                             f"{quoted(layer.name)} biases B at the accumulator frac {layer.acc_frac} "
                             f"(from {layer.b_fmt})")]
        if self.pe > 1:
            self.pragmas += [f"ARRAY_PARTITION variable={name}_W cyclic factor={self.pe} dim=1",
                             f"ARRAY_PARTITION variable={name}_B cyclic factor={self.pe} dim=1"]
        if self.simd > 1:
            self.pragmas.append(f"ARRAY_PARTITION variable={name}_W cyclic factor={self.simd} dim=2")


#: op -> its emitter (fills in an :class:`Emit`); an op without one has no HLS code
EMITTERS: dict = {}


#: register the decorated function as the HLS emitter of IR ops (once per op)
emits = registrar(EMITTERS, "HLS emitters")


def _mac_cfg(e: Emit, acc_t: str) -> list:
    layer = e.layer
    return [(f"using w_t = {data_ctype(layer.w_fmt)};", f"{layer.w_fmt} (weights)"),
            (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (accumulator; bias {layer.b_fmt})")]


@emits("conv")
def _conv(e: Emit) -> None:
    layer, a = e.layer, e.layer.attrs
    ci, h, w = e.feature_map()
    co, oh, ow = e.out_shape
    groups = a.get("groups", 1)
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
        *_window_cfg(layer.attrs),
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
    recip = np.asarray(layer.recip, dtype=np.int64).reshape(-1)
    e.cfg += [
        (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (window sum x reciprocal)"),
        (f"static constexpr int RECIP_SIZE = {recip.size};",
         "one reciprocal per output position (real pixels per window vary)" if recip.size > 1
         else "every window counts the same pixels"),
        *_requant_cfg(layer),
    ]
    what = "per output position [OUT_H * OUT_W]" if recip.size > 1 else "of the window size"
    e.consts = [Const(f"{e.name}_RECIP", acc_t, recip,
                      f"{quoted(layer.name)} reciprocals {what}: round(2**{layer.recip_bits} / count)")]
    e.call = f"fpgagen_nn::avgpool<{e.ident}_cfg>(x, y, {e.name}_RECIP);"


@emits("gap")
def _gap(e: Emit) -> None:
    layer = e.layer
    c, h, w = e.feature_map()
    acc_t = acc_ctype(layer)
    e.cfg = e.types + [
        (f"using acc_t = {acc_t};", f"s{layer.acc_width}.{layer.acc_frac} (sum x reciprocal)"),
        (f"static constexpr int C = {c}, IN_H = {h}, IN_W = {w};", ""),
        (f"static constexpr int64_t RECIP = {int(np.asarray(layer.recip).reshape(-1)[0])};",
         f"round(2**{layer.recip_bits} / {h * w})"),
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
        (f"static constexpr int ALIGN0 = {layer.align[0]}, ALIGN1 = {layer.align[1]};",
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
    # a flatten is only a relabelling: its output shares its input's buffer
    alias: dict[str, str] = {}
    layouts: dict[str, tuple] = {q.input: layout_of(q.shapes[q.input])}
    codes: list[LayerCode] = []
    headers: list[str] = []
    for layer in q.layers:
        for t in layer.inputs:
            if t not in layouts:
                raise BackendError(f"layer {quoted(layer.name)} reads {quoted(t)} before it is computed")
        if layer.op == "flatten":
            alias[layer.output] = alias.get(layer.inputs[0], layer.inputs[0])
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

    def source(tensor: str) -> str:
        return alias.get(tensor, tensor)

    # readers of every buffer: (layer code or None for the model output, input index)
    readers: dict[str, list] = {}
    for lc in codes:
        for i, t in enumerate(lc.layer.inputs):
            readers.setdefault(source(t), []).append((lc, i))
    readers.setdefault(source(q.output), []).append((None, 0))

    # the top functions' local arrays: one scope, apart from everything the bodies name
    local = Namespace([*LIBRARY_NAMES, top, *_top_family(top)])
    buffers: dict[str, Buffer] = {}
    produced = [q.input] + [lc.layer.output for lc in codes]
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
    for tensor, rs in readers.items():
        current = buffers[tensor]
        for k, (lc, i) in enumerate(rs):
            key = (lc.layer.name if lc else "<output>", i)
            if k == len(rs) - 1:
                taps[key] = current
                break
            who = lc.ident if lc else "output"
            a = Buffer(local.unique(f"{current.ident}_to_{who}"), current.ctype, current.size,
                       f"copy of {quoted(tensor)} for {who}")
            b = Buffer(local.unique(f"{buffers[tensor].ident}_rest{k}"), current.ctype, current.size,
                       f"copy of {quoted(tensor)} for its other readers")
            forks_after.setdefault(tensor, []).append(
                (f"{quoted(tensor)} is read {len(rs)} times: one copy per reader",
                 f"fpgagen_nn::duplicate<{current.size}>({current.ident}, {a.ident}, {b.ident});", a, b))
            taps[key] = a
            current = b
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
        in_buffer=buffers[q.input].ident, out_buffer=taps[("<output>", 0)].ident,
        in_layout=layouts[q.input], out_layout=layouts[q.output],
        layouts=layouts, trace_names={lc.layer.name: lc.ident for lc in codes}, headers=headers,
    )


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


# -- C simulation ------------------------------------------------------------------------------------
def _compiler() -> tuple[str, str]:
    cxx = shutil.which("g++")
    if cxx is None:
        raise BackendError(f"the HLS C simulation needs g++ ({CXX_STD}); install it, e.g. apt-get install g++")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return cxx, (version.splitlines() or ["g++"])[0]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def compile_csim(target_dir: Path, top: str, sim_dir: Path, sources=None,
                 extra_flags=()) -> tuple[Path, float, bool]:
    """Compile the C simulation of ``target_dir``; returns (binary, seconds, cached).

    The binary is named by a hash of the compiler, the flags and every source and header, so an
    unchanged target is never compiled twice (and a changed one always is).
    """
    target_dir, sim_dir = Path(target_dir), Path(sim_dir)
    sources = [Path(s) for s in (sources or [target_dir / f"{top}.cpp", target_dir / f"{top}_tb.cpp"])]
    for src in sources:
        if not src.is_file():
            raise BackendError(f"HLS C simulation: {src} not found; generate the hls target first")
    cxx, version = _compiler()
    flags = list(CXXFLAGS) + list(extra_flags)
    digest = hashlib.sha256()
    digest.update(f"{version}\n{' '.join(flags)}\n".encode())
    for path in sorted({*sources, *target_dir.glob("*.h")}):
        digest.update(f"{path.name}\n".encode())
        digest.update(path.read_bytes())
    sim_dir.mkdir(parents=True, exist_ok=True)
    binary = sim_dir / f"{top}_csim-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary, 0.0, True
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=sim_dir, prefix=".build-") as tmp:
        procs = []
        for k, src in enumerate(sources):  # one g++ per translation unit, in parallel
            obj = Path(tmp) / f"{k}_{src.stem}.o"
            cmd = [cxx, *flags, f"-I{target_dir}", "-c", str(src), "-o", str(obj)]
            procs.append((src, obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                     text=True)))
        failures = []
        for src, _, proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                failures.append(f"g++ failed on {src.name}:\n{_tail(out)}")
        if failures:
            raise BackendError(f"compiling the HLS C simulation in {target_dir} failed\n" + "\n".join(failures))
        tmp_bin = Path(tmp) / "csim"
        link = subprocess.run([cxx, *flags, "-o", str(tmp_bin), *[str(o) for _, o, _ in procs]],
                              capture_output=True, text=True, check=False)
        if link.returncode != 0:
            raise BackendError(f"linking the HLS C simulation in {target_dir} failed:\n{_tail(link.stdout + link.stderr)}")
        os.replace(tmp_bin, binary)
    for old in sim_dir.glob(f"{top}_csim-*"):
        if old != binary:
            old.unlink()
    return binary, time.monotonic() - start, False


def run_csim(binary: Path, input_path: Path, output_path: Path, trace_path: Path | None = None) -> str:
    """Run the testbench on an input file; returns its stdout. Failures raise BackendError."""
    cmd = [str(binary), str(input_path), str(output_path)]
    if trace_path is not None:
        cmd += ["--trace", str(trace_path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BackendError(f"the HLS C simulation {binary.name} did not finish within {RUN_TIMEOUT} s") from None
    if res.returncode != 0:
        raise BackendError(
            f"the HLS C simulation {binary.name} failed (exit code {res.returncode}):\n{_tail(res.stderr + res.stdout)}"
        )
    return res.stdout


def check_inputs(q: QGraph, xq) -> np.ndarray:
    from fpgagen.golden.model import check_int_input

    return check_int_input(q, xq, f"HLS C simulation input {quoted(q.input)}", BackendError)


def parse_trace(text: str) -> dict[str, np.ndarray]:
    """Trace lines ``<layer ident> <n> v0 v1 ...`` -> {ident: values} (the last line per layer)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] == "sample":
            continue
        n = int(parts[1])
        out[parts[0]] = np.array(parts[2:2 + n], dtype=np.int64)
    return out


def first_differing_layer(plan: ModelPlan, trace: dict, golden_trace: dict, index: int) -> str | None:
    """The first layer (in order) whose traced output differs from the golden model's (a layer
    missing from the trace counts as differing: the run stopped before it)."""
    idents = {lc.layer.name: lc.ident for lc in plan.layers}

    def want(layer):
        return to_hwc(np.asarray(golden_trace[layer.output])[index:index + 1], plan.layouts[layer.output])[0]

    return first_mismatch([lc.layer for lc in plan.layers],
                          lambda layer: trace.get(idents[layer.name], np.zeros(0, np.int64)), want)


def verify(build, target_dir, xq, golden) -> dict:
    """Compile and run the C simulation on ``xq``; compare every output integer with ``golden``."""
    q = build.qgraph
    plan = plan_model(q, build.cfg)
    target_dir = Path(target_dir).resolve()
    xq = check_inputs(q, xq)
    sim_dir = target_dir.parent / ".sim" / "hls"
    binary, compile_seconds, cached = compile_csim(target_dir, plan.top, sim_dir)
    in_path, out_path = sim_dir / "verify_input.txt", sim_dir / "verify_output.txt"
    in_path.write_text(_ints_text(xq))
    start = time.monotonic()
    run_csim(binary, in_path, out_path)
    sim_seconds = time.monotonic() - start
    n = len(xq)
    values = np.array(out_path.read_text().split(), dtype=np.int64)
    if values.size != n * plan.out_size:
        raise BackendError(
            f"the HLS C simulation wrote {values.size} integers for {n} samples; expected {n * plan.out_size}"
        )
    got = values.reshape(n, plan.out_size)
    want = np.asarray(golden.output).reshape(n, -1)
    bad = [i for i in range(n) if not np.array_equal(got[i], want[i])]
    result = {
        "samples": int(n),
        "mismatches": len(bad),
        "compile_seconds": round(compile_seconds, 2),
        "compile_cached": cached,
        "sim_seconds": round(sim_seconds, 3),
        "compiler": _compiler()[1],
        "top": plan.top,
    }
    if bad:
        i = bad[0]
        result["first_mismatch_sample"] = i
        one = sim_dir / "probe_input.txt"
        one.write_text(_ints_text(xq[i:i + 1]))
        trace_path = sim_dir / "probe_trace.txt"
        run_csim(binary, one, sim_dir / "probe_output.txt", trace_path)
        layer = first_differing_layer(plan, parse_trace(trace_path.read_text()), golden.trace, i)
        if layer is not None:
            result["first_mismatch_layer"] = layer
    return result


register("hls", verify=verify)(generate)
