"""Fuse ReLU / Clip(0, k) nodes into the layer that computes their input (``Node.activation``).

ReLU and Clip are monotone and elementwise, so they commute with max pooling and with a flatten:
``relu(maxpool(conv(x))) == maxpool(relu(conv(x)))``. An activation after such layers is moved up
to the conv/dense/add/avgpool/gap that quantizes (the IR applies activations only there), as long
as every tensor on the way feeds nothing else.
"""

from __future__ import annotations

from fpgagen.errors import ModelError
from fpgagen.ir.graph import QUANT_OPS, Graph, activation_name
from fpgagen.passes.pending import bypass, describe

#: layers an activation can move through (elementwise monotone functions commute with them)
THROUGH_OPS = ("maxpool", "flatten")


def compose(first, second):
    """The activation ``second(first(x))`` (both None, "relu" or ("clip", 0, k))."""
    if first is None:
        return second
    if second is None:
        return first
    his = [a[2] for a in (first, second) if a != "relu"]
    return ("clip", 0.0, min(his)) if his else "relu"


def fuse_activations(graph: Graph) -> bool:
    """Fuse one ``act`` node into its producer; True when the graph changed."""
    for act in [n for n in graph.nodes if n.op == "act"]:
        tensor = act.inputs[0]
        while True:
            readers = graph.consumers(tensor)
            prod = graph.producer(tensor)
            if prod is None:
                raise ModelError(
                    f"{describe(act)} applies {activation_name(act.activation)} to the model input "
                    f"{tensor!r}; fpgagen fuses an activation into the layer that computes its input "
                    f"({', '.join(QUANT_OPS)})"
                )
            if len(readers) != 1 or tensor == graph.output:
                raise ModelError(
                    f"{describe(act)}: its input {tensor!r} (computed by {describe(prod)}) is also read by "
                    f"{', '.join(repr(r.name) for r in readers if r is not act) or 'the model output'}; "
                    f"fpgagen fuses an activation into the layer that computes its input, so that tensor "
                    f"must feed only the activation"
                )
            if prod.op in QUANT_OPS or prod.op == "act":
                prod.activation = compose(prod.activation, act.activation)
                prod.onnx_nodes = prod.onnx_nodes + act.onnx_nodes
                bypass(graph, act)
                return True
            if prod.op in THROUGH_OPS:
                tensor = prod.inputs[0]
                continue
            raise ModelError(
                f"{describe(act)} cannot be fused: its input comes from {describe(prod)}; fpgagen fuses "
                f"an activation into a {', '.join(QUANT_OPS)} layer (through {', '.join(THROUGH_OPS)})"
            )
    return False
