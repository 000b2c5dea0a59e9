"""The four MLPerf Tiny v1.0 reference architectures as ONNX (NCHW), with seeded random weights,
and the three convolutional ones as TF/Keras users export them (tf2onnx, NHWC).

    python examples/mlperf_tiny/models.py [OUT]     # default OUT: examples/mlperf_tiny/out

writes for each model ``<name>.onnx``, ``<name>_calib.npz`` (x: 256 random inputs of the model's
shape, standard normal like normalised features) and ``<name>.yaml`` (a build config for
fpgagen), and the same for the NHWC exports ``<name>_nhwc`` (:data:`MODELS_NHWC`). The shapes
follow the MLPerf Tiny reference models (github.com/mlcommons/tiny,
benchmark/training): ResNet-8 for image classification (CIFAR-10, 3x32x32), DS-CNN small for
keyword spotting (1x49x10 MFCC), MobileNetV1 0.25 for visual wake words (3x96x96, ReLU6) and the
fully connected autoencoder for anomaly detection (640 -> 128 x4 -> 8 -> 128 x4 -> 640). Weights
are He-initialised (so activations keep their scale through depth) and every BatchNormalization
has random statistics: the numerics are those of a trained network's shape, not its accuracy.
No deep-learning framework is needed.

The NHWC exports are written as tf2onnx writes a Keras model after its transpose optimizer: the
input ``[batch, H, W, C]`` and one Transpose to NCHW after it; Keras ZeroPadding2D before each
strided conv (a Pad with its pads an initializer, then a valid conv); "same" pads of the other
convs explicit; AveragePooling2D over the whole map, the Transpose back to NHWC before Flatten (a
Reshape to ``[-1, C]``), Dense as MatMul + Add, a final Softmax. They hold the same seeded weights
as the NCHW models (and their calibration data is the same samples transposed), so both compute the
same function up to the input layout and the final Softmax.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


LAYOUTS = ("nchw", "nhwc")


def tf_same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TF/Keras ``padding="same"`` along one axis of ``n`` inputs: ``ceil(n / s)`` outputs, the
    total padding ``max((ceil(n / s) - 1) * s + k - n, 0)``, its smaller half before the map."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Builder:
    """A model under construction; ``in_shape`` is (C, H, W) (or (K,)); ``layout`` "nhwc" writes the
    tf2onnx form of the same layers (same weights, drawn in the same order)."""

    def __init__(self, name: str, in_shape: tuple[int, ...], seed: int, layout: str = "nchw") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
        self.name, self.in_shape, self.layout = name, in_shape, layout
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.n = 0
        #: the tensor the first layer reads: the input, or its Transpose to NCHW
        self.input = "input"
        if layout == "nhwc":
            self.input = self._node("Transpose", ["input"], "input_nchw", perm=[0, 3, 1, 2])

    def _ints(self, value, hint: str) -> str:
        self.n += 1
        name = f"{hint}_{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    def _const(self, value: np.ndarray, hint: str) -> str:
        self.n += 1
        name = f"{hint}_{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def _node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.n += 1
        out = f"{name}_out_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"/{name}/{op}", **attrs))
        return out

    def conv(self, x: str, ci: int, co: int, k, stride=1, groups=1, name="conv", same=True) -> str:
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        fan_in = ci // groups * kh * kw
        w = self.rng.standard_normal((co, ci // groups, kh, kw)) * np.sqrt(2.0 / fan_in)
        b = self.rng.standard_normal(co) * 0.05
        pads = [0, 0, 0, 0]
        if same:  # TF "same": ceil(H / s) outputs; an odd total padding's extra row/column at the end
            (top, bottom), (left, right) = (tf_same_pads(n, kk, ss) for n, kk, ss in
                                            zip(self._spatial(x), (kh, kw), (sh, sw)))
            pads = [top, left, bottom, right]
        if self.layout == "nhwc" and (sh, sw) != (1, 1) and any(pads):
            # Keras ZeroPadding2D + a valid conv; ONNX pads are (begin..., end...) of all axes
            top, left, bottom, right = pads
            x = self._node("Pad", [x, self._ints([0, 0, top, left, 0, 0, bottom, right], "pads"),
                                   self._const(np.float32(0.0), "zero")], f"{name}_pad", mode="constant")
            pads = [0, 0, 0, 0]
        tf = {"dilations": [1, 1]} if self.layout == "nhwc" else {}  # tf2onnx writes them
        return self._node("Conv", [x, self._const(w, "w"), self._const(b, "b")], name,
                          kernel_shape=[kh, kw], strides=[sh, sw], pads=pads, group=groups, **tf)

    def bn(self, x: str, c: int, name="bn") -> str:
        r = self.rng
        parts = [r.uniform(0.8, 1.2, c), r.standard_normal(c) * 0.1, r.standard_normal(c) * 0.1, r.uniform(0.8, 1.2, c)]
        return self._node("BatchNormalization", [x, *(self._const(p, "bn") for p in parts)], name, epsilon=1e-3)

    def relu(self, x: str, name="relu") -> str:
        return self._node("Relu", [x], name)

    def relu6(self, x: str, name="relu6") -> str:
        return self._node("Clip", [x, self._const(np.float32(0.0), "lo"), self._const(np.float32(6.0), "hi")], name)

    def add(self, a: str, b: str, name="add") -> str:
        return self._node("Add", [a, b], name)

    def gap(self, x: str, name="gap") -> str:
        return self._node("GlobalAveragePool", [x], name)

    def flatten(self, x: str, name="flatten") -> str:
        return self._node("Flatten", [x], name, axis=1)

    def dense(self, x: str, k: int, m: int, name="dense") -> str:
        w = self.rng.standard_normal((m, k)) * np.sqrt(2.0 / k)
        if self.layout == "nhwc":  # Keras Dense: MatMul by [K, M], Add of the bias
            y = self._node("MatMul", [x, self._const(w.T, "w")], name)
            return self._node("Add", [y, self._const(self.rng.standard_normal(m) * 0.05, "b")], f"{name}_bias")
        return self._node("Gemm", [x, self._const(w, "w"), self._const(self.rng.standard_normal(m) * 0.05, "b")],
                          name, transB=1)

    def head(self, x: str, k: int, m: int, name="fc") -> str:
        """Global average pool, flatten, dense: NCHW GlobalAveragePool + Flatten + Gemm; NHWC as Keras'
        AveragePooling2D over the map + Flatten + Dense(softmax) export."""
        if self.layout == "nchw":
            return self.dense(self.flatten(self.gap(x)), k, m, name)
        h, w = self._spatial(x)
        x = self._node("AveragePool", [x], "avgpool", kernel_shape=[h, w], strides=[h, w])
        x = self._node("Transpose", [x], "flatten_nhwc", perm=[0, 2, 3, 1])
        x = self._node("Reshape", [x, self._ints([-1, k], "shape")], "flatten")
        return self._node("Softmax", [self.dense(x, k, m, name)], "softmax", axis=-1)

    def _spatial(self, x: str) -> tuple[int, int]:
        """(H, W) of the NCHW tensor ``x`` (onnx's shape inference on the layers so far)."""
        if x == "input":  # the NCHW model's input
            return tuple(self.in_shape[1:])
        m = self.model(x, check=False)
        for vi in (*m.graph.value_info, *m.graph.output):
            if vi.name == x:
                return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim[2:])
        raise ValueError(f"no shape inferred for {x!r}")

    def model(self, out: str, check: bool = True) -> onnx.ModelProto:
        shape = [1, *self.in_shape]
        if self.layout == "nhwc":  # a free batch, as tf2onnx writes Keras' None
            shape = ["unk__0", *self.in_shape[1:], self.in_shape[0]]
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, self.name, [x], [y], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fpgagen-examples")
        m = onnx.shape_inference.infer_shapes(m)
        if check:
            onnx.checker.check_model(m)
        return m


def resnet8(seed: int = 0, layout: str = "nchw") -> onnx.ModelProto:
    b = Builder("resnet8", (3, 32, 32), seed, layout)
    x = b.relu(b.bn(b.conv(b.input, 3, 16, 3, name="conv1"), 16, "bn1"), "relu1")
    ci = 16
    for stage, co in enumerate((16, 32, 64), start=1):
        stride = 1 if stage == 1 else 2
        y = b.relu(b.bn(b.conv(x, ci, co, 3, stride, name=f"s{stage}_conv1"), co, f"s{stage}_bn1"), f"s{stage}_relu1")
        y = b.bn(b.conv(y, co, co, 3, name=f"s{stage}_conv2"), co, f"s{stage}_bn2")
        skip = x if stage == 1 else b.conv(x, ci, co, 1, stride, name=f"s{stage}_skip", same=False)
        x = b.relu(b.add(y, skip, f"s{stage}_add"), f"s{stage}_relu2")
        ci = co
    return b.model(b.head(x, 64, 10, "fc"))


def ds_cnn(seed: int = 1, layout: str = "nchw") -> onnx.ModelProto:
    b = Builder("ds_cnn", (1, 49, 10), seed, layout)
    x = b.relu(b.bn(b.conv(b.input, 1, 64, (10, 4), (2, 2), name="conv1"), 64, "bn1"), "relu1")
    for i in range(1, 5):
        x = b.relu(b.bn(b.conv(x, 64, 64, 3, groups=64, name=f"dw{i}"), 64, f"dw{i}_bn"), f"dw{i}_relu")
        x = b.relu(b.bn(b.conv(x, 64, 64, 1, name=f"pw{i}", same=False), 64, f"pw{i}_bn"), f"pw{i}_relu")
    return b.model(b.head(x, 64, 12, "fc"))


def mobilenet_v1_025(seed: int = 2, layout: str = "nchw") -> onnx.ModelProto:
    b = Builder("mobilenet_v1_025", (3, 96, 96), seed, layout)
    x = b.relu6(b.bn(b.conv(b.input, 3, 8, 3, 2, name="conv1"), 8, "bn1"), "relu1")
    ci = 8
    plan = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for i, (co, stride) in enumerate(plan, start=1):
        x = b.relu6(b.bn(b.conv(x, ci, ci, 3, stride, groups=ci, name=f"dw{i}"), ci, f"dw{i}_bn"), f"dw{i}_relu")
        x = b.relu6(b.bn(b.conv(x, ci, co, 1, name=f"pw{i}", same=False), co, f"pw{i}_bn"), f"pw{i}_relu")
        ci = co
    return b.model(b.head(x, 256, 2, "fc"))


def autoencoder(seed: int = 3) -> onnx.ModelProto:
    b = Builder("fc_autoencoder", (640,), seed)
    x, k = "input", 640
    for i, m in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], start=1):
        x = b.relu(b.bn(b.dense(x, k, m, f"fc{i}"), m, f"bn{i}"), f"relu{i}")
        k = m
    return b.model(b.dense(x, 128, 640, "fc_out"))


MODELS = {"resnet8": resnet8, "ds_cnn": ds_cnn, "mobilenet_v1_025": mobilenet_v1_025, "fc_autoencoder": autoencoder}
#: the convolutional models as tf2onnx exports them from Keras (NHWC, ZeroPadding2D, MatMul + Add, Softmax)
MODELS_NHWC = {f"{name}_nhwc": partial(MODELS[name], layout="nhwc") for name in ("resnet8", "ds_cnn", "mobilenet_v1_025")}


def macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one inference (Conv and Gemm)."""
    infos = list(model.graph.value_info) + list(model.graph.output)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in infos}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            w = inits[node.input[1]]
            out = shapes[node.output[0]]
            total += int(np.prod(w[1:])) * int(np.prod(out[1:])) if node.op_type == "Conv" else w[0] * w[1]
    return total


def write(out: Path, calib: int = 256) -> list[Path]:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in {**MODELS, **MODELS_NHWC}.items():
        m = make()
        onnx.save(m, out / f"{name}.onnx")
        shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
        nhwc = name in MODELS_NHWC  # the NCHW model's samples, transposed
        x = np.random.default_rng(100).standard_normal((calib, *(shape[-1:] + shape[:-1] if nhwc else shape)))
        x = (x.transpose(0, 2, 3, 1) if nhwc else x).astype(np.float32)
        np.savez(out / f"{name}_calib.npz", x=x)
        cfg = {"name": name, "model": f"{name}.onnx", "data": {"calibration": f"{name}_calib.npz"},
               "targets": ["c", "hls", "verilog"], "verify": {"samples": 4}}
        (out / f"{name}.yaml").write_text(f"# MLPerf Tiny {name} (seeded random weights, {macs(m):,} MACs)\n"
                                          + yaml.safe_dump(cfg, sort_keys=False))
        written.append(out / f"{name}.yaml")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "out"
    for path in write(target):
        print(path)
