"""The ONNX frontend against onnxruntime: every op/attribute variant, the real models, the errors.

Float against float, so a tolerance is allowed here (and only here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from fpgagen.errors import ModelError
from fpgagen.frontend.onnx import SUPPORTED_OPS, from_model, load_onnx
from fpgagen.golden.float_exec import run_float
from fpgagen.ir.graph import OPS, Node
from fpgagen.ops.activation import Clip, ReLU
from fpgagen.ops.conv import ConvParams
from models_onnx import CASES, Net

ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST = SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx"
RTOL, ATOL = 1e-4, 1e-5


def ort_run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """onnxruntime on a batch; one sample at a time when the export fixed the batch."""
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int):
        b = inp.shape[0]
        return np.concatenate([sess.run(None, {inp.name: x[i : i + b]})[0] for i in range(0, len(x), b)])
    return sess.run(None, {inp.name: x})[0]


def undo_softmax(graph, logits: np.ndarray) -> np.ndarray:
    """fpgagen drops a final Softmax/LogSoftmax: apply it to our logits to compare with onnxruntime."""
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    for note in graph.notes:
        if note.startswith("dropped LogSoftmax"):
            return log_softmax
        if note.startswith("dropped Softmax"):
            return np.exp(log_softmax)
    return logits


def check_against_ort(model: onnx.ModelProto, batches=(1, 3), seed=0):
    graph = from_model(model)
    assert all(type(n) is Node and n.op in OPS for n in graph.nodes)
    data = model.SerializeToString()
    rng = np.random.default_rng(seed)
    for n in batches:
        x = rng.standard_normal((n, *graph.onnx_input_shape)).astype(np.float32)
        ref = ort_run(data, x)
        got = undo_softmax(graph, run_float(graph, x))
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    return graph


CASE_PARAMS = [pytest.param(fn, opset, id=f"{fn.__name__[2:]}-opset{opset}") for fn, opsets in CASES.items()
               for opset in opsets]


@pytest.mark.parametrize(("build", "opset"), CASE_PARAMS)
def test_op_variant_matches_onnxruntime(build, opset):
    model = build(opset)
    onnx.checker.check_model(model)
    check_against_ort(model)


# -- what the IR looks like ---------------------------------------------------------------------------
def layers(graph):
    return [(n.op, n.activation, n.onnx_nodes) for n in graph.nodes]


def test_fusion_and_provenance():
    from models_onnx import m_bn_after_conv, m_bn_input_and_dense, m_matmul_add

    g = from_model(m_bn_after_conv(13))
    assert [(op, act) for op, act, _ in layers(g)] == [("conv", ReLU()), ("conv", None)]
    assert g.nodes[0].onnx_nodes[0] == g.nodes[0].name and g.nodes[0].onnx_op == "Conv"
    assert [n.split("/")[-1] for n in g.nodes[0].onnx_nodes] == ["Conv", "BatchNormalization", "Relu"]

    g = from_model(m_matmul_add(13))
    assert [op for op, _, _ in layers(g)] == ["dense"] * 3
    assert [len(n.onnx_nodes) for n in g.nodes] == [3, 2, 1]  # MatMul+Add+Relu, Add+MatMul, MatMul
    assert g.nodes[2].bias is None

    g = from_model(m_bn_input_and_dense(13))
    assert [op for op, _, _ in layers(g)] == ["conv", "flatten", "dense"]
    assert g.nodes[0].onnx_nodes[-2].endswith("BatchNormalization")  # the input BN folded forward
    assert any(note.startswith("dropped LogSoftmax") for note in g.notes)
    assert g.onnx_output_shape == (5,)


def test_unnamed_nodes_get_deterministic_names():
    from models_onnx import m_unnamed

    g1, g2 = from_model(m_unnamed(13)), from_model(m_unnamed(13))
    names = [n.name for n in g1.nodes]
    assert names == [n.name for n in g2.nodes]
    assert (names[0], names[2]) == ("Conv_0", "Gemm_3")
    assert g1.nodes[0].onnx_nodes == ["Conv_0", "Relu_1"]


def test_one_d_conv_shapes():
    from models_onnx import m_conv1d

    g = from_model(m_conv1d(13))
    assert g.onnx_input_shape == (3, 12) and g.shapes[g.input] == (3, 1, 12)
    assert g.nodes[0].params == ConvParams((1, 3), (1, 2), (0, 1, 0, 2), 1)
    assert g.onnx_output_shape == (2, 7)


def test_layout_relabels_leave_no_layer():
    from models_onnx import m_squeeze_gap, m_transpose_relabel, m_unsqueeze_conv1d

    assert [n.op for n in from_model(m_unsqueeze_conv1d(13)).nodes] == ["conv", "conv"]
    # the IR holds a GAP output as (C, 1, 1): getting to a vector takes a flatten
    assert [n.op for n in from_model(m_squeeze_gap(13)).nodes] == ["conv", "gap", "flatten", "dense"]
    assert [n.op for n in from_model(m_transpose_relabel(13)).nodes] == ["conv", "gap", "flatten", "dense"]


def test_batch1_export_runs_any_batch():
    from models_onnx import m_mlp_batch1

    g = from_model(m_mlp_batch1(13))
    x = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    assert run_float(g, x).shape == (5, 4)
    np.testing.assert_allclose(run_float(g, x), ort_run(m_mlp_batch1(13).SerializeToString(), x),
                               rtol=RTOL, atol=ATOL)


# -- the real models ------------------------------------------------------------------------------
def test_digits_mlp():
    g = check_against_ort(onnx.load(str(REPO / "examples/digits/digits_mlp.onnx")))
    g = load_onnx(REPO / "examples/digits/digits_mlp.onnx")
    assert g.name == "digits_mlp" and g.source.endswith("digits_mlp.onnx")
    assert [(n.name, n.op, n.activation) for n in g.nodes] == [
        ("/fc1/Gemm", "dense", ReLU()), ("/fc2/Gemm", "dense", ReLU()), ("/fc3/Gemm", "dense", None)]
    assert g.onnx_input_shape == (64,) and g.onnx_output_shape == (10,)


def test_digits_cnn():
    path = REPO / "examples/digits/digits_cnn.onnx"
    check_against_ort(onnx.load(str(path)), batches=(1, 7))
    g = load_onnx(path)
    assert [n.op for n in g.nodes] == ["conv", "maxpool", "conv", "maxpool", "flatten", "dense"]
    d = np.load(REPO / "examples/digits/digits_valid.npz")
    x = (d["x"].astype(np.float32) * np.float32(0.0625)).reshape(-1, 1, 8, 8)
    assert (run_float(g, x).argmax(1) == d["y"]).mean() >= 0.97


def test_mnist_cnn():
    if not MNIST.is_file():
        pytest.skip(f"{MNIST} is absent (../shared not available)")
    g = load_onnx(MNIST)
    assert g.name == "mnist" and g.source == str(MNIST)
    assert [(n.name, n.op, n.activation) for n in g.nodes] == [
        ("/conv1/Conv", "conv", ReLU()), ("/conv2/Conv", "conv", ReLU()), ("/conv3/Conv", "conv", ReLU()),
        ("/Flatten", "flatten", None), ("/fc1/Gemm", "dense", ReLU()), ("/fc2/Gemm", "dense", None)]
    assert g.node("/fc1/Gemm").onnx_nodes == ["/fc1/Gemm", "/norm1/BatchNormalization", "/Relu_3"]
    assert g.node("/fc2/Gemm").onnx_nodes == ["/fc2/Gemm", "/norm2/BatchNormalization"]
    assert any("LogSoftmax" in note for note in g.notes)
    check_against_ort(onnx.load(str(MNIST)), batches=(1, 3))
    data = np.load(SHARED / "data" / "mnist_1k.npz")
    x = ((data["x"][:300].astype(np.float32) / 255 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    assert (run_float(g, x).argmax(1) == data["y"][:300]).mean() >= 0.98


# -- errors -------------------------------------------------------------------------------------------
def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ModelError, match=r"ONNX model file '.*nope\.onnx' does not exist"):
        load_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\x00 this is not a protobuf \x12\x34" * 3)
    with pytest.raises(ModelError, match=r"ONNX model file '.*bad\.onnx' cannot be read as ONNX"):
        load_onnx(bad)
    with pytest.raises(ModelError, match=r"is a directory"):
        load_onnx(tmp_path)


def test_error_names_the_file(tmp_path):
    n = Net((4,), 13)
    path = tmp_path / "tanh.onnx"
    onnx.save(n.model(n.node("Tanh", [n.gemm("x", 4, 3)], name="/act/Tanh")), str(path))
    with pytest.raises(ModelError, match=r"tanh\.onnx: node '/act/Tanh' \(Tanh\): op Tanh is not supported; "
                                         r"supported ops: .*Conv.*Gemm"):
        load_onnx(path)
    assert "Tanh" not in SUPPORTED_OPS and {"LeakyRelu", "Concat", "Resize", "Upsample", "Pad"} <= set(SUPPORTED_OPS)


def _net_error(build, match, opset=13, shape=(2, 6, 6), **kw):
    n = Net(shape, opset, **kw)
    with pytest.raises(ModelError, match=match):
        from_model(n.model(build(n)))


def test_unsupported_attribute_errors():
    _net_error(lambda n: n.conv("x", 2, 2, name="/c/Conv", dilations=[2, 2]),
               r"node '/c/Conv' \(Conv\): attribute 'dilations' = \[2, 2\] is not supported; "
               r"supported: dilations all 1")
    _net_error(lambda n: n.node("MaxPool", ["x"], name="/p", kernel_shape=[2, 2], storage_order=1),
               r"node '/p' \(MaxPool\): attribute 'storage_order' = 1 is not supported; supported: 0")
    _net_error(lambda n: n.node("MaxPool", ["x"], name="/p", kernel_shape=[2, 2], dilations=[1, 2]),
               r"'dilations' = \[1, 2\] is not supported")
    _net_error(lambda n: n.node("Flatten", ["x"], name="/f", axis=1, foo=3),
               r"node '/f' \(Flatten\): attribute 'foo' = 3 is not supported; supported attributes of Flatten: axis")
    _net_error(lambda n: n.conv("x", 2, 2, name="/c", auto_pad="WEIRD"),
               r"attribute 'auto_pad' = 'WEIRD' is not supported; supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER")


def test_layout_errors():
    # (Reshape/Transpose of the model input itself fix the IR input's layout: tests/test_tf_export.py)
    _net_error(lambda n: n.node("Transpose", [n.conv("x", 2, 2, pads=[1, 1, 1, 1])], name="/t", perm=[0, 2, 3, 1]),
               r"the model output '.*' is tensor '.*' with its data moved by node '/t' \(Transpose\); fpgagen's "
               r"outputs keep their layer's order")
    _net_error(lambda n: n.node("Transpose", ["x"], name="/t", perm=[1, 0, 2, 3]),
               r"node '/t' \(Transpose\): attribute 'perm' = \[1, 0, 2, 3\] on \[batch, 2, 6, 6\] moves the batch "
               r"axis; supported: permutations that keep the batch axis first")
    _net_error(lambda n: n.node("Reshape", ["x", n.const([-1], dtype=np.int64)], name="/r"),
               r"node '/r' \(Reshape\): target shape \[-1\] does not keep the batch axis first")
    _net_error(lambda n: n.conv(n.node("Reshape", [n.conv("x", 2, 2, pads=[1, 1, 1, 1]),
                                                   n.const([0, 2, 3, 12], dtype=np.int64)]), 2, 2, name="/c"),
               r"node '/c' \(Conv\): input '.*' of IR shape \[2, 6, 6\] was relabelled to \[2, 3, 12\]")
    _net_error(lambda n: n.node("Flatten", ["x"], name="/f", axis=0), r"attribute 'axis' = 0 merges the batch axis")
    _net_error(lambda n: n.axes_node("Squeeze", "x", [0]), r"axes \[0\] include the batch axis 0")
    _net_error(lambda n: n.conv(n.node("Transpose", [n.conv("x", 2, 2, pads=[1, 1, 1, 1])], name="/t",
                                       perm=[0, 1, 3, 2]), 2, 2, name="/c"),
               r"node '/c' \(Conv\): input '.*' has its data moved by node '/t' \(Transpose\) \(per-sample shape "
               r"\[2, 6, 6\] -> \[2, 6, 6\]\); a 2-D Conv expects \[C, H, W\]; a Transpose that moves data is "
               r"supported at the model input")


def test_more_attribute_errors():
    _net_error(lambda n: n.node("Squeeze", [n.node("GlobalAveragePool", ["x"])], name="/s"),
               r"node '/s' \(Squeeze\): no 'axes' with a batch fixed to 1 would remove the batch axis too", batch=1)
    _net_error(lambda n: n.node("Reshape", ["x", n.const([1, -1], dtype=np.int64)], name="/r"),
               r"node '/r' \(Reshape\): target shape \[1, -1\] does not keep the batch axis first \(the input is "
               r"\[batch, 2, 6, 6\] with a free batch size\)")
    _net_error(lambda n: n.node("Dropout", ["x", n.const(0.5), n.const(True, dtype=bool)], name="/d"),
               r"node '/d' \(Dropout\): input training_mode is true")
    _net_error(lambda n: n.node("Cast", ["x"], name="/c", to=onnx.TensorProto.INT8),
               r"node '/c' \(Cast\): attribute 'to' = INT8 is not supported on a computed tensor; supported: FLOAT")
    _net_error(lambda n: n.node("Softmax", ["x"], axis=0), r"attribute 'axis' = 0 runs across the batch")


def test_unsorted_graph_is_an_error():
    n = Net((4,), 13)
    y = n.relu(n.gemm("x", 4, 3))
    n.nodes.reverse()
    with pytest.raises(ModelError, match=r"node '/relu\d+/Relu' \(Relu\): input '.*' is not computed before this "
                                         r"node \(the graph must be topologically sorted\)"):
        from_model(n.model(y, infer=False))


def test_op_errors():
    _net_error(lambda n: n.node("Mul", ["x", "x"], name="/m"),
               r"node '/m' \(Mul\): Mul of two computed tensors is not supported; supported: Add")
    _net_error(lambda n: n.clip(n.conv("x", 2, 2), -1.0, 1.0),
               r"Clip\(min=-1, max=1\) is not supported; supported: min 0 with max > 0")
    _net_error(lambda n: n.node("Add", [n.conv("x", 2, 2, k=(1, 1)), n.conv("x", 2, 2)]),
               r"Add of per-sample shapes \[2, 6, 6\] and \[2, 4, 4\]; supported: two tensors of the same shape")
    _net_error(lambda n: n.node("Div", [n.const(1.0), n.conv("x", 2, 2)], name="/d"),
               r"node '/d' \(Div\): Div of a constant by a computed tensor is not supported")
    _net_error(lambda n: n.node("Conv", ["x", n.conv("x", 2, 2)], name="/c"),
               r"node '/c' \(Conv\): the weight \(input 1, .*\) must be a constant")
    _net_error(lambda n: n.gemm(n.flatten(n.node("Softmax", [n.conv("x", 2, 2)], name="/s")), 32, 2),
               r"Softmax '/s' is not at the model output")
    _net_error(lambda n: n.node("Gemm", ["x", n.rand(4, 3), n.rand(2, 3)]),
               r"input C of shape \[2, 3\] varies along the batch axis", shape=(4,))
    _net_error(lambda n: n.node("Gemm", ["x", n.rand(4, 3)], transA=1),
               r"attribute 'transA' = 1 with input A having the batch on its first axis", shape=(4,))

    def relu_and_add(n):  # a vector read by the Relu and the Add: no layer to fuse into, no map to pool
        c = n.gemm("x", 4, 4)
        return n.node("Add", [n.relu(c), c])

    _net_error(relu_and_add, r"Relu '.*': its input '.*' \(computed by Gemm '.*', a vector of 4\) is also read by "
               r"'.*Add'", shape=(4,))

    def indices_used(n):
        n.node("MaxPool", ["x"], n_out=2, kernel_shape=[2, 2])
        return n.node("Add", [n.nodes[-1].output[1], n.nodes[-1].output[1]])

    _net_error(lambda n: n.node("BatchNormalization", ["x", *(n.const(np.ones(2)) for _ in range(4))],
                                training_mode=1),
               r"attribute 'training_mode' = 1 is not supported; supported: 0 \(inference\)", opset=15)
    _net_error(indices_used, r"output '.*' \(output 1\) is used; fpgagen supports only the first output of MaxPool")
    _net_error(lambda n: n.node("Conv", ["x", n.rand(2, 2, 3, 3, 3)]), r"only 1-D and 2-D convolutions")
    _net_error(lambda n: n.node("Shrink", [n.conv("x", 2, 2)], name="/s"),
               r"node '/s' \(Shrink\): op Shrink is not supported")
    _net_error(lambda n: n.node("Conv", ["x", n.node("RandomNormal", [], shape=[2, 2, 3, 3])]),
               r"\(RandomNormal\): all inputs are constants but op RandomNormal cannot be evaluated at import")


def test_batchnorm_fold_errors():
    # BN after a ReLU, before a padded conv: its shift would also shift the padding zeros
    _net_error(lambda n: n.conv(n.bn(n.relu(n.conv("x", 2, 2)), 2, name="/bn"), 2, 2, pads=[1, 1, 1, 1], name="/c"),
               r"BatchNormalization '/bn' cannot be folded into a neighbouring layer: it comes after Relu '.*', "
               r"which is not a conv/dense layer .* conv '/c' after it pads its input with zeros")
    # BN between a ReLU and a max pool
    _net_error(lambda n: n.node("MaxPool", [n.bn(n.relu(n.conv("x", 2, 2)), 2, name="/bn")], kernel_shape=[2, 2]),
               r"BatchNormalization '/bn' cannot be folded.*the layer after it is MaxPool")
    # BN as the last node after a ReLU
    _net_error(lambda n: n.bn(n.relu(n.conv("x", 2, 2)), 2, name="/bn"),
               r"BatchNormalization '/bn' cannot be folded.*its output is the model output")


def test_model_level_errors():
    n = Net((4,), 13)
    m = n.model(n.gemm("x", 4, 2))
    newest = onnx.defs.onnx_opset_version()
    for bad_opset in (6, newest + 1):
        m.opset_import[0].version = bad_opset
        with pytest.raises(ModelError, match=rf"opset {bad_opset} is not supported; supported: ai.onnx opsets 7 to "
                                             rf"{newest}"):
            from_model(m)
    n = Net((4,), 13)
    m = n.model(n.node("Add", ["x", "y"]))
    m.graph.input.append(onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4]))
    with pytest.raises(ModelError, match=r"expected exactly one model input \(besides initializers\), got 2"):
        from_model(m)
    n = Net((4,), 13)
    m = n.model(n.gemm("x", 4, 2))
    m.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT8
    with pytest.raises(ModelError, match=r"model input 'x' has element type INT8; supported: FLOAT"):
        from_model(m)
    n = Net((4,), 13)
    n.nodes.append(onnx.helper.make_node("Foo", ["x"], ["y"], name="/foo", domain="com.example"))
    m = n.model("y", infer=False)
    m.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    with pytest.raises(ModelError, match=r"node '/foo' \(Foo\): op com.example.Foo is not supported"):
        from_model(m)


# -- models exported by PyTorch (its exporter writes Shape/Gather/Concat chains, BatchNormalization,
# -- Clip from ReLU6, Dropout, Flatten or view) --------------------------------------------------
def torch_models():
    import torch
    from torch import nn

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.dw, self.b2 = nn.Conv2d(8, 8, 3, stride=2, padding=(1, 0), groups=8), nn.BatchNorm2d(8)
            self.pw, self.b3 = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
            self.fc, self.drop = nn.Linear(8, 5), nn.Dropout(0.2)

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = nn.functional.relu6(self.b2(self.dw(y)))
            y = torch.relu(y + self.pw(y))
            y = self.b3(y)  # after the ReLU: folded forward into the unpadded 1x1 conv
            y = nn.functional.max_pool2d(self.pw(y), 2, ceil_mode=True)
            y = nn.functional.adaptive_avg_pool2d(y, 1)
            return torch.softmax(self.fc(self.drop(y.view(y.size(0), -1))), 1)

    class Seq1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv1d(2, 6, 5, padding=2), nn.BatchNorm1d(6)
            self.c2 = nn.Conv1d(6, 4, 3, stride=2)
            self.fc, self.b2 = nn.Linear(4 * 7, 3), nn.BatchNorm1d(3)

        def forward(self, x):
            y = nn.functional.max_pool1d(torch.relu(self.b1(self.c1(x))), 2)
            y = nn.functional.avg_pool1d(torch.relu(self.c2(y)), 3, 1, 1, count_include_pad=False)
            return torch.log_softmax(self.b2(self.fc(torch.flatten(y, 1))), dim=1)

    return [(Cnn, (3, 9, 9)), (Seq1d, (2, 32))]


@pytest.mark.parametrize("opset", [9, 13, 17])
def test_pytorch_exports(opset):
    torch = pytest.importorskip("torch")
    import io
    import warnings

    torch.manual_seed(opset)
    for cls, shape in torch_models():
        net = cls().eval()
        for mod in net.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                for p in (mod.running_mean, mod.bias):
                    p.data.uniform_(-1, 1)
                for p in (mod.running_var, mod.weight):
                    p.data.uniform_(0.5, 1.5)
        buf = io.BytesIO()
        with warnings.catch_warnings():  # the exporter's own deprecation notices
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.randn(1, *shape), buf, opset_version=opset, dynamo=False,
                              do_constant_folding=False, input_names=["x"], dynamic_axes={"x": {0: "N"}})
        model = onnx.load_from_string(buf.getvalue())
        ops = {n.op_type for n in model.graph.node}
        assert "BatchNormalization" in ops
        graph = check_against_ort(model)
        assert all(n.onnx_op != "BatchNormalization" for n in graph.nodes)


# -- once rejected, now supported (issue 11) -----------------------------------------------------------
def m_relu_after_input_pool(opset):
    """Relu after a MaxPool that reads the model input: the pool clamps (no conv before it)."""
    n = Net((2, 6, 6), opset)
    y = n.relu(n.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2]))
    return n.model(n.gemm(n.flatten(y), 18, 3))


def m_clip_after_shared_pool(opset):
    """Clip(0, k) after a MaxPool whose conv also feeds another branch: the pool clamps."""
    n = Net((2, 6, 6), opset)
    c = n.conv("x", 2, 3, pads=[1, 1, 1, 1])
    y = n.flatten(n.clip(n.node("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2]), 0.0, 0.5))
    z = n.flatten(n.node("AveragePool", [c], kernel_shape=[2, 2], strides=[2, 2]))
    return n.model(n.node("Add", [n.relu(n.gemm(y, 27, 27)), z]))


def m_avgpool_ceil_include_pad(opset):
    """count_include_pad with ceil_mode adding partial windows: the divisor counts the pads, not
    the positions beyond them (onnxruntime); with and without pads, asymmetric ones too."""
    n = Net((2, 6, 7), opset)
    a = n.node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
               count_include_pad=1)  # (6+2-3)/2 -> 4 rows: the last window has one row beyond the pads
    b = n.node("AveragePool", ["x"], kernel_shape=[2, 3], strides=[2, 3], pads=[1, 0, 0, 1], ceil_mode=1,
               count_include_pad=1)
    c = n.node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=1)
    y = n.node("Add", [n.gemm(n.flatten(b), 2 * 4 * 3, 5), n.gemm(n.flatten(c), 2 * 3 * 4, 5)])
    return n.model(n.node("Add", [n.gemm(n.flatten(a), 2 * 4 * 4, 5), y]))


def m_act_of_input_map(opset):
    """Relu of the model input, and a Clip of it that another branch reads beside: no layer computes
    them, so each becomes a clamp layer (a 1x1 max pool with the activation)."""
    n = Net((2, 5, 6), opset)
    a = n.conv(n.relu("x"), 2, 3, pads=[1, 1, 1, 1])
    b = n.conv(n.clip("x", 0.0, 0.5), 2, 3, pads=[1, 1, 1, 1])
    c = n.conv("x", 2, 3, pads=[1, 1, 1, 1])
    return n.model(n.gemm(n.flatten(n.node("Add", [n.node("Add", [a, b]), c])), 90, 4))


def m_relu_of_shared_conv(opset):
    """A conv read by a Relu and by the Add after it: the Relu becomes a clamp layer."""
    n = Net((2, 5, 6), opset)
    c = n.conv("x", 2, 3, pads=[1, 1, 1, 1])
    return n.model(n.gemm(n.flatten(n.node("Add", [n.relu(c), c])), 90, 4))


def m_relu_of_input_vector(opset):
    """Relu of a vector model input: relabelled (N, 1, 1) for the clamp layer, flattened back."""
    n = Net((10,), opset)
    return n.model(n.gemm(n.relu("x"), 10, 3))


def m_nothing_left(opset):
    """Identity and Dropout only: no layer is left, the model outputs its input."""
    n = Net((3, 4), opset)
    return n.model(n.node("Dropout", [n.node("Identity", ["x"])]))


@pytest.mark.parametrize("build", [m_relu_after_input_pool, m_clip_after_shared_pool, m_avgpool_ceil_include_pad,
                                   m_nothing_left, m_act_of_input_map, m_relu_of_shared_conv,
                                   m_relu_of_input_vector])
@pytest.mark.parametrize("opset", [11, 19])
def test_once_rejected_now_matches_onnxruntime(build, opset):
    check_against_ort(build(opset), batches=(1, 4))


def test_activation_after_a_max_pool_lands_on_the_pool_only_when_needed():
    g = from_model(m_relu_after_input_pool(13))
    assert [(n.op, n.activation) for n in g.nodes] == [("maxpool", ReLU()), ("flatten", None), ("dense", None)]
    assert g.nodes[0].onnx_nodes[1].endswith("/Relu")
    g = from_model(m_clip_after_shared_pool(13))
    assert [(n.op, n.activation) for n in g.nodes if n.op in ("conv", "maxpool")] == [
        ("conv", None), ("maxpool", Clip(0.0, 0.5))]
    # a conv that feeds only the pool still takes it (the requantizer clamps: an unsigned format)
    n = Net((2, 6, 6), 13)
    g = from_model(n.model(n.relu(n.node("MaxPool", [n.conv("x", 2, 2)], kernel_shape=[2, 2]))))
    assert [(x.op, x.activation) for x in g.nodes] == [("conv", ReLU()), ("maxpool", None)]


def test_activations_of_the_input_become_clamp_layers():
    g = from_model(m_act_of_input_map(13))
    pools = [n for n in g.nodes if n.op == "maxpool"]
    assert [(p.activation, p.inputs, p.params.kernel) for p in pools] == [
        (ReLU(), ["x"], (1, 1)), (Clip(0.0, 0.5), ["x"], (1, 1))]
    g = from_model(m_relu_of_input_vector(13))
    assert [(n.op, n.activation) for n in g.nodes] == [("maxpool", ReLU()), ("flatten", None), ("dense", None)]
    assert g.shapes["x"] == (10, 1, 1) and g.onnx_input_shape == (10,)


def test_avgpool_ceil_include_pad_counts_the_pads_only():
    g = from_model(m_avgpool_ceil_include_pad(13))
    pools = [n for n in g.nodes if n.op == "avgpool"]
    assert [p.params.count_pads for p in pools] == [(1, 1, 1, 1), (1, 0, 0, 1), (0, 0, 0, 0)]
    assert [p.params.pads for p in pools] == [(1, 1, 2, 1), (1, 0, 1, 2), (0, 0, 0, 1)]
    from fpgagen.golden.windows import avgpool_divisors

    # the last row of windows of the first pool: 2 of its 3 rows counted (a pad and a real one)
    d = avgpool_divisors((6, 7), pools[0].params)
    assert d.shape == (4, 4) and (d[:3] == 9).all() and (d[3] == 6).all()


def test_no_layers_left():
    g = from_model(m_nothing_left(13))
    assert g.nodes == [] and g.output == g.input == "x"
    assert g.onnx_output_shape == (3, 4)
    assert sum("Identity" in note or "Dropout" in note for note in g.notes) == 2


# -- names -------------------------------------------------------------------------------------------------
def test_renamer_never_creates_the_clash_it_avoids():
    # ONNX nodes 0..6: 'd', 'd_4', 'e', 'e', 'd' (node 4: once renamed to the taken 'd_4'), unnamed, 'Gemm_5'
    n = Net((4,), 13)
    y = "x"
    for name in ("d", "d_4", "e", "e", "d", None, "Gemm_5"):
        y = n.gemm(y, 4, 4, name=name)
    g = from_model(n.model(y))  # (onnxruntime refuses duplicate node names)
    assert [x.name for x in g.nodes] == ["d", "d_4", "e", "e_3", "d_4_2", "Gemm_5", "Gemm_5_6"]
    assert [x.onnx_nodes[0] for x in g.nodes] == ["d", "d_4", "e", "e", "d", "Gemm_5", "Gemm_5"]


def test_hostile_names_import():
    hostile = ["q'\"\\", "line\nbreak", "x*/y", "卷积", "", "`define", "#1", "int", "a.b", "a-b", "a_b",
               "A_B", "x" * 5000, "x" * 5000]
    n = Net((4,), 13)
    y = "x"
    for name in hostile:
        y = n.gemm(y, 4, 4, name=name)
    m = n.model(y)
    g = from_model(m)
    assert len({x.name for x in g.nodes}) == len(hostile)
    for i, node in enumerate(m.graph.node):  # the same model with distinct names, for onnxruntime
        node.name = f"n{i}"
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, x), ort_run(m.SerializeToString(), x), rtol=RTOL, atol=ATOL)


# -- malformed initializers -----------------------------------------------------------------------------
def test_initializer_data_that_does_not_fit_its_dims():
    n = Net((4,), 13)
    m = n.model(n.gemm("x", 4, 2))
    weight = next(i for i in m.graph.initializer if list(i.dims) == [2, 4])
    raw = weight.raw_data
    weight.raw_data = raw[:-4]
    with pytest.raises(ModelError, match=rf"initializer '{weight.name}' has dims \[2, 4\], expected 8 FLOAT values "
                                         rf"= 32 bytes, but its raw data holds 28 bytes"):
        from_model(m)
    weight.ClearField("raw_data")
    weight.float_data.extend([0.5] * 9)
    with pytest.raises(ModelError, match=rf"initializer '{weight.name}' has dims \[2, 4\], expected 8 FLOAT values, "
                                         rf"but its float_data holds 9 values"):
        from_model(m)
    weight.ClearField("float_data")  # no data at all
    with pytest.raises(ModelError, match=r"expected 8 FLOAT values, but its float_data holds 0 values"):
        from_model(m)


def test_errors_quote_and_shorten_names():
    n = Net((4,), 13)
    y = n.node("Tanh", [n.gemm("x", 4, 3)], name="t" * 5000 + "\n*/")
    with pytest.raises(ModelError, match=r"node 'ttt+\.\.\.t+\\n\*\\/' \(Tanh\): op Tanh is not supported") as err:
        from_model(n.model(y))
    assert len(str(err.value)) < 1000 and "\n" not in str(err.value)
    n = Net((4,), 13)
    y = n.node("Gemm", ["x", n.rand(3, 4)], name="/g", transB=1, foo=[1.5] * 10000)
    with pytest.raises(ModelError, match=r"attribute 'foo' = \[1\.5, 1\.5.*\.\.\..*1\.5\] is not supported") as err:
        from_model(n.model(y, infer=False))
    assert len(str(err.value)) < 1000
