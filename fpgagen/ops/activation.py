"""Activations as value objects: what a fused (or standalone) ReLU, Clip or LeakyRelu means.

A layer's ``activation`` (float IR ``Node`` and integer IR ``QLayer``) is ``None`` or one of
:class:`ReLU`, :class:`Clip`, :class:`LeakyRelu`. Each knows its float function, how it narrows
the requantizer's clamp bounds (SPEC.md 3) and, for LeakyRelu, its integer slope. The shorthands
``"relu"`` and ``("clip", 0, k)`` are accepted where an activation is given (:func:`coerce`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgagen.errors import ModelError, QuantizationError
from fpgagen.fixed import quantize, round_real
from fpgagen.ir.format import Format

#: word length of a LeakyRelu's quantized slope (SPEC.md 3)
ALPHA_WORD = 8


@dataclass(frozen=True)
class LeakyInt:
    """A LeakyRelu's slope as integers (SPEC.md 3): ``alpha ~= A * 2**-frac``."""

    alpha: int
    frac: int

    def __iter__(self):  # (A, Fal), as the golden requantizer takes it
        return iter((self.alpha, self.frac))


class Activation:
    """Base of the activation value objects."""

    #: commutes with max pooling and flatten (monotone non-decreasing), so it may move up through them
    monotone = True

    def apply(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounds(self, fmt: Format) -> tuple[int, int]:
        """The clamp ``[lo, hi]`` of a requantized output in ``fmt``."""
        return fmt.min_int, fmt.max_int

    def leaky(self) -> LeakyInt | None:
        """The integer slope of the negative side (LeakyRelu only)."""
        return None

    @property
    def text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ReLU(Activation):
    def apply(self, y):
        return np.maximum(y, 0)

    def bounds(self, fmt):
        return max(fmt.min_int, 0), fmt.max_int

    @property
    def text(self) -> str:
        return "relu"


@dataclass(frozen=True)
class Clip(Activation):
    """Clip(lo, hi); the datapath supports lo = 0 (a capped ReLU, e.g. ReLU6)."""

    lo: float
    hi: float

    def apply(self, y):
        return np.clip(y, self.lo, self.hi)

    def bounds(self, fmt):
        if self.lo != 0:
            raise QuantizationError(f"Clip with a lower bound of {self.lo:g} is not supported (must be 0)")
        return max(fmt.min_int, 0), min(fmt.max_int, int(round_real(np.ldexp(float(self.hi), fmt.frac))))

    @property
    def text(self) -> str:
        return f"clip({self.lo:g},{self.hi:g})"


@dataclass(frozen=True)
class LeakyRelu(Activation):
    """``x >= 0 ? x : alpha * x``; requantized on two paths with the slope ``A * 2**-Fal`` (SPEC.md 3)."""

    alpha: float

    @property
    def monotone(self) -> bool:  # a negative slope reverses the order of negative values
        return self.alpha >= 0

    def apply(self, y):
        return np.where(y >= 0, y, y * y.dtype.type(self.alpha))

    def alpha_format(self) -> Format:
        """The slope's format: word 8, signed when alpha < 0, top bit from ``alpha`` (the ``max`` method)."""
        signed = self.alpha < 0
        msb = int(np.frexp(abs(self.alpha))[1]) - 1  # floor(log2|alpha|), exact
        return Format(signed, ALPHA_WORD, (ALPHA_WORD - 1 - int(signed)) - msb)

    def leaky(self) -> LeakyInt:
        fmt = self.alpha_format()
        return LeakyInt(int(quantize(np.array([self.alpha]), fmt)[0]), fmt.frac)

    @property
    def text(self) -> str:
        return f"leakyrelu({self.alpha:g})"


def coerce(value, where: str = "activation") -> Activation | None:
    """An activation value object from itself, None, ``"relu"``, ``("clip", lo, hi)`` or
    ``("leakyrelu", alpha)``; a ModelError naming ``where`` otherwise."""
    if value is None or isinstance(value, Activation):
        return value
    if value == "relu":
        return ReLU()
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "clip":
        return Clip(float(value[1]), float(value[2]))
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "leakyrelu":
        return LeakyRelu(float(value[1]))
    raise ModelError(f"{where}: unknown activation {value!r}; expected None, ReLU(), Clip(lo, hi) or LeakyRelu(alpha)")


def name(activation) -> str:
    """``none``, ``relu``, ``clip(0,6)``, ``leakyrelu(0.1)``."""
    return "none" if activation is None else coerce(activation).text


def compose(first, second) -> Activation | None:
    """The activation ``second(first(x))``, or a ModelError where the pair is not one of these."""
    first, second = coerce(first), coerce(second)
    if first is None or second is None:
        return first or second
    kinds = {type(first), type(second)}
    if kinds <= {ReLU, Clip}:
        his = [a.hi for a in (first, second) if isinstance(a, Clip)]
        return Clip(0.0, min(his)) if his else ReLU()
    if isinstance(second, (ReLU, Clip)) and isinstance(first, LeakyRelu) and first.alpha >= 0:
        return second  # relu(leaky(x)) = relu(x) for alpha >= 0
    if isinstance(first, ReLU) and isinstance(second, LeakyRelu):
        return first  # leaky(relu(x)) = relu(x)
    if isinstance(first, Clip) and isinstance(second, LeakyRelu):
        return first
    if isinstance(first, LeakyRelu) and isinstance(second, LeakyRelu) and first.alpha >= 0:
        return LeakyRelu(first.alpha * second.alpha)
    raise ModelError(f"{second.text} after {first.text} cannot be fused into one activation")
