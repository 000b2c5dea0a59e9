"""quantize / requantize against an exact rational reference (SPEC.md 1 and 3).

The reference works on :class:`fractions.Fraction`, so it is exact for every float64 and every
shift; the implementation must give the same integers and the same overflow/underflow counts.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpgagen.errors import FpgagenError, QuantizationError
from fpgagen.fixed import (
    OVERFLOW_MODES,
    ROUNDING_MODES,
    QuantStats,
    dequantize,
    quantize,
    quantize_with_stats,
    requantize,
    requantize_with_stats,
    shift_round,
)
from fpgagen.ir.format import Format

# Deterministic (same examples every run), no example database written into the repository,
# and few enough examples that this file runs in a few seconds.
PROPERTY = settings(max_examples=250, derandomize=True, database=None, deadline=None)


# -- the exact reference ----------------------------------------------------------------------
def ref_round(x: Fraction, rounding: str) -> int:
    if rounding == "floor":
        return math.floor(x)
    if rounding == "nearest-even":
        return round(x)  # Fraction.__round__ rounds half to even
    assert rounding == "nearest-away"
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def ref_overflow(q: int, fmt: Format, overflow: str) -> tuple[int, bool]:
    if fmt.min_int <= q <= fmt.max_int:
        return q, False
    if overflow == "saturate":
        return min(max(q, fmt.min_int), fmt.max_int), True
    return (q - fmt.min_int) % (1 << fmt.word) + fmt.min_int, True


def ref_quantize(values, fmt, rounding, overflow):
    out, n_over, n_under = [], 0, 0
    for v in values:
        q, over = ref_overflow(ref_round(Fraction(v) * Fraction(2) ** fmt.frac, rounding), fmt, overflow)
        out.append(q)
        n_over += over
        n_under += q == 0 and v != 0
    return out, QuantStats(len(values), n_over, n_under)


def ref_requantize(ints, src, dst, rounding, overflow):
    out, n_over, n_under = [], 0, 0
    for i in ints:
        exact = Fraction(i) * Fraction(2) ** (dst.frac - src.frac)
        q, over = ref_overflow(ref_round(exact, rounding), dst, overflow)
        out.append(q)
        n_over += over
        n_under += q == 0 and i != 0
    return out, QuantStats(len(ints), n_over, n_under)


# -- strategies -------------------------------------------------------------------------------
@st.composite
def formats(draw, min_frac=-40, max_frac=80):
    signed = draw(st.booleans())
    word = draw(st.integers(2 if signed else 1, 32))
    return Format(signed, word, draw(st.integers(min_frac, max_frac)))


@st.composite
def values_for(draw, fmt):
    """Values around the format: exact ties (multiples of lsb/4), its range edges, anything."""
    lsb_quarter = Fraction(2) ** -(fmt.frac + 2)
    span = 1 << (fmt.word + 3)
    grid = st.integers(-span, span).map(lambda n: float(n * lsb_quarter))
    near = st.floats(-2.0 * fmt.max_value - 1, 2.0 * fmt.max_value + 1,
                     allow_nan=False, allow_infinity=False)
    anything = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
    return draw(st.lists(st.one_of(grid, near, anything), min_size=1, max_size=24))


rounding_modes = st.sampled_from(ROUNDING_MODES)
overflow_modes = st.sampled_from(OVERFLOW_MODES)


# -- properties -------------------------------------------------------------------------------
@PROPERTY
@given(data=st.data(), fmt=formats(), rounding=rounding_modes, overflow=overflow_modes)
def test_quantize_matches_fraction_reference(data, fmt, rounding, overflow):
    values = data.draw(values_for(fmt))
    q, stats = quantize_with_stats(values, fmt, rounding=rounding, overflow=overflow)
    want, want_stats = ref_quantize(values, fmt, rounding, overflow)
    assert q.dtype == np.int64
    assert q.tolist() == want
    assert stats == want_stats
    assert quantize(values, str(fmt), rounding, overflow).tolist() == want


@PROPERTY
@given(data=st.data(), src=formats(-20, 40), shift=st.integers(-70, 70),
       rounding=rounding_modes, overflow=overflow_modes)
def test_requantize_matches_fraction_reference(data, src, shift, rounding, overflow):
    dst = data.draw(formats(src.frac - shift, src.frac - shift))
    edges = st.sampled_from([src.min_int, src.max_int, 0, 1, src.min_int + 1, src.max_int - 1])
    ints = data.draw(st.lists(st.one_of(st.integers(src.min_int, src.max_int), edges),
                              min_size=1, max_size=24))
    q, stats = requantize_with_stats(np.array(ints, np.int64), src, dst, rounding, overflow)
    want, want_stats = ref_requantize(ints, src, dst, rounding, overflow)
    assert q.dtype == np.int64
    assert q.tolist() == want
    assert stats == want_stats
    assert requantize(ints, str(src), str(dst), rounding, overflow).tolist() == want


@PROPERTY
@given(data=st.data(), fmt=formats())
def test_dequantize_is_exact_and_inverts_quantize(data, fmt):
    ints = data.draw(st.lists(st.integers(fmt.min_int, fmt.max_int), min_size=1, max_size=24))
    real = dequantize(ints, fmt)
    assert real.dtype == np.float64
    assert [Fraction(r) for r in real.tolist()] == [i * Fraction(2) ** -fmt.frac for i in ints]
    q, stats = quantize_with_stats(real, fmt)
    assert q.tolist() == ints
    assert stats.overflow == 0 and stats.underflow == 0


@PROPERTY
@given(acc=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=32), shift=st.integers(1, 45))
def test_shift_round_is_the_spec_formula(acc, shift):
    """SPEC.md 3: y = floor((acc + 2**(s-1) - (acc < 0)) / 2**s), one adder and a shift."""
    want = [(a + (1 << (shift - 1)) - (a < 0)) // (1 << shift) for a in acc]
    assert shift_round(np.array(acc, np.int64), shift).tolist() == want
    assert want == [ref_round(Fraction(a, 1 << shift), "nearest-away") for a in acc]


# -- the worked example and fixed cases -------------------------------------------------------
def test_worked_example_s8_3():
    q, stats = quantize_with_stats([0.03125, 2.1, 16.25], "s8.3")
    assert q.tolist() == [0, 17, 127]
    assert dequantize(q, "s8.3").tolist() == [0.0, 2.125, 15.875]
    assert stats == QuantStats(total=3, overflow=1, underflow=1)
    assert (stats.overflow_rate, stats.underflow_rate) == (1 / 3, 1 / 3)


def test_ties_round_half_away_from_zero():
    assert quantize([2.5, -2.5, 0.5, -0.5, 1.5, -1.5], "s8.0").tolist() == [3, -3, 1, -1, 2, -2]
    assert quantize([2.5, -2.5, 0.5, -0.5, 1.5, -1.5], "s8.0", rounding="nearest-even").tolist() == [
        2, -2, 0, 0, 2, -2]
    assert quantize([2.5, -2.5, 0.5, -0.5], "s8.0", rounding="floor").tolist() == [2, -3, 0, -1]


def test_half_an_lsb_does_not_underflow():
    q, stats = quantize_with_stats([0.0625, -0.0625, 0.0624, -0.0624, 0.0, -0.0], "s8.3")
    assert q.tolist() == [1, -1, 0, 0, 0, 0]
    assert stats == QuantStats(total=6, overflow=0, underflow=2)  # zeros are not underflow


def test_saturation_counts_both_ends():
    q, stats = quantize_with_stats([-16.0, -16.0625, -100.0, 15.875, 15.9375, 1e300], "s8.3")
    assert q.tolist() == [-128, -128, -128, 127, 127, 127]
    assert stats.overflow == 4  # -16.0625 -> -16.125 and 15.9375 -> 16.0 are out of range too
    q, stats = quantize_with_stats([-0.5, -1e-9, 300.0, 255.0], "u8.0")
    assert q.tolist() == [0, 0, 255, 255]
    # -0.5 rounds to -1, below u8.0: it saturates (overflow) to 0, so it also became 0 (underflow)
    assert stats == QuantStats(total=4, overflow=2, underflow=2)


def test_shape_and_integer_input_are_kept():
    x = np.arange(-6, 6, dtype=np.int16).reshape(3, 2, 2)
    q = quantize(x, "s8.2")
    assert q.shape == (3, 2, 2) and q.dtype == np.int64
    assert q.ravel().tolist() == [4 * v for v in range(-6, 6)]
    assert quantize(np.float32(0.375), "u8.3").tolist() == 3  # 0-d in, 0-d out


def test_extreme_values_and_fracs_saturate_without_warnings():
    # pytest turns warnings into errors: no float overflow warning may escape
    assert quantize([1e308, -1.7e308, 5e-324], "s8.60").tolist() == [127, -128, 0]
    assert quantize([1e308, 1.0], "s8.-2000").tolist() == [0, 0]
    assert quantize([1e308], "u8.0", overflow="wrap").tolist() == [0]  # 1e308 is a multiple of 256
    assert requantize([2**31 - 1, -(2**31), 3, 0], "s32.0", "s8.40").tolist() == [127, -128, 127, 0]
    assert requantize([1, -1], "s32.0", "s32.70").tolist() == [2**31 - 1, -(2**31)]


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, what", [
    ([1.0, float("nan")], r"1 NaN and 0 infinite value\(s\) among 2"),
    ([float("inf"), -float("inf"), 0.0], r"0 NaN and 2 infinite value\(s\) among 3"),
    (np.array([np.nan, np.inf], np.float32), r"1 NaN and 1 infinite value\(s\) among 2"),
])
def test_nan_and_inf_raise_naming_the_tensor(bad, what):
    with pytest.raises(QuantizationError, match=rf"^conv1\.weight: {what}; fixed-point formats hold finite numbers only$"):
        quantize(bad, "s8.3", name="conv1.weight")
    with pytest.raises(QuantizationError, match=r"^values: "):  # default name
        quantize_with_stats(bad, "s8.3")


@pytest.mark.parametrize("empty", [[], np.zeros((0,)), np.zeros((3, 0), np.float32)])
def test_empty_arrays_raise(empty):
    with pytest.raises(QuantizationError, match=r"^fc\.bias: expected at least one value, got an empty array$"):
        quantize(empty, "s8.3", name="fc.bias")
    with pytest.raises(QuantizationError, match=r"expected at least one value, got an empty array"):
        dequantize(np.zeros(0, np.int64), "s8.3")
    with pytest.raises(QuantizationError, match=r"expected at least one value, got an empty array"):
        requantize(np.zeros(0, np.int64), "s16.7", "s8.3")


def test_non_numbers_raise():
    with pytest.raises(QuantizationError, match=r"^x: expected real numbers, got an array of dtype <U"):
        quantize(["1.0"], "s8.3", name="x")
    with pytest.raises(QuantizationError, match=r"^x: expected an array of real numbers"):
        quantize([[1.0], [1.0, 2.0]], "s8.3", name="x")
    with pytest.raises(QuantizationError, match=r"^values: expected integers, got an array of dtype float64$"):
        dequantize([1.5], "s8.3")


def test_dequantize_rejects_integers_outside_the_format():
    with pytest.raises(QuantizationError, match=r"integers must lie in \[-128, 127\] for format s8\.3, got values in \[-3, 128\]"):
        dequantize([-3, 128], "s8.3")


def test_unknown_modes_and_formats():
    with pytest.raises(QuantizationError, match=r"unknown rounding mode 'up': expected one of nearest-away, nearest-even, floor"):
        quantize([1.0], "s8.3", rounding="up")
    with pytest.raises(QuantizationError, match=r"unknown overflow mode 'clip': expected one of saturate, wrap"):
        requantize([1], "s8.3", "s8.2", overflow="clip")
    with pytest.raises(FpgagenError, match=r"unknown fixed-point format 'q8\.3'"):
        quantize([1.0], "q8.3")
    with pytest.raises(FpgagenError, match=r"word length must be between 1 and 32 bits, not 0"):
        quantize([1.0], "s0.3")
