"""The public API at the package top level, used as a script would use it."""

import numpy as np
import pytest

import fpgagen


def test_quantize_dequantize_requantize():
    q = fpgagen.quantize([0.03125, 2.1, 16.25], "s8.3")
    assert q.dtype == np.int64 and q.tolist() == [0, 17, 127]
    assert fpgagen.dequantize(q, "s8.3").tolist() == [0.0, 2.125, 15.875]
    q, stats = fpgagen.quantize_with_stats([0.03125, 2.1, 16.25], "s8.3", name="x")
    assert isinstance(stats, fpgagen.QuantStats)
    assert (stats.total, stats.overflow, stats.underflow) == (3, 1, 1)
    assert fpgagen.requantize([272, -272, 5000], "s16.7", "s8.3").tolist() == [17, -17, 127]
    r, stats = fpgagen.requantize_with_stats([272, 4], "s16.7", "s8.3")
    assert r.tolist() == [17, 0] and (stats.overflow, stats.underflow) == (0, 1)


def test_histogram_and_format_choice():
    hist = fpgagen.msb_histogram([0.03125, 2.1, 16.25], name="seeds")
    assert isinstance(hist, fpgagen.MsbHistogram)
    assert hist.occupied().tolist() == [4, 1, -5]
    assert hist + fpgagen.MsbHistogram() is not hist
    assert fpgagen.METHODS == ("max", "coverage", "mse")
    fmt = fpgagen.choose_format(hist, "coverage", eps=1 / 3, signed=True)
    assert isinstance(fmt, fpgagen.Format) and str(fmt) == "s8.3"
    assert fpgagen.Format.parse("s8.3") == fpgagen.Format(signed=True, word=8, frac=3) == fmt
    assert str(fpgagen.choose_format(hist)) == "u8.3"


def test_errors_are_exported():
    assert issubclass(fpgagen.FormatError, fpgagen.FpgagenError)
    assert issubclass(fpgagen.QuantizationError, fpgagen.FpgagenError)
    for name in ("ConfigError", "ModelError", "BackendError"):
        assert issubclass(getattr(fpgagen, name), fpgagen.FpgagenError)
    assert not issubclass(fpgagen.VerificationMismatch, fpgagen.FpgagenError)
    with pytest.raises(fpgagen.FormatError, match=r"unknown fixed-point format 'int8'"):
        fpgagen.quantize([1.0], "int8")
    with pytest.raises(fpgagen.QuantizationError, match=r"^act: 1 NaN"):
        fpgagen.msb_histogram([float("nan")], name="act")


def test_every_public_name_exists_and_the_documented_ones_are_described():
    for name in fpgagen.__all__:
        assert hasattr(fpgagen, name), name
    assert fpgagen.__version__
    doc = fpgagen.__doc__
    for name in ("quantize", "quantize_with_stats", "dequantize", "requantize", "msb_histogram",
                 "MsbHistogram", "choose_format", "Format"):
        assert name in fpgagen.__all__
        assert f"{name}`" in doc, f"{name} is not described in the package docstring"
        assert getattr(fpgagen, name).__doc__, f"{name} has no docstring"
