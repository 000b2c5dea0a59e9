"""fpgagen: calibrate an ONNX network with MSB histograms, choose 8-bit fixed-point formats and
generate bit-exact Verilog, HLS C++ and microcontroller C.

The public names a script can rely on:

- :func:`quantize` (values, "s8.3") -> int64 array, rounded half away from zero and saturated;
  :func:`quantize_with_stats` also returns the overflow/underflow counts.
- :func:`dequantize` (ints, "s8.3") -> float64 array.
- :func:`requantize` (ints, "s16.7", "s8.3") -> int64 array (shift, round, saturate).
- :func:`msb_histogram` (values) -> :class:`MsbHistogram` (merge two with ``+``).
- :func:`choose_format` (hist, method="max"|"coverage"|"mse", word=8) -> :class:`Format`.
- :class:`Format` ("s8.3" <-> Format(signed=True, word=8, frac=3)).

The build flow, step by step (:mod:`fpgagen.api`): :func:`load`, :func:`calibrate`,
:func:`quantize_model`, :func:`validate`, :func:`quantize_input`, :func:`run_golden`,
:func:`export`; or whole: :func:`build`, :func:`verify`, :func:`report`, :func:`load_config`,
:func:`load_data` (a config's data, preprocessed as the build does).

``fpgagen.report`` is always the function: importing the subpackage of the same name
(``import fpgagen.report.html``) does not rebind it; ``fpgagen.report.html`` and
``fpgagen.report.heatmap`` still name the modules.
"""

import sys as _sys
import types as _types

from fpgagen.errors import (
    BackendError,
    ConfigError,
    FormatError,
    FpgagenError,
    ModelError,
    QuantizationError,
    VerificationMismatch,
)
from fpgagen.fixed import (
    QuantStats,
    dequantize,
    quantize,
    quantize_with_stats,
    requantize,
    requantize_with_stats,
)
from fpgagen.api import (
    build,
    calibrate,
    export,
    load,
    load_config,
    load_data,
    quantize_input,
    quantize_model,
    report,
    run_golden,
    validate,
    verify,
)
from fpgagen.ir.format import Format
from fpgagen.quant.choose import METHODS, choose_format
from fpgagen.quant.histogram import MsbHistogram, msb_histogram
from fpgagen.version import __version__

__all__ = [
    "BackendError",
    "ConfigError",
    "Format",
    "FormatError",
    "FpgagenError",
    "METHODS",
    "ModelError",
    "MsbHistogram",
    "QuantStats",
    "QuantizationError",
    "VerificationMismatch",
    "__version__",
    "build",
    "calibrate",
    "choose_format",
    "export",
    "load",
    "load_config",
    "load_data",
    "quantize_input",
    "quantize_model",
    "report",
    "run_golden",
    "validate",
    "verify",
    "dequantize",
    "msb_histogram",
    "quantize",
    "quantize_with_stats",
    "requantize",
    "requantize_with_stats",
]


class _Package(_types.ModuleType):
    """The ``fpgagen`` module: keeps the function :func:`report` when Python binds the
    subpackage ``fpgagen.report`` onto its parent after importing it."""

    def __setattr__(self, name, value):
        if name == "report" and isinstance(value, _types.ModuleType):
            # the function carries the subpackage's modules, so fpgagen.report.html and
            # `import fpgagen.report.html as h` resolve as they would on the package
            for key, module in vars(value).items():
                if isinstance(module, _types.ModuleType) and module.__name__.startswith(value.__name__ + "."):
                    setattr(report, key, module)
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
