"""One way to register an implementation per key (an ONNX op's import rule, a backend's emitter
per IR op): a decorator that fills a table and refuses a second entry for the same key."""

from __future__ import annotations


def registrar(table: dict, kind: str):
    """``@registrar(TABLE, "Verilog emitters")("conv", "dense")``: put the decorated function into
    ``table`` under each key; a key registered twice is an error naming ``kind``."""
    def keys(*names: str):
        def deco(fn):
            for name in names:
                if name in table:
                    raise RuntimeError(f"two {kind} registered for {name!r}")
                table[name] = fn
            return fn
        return deco
    return keys
