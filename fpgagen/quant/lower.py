"""Format choice per layer and lowering of the float IR to the integer IR (SPEC.md 2-3).

:func:`choose_formats` picks every tensor's, weight's and bias's format from the calibration
histograms (with per-layer overrides); :func:`lower` turns the float graph plus those formats
into a :class:`~fpgagen.ir.qgraph.QGraph` whose constants are all integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.fixed import QuantStats, quantize_with_stats, resolve_rounding, round_real, shift_round, signed_width
from fpgagen.golden.windows import avgpool_divisors
from fpgagen.ir.format import Format
from fpgagen.ir.graph import PASS_OPS, Graph, Node
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.quant.calibrate import Calibration, bias_key, weight_key
from fpgagen.quant.choose import DEFAULT_EPS, choose_format

#: bits of precision of an average pool's integer reciprocal, beyond the window count's bits
RECIP_PRECISION = 16
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
    lo, hi = fmt.min_int, fmt.max_int
    if activation is None:
        return lo, hi
    lo = max(lo, 0)
    if activation != "relu":
        _, a_lo, a_hi = activation
        if a_lo != 0:
            raise QuantizationError(f"Clip with a lower bound of {a_lo} is not supported (must be 0)")
        hi = min(hi, int(round_real(np.ldexp(float(a_hi), fmt.frac))))
    return lo, hi


def recip_constants(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer reciprocals ``round(2**bits / count)`` (half away) and ``bits``."""
    counts = np.asarray(counts, np.int64)
    bits = RECIP_PRECISION + int(int(counts.max()) - 1).bit_length()
    recip = ((np.int64(1) << np.int64(bits + 1)) + counts) // (2 * counts)
    return recip, bits


def _mac_bounds(wq: np.ndarray, bias: np.ndarray, x_fmt: Format) -> tuple[int, int]:
    w = wq.reshape(wq.shape[0], -1).astype(object)
    xlo, xhi = x_fmt.min_int, x_fmt.max_int
    pos = np.where(wq.reshape(wq.shape[0], -1) > 0, w, 0).sum(axis=1)
    neg = np.where(wq.reshape(wq.shape[0], -1) < 0, w, 0).sum(axis=1)
    hi = pos * xhi + neg * xlo + bias.astype(object)
    lo = pos * xlo + neg * xhi + bias.astype(object)
    return int(min(lo)), int(max(hi))


@dataclass
class LoweringStats:
    """Overflow/underflow of the constants (weights, biases) per layer."""

    weights: dict[str, QuantStats] = field(default_factory=dict)
    biases: dict[str, QuantStats] = field(default_factory=dict)


def _lower_mac(node: Node, layer: QLayer, plan: FormatPlan, stats: LoweringStats) -> None:
    x_fmt = layer.in_fmts[0]
    w_fmt = plan.weights[node.name]
    wq, stats.weights[node.name] = quantize_with_stats(node.weight, w_fmt, plan.rounding, name=weight_key(node.name))
    acc_frac = x_fmt.frac + w_fmt.frac
    co = node.weight.shape[0]
    if node.bias is not None:
        b_fmt = plan.biases[node.name]
        bq, stats.biases[node.name] = quantize_with_stats(node.bias, b_fmt, plan.rounding, name=bias_key(node.name))
        # SPEC 3: B is b re-expressed at the accumulator frac (left shift, or offline rounding)
        bias = shift_round(bq, b_fmt.frac - acc_frac, plan.rounding)
        layer.b_fmt, layer.bias_q = b_fmt, bq
    else:
        bias = np.zeros(co, np.int64)
    layer.weight, layer.w_fmt, layer.bias = wq, w_fmt, bias
    lo, hi = _mac_bounds(wq, bias, x_fmt)
    layer.acc_frac = acc_frac
    layer.acc_width = signed_width(lo, hi)
    layer.shift = acc_frac - layer.out_fmt.frac


def lower(graph: Graph, plan: FormatPlan) -> tuple[QGraph, LoweringStats]:
    """The integer IR of ``graph`` with the formats of ``plan``."""
    stats = LoweringStats()
    layers = []
    for node in graph.nodes:
        in_fmts = [plan.tensors[t] for t in node.inputs]
        out_fmt = plan.tensors[node.output]
        layer = QLayer(
            name=node.name, op=node.op, inputs=list(node.inputs), output=node.output,
            in_fmts=in_fmts, out_fmt=out_fmt, attrs=dict(node.attrs), activation=node.activation,
            onnx_nodes=list(node.onnx_nodes), onnx_op=node.onnx_op,
        )
        x_fmt = in_fmts[0]
        if node.op in ("conv", "dense"):
            _lower_mac(node, layer, plan, stats)
        elif node.op in ("avgpool", "gap"):
            in_shape = graph.shapes[node.inputs[0]]
            if node.op == "gap":
                counts = np.array(in_shape[1] * in_shape[2])
            else:
                counts = avgpool_divisors(in_shape[1:], node.attrs)
                if (counts == counts.flat[0]).all():
                    counts = np.array(counts.flat[0])
            recip, bits = recip_constants(counts)
            layer.recip = int(recip) if recip.ndim == 0 else recip
            layer.recip_bits = bits
            layer.acc_frac = x_fmt.frac + bits
            n_max = int(np.max(counts))
            layer.acc_width = signed_width(n_max * x_fmt.min_int * int(np.max(recip)),
                                           n_max * x_fmt.max_int * int(np.max(recip)))
            layer.shift = layer.acc_frac - out_fmt.frac
        elif node.op == "add":
            frac = max(f.frac for f in in_fmts)
            layer.align = [frac - f.frac for f in in_fmts]
            lo = sum(f.min_int << s for f, s in zip(in_fmts, layer.align))
            hi = sum(f.max_int << s for f, s in zip(in_fmts, layer.align))
            layer.acc_frac, layer.acc_width = frac, signed_width(lo, hi)
            layer.shift = frac - out_fmt.frac
        if layer.shift is not None or (node.op == "maxpool" and node.activation is not None):
            # a max pool with a fused ReLU/Clip (passes/activations.py) clamps without requantizing
            layer.lo, layer.hi = clamp_bounds(out_fmt, node.activation)
        layers.append(layer)
    q = QGraph(
        name=graph.name, input=graph.input, output=graph.output, layers=layers,
        shapes=dict(graph.shapes), fmts=dict(plan.tensors),
        onnx_input_shape=graph.onnx_input_shape, onnx_output_shape=graph.onnx_output_shape,
        notes=list(graph.notes), source=graph.source,
    )
    return q, stats
