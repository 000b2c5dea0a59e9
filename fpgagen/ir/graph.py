"""The float IR: a small typed graph of the layers fpgagen knows, with float constants.

The ONNX frontend (:mod:`fpgagen.frontend.onnx`) builds it; passes rewrite it; calibration runs
it (:mod:`fpgagen.golden.float_exec`); :mod:`fpgagen.quant.lower` turns it into the integer IR.

Tensors are described per sample, without the batch axis, in ONNX's layout: ``(C, H, W)`` for
feature maps (a 1-D conv's ``(C, W)`` is ``(C, 1, W)`` here) and ``(N,)`` for vectors.

Ops and their parameters (``Node.params``, a frozen dataclass of the op's module, checked
against the op's ``params_type``); every node has one output tensor:

- ``conv``: :class:`~fpgagen.ops.conv.ConvParams` (``kernel (kh, kw)``, ``stride (sh, sw)``,
  ``pads (top, left, bottom, right)``, ``groups``); constants ``weight [Co, Ci/groups, kh, kw]``
  and ``bias [Co]``.
- ``dense``: constants ``weight [Out, In]`` and ``bias [Out]``; the input is a vector.
- ``maxpool``: a :class:`~fpgagen.ops._window.Window` (``kernel``, ``stride``, ``pads``; padding
  never wins the max).
- ``avgpool``: :class:`~fpgagen.ops.pool.AvgPoolParams` (the window, ``count_include_pad``).
- ``gap``: global average pool, ``(C, H, W) -> (C, 1, 1)``.
- ``add``: two inputs of the same shape (a residual add).
- ``flatten``: ``(C, H, W) -> (C*H*W,)`` in C-major order (a relabelling; no arithmetic).

- ``leakyrelu``: a standalone LeakyRelu (``activation`` holds its slope).
- ``concat``: two or more inputs joined along their channels.
- ``resize``: nearest upsampling, ``params`` :class:`~fpgagen.ops.resize.ResizeParams`.
- ``pad``: zero padding, ``params`` :class:`~fpgagen.ops.pad.PadParams`.

What each op means (float and integer execution, lowering, ONNX import) is in its module of
:mod:`fpgagen.ops`. A fused activation (``Node.activation``) is ``None`` or a value object of
:mod:`fpgagen.ops.activation` (ReLU, Clip(0, k), LeakyRelu(alpha)); it applies to the node's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.ir.format import Format
from fpgagen.golden.windows import conv_output_hw  # noqa: F401 (re-exported: shapes of windows)
from fpgagen.names import shorten
from fpgagen import ops as _ops  # registers every op
from fpgagen.ops.activation import coerce as coerce_activation
from fpgagen.ops.activation import name as activation_name  # noqa: F401 (re-exported)

#: the IR ops, one module each in fpgagen/ops
OPS = _ops.names()
#: ops whose output is a new quantization point (their output format is chosen by calibration)
QUANT_OPS = tuple(op for op in OPS if not _ops.get(op).passes_format)
#: ops that pass their input format through unchanged
PASS_OPS = tuple(op for op in OPS if _ops.get(op).passes_format)
_NEEDS_PARAMS = {op for op in OPS if _ops.get(op).needs_params}


def check_params(op: str, params, where: str, required: bool) -> None:
    """``params`` is an instance of ``op``'s ``params_type`` (or None where not ``required``)."""
    want = _ops.get(op).params_type
    if params is None:
        if required:
            raise ModelError(f"{where} ({op}): params missing; expected {want.__name__}")
        return
    if want is None or not isinstance(params, want):
        raise ModelError(f"{where} ({op}): params of type {type(params).__name__}; expected "
                         f"{'none' if want is None else want.__name__}")


@dataclass
class Node:
    """One layer: ``op`` over ``inputs`` (tensor names) giving ``output``."""

    name: str
    op: str
    inputs: list[str]
    output: str
    #: the op's typed, frozen parameters (a dataclass of its module in fpgagen.ops: the op's
    #: ``params_type``), or None for ops without them
    params: object = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: object = None
    #: the ONNX nodes this layer came from (first is the main one), for provenance
    onnx_nodes: list[str] = field(default_factory=list)
    #: the ONNX op type of the main node, e.g. "Conv", "Gemm"
    onnx_op: str = ""
    #: the weight's / bias's format as the model gives it (a DequantizeLinear or QONNX Quant of the
    #: constant: :class:`QuantPoint`), None where fpgagen chooses it
    w_quant: "QuantPoint | None" = None
    b_quant: "QuantPoint | None" = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ModelError(f"node {self.name!r}: unknown IR op {self.op!r}, expected one of {OPS}")
        self.activation = coerce_activation(self.activation, f"node {self.name!r}")
        check_params(self.op, self.params, f"node {self.name!r}", self.op in _NEEDS_PARAMS)

    def __repr__(self) -> str:
        """One line: name, op, tensors, constant shapes (never the constants themselves)."""
        return (f"Node({short_name(self.name)}, {self.op}{constants_text(self)}, "
                f"{tensors_text(self.inputs, self.output)})")


@dataclass(frozen=True)
class QuantPoint:
    """A format the model itself gives a tensor or constant (QDQ / QONNX import): the IR keeps it
    instead of choosing one, and its requantizer rounds as the model's quantizer does."""

    fmt: Format
    #: "nearest-even" (ONNX QuantizeLinear, QONNX ROUND) or "nearest-away" (QONNX ROUND_TO_ZERO is refused)
    rounding: str
    #: the ONNX node that quantizes, e.g. "QuantizeLinear 'conv1_out_q'"
    origin: str
    #: False where ``quantization.snap_scales`` rounded the model's scale to a power of two
    exact: bool = True
    #: a narrow range (QONNX ``narrow``): the format's most negative integer (signed) or its
    #: largest (unsigned) is not used, the requantizer clamps one step inside
    narrow: bool = False
    #: per-channel scales of a weight or bias (QDQ ``axis``, a QONNX scale of one size > 1 axis):
    #: the format of each slice along ``axis`` of the ONNX constant (``fmt`` is the finest of them)
    channels: "tuple[Format, ...] | None" = None
    axis: int | None = None

    def int_range(self) -> tuple[int, int]:
        """The integers this quantizer produces: its format's range, one step inside on a narrow
        range (QONNX ``narrow``: -127..127 for 8 signed bits, 0..254 for 8 unsigned)."""
        fmt = self.fmt
        if not self.narrow:
            return fmt.min_int, fmt.max_int
        return (fmt.min_int + 1, fmt.max_int) if fmt.signed else (fmt.min_int, fmt.max_int - 1)


@dataclass
class Graph:
    """A model: one input tensor, layers in topological order, one output tensor."""

    name: str
    input: str
    output: str
    nodes: list[Node]
    #: per-sample shape of every tensor (no batch axis)
    shapes: dict[str, tuple[int, ...]]
    #: the per-sample shape of the model input as the ONNX model declares it (no batch axis)
    onnx_input_shape: tuple[int, ...] = ()
    #: the per-sample shape of the ONNX output, e.g. (10,)
    onnx_output_shape: tuple[int, ...] = ()
    #: ONNX nodes removed (Identity, Dropout, a trailing Softmax, ...) with the reason
    notes: list[str] = field(default_factory=list)
    #: the model file this graph was read from, for provenance in generated files
    source: str = ""
    #: where the model input's data sits in the IR input: IR element i (C order of the IR input
    #: shape) is element ``input_order[i]`` of the ONNX input (C order of ``onnx_input_shape``),
    #: e.g. an NHWC input read through a Transpose to NCHW; None: the same C order (a relabelling)
    input_order: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: tensor -> the format the model gives it (QDQ / QONNX import), see :class:`QuantPoint`
    quant: dict = field(default_factory=dict)
    #: ONNX tensor -> the IR tensor holding its values at import, in the model's order (an IR tensor
    #: may stand for several ONNX ones: relabellings, Q/DQ pairs)
    onnx_tensors: dict = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ModelError(f"model {self.name!r} has no layer named {name!r}")

    def producer(self, tensor: str) -> Node | None:
        for node in self.nodes:
            if node.output == tensor:
                return node
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [node for node in self.nodes if tensor in node.inputs]

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def validate(self) -> "Graph":
        """Check the graph is well formed: names unique, inputs defined before use, shapes known."""
        defined = {self.input}
        names = set()
        for node in self.nodes:
            if node.name in names:
                raise ModelError(f"model {self.name!r}: two layers are named {node.name!r}")
            names.add(node.name)
            for tensor in node.inputs:
                if tensor not in defined:
                    raise ModelError(
                        f"model {self.name!r}: layer {node.name!r} reads {tensor!r} before it is computed"
                    )
            if node.output in defined:
                raise ModelError(f"model {self.name!r}: tensor {node.output!r} is written twice")
            defined.add(node.output)
            for tensor in (*node.inputs, node.output):
                if tensor not in self.shapes:
                    raise ModelError(f"model {self.name!r}: no shape known for tensor {tensor!r}")
        if self.output not in defined:
            raise ModelError(f"model {self.name!r}: the output {self.output!r} is never computed")
        return self

    def __repr__(self) -> str:
        return (f"Graph({short_name(self.name)}, {len(self.nodes)} layers, input {short_name(self.input)} "
                f"{list(self.shapes.get(self.input, ()))} -> output {short_name(self.output)} "
                f"{list(self.shapes.get(self.output, ()))})")

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        lines = [f"model {self.name}: input {self.input} {self.shapes[self.input]}"]
        for node in self.nodes:
            act = f" +{activation_name(node.activation)}" if node.activation else ""
            lines.append(f"  {shorten(node.name, 60):24s} {node.op:8s}{act:8s} -> {self.shapes[node.output]}")
        return "\n".join(lines)


def input_to_ir(g, x: np.ndarray, ir_layout: bool = False) -> np.ndarray | None:
    """A batch ``x`` of the model input of ``g`` (a :class:`Graph` or a QGraph) in the IR layout
    ``[N, *IR input shape]``: ``x`` is ``[N, *onnx_input_shape]`` (the model's own layout, e.g.
    NHWC: gathered by ``input_order``) or already ``[N, *IR input shape]``. With ``ir_layout``,
    ``x`` is in the IR layout (only relabelled when its shape is the ONNX one and the C orders are
    the same). None when ``x`` has neither shape."""
    want = tuple(g.shapes[g.input])
    onnx_shape = tuple(g.onnx_input_shape or want)
    order = g.input_order
    if ir_layout and order is not None:
        return x if tuple(x.shape[1:]) == want else None
    if tuple(x.shape[1:]) == onnx_shape and (onnx_shape != want or order is not None):
        flat = x.reshape(x.shape[0], -1)
        if order is not None:
            flat = flat[:, order]
        return flat.reshape((x.shape[0],) + want)
    if tuple(x.shape[1:]) == want:
        return x
    return None


def short_name(name: str) -> str:
    return repr(shorten(name, 60))


def tensors_text(inputs, output) -> str:
    return f"{', '.join(short_name(t) for t in inputs)} -> {short_name(output)}"


def constants_text(layer) -> str:
    """``, weight [8, 1, 3, 3], bias [8]`` for a layer's constants (shapes only), plus its activation."""
    parts = [f"{key} {list(np.shape(value))}" for key in ("weight", "bias")
             if (value := getattr(layer, key)) is not None]
    if layer.activation is not None:
        parts.append(activation_name(layer.activation))
    return "".join(f", {p}" for p in parts)
