"""The integer IR: every constant an integer, every tensor a fixed-point format.

This is what the golden model executes and what every backend renders; backends never
re-derive a number (SPEC.md section 4). Built by :func:`fpgagen.quant.lower.lower`.

Per layer (:class:`QLayer`), by op:

- ``conv`` / ``dense``: ``weight`` (ints of ``w_fmt``), ``bias`` = the integer ``B`` at the
  accumulator's frac ``acc_frac = Fx + Fw`` (``b_fmt`` is the format the bias was quantized
  to), ``acc_width`` bits (it can never overflow), ``shift = acc_frac - Fy``.
  Per-channel weight formats (SPEC.md 3, ``quantization.per_channel``): ``w_fmts[c]`` is output
  channel c's format Fw_c, its bias ``B_c`` is at ``Fa_c = Fx + Fw_c`` and ``shifts[c] = Fa_c - Fy``
  (the IR's shift vector); ``acc_width`` is the widest channel's accumulator. The scalar fields then
  describe the common form every backend computes: ``w_fmt`` the finest channel format (all
  channels share its word and signedness), ``acc_frac = Fx + max Fw_c``, ``shift = max shifts``;
  channel c's accumulator is pre-aligned by a left shift of ``align[c] = shift - shifts[c]`` bits
  into ``align_width`` bits and then rounded by ``shift``, which is exactly rounding by ``shifts[c]``
  (the rounding sees the same rational value ``acc * 2**-shifts[c]``; the left shift is exact).
- ``avgpool`` / ``gap``: the window sum times the integer reciprocal ``params.recip`` (a scalar, or
  ``[OH, OW]`` when the window count varies at the border), ``shift = recip_bits + Fx - Fy``.
- ``add``: each input left-shifted by ``params.align[i]`` to the larger frac, summed, ``shift`` to Fy.
- ``maxpool`` / ``flatten``: exact; the output format is the input format.

Every requantizing layer then rounds (``shift > 0``) or shifts left, and clamps to ``[lo, hi]``:
the output format's range, narrowed by a fused ReLU (``lo = 0``) or Clip (``hi`` = k in the
output format). It rounds half away from zero unless ``rounding`` says ``nearest-even`` (set by
the import of a model whose quantizer rounds half to even: ONNX QuantizeLinear, QONNX ``ROUND``;
SPEC.md 3); the input quantizer likewise by ``QGraph.input_rounding``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import ModelError
from fpgagen.ir.format import Format, channel_formats_text, range_text
from fpgagen.ir.graph import activation_name, check_params, constants_text, short_name, tensors_text
from fpgagen.names import shorten
from fpgagen.ops import get as get_op

#: the rounding modes of a requantizer (and of the input quantizer): SPEC.md 3
REQUANT_ROUNDING = ("nearest-away", "nearest-even")


@dataclass
class QLayer:
    name: str
    op: str
    inputs: list[str]
    output: str
    in_fmts: list[Format]
    out_fmt: Format
    #: the op's typed, frozen parameters (its module in ``fpgagen.ops``; set by the lowering for
    #: ops whose parameters are integers, e.g. add's alignment), else None
    params: object = None
    activation: object = None
    weight: np.ndarray | None = None
    w_fmt: Format | None = None
    bias: np.ndarray | None = None
    b_fmt: Format | None = None
    #: the bias as quantized to ``b_fmt`` (before alignment to ``acc_frac``)
    bias_q: np.ndarray | None = None
    acc_frac: int | None = None
    acc_width: int | None = None
    shift: int | None = None
    lo: int | None = None
    hi: int | None = None
    #: per-channel weight formats Fw_c (conv/dense with ``quantization.per_channel``), else None
    w_fmts: tuple | None = None
    #: per-channel shifts ``s_c = Fx + Fw_c - Fy`` (int64 [Co]), else None
    shifts: np.ndarray | None = None
    #: bits of the pre-aligned accumulator ``acc_c << align[c]`` (per-channel layers), else None
    align_width: int | None = None
    #: a fused (or standalone) LeakyRelu's integer slope (``fpgagen.ops.activation.LeakyInt``), else None
    leaky: object = None
    onnx_nodes: list[str] = field(default_factory=list)
    onnx_op: str = ""
    #: how the requantizer rounds: "nearest-away" (SPEC.md 3's default) or "nearest-even"
    rounding: str = "nearest-away"

    def __post_init__(self) -> None:
        check_params(self.op, self.params, f"layer {self.name!r}", False)
        if self.rounding not in REQUANT_ROUNDING:
            raise ModelError(f"layer {self.name!r}: rounding {self.rounding!r}; expected one of "
                             f"{', '.join(REQUANT_ROUNDING)}")

    def __repr__(self) -> str:
        """One line: name, op, tensors, constant shapes and formats (never the constants)."""
        return (f"QLayer({short_name(self.name)}, {self.op}{constants_text(self)}, "
                f"{tensors_text(self.inputs, self.output)}: {self.describe()})")

    @property
    def requantizes(self) -> bool:
        """The output is a new quantization point (its format was chosen), not the input's."""
        return not get_op(self.op).passes_format

    @property
    def per_channel(self) -> bool:
        """Each output channel has its own weight format and shift (``w_fmts``, ``shifts``)."""
        return self.shifts is not None

    @property
    def channel_shifts(self):
        """The requantization shift the golden model applies: the vector ``shifts`` of a
        per-channel layer, else the scalar ``shift``."""
        return self.shifts if self.shifts is not None else self.shift

    @property
    def align(self) -> np.ndarray:
        """Per output channel, the left shift ``shift - shifts[c]`` that pre-aligns its accumulator
        to the common frac (zeros for a per-tensor conv/dense layer)."""
        if self.shifts is None:
            return np.zeros(0 if self.weight is None else len(self.weight), np.int64)
        return np.int64(self.shift) - np.asarray(self.shifts, np.int64)

    @property
    def requant_width(self) -> int | None:
        """Bits of what the requantizer rounds: the pre-aligned accumulator of a per-channel layer,
        else the accumulator."""
        return self.align_width if self.shifts is not None else self.acc_width

    @property
    def clamp_bounds(self) -> tuple[int, int]:
        """``[lo, hi]`` of the output: the fused ReLU/Clip's bounds, else the output format's range
        (for a max pool, which does not requantize, the latter is no clamp at all)."""
        if self.lo is None:
            return self.out_fmt.min_int, self.out_fmt.max_int
        return self.lo, self.hi

    def describe(self) -> str:
        """One line for headers and logs: op, formats, shift."""
        parts = [f"{self.op}", "in " + ",".join(map(str, self.in_fmts)), f"out {self.out_fmt}"]
        if self.w_fmts is not None:
            parts.append(f"w {channel_formats_text(self.w_fmts)} per channel")
        elif self.w_fmt is not None:
            parts.append(f"w {self.w_fmt}")
        if self.b_fmt is not None:
            parts.append(f"b {self.b_fmt}")
        if self.acc_width is not None:
            parts.append(f"acc s{self.acc_width}.{self.acc_frac}")
        if self.shifts is not None:
            parts.append(f"shift {range_text(self.shifts)} (aligned s{self.align_width} >> {self.shift})")
        elif self.shift is not None:
            parts.append(f"shift {self.shift}")
        if self.rounding != "nearest-away" and self.requantizes:
            parts.append(f"round {self.rounding}")
        if self.leaky is not None:
            parts.append(f"leaky A {self.leaky.alpha} >> {self.leaky.frac}")
        if self.params is not None:
            parts.append(", ".join(f"{k} {list(np.shape(v)) if isinstance(v, np.ndarray) else v}"
                                   for k, v in vars(self.params).items() if v is not None))
        return ", ".join(parts)


@dataclass
class QGraph:
    name: str
    input: str
    output: str
    layers: list[QLayer]
    shapes: dict[str, tuple[int, ...]]
    fmts: dict[str, Format]
    onnx_input_shape: tuple[int, ...] = ()
    onnx_output_shape: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)
    source: str = ""
    #: the ONNX input's element at each IR input element (:attr:`fpgagen.ir.graph.Graph.input_order`)
    input_order: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: how the input quantizer rounds the float input to ``input_fmt`` (see QLayer.rounding)
    input_rounding: str = "nearest-away"

    def __repr__(self) -> str:
        return (f"QGraph({short_name(self.name)}, {len(self.layers)} layers, input {short_name(self.input)} "
                f"{list(self.shapes.get(self.input, ()))} {self.fmts.get(self.input)} -> output "
                f"{short_name(self.output)} {list(self.shapes.get(self.output, ()))} {self.fmts.get(self.output)})")

    def __str__(self) -> str:
        """The integer model, one line per layer: formats, accumulator, shift."""
        lines = [f"integer model {shorten(self.name, 60)}: input {shorten(self.input, 60)} "
                 f"{list(self.shapes.get(self.input, ()))} as {self.fmts.get(self.input)}"]
        lines += [f"  {shorten(layer.name, 60):24s} {layer.describe()}"
                  + (f", +{activation_name(layer.activation)}" if layer.activation else "") for layer in self.layers]
        return "\n".join(lines)

    @property
    def input_fmt(self) -> Format:
        return self.fmts[self.input]

    @property
    def output_fmt(self) -> Format:
        return self.fmts[self.output]

    def layer(self, name: str) -> QLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ModelError(f"model {self.name!r} has no layer named {name!r}")

    def producer(self, tensor: str) -> QLayer | None:
        for layer in self.layers:
            if layer.output == tensor:
                return layer
        return None

    def consumers(self, tensor: str) -> list[QLayer]:
        return [layer for layer in self.layers if tensor in layer.inputs]
