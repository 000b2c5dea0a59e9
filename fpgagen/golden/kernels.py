"""The integer golden kernels: the executable form of SPEC.md section 3.

Every function takes and returns ``int64`` arrays in the IR layout (``[N, C, H, W]`` or
``[N, F]``). They are exact: sums of products run through BLAS only where the result provably
fits the float mantissa (float32 below 2**24, float64 below 2**53), else in int64.
Backend tests compare their hardware/C against these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgagen.fixed import DEFAULT_ROUNDING, shift_round
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


def _per_channel(fn, acc, shift, *args):
    """``fn(acc, shift, *args)`` with a vector ``shift``, one per channel (axis 1 of ``acc``):
    applied once per distinct shift to the channels that have it (SPEC.md 3, per-channel formats)."""
    shift = np.asarray(shift, np.int64)
    acc = np.asarray(acc, np.int64)
    if shift.shape != (acc.shape[1],):
        raise ValueError(f"per-channel shifts of shape {list(shift.shape)} for {acc.shape[1]} channels")
    out = np.empty_like(acc)
    for s in np.unique(shift):
        sel = shift == s
        out[:, sel] = fn(acc[:, sel], int(s), *args)
    return out


def requantize(acc: np.ndarray, shift, lo: int, hi: int, leaky=None,
               rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """SPEC.md 3: round by ``shift`` (left shift if ``<= 0``), clamp to [lo, hi]; ``rounding`` is
    ``nearest-away`` (half away from zero, the default) or ``nearest-even`` (an imported model's).

    ``leaky = (A, Fal)``, a fused LeakyRelu's integer slope ``A = round(alpha * 2**Fal)``: a
    negative ``acc`` is requantized as ``acc * A`` by ``shift + Fal`` instead (SPEC.md 3).
    ``shift`` may be a vector, one per channel (axis 1): per-channel weight formats."""
    if np.ndim(shift):
        return _per_channel(requantize, acc, shift, lo, hi, leaky, rounding)
    if leaky is None:
        return np.clip(shift_round(acc, shift, rounding), lo, hi)
    acc = np.asarray(acc, np.int64)
    alpha, frac = leaky
    neg = shift_round(acc * np.int64(alpha), shift + frac, rounding)
    return np.clip(np.where(acc >= 0, shift_round(acc, shift, rounding), neg), lo, hi)


def leakyrelu(x: np.ndarray, shift: int, lo: int, hi: int, leaky, rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """A standalone LeakyRelu: the input integers are the accumulator, ``shift = Fx - Fy``."""
    return requantize(np.asarray(x, np.int64), shift, lo, hi, leaky, rounding)


def concat(xs, shifts, lo: int, hi: int, leaky=None, rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Channel concat: each input requantized to the output format by its own shift (and a fused
    ReLU/Clip/LeakyRelu), then the channels placed in input order (axis 1)."""
    return np.concatenate([requantize(np.asarray(x, np.int64), s, lo, hi, leaky, rounding)
                           for x, s in zip(xs, shifts)], axis=1)


def _requantize_fresh(acc: np.ndarray, shift, lo: int, hi: int,
                      rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """:func:`requantize` on an int64 array nobody else holds: computed in place (fast)."""
    if np.ndim(shift):
        return _per_channel(_requantize_fresh, acc, shift, lo, hi, rounding)
    if rounding != DEFAULT_ROUNDING:
        return requantize(acc, shift, lo, hi, None, rounding)
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


# -- the fast path: conv/dense and requantizer exactly in float --------------------------------------
#: shifts the float path takes: ``2**-shift`` scales the integer weights without leaving the
#: normal float32 range, and the scaled accumulator stays a finite float
_FLOAT_SHIFTS = range(-40, 101)
#: a split dense layer (see :func:`_dense_segments`) has segments of at least this many inputs
_MIN_SEGMENT = 64


@dataclass(frozen=True)
class FloatMac:
    """A conv/dense layer and its requantizer run in float, exactly (SPEC.md 3).

    The weights are ``w * 2**-s`` and the bias ``(B + h) * 2**-s``, with ``h = 2**(s-1)`` for a
    rounding shift into an unsigned range (``lo >= 0``), else 0. Every product ``w*x`` is an
    integer and every partial sum of the matmul (any order, FMA or not) is an integer of
    magnitude at most ``bound = max_o(sum|w_o| * x_max + |B_o|) + 2**(s-1)``, so scaled by
    ``2**-s`` it is a multiple of ``2**-s`` with at most ``log2(bound)`` significant bits: exact in
    float32 when ``bound < 2**24`` (float64: ``2**53``). The float accumulator is then exactly
    ``t = (acc + h) * 2**-s`` and :meth:`finish` gives SPEC.md 3's integers (``even``, the
    nearest-even mode: ``h = 0`` and ``rint(t)``, round half to even of the exact ``t``):

    - ``s <= 0``: ``t = acc * 2**-s``, saturated.
    - ``s > 0``, ``lo >= 0``: ``floor(t) = floor((acc + 2**(s-1)) / 2**s)``, the SPEC's value for
      ``acc >= 0``; for ``acc < 0`` both it and the SPEC's value are ``<= 0 <= lo``: both saturate to ``lo``.
    - ``s > 0``, ``lo < 0``: ``trunc(t + copysign(1/2, t))``, round half away from zero (``t`` exact,
      and ``|t| + 1/2`` too, by the bound).

    Per-channel shifts (a vector ``s_o``): output o's weights and bias are scaled by its own
    ``2**-s_o`` (``h`` likewise), and the bound uses the largest ``h``; the rounding below is the
    one of ``s > 0`` when any ``s_o > 0``, which leaves the exact integers ``t`` of the outputs
    with ``s_o <= 0`` unchanged (``floor(t) = t``, ``trunc(t +- 1/2) = t`` while ``|t| < 2**23``;
    beyond, far outside every output range, both saturate).
    """

    dtype: type
    weight: np.ndarray  # [Co, fan_in], scaled, in dtype
    bias: np.ndarray  # [Co], scaled, in dtype
    shift: object  # int, or per output channel a vector
    lo: int
    hi: int
    even: bool = False

    @property
    def rounds(self) -> bool:
        """Some output is rounded (a shift > 0)."""
        return bool(np.max(self.shift) > 0)

    def finish(self, t: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The integers of the scaled accumulators ``t`` (same float type), into ``out`` (default: ``t``)."""
        out = t if out is None else out
        if self.rounds and self.even:
            np.rint(t, out=out)
        elif self.rounds and self.lo < 0:
            np.add(t, np.copysign(t.dtype.type(0.5), t), out=out)
            np.trunc(out, out=out)
        elif self.rounds:
            np.floor(t, out=out)
        elif out is not t:
            out[...] = t
        np.clip(out, self.lo, self.hi, out=out)
        return out


def _mac_bound(w: np.ndarray, bias: np.ndarray, x_max: int, shift) -> int:
    """``max_o(sum|w_o| * x_max + |B_o|) + 2**(s-1)`` (see :class:`FloatMac`), in Python integers
    where int64 could overflow."""
    fan_in = w.shape[1]
    w_max, b_max = _max_abs(w), _max_abs(bias)
    top = int(np.max(shift))
    half = 2 ** (top - 1) if top > 0 else 0
    loose = fan_in * w_max * x_max + b_max + half
    if loose < _F64_EXACT:  # the tight bound is below it: int64 is safe
        return int((np.abs(w).sum(axis=1) * x_max + np.abs(bias)).max(initial=0)) + half
    return loose


def float_mac(weight, bias, x_max: int, shift: int, lo: int, hi: int,
              rounding: str = DEFAULT_ROUNDING) -> FloatMac | None:
    """The exact float form of a conv/dense requantizer (:class:`FloatMac`), or None when neither
    float32 nor float64 holds it."""
    w = np.asarray(weight, np.int64).reshape(len(weight), -1)
    b = np.zeros(len(w), np.int64) if bias is None else np.asarray(bias, np.int64)
    shifts = np.broadcast_to(np.asarray(shift, np.int64), (len(w),))  # per output
    if (int(shifts.min(initial=0)) not in _FLOAT_SHIFTS or int(shifts.max(initial=0)) not in _FLOAT_SHIFTS
            or max(_max_abs(w), x_max) >= _F32_EXACT):
        return None
    bound = _mac_bound(w, b, x_max, shift)
    if bound >= _F64_EXACT:
        return None
    dtype = np.float32 if bound < _F32_EXACT else np.float64
    even = rounding == "nearest-even"
    half = np.where((shifts > 0) & (lo >= 0) & (not even), np.ldexp(1.0, shifts - 1), 0.0)  # exact: powers of two
    scale = np.ldexp(1.0, -shifts)
    return FloatMac(dtype, (w.astype(np.float64) * scale[:, None]).astype(dtype),
                    ((b.astype(np.float64) + half) * scale).astype(dtype), shift, lo, hi, even)


def _float_output(y: np.ndarray, lo: int, hi: int, as_float: bool) -> np.ndarray:
    """Requantized integers held in floats: as int64, or (``as_float``) as float32 where exact."""
    if not as_float:
        return y.astype(np.int64)
    return y.astype(np.float32, copy=False) if max(abs(lo), abs(hi)) < _F32_EXACT else y


def conv_requant(x: np.ndarray, weight, bias, kernel, stride, pads, groups, shift, lo: int, hi: int,
                 x_max: int | None = None, as_float: bool = False, leaky=None,
                 rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """``requantize(conv_acc(...))`` computed exactly in float where it provably is (fast, see
    :class:`FloatMac`: the requantizer runs on each chunk of the matmul while it is in cache);
    ``x_max`` bounds ``|x|`` (default: measured). ``x`` may hold integers as floats; with
    ``as_float`` the result may too (integer-valued float32/float64, exact). ``shift``: a scalar,
    or one per output channel (per-channel weight formats)."""
    x_max = _max_abs(x) if x_max is None else x_max
    mac = None if leaky is not None else float_mac(weight, bias, x_max, shift, lo, hi, rounding)
    if mac is None:
        x = x.astype(np.int64, copy=False)
        acc = conv_acc(x, weight, bias, kernel, stride, pads, groups)
        if leaky is not None:
            return requantize(acc, shift, lo, hi, leaky, rounding)
        return _requantize_fresh(acc, shift, lo, hi, rounding)
    y = win.conv_matmul(x, mac.weight.reshape(np.shape(weight)), kernel, stride, pads, groups, mac.dtype, mac.bias,
                        mac.finish)
    return _float_output(y, lo, hi, as_float)


def _dense_segments(w: np.ndarray, x_max: int) -> list[tuple[int, int]] | None:
    """Input ranges ``[k0, k1)`` over which every partial sum of a dense layer is below ``2**24``
    (``x_max * sum_k max_o |w_ok|`` bounds them), or None when they would be shorter than
    :data:`_MIN_SEGMENT` inputs."""
    reach = np.cumsum(np.abs(w).max(axis=0) * x_max)  # int64: below 2**53 (the caller's bound)
    limit = _F32_EXACT - 1
    segments, k0, base = [], 0, 0
    while k0 < len(reach):
        k1 = int(np.searchsorted(reach, base + limit, side="right"))
        if k1 - k0 < min(_MIN_SEGMENT, len(reach) - k0):
            return None
        segments.append((k0, k1))
        k0, base = k1, int(reach[k1 - 1])
    return segments


def dense_requant(x: np.ndarray, weight, bias, shift, lo: int, hi: int, x_max: int | None = None,
                  as_float: bool = False, leaky=None, rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """``requantize(dense_acc(...))``, exactly in float where it provably is (fast); ``x`` and
    (with ``as_float``) the result may hold integers as floats, as in :func:`conv_requant`.

    A layer whose accumulator needs float64 but whose inputs split into segments with float32-exact
    partial sums (:func:`_dense_segments`) runs float32 matmuls per segment, summed in float64:
    each partial is exact (its bound is below ``2**24``), so is their sum (below ``2**53``)."""
    x_max = _max_abs(x) if x_max is None else x_max
    mac = None if leaky is not None else float_mac(weight, bias, x_max, shift, lo, hi, rounding)
    if mac is None:
        acc = dense_acc(x.astype(np.int64, copy=False), weight, bias)
        if leaky is not None:
            return requantize(acc, shift, lo, hi, leaky, rounding)
        return _requantize_fresh(acc, shift, lo, hi, rounding)
    segments = None
    if mac.dtype == np.float64:
        segments = _dense_segments(np.asarray(weight, np.int64), x_max)
    if segments is None or len(segments) == 1:
        y = x.astype(mac.dtype, copy=False) @ mac.weight.T
    else:
        x32, w32 = x.astype(np.float32, copy=False), mac.weight.T.astype(np.float32)  # exact: partial bounds
        y = np.zeros((len(x), len(mac.weight)), np.float64)
        for k0, k1 in segments:
            y += x32[:, k0:k1] @ w32[k0:k1]
    y += mac.bias
    return _float_output(mac.finish(y), lo, hi, as_float)


def maxpool(x: np.ndarray, kernel, stride, pads, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Max over each window; padding never wins. Integers, or integers held in a float array.
    With a fused ReLU/Clip the result is then clamped to ``[lo, hi]`` (no rounding: same format)."""
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(np.int64).min
    y = win.window_max(x, kernel, stride, pads, low)
    if lo is not None:
        np.clip(y, lo, hi, out=y)
    return y


def window_sum(x: np.ndarray, kernel, stride, pads) -> np.ndarray:
    """Sum of each (zero-padded) window, ``[N, C, OH, OW]``."""
    return win.windows(x, kernel, stride, pads, 0).sum(axis=(-1, -2), dtype=np.int64)


def avgpool(x: np.ndarray, kernel, stride, pads, recip, shift: int, lo: int, hi: int, leaky=None,
            rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Average pool: window sum times the integer reciprocal(s) ``recip``, then requantize."""
    total = window_sum(x, kernel, stride, pads)
    return requantize(total * np.asarray(recip, np.int64), shift, lo, hi, leaky, rounding)


def gap(x: np.ndarray, recip: int, shift: int, lo: int, hi: int, leaky=None,
        rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Global average pool ``[N, C, H, W] -> [N, C, 1, 1]``."""
    total = x.sum(axis=(2, 3), keepdims=True, dtype=np.int64)
    return requantize(total * np.int64(recip), shift, lo, hi, leaky, rounding)


def add(a: np.ndarray, b: np.ndarray, align, shift: int, lo: int, hi: int, leaky=None,
        rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Residual add: align both inputs by left shifts, add, requantize."""
    total = (a.astype(np.int64) << np.int64(align[0])) + (b.astype(np.int64) << np.int64(align[1]))
    return requantize(total, shift, lo, hi, leaky, rounding)
