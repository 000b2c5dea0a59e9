"""The output targets (Verilog, HLS C++, C) and what they share.

Every backend stores feature maps channel-last (HWC: all channels of a pixel together, pixel by
pixel, row by row) while the IR and ONNX are channel-first (CHW); :func:`hwc_order` is the one
place that maps between the two.
"""

from __future__ import annotations

import math

import numpy as np


def hwc_order(shape) -> np.ndarray:
    """For a ``(C, H, W)`` tensor, the CHW (ONNX/IR) flat index held at each HWC position;
    the identity for any other shape (vectors keep their index order)."""
    if len(shape) != 3:
        return np.arange(math.prod(shape))
    c, h, w = shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def to_hwc(values: np.ndarray, shape) -> np.ndarray:
    """``[N, *shape]`` in the IR's (CHW) order as ``[N, elements]`` in HWC order."""
    flat = np.asarray(values).reshape(len(values), -1)
    return flat[:, hwc_order(shape)]


def from_hwc(values: np.ndarray, shape) -> np.ndarray:
    """``[N, elements]`` in HWC order back to the IR's (CHW) order, ``[N, elements]``."""
    out = np.empty_like(values)
    out[:, hwc_order(shape)] = values
    return out


def from_beats(beats, width: int, signed: bool, ew: int = 1) -> list[int]:
    """The elements of a wide stream's beats (``ew`` elements of ``width`` bits each, element e
    at bits ``[e*width +: width]``) as the integers they hold (:func:`from_words`)."""
    if ew == 1:
        return from_words(beats, width, signed)
    mask = (1 << width) - 1
    return from_words([(int(b) >> (e * width)) & mask for b in beats for e in range(ew)], width, signed)


def from_words(words, width: int, signed: bool) -> list[int]:
    """Raw ``width``-bit words (as a simulator reads a bus) as the integers they hold: two's
    complement when ``signed``."""
    if not signed:
        return [int(v) for v in words]
    half = 1 << (width - 1)
    return [int(v) - (1 << width) if int(v) >= half else int(v) for v in words]
