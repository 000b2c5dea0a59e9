"""Sliding windows shared by the float executor and the integer golden model.

Both models see a conv or pool window the same way: the batch of feature maps ``[N, C, H, W]``
is padded (with a given value), then every window position becomes one column of an im2col
matrix (convolutions) or one strided view (pools). Keeping this in one place means the float and integer models cannot disagree on
which pixels a window covers.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view



def conv_output_hw(in_hw, kernel, stride, pads) -> tuple[int, int]:
    """Output height and width of a conv or pool window."""
    (h, w), (kh, kw), (sh, sw) = in_hw, kernel, stride
    top, left, bottom, right = pads
    return (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1


def pad(x: np.ndarray, pads, value=0) -> np.ndarray:
    """Pad ``[N, C, H, W]`` by ``(top, left, bottom, right)`` with ``value``."""
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(x: np.ndarray, kernel, stride, pads, value=0) -> np.ndarray:
    """A strided view ``[N, C, OH, OW, kh, kw]`` of every window of the padded input."""
    kh, kw = kernel
    sh, sw = stride
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    view = sliding_window_view(pad(x, pads, value), (kh, kw), axis=(2, 3))
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def window_max(x: np.ndarray, kernel, stride, pads, low) -> np.ndarray:
    """The maximum of each window, ``[N, C, OH, OW]``, the padding being ``low`` (never wins):
    the running maximum over the kernel's taps, each a strided ``[N, C, OH, OW]`` view of the
    padded input (one pass per tap, no per-window reduction)."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    xp = pad(x, pads, low)
    taps = [xp[:, :, u : u + (oh - 1) * sh + 1 : sh, v : v + (ow - 1) * sw + 1 : sw]
            for u in range(kh) for v in range(kw)]
    y = taps[0].copy()
    for tap in taps[1:]:
        np.maximum(y, tap, out=y)
    return y


#: elements of the im2col buffer of one chunk of samples (2 MB of float32: it stays in cache
#: between its copy, its matmul and the epilogue; measured best on the MNIST CNN's layers)
CONV_CHUNK_ELEMENTS = 1 << 19
#: a stride-1 conv computes whole padded rows (and drops the last ``kw - 1`` columns) while this
#: costs at most this factor of extra multiply-adds: its im2col is then one contiguous copy per tap
#: (the 4x4 maps of the digits CNN, 3x3 padded, are 1.5 and faster so; the MNIST CNN's are 1.09)
FULL_ROW_WASTE = 1.5


def conv_matmul(x: np.ndarray, weight: np.ndarray, kernel, stride, pads, groups: int,
                dtype, bias=None, epilogue=None) -> np.ndarray:
    """``sum(w * x) (+ bias)`` over each window, as a C-contiguous ``[N, Co, OH, OW]`` in ``dtype``.

    Per chunk of ``n`` samples, im2col into one reused buffer laid out ``[groups, Ci/g*kh*kw (+1),
    n, P]`` and one BLAS matmul per group, ``[Co/g, Ci/g*kh*kw (+1)] @ cols``; the bias is the
    matmul's last column, against a row of ones. A stride-1 conv takes whole padded rows
    (``P = OH * Wp``, see :data:`FULL_ROW_WASTE`): each tap's copy is then a contiguous run per
    sample and channel, and the surplus columns are dropped afterwards; otherwise ``P = OH * OW``,
    each tap a strided block.

    ``epilogue(acc, out)`` turns each chunk's accumulators ``acc`` (a strided ``[n, Co, OH, OW]``
    view of the matmul's result) into ``out``, the chunk's block of the result, while they are in
    cache: the golden model's requantizer, fused. Without one, ``acc`` is copied.
    """
    n, c, h, w = x.shape
    co = weight.shape[0]
    kh, kw = kernel
    sh, sw = stride
    top, left, bottom, right = pads
    hp, wp = h + top + bottom, w + left + right
    oh, ow = conv_output_hw((h, w), kernel, stride, pads)
    cg, og = c // groups, co // groups
    taps = cg * kh * kw
    ones = bias is not None
    full_rows = sh == sw == 1 and wp <= FULL_ROW_WASTE * ow
    width = wp if full_rows else ow
    wm = np.empty((groups, og, taps + ones), dtype=dtype)  # columns in (c, u, v) order, then the bias
    wm[..., :taps] = weight.reshape(groups, og, taps)
    if ones:
        wm[..., taps] = np.asarray(bias).reshape(groups, og)
    chunk = min(n, max(1, CONV_CHUNK_ELEMENTS // max(1, oh * width * kh * kw * c)))
    cols = np.zeros((groups, taps + ones, chunk, oh, width), dtype=dtype)
    cols[:, taps:] = 1
    tap_cols = cols[:, :taps].reshape(groups, cg, kh, kw, chunk, oh, width)
    acc = np.empty((groups, og, chunk, oh, width), dtype=dtype)
    out = np.empty((n, co, oh, ow), dtype=dtype)
    for start in range(0, n, chunk):
        xb = pad(x[start : start + chunk].astype(dtype, copy=False), pads)
        m = len(xb)
        xg = xb.reshape(m, groups, cg, hp, wp).transpose(1, 2, 0, 3, 4)  # [groups, cg, m, hp, wp]
        if full_rows:  # tap (u, v) of output pixel p (row-major over oh x wp) is input pixel u*wp + v + p
            flat = xg.reshape(groups, cg, m, hp * wp)
            runs = tap_cols.reshape(groups, cg, kh, kw, chunk, oh * wp)
            for u in range(kh):
                for v in range(kw):
                    o = u * wp + v
                    run = min(oh * wp, hp * wp - o)  # the last row's surplus columns stay 0
                    runs[:, :, u, v, :m, :run] = flat[..., o : o + run]
        else:
            for u in range(kh):
                for v in range(kw):
                    tap_cols[:, :, u, v, :m] = xg[..., u : u + (oh - 1) * sh + 1 : sh, v : v + (ow - 1) * sw + 1 : sw]
        res = acc[:, :, :m]
        target = res.reshape(groups, og, m * oh * width)  # a view: (m, oh, width) is contiguous
        if not np.may_share_memory(target, acc):
            raise RuntimeError("conv_matmul: the accumulator block is not a view")  # pragma: no cover
        np.matmul(wm, cols[:, :, :m].reshape(groups, taps + ones, m * oh * width), out=target)
        block = res.transpose(2, 0, 1, 3, 4).reshape(m, co, oh, width)[..., :ow]
        if epilogue is not None:
            epilogue(block, out[start : start + m])
        else:
            out[start : start + m] = block
    return out


def window_counts(in_hw, kernel, stride, pads, counted=(0, 0, 0, 0)) -> np.ndarray:
    """How many pixels each window position covers, ``[OH, OW]``: real pixels plus the padding
    positions of ``counted`` (top, left, bottom, right; at most ``pads``), never the rest."""
    top, left, bottom, right = counted
    ones = np.ones((1, 1, in_hw[0] + top + bottom, in_hw[1] + left + right), dtype=np.int64)
    rest = tuple(int(p) - int(c) for p, c in zip(pads, counted))
    if min(rest) < 0:
        raise ValueError(f"counted padding {tuple(counted)} exceeds the pads {tuple(pads)}")
    return windows(ones, kernel, stride, rest, 0).sum(axis=(-1, -2))[0, 0]


def avgpool_divisors(in_hw, params) -> np.ndarray:
    """The divisor of every window of an ``avgpool`` layer (``params``: its
    :class:`~fpgagen.ops.pool.AvgPoolParams`), ``[OH, OW]`` (ONNX/onnxruntime semantics).

    ``count_include_pad`` 0: the real pixels of the window. 1: the window's positions inside the
    input and its pads, but not inside the extra end padding ``ceil_mode`` adds for a partial last
    window (``params.count_pads``, the pads the divisor counts, defaults to ``pads``)."""
    pads = params.pads
    counted = (0, 0, 0, 0)
    if params.count_include_pad:
        counted = tuple(params.count_pads or pads)
    return window_counts(in_hw, params.kernel, params.stride, pads, counted)
