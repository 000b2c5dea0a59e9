"""Exact plain-Python references shared by the kernel tests (no NumPy arithmetic)."""

from __future__ import annotations

from fractions import Fraction


def round_away(fr: Fraction) -> int:
    """Round half away from zero, exactly."""
    mag = abs(fr)
    whole = mag.numerator // mag.denominator
    if mag - whole >= Fraction(1, 2):
        whole += 1
    return whole if fr >= 0 else -whole


def round_even(fr: Fraction) -> int:
    """Round half to even, exactly (Python's round of a Fraction)."""
    return round(fr)


def ref_requant(acc: int, shift: int, lo: int, hi: int, even: bool = False) -> int:
    """SPEC.md section 3: acc / 2**shift rounded half away from zero (``even``: half to even),
    clamped to [lo, hi]."""
    exact = Fraction(acc, 1) / Fraction(2) ** shift
    return min(hi, max(lo, round_even(exact) if even else round_away(exact)))
