"""``resize``: nearest-neighbour upsampling by integer factors (ONNX Resize, Upsample).

Supported where the ONNX coordinate rule amounts to pixel replication,
``y[c, i, j] = x[c, i // fh, j // fw]``: the import evaluates ONNX's own coordinate transform and
nearest rounding for every output index and accepts the node only when they give exactly that
map (e.g. ``asymmetric`` + ``floor``, ``half_pixel`` + ``round_prefer_floor``, Upsample); any
other combination is an error naming the attributes. Exact: the output format is the input's.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from fpgagen.ops.registry import ExactOp, register

COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize_nearest(x: np.ndarray, factors) -> np.ndarray:
    """The op's kernel (float and golden integer alike): nearest-neighbour upsampling of
    ``[N, C, H, W]`` by integer factors ``(fh, fw)``, each pixel replicated."""
    fh, fw = factors
    return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)


def source_index(out_len: int, in_len: int, scale: float, mode: str, nearest: str) -> np.ndarray:
    """ONNX Resize's nearest input index of every output index along one axis (the reference rule)."""
    i = np.arange(out_len, dtype=np.float64)
    if mode == "half_pixel":
        x = (i + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        adjustment = out_len / (scale * in_len)
        x = in_len / 2 * (1 - adjustment) + (i + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = (i + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(i)
    elif mode == "align_corners":
        x = i * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(i)
    elif mode == "asymmetric":
        x = i / scale
    else:  # tf_half_pixel_for_nn
        x = (i + 0.5) / scale
    if nearest == "floor":
        r = np.floor(x)
    elif nearest == "ceil":
        r = np.ceil(x)
    elif nearest == "round_prefer_floor":
        r = np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x))
    else:
        r = np.where(x - np.floor(x) == 0.5, np.ceil(x), np.round(x))
    return np.clip(r, 0, in_len - 1).astype(np.int64)


@dataclass(frozen=True)
class ResizeParams:
    """Nearest upsampling: every pixel replicated ``factors = (fh, fw)`` times."""

    factors: tuple[int, int]


@register
class Resize(ExactOp):
    name = "resize"
    params_type = ResizeParams
    needs_params = True
    onnx_ops = ("Resize", "Upsample")

    def import_onnx(self, im, node, index, t, attrs):
        im.need_layout(node, index, t, (2, 3), "Resize needs a feature map (C, W) or (C, H, W)")
        rank = len(t.shape) + 1
        if node.op_type == "Upsample":
            im.check_attrs(node, index, attrs, ("mode", "scales"))
            scales = attrs.get("scales") if im.opset < 9 else im.need_const(node, index, 1, "scales")
            if scales is None:
                raise im.err(node, index, "attribute 'scales' is missing")
            mode, nearest, sizes = "asymmetric", "floor", None
            method = attrs.get("mode", "nearest")
        else:
            im.check_attrs(node, index, attrs, ("mode", "coordinate_transformation_mode", "nearest_mode",
                                                "cubic_coeff_a", "exclude_outside", "extrapolation_value",
                                                "antialias", "axes", "keep_aspect_ratio_policy"))
            method = attrs.get("mode", "nearest")
            if im.opset < 11:
                scales, sizes = im.need_const(node, index, 1, "scales"), None
                mode, nearest = "asymmetric", "floor"
            else:
                scales = im.opt_const(node, index, 2, "scales")
                sizes = im.opt_const(node, index, 3, "sizes")
                mode = attrs.get("coordinate_transformation_mode", "half_pixel")
                nearest = attrs.get("nearest_mode", "round_prefer_floor")
            if scales is not None and np.size(scales) == 0:
                scales = None
            if sizes is not None and np.size(sizes) == 0:
                sizes = None
            policy = attrs.get("keep_aspect_ratio_policy", "stretch")
            if sizes is not None and policy != "stretch":
                raise im.err(node, index, f"attribute 'keep_aspect_ratio_policy' = {policy!r} is not supported; "
                                          f"supported: 'stretch'")
            if (scales is None) == (sizes is None):
                raise im.err(node, index, "exactly one of 'scales' (input 2) and 'sizes' (input 3) must be given")
        if method != "nearest":
            raise im.err(node, index, f"attribute 'mode' = {method!r} is not supported; supported: 'nearest'")
        if mode not in COORDINATE_MODES:
            raise im.err(node, index, f"attribute 'coordinate_transformation_mode' = {mode!r} is not supported; "
                                      f"supported: {', '.join(COORDINATE_MODES)} (where they replicate pixels)")
        if nearest not in NEAREST_MODES:
            raise im.err(node, index, f"attribute 'nearest_mode' = {nearest!r} is not valid")
        axes = [int(a) % rank for a in attrs.get("axes", range(rank))]
        given = np.asarray(scales if sizes is None else sizes, np.float64).reshape(-1)
        if len(given) != len(axes):
            raise im.err(node, index, f"{'scales' if sizes is None else 'sizes'} has {len(given)} values for "
                                      f"{len(axes)} axes")
        full_in = (1, *t.shape)  # the batch is not resized
        scale = [1.0] * rank
        out = list(full_in)
        for axis, v in zip(axes, given):
            if sizes is None:
                scale[axis], out[axis] = float(v), int(math.floor(full_in[axis] * float(v)))
            else:
                out[axis] = int(v)
                scale[axis] = out[axis] / full_in[axis]
        if out[0] != 1 or out[1] != t.shape[0]:
            what = "scales" if sizes is None else "sizes"
            raise im.err(node, index, f"{what} = {given.tolist()} resizes the batch or channel axis; supported: "
                                      f"the spatial axes only")
        factors = []
        for axis in range(2, rank):
            f = out[axis] / full_in[axis]
            src = source_index(out[axis], full_in[axis], scale[axis], mode, nearest)
            if f != int(f) or f < 1 or not np.array_equal(src, np.arange(out[axis]) // int(f)):
                raise im.err(node, index, f"axis {axis} from {full_in[axis]} to {out[axis]} with "
                                          f"coordinate_transformation_mode {mode!r} and nearest_mode {nearest!r} is not "
                                          f"a replication of every pixel by an integer factor; supported: nearest "
                                          f"upsampling by integer factors (e.g. asymmetric + floor, half_pixel + "
                                          f"round_prefer_floor)")
            factors.append(int(f))
        factors = (1, *factors) if rank == 3 else tuple(factors)
        im.emit(node, index, "resize", [t], (t.shape[0], *out[2:]), params=ResizeParams(tuple(factors)))

    def kernel(self, x, params):
        return resize_nearest(x, params.factors)
