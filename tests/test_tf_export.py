"""TF/Keras models as tf2onnx exports them: an NHWC input with a Transpose to NCHW, Transposes
that only relabel size-1 axes, a Transpose to NHWC before the flatten of a Dense head, Keras
ZeroPadding2D (a Pad) before a valid strided conv, TF "same" asymmetric padding, Reshape-flatten
to [1, N] and [-1, N], MatMul + Add heads and a trailing Softmax.

Each pattern is built as tf2onnx writes it (after its transpose optimizer: one Transpose at the
input, one before the flatten), compared with onnxruntime in float, and run bit-exactly through
the golden model and the generated C (Verilog too on a tiny model with the NHWC input and the
flatten Transpose). Data is given in the model's own layout (NHWC)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import yaml
from models_onnx import Net
from test_frontend import check_against_ort

from fpgagen.errors import ModelError
from fpgagen.flow import verify
from fpgagen.frontend.onnx import from_model
from fpgagen.golden.float_exec import run_float
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.ops.conv import ConvParams
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower

BATCH = "unk__0"  # tf2onnx's name for Keras' free batch axis


# -- tf2onnx's idioms ---------------------------------------------------------------------------
def tf_net(h, w, c, batch=BATCH, seed=0, opset=13) -> Net:
    """An NHWC model input ``[batch, H, W, C]``, as Keras declares it."""
    return Net((h, w, c), opset, batch=batch, seed=seed, name="keras")


def to_nchw(n: Net, x="x") -> str:
    """The one Transpose the transpose optimizer leaves at the input."""
    return n.node("Transpose", [x], name="StatefulPartitionedCall/model/conv2d/Conv2D__6", perm=[0, 3, 1, 2])


def to_nhwc(n: Net, x) -> str:
    """The Transpose back to NHWC before Keras' Flatten (the Dense weights are in HWC order)."""
    return n.node("Transpose", [x], name="StatefulPartitionedCall/model/flatten/Reshape__20", perm=[0, 2, 3, 1])


def tf_conv(n: Net, x, ci, co, k=3, stride=1, pads=(0, 0, 0, 0), groups=1, relu=True) -> str:
    """Conv2D / DepthwiseConv2D: tf2onnx writes explicit pads (top, left, bottom, right) for "same"."""
    y = n.node("Conv", [x, n.rand(co, ci // groups, k, k), n.rand(co, scale=0.1)], dilations=[1, 1], group=groups,
               kernel_shape=[k, k], pads=[pads[0], pads[1], pads[2], pads[3]], strides=[stride, stride])
    return n.relu(y) if relu else y


def zero_padding(n: Net, x, top, bottom, left, right) -> str:
    """Keras ZeroPadding2D(((top, bottom), (left, right))): a Pad with the pads an initializer
    (moved to NCHW by the transpose optimizer) and a constant 0."""
    pads = n.const([0, 0, top, left, 0, 0, bottom, right], name=f"pads_{n.count}", dtype=np.int64)
    return n.node("Pad", [x, pads, n.const(0.0, name=f"zero_{n.count}")], mode="constant")


def flatten(n: Net, x, k, batch1=False) -> str:
    """Keras Flatten: a Reshape to [-1, K] (or [1, K] when the export fixed the batch to 1)."""
    return n.node("Reshape", [x, n.const([1 if batch1 else -1, k], name=f"shape_{n.count}", dtype=np.int64)])


def dense(n: Net, x, k, m, softmax=False) -> str:
    """Keras Dense: MatMul by a [K, M] initializer, then Add of the bias (then Softmax)."""
    y = n.node("MatMul", [x, n.rand(k, m, scale=0.3)])
    y = n.node("Add", [y, n.rand(m, scale=0.1)])
    return n.node("Softmax", [y], axis=-1) if softmax else y


# -- the models, one per pattern ---------------------------------------------------------------------
def m_nhwc_input():
    n = tf_net(6, 7, 3)
    y = tf_conv(n, to_nchw(n), 3, 4, pads=(1, 1, 1, 1))
    return n.model(dense(n, flatten(n, n.node("GlobalAveragePool", [y]), 4), 4, 5))


def m_flatten_nhwc(batch=BATCH, batch1=False):
    n = tf_net(5, 4, 2, batch=batch)
    y = tf_conv(n, to_nchw(n), 2, 3, pads=(1, 1, 1, 1))
    return n.model(dense(n, flatten(n, to_nhwc(n, y), 5 * 4 * 3, batch1), 60, 4, softmax=True))


def m_size1_relabel(reshape_first: bool):
    """DS-CNN's input: [batch, 49, 10, 1] (or MFCCs [batch, 49, 10] reshaped to it), to NCHW."""
    n = Net((12, 5) if reshape_first else (12, 5, 1), 13, batch=BATCH, seed=3)
    x = n.node("Reshape", ["x", n.const([-1, 12, 5, 1], dtype=np.int64)]) if reshape_first else "x"
    y = tf_conv(n, to_nchw(n, x), 1, 4, k=3, pads=(1, 1, 1, 1))
    return n.model(dense(n, flatten(n, n.node("GlobalAveragePool", [y]), 4), 4, 3))


def m_same_asymmetric(auto_pad=False):
    """TF "same" on a stride-2 conv of an even map: the extra row and column at the end."""
    n = tf_net(8, 8, 2, seed=2)
    x = to_nchw(n)
    if auto_pad:
        y = n.relu(n.node("Conv", [x, n.rand(3, 2, 3, 3), n.rand(3, scale=0.1)], auto_pad="SAME_UPPER",
                          kernel_shape=[3, 3], strides=[2, 2]))
    else:
        y = tf_conv(n, x, 2, 3, stride=2, pads=(0, 0, 1, 1))
    return n.model(dense(n, flatten(n, to_nhwc(n, y), 48), 48, 3))


def m_matmul_add_head():
    n = tf_net(4, 4, 1, seed=4)
    y = tf_conv(n, to_nchw(n), 1, 2, pads=(1, 1, 1, 1))
    h = n.relu(dense(n, flatten(n, to_nhwc(n, y), 32), 32, 6))
    return n.model(dense(n, h, 6, 3, softmax=True))


def m_zero_padding(top=0, bottom=1, left=0, right=1, depthwise=False):
    """ZeroPadding2D then a valid stride-2 conv (MobileNet's downsampling, ResNet's stem)."""
    n = tf_net(8, 7, 4, seed=1)
    x = tf_conv(n, to_nchw(n), 4, 4, k=1)
    x = tf_conv(n, zero_padding(n, x, top, bottom, left, right), 4, 4, stride=2, groups=4 if depthwise else 1)
    oh, ow = (8 + top + bottom - 3) // 2 + 1, (7 + left + right - 3) // 2 + 1
    return n.model(dense(n, flatten(n, to_nhwc(n, x), 4 * oh * ow), 4 * oh * ow, 3, softmax=True))


def m_avgpool_head():
    """Keras AveragePooling2D over the map + Flatten: the Transpose to NHWC only relabels (C, 1, 1)."""
    n = tf_net(6, 5, 3, seed=6)
    y = tf_conv(n, to_nchw(n), 3, 8, pads=(1, 1, 1, 1))
    y = n.node("AveragePool", [y], kernel_shape=[6, 5], strides=[6, 5])
    return n.model(dense(n, flatten(n, to_nhwc(n, y), 8), 8, 4, softmax=True))


def m_uncancelled_transposes():
    """Transposes to NHWC and back around an activation, as tf2onnx writes them before its optimizer."""
    n = tf_net(5, 5, 2, seed=7)
    y = n.node("Conv", [to_nchw(n), n.rand(3, 2, 3, 3), n.rand(3)], pads=[1, 1, 1, 1])
    y = n.node("Transpose", [n.relu(n.node("Transpose", [y], perm=[0, 2, 3, 1]))], perm=[0, 3, 1, 2])
    y = tf_conv(n, y, 3, 2, pads=(1, 1, 1, 1))
    return n.model(dense(n, flatten(n, to_nhwc(n, y), 50), 50, 3))


def m_reducemean_gap(opset=13):
    """Keras GlobalAveragePooling2D: ReduceMean over H and W (NCHW after the optimizer), keepdims 0."""
    n = tf_net(5, 6, 2, seed=8, opset=opset)
    y = tf_conv(n, to_nchw(n), 2, 6, pads=(1, 1, 1, 1))
    if opset < 18:
        y = n.node("ReduceMean", [y], axes=[2, 3], keepdims=0)
    else:
        y = n.node("ReduceMean", [y, n.const([-2, -1], dtype=np.int64)], keepdims=0)
    return n.model(dense(n, y, 6, 3, softmax=True))


MODELS = {
    "nhwc_input": m_nhwc_input,
    "flatten_nhwc": m_flatten_nhwc,
    "flatten_nhwc_batch1": lambda: m_flatten_nhwc(batch=1, batch1=True),
    "size1_transpose": lambda: m_size1_relabel(False),
    "size1_reshape_transpose": lambda: m_size1_relabel(True),
    "zero_padding_end": lambda: m_zero_padding(),
    "zero_padding_begin_depthwise": lambda: m_zero_padding(top=1, bottom=0, left=1, right=0, depthwise=True),
    "same_asymmetric": lambda: m_same_asymmetric(False),
    "same_upper": lambda: m_same_asymmetric(True),
    "matmul_add_head": m_matmul_add_head,
    "avgpool_head": m_avgpool_head,
    "uncancelled_transposes": m_uncancelled_transposes,
    "reducemean_gap": m_reducemean_gap,
}


def nhwc_data(graph, n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *graph.onnx_input_shape)).astype(np.float32)


# -- float against onnxruntime, and the IR each pattern becomes --------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_float_matches_onnxruntime(name):
    model = MODELS[name]()
    onnx.checker.check_model(model)
    check_against_ort(model)


def test_nhwc_input_is_taken_as_it_is():
    g = from_model(m_nhwc_input())
    assert g.onnx_input_shape == (6, 7, 3) and g.shapes[g.input] == (3, 6, 7)  # the IR input is CHW
    x = nhwc_data(g, 2)
    # IR element (c, h, w) is the NHWC input's (h, w, c): the stream (HWC) is the input's own order
    want = x.transpose(0, 3, 1, 2).reshape(2, -1)
    assert np.array_equal(x.reshape(2, -1)[:, g.input_order], want)
    assert [n.op for n in g.nodes] == ["conv", "gap", "flatten", "dense"]


def test_flatten_after_a_transpose_to_nhwc_permutes_the_dense_weights():
    model = m_flatten_nhwc()
    g = from_model(model)
    assert [n.op for n in g.nodes] == ["conv", "flatten", "dense"]
    assert any(note.startswith("dropped Softmax") for note in g.notes)  # the trailing Softmax
    w_onnx = next(w for w in (onnx.numpy_helper.to_array(t) for t in model.graph.initializer) if w.shape == (60, 4))
    dense = g.nodes[-1]
    # the dense layer reads the CHW flatten: its column (c, h, w) is the ONNX row (h, w, c)
    chw_of_hwc = np.arange(60).reshape(3, 5, 4).transpose(1, 2, 0).ravel()
    assert np.array_equal(dense.weight[:, chw_of_hwc], w_onnx.T)
    assert dense.bias is not None and dense.onnx_nodes[0].startswith("/matmul")


@pytest.mark.parametrize("reshape_first", [False, True])
def test_size1_relabels_of_the_input(reshape_first):
    g = from_model(m_size1_relabel(reshape_first))
    assert g.shapes[g.input] == (1, 12, 5) and g.input_order is None  # the same data, relabelled
    assert g.onnx_input_shape == ((12, 5) if reshape_first else (12, 5, 1))


@pytest.mark.parametrize(("pads", "depthwise"), [((0, 1, 0, 1), False), ((1, 0, 1, 0), True), ((2, 1, 0, 3), False)])
def test_zero_padding_merges_into_the_strided_conv(pads, depthwise):
    top, bottom, left, right = pads
    g = check_against_ort(m_zero_padding(top=top, bottom=bottom, left=left, right=right, depthwise=depthwise))
    assert [n.op for n in g.nodes] == ["conv", "conv", "flatten", "dense"]
    conv = g.nodes[1]
    assert conv.params == ConvParams((3, 3), (2, 2), (top, left, bottom, right), 4 if depthwise else 1)
    assert conv.onnx_nodes[-1].startswith("/pad")


def test_zero_padding_of_the_nhwc_input_merges_into_the_stem():
    """ResNet's stem: ZeroPadding2D(3) of the input, then a valid 7x7 stride-2 conv."""
    n = tf_net(12, 11, 3)
    x = tf_conv(n, zero_padding(n, to_nchw(n), 3, 3, 3, 3), 3, 4, k=7, stride=2)
    g = check_against_ort(n.model(dense(n, flatten(n, to_nhwc(n, x), 4 * 6 * 6), 144, 2)))
    assert [n.op for n in g.nodes] == ["conv", "flatten", "dense"] and g.nodes[0].inputs == [g.input]
    assert g.nodes[0].params.pads == (3, 3, 3, 3) and g.input_order is not None


def test_zero_padding_before_a_pool_stays_a_layer():
    n = tf_net(6, 6, 2)
    x = tf_conv(n, to_nchw(n), 2, 2, k=1)
    p = n.node("MaxPool", [zero_padding(n, x, 0, 1, 0, 1)], kernel_shape=[2, 2], strides=[2, 2])
    g = check_against_ort(n.model(dense(n, flatten(n, to_nhwc(n, p), 18), 18, 2)))
    assert [n.op for n in g.nodes] == ["conv", "pad", "maxpool", "flatten", "dense"]


@pytest.mark.parametrize("auto_pad", [False, True])
def test_same_asymmetric_padding(auto_pad):
    g = from_model(m_same_asymmetric(auto_pad))
    assert g.nodes[0].params.pads == (0, 0, 1, 1) and g.shapes[g.nodes[0].output] == (3, 4, 4)


def test_matmul_add_heads_become_dense_layers_with_bias():
    g = from_model(m_matmul_add_head())
    assert [n.op for n in g.nodes] == ["conv", "flatten", "dense", "dense"]
    assert all(n.bias is not None for n in g.nodes[2:]) and g.nodes[2].activation is not None
    assert g.shapes[g.output] == (3,)


def test_size1_relabel_of_a_pooled_map_and_transposes_that_cancel():
    g = from_model(m_avgpool_head())
    assert [n.op for n in g.nodes] == ["conv", "avgpool", "flatten", "dense"]
    g = from_model(m_uncancelled_transposes())
    assert [(n.op, n.activation is not None) for n in g.nodes] == [("conv", True), ("conv", True), ("flatten", False),
                                                                   ("dense", False)]


@pytest.mark.parametrize("opset", [13, 18])
def test_reducemean_over_the_map_is_a_global_average_pool(opset):
    g = check_against_ort(m_reducemean_gap(opset))
    assert [n.op for n in g.nodes] == ["conv", "gap", "flatten", "dense"]
    n = tf_net(4, 4, 2)
    y = n.node("ReduceMean", [tf_conv(n, to_nchw(n), 2, 2, pads=(1, 1, 1, 1))], name="/mean", axes=[1, 2, 3])
    with pytest.raises(ModelError, match=r"node '/mean' \(ReduceMean\): axes \[1, 2, 3\] on \[batch, 2, 4, 4\]; "
                                         r"supported: the spatial axes of a feature map"):
        from_model(n.model(y, infer=False))


def test_reshape_to_1_n_needs_the_batch_fixed_to_1():
    g = check_against_ort(m_flatten_nhwc(batch=1, batch1=True), batches=(1,))
    assert g.onnx_input_shape == (5, 4, 2)
    n = tf_net(5, 4, 2)  # a free batch: [1, N] would merge samples
    y = tf_conv(n, to_nchw(n), 2, 3, pads=(1, 1, 1, 1))
    with pytest.raises(ModelError, match=r"node '[^']+' \(Reshape\): target shape \[1, 60\] does not keep the batch "
                                         r"axis first .*\(\[1, C\*H\*W\] with the model input's batch fixed to 1\)"):
        from_model(n.model(flatten(n, to_nhwc(n, y), 60, batch1=True), infer=False))


# -- what stays unsupported is named --------------------------------------------------------------------
def test_unsupported_transposes_name_the_node():
    n = tf_net(4, 4, 2)
    y = tf_conv(n, to_nchw(n), 2, 2, pads=(1, 1, 1, 1))
    with pytest.raises(ModelError, match=r"node '/conv\d+/Conv' \(Conv\): input '.*' has its data moved by node "
                                         r"'StatefulPartitionedCall/model/flatten/Reshape__20' \(Transpose\) "
                                         r"\(per-sample shape \[2, 4, 4\] -> \[4, 4, 2\]\); a 2-D Conv expects"):
        from_model(n.model(n.node("Conv", [to_nhwc(n, y), n.rand(2, 4, 3, 3)]), infer=False))
    n = tf_net(4, 4, 2)
    nchw = to_nchw(n)
    a = tf_conv(n, nchw, 2, 2, pads=(1, 1, 1, 1))
    b = n.node("Add", [a, "x"], name="/add")  # the input read both as NHWC and as NCHW
    with pytest.raises(ModelError, match=r"node '/add' \(Add\) reads the model input 'x' as \[4, 4, 2\], but node "
                                         r"'/conv\d+/Conv' \(Conv\) reads it as \[2, 4, 4\] with its data moved; "
                                         r"fpgagen holds the model input in one layout"):
        from_model(n.model(b, infer=False))


# -- bit-exact: golden model and generated code, on NHWC data ------------------------------------------
def _config(tmp_path, model, name, targets, calib=64):
    g = from_model(model)
    onnx.save(model, tmp_path / f"{name}.onnx")
    np.savez(tmp_path / f"{name}_calib.npz", x=nhwc_data(g, calib, seed=7))
    cfg = {"name": name, "model": f"{name}.onnx", "data": {"calibration": f"{name}_calib.npz"},
           "targets": targets}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_golden_model_takes_nhwc_data():
    g = from_model(m_flatten_nhwc())
    x = nhwc_data(g, 40, seed=1)
    q, _ = lower(g, choose_formats(calibrate(g, x, progress=False), QuantOptions(method="max")))
    xq = quantize_input(q, x)
    y = run_int(q, xq)  # NHWC integers, as the data comes
    assert np.array_equal(y, run_int(q, xq.transpose(0, 3, 1, 2), ir_layout=True))
    err = np.abs(y * 2.0 ** -q.output_fmt.frac - run_float(g, x)).max()
    assert err <= 0.25 * np.abs(run_float(g, x)).max()


@pytest.mark.parametrize("name", list(MODELS))
def test_bit_exact_in_c(tmp_path, name):
    cfg = _config(tmp_path, MODELS[name](), name, ["c"])
    results, _ = verify(cfg, ["c"], 6, tmp_path / "out", progress=False)
    assert (results["c"]["samples"], results["c"]["mismatches"]) == (6, 0)


def test_bit_exact_in_hls_and_verilog(tmp_path):
    """A tiny Keras CNN with every pattern at once: NHWC input, ZeroPadding2D + valid strided conv,
    "same" padding, the Transpose to NHWC before the flatten, MatMul + Add, Softmax."""
    n = tf_net(6, 5, 2, seed=5)
    x = tf_conv(n, to_nchw(n), 2, 3, pads=(1, 1, 1, 1))
    x = tf_conv(n, zero_padding(n, x, 0, 1, 0, 1), 3, 4, stride=2)
    model = n.model(dense(n, flatten(n, to_nhwc(n, x), 4 * 3 * 2), 24, 3, softmax=True))
    check_against_ort(model)
    cfg = _config(tmp_path, model, "keras_tiny", ["hls", "verilog"])
    results, _ = verify(cfg, ["hls", "verilog"], 3, tmp_path / "out", progress=False)
    for target in ("hls", "verilog"):
        assert (results[target]["samples"], results[target]["mismatches"]) == (3, 0), target


def test_nhwc_data_may_omit_a_channel_axis_of_1():
    from fpgagen.data import fit_shape

    x = np.arange(2 * 12 * 5, dtype=np.float32).reshape(2, 12, 5)
    assert fit_shape(x, (12, 5, 1), "data.calibration").shape == (2, 12, 5, 1)  # DS-CNN's [N, 49, 10]
    with pytest.raises(Exception, match=r"data.calibration: x has shape \[2, 12, 5\]; expected \[N, 12, 6, 1\] or "
                                        r"\[N, 12, 6\] for the model input"):
        fit_shape(x, (12, 6, 1), "data.calibration")
