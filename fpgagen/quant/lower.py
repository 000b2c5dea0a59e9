"""Format choice per layer and lowering of the float IR to the integer IR (SPEC.md 2-3).

:func:`choose_formats` picks every tensor's, weight's and bias's format from the calibration
histograms (with per-layer overrides); :func:`lower` turns the float graph plus those formats
into a :class:`~fpgagen.ir.qgraph.QGraph` whose constants are all integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _fixed_or_chosen(value, hist, method, word, eps) -> Format:
    if value is not None:
        return Format.parse(value)
    return choose_format(hist, method, word, eps)


def choose_formats(cal: Calibration, options: QuantOptions) -> FormatPlan:
    """Every tensor's, weight's and bias's format, from the histograms and the options."""
    graph = cal.graph
    plan = FormatPlan(rounding=resolve_rounding(options.rounding))
    opt = options.for_node(None, graph.input)
    plan.tensors[graph.input] = _fixed_or_chosen(
        opt.get("output"), cal.hists[graph.input], opt["method"], opt["word_length"], opt["eps"]
    )
    for node in graph.nodes:
        opt = options.for_node(node)
        if node.op in PASS_OPS:
            if "output" in opt and Format.parse(opt["output"]) != plan.tensors[node.inputs[0]]:
                raise QuantizationError(
                    f"layer {node.name!r} ({node.op}) passes its input format "
                    f"{plan.tensors[node.inputs[0]]} through; an output format override is not possible"
                )
            plan.tensors[node.output] = plan.tensors[node.inputs[0]]
            continue
        plan.tensors[node.output] = _fixed_or_chosen(
            opt.get("output"), cal.hists[node.output], opt["method"], opt["word_length"], opt["eps"]
        )
        if node.weight is not None:
            plan.weights[node.name] = _fixed_or_chosen(
                opt.get("weight"), cal.hists[weight_key(node.name)], opt["weight_method"],
                opt["word_length"], opt["eps"],
            )
        if node.bias is not None:
            plan.biases[node.name] = _fixed_or_chosen(
                opt.get("bias"), cal.hists[bias_key(node.name)], options.bias_method,
                options.bias_word_length, opt["eps"],
            )
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
        layers.append(layer)
    q = QGraph(
        name=graph.name, input=graph.input, output=graph.output, layers=layers,
        shapes=dict(graph.shapes), fmts=dict(plan.tensors),
        onnx_input_shape=graph.onnx_input_shape, onnx_output_shape=graph.onnx_output_shape,
        notes=list(graph.notes), source=graph.source, input_order=graph.input_order,
    )
    return q, stats
