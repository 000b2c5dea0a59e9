"""Build ``digits_qdq.onnx`` (and ``digits_qdq_pc.onnx``): a digits CNN quantized by onnxruntime
(QDQ) with power-of-two scales, per tensor (and with per-channel weight scales).

    python examples/qdq/make_digits_qdq.py

NumPy + onnx + onnxruntime only (no training framework), deterministic (re-running writes
byte-identical files). Three steps, each written out:

1. The float model ``digits_float.onnx`` (opset 17, input ``input`` [N, 1, 8, 8], pixels / 16):

       conv1 3x3 (1->8, pad 1) + Relu, MaxPool 2x2 -> p        [8, 4, 4]
       conv2 3x3 (8->8, pad 1) + Relu -> r, Add(p, r)            a residual add of two branches
       Flatten (128), Gemm (128->10)                             the logits

   The convolutions have fixed random filters (seed 0); the Gemm is trained in closed form (ridge
   regression of +-2 logits on the training split's features).
2. ``onnxruntime.quantization.quantize_static`` in QDQ format, per tensor, int8 weights (QInt8)
   and uint8 activations (QUInt8), MinMax calibration on the 1,347 training digits. It removes the
   Relus: the uint8 quantizer of the conv outputs clamps at 0 instead. ``digits_qdq_pc.onnx`` is the
   same with ``per_channel=True``: a weight scale per output channel (conv axis 0, Gemm axis 0),
   each bias at its channel's ``s_x * s_w_c``.
3. :func:`power_of_two` makes every scale a power of two and every zero point 0, and re-saves the
   model as ``digits_qdq.onnx``. The rule, per quantized tensor:

   - an activation with zero point 0 keeps its type; its scale ``s`` becomes ``2**round(log2 s)``;
   - an activation with a non-zero uint8 zero point (a signed tensor: here the logits) becomes
     int8 with zero point 0 and the scale ``2**round(log2(m / 127))``, ``m`` the largest magnitude
     of its calibrated range ``[(0 - zp) s, (255 - zp) s]``;
   - an int8 weight ``q`` of scale ``s`` gets ``s' = 2**round(log2 s)`` and ``round(q s / s')``
     (clipped to -127..127); per channel: each channel's scale so;
   - an int32 bias gets the scale ``s_x' * s_w'`` (its layer's new input and weight scales) and
     ``round(b s_b / (s_x' s_w'))``, per channel with each channel's ``s_w'``.

   ``round`` rounds half to even (NumPy's rint).

Prints the top-1 accuracy on the 450 validation digits of the float model, onnxruntime's int8
models (their own scales) and the power-of-two int8 models.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "digits"
SCALE = 0.0625
RIDGE = 1e-1
OPSET = 17


def build(head=None) -> onnx.ModelProto:
    """The float model; without ``head`` it ends at the flattened features."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(op, inputs, out, **attrs):
        nodes.append(helper.make_node(op, inputs, [out], name=f"{out}_{op}", **attrs))
        return out

    def conv(x, name, ci, co):
        w = rng.standard_normal((co, ci, 3, 3)) * np.sqrt(2.0 / (ci * 9))
        b = rng.standard_normal(co) * 0.05
        return node("Conv", [x, const(f"{name}.weight", w), const(f"{name}.bias", b)], name,
                    kernel_shape=[3, 3], pads=[1, 1, 1, 1])

    a1 = node("Relu", [conv("input", "conv1", 1, 8)], "relu1")
    p = node("MaxPool", [a1], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    a2 = node("Relu", [conv(p, "conv2", 8, 8)], "relu2")
    s = node("Add", [p, a2], "add1")
    out = node("Flatten", [s], "flat")
    if head is not None:
        w, b = head
        out = node("Gemm", [out, const("fc.weight", w), const("fc.bias", b)], "logits", transB=1)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10 if head is not None else 128])
    model = helper.make_model(helper.make_graph(nodes, "digits_qdq", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fpgagen-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(DIGITS / f"digits_{split}.npz")
    return (d["x"].astype(np.float32) * SCALE).reshape(-1, 1, 8, 8), d["y"]


def train() -> onnx.ModelProto:
    x, y = digits("calib")
    feats = run(build(), x).astype(np.float64)
    feats1 = np.hstack([feats, np.ones((len(feats), 1))])
    target = np.eye(10)[y] * 4.0 - 2.0
    sol = np.linalg.solve(feats1.T @ feats1 + RIDGE * np.eye(feats1.shape[1]), feats1.T @ target)
    return build((sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32)))


def quantize(model: onnx.ModelProto, per_channel: bool = False) -> onnx.ModelProto:
    """onnxruntime's static QDQ quantization, calibrated on the training digits; weight scales per
    tensor, or per output channel."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    x, _ = digits("calib")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": x[i:i + 64]} for i in range(0, len(x), 64)])

        def get_next(self):
            return next(self.batches, None)

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process (shape inference) first
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return onnx.load(str(dst))


def _f(array) -> float:
    return float(np.ravel(array)[0])


def _p2(scale):
    """The nearest power of two (of each scale of an array)."""
    p = 2.0 ** np.round(np.log2(np.asarray(scale, np.float64)))
    return float(p) if np.ndim(p) == 0 else p


def power_of_two(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every scale a power of two, every zero point 0 (the rule in this module's docstring)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    value = {name: numpy_helper.to_array(i) for name, i in inits.items()}
    new = dict(value)
    producer = {o: n for n in g.node for o in n.output}

    def set_init(name, array):
        new[name] = array
        inits[name].CopyFrom(numpy_helper.from_array(array, name))

    scale_of = {}  # DequantizeLinear output -> its new scale
    dq_consts = [n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    # activations: a scale and zero point initializer pair shared by a Q and its DQ
    done = set()
    for n in g.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits:
            continue
        s_name, z_name = n.input[1], n.input[2]
        if s_name in done:
            continue
        done.add(s_name)
        s, zp = _f(value[s_name]), value[z_name]
        if int(zp) != 0:
            lo, hi = (0 - int(zp)) * s, (255 - int(zp)) * s
            set_init(s_name, np.full(value[s_name].shape, _p2(max(abs(lo), abs(hi)) / 127), np.float32))
            set_init(z_name, np.array(0, np.int8))
        else:
            set_init(s_name, np.full(value[s_name].shape, _p2(s), np.float32))
    # weights first, then biases (which need their layer's input and weight scales)
    for n in dq_consts:
        q_name, s_name = n.input[0], n.input[1]
        if value[q_name].dtype != np.int8:
            continue
        s_old = value[s_name].astype(np.float64)
        s_new = np.asarray(_p2(s_old))
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        ratio = (s_old / s_new).reshape([-1 if d == axis % value[q_name].ndim else 1
                                         for d in range(value[q_name].ndim)]) if s_old.ndim else s_old / s_new
        q = np.clip(np.rint(value[q_name].astype(np.float64) * ratio), -127, 127).astype(np.int8)
        set_init(q_name, q)
        set_init(s_name, s_new.astype(np.float32).reshape(value[s_name].shape))
    for n in dq_consts:
        scale_of[n.output[0]] = new[n.input[1]].astype(np.float64)
    for layer in g.node:
        if layer.op_type not in ("Conv", "Gemm") or len(layer.input) < 3:
            continue
        bias_dq = producer[layer.input[2]]
        x_dq = producer[layer.input[0]]
        s_x = _f(new[x_dq.input[1]])
        s_w = scale_of[layer.input[1]]
        b_name, bs_name = bias_dq.input[0], bias_dq.input[1]
        b = np.rint(value[b_name].astype(np.float64) * value[bs_name].astype(np.float64) / (s_x * s_w)).astype(np.int32)
        set_init(b_name, b)
        set_init(bs_name, np.broadcast_to(s_x * s_w, value[bs_name].shape).astype(np.float32))
    onnx.checker.check_model(model)
    return model


def main() -> None:
    xv, yv = digits("valid")
    model = train()
    onnx.save(model, str(HERE / "digits_float.onnx"))
    print(f"float: top-1 {(run(model, xv).argmax(1) == yv).mean():.4f} on {len(yv)} validation digits")
    for per_channel, name in ((False, "digits_qdq.onnx"), (True, "digits_qdq_pc.onnx")):
        q = quantize(model, per_channel)
        p2 = power_of_two(q)
        onnx.save(p2, str(HERE / name))
        kind = "per-channel" if per_channel else "per-tensor"
        for what, m in ((f"onnxruntime int8, {kind} (its own scales)", q), (f"power-of-two int8, {kind}", p2)):
            print(f"{what}: top-1 {(run(m, xv).argmax(1) == yv).mean():.4f} on {len(yv)} validation digits")
    print(f"wrote {HERE / 'digits_float.onnx'}, {HERE / 'digits_qdq.onnx'} and {HERE / 'digits_qdq_pc.onnx'}")


if __name__ == "__main__":
    main()
