"""Format choice per layer and lowering of the float IR to the integer IR (SPEC.md 2-3).

:func:`choose_formats` picks every tensor's, weight's and bias's format from the calibration
histograms (with per-layer overrides); :func:`lower` turns the float graph plus those formats
into a :class:`~fpgagen.ir.qgraph.QGraph` whose constants are all integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.fixed import QuantStats, resolve_rounding
from fpgagen.ir.format import Format
from fpgagen.ir.graph import PASS_OPS, Graph, Node
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops import get as get_op
from fpgagen.ops._mac import bias_key, weight_key
from fpgagen.ops.activation import coerce as coerce_activation
from fpgagen.quant.calibrate import Calibration
from fpgagen.quant.choose import DEFAULT_EPS, choose_format
#: keys a per-layer override may set
OVERRIDE_KEYS = ("output", "weight", "bias", "method", "weight_method", "eps", "word_length")


@dataclass
class QuantOptions:
    """How formats are chosen. ``overrides`` maps a layer name, an IR op (``conv``) or an ONNX
    op (``Conv``) to a dict of :data:`OVERRIDE_KEYS`; a layer name wins over an op type."""

    word_length: int = 8
    method: str = "mse"
    weight_method: str = "mse"
    bias_word_length: int = 8
    bias_method: str = "max"
    eps: float = DEFAULT_EPS
    overrides: dict = field(default_factory=dict)
    #: how weights and biases are rounded to their formats (offline); the datapath's
    #: requantization always rounds half away from zero (SPEC.md 3)
    rounding: str = "nearest-away"

    def for_node(self, node: Node | None, tensor: str | None = None) -> dict:
        """The options in force for ``node`` (or for the input ``tensor``), overrides applied."""
        resolved = {
            "word_length": self.word_length,
            "method": self.method,
            "weight_method": self.weight_method,
            "eps": self.eps,
        }
        keys = [tensor] if node is None else [node.onnx_op, node.op, node.name]
        for key in keys:  # low to high priority
            if key and key in self.overrides:
                resolved.update(self.overrides[key])
        return resolved


@dataclass
class FormatPlan:
    tensors: dict[str, Format] = field(default_factory=dict)
    weights: dict[str, Format] = field(default_factory=dict)
    biases: dict[str, Format] = field(default_factory=dict)
    #: rounding of weights and biases to their formats (fpgagen.fixed.ROUNDING_MODES)
    rounding: str = "nearest-away"
    #: tensor -> how its requantizer (or the input quantizer) rounds, where the model says so
    #: (imported quantization); every other tensor rounds half away from zero
    requant_rounding: dict[str, str] = field(default_factory=dict)
    #: tensors, weights (``layer.weight``) and biases whose format the model gave (imported quantization)
    imported: dict[str, object] = field(default_factory=dict)


def _fixed_or_chosen(value, hist, method, word, eps, point=None) -> Format:
    """A config override, else the model's own format (``point``, imported quantization), else
    the format the histogram gives."""
    if value is not None:
        return Format.parse(value)
    if point is not None:
        return point.fmt
    return choose_format(hist, method, word, eps)


def uncalibrated(graph: Graph, options: QuantOptions) -> list[str]:
    """The activation tensors whose formats need calibration data: neither the model (imported
    quantization) nor a config override gives them."""
    tensors = [(None, graph.input)] + [(n, n.output) for n in graph.nodes if n.op not in PASS_OPS]
    return [t for node, t in tensors if t not in graph.quant and options.for_node(node, t).get("output") is None]


def choose_formats(cal: Calibration, options: QuantOptions) -> FormatPlan:
    """Every tensor's, weight's and bias's format, from the histograms and the options (a format
    the model gives, imported quantization, is kept: SPEC.md 3's rounding of its quantizer too)."""
    graph = cal.graph
    plan = FormatPlan(rounding=resolve_rounding(options.rounding))
    quant = graph.quant

    def point(key, p):
        if p is not None:
            plan.imported[key] = p
        return p

    opt = options.for_node(None, graph.input)
    plan.tensors[graph.input] = _fixed_or_chosen(
        opt.get("output"), cal.hists.get(graph.input), opt["method"], opt["word_length"], opt["eps"],
        point(graph.input, quant.get(graph.input)),
    )
    for node in graph.nodes:
        opt = options.for_node(node)
        if node.op in PASS_OPS:
            given = opt.get("output") or (quant[node.output].fmt if node.output in quant else None)
            if given is not None and Format.parse(given) != plan.tensors[node.inputs[0]]:
                why = (f"the model quantizes its output to {given} ({quant[node.output].origin})"
                       if "output" not in opt else "an output format override is not possible")
                raise QuantizationError(
                    f"layer {node.name!r} ({node.op}) passes its input format "
                    f"{plan.tensors[node.inputs[0]]} through; {why}"
                )
            plan.tensors[node.output] = plan.tensors[node.inputs[0]]
            continue
        plan.tensors[node.output] = _fixed_or_chosen(
            opt.get("output"), cal.hists.get(node.output), opt["method"], opt["word_length"], opt["eps"],
            point(node.output, quant.get(node.output)),
        )
        if node.weight is not None:
            plan.weights[node.name] = _fixed_or_chosen(
                opt.get("weight"), cal.hists[weight_key(node.name)], opt["weight_method"],
                opt["word_length"], opt["eps"], point(weight_key(node.name), node.w_quant),
            )
        if node.bias is not None:
            plan.biases[node.name] = _fixed_or_chosen(
                opt.get("bias"), cal.hists[bias_key(node.name)], options.bias_method,
                options.bias_word_length, opt["eps"], point(bias_key(node.name), node.b_quant),
            )
    for tensor, p in quant.items():
        if tensor in plan.tensors and p.rounding != "nearest-away":
            plan.requant_rounding[tensor] = p.rounding
    return plan


def clamp_bounds(fmt: Format, activation) -> tuple[int, int]:
    """The saturation bounds of a requantized output: the format's range, narrowed by ReLU/Clip."""
    activation = coerce_activation(activation)
    return (fmt.min_int, fmt.max_int) if activation is None else activation.bounds(fmt)


@dataclass
class LoweringStats:
    """Overflow/underflow of the constants (weights, biases) per layer."""

    weights: dict[str, QuantStats] = field(default_factory=dict)
    biases: dict[str, QuantStats] = field(default_factory=dict)


@dataclass
class LowerContext:
    """What an op's lowering (:meth:`fpgagen.ops.Op.lower`) may read and record."""

    plan: FormatPlan
    stats: LoweringStats
    #: per-sample shape of every tensor
    shapes: dict


def lower(graph: Graph, plan: FormatPlan) -> tuple[QGraph, LoweringStats]:
    """The integer IR of ``graph`` with the formats of ``plan``: each op lowers its own constants
    (fpgagen.ops); a requantizing layer's clamp bounds and LeakyRelu slope come from its activation."""
    stats = LoweringStats()
    ctx = LowerContext(plan, stats, graph.shapes)
    layers = []
    for node in graph.nodes:
        op = get_op(node.op)
        out_fmt = plan.tensors[node.output]
        layer = QLayer(
            name=node.name, op=node.op, inputs=list(node.inputs), output=node.output,
            in_fmts=[plan.tensors[t] for t in node.inputs], out_fmt=out_fmt, params=node.params,
            activation=node.activation, onnx_nodes=list(node.onnx_nodes), onnx_op=node.onnx_op,
        )
        op.lower(node, layer, ctx)
        if not op.passes_format:
            layer.lo, layer.hi = clamp_bounds(out_fmt, node.activation)
            layer.leaky = node.activation.leaky() if node.activation is not None else None
            layer.rounding = plan.requant_rounding.get(node.output, "nearest-away")
            point = plan.imported.get(node.output)
            if point is not None and point.narrow and point.fmt == out_fmt:
                lo, hi = point.int_range()
                layer.lo, layer.hi = max(layer.lo, lo), min(layer.hi, hi)
        check_imported_constants(node, layer, plan)
        layers.append(layer)
    q = QGraph(
        name=graph.name, input=graph.input, output=graph.output, layers=layers,
        shapes=dict(graph.shapes), fmts=dict(plan.tensors),
        onnx_input_shape=graph.onnx_input_shape, onnx_output_shape=graph.onnx_output_shape,
        notes=list(graph.notes), source=graph.source, input_order=graph.input_order,
        input_rounding=plan.requant_rounding.get(graph.input, "nearest-away"),
    )
    return q, stats


def check_imported_constants(node: Node, layer: QLayer, plan: FormatPlan) -> None:
    """A weight or bias in the model's own format (imported quantization) must come out of the
    lowering as the model's integers: its float values are exact multiples of the format's LSB
    within its range (a BatchNormalization or Gemm alpha folded into it would break that)."""
    from fpgagen.fixed import dequantize

    for key, values, ints, fmt in ((weight_key(node.name), node.weight, layer.weight, layer.w_fmt),
                                   (bias_key(node.name), node.bias, layer.bias_q, layer.b_fmt)):
        p = plan.imported.get(key)
        if p is None or not p.exact or fmt != p.fmt or values is None:
            continue
        if not np.array_equal(dequantize(ints, fmt, name=key), np.asarray(values, np.float64)):
            raise QuantizationError(
                f"layer {node.name!r} ({node.op}): the model gives {key} the format {fmt} ({p.origin}), but the "
                f"layer's values are not the integers of that format (a BatchNormalization, Mul or Gemm alpha "
                f"folded into them?); supported: the quantized constant used as it is")
