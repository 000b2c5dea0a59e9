"""Validation: float model against the integer golden model on (labelled) data.

Reports top-1 accuracy of both, their top-1 agreement, and per quantized tensor (the trace):
- ``sqnr_db``: float tensor against the dequantized golden tensor, errors accumulated from the
  input up to that layer: where it drops, that layer loses the accuracy;
- ``quant_sqnr_db``: the float tensor against itself quantized to the chosen format: the noise
  that this one quantization point adds;
- ``overflow_rate`` / ``underflow_rate``: fractions of the float tensor's values that saturate /
  round to zero in the chosen format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fpgagen.fixed import dequantize, quantize_with_stats
from fpgagen.golden.float_exec import check_input, run_float
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.ir.graph import Graph
from fpgagen.ir.qgraph import QGraph
from fpgagen.progress import Progress
from fpgagen.quant.calibrate import DEFAULT_BATCH, batches


def sqnr_db(signal_energy: float, noise_energy: float) -> float | None:
    """10 log10(signal / noise); ``inf`` for no noise, ``None`` for no signal."""
    if signal_energy == 0:
        return None
    if noise_energy == 0:
        return math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


@dataclass
class TensorTrace:
    name: str
    fmt: str
    values: int = 0
    signal: float = 0.0
    noise: float = 0.0
    quant_noise: float = 0.0
    overflow: int = 0
    underflow: int = 0

    def as_dict(self) -> dict:
        return {
            "tensor": self.name,
            "format": self.fmt,
            "sqnr_db": _finite(sqnr_db(self.signal, self.noise)),
            "quant_sqnr_db": _finite(sqnr_db(self.signal, self.quant_noise)),
            "overflow_rate": self.overflow / self.values if self.values else 0.0,
            "underflow_rate": self.underflow / self.values if self.values else 0.0,
        }


def _finite(v):
    """JSON has no infinity: an exact match is reported as the string "inf"."""
    if v is None or math.isfinite(v):
        return None if v is None else round(v, 3)
    return "inf"


@dataclass
class Validation:
    samples: int = 0
    labelled: bool = False
    correct_float: int = 0
    correct_fixed: int = 0
    agree: int = 0
    traces: dict[str, TensorTrace] = field(default_factory=dict)

    @property
    def accuracy(self) -> dict:
        if not self.labelled or not self.samples:
            return {"float": None, "fixed": None}
        return {"float": self.correct_float / self.samples, "fixed": self.correct_fixed / self.samples}

    @property
    def agreement(self) -> float | None:
        return self.agree / self.samples if self.samples else None


def top1(out: np.ndarray) -> np.ndarray:
    return np.asarray(out).reshape(len(out), -1).argmax(axis=1)


def validate(graph: Graph, q: QGraph, x, y=None, batch_size: int = DEFAULT_BATCH,
             progress: bool | None = None) -> Validation:
    """Run float and integer models side by side over preprocessed float input ``x``."""
    x = check_input(graph, x, "validation data")
    val = Validation(labelled=y is not None)
    tensors = [q.input] + [layer.output for layer in q.layers if layer.requantizes]
    for name in tensors:
        val.traces[name] = TensorTrace(name, str(q.fmts[name]))
    labels = None if y is None else np.asarray(y).reshape(-1)
    with Progress("validate", len(x), enabled=progress) as bar:
        for start, xb in zip(range(0, len(x), batch_size), batches(x, batch_size)):
            f_out, f_trace = run_float(graph, xb, trace=True, ir_layout=True)
            i_out, i_trace = run_int(q, quantize_input(q, f_trace[graph.input]), trace=True, ir_layout=True)
            pf, pq = top1(f_out), top1(i_out)
            val.agree += int((pf == pq).sum())
            if labels is not None:
                yb = labels[start : start + len(xb)]
                val.correct_float += int((pf == yb).sum())
                val.correct_fixed += int((pq == yb).sum())
            for name, tr in val.traces.items():
                fmt = q.fmts[name]
                f = f_trace[name].astype(np.float64)
                fixed = dequantize(i_trace[name], fmt, name=name)
                local, st = quantize_with_stats(f, fmt, name=name)
                tr.values += f.size
                tr.signal += float(np.square(f).sum())
                tr.noise += float(np.square(f - fixed).sum())
                tr.quant_noise += float(np.square(f - dequantize(local, fmt, name=name)).sum())
                tr.overflow += st.overflow
                tr.underflow += st.underflow
            val.samples += len(xb)
            bar.update(len(xb))
    return val
