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


def requantize(acc: np.ndarray, shift: int, lo: int, hi: int, leaky=None) -> np.ndarray:
    """SPEC.md 3: round half away from zero by ``shift`` (left shift if ``<= 0``), clamp to [lo, hi].

    ``leaky = (A, Fal)``, a fused LeakyRelu's integer slope ``A = round(alpha * 2**Fal)``: a
    negative ``acc`` is requantized as ``acc * A`` by ``shift + Fal`` instead (SPEC.md 3)."""
    if leaky is None:
        return np.clip(shift_round(acc, shift), lo, hi)
    acc = np.asarray(acc, np.int64)
    alpha, frac = leaky
    neg = shift_round(acc * np.int64(alpha), shift + frac)
    return np.clip(np.where(acc >= 0, shift_round(acc, shift), neg), lo, hi)


def leakyrelu(x: np.ndarray, shift: int, lo: int, hi: int, leaky) -> np.ndarray:
    """A standalone LeakyRelu: the input integers are the accumulator, ``shift = Fx - Fy``."""
    return requantize(np.asarray(x, np.int64), shift, lo, hi, leaky)


def concat(xs, shifts, lo: int, hi: int, leaky=None) -> np.ndarray:
    """Channel concat: each input requantized to the output format by its own shift (and a fused
    ReLU/Clip/LeakyRelu), then the channels placed in input order (axis 1)."""
    return np.concatenate([requantize(np.asarray(x, np.int64), s, lo, hi, leaky) for x, s in zip(xs, shifts)],
                          axis=1)


def resize_nearest(x: np.ndarray, factors) -> np.ndarray:
    """Nearest-neighbour upsampling by integer factors ``(fh, fw)``: each pixel replicated."""
    fh, fw = factors
    return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)


def pad(x: np.ndarray, pads) -> np.ndarray:
    """Zero padding ``(top, left, bottom, right)`` of ``[N, C, H, W]`` (0 is in every format)."""
    return win.pad(x, pads, 0)


def _requantize_fresh(acc: np.ndarray, shift: int, lo: int, hi: int) -> np.ndarray:
    """:func:`requantize` on an int64 array nobody else holds: computed in place (fast)."""
    if 0 < shift < 63:
        s = np.int64(shift)
        acc -= acc < 0
        acc += np.int64(1) << (s - 1)
        acc >>= s
    else:
        acc = shift_round(acc, shift)
    np.clip(acc, lo, hi, out=acc)
    return acc


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


def _float_requant(acc: np.ndarray, shift: int, lo: int, hi: int, as_float: bool = False) -> np.ndarray:
    """:func:`requantize` of integer-valued float accumulators, exact while ``|acc| + 2**(shift-1)``
    fits the mantissa (the caller checks): adds, a multiply by a power of two and floor are exact."""
    if shift > 0:
        acc -= acc < 0
        acc += acc.dtype.type(2.0 ** (shift - 1))
        acc *= acc.dtype.type(2.0 ** -shift)
        np.floor(acc, out=acc)
    elif shift < 0:
        acc *= acc.dtype.type(2.0 ** -shift)
    np.clip(acc, lo, hi, out=acc)
    return acc if as_float else acc.astype(np.int64)


def _fused_dtype(fan_in: int, weight: np.ndarray, bias, x_max: int, shift: int):
    """The float type in which ``requantize(sum(w*x) + B)`` is exact, or None."""
    bound = fan_in * _max_abs(weight) * x_max + (_max_abs(np.asarray(bias)) if bias is not None else 0)
    bound += 2 ** (shift - 1) if shift > 0 else 0
    if shift < -40 or bound >= _F64_EXACT:
        return None
    return np.float32 if bound < _F32_EXACT else np.float64


def conv_requant(x: np.ndarray, weight, bias, kernel, stride, pads, groups, shift: int, lo: int, hi: int,
                 x_max: int | None = None, as_float: bool = False, leaky=None) -> np.ndarray:
    """``requantize(conv_acc(...))`` computed exactly in float where it provably is (fast);
    ``x_max`` bounds ``|x|`` (default: measured). ``x`` may hold integers as floats; with
    ``as_float`` the result may too (integer-valued float32/float64, exact)."""
    x_max = _max_abs(x) if x_max is None else x_max
    dtype = _fused_dtype(weight[0].size, weight, bias, x_max, shift)
    if dtype is None or leaky is not None:
        x = x.astype(np.int64, copy=False)
        acc = conv_acc(x, weight, bias, kernel, stride, pads, groups)
        return requantize(acc, shift, lo, hi, leaky) if leaky is not None else _requantize_fresh(acc, shift, lo, hi)
    acc = win.conv_matmul(x, weight, kernel, stride, pads, groups, dtype, bias)
    return _float_requant(acc, shift, lo, hi, as_float)


def dense_requant(x: np.ndarray, weight, bias, shift: int, lo: int, hi: int, x_max: int | None = None,
                  as_float: bool = False, leaky=None) -> np.ndarray:
    """``requantize(dense_acc(...))``, exactly in float where it provably is (fast); ``x`` and
    (with ``as_float``) the result may hold integers as floats, as in :func:`conv_requant`."""
    x_max = _max_abs(x) if x_max is None else x_max
    dtype = _fused_dtype(weight.shape[1], weight, bias, x_max, shift)
    if dtype is None or leaky is not None:
        acc = dense_acc(x.astype(np.int64, copy=False), weight, bias)
        return requantize(acc, shift, lo, hi, leaky) if leaky is not None else _requantize_fresh(acc, shift, lo, hi)
    acc = x.astype(dtype, copy=False) @ weight.astype(dtype).T
    if bias is not None:
        acc += np.asarray(bias).astype(dtype)
    return _float_requant(acc, shift, lo, hi, as_float)


def maxpool(x: np.ndarray, kernel, stride, pads, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Max over each window; padding never wins. Integers, or integers held in a float array.
    With a fused ReLU/Clip the result is then clamped to ``[lo, hi]`` (no rounding: same format)."""
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(np.int64).min
    y = win.windows(x, kernel, stride, pads, low).max(axis=(-1, -2))
    if lo is not None:
        y = np.clip(y, lo, hi)
    return y


def window_sum(x: np.ndarray, kernel, stride, pads) -> np.ndarray:
    """Sum of each (zero-padded) window, ``[N, C, OH, OW]``."""
    return win.windows(x, kernel, stride, pads, 0).sum(axis=(-1, -2), dtype=np.int64)


def avgpool(x: np.ndarray, kernel, stride, pads, recip, shift: int, lo: int, hi: int, leaky=None) -> np.ndarray:
    """Average pool: window sum times the integer reciprocal(s) ``recip``, then requantize."""
    total = window_sum(x, kernel, stride, pads)
    return requantize(total * np.asarray(recip, np.int64), shift, lo, hi, leaky)


def gap(x: np.ndarray, recip: int, shift: int, lo: int, hi: int, leaky=None) -> np.ndarray:
    """Global average pool ``[N, C, H, W] -> [N, C, 1, 1]``."""
    total = x.sum(axis=(2, 3), keepdims=True, dtype=np.int64)
    return requantize(total * np.int64(recip), shift, lo, hi, leaky)


def add(a: np.ndarray, b: np.ndarray, align, shift: int, lo: int, hi: int, leaky=None) -> np.ndarray:
    """Residual add: align both inputs by left shifts, add, requantize."""
    total = (a.astype(np.int64) << np.int64(align[0])) + (b.astype(np.int64) << np.int64(align[1]))
    return requantize(total, shift, lo, hi, leaky)
