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
    """The maximum of each window, ``[N, C, OH, OW]``, the padding being ``low`` (never wins).

    Non-overlapping unpadded windows (``stride == kernel``) are a reshape of the input, not a
    strided view: one pass over memory."""
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    (kh, kw), (sh, sw) = kernel, stride
    if (kh, kw) == (sh, sw) and not any(pads):
        n, c = x.shape[:2]
        return x[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow, kw).max(axis=(3, 5))
    return windows(x, kernel, stride, pads, low).max(axis=(-1, -2))


#: elements of the im2col buffer of one chunk of samples (1 MB of float32: it stays in the L2
#: cache between its copy, its matmul and the epilogue)
CONV_CHUNK_ELEMENTS = 1 << 18


def conv_matmul(x: np.ndarray, weight: np.ndarray, kernel, stride, pads, groups: int,
                dtype, bias=None, epilogue=None) -> np.ndarray:
    """``sum(w * x) (+ bias)`` over each window, as a C-contiguous ``[N, Co, OH, OW]`` in ``dtype``.

    Per chunk of samples, im2col into one reused buffer laid out ``[n, Ci, kh, kw, OH*OW]`` (each
    tap's copy is a strided block of the NCHW input; a 1x1 stride-1 conv reads its input as is),
    then one BLAS matmul per sample and group, ``[Co/g, Ci/g*kh*kw] @ cols``, written straight
    into the output. ``epilogue(block)`` then works in place on the chunk's ``[n, Co, OH, OW]``
    block while it is still in cache (the golden model's requantizer, fused).
    """
    n, c = x.shape[:2]
    co = weight.shape[0]
    kh, kw = kernel
    sh, sw = stride
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    cg, og = c // groups, co // groups
    taps = cg * kh * kw
    wm = weight.astype(dtype, copy=False).reshape(groups, og, taps)  # columns in (c, u, v) order
    b = None if bias is None else np.asarray(bias).astype(dtype).reshape(co, 1, 1)
    out = np.empty((n, co, oh, ow), dtype=dtype)
    direct = kh == kw == 1 and sh == sw == 1 and not any(pads) and x.dtype == dtype
    chunk = max(1, CONV_CHUNK_ELEMENTS // max(1, oh * ow * kh * kw * c))
    cols = None if direct else np.empty((min(chunk, n), c, kh, kw, oh, ow), dtype=dtype)
    for start in range(0, n, chunk):
        xb = x[start : start + chunk]
        m = len(xb)
        if direct:
            block = xb.reshape(m, groups, taps, oh * ow)
        else:
            xb = pad(xb, pads)
            for u in range(kh):
                for v in range(kw):
                    cols[:m, :, u, v] = xb[:, :, u : u + (oh - 1) * sh + 1 : sh, v : v + (ow - 1) * sw + 1 : sw]
            block = cols[:m].reshape(m, groups, taps, oh * ow)
        res = out[start : start + m]
        np.matmul(wm, block, out=res.reshape(m, groups, og, oh * ow))
        if b is not None:
            res += b
        if epilogue is not None:
            epilogue(res)
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


def avgpool_divisors(in_hw, attrs: dict) -> np.ndarray:
    """The divisor of every window of an ``avgpool`` layer, ``[OH, OW]`` (ONNX/onnxruntime semantics).

    ``count_include_pad`` 0: the real pixels of the window. 1: the window's positions inside the
    input and its pads, but not inside the extra end padding ``ceil_mode`` adds for a partial last
    window (``attrs["count_pads"]``, the pads the divisor counts, defaults to ``pads``)."""
    pads = attrs["pads"]
    counted = (0, 0, 0, 0)
    if attrs.get("count_include_pad", False):
        counted = tuple(attrs.get("count_pads", pads))
    return window_counts(in_hw, attrs["kernel"], attrs["stride"], pads, counted)
