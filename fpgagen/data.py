"""Calibration and validation data: .npz/.npy files or a built-in data set, preprocessed.

``x`` is shaped as the model input with the batch first (``[N, C, H, W]``, ``[N, H, W, C]`` for an
NHWC model, ``[N, F]``), or without the channel axis when it is 1 (``[N, H, W]``); ``y`` holds optional integer labels.
Nothing is reshaped silently: any other shape is an error naming the file and both shapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgagen.errors import ConfigError, show
from fpgagen.names import shorten

#: the fixed split of the built-in digits data set (the examples were trained on its train part)
DIGITS_SPLIT = {"test_size": 0.25, "random_state": 0}


def _sklearn_digits(which: str, shape: tuple[int, ...]):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:  # pragma: no cover - scikit-learn is in the test extra
        raise ConfigError("the built-in data set 'sklearn-digits' needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    # the data set's two official forms: images [N, 8, 8] and flat vectors [N, 64]
    x = digits.data if len(shape) == 1 else digits.images
    y = digits.target
    if which != "sklearn-digits":
        idx = np.arange(len(y))
        train, test = train_test_split(idx, stratify=y, **DIGITS_SPLIT)
        part = np.sort(train if which.endswith(":train") else test)
        x, y = x[part], y[part]
    return x, y


def load_arrays(spec: str, key: str, shape: tuple[int, ...]):
    """(x, y or None) from a data spec, unprocessed."""
    if spec.startswith("sklearn-digits"):
        return _sklearn_digits(spec, shape)
    path = Path(spec)
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise ConfigError(f"{key}: {path}: expected an array named 'x' (and optionally 'y'), found {show(f.files)}")
            return f["x"], (f["y"] if "y" in f.files else None)
    except ConfigError:
        raise
    except Exception as exc:
        detail = str(exc)
        if "pickled" in detail:  # numpy's word for anything that is not a plain array file
            detail = "not a NumPy array file, or it holds Python objects (fpgagen loads plain arrays only)"
        raise ConfigError(f"{key}: {path}: cannot read data as .npz/.npy: {shorten(detail, 200)}") from None


def fit_shape(x: np.ndarray, shape: tuple[int, ...], key: str) -> np.ndarray:
    """``x`` as ``[N, *shape]``; the only accepted variation is a missing channel axis of 1 (first,
    or last for an NHWC input)."""
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    if len(shape) >= 2 and shape[0] == 1 and tuple(x.shape[1:]) == tuple(shape[1:]):
        return x[:, None]
    if len(shape) == 3 and shape[-1] == 1 and tuple(x.shape[1:]) == tuple(shape[:-1]):
        return x[..., None]
    want = ", ".join(map(str, shape))
    alt = f" or [N, {', '.join(map(str, shape[1:]))}]" if len(shape) >= 2 and shape[0] == 1 else ""
    if len(shape) == 3 and shape[-1] == 1:
        alt += f" or [N, {', '.join(map(str, shape[:-1]))}]"
    raise ConfigError(f"{key}: x has shape {list(x.shape)}; expected [N, {want}]{alt} for the model input")


def load_data(spec: str | None, key: str, shape: tuple[int, ...], scale: float, offset: float,
              limit: int | None = None):
    """Preprocessed float32 ``x`` ``[N, *shape]`` and integer labels ``y`` (or None)."""
    if spec is None:
        return None, None
    x, y = load_arrays(spec, key, shape)
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{key}: x must hold numbers, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ConfigError(f"{key}: x has shape {list(x.shape)}; expected [N, {', '.join(map(str, shape))}] "
                          "(a batch of samples)")
    if len(x) == 0:
        raise ConfigError(f"{key}: x holds no samples")
    x = fit_shape(x, shape, key)
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise ConfigError(
                f"{key}: y must be integer labels of shape [{len(x)}], got dtype {y.dtype} shape {list(y.shape)}"
            )
        y = y.astype(np.int64)
    if limit is not None:
        x = x[:limit]
        y = None if y is None else y[:limit]
    x = (x.astype(np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)
    if not np.isfinite(x).all():
        raise ConfigError(f"{key}: x holds NaN or infinite values after preprocessing")
    return x, y
