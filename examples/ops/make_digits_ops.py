"""Build ``digits_ops.onnx``: a digits classifier that uses every op of the op-centric core.

    python examples/ops/make_digits_ops.py

NumPy + onnx + onnxruntime only (no training framework): the convolutions have fixed random
filters (seed 0) and the final Gemm is fitted in closed form (ridge regression on the training
split's features), so the model is a real classifier of scikit-learn's 8x8 digits. The graph
(opset 18, input ``input`` [N, 1, 8, 8], pixels / 16):

    conv1 3x3 (1->6, pad 1) + LeakyRelu(0.1)          fused into conv1's requantizer
    Concat(input, conv1)                               a skip concat of the model input (7 ch)
    MaxPool 2x2 -> p                                   p is read twice:
    LeakyRelu(0.2)(p), Concat(leaky, p)                a standalone LeakyRelu after a pool (14 ch)
    Resize x2 by scales (half_pixel, round_prefer_floor)   8x8
    Pad (top 1, right 1) + conv2 3x3 (14->8) + LeakyRelu(0.1)   the Pad merges into conv2 (asymmetric)
    Pad (bottom 1, right 1) + MaxPool 2x2              a Pad of its own (a max pool's padding differs)
    Resize by sizes [8, 8] of axes [2, 3] (asymmetric, floor)
    conv3 3x3 stride 2 (8->8, pad 1) + Relu, Flatten, Gemm (128->10)

Deterministic: re-running writes a byte-identical file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "digits"
SCALE = 0.0625
RIDGE = 1e-1


def build(head=None) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(op, inputs, out, **attrs):
        nodes.append(helper.make_node(op, inputs, [out], name=f"/{out}/{op}", **attrs))
        return out

    def conv(x, name, ci, co, **attrs):
        w = rng.standard_normal((co, ci, 3, 3)) * np.sqrt(2.0 / (ci * 9))
        b = rng.standard_normal(co) * 0.05
        return node("Conv", [x, const(f"{name}.weight", w), const(f"{name}.bias", b)], name, kernel_shape=[3, 3],
                    **attrs)

    a = node("LeakyRelu", [conv("input", "conv1", 1, 6, pads=[1, 1, 1, 1])], "act1", alpha=0.1)
    c = node("Concat", ["input", a], "cat1", axis=1)
    p = node("MaxPool", [c], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    lk = node("LeakyRelu", [p], "act2", alpha=0.2)
    c2 = node("Concat", [lk, p], "cat2", axis=1)
    r = node("Resize", [c2, "", const("up.scales", [1, 1, 2, 2])], "up1", mode="nearest")
    pd = node("Pad", [r, const("pad1.pads", [0, 0, 1, 0, 0, 0, 0, 1], np.int64)], "pad1")
    a3 = node("LeakyRelu", [conv(pd, "conv2", 14, 8)], "act3", alpha=0.1)
    pd2 = node("Pad", [a3, const("pad2.pads", [0, 0, 0, 0, 0, 0, 1, 1], np.int64)], "pad2")
    p2 = node("MaxPool", [pd2], "pool2", kernel_shape=[2, 2], strides=[2, 2])
    r2 = node("Resize", [p2, "", "", const("up2.sizes", [8, 8], np.int64)], "up2", mode="nearest", axes=[2, 3],
              coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    c3 = node("Relu", [conv(r2, "conv3", 8, 8, pads=[1, 1, 1, 1], strides=[2, 2])], "act4")
    f = node("Flatten", [c3], "flat")
    out = f
    if head is not None:
        w, b = head
        out = node("Gemm", [f, const("fc.weight", w), const("fc.bias", b)], "logits", transB=1)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10 if head is not None else 128])
    graph = helper.make_graph(nodes, "digits_ops", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="fpgagen-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def features(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def main() -> None:
    d = np.load(DIGITS / "digits_calib.npz")
    x = (d["x"].astype(np.float32) * SCALE).reshape(-1, 1, 8, 8)
    feats = features(build(), x).astype(np.float64)
    feats1 = np.hstack([feats, np.ones((len(feats), 1))])
    target = np.eye(10)[d["y"]] * 4.0 - 2.0  # logits of +-2
    sol = np.linalg.solve(feats1.T @ feats1 + RIDGE * np.eye(feats1.shape[1]), feats1.T @ target)
    head = (sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32))
    model = build(head)
    v = np.load(DIGITS / "digits_valid.npz")
    xv = (v["x"].astype(np.float32) * SCALE).reshape(-1, 1, 8, 8)
    acc = (features(model, xv).argmax(1) == v["y"]).mean()
    onnx.save(model, str(HERE / "digits_ops.onnx"))
    print(f"wrote {HERE / 'digits_ops.onnx'}: float top-1 {acc:.4f} on the 450 validation digits")


if __name__ == "__main__":
    main()
