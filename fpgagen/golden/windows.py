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


#: elements of the im2col matrix built at a time (a few samples' worth)
CONV_CHUNK_ELEMENTS = 1 << 20


def conv_matmul(x: np.ndarray, weight: np.ndarray, kernel, stride, pads, groups: int,
                dtype, bias=None) -> np.ndarray:
    """``sum(w * x) (+ bias)`` over each window, as ``[N, Co, OH, OW]`` in ``dtype``.

    im2col laid out ``[Ci*kh*kw, N*OH*OW]`` (each tap's copy is a contiguous block of rows of
    the NCHW input) and one BLAS matmul per group, ``[Co, Ci*kh*kw] @ cols``, a few samples at a time.
    """
    n, c = x.shape[:2]
    co = weight.shape[0]
    kh, kw = kernel
    sh, sw = stride
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    cg, og = c // groups, co // groups
    wm = weight.astype(dtype, copy=False).reshape(groups, og, cg * kh * kw)  # columns in (c, u, v) order
    out = np.empty((co, n, oh, ow), dtype=dtype)
    chunk = max(1, CONV_CHUNK_ELEMENTS // max(1, oh * ow * kh * kw * c))
    for start in range(0, n, chunk):
        xb = pad(x[start : start + chunk], pads)
        m = len(xb)
        cols = np.empty((c, kh, kw, m, oh, ow), dtype=dtype)
        for u in range(kh):
            for v in range(kw):
                cols[:, u, v] = xb[:, :, u : u + (oh - 1) * sh + 1 : sh, v : v + (ow - 1) * sw + 1 : sw].transpose(1, 0, 2, 3)
        res = np.matmul(wm, cols.reshape(groups, cg * kh * kw, m * oh * ow))  # groups, og, m*oh*ow
        out[:, start : start + m] = res.reshape(co, m, oh, ow)
    if bias is not None:
        out += np.asarray(bias).astype(dtype).reshape(-1, 1, 1, 1)
    return out.transpose(1, 0, 2, 3)


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
