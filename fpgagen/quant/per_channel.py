"""``quantization.per_channel: auto``: per-channel weight formats where they win, decided per model.

Per-channel formats (SPEC.md 3) never quantize a channel's weights worse than the per-tensor
format does, but what counts is the network's output: on the benchmark models of
``benchmarks/bench_per_channel.py`` they raise the output's SQNR by 0.5-1.9 dB on five models and
leave MobileNetV1 0.25 0.2 dB lower, while each per-channel layer costs a pre-alignment (Verilog:
a small shifter per PE lane; C: a 64-bit requantization per output). ``auto`` therefore measures:
both quantizations of the model run over (up to :data:`AUTO_SAMPLES`) calibration samples, and
per-channel formats are kept when they raise the final output's SQNR against float by at least
:data:`AUTO_MIN_GAIN_DB`. Layer overrides (``quantization.layers.<name>.per_channel``) apply on top.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from fpgagen.errors import QuantizationError
from fpgagen.quant.lower import choose_formats, lower
from fpgagen.fixed import dequantize
from fpgagen.golden.float_exec import check_input, run_float
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.quant.calibrate import DEFAULT_BATCH, batches

#: calibration samples ``auto`` runs both quantizations on
AUTO_SAMPLES = 256
#: the output SQNR gain (dB) per-channel formats must bring to be kept: a win beyond noise
AUTO_MIN_GAIN_DB = 0.2


def output_sqnr_db(graph, q, x) -> float:
    """SQNR (dB) of the golden model's final output against the float model's over ``x`` (the
    output of any last layer, also one that passes its input's format, e.g. a Flatten)."""
    signal = noise = 0.0
    for xb in batches(check_input(graph, x, "calibration data"), DEFAULT_BATCH):
        f_out, f_trace = run_float(graph, xb, trace=True, ir_layout=True)
        i_out = run_int(q, quantize_input(q, f_trace[graph.input]), ir_layout=True)
        f = np.asarray(f_out, np.float64)
        signal += float(np.square(f).sum())
        noise += float(np.square(f - dequantize(i_out, q.fmts[q.output], name=q.output)).sum())
    if noise == 0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def resolve_per_channel(graph, cal, options, x) -> tuple[bool, str]:
    """``options.per_channel`` as True or False, and a note saying why: ``auto`` measures both on
    the first :data:`AUTO_SAMPLES` samples of ``x`` (preprocessed calibration inputs)."""
    if options.per_channel is not True and options.per_channel is not False and options.per_channel != "auto":
        raise QuantizationError(f"per_channel must be true, false or auto, not {options.per_channel!r}")
    if options.per_channel != "auto":
        return options.per_channel, ""
    if x is None:  # imported quantization, every tensor's format given: nothing to measure on
        return False, "per_channel auto: per-tensor (no calibration data to measure per-channel formats on)"
    x = np.asarray(x)[:AUTO_SAMPLES]
    sqnr = {}
    for mode in (False, True):
        q, _ = lower(graph, choose_formats(cal, replace(options, per_channel=mode)))
        if mode and not any(layer.per_channel for layer in q.layers):
            return False, "per_channel auto: per-tensor (every layer's channels choose one weight format)"
        sqnr[mode] = output_sqnr_db(graph, q, x)
    keep = sqnr[True] - sqnr[False] >= AUTO_MIN_GAIN_DB
    return keep, (f"per_channel auto: {'per-channel' if keep else 'per-tensor'} weight formats (output SQNR "
                  f"{sqnr[True]:.2f} dB per-channel vs {sqnr[False]:.2f} dB per-tensor on {len(x)} calibration "
                  f"samples; kept when at least {AUTO_MIN_GAIN_DB} dB higher)")
