"""The output targets of a build (``verilog``, ``hls``, ``c``): a registry of backends.

A backend module registers itself with :func:`register`:

- ``generate(build) -> FileSet``: every file of the target, rendered in memory from
  ``build.qgraph`` (the integer IR) and ``build.cfg``; the files land in ``OUT/<name>/``.
  Bad input (a layer the backend cannot build, a parallelism that does not fit) raises a
  :class:`~fpgagen.errors.BackendError` naming the layer, before anything is written.
- ``verify(build, target_dir, xq, golden) -> dict``: build and run what was generated in
  ``target_dir`` (= ``OUT/<name>``) on the input integers ``xq`` (``[N, *IR input shape]``,
  int64) and compare with ``golden`` (:class:`GoldenRun`), integer by integer. Returns at
  least ``{"samples": N, "mismatches": M}`` plus target-specific figures (cycles, sizes);
  on a mismatch it also names the first layer whose output differs, when it can probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fpgagen.errors import ConfigError

BACKEND_MODULES = {
    "verilog": "fpgagen.backends.verilog_sim",
    "hls": "fpgagen.backends.hls",
    "c": "fpgagen.backends.c",
    "verilog-netlist": "fpgagen.backends.verilog_netlist",
}


@dataclass
class Backend:
    name: str
    generate: Callable
    verify: Callable | None = None


@dataclass
class GoldenRun:
    """The golden model's integers for the samples a backend is checked on (IR layout)."""

    output: np.ndarray  # [N, *IR output shape]
    trace: dict  # tensor name -> [N, *IR shape]


_BACKENDS: dict[str, Backend] = {}


def first_mismatch(layers, got, want) -> str | None:
    """The one first-mismatch locator of the backends: the name of the first of ``layers`` (in
    order) whose observed output ``got(layer)`` differs from the golden ``want(layer)`` (both int
    arrays in the backend's element order); ``got`` returns None for an output it did not observe
    (skipped: no verdict on that layer)."""
    for layer in layers:
        g = got(layer)
        if g is None:
            continue
        w = np.asarray(want(layer))
        g = np.asarray(g)
        if g.shape != w.shape or not np.array_equal(g, w):
            return layer.name
    return None


def reference_samples(build, n: int, zero_if_none: bool = False):
    """The one place backends get golden references: the first ``n`` validation samples (else
    calibration samples) of ``build`` as input integers ``[N, *IR input shape]``, the golden
    model's :class:`GoldenRun` on them and where they came from (``"the first 3 validation
    samples"``). Without data: one all-zero input when ``zero_if_none``, else None."""
    from fpgagen.golden.model import check_int_input, quantize_input, run_int

    q = build.qgraph
    x, where = getattr(build, "x_valid", None), "validation"
    if x is None:
        x, where = getattr(build, "x_calib", None), "calibration"
    if x is not None and len(x):
        xq = check_int_input(q, quantize_input(q, x[:n]))  # the model's own layout -> the IR's
        where = f"the first {len(xq)} {where} sample" + ("s" if len(xq) > 1 else "")
    elif zero_if_none:
        xq, where = np.zeros((1,) + tuple(q.shapes[q.input]), np.int64), "an all-zero input"
    else:
        return None
    _, trace = run_int(q, xq, trace=True, ir_layout=True)
    return xq, GoldenRun(trace[q.output], trace), where


def register(name: str, verify: Callable | None = None):
    """Decorator for a backend's ``generate``; ``verify`` is its checker."""
    def deco(generate):
        old = _BACKENDS.get(name)
        if old is not None and (old.generate.__module__, old.generate.__qualname__) != (generate.__module__,
                                                                                     generate.__qualname__):
            raise RuntimeError(f"target {name!r} registered twice")  # (a module imported again may re-register)
        _BACKENDS[name] = Backend(name, generate, verify)
        return generate
    return deco


def _load_backends() -> None:
    import importlib

    for module in BACKEND_MODULES.values():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def available() -> list[str]:
    _load_backends()
    return sorted(_BACKENDS)


def backend(name: str) -> Backend:
    _load_backends()
    if name not in _BACKENDS:
        raise ConfigError(
            f"targets: {name!r} is not available in this installation; available: "
            f"{', '.join(sorted(_BACKENDS)) or 'none'}"
        )
    return _BACKENDS[name]


def emit_targets(build, targets=None) -> None:
    """Render every target (default: the config's) into ``build.files`` under ``<target>/``."""
    for target in build.cfg["targets"] if targets is None else targets:
        build.files.update(backend(target).generate(build), prefix=f"{target}/")
