"""MSB histograms (SPEC.md 2): exact bit positions, zeros apart, batches, merge, fixed memory."""

import tracemalloc
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fpgagen.errors import QuantizationError
from fpgagen.quant import histogram as histogram_module
from fpgagen.quant.histogram import MAX_BIT, MIN_BIT, MsbHistogram, msb_histogram, msb_positions

PROPERTY = settings(max_examples=150, derandomize=True, database=None, deadline=None)
NBINS = MAX_BIT - MIN_BIT + 1


def ref_msb(v) -> int:
    """floor(log2(|v|)) with exact rational arithmetic."""
    x = abs(Fraction(int(v)) if isinstance(v, (int, np.integer)) else Fraction(float(v)))
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if Fraction(2) ** e <= x else e - 1


def ref_bins(values) -> dict:
    return dict(Counter(ref_msb(v) for v in values if v != 0))


def bins(h: MsbHistogram) -> dict:
    return {int(b): h.count_at(int(b)) for b in h.occupied()}


# -- exact bit positions ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype, lowest, highest", [
    (np.float16, -24, 15), (np.float32, -149, 127), (np.float64, -1074, 1023)])
def test_every_power_of_two_and_the_value_just_below(dtype, lowest, highest):
    positions = np.arange(lowest, highest + 1)
    powers = np.ldexp(np.ones(positions.size), positions).astype(dtype)
    assert np.all(powers > 0) and np.all(np.isfinite(powers))
    h = msb_histogram(np.concatenate([powers, -powers]))
    assert h.occupied().tolist() == positions[::-1].tolist()
    assert h.counts[positions - MIN_BIT].tolist() == [2] * positions.size

    below = np.nextafter(powers[1:], dtype(0))  # largest value of dtype under 2**b: MSB b - 1
    h = msb_histogram(below)
    assert h.occupied().tolist() == (positions[1:] - 1)[::-1].tolist()
    assert h.nonzero == below.size and h.zeros == 0


@pytest.mark.parametrize("dtype, smallest, largest_denormal_msb", [
    (np.float16, -24, -15), (np.float32, -149, -127), (np.float64, -1074, -1023)])
def test_denormals(dtype, smallest, largest_denormal_msb):
    tiny = np.array([np.finfo(dtype).smallest_subnormal], dtype)
    largest_denormal = np.nextafter(np.array([np.finfo(dtype).smallest_normal], dtype), dtype(0))
    assert bins(msb_histogram(tiny)) == {smallest: 1}
    assert bins(msb_histogram(-largest_denormal)) == {largest_denormal_msb: 1}
    assert msb_positions(np.float64(tiny[0])).tolist() == smallest


def test_largest_values():
    assert bins(msb_histogram(np.array([np.finfo(np.float64).max]))) == {1023: 1}
    assert bins(msb_histogram(np.array([np.finfo(np.float32).max], np.float32))) == {127: 1}
    assert bins(msb_histogram(np.array([np.finfo(np.float16).max], np.float16))) == {15: 1}


def test_no_log2_rounding_near_powers_of_two():
    # just below a power of two: float log2 of 2**30 - 2**-23 rounds to 30.0; the MSB is 29
    values = [1 - 2**-53, 2 - 2**-52, 2**30 - 2**-23, 0.5 - 2**-54]
    assert bins(msb_histogram(values)) == {-1: 1, 0: 1, 29: 1, -2: 1}


def test_integer_inputs():
    h = msb_histogram(np.array([-128, 127, 1, -1, 0, 64, 2], np.int8))
    assert bins(h) == {7: 1, 6: 2, 0: 2, 1: 1}
    assert (h.zeros, h.min, h.max) == (1, -128.0, 127.0)
    assert bins(msb_histogram(np.array([255, 128, 3], np.uint8))) == {7: 2, 1: 1}
    assert bins(msb_histogram([3, 4, 5])) == {1: 1, 2: 2}  # a Python list of ints


def test_64_bit_integers_beyond_float64_precision():
    # float64(2**54 - 1) rounds up to 2**54: the MSB must still be 53
    signed = np.array([-(2**63), 2**63 - 1, -(2**53 + 1), 2**54 - 1, -(2**54 - 1), 2**53], np.int64)
    assert bins(msb_histogram(signed)) == {63: 1, 62: 1, 53: 4}
    unsigned = np.array([2**64 - 1, 2**63, 2**63 - 1, 2**53 + 1, 2**54 - 1], np.uint64)
    assert bins(msb_histogram(unsigned)) == {63: 2, 62: 1, 53: 2}


@PROPERTY
@given(values=hnp.arrays(
    st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint64]),
    st.integers(1, 40),
    elements={"allow_nan": False, "allow_infinity": False}))
def test_bins_match_a_rational_reference(values):
    h = msb_histogram(values)
    assert bins(h) == ref_bins(values.tolist())
    assert h.zeros == int(np.count_nonzero(values == 0))
    assert h.total == values.size
    assert (h.min, h.max) == (float(values.min()), float(values.max()))


def test_float16_and_float32_are_logged_like_their_float64_values():
    x = np.random.default_rng(0).standard_normal(50_000) * 100
    for dtype in (np.float16, np.float32):
        narrow = x.astype(dtype)
        a, b = msb_histogram(narrow), msb_histogram(narrow.astype(np.float64))
        assert np.array_equal(a.counts, b.counts)
        assert (a.zeros, a.min, a.max) == (b.zeros, b.min, b.max)
        assert np.array_equal(a.sum_abs, b.sum_abs) and np.array_equal(a.sum_sq, b.sum_sq)


def test_other_byte_orders_and_bool():
    x = np.array([0.75, -3.0, 0.0, 1e-3])
    assert np.array_equal(msb_histogram(x.astype(">f4")).counts, msb_histogram(x.astype("<f4")).counts)
    assert np.array_equal(msb_histogram(x.astype(">f8")).counts, msb_histogram(x).counts)
    h = msb_histogram(np.array([True, False, True]))
    assert bins(h) == {0: 2} and h.zeros == 1


# -- zeros, min/max, reading ------------------------------------------------------------------
def test_zeros_are_counted_apart():
    h = msb_histogram([0.0, -0.0, 1.0, 0.0, -3.0])
    assert h.zeros == 3
    assert bins(h) == {0: 1, 1: 1}
    assert (h.nonzero, h.total) == (2, 5)
    assert h.count_at(0) == 1  # zero is not in bin 0
    assert h.sum_abs[0 - MIN_BIT] == 1.0 and h.sum_sq[1 - MIN_BIT] == 9.0
    only_zeros = msb_histogram(np.zeros(10, np.float32))
    assert (only_zeros.zeros, only_zeros.nonzero, only_zeros.highest) == (10, 0, None)
    assert not only_zeros.signed


def test_reading_a_histogram():
    h = msb_histogram([0.03125, 2.1, 16.25, 0.0], name="conv1.out")
    assert (h.highest, h.lowest) == (4, -5)
    assert h.occupied().tolist() == [4, 1, -5]
    assert not h.signed and msb_histogram([-1e-9, 5.0]).signed
    assert h.count_at(MAX_BIT + 1) == 0 and h.count_at(MIN_BIT - 1) == 0
    assert h.as_dict() == {"name": "conv1.out", "bins": {"4": 1, "1": 1, "-5": 1}, "zeros": 1,
                           "min": 0.0, "max": 16.25}
    assert repr(h) == "MsbHistogram('conv1.out', 4 values, 1 zeros, 2^4..2^-5)"
    assert h.sum_abs[1 - MIN_BIT] == 2.1 and h.sum_sq[4 - MIN_BIT] == 16.25**2


# -- batches, merge, memory -------------------------------------------------------------------
def assert_same(a: MsbHistogram, b: MsbHistogram) -> None:
    assert np.array_equal(a.counts, b.counts)
    assert (a.zeros, a.min, a.max) == (b.zeros, b.min, b.max)
    # the per-bin float sums are added in another order: equal up to rounding
    np.testing.assert_allclose(a.sum_abs, b.sum_abs, rtol=1e-12)
    np.testing.assert_allclose(a.sum_sq, b.sum_sq, rtol=1e-12)


def test_batch_accumulation_equals_one_shot():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(3 * histogram_module.CHUNK + 123) * 10.0 ** rng.integers(-6, 6, 1)).astype(np.float32)
    x[::97] = 0
    one_shot = msb_histogram(x)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 20, replace=False))
    batched = MsbHistogram()
    for part in np.split(x, cuts):
        assert batched.add(part) is batched
    assert_same(batched, one_shot)
    # batches of different dtypes and shapes add into one histogram
    mixed = MsbHistogram().add(x[:1000].reshape(10, 100)).add(x[1000:].astype(np.float64))
    assert_same(mixed, one_shot)


def test_merge_equals_the_histogram_of_both():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(5000), rng.laplace(size=7000) * 1e-3
    ha, hb = msb_histogram(a, "t"), msb_histogram(b)
    before = ha.counts.copy()
    merged = ha + hb
    assert_same(merged, msb_histogram(np.concatenate([a, b])))
    assert merged.name == "t"
    assert np.array_equal(ha.counts, before)  # + makes a new histogram
    assert_same(ha.merge(hb), merged)
    assert_same(MsbHistogram() + ha, ha)  # an empty histogram is the identity
    with pytest.raises(QuantizationError, match=r"can only merge an MsbHistogram with another, not ndarray"):
        ha.merge(a)


def test_memory_does_not_grow_with_samples():
    h = MsbHistogram()
    shapes = [(f, getattr(h, f).shape, getattr(h, f).dtype) for f in ("counts", "sum_abs", "sum_sq")]
    assert shapes[0][1] == (NBINS,)
    rng = np.random.default_rng(3)
    for _ in range(5):
        h.add(rng.standard_normal(200_000).astype(np.float32))
    assert [(f, getattr(h, f).shape, getattr(h, f).dtype) for f in ("counts", "sum_abs", "sum_sq")] == shapes
    assert h.total == 1_000_000
    # one large batch is worked through in slices: the extra memory stays far below its size
    big = rng.standard_normal(2_000_000).astype(np.float32)  # 8 MB
    tracemalloc.start()
    try:
        h.add(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, what", [
    ([1.0, float("nan")], r"1 NaN and 0 infinite value\(s\) among 2"),
    (np.array([np.inf, 1.0, -np.inf], np.float32), r"0 NaN and 2 infinite value\(s\) among 3"),
    (np.array([np.nan, np.inf], np.float16), r"1 NaN and 1 infinite value\(s\) among 2"),
])
def test_nan_and_inf_raise_naming_the_tensor(bad, what):
    h = msb_histogram([1.0, 2.0], name="conv2.out")
    with pytest.raises(QuantizationError, match=rf"^conv2\.out: {what}; fixed-point formats hold finite numbers only$"):
        h.add(bad)
    assert (h.total, h.min, h.max) == (2, 1.0, 2.0)  # nothing of the bad batch was logged
    with pytest.raises(QuantizationError, match=r"^x: .*NaN"):
        msb_histogram(bad, name="x")


@pytest.mark.parametrize("empty", [[], np.zeros(0, np.float32), np.zeros((2, 0), np.int8)])
def test_empty_batches_raise(empty):
    with pytest.raises(QuantizationError, match=r"^fc1\.weight: expected at least one value, got an empty array$"):
        msb_histogram(empty, name="fc1.weight")


def test_other_bad_input():
    with pytest.raises(QuantizationError, match=r"^w: expected real numbers, got an array of dtype <U3$"):
        msb_histogram(["1.0"], name="w")
    with pytest.raises(QuantizationError, match=r"^w: expected an array of real numbers"):
        msb_histogram([[1.0], [1.0, 2.0]], name="w")
    with pytest.raises(QuantizationError, match=r"zero has no MSB position; count zeros apart"):
        msb_positions([1.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("zero_fraction", [0.0, 0.05, 0.5, 0.99, 1.0])
def test_mostly_zero_batches_bin_like_dense_ones(dtype, zero_fraction):
    """ReLU outputs are mostly zeros; the zero-skipping path must give the same histogram."""
    rng = np.random.default_rng(int(zero_fraction * 100))
    v = (rng.standard_normal(50_000) * 1000).astype(dtype)
    v[rng.random(v.size) < zero_fraction] = 0
    h = msb_histogram(v)
    nz = v[v != 0].astype(np.float64)
    assert h.zeros == int((v == 0).sum())
    expect = np.bincount(np.frexp(np.abs(nz))[1] - 1 - MIN_BIT, minlength=h.counts.size) if nz.size else 0 * h.counts
    assert h.counts.tolist() == np.asarray(expect).tolist()
    assert h.sum_abs.sum() == pytest.approx(np.abs(nz).sum()) and h.sum_sq.sum() == pytest.approx((nz * nz).sum())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sorted_binning_across_chunks_with_denormals_and_signs(dtype, monkeypatch):
    """The sort-and-cut binning of float batches against frexp on float64 (exact), with denormals,
    negative zeros, powers of two and their neighbours, over many chunk boundaries."""
    monkeypatch.setattr(histogram_module, "CHUNK", 1000)
    rng = np.random.default_rng(13)
    info = np.finfo(dtype)
    tiny, small = info.smallest_subnormal, info.smallest_normal
    edge = np.ldexp(1.0, rng.integers(int(np.log2(float(small))), info.maxexp - 1, 300)).astype(dtype)
    parts = [
        (rng.standard_normal(2500) * 3).astype(dtype),
        np.array([tiny, -tiny, small, -small, np.nextafter(small, dtype(0)), dtype(-0.0), dtype(0.0), info.max],
                 dtype),
        edge, np.nextafter(edge, dtype(0)), -np.nextafter(edge, dtype(np.inf)),
        (rng.integers(1, 50, 400) * tiny).astype(dtype),
        np.zeros(700, dtype),
    ]
    x = np.concatenate(parts)
    x = x[rng.permutation(x.size)]
    h = msb_histogram(x)
    wide = x.astype(np.float64)
    nz = wide[wide != 0]
    want = np.bincount(np.frexp(np.abs(nz))[1] - 1 - MIN_BIT, minlength=NBINS)
    assert h.counts.tolist() == want.tolist()
    assert h.zeros == int(np.count_nonzero(x == 0)) and h.total == x.size
    assert (h.min, h.max) == (float(x.min()), float(x.max()))
    if dtype != np.float64:  # each bin's sum of |v| is exact (multiples of its LSB, far below 2**53)
        for b in np.flatnonzero(h.counts):
            in_bin = np.abs(nz[np.frexp(np.abs(nz))[1] - 1 - MIN_BIT == b])
            assert h.sum_abs[b] == float(sum(Fraction(float(v)) for v in in_bin))


def test_float32_sums_of_magnitudes_do_not_depend_on_the_batches(monkeypatch):
    """float32 sum_abs is exact, so batches and slices of any size give the same float64 sums."""
    rng = np.random.default_rng(14)
    x = np.maximum(rng.standard_normal(20_000) * 7, 0).astype(np.float32)
    one = msb_histogram(x)
    monkeypatch.setattr(histogram_module, "CHUNK", 777)
    batched = MsbHistogram()
    for part in np.array_split(x, 13):
        batched.add(part)
    assert np.array_equal(one.counts, batched.counts) and one.zeros == batched.zeros
    assert np.array_equal(one.sum_abs, batched.sum_abs)
    np.testing.assert_allclose(one.sum_sq, batched.sum_sq, rtol=1e-12)
