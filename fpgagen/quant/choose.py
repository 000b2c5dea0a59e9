"""Choosing a fixed-point format from an MSB histogram (SPEC.md section 2).

The top magnitude bit ``m`` is chosen from the histogram, then ``frac = word - 1 - signed - m``.

- ``max``: ``m`` is the highest MSB seen: nothing overflows.
- ``coverage``: the lowest ``m`` such that at most a fraction ``eps`` of the values have their
  MSB above ``m``, but never more than one bit below a dropped value's MSB: an outlier is
  saturated to at most half its size, and ``m`` does not sink into empty bins the calibration
  data never reached. The seeds' example: 0.03125, 2.1, 16.25 with ``eps = 1/3`` drops 16.25
  and chooses ``m = 3``; with ``signed=True`` that is ``s8.3`` (bits 2^3 .. 2^-3 plus a sign
  bit, as the seeds' app shows it). The three values are positive, so without ``signed=True``
  the format is unsigned: ``u8.4``, bits 2^3 .. 2^-4.
- ``mse``: the ``m`` minimising the squared error of the histogram's values, with exact
  saturation and underflow terms (each bin keeps its sums) and ``lsb**2 / 12`` rounding error
  per representable value. Ties go to the higher ``m``.

Signedness comes from the data: a minimum >= 0 gives an unsigned format.
"""

from __future__ import annotations

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.ir.format import MAX_WORD, Format
from fpgagen.quant.histogram import MIN_BIT, MsbHistogram

METHODS = ("max", "coverage", "mse")
DEFAULT_EPS = 1e-4


def _check_word(word) -> int:
    if isinstance(word, bool) or not isinstance(word, (int, np.integer)):
        raise QuantizationError(f"word length must be an integer, not {word!r}")
    if not 1 <= word <= MAX_WORD:
        raise QuantizationError(f"word length must be between 1 and {MAX_WORD} bits, not {word}")
    return int(word)


def _coverage_msb(hist: MsbHistogram, eps: float) -> int:
    bits = hist.occupied()  # high to low
    counts = np.array([hist.count_at(int(b)) for b in bits], dtype=np.int64)
    allowed = eps * hist.nonzero
    # above[i] = number of values with MSB above bits[i]
    above = np.concatenate(([0], np.cumsum(counts)[:-1]))
    keep = int(np.flatnonzero(above <= allowed)[-1])
    m = int(bits[keep])
    if keep > 0:  # some occupied bins are dropped: stay within one bit of the lowest of them
        m = max(m, int(bits[keep - 1]) - 1)
    return m


def squared_error(hist: MsbHistogram, fmt: Format) -> float:
    """Squared error of quantizing the histogram's values to ``fmt`` (see module doc)."""
    lsb = fmt.lsb
    top = max(abs(fmt.max_value), abs(fmt.min_value)) if fmt.signed else fmt.max_value
    idx = np.flatnonzero(hist.counts)
    bits = idx + MIN_BIT
    n = hist.counts[idx].astype(np.float64)
    s1 = hist.sum_abs[idx]
    s2 = hist.sum_sq[idx]
    low = np.ldexp(1.0, bits)  # each bin holds [low, 2*low)
    err = n * lsb * lsb / 12.0
    saturated = low >= top
    err = np.where(saturated, s2 - 2.0 * top * s1 + n * top * top, err)
    underflow = (2.0 * low <= lsb / 2.0) & ~saturated
    err = np.where(underflow, s2, err)
    round_up = (low >= lsb / 2.0) & (2.0 * low <= lsb) & ~saturated  # [lsb/2, lsb) -> lsb
    err = np.where(round_up, n * lsb * lsb - 2.0 * lsb * s1 + s2, err)
    return float(np.maximum(err, 0.0).sum())


def _mse_msb(hist: MsbHistogram, word: int, signed: bool) -> int:
    hi, lo = hist.highest, hist.lowest
    best_m, best_err = hi, None
    for m in range(hi + 1, lo - word - 1, -1):  # high to low; ties keep the higher m
        err = squared_error(hist, Format.from_msb(m, signed, word))
        if best_err is None or err < best_err:
            best_m, best_err = m, err
    return best_m


def choose_msb(hist: MsbHistogram, method: str = "max", word: int = 8, eps: float = DEFAULT_EPS,
               signed: bool | None = None) -> int:
    """The top magnitude bit ``m`` that ``method`` chooses for ``hist``."""
    if method not in METHODS:
        raise QuantizationError(
            f"unknown format-choice method {method!r}: expected one of {', '.join(METHODS)}"
        )
    if not isinstance(hist, MsbHistogram):
        raise QuantizationError(f"expected an MsbHistogram, not {type(hist).__name__}")
    if hist.empty:
        raise QuantizationError(f"{hist.name}: no values were logged, cannot choose a format")
    if not (isinstance(eps, (int, float)) and 0.0 <= eps < 1.0):
        raise QuantizationError(f"coverage eps must be a number in [0, 1), not {eps!r}")
    word = _check_word(word)
    signed = hist.signed if signed is None else bool(signed)
    if hist.nonzero == 0:  # all zeros: any format is exact; keep the value 1.0 representable
        return 0
    if method == "max":
        return int(hist.highest)
    if method == "coverage":
        return _coverage_msb(hist, float(eps))
    return _mse_msb(hist, word, signed)


def choose_format(hist: MsbHistogram, method: str = "max", word: int = 8,
                  eps: float = DEFAULT_EPS, signed: bool | None = None) -> Format:
    """The fixed-point format of ``word`` bits that ``method`` chooses for ``hist``.

    Signedness comes from the data unless ``signed`` is given: a logged minimum >= 0 gives an
    unsigned format, which spends the sign bit on one more fraction bit. The seeds' worked
    example is signed ``s8.3`` (bits 2^3 .. 2^-3); its three values are positive, so get it with
    ``signed=True``:

    >>> from fpgagen import msb_histogram
    >>> hist = msb_histogram([0.03125, 2.1, 16.25])
    >>> str(choose_format(hist, "coverage", eps=1/3, signed=True))
    's8.3'
    >>> str(choose_format(hist, "coverage", eps=1/3))  # signedness from the data
    'u8.4'
    >>> str(choose_format(hist, "max", signed=True))  # keeps 16.25: bits 2^4 .. 2^-2
    's8.2'
    """
    if not isinstance(hist, MsbHistogram):
        raise QuantizationError(f"expected an MsbHistogram, not {type(hist).__name__}")
    word = _check_word(word)
    signed = hist.signed if signed is None else bool(signed)
    if signed and word < 2:
        raise QuantizationError(f"{hist.name}: a signed format needs at least 2 bits, not {word}")
    m = choose_msb(hist, method, word, eps, signed)
    return Format.from_msb(m, signed, word)
