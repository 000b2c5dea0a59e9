"""Benchmark: log 10 million float32 values into an MSB histogram.

Compares :func:`fpgagen.msb_histogram` (counts plus per-bin sums of |v| and v**2, NaN/inf check,
min/max) with a plain NumPy baseline that only counts (``np.frexp`` exponents, ``np.bincount``)
in the same run. Target (issue 2): well under one second for 10 million values.

    python benchmarks/bench_histogram.py [--n 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fpgagen import msb_histogram
from fpgagen.quant.histogram import MIN_BIT

# float32 frexp exponents: -148 (smallest denormal) .. 128; zero gives 0.
F32_EXP_LO, F32_EXP_HI = -148, 128


def numpy_baseline(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Counts per frexp exponent and the number of zeros: the plain NumPy way."""
    exponent = np.frexp(x)[1]
    counts = np.bincount(exponent - F32_EXP_LO, minlength=F32_EXP_HI - F32_EXP_LO + 1)
    zeros = int(np.count_nonzero(x == 0))
    counts[-F32_EXP_LO] -= zeros
    return counts, zeros


def best_time(fn, x, repeat: int) -> tuple[float, object]:
    result, best = fn(x), float("inf")  # first call warms up (page faults, caches)
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(x)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of float32 values")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (the best one counts)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n, dtype=np.float32) * 4).astype(np.float32)
    x[::1000] = 0  # some zeros, counted apart

    t_ours, hist = best_time(msb_histogram, x, args.repeat)
    t_base, (counts, zeros) = best_time(numpy_baseline, x, args.repeat)

    # same counts both ways (MSB = exponent - 1)
    lo = F32_EXP_LO - 1 - MIN_BIT
    assert np.array_equal(hist.counts[lo : lo + counts.size], counts) and hist.zeros == zeros
    assert hist.total == args.n

    print(f"MSB histogram of {args.n:,} float32 values (best of {args.repeat} runs)")
    print(f"{'':24s}{'seconds':>10s}{'values/s':>14s}")
    print(f"{'fpgagen.msb_histogram':24s}{t_ours:10.3f}{args.n / t_ours:14.3e}")
    print(f"{'numpy frexp+bincount':24s}{t_base:10.3f}{args.n / t_base:14.3e}")
    print(f"ratio fpgagen / numpy baseline: {t_ours / t_base:.2f}x "
          f"(fpgagen also sums |v| and v**2 per bin and checks NaN/inf)")
    print(f"target < 1 s: {'met' if t_ours < 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
