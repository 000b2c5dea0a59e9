"""Typed, frozen integer parameters of the ops whose meaning lives in :mod:`fpgagen.ops`.

A :class:`~fpgagen.ir.qgraph.QLayer` of one of these ops carries one of them as ``layer.params``;
backends render them and never re-derive a number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LeakyInt:
    """A LeakyRelu's slope as integers (SPEC.md 3): ``alpha ~= A * 2**-frac``."""

    alpha: int
    frac: int

    def __iter__(self):  # (A, Fal), as the golden requantizer takes it
        return iter((self.alpha, self.frac))


@dataclass(frozen=True)
class ConcatParams:
    """Channel concat: input ``i`` (``channels[i]`` channels) is requantized by ``shifts[i]``."""

    shifts: tuple[int, ...]
    channels: tuple[int, ...]


@dataclass(frozen=True)
class ResizeParams:
    """Nearest upsampling: every pixel replicated ``factors = (fh, fw)`` times."""

    factors: tuple[int, int]


@dataclass(frozen=True)
class PadParams:
    """Zero padding ``(top, left, bottom, right)`` of a feature map."""

    pads: tuple[int, int, int, int]
