"""The op registry: one :class:`Op` per IR op, registered once (:func:`register`).

An op's module (``fpgagen/ops/<op>.py``) holds what the op means: its ONNX import rule(s), shape,
float execution, lowering to integers and golden integer kernel, and its MAC count. The float
executor, the lowering, the golden model and the importer look ops up here; backends keep one
emitter per op beside their other emitters.
"""

from __future__ import annotations

from typing import ClassVar

from fpgagen.errors import ModelError

_OPS: dict[str, "Op"] = {}
_ONNX: dict[str, "Op"] = {}


class Op:
    """What one IR op means. Subclasses set :attr:`name` and override what applies."""

    #: the IR op name (``Node.op``, ``QLayer.op``)
    name: ClassVar[str] = ""
    #: the output keeps the input's format (exact layout ops: no requantization, no calibration)
    passes_format: ClassVar[bool] = False
    #: the ONNX op types whose import rule is :meth:`import_onnx`
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    #: the type of ``Node.params`` / ``QLayer.params`` (a frozen dataclass of this module), or None
    #: for an op without parameters; the IR checks it
    params_type: ClassVar[type | None] = None
    #: every float-IR node of this op has its params (ops whose params come from the lowering do not)
    needs_params: ClassVar[bool] = False
    #: or: ONNX op type -> its import rule ``rule(im, node, index, t, attrs)`` (module functions)
    import_rules: ClassVar[dict] = {}
    #: a fused activation may be given to this op (its requantizer clamps / takes the LeakyRelu)
    takes_activation: ClassVar[bool] = True
    #: an elementwise activation f (with f(0) = 0) commutes with this op, so the activations pass may
    #: move it up through: "all" (layout ops), "monotone" (max: only non-decreasing f), or None
    commutes: ClassVar[str | None] = None

    def import_onnx(self, im, node, index, t, attrs) -> None:
        """Import one ONNX node as this op (the rule of :attr:`import_rules` for its type)."""
        self.import_rules[node.op_type](im, node, index, t, attrs)

    @classmethod
    def onnx_types(cls) -> tuple[str, ...]:
        return cls.onnx_ops or tuple(cls.import_rules)

    def run_float(self, node, args: list, dtype):  # pragma: no cover - per op
        """The float output (before the fused activation) on a batch."""
        raise NotImplementedError(self.name)

    def lower(self, node, layer, ctx) -> None:
        """Fill ``layer`` (a QLayer with name, tensors and formats set) with the op's integers.
        ``ctx`` is the lowering's :class:`fpgagen.quant.lower.LowerContext`."""

    def run_int(self, layer, args: list, as_float: bool):  # pragma: no cover - per op
        """The golden integer output on a batch (int64, or integers held exactly in floats)."""
        raise NotImplementedError(self.name)

    def macs(self, layer, shapes: dict) -> int:
        """Multiply-accumulates per frame (0 for ops without multipliers)."""
        return 0

    def fold_dims(self, layer, shapes: dict) -> tuple[int, int] | None:
        """(outputs, inputs per kernel tap) that a backend's PE and SIMD divide; None without MACs."""
        return None


class ExactOp(Op):
    """A layout op whose integers are its float values (resize, pad): one kernel of the input and
    the node's typed params serves the float executor and the golden model; the lowering keeps the
    params."""

    passes_format = True
    takes_activation = False
    commutes = "all"  # replication and zero padding: f(pad(x)) = pad(f(x)) when f(0) = 0

    def kernel(self, x, params):  # pragma: no cover - per op
        raise NotImplementedError(self.name)

    def run_float(self, node, args, dtype):
        return self.kernel(args[0], node.params)

    def run_int(self, layer, args, as_float):
        return self.kernel(args[0], layer.params)


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: register one instance of ``cls``; a second op of the same name (or a
    second import rule for an ONNX op) is an error."""
    op = cls()
    if not op.name:
        raise RuntimeError(f"{cls.__name__} has no op name")
    if op.name in _OPS:
        raise RuntimeError(f"IR op {op.name!r} is registered twice ({type(_OPS[op.name]).__name__}, {cls.__name__})")
    for onnx_op in op.onnx_types():
        if onnx_op in _ONNX:
            raise RuntimeError(f"ONNX op {onnx_op} has two import rules ({_ONNX[onnx_op].name}, {op.name})")
    _OPS[op.name] = op
    for onnx_op in op.onnx_types():
        _ONNX[onnx_op] = op
    return cls


def get(name: str) -> Op:
    try:
        return _OPS[name]
    except KeyError:
        raise ModelError(f"unknown IR op {name!r}, expected one of {names()}") from None


def names() -> tuple[str, ...]:
    return tuple(_OPS)


def onnx_rules() -> dict[str, Op]:
    """ONNX op type -> the op whose :meth:`Op.import_onnx` imports it."""
    return dict(_ONNX)
