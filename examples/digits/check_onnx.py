"""Check the shipped digits models with onnx + onnxruntime only (no torch).

    python examples/digits/check_onnx.py

For each model: onnx.checker (full check), strict shape inference, its inputs/outputs,
node list and file size, then the float accuracy on the test split
(digits_valid.npz / digits_flat_valid.npz), preprocessing x * 0.0625.
Exits non-zero if a check fails or an accuracy is below its target.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
SCALE = 0.0625

# model file, validation file, target float accuracy
MODELS = [
    ("digits_mlp.onnx", "digits_flat_valid.npz", 0.96),
    ("digits_cnn.onnx", "digits_valid.npz", 0.97),
]


def dims(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]


def accuracy(path: Path, data: Path) -> tuple[float, int]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    d = np.load(data)
    x = d["x"].astype(np.float32) * np.float32(SCALE)
    y = d["y"]
    # model input shape with the batch replaced by the sample count (channel axis restored)
    x = x.reshape((len(x),) + tuple(int(s) for s in inp.shape[1:]))
    if isinstance(inp.shape[0], int):  # fixed batch: one sample at a time
        b = inp.shape[0]
        logits = np.concatenate([sess.run(None, {inp.name: x[i : i + b]})[0] for i in range(0, len(x), b)])
    else:
        logits = sess.run(None, {inp.name: x})[0]
    return float((logits.argmax(1) == y).mean()), len(y)


def main() -> int:
    ok = True
    for model_file, data_file, target in MODELS:
        path = HERE / model_file
        m = onnx.load(str(path))
        onnx.checker.check_model(m, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
        shapes = {vi.name: dims(vi) for vi in [*inferred.graph.value_info, *inferred.graph.output]}
        print(f"== {model_file}: graph {m.graph.name!r}, producer {m.producer_name!r}, "
              f"opset {m.opset_import[0].version}, {path.stat().st_size} bytes")
        for vi in m.graph.input:
            print(f"   input  {vi.name} {dims(vi)}")
        for vi in m.graph.output:
            print(f"   output {vi.name} {dims(vi)}")
        for node in m.graph.node:
            outs = ", ".join(f"{o} {shapes.get(o, '')}" for o in node.output)
            print(f"   {node.op_type:<8} {node.name:<16} -> {outs}")
        acc, n = accuracy(path, HERE / data_file)
        print(f"   float accuracy on {data_file} ({n} images): {acc:.4f}"
              f"  (target >= {target})")
        if acc < target:
            ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
