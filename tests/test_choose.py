"""Choosing a format from an MSB histogram (SPEC.md 2): max, coverage, mse; signedness; word."""

import doctest

import numpy as np
import pytest

import fpgagen.quant.choose as choose_module
from fpgagen.errors import QuantizationError
from fpgagen.fixed import dequantize, quantize, quantize_with_stats
from fpgagen.ir.format import Format
from fpgagen.quant.choose import choose_format, choose_msb, squared_error
from fpgagen.quant.histogram import MsbHistogram, msb_histogram

SEEDS = [0.03125, 2.1, 16.25]  # MSB positions -5, 1, 4


# -- the seeds' worked example ----------------------------------------------------------------
def test_worked_example_coverage_chooses_bits_2e3_to_2e_minus3():
    hist = msb_histogram(SEEDS)
    fmt = choose_format(hist, "coverage", eps=1 / 3, signed=True)
    assert str(fmt) == "s8.3"
    assert list(fmt.bits()) == [3, 2, 1, 0, -1, -2, -3]
    q, stats = quantize_with_stats(SEEDS, fmt)
    assert dequantize(q, fmt).tolist() == [0.0, 2.125, 15.875]
    assert (stats.overflow, stats.underflow) == (1, 1)


def test_worked_example_other_methods_and_signedness():
    hist = msb_histogram(SEEDS)
    assert str(choose_format(hist, "coverage", eps=1 / 3)) == "u8.4"  # positive data: unsigned
    assert str(choose_format(hist, "max", signed=True)) == "s8.2"  # keeps 16.25
    assert str(choose_format(hist, "max")) == "u8.3"
    assert str(choose_format(hist, "coverage", signed=True)) == "s8.2"  # default eps drops nothing
    # a negative value makes the data signed: s8.3 without forcing
    assert str(choose_format(msb_histogram([0.03125, -2.1, 16.25]), "coverage", eps=1 / 3)) == "s8.3"


def test_docstring_examples_are_true():
    result = doctest.testmod(choose_module, raise_on_error=False)
    assert result.attempted >= 4 and result.failed == 0


# -- max --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_max_keeps_the_highest_msb(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(2000) * 2.0 ** rng.integers(-10, 10)
    hist = msb_histogram(x)
    fmt = choose_format(hist, "max")
    assert fmt.msb == hist.highest and fmt.signed
    # nothing saturates by more than the half LSB that rounding may add at the top
    q = quantize(x, fmt)
    assert np.all(np.abs(dequantize(q, fmt) - x) <= fmt.lsb / 2)


def test_max_msb_and_frac():
    hist = msb_histogram([0.75, 3.5, 100.0])  # MSB 6
    assert choose_msb(hist, "max") == 6
    assert str(choose_format(hist, "max")) == "u8.1"  # frac = 8 - 1 - 0 - 6
    assert str(choose_format(hist, "max", signed=True)) == "s8.0"


# -- coverage ---------------------------------------------------------------------------------
def test_coverage_drops_at_most_eps_of_the_values():
    # 1000 values: 990 at MSB 0, 9 at MSB 5, 1 at MSB 10
    hist = msb_histogram(np.r_[np.full(990, 1.5), np.full(9, 40.0), [1500.0]])
    assert choose_msb(hist, "coverage", eps=0.0) == 10  # eps 0 is max
    assert choose_msb(hist, "coverage", eps=0.0009) == 10
    assert choose_msb(hist, "coverage", eps=0.001) == 9  # drops 1500 to one bit below it
    assert choose_msb(hist, "coverage", eps=0.0099) == 9
    assert choose_msb(hist, "coverage", eps=0.01) == 4  # drops all 10 outliers
    assert choose_msb(hist, "coverage", eps=0.5) == 4  # never sinks below a dropped MSB - 1


def test_coverage_never_goes_into_the_bulk():
    hist = msb_histogram(np.r_[np.full(10, 1.5), np.full(10, 0.3)])  # MSBs 0 and -2
    assert choose_msb(hist, "coverage", eps=0.5) == -1
    assert choose_msb(hist, "coverage", eps=0.49) == 0


# -- mse --------------------------------------------------------------------------------------
def brute_force_best_msb(x, signed, word=8):
    hist = msb_histogram(x)
    errors = {}
    for m in range(hist.highest + 1, hist.lowest - word - 1, -1):
        fmt = Format.from_msb(m, signed, word)
        errors[m] = float(((dequantize(quantize(x, fmt), fmt) - x) ** 2).sum())
    return min(errors, key=errors.get), errors


@pytest.mark.parametrize("name", ["outlier", "gauss", "relu", "laplace"])
def test_mse_chooses_the_best_format(name):
    rng = np.random.default_rng(1)
    x = {
        "outlier": np.r_[rng.uniform(1, 2, 10000), 300.0],
        "gauss": rng.standard_normal(20000),
        "relu": np.maximum(rng.standard_normal(5000), 0) * 3,
        "laplace": rng.laplace(size=20000) * 0.01,
    }[name]
    hist = msb_histogram(x)
    best, errors = brute_force_best_msb(x, hist.signed)
    fmt = choose_format(hist, "mse")
    assert fmt.signed == hist.signed and fmt.word == 8
    assert fmt.msb == best
    # the model of the error is close to the real one (float estimate vs float measurement)
    assert squared_error(hist, fmt) == pytest.approx(errors[best], rel=0.05)


def test_mse_saturates_an_outlier_that_max_keeps():
    x = np.r_[np.random.default_rng(1).uniform(1, 2, 10000), 300.0]
    hist = msb_histogram(x)
    assert str(choose_format(hist, "max")) == "u8.-1"
    assert str(choose_format(hist, "mse")) == "u8.0"  # 300 saturates at 255, 1..2 keep a bit


def test_squared_error_is_exact_for_saturated_and_underflowed_values():
    fmt = Format.parse("u8.5")  # max 7.96875, lsb 1/32
    assert squared_error(msb_histogram([100.0, 200.0]), fmt) == (100 - 7.96875) ** 2 + (200 - 7.96875) ** 2
    assert squared_error(msb_histogram([2.0**-8, 3 * 2.0**-9]), fmt) == 2.0**-16 + 9 * 2.0**-18


# -- signedness and word length ---------------------------------------------------------------
def test_signedness_from_the_data():
    assert not choose_format(msb_histogram([0.0, 1.0, 3.0])).signed  # min == 0: unsigned
    assert choose_format(msb_histogram([-1e-6, 1.0, 3.0])).signed
    assert choose_format(msb_histogram([1.0, 3.0]), signed=True).signed
    assert not choose_format(msb_histogram([-1.0, 3.0]), signed=False).signed  # forced


@pytest.mark.parametrize("method", ["max", "coverage", "mse"])
@pytest.mark.parametrize("word", [2, 4, 8, 16, 32])
def test_word_length(method, word):
    hist = msb_histogram([-0.3, 0.7, 2.5])
    fmt = choose_format(hist, method, word=word)
    assert fmt.word == word and fmt.signed
    assert fmt.frac == word - 1 - 1 - fmt.msb
    unsigned = choose_format(msb_histogram([0.3, 0.7, 2.5]), method, word=word)
    assert unsigned.word == word and not unsigned.signed
    assert unsigned.frac == word - 1 - unsigned.msb


def test_default_word_and_one_bit_unsigned():
    assert choose_format(msb_histogram([1.0])).word == 8
    assert str(choose_format(msb_histogram([1.0]), word=1)) == "u1.0"


def test_all_zero_data_keeps_one_representable():
    assert str(choose_format(msb_histogram(np.zeros(5)), "mse")) == "u8.7"
    assert str(choose_format(msb_histogram(np.zeros(5)), "max", signed=True)) == "s8.6"


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("word", [0, 33, -8])
def test_word_length_out_of_range(word):
    with pytest.raises(QuantizationError, match=rf"^word length must be between 1 and 32 bits, not {word}$"):
        choose_format(msb_histogram([1.0]), word=word)


def test_bad_word_types_and_signed_one_bit():
    with pytest.raises(QuantizationError, match=r"^word length must be an integer, not 8\.0$"):
        choose_format(msb_histogram([1.0]), word=8.0)
    with pytest.raises(QuantizationError, match=r"^act: a signed format needs at least 2 bits, not 1$"):
        choose_format(msb_histogram([-1.0], name="act"), word=1)


def test_unknown_method():
    with pytest.raises(QuantizationError, match=r"^unknown format-choice method 'kl': expected one of max, coverage, mse$"):
        choose_format(msb_histogram([1.0]), "kl")


def test_empty_histogram_and_not_a_histogram():
    with pytest.raises(QuantizationError, match=r"^conv1\.out: no values were logged, cannot choose a format$"):
        choose_format(MsbHistogram("conv1.out"))
    with pytest.raises(QuantizationError, match=r"^expected an MsbHistogram, not list$"):
        choose_msb([1.0, 2.0])
    with pytest.raises(QuantizationError, match=r"^expected an MsbHistogram, not ndarray$"):
        choose_format(np.array([1.0, 2.0]))


@pytest.mark.parametrize("eps", [-0.1, 1.0, 2, "0.1"])
def test_bad_eps(eps):
    with pytest.raises(QuantizationError, match=r"^coverage eps must be a number in \[0, 1\), not "):
        choose_format(msb_histogram([1.0]), "coverage", eps=eps)
