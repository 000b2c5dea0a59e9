"""Sliding windows shared by the float executor and the integer golden model.

Both models see a conv or pool window the same way: the batch of feature maps ``[N, C, H, W]``
is padded (with a given value), then every window position becomes one row of an im2col
matrix. Keeping this in one place means the float and integer models cannot disagree on
which pixels a window covers.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fpgagen.ir.graph import conv_output_hw


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


def im2col(x: np.ndarray, kernel, stride, pads, groups: int = 1) -> np.ndarray:
    """Windows as matrices ``[groups, N*OH*OW, C/groups*kh*kw]`` (C-major, then kh, kw)."""
    n, c = x.shape[:2]
    win = windows(x, kernel, stride, pads)  # N, C, OH, OW, kh, kw
    _, _, oh, ow, kh, kw = win.shape
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    cols = win.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n * oh * ow, (c // groups) * kh * kw)
    return cols


#: elements of the im2col matrix built at a time: small enough to stay in cache
CONV_CHUNK_ELEMENTS = 1 << 20


def conv_matmul(x: np.ndarray, weight: np.ndarray, kernel, stride, pads, groups: int,
                dtype, bias=None) -> np.ndarray:
    """``sum(w * x) (+ bias)`` over each window, as ``[N, Co, OH, OW]`` in ``dtype``.

    Channel-last im2col (``[N*OH*OW, kh*kw*Ci]``) and one BLAS matmul per group, built a few
    samples at a time so the matrix stays in cache.
    """
    n, c = x.shape[:2]
    co = weight.shape[0]
    kh, kw = kernel
    sh, sw = stride
    oh, ow = conv_output_hw(x.shape[2:], kernel, stride, pads)
    cg, og = c // groups, co // groups
    # weights as [groups, kh*kw*cg, og], rows in (u, v, ci) order like the im2col columns
    wm = weight.astype(dtype, copy=False).reshape(groups, og, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    wm = np.ascontiguousarray(wm.reshape(groups, kh * kw * cg, og))
    out = np.empty((n, oh, ow, co), dtype=dtype)
    chunk = max(1, CONV_CHUNK_ELEMENTS // max(1, oh * ow * kh * kw * c))
    for start in range(0, n, chunk):
        xb = pad(x[start : start + chunk], pads).transpose(0, 2, 3, 1).astype(dtype)
        m = len(xb)
        cols = np.empty((m, oh, ow, kh, kw, c), dtype=dtype)
        for u in range(kh):
            for v in range(kw):
                cols[:, :, :, u, v, :] = xb[:, u : u + (oh - 1) * sh + 1 : sh, v : v + (ow - 1) * sw + 1 : sw, :]
        ob = out[start : start + m].reshape(-1, co)
        if groups == 1:
            np.matmul(cols.reshape(-1, kh * kw * c), wm[0], out=ob)
        else:
            cols = cols.reshape(m * oh * ow, kh * kw, groups, cg)
            for g in range(groups):
                ob[:, g * og : (g + 1) * og] = cols[:, :, g, :].reshape(-1, kh * kw * cg) @ wm[g]
        if bias is not None:
            ob += np.asarray(bias).astype(dtype)
    return out.transpose(0, 3, 1, 2)


def window_counts(in_hw, kernel, stride, pads) -> np.ndarray:
    """How many real (not padding) pixels each window position covers, ``[OH, OW]``."""
    ones = np.ones((1, 1, *in_hw), dtype=np.int64)
    return windows(ones, kernel, stride, pads, 0).sum(axis=(-1, -2))[0, 0]
