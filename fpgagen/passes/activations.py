"""Fuse ReLU / Clip(0, k) nodes into the layer that computes their input (``Node.activation``).

ReLU and Clip are monotone and elementwise, so they commute with max pooling and with a flatten:
``relu(maxpool(conv(x))) == maxpool(relu(conv(x)))``. An activation after such layers is moved up
to the conv/dense/add/avgpool/gap that quantizes (its requantizer clamps), as long as every tensor
on the way feeds nothing else. Where it cannot get there (the max pool reads the model input, or a
tensor on the way has other readers), the nearest max pool it passed takes it instead: its output
is then clamped to ``[lo, hi]`` (exact: ``relu(max(window)) == max(relu(window))`` and the pool's
format holds every clamped value).
"""

from __future__ import annotations

from fpgagen.errors import ModelError
from fpgagen.ir.graph import QUANT_OPS, Graph, Node, activation_name
from fpgagen.names import quoted
from fpgagen.passes.pending import bypass, describe

#: layers an activation can move through (elementwise monotone functions commute with them)
THROUGH_OPS = ("maxpool", "flatten")
#: layers that can clamp their output without requantizing (the fallback target)
CLAMP_OPS = ("maxpool",)


def compose(first, second):
    """The activation ``second(first(x))`` (both None, "relu" or ("clip", 0, k))."""
    if first is None:
        return second
    if second is None:
        return first
    his = [a[2] for a in (first, second) if a != "relu"]
    return ("clip", 0.0, min(his)) if his else "relu"


def _target(graph: Graph, act: Node) -> Node:
    """The layer that takes ``act``'s activation; a ModelError naming the real cause when none can."""
    tensor = act.inputs[0]
    passed: list[Node] = []  # the through layers walked up, nearest first
    while True:
        readers = graph.consumers(tensor)
        prod = graph.producer(tensor)
        shared = len(readers) != 1 or tensor == graph.output
        if not shared and prod is not None and (prod.op in QUANT_OPS or prod.op == "act"):
            return prod
        if not shared and prod is not None and prod.op in THROUGH_OPS:
            passed.append(prod)
            tensor = prod.inputs[0]
            continue
        break
    pools = [n for n in passed if n.op in CLAMP_OPS]
    if pools:
        return pools[0]
    via = f" (through {', '.join(describe(n) for n in passed)})" if passed else ""
    what = activation_name(act.activation)
    if prod is None:
        raise ModelError(
            f"{describe(act)} applies {what} to the model input {quoted(tensor)}{via}; fpgagen fuses an activation "
            f"into the layer that computes its input ({', '.join(QUANT_OPS)}) or into a max pool between them, "
            f"and the model input is computed by none"
        )
    if shared:
        others = [quoted(r.name) for r in readers if r is not act and all(r is not p for p in passed)]
        if tensor == graph.output:
            others.append("the model output")
        raise ModelError(
            f"{describe(act)}{via}: its input {quoted(tensor)} (computed by {describe(prod)}) is also read by {', '.join(others)}; "
            f"fpgagen fuses an activation into the layer that computes its input (or a max pool between "
            f"them), so that tensor must feed only the activation"
        )
    raise ModelError(
        f"{describe(act)} cannot be fused: its input comes from {describe(prod)}{via}; fpgagen fuses an "
        f"activation into a {', '.join(QUANT_OPS)} layer (through {', '.join(THROUGH_OPS)}) or a max pool"
    )


def fuse_activations(graph: Graph) -> bool:
    """Fuse one ``act`` node into the layer that takes it (see :func:`_target`); True when changed."""
    for act in [n for n in graph.nodes if n.op == "act"]:
        target = _target(graph, act)
        target.activation = compose(target.activation, act.activation)
        target.onnx_nodes = target.onnx_nodes + act.onnx_nodes
        bypass(graph, act)
        return True
    return False
