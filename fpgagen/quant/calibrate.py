"""Calibration: run the float model over data and log MSB histograms (SPEC.md section 2).

Logged: every layer's weights and bias (once), also per output channel (``channel_hists``: the
per-channel weight formats of ``quantization.per_channel`` are chosen from them), the network
input and the output of every layer that quantizes (after its fused activation). Histograms have a fixed size, so memory does not
grow with the number of samples; data is consumed in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.golden.float_exec import check_input, run_node
from fpgagen.ir.graph import QUANT_OPS, Graph
from fpgagen.ops._mac import bias_key, weight_key  # noqa: F401 (re-exported)
from fpgagen.progress import Progress
from fpgagen.quant.histogram import MsbHistogram

DEFAULT_BATCH = 256


@dataclass
class Calibration:
    """The histograms of one calibration run, keyed by tensor name or ``layer.weight``/``.bias``."""

    graph: Graph
    hists: dict[str, MsbHistogram] = field(default_factory=dict)
    samples: int = 0
    #: per layer with weights, one histogram per output channel (weight row ``[c]``)
    channel_hists: dict[str, list[MsbHistogram]] = field(default_factory=dict)

    def logged_tensors(self) -> list[str]:
        """The activation tensors that were logged, in graph order."""
        names = [self.graph.input]
        names += [n.output for n in self.graph.nodes if n.op in QUANT_OPS]
        return names


def channel_histograms(layer: str, weight) -> list[MsbHistogram]:
    """One MSB histogram per output channel (the rows ``weight[c]``) of ``layer``'s weights."""
    return [MsbHistogram(f"{weight_key(layer)}[{c}]").add(row) for c, row in enumerate(weight)]


def batches(x: np.ndarray, batch_size: int):
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


def calibrate(graph: Graph, x, batch_size: int = DEFAULT_BATCH, progress: bool | None = None) -> Calibration:
    """Log histograms of ``graph`` over the preprocessed float input ``x`` ``[N, *input shape]``;
    ``x`` None: the constants' only (a model that gives every tensor its format)."""
    cal = Calibration(graph)
    for node in graph.nodes:
        if node.weight is not None:
            cal.hists[weight_key(node.name)] = MsbHistogram(weight_key(node.name)).add(node.weight)
            cal.channel_hists[node.name] = channel_histograms(node.name, node.weight)
        if node.bias is not None:
            cal.hists[bias_key(node.name)] = MsbHistogram(bias_key(node.name)).add(node.bias)
    if x is None:
        return cal
    x = check_input(graph, x, "calibration data")
    logged = set(cal.logged_tensors())
    for name in logged:
        cal.hists[name] = MsbHistogram(name)
    with Progress("calibrate", len(x), enabled=progress) as bar:
        for xb in batches(x, batch_size):
            xb = xb.astype(np.float32, copy=False)
            cal.hists[graph.input].add(xb)
            values = {graph.input: xb}
            for node in graph.nodes:
                out = run_node(node, [values[t] for t in node.inputs])
                values[node.output] = out
                if node.output in logged:
                    cal.hists[node.output].add(out)
            cal.samples += len(xb)
            bar.update(len(xb))
    return cal
