"""MSB histograms (SPEC.md section 2).

For every logged non-zero value ``v`` the bin is ``floor(log2(|v|))``, taken exactly from the
float exponent (``np.frexp``): exact at powers of two, correct for denormals. Zeros are counted
apart. A histogram has a fixed number of bins (every float64 exponent), so accumulating any
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


def msb_positions(values) -> np.ndarray:
    """Exact ``floor(log2(|v|))`` of each non-zero value (int64); zeros are an error."""
    real = as_real_array(values)
    if np.any(real == 0):
        raise QuantizationError("msb_positions: zero has no MSB position; count zeros apart")
    return np.frexp(real)[1].astype(np.int64) - 1


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
        """Log a batch of values (any shape). NaN/inf raise an error naming the tensor."""
        real = as_real_array(values, self.name).ravel()
        self.min = min(self.min, float(real.min()))
        self.max = max(self.max, float(real.max()))
        magnitude = np.abs(real)
        mantissa, exponent = np.frexp(magnitude)
        nonzero = mantissa != 0
        n_zero = real.size - int(np.count_nonzero(nonzero))
        if n_zero:
            magnitude = magnitude[nonzero]
            exponent = exponent[nonzero]
        self.zeros += n_zero
        if magnitude.size:
            index = exponent.astype(np.intp) - (1 + MIN_BIT)
            self.counts += np.bincount(index, minlength=_NBINS)
            self.sum_abs += np.bincount(index, weights=magnitude, minlength=_NBINS)
            with np.errstate(over="ignore"):
                self.sum_sq += np.bincount(index, weights=magnitude * magnitude, minlength=_NBINS)
        return self

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
