"""One module per IR op (:mod:`fpgagen.ops.registry`): importing this package imports every op
module of this folder (a new op is a new file here, nothing to list), which registers them.

Modules whose names start with ``_`` hold what several ops share; :mod:`~fpgagen.ops.activation`
holds the activation value objects. Op modules are imported in name order, so the registry's order
(and everything derived from it) is the same on every machine.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from fpgagen.ops.registry import Op, get, names, onnx_rules, register  # noqa: F401

_SHARED = {"registry", "activation"}

for _m in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if not _m.startswith("_") and _m not in _SHARED:
        _importlib.import_module(f"{__name__}.{_m}")
