"""LeakyRelu: ONNX import (fused into the layer below it, standalone where there is none) against
onnxruntime, and the integer model against the float model."""

from __future__ import annotations

import numpy as np
import pytest
from models_onnx import Net
from test_frontend import check_against_ort

from fpgagen.frontend.onnx import from_model
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.ops.activation import LeakyRelu, ReLU
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower


def L(alpha) -> LeakyRelu:
    """The slope as ONNX stores it (float32)."""
    return LeakyRelu(float(np.float32(alpha)))


def leaky(n: Net, x, alpha=None):
    return n.node("LeakyRelu", [x], **({} if alpha is None else {"alpha": alpha}))


def m_fused_conv(opset, alpha=0.1):
    n = Net((2, 6, 6), opset)
    return n.model(leaky(n, n.conv("x", 2, 3, pads=[1, 1, 1, 1]), alpha))


def m_fused_through_pool(opset, alpha=0.2):
    n = Net((2, 6, 6), opset)
    return n.model(leaky(n, n.node("MaxPool", [n.conv("x", 2, 3)], kernel_shape=[2, 2], strides=[2, 2]), alpha))


def m_standalone_after_input_pool(opset):
    n = Net((2, 6, 6), opset)
    p = leaky(n, n.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2]), 0.3)
    return n.model(n.conv(p, 2, 2))


def m_of_input_and_shared(opset):
    n = Net((8,), opset)
    h = n.gemm(leaky(n, "x"), 8, 6)  # default alpha 0.01, of the model input
    a = leaky(n, h, 0.5)  # h is also read by the Add below: standalone
    return n.model(n.node("Add", [n.gemm(a, 6, 6), h]))


def m_negative_slope_after_pool(opset):
    n = Net((2, 6, 6), opset)
    c = n.conv("x", 2, 3)
    return n.model(leaky(n, n.node("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2]), -0.5))


CASES = [m_fused_conv, m_fused_through_pool, m_standalone_after_input_pool, m_of_input_and_shared,
         m_negative_slope_after_pool]


@pytest.mark.parametrize("opset", [7, 13, 21])
@pytest.mark.parametrize("build", CASES, ids=lambda f: f.__name__[2:])
def test_float_matches_onnxruntime(build, opset):
    check_against_ort(build(opset))


def test_where_the_slope_goes():
    g = from_model(m_fused_conv(13))
    assert [(x.op, x.activation) for x in g.nodes] == [("conv", L(0.1))]
    g = from_model(m_fused_through_pool(13))  # monotone: moves up through the max pool
    assert [(x.op, x.activation) for x in g.nodes] == [("conv", L(0.2)), ("maxpool", None)]
    g = from_model(m_standalone_after_input_pool(13))
    assert [(x.op, x.activation) for x in g.nodes] == [("maxpool", None), ("leakyrelu", L(0.3)), ("conv", None)]
    g = from_model(m_of_input_and_shared(13))
    assert [x.op for x in g.nodes] == ["leakyrelu", "dense", "leakyrelu", "dense", "add"]
    assert g.nodes[0].activation == L(0.01) and g.nodes[0].inputs == [g.input]
    g = from_model(m_negative_slope_after_pool(13))  # not monotone: stays after the pool
    assert [(x.op, x.activation) for x in g.nodes] == [("conv", None), ("maxpool", None), ("leakyrelu", L(-0.5))]
    n = Net((4,), 13)
    g = from_model(n.model(leaky(n, n.gemm("x", 4, 3), 0.0)))  # alpha 0 is a ReLU (SPEC.md 3)
    assert [(x.op, x.activation) for x in g.nodes] == [("dense", ReLU())]


@pytest.mark.parametrize("build", CASES, ids=lambda f: f.__name__[2:])
def test_integer_model_follows_the_float_model(build):
    g = from_model(build(13))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, *g.shapes[g.input])).astype(np.float32)
    q, _ = lower(g, choose_formats(calibrate(g, x, progress=False), QuantOptions(method="max")))
    leaky_layers = [la for la in q.layers if la.leaky is not None]
    assert leaky_layers and all(la.out_fmt.signed for la in leaky_layers if la.activation.alpha > 0)
    from fpgagen.golden.float_exec import run_float

    y = run_int(q, quantize_input(q, x)) * 2.0 ** -q.output_fmt.frac
    ref = run_float(g, x)
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.99


def test_unknown_attribute_is_named():
    from fpgagen.errors import ModelError

    n = Net((4,), 13)
    m = n.model(n.node("LeakyRelu", [n.gemm("x", 4, 3)], alpha=0.1))
    m.graph.node[-1].attribute.append(__import__("onnx").helper.make_attribute("beta", 1.0))
    with pytest.raises(ModelError, match=r"\(LeakyRelu\): attribute 'beta' = 1.0 is not supported; supported attributes "
                                         r"of LeakyRelu: alpha"):
        from_model(m)


def m_relu_after_negative_slope(opset):
    n = Net((8,), opset)
    return n.model(n.relu(leaky(n, n.gemm("x", 8, 6), -0.3)))


def m_relu_after_resize(opset):
    n = Net((2, 4, 4), opset)
    r = n.node("Resize", [n.conv("x", 2, 3, pads=[1, 1, 1, 1]), "", n.const([1, 1, 2, 2])], mode="nearest")
    return n.model(n.relu(r))


@pytest.mark.parametrize("build", [m_relu_after_negative_slope, m_relu_after_resize], ids=lambda f: f.__name__[2:])
def test_activations_that_do_not_compose_or_move_through_layout_ops(build):
    """Found by tools/fuzz.py --profile ops (seeds 33, 114, 123): a ReLU after a LeakyRelu of
    negative slope is a layer of its own; a ReLU after a Resize moves up through it to the conv."""
    g = check_against_ort(build(13))
    if build is m_relu_after_negative_slope:
        assert [(x.op, x.activation) for x in g.nodes] == [("dense", L(-0.3)), ("leakyrelu", ReLU())]
    else:
        assert [(x.op, x.activation) for x in g.nodes] == [("conv", ReLU()), ("resize", None)]
