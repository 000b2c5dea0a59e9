"""The float reference executor: runs the float IR in NumPy (float32 like ONNX Runtime).

Calibration runs it to log MSB histograms; validation compares the integer golden model with it;
tests compare it with onnxruntime (with a tolerance: float against float).
"""

from __future__ import annotations

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.ir.graph import Graph, Node, input_to_ir
from fpgagen.ops import get as get_op


def run_node(node: Node, args: list[np.ndarray], dtype=np.float32) -> np.ndarray:
    """One layer on a batch (float): the op's float execution (fpgagen.ops), then its activation."""
    y = get_op(node.op).run_float(node, args, dtype).astype(dtype, copy=False)
    if node.activation is not None and get_op(node.op).takes_activation:
        y = node.activation.apply(y)
    return y


def check_input(graph: Graph, x: np.ndarray, what: str = "input", ir_layout: bool = False) -> np.ndarray:
    """``x`` as ``[N, *IR input shape]`` (from the model's own layout, e.g. a 1-D conv's (C, W) is
    (C, 1, W) here and an NHWC input is transposed; with ``ir_layout`` ``x`` is in the IR layout
    already); error naming the shapes when it does not fit."""
    x = np.asarray(x)
    want = graph.shapes[graph.input]
    onnx_shape = tuple(graph.onnx_input_shape or want)
    if x.ndim == len(want) and x.shape == want and x.shape[1:] != onnx_shape:
        raise ModelError(
            f"{what}: got one sample of shape {x.shape}; expected a batch [N, {', '.join(map(str, want))}]"
        )
    got = input_to_ir(graph, x, ir_layout) if x.ndim >= 1 else None
    if got is None:
        raise ModelError(
            f"{what}: expected shape [N, {', '.join(map(str, onnx_shape))}] for model {graph.name!r} "
            f"input {graph.input!r}, got {list(x.shape)}"
        )
    return got


def run_float(graph: Graph, x, trace: bool = False, dtype=np.float32, ir_layout: bool = False):
    """Run the float model on a batch ``x`` ``[N, *input shape]`` (the model's own layout; with
    ``ir_layout`` the IR's).

    Returns the output ``[N, *graph.onnx_output_shape]``; with ``trace=True`` also a dict of
    every tensor (IR layout) by name.
    """
    x = check_input(graph, x, ir_layout=ir_layout).astype(dtype, copy=False)
    values = {graph.input: x}
    for node in graph.nodes:
        values[node.output] = run_node(node, [values[t] for t in node.inputs], dtype)
    out = values[graph.output]
    if graph.onnx_output_shape:
        out = out.reshape((out.shape[0],) + tuple(graph.onnx_output_shape))
    return (out, values) if trace else out
