"""Fixed-point formats (SPEC.md section 1) as small frozen value objects.

A format ``(signed, word, frac)`` says that an integer ``q`` of ``word`` bits stands for
``q * 2**-frac``. One canonical spelling round-trips: ``s8.3``, ``u8.4``, ``s32.11``,
``s8.-2`` (a negative ``frac`` scales up).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fpgagen.errors import FormatError

MAX_WORD = 32
_FORMAT_RE = re.compile(r"^([su])(\d+)\.(-?\d+)$")


@dataclass(frozen=True, order=True)
class Format:
    """A fixed-point format: ``signed``, ``word`` bits, ``frac`` fractional bits."""

    signed: bool
    word: int
    frac: int

    def __post_init__(self) -> None:
        if not isinstance(self.signed, bool):
            raise FormatError(f"Format signed must be a bool, not {self.signed!r}")
        for name in ("word", "frac"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise FormatError(f"Format {name} must be an integer, not {value!r}")
        if not 1 <= self.word <= MAX_WORD:
            raise FormatError(
                f"Format word length must be between 1 and {MAX_WORD} bits, not {self.word}"
            )
        if self.signed and self.word < 2:
            raise FormatError("a signed format needs at least 2 bits (sign + one bit), not 1")

    # -- spelling -------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: "str | Format") -> "Format":
        """Parse ``s8.3`` / ``u8.4``; a :class:`Format` is returned unchanged."""
        if isinstance(text, Format):
            return text
        if not isinstance(text, str):
            raise FormatError(
                f"a fixed-point format must be a string such as 's8.3', not {text!r}"
            )
        match = _FORMAT_RE.match(text.strip())
        if match is None:
            raise FormatError(
                f"unknown fixed-point format {text!r}: expected 's<word>.<frac>' or "
                f"'u<word>.<frac>', e.g. 's8.3' or 'u8.4'"
            )
        sign, word, frac = match.groups()
        return cls(sign == "s", int(word), int(frac))

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.word}.{self.frac}"

    def __repr__(self) -> str:
        return f"Format({str(self)!r})"

    # -- ranges ---------------------------------------------------------------------------
    @property
    def min_int(self) -> int:
        return -(1 << (self.word - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.word - 1)) - 1 if self.signed else (1 << self.word) - 1

    @property
    def lsb(self) -> float:
        """The real value of one LSB, ``2**-frac``."""
        return 2.0 ** -self.frac

    @property
    def min_value(self) -> float:
        return self.min_int * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    @property
    def msb(self) -> int:
        """Bit position of the top magnitude bit: ``word - 1 - signed - frac``."""
        return self.word - 1 - int(self.signed) - self.frac

    @classmethod
    def from_msb(cls, msb: int, signed: bool, word: int = 8) -> "Format":
        """The format of ``word`` bits whose top magnitude bit is ``2**msb`` (SPEC.md 2)."""
        return cls(bool(signed), int(word), int(word) - 1 - int(bool(signed)) - int(msb))

    def bits(self) -> range:
        """Bit positions this format represents, high to low (sign bit excluded)."""
        return range(self.msb, -self.frac - 1, -1)


FormatLike = "str | Format"


def as_format(value: "str | Format") -> Format:
    """Accept a canonical string or a :class:`Format`."""
    return Format.parse(value)


def range_text(values) -> str:
    """``3..7`` for integers spanning 3 to 7 (``5`` when they are all 5)."""
    lo, hi = int(min(values)), int(max(values))
    return str(lo) if lo == hi else f"{lo}..{hi}"


def channel_formats_text(fmts) -> str:
    """Per-channel formats compactly: ``s8.5..s8.9`` (the range of their fracs)."""
    fracs = [f.frac for f in fmts]
    lo = min(fmts, key=lambda f: f.frac)
    hi = max(fmts, key=lambda f: f.frac)
    return str(lo) if min(fracs) == max(fracs) else f"{lo}..{hi}"
