"""MSB histograms (SPEC.md section 2).

For every logged non-zero value ``v`` the bin is ``floor(log2(|v|))``, exactly: a float batch is
sorted by magnitude and cut at the powers of two of its own dtype (``2**b <= |v| < 2**(b+1)``, exact
comparisons, denormals included); integers take the float exponent (``np.frexp``), corrected above
2**53. Zeros are counted apart. A histogram has a fixed number of bins (every float64 exponent), so accumulating any
number of batches takes constant memory; two histograms merge by addition.

Beside the count, each bin keeps the sum of ``|v|`` and of ``v**2`` of its values, so the
``mse`` format choice computes the error of saturation and underflow exactly, not from bin
centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.fixed import as_real_array

# float64 non-zero magnitudes have MSB positions from -1074 (smallest denormal) to 1023.
MIN_BIT = -1074
MAX_BIT = 1023
_NBINS = MAX_BIT - MIN_BIT + 1

# ``add`` works through a batch in slices of this many values, so its temporaries stay in the
# CPU cache (64K float32 values sorted, and their squares in float64: under 1 MB) and its extra
# memory is bounded whatever the batch size.
CHUNK = 1 << 16

# Float dtypes logged in their own precision (frexp is exact in each, denormals included), with
# the range of the exponent frexp returns: a non-zero value has MSB ``exponent - 1``; zero gives 0.
_NATIVE_EXPONENTS = {
    np.dtype(np.float16): (-23, 16),
    np.dtype(np.float32): (-148, 128),
    np.dtype(np.float64): (-1073, 1024),
}

def _powers_of_two(dtype) -> tuple[int, np.ndarray]:
    """``(b0, p)``: ``p[i] = 2**(b0 + i)`` in ``dtype`` for every MSB position of its non-zero values."""
    lo, hi = _NATIVE_EXPONENTS[np.dtype(dtype)]
    bits = np.arange(lo - 1, hi)
    return int(bits[0]), np.ldexp(1.0, bits).astype(dtype)  # exact: each is a (denormal) power of two


_POWERS = {dtype: _powers_of_two(dtype) for dtype in _NATIVE_EXPONENTS}

# Integers below 2**53 in magnitude convert to float64 exactly; above, rounding may carry into
# the next power of two and the exponent is corrected from the integer itself.
_EXACT_FLOAT_INT = 2**53


def msb_positions(values) -> np.ndarray:
    """Exact ``floor(log2(|v|))`` of each non-zero value (int64); zeros are an error."""
    real = as_real_array(values)
    if np.any(real == 0):
        raise QuantizationError("msb_positions: zero has no MSB position; count zeros apart")
    return np.frexp(real)[1].astype(np.int64) - 1


def _loggable(values, name: str) -> np.ndarray:
    """``values`` as a flat array of float16/32/64 or integers, not copied when avoidable.

    Anything else (lists, bool, long double, other byte orders) goes through
    :func:`fpgagen.fixed.as_real_array`, which also raises the errors for empty arrays, strings
    and ragged input. NaN and infinity are checked by the caller.
    """
    try:
        array = np.asarray(values)
    except Exception:  # ragged lists and the like: as_real_array words the error
        array = None
    if (
        array is None
        or array.size == 0
        or not (array.dtype in _NATIVE_EXPONENTS or (array.dtype.kind in "iu" and array.dtype.isnative))
    ):
        array = as_real_array(values, name)
    return array.reshape(-1)


def _int_exponents(ints: np.ndarray, magnitude: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """frexp exponents of integers made exact where float64 rounded up to a power of two."""
    big = magnitude >= _EXACT_FLOAT_INT
    if not big.any():
        return exponent
    unsigned = ints[big].astype(np.uint64)  # two's complement: negate below for negatives
    negative = ints[big] < 0
    unsigned[negative] = ~unsigned[negative] + np.uint64(1)
    e = exponent[big]
    # float64(|v|) is 2**(e-1) or more; when |v| < 2**(e-1) the rounding carried one bit up.
    too_high = (unsigned >> (e - 1).astype(np.uint64)) == 0
    exponent = exponent.copy()
    exponent[big] = e - too_high
    return exponent


def _sorted_sums(ordered: np.ndarray, negative: bool) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Per-MSB sums of sorted (ascending) non-zero float16/32/64 values of one sign.

    Returns ``(lowest_bit, counts, sum_abs, sum_sq)``, the arrays covering bits ``lowest_bit``
    upwards. A bin is the run between two powers of two of the dtype (``searchsorted``: exact
    comparisons, denormals included; negative values are cut at the negated powers). ``|v|`` and
    ``v**2`` are summed per run in float64: ``v**2`` of a float16 or float32 is exact there, and
    so is the sum of up to 2**29 float32 magnitudes of one bin (multiples of its LSB, below 2**53
    of them); a run of negative values sums to exactly minus the sum of its magnitudes.
    """
    low_bit, powers = _POWERS[ordered.dtype]
    small, large = (ordered[-1], ordered[0]) if negative else (ordered[0], ordered[-1])
    first, last = (int(np.frexp(v)[1]) - 1 for v in (small, large))
    edges = powers[first + 1 - low_bit : last + 1 - low_bit]  # 2**(first+1) .. 2**last
    if negative:  # values <= -2**b end where the bins below b begin
        cuts = np.searchsorted(ordered, -edges[::-1], "right")
    else:
        cuts = np.searchsorted(ordered, edges)
    bounds = np.concatenate(([0], cuts, [ordered.size]))
    counts = np.diff(bounds)
    occupied = counts > 0
    starts = bounds[:-1][occupied]
    sum_abs, sum_sq = np.zeros(counts.size), np.zeros(counts.size)
    with np.errstate(over="ignore"):  # sums (or v**2) beyond float64: inf
        sum_abs[occupied] = np.add.reduceat(ordered, starts, dtype=np.float64)
        sum_sq[occupied] = np.add.reduceat(np.multiply(ordered, ordered, dtype=np.float64), starts)
    if negative:  # runs from the largest magnitude down
        counts, sum_abs, sum_sq = counts[::-1], -sum_abs[::-1], sum_sq[::-1]
    return first, counts.astype(np.int64), sum_abs, sum_sq


def _int_chunk_sums(ints: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-MSB sums of a slice of integers, binned by their float64 exponent: ``(lowest_bit,
    counts, sum_abs, sum_sq, zeros)`` as in :func:`_sorted_sums`."""
    chunk = ints.astype(np.float64)
    exp_lo, exp_hi = _NATIVE_EXPONENTS[chunk.dtype]
    is_zero = chunk == 0
    zeros = int(np.count_nonzero(is_zero))
    filtered = zeros * 8 > chunk.size
    if filtered:  # ReLU outputs are often mostly zeros: bin only the rest
        keep = ~is_zero
        chunk = chunk[keep]
        ints = ints[keep]
    magnitude = np.abs(chunk)
    exponent = np.frexp(magnitude)[1]
    if ints.dtype.itemsize == 8:
        exponent = _int_exponents(ints, magnitude, exponent)
    index = exponent.astype(np.intp)
    index -= exp_lo
    nbins = exp_hi - exp_lo + 1
    counts = np.bincount(index, minlength=nbins)
    if not filtered:
        counts[-exp_lo] -= zeros  # zeros have exponent 0; their |v| and v**2 add nothing

    wide = magnitude.astype(np.float64, copy=False)
    sum_abs = np.bincount(index, weights=wide, minlength=nbins)
    with np.errstate(over="ignore"):  # v**2 beyond float64: inf, as the sum would be
        sum_sq = np.bincount(index, weights=wide * wide, minlength=nbins)
    return exp_lo - 1, counts, sum_abs, sum_sq, zeros


@dataclass
class MsbHistogram:
    """Counts of values per MSB bit position, plus zeros, min and max, for one tensor."""

    name: str = "values"
    counts: np.ndarray = field(default_factory=lambda: np.zeros(_NBINS, np.int64), repr=False)
    sum_abs: np.ndarray = field(default_factory=lambda: np.zeros(_NBINS, np.float64), repr=False)
    sum_sq: np.ndarray = field(default_factory=lambda: np.zeros(_NBINS, np.float64), repr=False)
    zeros: int = 0
    min: float = float("inf")
    max: float = float("-inf")

    # -- logging ----------------------------------------------------------------------------
    def add(self, values) -> "MsbHistogram":
        """Log a batch of values (any shape). NaN/inf raise an error naming the tensor, and
        nothing of the batch is logged.

        float16/float32/float64 batches are read in their own dtype (no float64 copy); integers
        and anything else are converted. Bins are exact; the batch is worked through in slices
        of :data:`CHUNK` values, so memory use does not depend on its size. A float slice is
        sorted once: its ends are its minimum and maximum (and show NaN and infinity), zeros
        are the run in between its negative and positive values.
        """
        flat = _loggable(values, self.name)
        batch = MsbHistogram(self.name)
        for start in range(0, flat.size, CHUNK):
            chunk = flat[start : start + CHUNK]
            if chunk.dtype.kind != "f":
                batch._log_bins(*_int_chunk_sums(chunk))
                batch.min, batch.max = min(batch.min, float(chunk.min())), max(batch.max, float(chunk.max()))
                continue
            ordered = np.sort(chunk)
            lo, hi = ordered[0], ordered[-1]  # NaN sorts last
            if not (np.isfinite(lo) and np.isfinite(hi)):
                as_real_array(flat, self.name)  # raises, counting the NaN and infinite values
            neg = int(np.searchsorted(ordered, 0, "left")) if lo < 0 else 0
            pos = int(np.searchsorted(ordered, 0, "right"))
            for part, negative in ((ordered[:neg], True), (ordered[pos:], False)):
                if part.size:
                    batch._log_bins(*_sorted_sums(part, negative), 0)
            batch.zeros += pos - neg
            batch.min, batch.max = min(batch.min, float(lo)), max(batch.max, float(hi))
        self._log_bins(MIN_BIT, batch.counts, batch.sum_abs, batch.sum_sq, batch.zeros)
        self.min = min(self.min, batch.min)
        self.max = max(self.max, batch.max)
        return self

    def _log_bins(self, low_bit: int, counts: np.ndarray, sum_abs: np.ndarray, sum_sq: np.ndarray, zeros: int) -> None:
        bins = slice(low_bit - MIN_BIT, low_bit - MIN_BIT + counts.size)
        self.counts[bins] += counts
        with np.errstate(over="ignore"):  # sums beyond float64: inf
            self.sum_abs[bins] += sum_abs
            self.sum_sq[bins] += sum_sq
        self.zeros += zeros

    def merge(self, other: "MsbHistogram") -> "MsbHistogram":
        """A new histogram holding both ``self``'s and ``other``'s values."""
        if not isinstance(other, MsbHistogram):
            raise QuantizationError(
                f"can only merge an MsbHistogram with another, not {type(other).__name__}"
            )
        return MsbHistogram(
            name=self.name,
            counts=self.counts + other.counts,
            sum_abs=self.sum_abs + other.sum_abs,
            sum_sq=self.sum_sq + other.sum_sq,
            zeros=self.zeros + other.zeros,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )

    __add__ = merge

    # -- reading ----------------------------------------------------------------------------
    @property
    def nonzero(self) -> int:
        return int(self.counts.sum())

    @property
    def total(self) -> int:
        return self.nonzero + self.zeros

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def signed(self) -> bool:
        """Signedness from the data: a logged minimum below 0 needs a signed format."""
        return self.total > 0 and self.min < 0

    def occupied(self) -> np.ndarray:
        """Bit positions holding at least one value, high to low."""
        return (np.flatnonzero(self.counts) + MIN_BIT)[::-1]

    @property
    def highest(self) -> int | None:
        bits = np.flatnonzero(self.counts)
        return int(bits[-1] + MIN_BIT) if bits.size else None

    @property
    def lowest(self) -> int | None:
        bits = np.flatnonzero(self.counts)
        return int(bits[0] + MIN_BIT) if bits.size else None

    def count_at(self, bit: int) -> int:
        if not MIN_BIT <= bit <= MAX_BIT:
            return 0
        return int(self.counts[bit - MIN_BIT])

    def as_dict(self) -> dict:
        """Occupied bins as ``{bit: count}`` (high to low), zeros, min, max: for JSON."""
        return {
            "name": self.name,
            "bins": {str(int(b)): self.count_at(int(b)) for b in self.occupied()},
            "zeros": self.zeros,
            "min": self.min if self.total else None,
            "max": self.max if self.total else None,
        }

    def __repr__(self) -> str:
        span = f"2^{self.highest}..2^{self.lowest}" if self.nonzero else "no non-zero values"
        return f"MsbHistogram({self.name!r}, {self.total} values, {self.zeros} zeros, {span})"


def msb_histogram(values, name: str = "values") -> MsbHistogram:
    """The MSB histogram of ``values`` (any shape)."""
    return MsbHistogram(name=name).add(values)
