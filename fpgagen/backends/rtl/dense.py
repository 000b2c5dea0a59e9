"""Parameters and ROM files of ``fpgagen_dense`` (templates/verilog/fpgagen_dense.v).

The builder takes the weight matrix in *stream order*: column ``i`` multiplies the ``i``-th
element of the input stream. After a Flatten of a (C, H, W) map the stream is HWC, so the
caller (the Verilog backend) passes ``layer.weight[:, chw_to_stream(shape)]``; for a plain
vector input the IR's ``[Out, In]`` matrix is already in stream order.
"""

from __future__ import annotations

import numpy as np

from fpgagen.backends.rtl import RtlInstance, ident, pack_words, requant_params, signed_bits
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer

MODULE = "fpgagen_dense"


def dense_cycles(n_in: int, n_out: int, pe: int, simd: int) -> int:
    """Cycles per frame, frames back to back: compute, input or output, whichever is slowest."""
    return max((n_out // pe) * (n_in // simd), n_in, n_out)


def dense_instance(q: QGraph, layer: QLayer, pe: int, simd: int, weights_in_stream_order=None,
                   prefix: str | None = None) -> RtlInstance:
    """``fpgagen_dense`` for ``layer`` with ``pe`` neurons x ``simd`` inputs per cycle.

    ROM files are named ``<prefix>_weights.mem`` and ``<prefix>_bias.mem`` (prefix: the layer
    name as an identifier). See the module header for their layout.
    """
    if layer.op != "dense":
        raise BackendError(f"layer {layer.name!r}: fpgagen_dense builds dense layers, not {layer.op!r}")
    if layer.weight is None or layer.w_fmt is None or layer.acc_width is None:
        raise BackendError(f"layer {layer.name!r} (dense): the integer IR has no weights/accumulator width")
    prefix = ident(prefix or layer.name)
    weight = np.asarray(layer.weight if weights_in_stream_order is None else weights_in_stream_order)
    n_out, n_in = layer.weight.shape
    if weight.shape != (n_out, n_in):
        raise BackendError(
            f"layer {layer.name!r} (dense): weights in stream order must have shape {(n_out, n_in)}, "
            f"got {tuple(weight.shape)}"
        )
    in_shape, out_shape = q.shapes.get(layer.inputs[0]), q.shapes.get(layer.output)
    if in_shape is not None and int(np.prod(in_shape)) != n_in:
        raise BackendError(f"layer {layer.name!r} (dense): {n_in} weight columns but the input has "
                           f"{int(np.prod(in_shape))} elements {tuple(in_shape)}")
    if out_shape is not None and int(np.prod(out_shape)) != n_out:
        raise BackendError(f"layer {layer.name!r} (dense): {n_out} neurons but the output has "
                           f"{int(np.prod(out_shape))} elements")
    for what, value, size, unit in (("PE", pe, n_out, "outputs"), ("SIMD", simd, n_in, "inputs")):
        if not isinstance(value, (int, np.integer)) or value < 1 or size % value:
            raise BackendError(f"layer {layer.name!r} (dense): {what} {value} must divide the layer's {size} {unit}")
    if layer.acc_width > 64:
        raise BackendError(f"layer {layer.name!r} (dense): a {layer.acc_width}-bit accumulator is wider than "
                           f"the 64 bits fpgagen_requant takes")
    rq = requant_params(layer)
    x_fmt, w_fmt, y_fmt = layer.in_fmts[0], layer.w_fmt, layer.out_fmt
    w_width = w_fmt.word + (0 if w_fmt.signed else 1)  # the ROM holds two's complement words
    bias = np.zeros(n_out, np.int64) if layer.bias is None else np.asarray(layer.bias, np.int64)
    bias_width = signed_bits(int(bias.min()), int(bias.max()))
    acc_width = max(2, int(layer.acc_width))  # fpgagen_requant takes 2..64 bits
    if bias_width > acc_width:  # an input of zeros gives acc = B, so B fits the accumulator
        raise BackendError(f"layer {layer.name!r} (dense): bias needs {bias_width} bits, more than the "
                           f"{layer.acc_width}-bit accumulator")

    ng, nk = n_out // pe, n_in // simd
    # line g*nk + k: weights of neurons g*pe + p for inputs k*simd + s, element (p, s) at p*simd + s
    blocks = weight.reshape(ng, pe, nk, simd).transpose(0, 2, 1, 3).reshape(ng * nk, pe * simd)
    wlines = pack_words(blocks, w_width)
    blines = pack_words(bias.reshape(ng, pe), bias_width)
    wname, bname = f"{prefix}_weights.mem", f"{prefix}_bias.mem"
    head = f"// {layer.name}: "
    mems = {
        wname: head + f"weights {w_fmt}, {ng}x{nk} words of PE {pe} x SIMD {simd} x {w_width} bits "
                      f"(line g*{nk}+k, element p*{simd}+s at the LSB end)\n" + "\n".join(wlines) + "\n",
        bname: head + f"bias at the accumulator frac {layer.acc_frac}, {ng} words of PE {pe} x {bias_width} bits\n"
                      + "\n".join(blines) + "\n",
    }
    params = {
        "IN_WIDTH": x_fmt.word,
        "IN_SIGNED": int(x_fmt.signed),
        "W_WIDTH": w_width,
        "BIAS_WIDTH": bias_width,
        "OUT_WIDTH": y_fmt.word,
        "N_IN": n_in,
        "N_OUT": n_out,
        "PE": int(pe),
        "SIMD": int(simd),
        "ACC_WIDTH": acc_width,
        **rq,
        "WEIGHT_FILE": wname,
        "BIAS_FILE": bname,
    }
    cycles = dense_cycles(n_in, n_out, pe, simd)
    describe = (f"dense {n_in} -> {n_out}, in {x_fmt} w {w_fmt} out {y_fmt}, acc s{layer.acc_width}, "
                f"shift {layer.shift}, PE {pe} x SIMD {simd}, {cycles} cycles/frame")
    return RtlInstance(MODULE, params, mems, cycles, describe)

