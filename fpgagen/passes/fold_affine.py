"""Fold per-channel affine nodes (BatchNormalization, Mul/Add/Sub/Div by a constant) into conv/dense.

Every rewrite is exact in real arithmetic:

- two affines in a row become one;
- backward: ``affine(conv(x))`` -> the conv's weights and bias scaled per output channel, when the
  conv (or dense) has no fused activation yet and feeds only the affine;
- forward: ``dense(affine(x))`` (possibly through a flatten) and ``conv(affine(x))`` -> the next
  layer's weights scaled per input and its bias shifted by ``W @ shift``. For a conv that pads its
  input this is exact only when the shift is zero (padding zeros are not shifted), so a padded
  conv after a shifting affine is an error.

Anything else is a :class:`~fpgagen.errors.ModelError` naming the ONNX node and why.
"""

from __future__ import annotations

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.ir.graph import Graph, Node
from fpgagen.names import quoted
from fpgagen.passes.pending import bypass, describe


def _full(v, shape) -> np.ndarray:
    """``v`` broadcast to ``shape`` as float64 (error when it does not broadcast)."""
    return np.broadcast_to(np.asarray(v, np.float64), shape)


def _per_channel(v, shape) -> np.ndarray | None:
    """``v`` as one value per channel (axis 0) of ``shape``, or None when it varies inside a channel."""
    full = _full(v, shape)
    if len(shape) == 1:
        return full.copy()
    first = full.reshape(shape[0], -1)
    if not (first == first[:, :1]).all():
        return None
    return first[:, 0].copy()


def _scale_shift(node: Node) -> tuple[np.ndarray, np.ndarray]:
    return (np.ones(()) if node.weight is None else node.weight), (np.zeros(()) if node.bias is None else node.bias)


def _merge_pair(graph: Graph, first: Node, second: Node) -> None:
    """``second(first(x))`` as one affine in ``second``'s place."""
    s1, t1 = _scale_shift(first)
    s2, t2 = _scale_shift(second)
    second.weight = (np.asarray(s1, np.float64) * s2).astype(np.float32)
    second.bias = (np.asarray(t1, np.float64) * s2 + t2).astype(np.float32)
    second.inputs = list(first.inputs)
    second.onnx_nodes = first.onnx_nodes + second.onnx_nodes
    graph.nodes.remove(first)
    graph.shapes.pop(first.output, None)


def _fold_backward(graph: Graph, prod: Node, aff: Node) -> bool:
    shape = graph.shapes[prod.output]
    s, t = _scale_shift(aff)
    s_c, t_c = _per_channel(s, shape), _per_channel(t, shape)
    if s_c is None or t_c is None:
        return False  # varies within a channel: only a following dense can absorb it
    w = prod.weight.astype(np.float64)
    prod.weight = (w * s_c.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    b = np.zeros(w.shape[0]) if prod.bias is None else prod.bias.astype(np.float64)
    prod.bias = (b * s_c + t_c).astype(np.float32)
    prod.onnx_nodes = prod.onnx_nodes + aff.onnx_nodes
    bypass(graph, aff)
    return True


def _fold_into_dense(graph: Graph, aff: Node, dense: Node, shape) -> None:
    s, t = _scale_shift(aff)
    s_v, t_v = _full(s, shape).ravel(), _full(t, shape).ravel()
    w = dense.weight.astype(np.float64)
    b = np.zeros(w.shape[0]) if dense.bias is None else dense.bias.astype(np.float64)
    dense.weight = (w * s_v[None, :]).astype(np.float32)
    dense.bias = (b + w @ t_v).astype(np.float32)
    dense.onnx_nodes = dense.onnx_nodes + aff.onnx_nodes


def _fold_into_conv(graph: Graph, aff: Node, conv: Node, shape) -> str | None:
    """Fold ``aff`` into the conv after it; the reason it cannot, or None when done."""
    s, t = _scale_shift(aff)
    s_c, t_c = _per_channel(s, shape), _per_channel(t, shape)
    if s_c is None or t_c is None:
        return f"its constant varies within a channel, so it cannot be folded into conv {quoted(conv.name)}"
    if any(conv.params.pads) and (t_c != 0).any():
        return (f"conv {quoted(conv.name)} after it pads its input with zeros (pads {tuple(conv.params.pads)}), "
                f"which would not be shifted; folding is exact only for an unpadded conv")
    w = conv.weight.astype(np.float64)
    co, cig = w.shape[:2]
    cog = co // conv.params.groups
    idx = (np.arange(co) // cog)[:, None] * cig + np.arange(cig)[None, :]  # input channel of w[o, ci]
    b = np.zeros(co) if conv.bias is None else conv.bias.astype(np.float64)
    conv.bias = (b + (w * t_c[idx][:, :, None, None]).sum(axis=(1, 2, 3))).astype(np.float32)
    conv.weight = (w * s_c[idx][:, :, None, None]).astype(np.float32)
    conv.onnx_nodes = conv.onnx_nodes + aff.onnx_nodes
    return None


def _fold_forward(graph: Graph, aff: Node) -> str | None:
    """Fold into the layer after; the reason it cannot, or None when done."""
    shape = graph.shapes[aff.output]
    readers = graph.consumers(aff.output)
    if aff.output == graph.output or len(readers) != 1:
        return "its output is the model output" if aff.output == graph.output else \
            f"its output feeds {len(readers)} layers"
    nxt = readers[0]
    if nxt.op == "flatten":
        after = graph.consumers(nxt.output)
        if nxt.output != graph.output and len(after) == 1 and after[0].op == "dense":
            _fold_into_dense(graph, aff, after[0], shape)
            bypass(graph, aff)
            return None
        return f"the flatten {quoted(nxt.name)} after it does not feed exactly one dense layer"
    if nxt.op == "dense":
        _fold_into_dense(graph, aff, nxt, shape)
        bypass(graph, aff)
        return None
    if nxt.op == "conv":
        why = _fold_into_conv(graph, aff, nxt, shape)
        if why is None:
            bypass(graph, aff)
        return why
    return f"the layer after it is {describe(nxt)}, not a conv or dense layer"


def fold_affine(graph: Graph) -> bool:
    """Merge or fold one affine node; True when the graph changed."""
    affines = [n for n in graph.nodes if n.op == "affine"]

    def single_producer(aff: Node) -> Node | None:
        src = aff.inputs[0]
        prod = graph.producer(src)
        return prod if prod is not None and len(graph.consumers(src)) == 1 and src != graph.output else None

    for aff in affines:
        prod = single_producer(aff)
        if prod is not None and prod.op == "affine":
            _merge_pair(graph, prod, aff)
            return True
    for aff in affines:
        prod = single_producer(aff)
        if prod is not None and prod.op in ("conv", "dense") and prod.activation is None:
            if _fold_backward(graph, prod, aff):
                return True
    reasons = []
    for aff in affines:
        why = _fold_forward(graph, aff)
        if why is None:
            return True
        reasons.append(why)
    if affines:
        aff, why = affines[0], reasons[0]
        prod = graph.producer(aff.inputs[0])
        before = "the model input" if prod is None else describe(prod)
        if prod is not None and prod.op in ("conv", "dense") and prod.activation is not None:
            before += " (which already has an activation)"
        raise ModelError(
            f"{describe(aff)} cannot be folded into a neighbouring layer: it comes after {before}, "
            f"which is not a conv/dense layer it can be folded into, and {why}. fpgagen folds "
            f"{aff.onnx_op or 'an affine node'} into the conv/dense layer just before it (no activation "
            f"in between) or into the dense layer or unpadded conv just after it"
        )
    return False
