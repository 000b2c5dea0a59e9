"""Resize / Upsample nearest by integer factors: ONNX import against onnxruntime in the coordinate
modes that replicate pixels, by scales and by sizes; clear errors for the others."""

from __future__ import annotations

import numpy as np
import pytest
from models_onnx import Net
from test_frontend import check_against_ort

from fpgagen.errors import ModelError
from fpgagen.frontend.onnx import from_model
from fpgagen.ops.resize import ResizeParams
from fpgagen.ops.resize import source_index


def resize(n: Net, x, scales=None, sizes=None, **attrs):
    if n.opset < 11:
        return n.node("Resize", [x, n.const(scales)], mode="nearest", **attrs)
    ins = [x, "", n.const(scales) if scales is not None else ""]
    if sizes is not None:
        ins.append(n.const(sizes, dtype=np.int64))
    return n.node("Resize", ins, mode="nearest", **attrs)


def m_scales(opset, mode=None, nearest=None, scales=(1, 1, 2, 3)):
    n = Net((2, 3, 4), opset)
    attrs = {}
    if mode:
        attrs["coordinate_transformation_mode"] = mode
    if nearest:
        attrs["nearest_mode"] = nearest
    return n.model(n.conv(resize(n, n.conv("x", 2, 3, pads=[1, 1, 1, 1]), scales=scales, **attrs), 3, 2))


def m_sizes(opset):
    n = Net((2, 3, 4), opset)
    return n.model(resize(n, n.relu(n.conv("x", 2, 3, pads=[1, 1, 1, 1])), sizes=(1, 3, 9, 8)))


def m_upsample(opset):
    n = Net((2, 3, 3), opset)
    c = n.conv("x", 2, 2, pads=[1, 1, 1, 1])
    if opset < 9:
        u = n.node("Upsample", [c], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])
    else:
        u = n.node("Upsample", [c, n.const([1, 1, 2, 2])], mode="nearest")
    return n.model(u)


REPLICATING = [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
               ("pytorch_half_pixel", "round_prefer_floor"), ("tf_half_pixel_for_nn", "floor"), (None, None)]


@pytest.mark.parametrize(("mode", "nearest"), REPLICATING)
def test_replicating_modes_match_onnxruntime(mode, nearest):
    g = check_against_ort(m_scales(13, mode, nearest))
    assert [x.params for x in g.nodes if x.op == "resize"] == [ResizeParams((2, 3))]


@pytest.mark.parametrize("opset", [10, 13, 19, 21])
def test_by_scales_and_sizes_across_opsets(opset):
    check_against_ort(m_scales(opset))
    if opset >= 11:
        g = check_against_ort(m_sizes(opset), batches=(1,))  # sizes fix the batch of the export (1)
        assert [x.params for x in g.nodes if x.op == "resize"] == [ResizeParams((3, 2))]


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset):
    g = check_against_ort(m_upsample(opset))
    assert [x.params for x in g.nodes if x.op == "resize"] == [ResizeParams((2, 2))]


def test_a_1d_map_upsamples_along_its_width():
    n = Net((2, 5), 13)
    g = check_against_ort(n.model(resize(n, n.conv("x", 2, 2, k=(3,), pads=[1, 1]), scales=(1, 1, 3))))
    assert [x.params for x in g.nodes if x.op == "resize"] == [ResizeParams((1, 3))]


@pytest.mark.parametrize(("mode", "nearest", "scales"), [
    ("asymmetric", "round_prefer_floor", (1, 1, 3, 3)), ("align_corners", "round_prefer_floor", (1, 1, 3, 3)),
    ("asymmetric", "ceil", (1, 1, 2, 2)), ("half_pixel", "floor", (1, 1, 2, 2)),
])
def test_modes_that_do_not_replicate_are_named(mode, nearest, scales):
    with pytest.raises(ModelError, match=rf"\(Resize\): axis 2 from \d+ to \d+ with coordinate_transformation_mode "
                                         rf"'{mode}' and nearest_mode '{nearest}' is not a replication of every pixel"):
        from_model(m_scales(13, mode, nearest, scales))


def test_other_resizes_are_refused_by_name():
    n = Net((2, 4, 4), 13)
    m = n.model(resize(n, "x", scales=(1, 1, 1.5, 1.5)))
    with pytest.raises(ModelError, match="not a replication of every pixel by an integer factor"):
        from_model(m)
    n = Net((2, 4, 4), 13)
    m = n.model(resize(n, "x", scales=(1, 2, 2, 2)))
    with pytest.raises(ModelError, match=r"scales = \[1.0, 2.0, 2.0, 2.0\] resizes the batch or channel axis"):
        from_model(m)
    n = Net((2, 4, 4), 13)
    m = n.model(n.node("Resize", ["x", "", n.const([1, 1, 2, 2])], mode="linear"))
    with pytest.raises(ModelError, match=r"attribute 'mode' = 'linear' is not supported; supported: 'nearest'"):
        from_model(m)


def test_source_index_is_onnx_reference_rule():
    # half_pixel + round_prefer_floor at factor 2: -0.25, 0.25, 0.75, 1.25 -> 0, 0, 1, 1
    assert source_index(4, 2, 2.0, "half_pixel", "round_prefer_floor").tolist() == [0, 0, 1, 1]
    assert source_index(6, 2, 3.0, "asymmetric", "round_prefer_floor").tolist() == [0, 0, 1, 1, 1, 1]
