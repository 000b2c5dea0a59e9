"""Nodes the frontend emits that are not IR layers yet; the passes rewrite them away.

The ONNX frontend maps every ONNX node it understands either to an IR layer (:mod:`fpgagen.ir.graph`)
or to a :class:`PendingNode` with one of :data:`PENDING_OPS`:

- ``affine``: ``y = x * weight + bias`` elementwise, with ``weight``/``bias`` broadcastable to the
  tensor's IR shape (``(C, 1, 1)`` per channel for a feature map, ``(N,)`` for a vector, ``()``
  for a scalar). A BatchNormalization, or a Mul/Div/Add/Sub with a constant. Folded into the conv
  or dense layer before it (:mod:`fpgagen.passes.fold_affine`), or after it where that is exact.
- ``act``: a ReLU, Clip(0, k) or LeakyRelu (``activation``), fused into the layer that computes its input
  (a LeakyRelu that cannot be fused becomes a ``leakyrelu`` layer).
- ``identity``: Identity, Dropout, a Cast to float: removed.
- ``softmax``: a Softmax/LogSoftmax; dropped when it computes the model output (argmax is unchanged).

``attrs["onnx_desc"]`` names the ONNX node for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpgagen.errors import ModelError
from fpgagen.ir.graph import Graph, Node
from fpgagen.names import quoted
from fpgagen.ops.activation import coerce as coerce_activation

PENDING_OPS = ("affine", "act", "identity", "softmax")


@dataclass
class PendingNode(Node):
    """A node the passes must remove or fold before the graph is an IR graph."""

    def __post_init__(self) -> None:
        if self.op not in PENDING_OPS:
            raise ModelError(f"node {quoted(self.name)}: unknown pending op {self.op!r}, expected one of {PENDING_OPS}")
        self.activation = coerce_activation(self.activation, f"node {quoted(self.name)}")


def describe(node: Node) -> str:
    """``"BatchNormalization '/bn1/BatchNormalization'"``: the ONNX op and node name."""
    return f"{node.onnx_op or node.op} {quoted(node.name)}"


def rename_tensor(graph: Graph, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` everywhere (producer output, consumer inputs, graph ends)."""
    for node in graph.nodes:
        if node.output == old:
            node.output = new
        node.inputs = [new if t == old else t for t in node.inputs]
    if graph.input == old:
        graph.input = new
    if graph.output == old:
        graph.output = new
    if old in graph.shapes:
        graph.shapes.setdefault(new, graph.shapes[old])
        del graph.shapes[old]
    _move_quant(graph, old, new)


def _move_quant(graph: Graph, old: str, new: str) -> None:
    """The model's format of tensor ``old`` (QDQ import) now belongs to ``new``, which holds the
    same values; two different formats for them are an error."""
    point = graph.quant.pop(old, None)
    if point is None:
        return
    other = graph.quant.get(new)
    if other is not None and other.fmt != point.fmt:
        raise ModelError(f"model {quoted(graph.name)}: tensor {quoted(new)} is quantized twice, to {other.fmt} by "
                         f"{other.origin} and to {point.fmt} by {point.origin}, with nothing computed in between")
    graph.quant.setdefault(new, point)


def bypass(graph: Graph, node: Node) -> None:
    """Remove a one-input node whose output equals its input (same data, same IR shape).

    When the input is computed by a node that feeds only ``node``, that node takes over the
    output name (so the names after it are kept); otherwise the readers of the output read the
    input instead.
    """
    src, dst = node.inputs[0], node.output
    producer = graph.producer(src)
    graph.nodes.remove(node)
    if producer is not None and not graph.consumers(src) and src != graph.output:
        producer.output = dst
        graph.shapes.pop(src, None)
        _move_quant(graph, src, dst)
    else:
        for other in graph.nodes:
            other.inputs = [src if t == dst else t for t in other.inputs]
        if graph.output == dst:
            graph.output = src
        graph.shapes.pop(dst, None)
        _move_quant(graph, dst, src)


def prune_shapes(graph: Graph) -> None:
    used = {graph.input, graph.output}
    for node in graph.nodes:
        used.update(node.inputs)
        used.add(node.output)
    for tensor in list(graph.shapes):
        if tensor not in used:
            del graph.shapes[tensor]
