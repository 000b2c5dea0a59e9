"""Fixed-point arithmetic (SPEC.md sections 1 and 3) as pure, vectorised functions.

This is the one place where rounding and saturation are written down in Python; the golden
model, the integer IR and the tests call these functions. Integers are ``int64`` arrays.

Rounding modes: ``nearest-away`` (default, MATLAB ``round``: 2.5 -> 3, -2.5 -> -3),
``nearest-even`` and ``floor``. Overflow modes: ``saturate`` (default) and ``wrap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.ir.format import Format

ROUNDING_MODES = ("nearest-away", "nearest-even", "floor")
OVERFLOW_MODES = ("saturate", "wrap")
DEFAULT_ROUNDING = "nearest-away"
DEFAULT_OVERFLOW = "saturate"

# float64 holds every integer below 2**53 exactly; larger magnitudes are already integers.
_EXACT_INT_LIMIT = float(2**52)


def resolve_rounding(mode: str) -> str:
    if mode not in ROUNDING_MODES:
        raise QuantizationError(
            f"unknown rounding mode {mode!r}: expected one of {', '.join(ROUNDING_MODES)}"
        )
    return mode


def resolve_overflow(mode: str) -> str:
    if mode not in OVERFLOW_MODES:
        raise QuantizationError(
            f"unknown overflow mode {mode!r}: expected one of {', '.join(OVERFLOW_MODES)}"
        )
    return mode


@dataclass(frozen=True)
class QuantStats:
    """Counts from one quantization: ``overflow`` values saturated (or wrapped),
    ``underflow`` non-zero values that became 0, out of ``total`` values."""

    total: int
    overflow: int
    underflow: int

    @property
    def overflow_rate(self) -> float:
        return self.overflow / self.total if self.total else 0.0

    @property
    def underflow_rate(self) -> float:
        return self.underflow / self.total if self.total else 0.0

    def __add__(self, other: "QuantStats") -> "QuantStats":
        return QuantStats(
            self.total + other.total,
            self.overflow + other.overflow,
            self.underflow + other.underflow,
        )


def as_real_array(values, name: str = "values") -> np.ndarray:
    """``values`` as a finite, non-empty float64 array, or a clear error naming ``name``."""
    try:
        array = np.asarray(values)
    except Exception as exc:  # ragged lists and the like
        raise QuantizationError(f"{name}: expected an array of real numbers ({exc})") from exc
    if array.dtype.kind not in "biuf":
        raise QuantizationError(
            f"{name}: expected real numbers, got an array of dtype {array.dtype}"
        )
    if array.size == 0:
        raise QuantizationError(f"{name}: expected at least one value, got an empty array")
    array = array.astype(np.float64, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = array[~finite]
        nan = int(np.isnan(bad).sum())
        raise QuantizationError(
            f"{name}: {nan} NaN and {bad.size - nan} infinite value(s) among {array.size}; "
            f"fixed-point formats hold finite numbers only"
        )
    return array


def round_real(scaled: np.ndarray, rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """Round a float64 array to integer values (still float64), exactly."""
    rounding = resolve_rounding(rounding)
    if rounding == "floor":
        return np.floor(scaled)
    if rounding == "nearest-even":
        return np.rint(scaled)
    magnitude = np.abs(scaled)
    whole = np.floor(magnitude)
    # magnitude - whole is exact for floats; no "x + 0.5" double rounding.
    rounded = whole + (magnitude - whole >= 0.5)
    rounded = np.where(magnitude >= _EXACT_INT_LIMIT, magnitude, rounded)
    return np.copysign(rounded, scaled)


def _overflow(q: np.ndarray, fmt: Format, overflow: str) -> tuple[np.ndarray, int]:
    """Saturate or wrap integer-valued ``q`` (float64 or int64) into ``fmt``."""
    lo, hi = fmt.min_int, fmt.max_int
    out_of_range = (q < lo) | (q > hi)
    count = int(np.count_nonzero(out_of_range))
    if overflow == "saturate":
        q = np.clip(q, lo, hi)
    else:
        period = 1 << fmt.word
        if q.dtype.kind == "f":
            q = np.fmod(q, float(period))  # exact for floats
        q = np.mod(q.astype(np.int64) - lo, period) + lo
    return q.astype(np.int64), count


# Scaled magnitudes are clipped here before rounding: beyond every format's range (word <= 32),
# exact in float64, and far from float64 overflow.
_SCALE_CLIP = float(2**60)


def _scale(real: np.ndarray, frac: int) -> np.ndarray:
    """``real * 2**frac`` exactly, magnitudes above 2**60 clipped (they saturate anyway)."""
    with np.errstate(over="ignore"):  # ldexp beyond float64 gives inf, clipped next
        scaled = np.ldexp(real, frac)
    return np.clip(scaled, -_SCALE_CLIP, _SCALE_CLIP)


def quantize_with_stats(
    values,
    fmt: "str | Format",
    rounding: str = DEFAULT_ROUNDING,
    overflow: str = DEFAULT_OVERFLOW,
    name: str = "values",
) -> tuple[np.ndarray, QuantStats]:
    """Quantize real ``values`` to ``fmt`` (SPEC.md 1): scale, round, saturate.

    Returns the integers (int64, same shape) and the overflow/underflow counts.
    """
    fmt = Format.parse(fmt)
    rounding = resolve_rounding(rounding)
    overflow = resolve_overflow(overflow)
    real = as_real_array(values, name)
    if overflow == "wrap":
        # Wrap in the real domain first (fmod is exact) so huge values cannot overflow float.
        with np.errstate(over="ignore"):  # a period beyond float64 is inf: fmod(x, inf) == x
            period_real = np.ldexp(1.0, fmt.word - fmt.frac)
        reduced = np.fmod(real, period_real)
        q = round_real(np.ldexp(reduced, fmt.frac), rounding)
        big = np.abs(real) >= period_real
        q_unwrapped = round_real(_scale(real, fmt.frac), rounding)
        n_over = int(np.count_nonzero(big | (q_unwrapped < fmt.min_int) | (q_unwrapped > fmt.max_int)))
        q, _ = _overflow(q, fmt, "wrap")
    else:
        q = round_real(_scale(real, fmt.frac), rounding)
        q, n_over = _overflow(q, fmt, overflow)
    n_under = int(np.count_nonzero((q == 0) & (real != 0)))
    return q, QuantStats(int(real.size), n_over, n_under)


def quantize(
    values,
    fmt: "str | Format",
    rounding: str = DEFAULT_ROUNDING,
    overflow: str = DEFAULT_OVERFLOW,
    name: str = "values",
) -> np.ndarray:
    """Quantize real ``values`` to the integers of ``fmt`` (int64 array).

    >>> quantize([0.03125, 2.1, 16.25], "s8.3").tolist()
    [0, 17, 127]
    """
    return quantize_with_stats(values, fmt, rounding, overflow, name)[0]


def as_int_array(ints, name: str = "values") -> np.ndarray:
    try:
        array = np.asarray(ints)
    except Exception as exc:
        raise QuantizationError(f"{name}: expected an array of integers ({exc})") from exc
    if array.dtype.kind not in "biu":
        raise QuantizationError(
            f"{name}: expected integers, got an array of dtype {array.dtype}"
        )
    if array.size == 0:
        raise QuantizationError(f"{name}: expected at least one value, got an empty array")
    return array.astype(np.int64, copy=False)


def dequantize(ints, fmt: "str | Format", name: str = "values") -> np.ndarray:
    """The real values (float64) that the integers ``ints`` of ``fmt`` stand for."""
    fmt = Format.parse(fmt)
    array = as_int_array(ints, name)
    if array.min() < fmt.min_int or array.max() > fmt.max_int:
        raise QuantizationError(
            f"{name}: integers must lie in [{fmt.min_int}, {fmt.max_int}] for format {fmt}, "
            f"got values in [{array.min()}, {array.max()}]"
        )
    return np.ldexp(array.astype(np.float64), -fmt.frac)


def shift_round(acc, shift: int, rounding: str = DEFAULT_ROUNDING) -> np.ndarray:
    """``acc * 2**-shift`` rounded to an integer (SPEC.md 3), on int64 arrays.

    ``shift > 0`` with ``nearest-away`` is ``(acc + 2**(shift-1) - (acc < 0)) >> shift``:
    one adder and an arithmetic shift, as the hardware does it. ``shift <= 0`` is exact.
    """
    rounding = resolve_rounding(rounding)
    acc = np.asarray(acc, dtype=np.int64)
    shift = int(shift)
    if shift <= 0:
        return acc << np.int64(-shift)
    if shift >= 63:
        # Everything in int64 is below 2**62 in magnitude: the result is 0 (or -1 for floor).
        return np.where(acc < 0, -1, 0).astype(np.int64) if rounding == "floor" else np.zeros_like(acc)
    s = np.int64(shift)
    if rounding == "floor":
        return acc >> s
    half = np.int64(1) << (s - 1)
    if rounding == "nearest-away":
        return (acc + half - (acc < 0)) >> s
    q = acc >> s
    rem = acc - (q << s)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))


def saturate(q, fmt: "str | Format") -> np.ndarray:
    """Clip integers to ``fmt``'s range."""
    fmt = Format.parse(fmt)
    return np.clip(np.asarray(q, dtype=np.int64), fmt.min_int, fmt.max_int)


def requantize_with_stats(
    ints,
    src: "str | Format",
    dst: "str | Format",
    rounding: str = DEFAULT_ROUNDING,
    overflow: str = DEFAULT_OVERFLOW,
    name: str = "values",
) -> tuple[np.ndarray, QuantStats]:
    """Re-express integers of format ``src`` in format ``dst``: shift, round, saturate."""
    src, dst = Format.parse(src), Format.parse(dst)
    overflow = resolve_overflow(overflow)
    array = as_int_array(ints, name)
    shift = src.frac - dst.frac
    q = shift_round(array, shift, rounding)
    if shift < 0:
        # ``array << -shift`` may leave int64 (it wraps modulo 2**64, which keeps ``wrap`` right),
        # so overflow is decided on the unshifted integers: in range iff lo_in <= array <= hi_in.
        k = -shift
        hi_in = dst.max_int >> k
        lo_in = -((-dst.min_int) >> k)
        above, below = array > hi_in, array < lo_in
        n_over = int(np.count_nonzero(above | below))
        if overflow == "saturate":
            q = np.where(above, dst.max_int, np.where(below, dst.min_int, q)).astype(np.int64)
        else:
            q, _ = _overflow(q, dst, overflow)
    else:
        q, n_over = _overflow(q, dst, overflow)
    n_under = int(np.count_nonzero((q == 0) & (array != 0)))
    return q, QuantStats(int(array.size), n_over, n_under)


def requantize(ints, src, dst, rounding: str = DEFAULT_ROUNDING, overflow: str = DEFAULT_OVERFLOW,
               name: str = "values") -> np.ndarray:
    """Integers of ``src`` re-expressed in ``dst`` (see :func:`requantize_with_stats`)."""
    return requantize_with_stats(ints, src, dst, rounding, overflow, name)[0]


def signed_width(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement integer holding every value in [lo, hi]."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width
