"""Build ``digits_qonnx.onnx``: the digits CNN of make_digits_qdq.py as a QONNX model with 4-bit
weights and activations, as Brevitas/FINN write it (``Quant`` nodes of the qonnx domain).

    python examples/qdq/make_digits_qonnx.py

NumPy + onnx only (written with onnx.helper: brevitas needs torch, which this project does not
install), deterministic. The float model is make_digits_qdq.py's (the same random convolutions
and ridge-trained Gemm). Every quantizer is ``Quant(x, scale, zeropt 0, bitwidth)`` with a
power-of-two scale, ``rounding_mode ROUND`` (half to even):

    input             8 bits unsigned, scale 2**-8
    conv weights      4 bits signed, narrow (-7..7), scale 2**ceil(log2(max|w| / 7))
    conv/add outputs  4 bits unsigned after the Relu, scale 2**ceil(log2(max / 15)) over the
                      training digits (the float model's: no saturation on them)
    Gemm weights      8 bits signed, narrow (-127..127); its output 8 bits signed
    biases            32 bits signed at scale(input) * scale(weight) (the accumulator's)

The Gemm is then refitted (ridge regression) on the quantized network's features, which come from
fpgagen's golden model of it (equal to qonnx's executor, tests/test_qonnx.py): quantization-aware
in closed form.

Prints the top-1 accuracy of the float model and of the QONNX model (qonnx's executor when qonnx
is installed) on the 450 validation digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import make_digits_qdq as base

HERE = Path(__file__).resolve().parent
DOMAIN = "qonnx.custom_op.general"
W_BITS, A_BITS, FC_BITS = 4, 4, 8
RIDGE = 1e-1


def _p2_ceil(v: float) -> float:
    """The smallest power of two at least ``v``."""
    return float(2.0 ** np.ceil(np.log2(v)))


def build(head=None) -> onnx.ModelProto:
    """The QONNX model; without ``head`` (the Gemm's weight and bias) it ends at the quantized
    features (the flattened add output)."""
    fmodel = base.train()
    w = {i.name: numpy_helper.to_array(i) for i in fmodel.graph.initializer}
    if head is not None:
        w["fc.weight"], w["fc.bias"] = head
    x, _ = base.digits("calib")
    # activation ranges over the training digits (the float model's intermediate tensors)
    probe = onnx.ModelProto.FromString(fmodel.SerializeToString())
    for name in ("relu1", "relu2", "add1", "logits"):
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    import onnxruntime as ort

    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in probe.graph.output], sess.run(None, {"input": x})))
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(src, name, scale, bits, signed, narrow=0):
        nodes.append(helper.make_node("Quant", [src, const(f"{name}_scale", scale), const(f"{name}_zeropt", 0.0),
                                                const(f"{name}_bitwidth", bits)], [name], name=f"{name}_Quant",
                                      domain=DOMAIN, signed=signed, narrow=narrow, rounding_mode="ROUND"))
        return name

    def node(op, inputs, out, **attrs):
        nodes.append(helper.make_node(op, inputs, [out], name=f"{out}_{op}", **attrs))
        return out

    def weight(layer, x_scale, bits=W_BITS):
        wv = w[f"{layer}.weight"]
        s_w = _p2_ceil(np.abs(wv).max() / (2 ** (bits - 1) - 1))
        q_w = quant(const(f"{layer}.weight", wv), f"{layer}.weight_q", s_w, bits, 1, narrow=1)
        q_b = quant(const(f"{layer}.bias", w[f"{layer}.bias"]), f"{layer}.bias_q", x_scale * s_w, 32, 1)
        return q_w, q_b

    def act_scale(name, bits, signed):
        return _p2_ceil(np.abs(outs[name]).max() / (2 ** (bits - signed) - 1))

    s_in = 2.0**-8
    xq = quant("input", "input_q", s_in, 8, 0)
    s1 = act_scale("relu1", A_BITS, 0)
    w1, b1 = weight("conv1", s_in)
    a1 = quant(node("Relu", [node("Conv", [xq, w1, b1], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "relu1"),
               "relu1_q", s1, A_BITS, 0)
    p = node("MaxPool", [a1], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    s2 = act_scale("relu2", A_BITS, 0)
    w2, b2 = weight("conv2", s1)
    a2 = quant(node("Relu", [node("Conv", [p, w2, b2], "conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "relu2"),
               "relu2_q", s2, A_BITS, 0)
    s3 = act_scale("add1", A_BITS, 0)
    s = quant(node("Add", [p, a2], "add1"), "add1_q", s3, A_BITS, 0)
    y = node("Flatten", [s], "flat")
    if head is not None:
        w3, b3 = weight("fc", s3, FC_BITS)
        y = quant(node("Gemm", [y, w3, b3], "fc", transB=1), "logits", act_scale("logits", 8, 1), 8, 1)
    graph = helper.make_graph(nodes, "digits_qonnx",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 10 if head is not None
                                                                                     else 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", base.OPSET),
                                                    helper.make_opsetid(DOMAIN, 1)],
                              producer_name="fpgagen-examples")
    model.ir_version = 8
    return model


def quantized_features(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The features of the quantized network, from fpgagen's golden model of it (which equals qonnx's
    executor: tests/test_qonnx.py)."""
    from fpgagen.fixed import dequantize
    from fpgagen.frontend.onnx import from_model
    from fpgagen.golden.model import quantize_input, run_int
    from fpgagen.quant.calibrate import calibrate
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower

    graph = from_model(model)
    q, _ = lower(graph, choose_formats(calibrate(graph, None), QuantOptions()))
    return dequantize(run_int(q, quantize_input(q, x)), q.output_fmt)


def train() -> onnx.ModelProto:
    """The Gemm refitted (ridge regression, as make_digits_qdq.py) on the quantized features."""
    x, y = base.digits("calib")
    feats = quantized_features(build(), x)
    feats1 = np.hstack([feats, np.ones((len(feats), 1))])
    target = np.eye(10)[y] * 4.0 - 2.0
    sol = np.linalg.solve(feats1.T @ feats1 + RIDGE * np.eye(feats1.shape[1]), feats1.T @ target)
    return build((sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32)))


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE.parent.parent))  # fpgagen of this checkout
    model = train()
    path = HERE / "digits_qonnx.onnx"
    onnx.save(model, str(path))
    xv, yv = base.digits("valid")
    print(f"float: top-1 {(base.run(base.train(), xv).argmax(1) == yv).mean():.4f}")
    try:
        from fpgagen.frontend.oracle import qonnx_outputs

        print(f"QONNX (qonnx executor): top-1 {(qonnx_outputs(path, 'logits', xv).argmax(1) == yv).mean():.4f}")
    except ImportError:
        print("qonnx is not installed: no executor accuracy")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
