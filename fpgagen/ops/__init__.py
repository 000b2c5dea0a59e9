"""One module per IR op (:mod:`fpgagen.ops.registry`): importing this package registers them all."""

from fpgagen.ops import add, concat, conv, dense, flatten, leakyrelu, pad, pool, resize  # noqa: F401
from fpgagen.ops.registry import Op, get, names, onnx_rules, register  # noqa: F401
