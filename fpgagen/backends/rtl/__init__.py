"""Parameter builders for the hand-written Verilog layer library (``templates/verilog``).

Each builder turns one layer of the integer IR into an :class:`RtlInstance`: the library
module to instantiate, its parameters in declaration order, the contents of the ``.mem`` files
its ROMs load with ``$readmemh``, the analytic cycles per frame and a one-line description.
Builders raise :class:`fpgagen.errors.BackendError` naming the layer for what the module
cannot do; they never write files.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RtlInstance:
    """One library module instance: ``module #(params) u_<name> (...)``."""

    #: library module name, e.g. ``fpgagen_dense`` (file ``templates/verilog/<module>.v``)
    module: str
    #: parameters in declaration order, name -> int or str (a str is rendered quoted)
    params: dict = field(default_factory=dict)
    #: ``.mem`` file name -> text (hex words, one per line), loaded by ``$readmemh``
    mems: dict = field(default_factory=dict)
    #: analytic clock cycles per frame in steady state (frames back to back)
    cycles: int = 0
    #: short description: formats, sizes, parallelism
    describe: str = ""


def hex_words(values, width: int) -> list[str]:
    """Each integer as a ``width``-bit two's-complement word in hex (zero-padded, lower case)."""
    digits = (width + 3) // 4
    mask = (1 << width) - 1
    out = []
    for v in values:
        v = int(v)
        if not -(1 << (width - 1)) <= v < (1 << width):
            raise ValueError(f"value {v} does not fit {width} bits")
        out.append(f"{v & mask:0{digits}x}")
    return out


def pack_words(rows, width: int) -> list[str]:
    """Each row of integers packed into one word, element 0 in the least significant ``width``
    bits (so the last element comes first in the hex text); one hex string per row."""
    lines = []
    mask = (1 << width) - 1
    for row in rows:
        word = 0
        for i, v in enumerate(row):
            v = int(v)
            if not -(1 << (width - 1)) <= v < (1 << width):
                raise ValueError(f"value {v} does not fit {width} bits")
            word |= (v & mask) << (i * width)
        digits = (len(row) * width + 3) // 4
        lines.append(f"{word:0{digits}x}")
    return lines


def ident(name: str) -> str:
    """A Verilog identifier / file stem from a layer name (``/fc1/Gemm`` -> ``fc1_Gemm``)."""
    import re

    out = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "t"
    return "n" + out if out[0].isdigit() else out


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement word holding [lo, hi] (at least 2)."""
    width = 2
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def requant_params(layer) -> dict:
    """SHIFT, LO, HI of a requantizing layer, checked against what fpgagen_requant takes."""
    from fpgagen.errors import BackendError

    if layer.shift is None or layer.lo is None or layer.hi is None:
        raise BackendError(f"layer {layer.name!r} ({layer.op}): the integer IR has no shift/lo/hi to requantize with")
    if not (INT32_MIN <= layer.lo <= layer.hi <= INT32_MAX):
        raise BackendError(
            f"layer {layer.name!r} ({layer.op}): output bounds [{layer.lo}, {layer.hi}] must lie within a "
            f"32-bit signed Verilog parameter (output format {layer.out_fmt})"
        )
    return {"SHIFT": int(layer.shift), "LO": int(layer.lo), "HI": int(layer.hi)}
