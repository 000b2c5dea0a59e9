"""The float reference executor: runs the float IR in NumPy (float32 like ONNX Runtime).

Calibration runs it to log MSB histograms; validation compares the integer golden model with it;
tests compare it with onnxruntime (with a tolerance: float against float).
"""

from __future__ import annotations

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.golden import windows as win
from fpgagen.ir.graph import Graph, Node


def apply_activation(y: np.ndarray, activation) -> np.ndarray:
    if activation is None:
        return y
    if activation == "relu":
        return np.maximum(y, 0)
    _, lo, hi = activation
    return np.clip(y, lo, hi)


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def run_node(node: Node, args: list[np.ndarray], dtype=np.float32) -> np.ndarray:
    """One layer on a batch (float)."""
    x = args[0]
    a = node.attrs
    if node.op == "conv":
        y = win.conv_matmul(x, node.weight, a["kernel"], a["stride"], a["pads"], a["groups"], dtype)
        if node.bias is not None:
            y = y + _per_channel(node.bias.astype(dtype), 4)
    elif node.op == "dense":
        y = x.astype(dtype, copy=False) @ node.weight.astype(dtype, copy=False).T
        if node.bias is not None:
            y = y + node.bias.astype(dtype)
    elif node.op == "maxpool":
        y = win.windows(x, a["kernel"], a["stride"], a["pads"], -np.inf).max(axis=(-1, -2))
    elif node.op == "avgpool":
        total = win.windows(x, a["kernel"], a["stride"], a["pads"], 0).sum(axis=(-1, -2))
        y = total / win.avgpool_divisors(x.shape[2:], a)
    elif node.op == "gap":
        y = x.mean(axis=(2, 3), keepdims=True)
    elif node.op == "add":
        y = x + args[1]
    elif node.op == "flatten":
        y = x.reshape(x.shape[0], -1)
    else:  # pragma: no cover - Node() rejects unknown ops
        raise ModelError(f"layer {node.name!r}: no float kernel for op {node.op!r}")
    return apply_activation(y.astype(dtype, copy=False), node.activation)


def check_input(graph: Graph, x: np.ndarray, what: str = "input") -> np.ndarray:
    """``x`` as ``[N, *input shape]``; error naming the shapes when it does not fit."""
    x = np.asarray(x)
    want = graph.shapes[graph.input]
    if x.ndim == len(want) and x.shape == want:
        raise ModelError(
            f"{what}: got one sample of shape {x.shape}; expected a batch [N, {', '.join(map(str, want))}]"
        )
    onnx_shape = tuple(graph.onnx_input_shape or want)
    if tuple(x.shape[1:]) == onnx_shape and onnx_shape != tuple(want):
        x = x.reshape((x.shape[0],) + tuple(want))  # e.g. a 1-D conv's (C, W) is (C, 1, W) here
    if tuple(x.shape[1:]) != tuple(want):
        raise ModelError(
            f"{what}: expected shape [N, {', '.join(map(str, onnx_shape))}] for model {graph.name!r} "
            f"input {graph.input!r}, got {list(x.shape)}"
        )
    return x


def run_float(graph: Graph, x, trace: bool = False, dtype=np.float32):
    """Run the float model on a batch ``x`` ``[N, *input shape]``.

    Returns the output ``[N, *graph.onnx_output_shape]``; with ``trace=True`` also a dict of
    every tensor (IR layout) by name.
    """
    x = check_input(graph, x).astype(dtype, copy=False)
    values = {graph.input: x}
    for node in graph.nodes:
        values[node.output] = run_node(node, [values[t] for t in node.inputs], dtype)
    out = values[graph.output]
    if graph.onnx_output_shape:
        out = out.reshape((out.shape[0],) + tuple(graph.onnx_output_shape))
    return (out, values) if trace else out
