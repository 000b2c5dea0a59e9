"""Pad with constant 0: ONNX import against onnxruntime (opsets 2-style attributes and 11+ inputs),
merged into the next conv's padding where that is exact, else a layer of its own."""

from __future__ import annotations

import numpy as np
import pytest
from models_onnx import Net
from test_frontend import check_against_ort

from fpgagen.errors import ModelError
from fpgagen.frontend.onnx import from_model
from fpgagen.ops.pad import PadParams


def pad(n: Net, x, pads, value=None, mode=None, axes=None):
    attrs = {} if mode is None else {"mode": mode}
    if n.opset < 11:
        return n.node("Pad", [x], pads=list(pads), **attrs, **({} if value is None else {"value": value}))
    ins = [x, n.const(pads, dtype=np.int64)]
    if value is not None or axes is not None:
        ins.append(n.const(value or 0.0) if value is not None else "")
    if axes is not None:
        ins.append(n.const(axes, dtype=np.int64))
    return n.node("Pad", ins, **attrs)


def m_before_conv(opset):
    n = Net((2, 5, 6), opset)
    return n.model(n.conv(pad(n, n.relu(n.conv("x", 2, 3)), [0, 0, 1, 0, 0, 0, 0, 2]), 3, 2, strides=[2, 2]))


def m_before_pool(opset):
    n = Net((2, 5, 6), opset)
    p = pad(n, n.conv("x", 2, 3), [0, 0, 2, 1, 0, 0, 0, 3])
    return n.model(n.node("MaxPool", [p], kernel_shape=[2, 2], strides=[2, 2]))


def m_of_input_at_output(opset):
    n = Net((2, 4, 4), opset)
    return n.model(pad(n, "x", [0, 0, 1, 2, 0, 0, 3, 0]))


@pytest.mark.parametrize("opset", [7, 11, 13, 18, 21])
@pytest.mark.parametrize("build", [m_before_conv, m_before_pool, m_of_input_at_output], ids=lambda f: f.__name__[2:])
def test_float_matches_onnxruntime(build, opset):
    check_against_ort(build(opset))


def test_merged_into_the_conv_or_a_layer():
    g = from_model(m_before_conv(13))
    assert [x.op for x in g.nodes] == ["conv", "conv"]
    assert g.nodes[1].params.pads == (1, 0, 0, 2) and g.nodes[1].onnx_nodes[-1].endswith("/Pad")
    g = from_model(m_before_pool(13))  # a zero pad is not a max pool's padding (which never wins): a layer
    assert [(x.op, x.params) for x in g.nodes][1] == ("pad", PadParams((2, 1, 0, 3)))
    assert [x.op for x in g.nodes] == ["conv", "pad", "maxpool"]
    g = from_model(m_of_input_at_output(13))
    assert [(x.op, x.params) for x in g.nodes] == [("pad", PadParams((1, 2, 3, 0)))]


def test_axes_input_of_opset_18():
    n = Net((2, 4, 4), 18)
    g = check_against_ort(n.model(pad(n, n.conv("x", 2, 2), [1, 2, 0, 1], axes=[2, 3])))
    assert [x.params for x in g.nodes if x.op == "pad"] == [PadParams((1, 2, 0, 1))]


@pytest.mark.parametrize(("kwargs", "msg"), [
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"),
     r"attribute 'mode' = 'reflect' is not supported; supported: 'constant' \(zeros\)"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], value=1.5), r"constant_value = 1.5 is not supported; supported: 0"),
    (dict(pads=[0, 0, -1, 0, 0, 0, 0, 0]), r"has negative values \(a crop\); supported: pads >= 0"),
    (dict(pads=[0, 1, 0, 0, 0, 0, 0, 0]), r"pads the batch or channel axis; supported: spatial axes only"),
])
def test_unsupported_pads_are_named(kwargs, msg):
    n = Net((2, 4, 4), 13)
    m = n.model(pad(n, "x", **kwargs), infer=False)
    with pytest.raises(ModelError, match=r"\(Pad\): (pads = \[[-0-9, ]+\] )?" + msg):
        from_model(m)
