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
from fpgagen.quant.calibrate import Calibration, channel_histograms
from fpgagen.quant.choose import DEFAULT_EPS, choose_format
#: keys a per-layer override may set
OVERRIDE_KEYS = ("output", "weight", "bias", "method", "weight_method", "eps", "word_length", "per_channel")
#: the config's default of ``quantization.per_channel``: decided per model where it wins (README,
#: "Per-channel weight formats"); the Python API (:class:`QuantOptions`, ``quantize_model``) keeps
#: per-tensor unless asked
PER_CHANNEL_DEFAULT = "auto"


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
    #: per-channel weight formats of conv/dense layers (SPEC.md 3): False, True, or "auto" (decided
    #: per model by :func:`fpgagen.quant.per_channel.resolve_per_channel`); a layer's override wins
    per_channel: bool | str = False

    def for_node(self, node: Node | None, tensor: str | None = None) -> dict:
        """The options in force for ``node`` (or for the input ``tensor``), overrides applied."""
        resolved = {
            "word_length": self.word_length,
            "method": self.method,
            "weight_method": self.weight_method,
            "eps": self.eps,
            "per_channel": self.per_channel,
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
    #: per-channel weight formats (one per output channel) of the layers that have them
    channel_weights: dict[str, tuple[Format, ...]] = field(default_factory=dict)
    #: imported per-channel bias formats (QDQ / QONNX scales per output channel), by layer
    channel_biases: dict[str, tuple[Format, ...]] = field(default_factory=dict)
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
            if isinstance(opt.get("weight"), (list, tuple)):  # per-channel formats given (formats.yaml)
                fmts = _given_channel_formats(node, opt["weight"])
            elif opt.get("weight") is None and node.w_quant is not None and node.w_quant.channels is not None:
                fmts = list(point(weight_key(node.name), node.w_quant).channels)  # the model's, per channel
            elif opt.get("weight") is None and node.w_quant is None and wants_per_channel(opt["per_channel"], node):
                fmts = channel_weight_formats(cal, node, opt)
            else:
                fmts = None
            if fmts is not None and len({f.frac for f in fmts}) == 1:
                plan.weights[node.name] = fmts[0]  # one format after all: the per-tensor datapath
            elif fmts is not None:
                plan.channel_weights[node.name] = fmts
                plan.weights[node.name] = max(fmts, key=lambda f: f.frac)
            else:
                plan.weights[node.name] = _fixed_or_chosen(
                    opt.get("weight"), cal.hists[weight_key(node.name)], opt["weight_method"],
                    opt["word_length"], opt["eps"], point(weight_key(node.name), node.w_quant),
                )
        if node.bias is not None and opt.get("bias") is None and node.b_quant is not None and node.b_quant.channels:
            point(bias_key(node.name), node.b_quant)
            plan.biases[node.name] = node.b_quant.fmt
            plan.channel_biases[node.name] = node.b_quant.channels
        elif node.bias is not None:
            plan.biases[node.name] = _fixed_or_chosen(
                opt.get("bias"), cal.hists[bias_key(node.name)], options.bias_method,
                options.bias_word_length, opt["eps"], point(bias_key(node.name), node.b_quant),
            )
    for tensor, p in quant.items():
        if tensor in plan.tensors and p.rounding != "nearest-away":
            plan.requant_rounding[tensor] = p.rounding
    return plan


def channel_weight_formats(cal: Calibration, node: Node, opt: dict) -> tuple[Format, ...]:
    """Output channel c's weight format, chosen from its own histogram with the layer's weight
    method (SPEC.md 3). Every channel takes the signedness of the whole weight tensor, so all
    share one word and sign convention (one ROM word, one C type)."""
    signed = cal.hists[weight_key(node.name)].signed
    hists = cal.channel_hists.get(node.name)
    if hists is None:  # a Calibration built by hand: the weights are constants
        hists = channel_histograms(node.name, node.weight)
    word = opt["word_length"]
    fmts = [choose_format(h, opt["weight_method"], word, opt["eps"], signed=signed) for h in hists]
    # A channel whose weights are more than 2**word below the largest channel's gives outputs below
    # one LSB of the shared output format: finer weights would only widen its pre-aligned
    # accumulator (e.g. a dead channel of weights near 1e-15), so fracs stop `word` bits above the
    # coarsest channel's.
    top = min(f.frac for f in fmts) + word
    return tuple(f if f.frac <= top else Format(f.signed, f.word, top) for f in fmts)


def wants_per_channel(mode, node: Node) -> bool:
    """Whether ``node`` gets per-channel weight formats under ``per_channel = mode`` (True/False;
    ``auto`` is decided per model before formats are chosen: :mod:`fpgagen.quant.per_channel`)."""
    if mode not in (True, False):
        raise QuantizationError(f"per_channel {mode!r} must be resolved to true or false before formats are "
                                f"chosen (auto: fpgagen.quant.per_channel.resolve_per_channel)")
    return mode and node.op in ("conv", "dense")


def _given_channel_formats(node: Node, given) -> tuple[Format, ...]:
    fmts = tuple(Format.parse(f) for f in given)
    co = len(node.weight)
    if len(fmts) != co:
        raise QuantizationError(f"layer {node.name!r}: {len(fmts)} per-channel weight formats given; "
                                f"expected one per output channel, {co}")
    if node.op not in ("conv", "dense"):
        raise QuantizationError(f"layer {node.name!r} ({node.op}): per-channel weight formats are for "
                                f"conv and dense layers")
    if len({(f.word, f.signed) for f in fmts}) > 1:
        raise QuantizationError(f"layer {node.name!r}: per-channel weight formats must share word length "
                                f"and signedness, got {', '.join(sorted({str(f) for f in fmts}))}")
    return fmts


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

    for key, values, ints, fmt, fmts in (
            (weight_key(node.name), node.weight, layer.weight, layer.w_fmt, plan.channel_weights.get(node.name)),
            (bias_key(node.name), node.bias, layer.bias_q, layer.b_fmt, plan.channel_biases.get(node.name))):
        p = plan.imported.get(key)
        if p is None or not p.exact or fmt != p.fmt or values is None or (p.channels and tuple(fmts or ()) != p.channels):
            continue
        exact = (dequantize(ints, fmt, name=key) if not p.channels else
                 np.stack([dequantize(ints[c], f, name=f"{key}[{c}]") for c, f in enumerate(fmts)]))
        if not np.array_equal(exact, np.asarray(values, np.float64)):
            raise QuantizationError(
                f"layer {node.name!r} ({node.op}): the model gives {key} the format {fmt} ({p.origin}), but the "
                f"layer's values are not the integers of that format (a BatchNormalization, Mul or Gemm alpha "
                f"folded into them?); supported: the quantized constant used as it is")
