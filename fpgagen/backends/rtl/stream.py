"""Parameters of the stream plumbing: ``fpgagen_fork`` and ``fpgagen_fifo`` (templates/verilog).

Both move one element per cycle, so they never limit a pipeline's rate: their analytic cycles
per frame are 0 (the layers they connect set the rate). ``name`` (optional) is the stream or
layer the instance serves, for error messages.
"""

from __future__ import annotations

from numbers import Integral

from fpgagen.backends.rtl import RtlInstance
from fpgagen.errors import BackendError

FORK = "fpgagen_fork"
FIFO = "fpgagen_fifo"

#: tdata bits a stream may carry (the widest accumulator the library emits)
MAX_WIDTH = 64


def _for(name: str | None) -> str:
    return f" for {name!r}" if name else ""


def _check_width(module: str, width, name: str | None) -> int:
    if isinstance(width, bool) or not isinstance(width, Integral) or not 1 <= width <= MAX_WIDTH:
        raise BackendError(f"{module}{_for(name)}: tdata width must be an integer of 1..{MAX_WIDTH} bits, "
                           f"not {width!r}")
    return int(width)


def fork_instance(width: int, name: str | None = None) -> RtlInstance:
    """``fpgagen_fork``: one ``width``-bit stream to two outputs with independent back-pressure."""
    width = _check_width(FORK, width, name)
    return RtlInstance(FORK, {"WIDTH": width}, {}, 0,
                       f"fork of a {width}-bit stream into two, 1 element/cycle, latency 1")


def fifo_instance(width: int, depth: int, name: str | None = None) -> RtlInstance:
    """``fpgagen_fifo``: ``depth`` elements of ``width`` bits (+ tlast) in a RAM, plus one in the
    output register."""
    width = _check_width(FIFO, width, name)
    if isinstance(depth, bool) or not isinstance(depth, Integral) or depth < 1:
        raise BackendError(f"{FIFO}{_for(name)}: depth must be an integer >= 1 element, not {depth!r}")
    return RtlInstance(FIFO, {"WIDTH": width, "DEPTH": int(depth)}, {}, 0,
                       f"FIFO of {depth} x {width}-bit elements (+ tlast; RAM of at least 2), "
                       f"1 element/cycle, latency 2")
