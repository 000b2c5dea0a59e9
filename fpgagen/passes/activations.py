"""Fuse ReLU / Clip(0, k) / LeakyRelu nodes into the layer that computes their input (``Node.activation``).

ReLU and Clip are monotone and elementwise, so they commute with max pooling and with a flatten:
``relu(maxpool(conv(x))) == maxpool(relu(conv(x)))``. An activation after such layers is moved up
to the conv/dense/add/avgpool/gap that quantizes (its requantizer clamps), as long as every tensor
on the way feeds nothing else. Where it cannot get there (the max pool reads the model input, or a
tensor on the way has other readers), the nearest max pool it passed takes it instead: its output
is then clamped to ``[lo, hi]`` (exact: ``relu(max(window)) == max(relu(window))`` and the pool's
format holds every clamped value). Where there is no such pool either (the activation reads the
model input, or a tensor other layers read too), a clamp layer is inserted: a 1x1 max pool with
the activation fused, which every backend has (a vector model input is relabelled ``(N, 1, 1)``
for it, and flattened back after it). Resize, Pad and Flatten commute with every activation here
(f(0) = 0), max pooling with the monotone ones (``Op.commutes``). A LeakyRelu changes the format (its output is signed), so
where it cannot be fused into a requantizing layer it becomes a ``leakyrelu`` layer of its own; with
a negative slope it is not monotone and moves through flattens only.
"""

from __future__ import annotations

from fpgagen.errors import ModelError
from fpgagen.ir.graph import OPS, QUANT_OPS, Graph, Node, activation_name
from fpgagen.names import quoted
from fpgagen.ops import get as get_op
from fpgagen.ops.activation import LeakyRelu, compose
from fpgagen.ops.pool import Window
from fpgagen.passes.pending import bypass, describe

#: layers an activation can move through (they declare it: ``Op.commutes``)
THROUGH_OPS = tuple(op for op in OPS if get_op(op).commutes)
#: layers that can clamp their output without requantizing (the fallback target)
CLAMP_OPS = ("maxpool",)


def _walk_up(graph: Graph, act: Node) -> tuple[list[Node], str]:
    """The through layers above ``act`` whose outputs feed only the chain (nearest first), and the
    tensor where the walk stops (the chain's start). A non-monotone activation (LeakyRelu with a
    negative slope) passes only flattens."""
    tensor = act.inputs[0]
    passed: list[Node] = []
    through = tuple(op for op in THROUGH_OPS if act.activation.monotone or get_op(op).commutes == "all")
    while True:
        prod = graph.producer(tensor)
        if (prod is None or prod.op not in through or len(graph.consumers(tensor)) != 1
                or tensor == graph.output):
            return passed, tensor
        passed.append(prod)
        tensor = prod.inputs[0]


def _target(graph: Graph, act: Node) -> Node | None:
    """The layer that takes ``act``'s activation; None where a clamp layer must be inserted (see
    :func:`_insert_clamp`); a ModelError naming the real cause when neither can be done."""
    passed, tensor = _walk_up(graph, act)
    readers = graph.consumers(tensor)
    prod = graph.producer(tensor)
    shared = len(readers) != 1 or tensor == graph.output
    if not shared and prod is not None and prod.op in QUANT_OPS and get_op(prod.op).takes_activation:
        return prod
    if isinstance(act.activation, LeakyRelu):
        return None  # it changes the format: a leakyrelu layer of its own (never a max pool's clamp)
    pools = [n for n in passed if n.op in CLAMP_OPS]
    if pools:
        return pools[0]
    if prod is None or shared:
        top = tensor  # the start of the chain act <- passed: the clamp goes right after it
        if len(graph.shape(top)) == 3 or (top == graph.input and not shared):
            return None
    via = f" (through {', '.join(describe(n) for n in passed)})" if passed else ""
    what = activation_name(act.activation)
    if shared:
        others = [quoted(r.name) for r in readers if r is not act and all(r is not p for p in passed)]
        if tensor == graph.output:
            others.append("the model output")
        who = f"computed by {describe(prod)}" if prod is not None else "the model input"
        raise ModelError(
            f"{describe(act)}{via}: its input {quoted(tensor)} ({who}, a vector of "
            f"{graph.shape(tensor)[0]}) is also read by {', '.join(others)}; fpgagen fuses an activation into the "
            f"layer that computes its input (or a max pool between them), or clamps a feature map with a "
            f"1x1 max pool, so that vector must feed only the activation"
        )
    raise ModelError(
        f"{describe(act)} cannot be fused: its input comes from {describe(prod)}{via}; fpgagen fuses an "
        f"activation into a {', '.join(QUANT_OPS)} layer (through {', '.join(THROUGH_OPS)}) or a max pool"
    )


def _fresh(graph: Graph, base: str) -> str:
    """A tensor name not in use, from ``base``."""
    name, i = base, 1
    while name in graph.shapes or any(name == t for n in graph.nodes for t in (n.output, *n.inputs)):
        name, i = f"{base}_{i}", i + 1
    return name


def _insert_clamp(graph: Graph, act: Node) -> None:
    """Replace ``act`` by a clamp layer (a 1x1 max pool with the activation fused) at the start of
    its chain of through layers: right after the tensor it cannot be fused into."""
    chain, tensor = _walk_up(graph, act)
    reader = chain[-1] if chain else act  # the node that reads `tensor` on the activation's path
    unit = Window((1, 1))
    clamp_name = f"{act.name}/clamp"
    shape = graph.shape(tensor)
    src = tensor
    new_nodes = []
    if len(shape) == 1:  # the model input, read by this chain only: relabel it (N, 1, 1)
        if not graph.onnx_input_shape:
            graph.onnx_input_shape = tuple(shape)
        graph.shapes[tensor] = (shape[0], 1, 1)
        out = _fresh(graph, f"{tensor}/clamped")
        flat = _fresh(graph, f"{tensor}/clamped_flat")
        graph.shapes[out], graph.shapes[flat] = (shape[0], 1, 1), tuple(shape)
        new_nodes = [Node(clamp_name, "maxpool", [src], out, params=unit, activation=act.activation,
                          onnx_nodes=list(act.onnx_nodes), onnx_op=act.onnx_op),
                     Node(f"{act.name}/flatten", "flatten", [out], flat, onnx_nodes=list(act.onnx_nodes),
                          onnx_op=act.onnx_op)]
        new_src = flat
    else:
        out = _fresh(graph, f"{tensor}/clamped")
        graph.shapes[out] = tuple(shape)
        new_nodes = [Node(clamp_name, "maxpool", [src], out, params=unit, activation=act.activation,
                          onnx_nodes=list(act.onnx_nodes), onnx_op=act.onnx_op)]
        new_src = out
    reader.inputs = [new_src if t == src else t for t in reader.inputs]
    at = graph.nodes.index(reader)
    graph.nodes[at:at] = new_nodes
    bypass(graph, act)


def _composes(first, second) -> bool:
    try:
        compose(first, second)
    except ModelError:
        return False
    return True


def _standalone(graph: Graph, act: Node) -> None:
    """Replace the pending ``act`` by a ``leakyrelu`` layer in the same place: an elementwise
    requantizer with the activation (a LeakyRelu, or one that does not compose with the layer below)."""
    graph.nodes[graph.nodes.index(act)] = Node(act.name, "leakyrelu", list(act.inputs), act.output,
                                               activation=act.activation, onnx_nodes=list(act.onnx_nodes),
                                               onnx_op=act.onnx_op)


def fuse_activations(graph: Graph) -> bool:
    """Fuse one ``act`` node into the layer that takes it (see :func:`_target`), or replace it by a
    clamp layer (ReLU, Clip) or a ``leakyrelu`` layer where none can; True when changed."""
    for act in [n for n in graph.nodes if n.op == "act"]:
        target = _target(graph, act)
        if target is not None and not _composes(target.activation, act.activation):
            _standalone(graph, act)  # e.g. a ReLU after a LeakyRelu of negative slope: a layer of its own
            return True
        if target is None:
            if isinstance(act.activation, LeakyRelu):
                _standalone(graph, act)
            else:
                _insert_clamp(graph, act)
            return True
        target.activation = compose(target.activation, act.activation)
        target.onnx_nodes = target.onnx_nodes + act.onnx_nodes
        bypass(graph, act)
        return True
    return False
