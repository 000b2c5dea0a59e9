"""The golden model: runs the integer IR with the kernels of :mod:`fpgagen.golden.kernels`.

Every backend must reproduce :func:`run_int` bit for bit.
"""

from __future__ import annotations

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.fixed import quantize
from fpgagen.ir.graph import input_to_ir
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops import get as get_op


def run_layer(layer: QLayer, args: list[np.ndarray], as_float: bool = False) -> np.ndarray:
    """One integer layer on a batch (int64), by its op's golden kernel (fpgagen.ops). With
    ``as_float``, conv, dense, max pool and flatten take and give integers held exactly in float
    arrays (faster between layers); the other ops take int64."""
    return get_op(layer.op).run_int(layer, args, as_float)


def check_int_input(q: QGraph, xq, what: str = "golden model input", error=ModelError,
                    ir_layout: bool = False) -> np.ndarray:
    """``xq`` as int64 ``[N, *IR input shape]`` (an input in the model's own layout is relabelled, or
    transposed for an NHWC input; with ``ir_layout`` it is in the IR layout already), checked
    against the input format's range; ``error`` (naming ``what``) otherwise."""
    xq = np.asarray(xq)
    want = tuple(q.shapes[q.input])
    if xq.dtype.kind not in "iu":
        raise error(f"{what}: expected integers of {q.input_fmt}, got dtype {xq.dtype}")
    onnx_shape = tuple(q.onnx_input_shape or want)
    got = input_to_ir(q, xq, ir_layout) if xq.ndim >= 1 else None
    if got is None:
        raise error(
            f"{what}: expected shape [N, {', '.join(map(str, onnx_shape))}], got {list(xq.shape)}"
        )
    xq = got
    fmt = q.input_fmt
    if xq.size and (xq.min() < fmt.min_int or xq.max() > fmt.max_int):
        raise error(
            f"{what}: integers must lie in [{fmt.min_int}, {fmt.max_int}] ({fmt}), "
            f"got [{xq.min()}, {xq.max()}]"
        )
    return xq.astype(np.int64, copy=False)


def run_int(q: QGraph, xq, trace: bool = False, ir_layout: bool = False):
    """Run the integer model on input integers ``xq`` ``[N, *input shape]`` (of ``q.input_fmt``; the
    model's own layout, or with ``ir_layout`` the IR's).

    Returns the output integers ``[N, *onnx output shape]`` (int64); with ``trace=True`` also
    every tensor's integers by name (IR layout).
    """
    values = {q.input: check_int_input(q, xq, ir_layout=ir_layout)}
    # integers of up to 24 bits travel between layers as exact float32/float64 (no int64 passes)
    as_float = all(fmt.word <= 24 for fmt in q.fmts.values())
    for layer in q.layers:
        values[layer.output] = run_layer(layer, [values[t] for t in layer.inputs], as_float)
    if trace:
        values = {name: v.astype(np.int64, copy=False) for name, v in values.items()}
    out = values[q.output].astype(np.int64, copy=False)
    if q.onnx_output_shape:
        out = out.reshape((out.shape[0],) + tuple(q.onnx_output_shape))
    return (out, values) if trace else out


def quantize_input(q: QGraph, x_float) -> np.ndarray:
    """The (already preprocessed) float input quantized to the model's input format."""
    return quantize(x_float, q.input_fmt, q.input_rounding, name=f"input {q.input!r}")
