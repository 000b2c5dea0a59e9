"""The Python API for notebooks and scripts, step for step what the command line does.

``load -> calibrate -> quantize -> validate -> export`` on arrays you hold, or the whole build
from a config as ``fpgagen build`` runs it::

    import fpgagen

    cfg = fpgagen.load_config("configs/digits_cnn.yaml")
    graph = fpgagen.load(cfg["model"])                              # float IR
    x_calib, _ = fpgagen.load_data(cfg, "calibration")              # as the build loads it
    x_valid, y_valid = fpgagen.load_data(cfg, "validation")
    cal = fpgagen.calibrate(graph, x_calib)                         # MSB histograms
    q = fpgagen.quantize_model(cal, method="mse")                   # integer IR (formats, shifts)
    v = fpgagen.validate(graph, q, x_valid, y_valid)                # accuracy, SQNR per layer
    y = fpgagen.run_golden(q, fpgagen.quantize_input(q, x_valid))   # the golden integers

    b = fpgagen.build("configs/digits_cnn.yaml", out="out/digits_cnn")   # = fpgagen build
    fpgagen.export(b, ["c"], "out/digits_cnn")                            # more targets later
    fpgagen.verify("configs/digits_cnn.yaml", targets=["c"], samples=20)  # = fpgagen verify

Arrays are batch first and take the shapes a config's data files may have: the model input's
(``[N, 1, 8, 8]``) or, when its channel axis is 1, without it (``[N, 8, 8]``).
Every function raises a subclass of :class:`fpgagen.FpgagenError` on bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load(path):
    """The ONNX model at ``path`` as fpgagen's float IR (:class:`fpgagen.ir.graph.Graph`)."""
    from fpgagen.flow import load_model

    return load_model(path)


def load_config(path) -> dict:
    """A YAML build config, checked and resolved (paths absolute, defaults filled in)."""
    from fpgagen.config import load_config as _load

    return _load(path)


def load_data(config, which: str = "calibration", graph=None):
    """``(x, y)`` of the config's ``data.<which>`` (``calibration`` or ``validation``), loaded
    and preprocessed exactly as ``fpgagen build`` does: ``x`` float32 ``[N, *model input]``,
    ``y`` integer labels or None. ``config``: a path or a dict from :func:`load_config`;
    ``graph``: the model (loaded from the config's ``model`` when not given)."""
    from fpgagen.flow import config_data

    cfg = config if isinstance(config, dict) else load_config(config)
    return config_data(cfg, which, graph if graph is not None else load(cfg["model"]))


def _fit(graph, x, what: str) -> np.ndarray:
    """``x`` shaped as the model input (a missing channel axis of 1 added, as for a config's data)."""
    from fpgagen.data import fit_shape

    x = np.asarray(x)
    if x.ndim == 0:
        return x  # the callee names the error
    return fit_shape(x, tuple(graph.onnx_input_shape or graph.shapes[graph.input]), what)


def calibrate(graph, x, batch_size: int = 256, progress: bool | None = None):
    """MSB histograms of the weights, biases, input and every layer output over ``x``
    (preprocessed floats, batch first)."""
    from fpgagen.quant.calibrate import calibrate as _calibrate

    return _calibrate(graph, _fit(graph, x, "calibrate"), batch_size, progress)


def quantize_model(calibration, word_length: int = 8, method: str = "mse", weight_method: str = "mse",
                   bias_word_length: int = 8, bias_method: str = "max", eps: float = 1e-4,
                   overrides: dict | None = None, rounding: str = "nearest-away",
                   per_channel: bool | str = False, x=None):
    """Choose every format from ``calibration`` and lower its graph to the integer IR
    (:class:`fpgagen.ir.qgraph.QGraph`). ``overrides`` as the config's ``quantization.layers``;
    ``rounding`` of weights and biases (the datapath always rounds half away from zero);
    ``per_channel`` as ``quantization.per_channel`` (here per-tensor unless asked; ``auto``, the
    config's default, measures both on the preprocessed calibration inputs ``x``, which it then needs)."""
    from dataclasses import replace

    from fpgagen.errors import QuantizationError
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower
    from fpgagen.quant.per_channel import resolve_per_channel

    options = QuantOptions(word_length, method, weight_method, bias_word_length, bias_method, eps,
                           dict(overrides or {}), rounding, per_channel)
    if options.per_channel == "auto":
        if x is None:
            raise QuantizationError("quantize_model: per_channel='auto' measures both quantizations on the "
                                    "calibration inputs: pass them as x=")
        options = replace(options, per_channel=resolve_per_channel(calibration.graph, calibration, options,
                                                                   _fit(calibration.graph, x, "quantize_model"))[0])
    q, _ = lower(calibration.graph, choose_formats(calibration, options))
    return q


def validate(graph, qgraph, x, y=None, batch_size: int = 256, progress: bool | None = None):
    """Float and integer model side by side over ``x``: top-1 accuracy (with labels ``y``),
    agreement, per-layer SQNR and overflow/underflow rates (:class:`~fpgagen.quant.validate.Validation`)."""
    from fpgagen.quant.validate import validate as _validate

    return _validate(graph, qgraph, _fit(graph, x, "validate"), y, batch_size, progress)


def quantize_input(qgraph, x) -> np.ndarray:
    """Preprocessed float input as the integers the generated designs take."""
    from fpgagen.golden.model import quantize_input as _qi

    return _qi(qgraph, _fit(qgraph, x, "quantize_input"))


def run_golden(qgraph, xq, trace: bool = False):
    """The golden model: output integers (and every tensor's, with ``trace=True``)."""
    from fpgagen.golden.model import run_int

    return run_int(qgraph, _fit(qgraph, xq, "run_golden"), trace=trace)


def build(config, out=None, progress: bool | None = None):
    """``fpgagen build``: a config path or dict (see :func:`fpgagen.config.resolve_config`);
    writes the build directory and returns the :class:`fpgagen.flow.Build`."""
    from fpgagen.flow import build as _build

    b, _ = _build(config, out, progress)
    return b


def export(build, targets, out) -> list[Path]:
    """Generate ``targets`` (``verilog``, ``hls``, ``c``) of a :class:`~fpgagen.flow.Build` into
    ``out/<target>/`` (all rendered first; nothing is written when one fails)."""
    from fpgagen.outdir import FileSet
    from fpgagen.targets import backend

    targets = [targets] if isinstance(targets, str) else list(targets)
    files = FileSet()
    for target in targets:
        files.update(backend(target).generate(build), prefix=f"{target}/")
    return files.write(out)


def verify(config, targets=None, samples: int | None = None, out=None, progress: bool | None = None) -> dict:
    """``fpgagen verify``: per target of this run ``{samples, mismatches, ..., verified_at, config}``
    (results of other targets that ``OUT/verify.json`` holds from earlier runs stay there, marked
    ``stale``, and are not returned); raises :class:`fpgagen.VerificationMismatch` when any
    integer differs."""
    from fpgagen.flow import verify as _verify

    results, _ = _verify(config, targets, samples, out, progress)
    return results


def report(out) -> Path:
    """``fpgagen report``: re-render ``out/report.html``; returns its path."""
    from fpgagen.outdir import atomic_write
    from fpgagen.report.html import render_report

    path = Path(out) / "report.html"
    atomic_write(path, render_report(out))
    return path
