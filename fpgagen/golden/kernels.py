"""The integer golden kernels: the executable form of SPEC.md section 3.

Every function takes and returns ``int64`` arrays in the IR layout (``[N, C, H, W]`` or
``[N, F]``). They are exact: sums of products run through BLAS only where the result provably
fits the float mantissa (float32 below 2**24, float64 below 2**53), else in int64.
Backend tests compare their hardware/C against these functions.
"""

from __future__ import annotations

import numpy as np

from fpgagen.fixed import shift_round
from fpgagen.golden import windows as win

_F32_EXACT = 2**24
_F64_EXACT = 2**53


def _exact_dtype(fan_in: int, max_w: int, max_x: int):
    bound = fan_in * max_w * max_x
    if bound < _F32_EXACT:
        return np.float32
    if bound < _F64_EXACT:
        return np.float64
    return None


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a).max()) if a.size else 0


def requantize(acc: np.ndarray, shift: int, lo: int, hi: int) -> np.ndarray:
    """SPEC.md 3: round half away from zero by ``shift`` (left shift if ``<= 0``), clamp to [lo, hi]."""
    return np.clip(shift_round(acc, shift), lo, hi)


def conv_acc(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, kernel, stride, pads,
             groups: int = 1) -> np.ndarray:
    """Accumulators ``sum(w * x) + B`` of a conv, ``[N, Co, OH, OW]`` (zero padding)."""
    fan_in = weight[0].size
    dtype = _exact_dtype(fan_in, _max_abs(weight), _max_abs(x))
    if dtype is None:
        acc = win.conv_matmul(x.astype(np.int64), weight.astype(np.int64), kernel, stride, pads,
                              groups, np.int64)
    else:
        acc = win.conv_matmul(x, weight, kernel, stride, pads, groups, dtype).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    return acc


def dense_acc(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Accumulators ``x @ w.T + B`` of a fully-connected layer, ``[N, Out]``."""
    dtype = _exact_dtype(weight.shape[1], _max_abs(weight), _max_abs(x))
    if dtype is None:
        acc = x.astype(np.int64) @ weight.astype(np.int64).T
    else:
        acc = (x.astype(dtype) @ weight.astype(dtype).T).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return acc


def maxpool(x: np.ndarray, kernel, stride, pads) -> np.ndarray:
    """Max over each window; padding never wins."""
    low = np.iinfo(np.int64).min
    return win.windows(x, kernel, stride, pads, low).max(axis=(-1, -2))


def window_sum(x: np.ndarray, kernel, stride, pads) -> np.ndarray:
    """Sum of each (zero-padded) window, ``[N, C, OH, OW]``."""
    return win.windows(x, kernel, stride, pads, 0).sum(axis=(-1, -2), dtype=np.int64)


def avgpool(x: np.ndarray, kernel, stride, pads, recip, shift: int, lo: int, hi: int) -> np.ndarray:
    """Average pool: window sum times the integer reciprocal(s) ``recip``, then requantize."""
    total = window_sum(x, kernel, stride, pads)
    return requantize(total * np.asarray(recip, np.int64), shift, lo, hi)


def gap(x: np.ndarray, recip: int, shift: int, lo: int, hi: int) -> np.ndarray:
    """Global average pool ``[N, C, H, W] -> [N, C, 1, 1]``."""
    total = x.sum(axis=(2, 3), keepdims=True, dtype=np.int64)
    return requantize(total * np.int64(recip), shift, lo, hi)


def add(a: np.ndarray, b: np.ndarray, align, shift: int, lo: int, hi: int) -> np.ndarray:
    """Residual add: align both inputs by left shifts, add, requantize."""
    total = (a.astype(np.int64) << np.int64(align[0])) + (b.astype(np.int64) << np.int64(align[1]))
    return requantize(total, shift, lo, hi)
