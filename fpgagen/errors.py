"""Errors fpgagen raises on bad input.

Every error a user can provoke is an :class:`FpgagenError` whose message says what was
expected and what was given; the command line turns it into exit code 2.
"""

from __future__ import annotations


class FpgagenError(Exception):
    """Bad input: a format string, a tensor, a model, a config key. Exit code 2."""


class FormatError(FpgagenError, ValueError):
    """A fixed-point format string or parameter that is not valid."""


class QuantizationError(FpgagenError, ValueError):
    """Values that cannot be quantized (NaN, infinity, empty, wrong type)."""


class ConfigError(FpgagenError):
    """A YAML build configuration that is not valid."""


class ModelError(FpgagenError):
    """An ONNX model (or a node of it) that fpgagen cannot import."""


class OutputError(FpgagenError):
    """An output path fpgagen cannot write (a file where a directory must go, no permission)."""


class BackendError(FpgagenError):
    """A layer a backend cannot build as configured (parallelism, memory)."""


class VerificationMismatch(Exception):
    """Generated code disagreed with the golden model. Exit code 1."""


def show(value, limit: int = 80) -> str:
    """``repr(value)`` for a message, shortened: a huge value never lands in a message whole."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
    r.maxlevel = 3
    text = r.repr(value)
    return text if len(text) <= 2 * limit else text[: 2 * limit - 3] + "..."
