"""Concat along channels: ONNX import against onnxruntime, errors, and the lowering's shifts."""

from __future__ import annotations

import numpy as np
import pytest
from models_onnx import Net
from test_frontend import check_against_ort

from fpgagen.errors import ModelError
from fpgagen.frontend.onnx import from_model
from fpgagen.golden.float_exec import run_float
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.ops.concat import ConcatParams
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower


def m_skip_of_input(opset, axis=1):
    n = Net((2, 5, 5), opset)
    return n.model(n.node("Concat", ["x", n.relu(n.conv("x", 2, 3, pads=[1, 1, 1, 1]))], axis=axis))


def m_three_and_twice(opset):
    n = Net((2, 6, 6), opset)
    a = n.conv("x", 2, 3, pads=[1, 1, 1, 1])
    b = n.node("MaxPool", [n.conv("x", 2, 2, k=(1, 1))], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    c = n.node("Concat", [a, b, a], axis=-3)
    return n.model(n.relu(c))  # the ReLU fuses into the concat's requantizer


def m_vectors(opset):
    n = Net((6,), opset)
    return n.model(n.gemm(n.node("Concat", [n.gemm("x", 6, 4), "x"], axis=-1), 10, 3))


def m_1d_maps(opset):
    n = Net((2, 9), opset)
    return n.model(n.node("Concat", [n.conv("x", 2, 3, k=(3,), pads=[1, 1]), "x"], axis=1))


CASES = [m_skip_of_input, m_three_and_twice, m_vectors, m_1d_maps]


@pytest.mark.parametrize("opset", [7, 13, 21])
@pytest.mark.parametrize("build", CASES, ids=lambda f: f.__name__[2:])
def test_float_matches_onnxruntime(build, opset):
    check_against_ort(build(opset))


def test_ir_and_integer_constants():
    g = from_model(m_three_and_twice(13))
    cat = [x for x in g.nodes if x.op == "concat"][0]
    assert len(cat.inputs) == 3 and cat.inputs[0] == cat.inputs[2] and cat.activation is not None
    assert g.shapes[cat.output] == (8, 6, 6)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 2, 6, 6)).astype(np.float32)
    q, _ = lower(g, choose_formats(calibrate(g, x, progress=False), QuantOptions(method="max")))
    layer = q.layer(cat.name)
    assert layer.params == ConcatParams(tuple(f.frac - layer.out_fmt.frac for f in layer.in_fmts), (3, 2, 3))
    assert layer.lo == 0 and layer.shift is None
    y = run_int(q, quantize_input(q, x)) * 2.0 ** -q.output_fmt.frac
    assert np.abs(y - run_float(g, x)).max() <= 3 * 2.0 ** -q.output_fmt.frac + 0.3


def test_skip_concat_of_the_model_input():
    g = from_model(m_skip_of_input(13))
    assert [x.op for x in g.nodes] == ["conv", "concat"] and g.nodes[1].inputs[0] == g.input


@pytest.mark.parametrize(("axis", "msg"), [
    (2, r"attribute 'axis' = 2 \(of rank 4\) is not supported; supported: the channel axis \(1, or -3\)"),
    (0, r"attribute 'axis' = 0 \(of rank 4\) is not supported"),
    (5, r"attribute 'axis' = 5 is out of range for rank 4"),
])
def test_other_axes_are_refused_by_name(axis, msg):
    n = Net((2, 4, 4), 13)
    c = n.conv("x", 2, 2, pads=[1, 1, 1, 1])
    m = n.model(n.node("Concat", ["x", c], axis=axis, name="/cat"), infer=axis != 5)
    with pytest.raises(ModelError, match=r"node '/cat' \(Concat\): " + msg):
        from_model(m)


def test_constant_input_and_mismatched_shapes_are_refused():
    n = Net((2, 4, 4), 13)
    m = n.model(n.node("Concat", ["x", n.rand(1, 1, 4, 4)], axis=1, name="/cat"))
    with pytest.raises(ModelError, match=r"node '/cat' \(Concat\): input 'c\d+' is a constant; supported: Concat of "
                                         r"computed tensors along channels"):
        from_model(m)
    n = Net((2, 5, 5), 13)
    c = n.conv("x", 2, 2)  # 3x3 valid: 3x3 output
    m = n.model(n.node("Concat", ["x", c], axis=1, name="/cat"), infer=False)
    with pytest.raises(ModelError, match=r"inputs of per-sample shapes \[2, 5, 5\] and \[2, 3, 3\] differ in more than "
                                         r"the channel axis"):
        from_model(m)
