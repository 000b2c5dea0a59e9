"""The float IR: a small typed graph of the layers fpgagen knows, with float constants.

The ONNX frontend (:mod:`fpgagen.frontend.onnx`) builds it; passes rewrite it; calibration runs
it (:mod:`fpgagen.golden.float_exec`); :mod:`fpgagen.quant.lower` turns it into the integer IR.

Tensors are described per sample, without the batch axis, in ONNX's layout: ``(C, H, W)`` for
feature maps (a 1-D conv's ``(C, W)`` is ``(C, 1, W)`` here) and ``(N,)`` for vectors.

Ops and their attributes (``Node.attrs``); every node has one output tensor:

- ``conv``: ``kernel (kh, kw)``, ``stride (sh, sw)``, ``pads (top, left, bottom, right)``,
  ``groups``; constants ``weight [Co, Ci/groups, kh, kw]`` and ``bias [Co]``.
- ``dense``: constants ``weight [Out, In]`` and ``bias [Out]``; the input is a vector.
- ``maxpool``: ``kernel``, ``stride``, ``pads`` (padding never wins the max).
- ``avgpool``: ``kernel``, ``stride``, ``pads``, ``count_include_pad`` (bool).
- ``gap``: global average pool, ``(C, H, W) -> (C, 1, 1)``.
- ``add``: two inputs of the same shape (a residual add).
- ``flatten``: ``(C, H, W) -> (C*H*W,)`` in C-major order (a relabelling; no arithmetic).

A fused activation (``Node.activation``) is ``None``, ``"relu"`` or ``("clip", lo, hi)`` with
``lo == 0``; it applies to the node's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.names import shorten

OPS = ("conv", "dense", "maxpool", "avgpool", "gap", "add", "flatten")
#: ops whose output is a new quantization point (their output format is chosen by calibration)
QUANT_OPS = ("conv", "dense", "avgpool", "gap", "add")
#: ops that pass their input format through unchanged
PASS_OPS = ("maxpool", "flatten")


@dataclass
class Node:
    """One layer: ``op`` over ``inputs`` (tensor names) giving ``output``."""

    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: object = None
    #: the ONNX nodes this layer came from (first is the main one), for provenance
    onnx_nodes: list[str] = field(default_factory=list)
    #: the ONNX op type of the main node, e.g. "Conv", "Gemm"
    onnx_op: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ModelError(f"node {self.name!r}: unknown IR op {self.op!r}, expected one of {OPS}")

    def __repr__(self) -> str:
        """One line: name, op, tensors, constant shapes (never the constants themselves)."""
        return (f"Node({short_name(self.name)}, {self.op}{constants_text(self)}, "
                f"{tensors_text(self.inputs, self.output)})")


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


def activation_name(activation) -> str:
    if activation is None:
        return "none"
    if activation == "relu":
        return "relu"
    kind, lo, hi = activation
    return f"clip({lo:g},{hi:g})"


def conv_output_hw(in_hw, kernel, stride, pads) -> tuple[int, int]:
    """Output height and width of a conv or pool window."""
    (h, w), (kh, kw), (sh, sw) = in_hw, kernel, stride
    top, left, bottom, right = pads
    return (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
