"""``flatten``: ``(C, H, W) -> (C*H*W,)`` in C-major order, a relabelling (no arithmetic)."""

from __future__ import annotations

from fpgagen.ops.registry import Op, register


@register
class Flatten(Op):
    name = "flatten"
    passes_format = True
    takes_activation = False
    commutes = "all"

    def run_float(self, node, args, dtype):
        return args[0].reshape(args[0].shape[0], -1)

    def run_int(self, layer, args, as_float):
        return args[0].reshape(args[0].shape[0], -1)
