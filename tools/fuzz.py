#!/usr/bin/env python3
"""Random-network differential tester for fpgagen (issue 11 item 5).

Each seed gives one random, valid ONNX network (onnx.helper, opsets 7-21) with calibration data
and a YAML build config. For each net:

1. the model must pass ``onnx.checker`` (full check) and run in onnxruntime (else the generator
   is wrong: class ``invalid``);
2. fpgagen's float executor must agree with onnxruntime (the only comparison with a tolerance);
3. for every target, ``fpgagen.verify(config, targets=[target])`` must find the golden integers
   equal to the target's (bit-exact, fpgagen's own verifier).

Each target ends in one class: ``pass``, ``mismatch`` (VerificationMismatch: exit 1),
``rejected`` (an FpgagenError: exit 2; checked against :data:`DOCUMENTED` - the documented
unsupported features - and :data:`KNOWN_BUGS`; any other rejection is a finding), ``crash`` (any
other exception: a traceback) or ``hang`` (the worker overran ``--timeout``).

Usage::

    python tools/fuzz.py --seeds 0:100 --targets c hls [--jobs 1] [--timeout 120] [--out DIR]
    python tools/fuzz.py --reduce 17 --targets c [--out DIR]    # minimal reproducer of seed 17
    python tools/fuzz.py --show 17                               # print the net of seed 17

Every net runs in its own worker process (``--worker CASE_DIR``), so a hang is killed and a
crash cannot take the run down. Results go to ``OUT/results.jsonl`` (one line per net); the
summary table counts classes per target and nets/hour per target (the wall time of that
target's ``fpgagen verify``, worker start-up excluded).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("c", "hls", "verilog")
#: generator profiles: "small" (the default; what CI runs), "wide" (3x the channels, sizes, 10 layers)
#: and "ops" (small nets that also use LeakyRelu, Concat, Resize and Pad)
PROFILES = ("small", "wide", "ops")
CLASSES = ("pass", "mismatch", "crash", "hang", "rejected")

# -- what a rejection may be ---------------------------------------------------------------------
#: Documented unsupported features (README "What it supports", the importer's SUPPORTED_OPS and
#: attribute checks, the parallelism rules): a rejection whose message matches one of these is
#: expected. The generator avoids all of them on purpose, so in practice none should appear.
DOCUMENTED = [
    ("dilations other than 1", r"attribute 'dilations' = .* is not supported"),
    ("opset outside 7-21", r"opset \d+ is not supported"),
    ("an op outside SUPPORTED_OPS", r"op \S+ is not supported; supported ops"),
    ("Clip other than Clip(0, k)", r"Clip\(min=.*\) is not supported"),
    ("more than 3 per-sample axes", r"supported: rank 1 \(vector\), 2 \(C, W\) or 3 \(C, H, W\)"),
    ("a model bigger than hardware.memory_bits", r"memory_bits"),
    ("a Transpose that moves data", r"moves data, not only the layout"),
    ("a Relu/Clip of a vector other layers also read", r"so that vector must feed only the activation"),
    ("a Reshape that mixes samples", r"does not keep the batch axis first"),
]
#: Known open bugs (issue 11 item 4), by (name, targets it applies to, regex on the message).
#: A hit is reported as ``known:<name>``, not as a new finding; the CI slice xfails such seeds.
KNOWN_BUGS: list[tuple[str, tuple[str, ...] | None, str]] = []
#: (every bug of issue 11 item 4 is fixed: C unsigned weights and word lengths above 8, Relu after a
#: MaxPool or of the model input, the Add of a flattened map and a dense output, a model with no
#: layers, AveragePool ceil_mode + count_include_pad, the verifier's IndexError on early-finishing
#: designs, the Verilog trailing Flatten; each has its regression test)


def classify_rejection(target: str | None, message: str) -> str:
    """``documented:<feature>``, ``known:<bug>`` or ``finding`` (for crashes and mismatches, the
    message is the traceback or a description of the net)."""
    for name, rx in DOCUMENTED:
        if re.search(rx, message):
            return f"documented:{name}"
    return known_bug(target, message)


def known_bug(target: str | None, message: str) -> str:
    """``known:<bug>`` when ``message`` matches a known open bug on ``target``, else ``finding``."""
    for name, targets, rx in KNOWN_BUGS:
        if (targets is None or target in targets) and re.search(rx, message):
            return f"known:{name}"
    return "finding"


# -- the generator ---------------------------------------------------------------------------------
def _loguniform(rng, lo, hi) -> float:
    return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))


def _pick(rng, options, weights=None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _post(rng) -> dict:
    """What follows a conv/dense: BN, bias Add, an activation."""
    return {
        "bn": bool(rng.random() < 0.2),
        "act": _pick(rng, [None, "relu", "clip"], [0.35, 0.5, 0.15]),
        "clip_hi": float(_pick(rng, [1.0, 6.0, 0.5, 3.0])),
        "wscale": _loguniform(rng, 1e-3, 1e2) if rng.random() < 0.3 else None,
    }


def _window(rng, pool: bool, opset: int) -> dict:
    k = [int(_pick(rng, [1, 2, 3, 3, 5])), int(_pick(rng, [1, 2, 3, 3]))]
    if rng.random() < 0.6:
        k[0] = k[1]
    s = [int(_pick(rng, [1, 1, 2, 3]))] * 2
    if rng.random() < 0.2:
        s[1] = int(_pick(rng, [1, 2]))
    pad = _pick(rng, ["none", "sym", "asym", "SAME_UPPER", "SAME_LOWER", "VALID"], [3, 2, 2, 1, 1, 1])
    d = {"k": k, "s": s, "pad": pad, "pads": [int(x) for x in rng.integers(0, 3, 4)]}
    if pool:
        d["ceil"] = bool(opset >= 10 and pad in ("none", "sym", "asym") and rng.random() < 0.35)
    return d


def _layer(rng, kind: str, opset: int, act_ok: bool, from_flatten: bool, wide: int = 1, new_ops: bool = False) -> dict:
    if kind == "vec":
        ops = ["gemm", "matmul", "resdense", "layout", "identity", "act"]
        w = [5, 3, 0.3 if from_flatten else 1.2, 0.8, 0.5, 0.6 if act_ok else 0.1]
        if new_ops:
            ops, w = ops + ["leaky", "catdense"], w + [1.5, 1.5]
    else:
        ops = ["conv", "maxpool", "avgpool", "gap", "resconv", "flatten", "layout", "identity", "act"]
        w = [5, 1.5, 1.5, 0.4, 1.0, 1.2, 0.8, 0.4, 0.6 if act_ok else 0.1]
        if new_ops:
            ops, w = ops + ["leaky", "catconv", "catinput", "resize", "pad"], w + [1.5, 1.2, 0.6, 1.2, 1.2]
    op = _pick(rng, ops, w)
    d: dict = {"op": op}
    if new_ops:
        d["leaky_post"] = bool(rng.random() < 0.3)
        d["alpha"] = float(_pick(rng, [0.1, 0.01, 0.2, 0.25, -0.3, 1.5]))
    if op in ("conv", "resconv"):
        d.update(_window(rng, False, opset))
        d["co"] = int(rng.integers(1, 6 * wide + 1))
        d["groups"] = _pick(rng, ["1", "dw", "g"], [6, 2, 2])
        d["g"] = int(_pick(rng, [2, 3]))
        d["mult"] = int(_pick(rng, [1, 1, 2]))
        d["bias"] = _pick(rng, ["input", "add", "none"], [6, 2, 1])
        d["post"] = _post(rng)
        d["res_act"] = bool(rng.random() < 0.5)
        d["swap"] = bool(rng.random() < 0.5)
    elif op in ("maxpool", "avgpool"):
        d.update(_window(rng, True, opset))
        d["cip"] = bool(rng.random() < 0.4)
    elif op in ("gemm", "matmul", "resdense"):
        d["m"] = int(rng.integers(1, 12 * wide + 1))
        d["transA"] = bool(rng.random() < 0.12)
        d["transB"] = bool(rng.random() < 0.5)
        d["alpha"] = float(_pick(rng, [1.0, 1.0, 0.5, 2.0, 0.3]))
        d["beta"] = float(_pick(rng, [1.0, 1.0, 0.5, 2.0, 0.0]))
        d["cform"] = _pick(rng, ["m", "1m", "scalar", "none"], [5, 2, 1, 1])
        d["bias"] = _pick(rng, ["add", "none"], [3, 1])
        d["post"] = _post(rng)
        d["res_act"] = bool(rng.random() < 0.5)
        d["swap"] = bool(rng.random() < 0.5)
    elif op == "flatten":
        d["how"] = _pick(rng, ["flatten", "reshape0", "reshape-1", "shape", "flatten-neg"])
    elif op == "layout":
        d["how"] = _pick(rng, ["reshape_same", "unsq_sq", "transpose_id", "to_img"] if kind != "vec"
                         else ["reshape_same", "unsq_sq", "flatten_vec"])
    elif op == "identity":
        d["how"] = _pick(rng, ["Identity", "Dropout"])
    elif op == "act":
        d["act"] = _pick(rng, ["relu", "clip"])
        d["clip_hi"] = float(_pick(rng, [1.0, 6.0, 2.0]))
    elif op in ("catconv", "catdense", "catinput"):
        d["co"] = d["m"] = int(rng.integers(1, 6 * wide + 1))
        d["first"] = bool(rng.random() < 0.5)
        d["post"] = _post(rng)
    elif op == "resize":
        d["f"] = [int(_pick(rng, [1, 2, 2, 3])), int(_pick(rng, [1, 2, 2, 3]))]
        d["how"] = _pick(rng, ["scales", "sizes", "upsample"], [3, 2, 1])
        d["mode"] = _pick(rng, [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                ("pytorch_half_pixel", "round_prefer_ceil"), ("tf_half_pixel_for_nn", "floor"), None])
    elif op == "pad":
        d["pads"] = [int(x) for x in rng.integers(0, 3, 4)]
        d["then"] = _pick(rng, ["conv", "maxpool", "none"])
        d.update(_window(rng, False, opset))
    return d


def generate(seed: int, profile: str = "small") -> dict:
    """The spec of net ``seed``: a JSON-able dict that :func:`build_model` turns into ONNX.

    A spec states intents (kernel, stride, channels, ...); the builder clamps them to what fits the
    shape it meets, so that removing or simplifying any layer (delta debugging) still gives a valid net.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    rng = np.random.default_rng([seed, 20261202] if profile == "small" else [seed, 20261202, PROFILES.index(profile)])
    wide = 3 if profile == "wide" else 1
    new_ops = profile == "ops"
    opset = int(_pick(rng, list(range(7, 22)), [1] * 6 + [2] * 7 + [1, 1]))
    kind = _pick(rng, ["img", "seq", "vec"], [5, 2, 2])
    if kind == "img":
        shape = [int(rng.integers(1, 4 * wide + 1)), int(rng.integers(3, 8 + 3 * wide)), int(rng.integers(3, 8 + 3 * wide))]
    elif kind == "seq":
        shape = [int(rng.integers(1, 4 * wide + 1)), int(rng.integers(4, 16 * wide + 1))]
    else:
        shape = [int(rng.integers(2, 16 * wide + 1))]
    layers = []
    act_ok, from_flatten, k = False, False, kind
    for _ in range(int(rng.integers(1, 7 if wide == 1 else 11))):
        lay = _layer(rng, k, opset, act_ok, from_flatten, wide, new_ops)
        layers.append(lay)
        op = lay["op"]
        from_flatten = op == "flatten"
        if op == "flatten":
            k = "vec"
        if op in ("conv", "resconv", "gemm", "matmul", "resdense", "avgpool", "gap", "catconv", "catinput",
                  "catdense", "leaky"):
            act_ok = True
        elif op in ("maxpool", "flatten", "layout", "identity", "act"):
            pass
    wl = 8 if rng.random() < 0.4 else int(rng.integers(4, 17))
    spec = {
        "seed": seed,
        "opset": opset,
        "batch": _pick(rng, ["N", 1], [3, 2]),
        "input": shape,
        "layers": layers,
        "softmax": _pick(rng, [None, "Softmax", "LogSoftmax"], [6, 2, 1]),
        "softmax_axis": _pick(rng, [None, 1, -1]),
        "wscale": _loguniform(rng, 1e-3, 1e2) if rng.random() < 0.5 else 1.0,
        "data": _pick(rng, ["normal", "uniform", "zero", "const", "extreme", "sparse"], [5, 2, 1, 1, 1, 1]),
        "data_scale": _loguniform(rng, 1e-2, 1e2),
        "word_length": wl,
        "method": _pick(rng, ["mse", "max", "coverage"]),
        "pe": int(_pick(rng, [1, 2, 3, 4, 8])),
        "simd": int(_pick(rng, [1, 2, 4, 8, 16])),
        "par_layers": float(_pick(rng, [0.0, 0.0, 0.5, 1.0])),
        "samples": 6,
        "profile": profile,
    }
    return spec


# -- spec -> ONNX --------------------------------------------------------------------------------------
class _Builder:
    """Writes ONNX nodes while tracking the per-sample shape of the current tensor."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.opset = spec["opset"]
        self.rng = np.random.default_rng([spec["seed"], 7])
        self.nodes = []
        self.inits = []
        self.count = 0
        self.cur = "x"
        self.shape = tuple(spec["input"])
        self.act_ok = False  # an activation here fuses (its input comes from a quantizing layer)

    # -- primitives
    def const(self, value, dtype=np.float32) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weights(self, shape, fan_in: int, scale: float | None) -> str:
        s = (scale if scale is not None else self.spec["wscale"]) / math.sqrt(max(fan_in, 1))
        return self.const(self.rng.standard_normal(shape) * s)

    def node(self, op: str, inputs, **attrs) -> str:
        from onnx import helper

        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=f"{op.lower()}{self.count}", **attrs))
        return out

    def axes(self, op: str, x: str, axes) -> str:
        if self.opset < 13:
            return self.node(op, [x], axes=list(axes))
        return self.node(op, [x, self.const(list(axes), np.int64)])

    @property
    def kind(self) -> str:
        return {1: "vec", 2: "seq", 3: "img"}[len(self.shape)]

    # -- windows
    def window_attrs(self, lay: dict, pool: bool) -> tuple[dict, tuple[int, ...]]:
        """ONNX attributes of a conv/pool window clamped to the current shape, and the output size."""
        spatial = self.shape[1:]
        nd = len(spatial)
        k = list(lay["k"][-nd:])
        s = list(lay["s"][-nd:])
        mode = lay["pad"]
        raw = lay["pads"]
        if mode in ("SAME_UPPER", "SAME_LOWER"):  # onnxruntime computes negative pads when k < s
            s = [min(a, b) for a, b in zip(s, k)]
        if mode == "none":
            begin, end = [0] * nd, [0] * nd
        elif mode == "sym":
            begin = [raw[i] for i in range(nd)]
            end = list(begin)
        elif mode == "asym":
            begin, end = [raw[i] for i in range(nd)], [raw[2 + i] for i in range(nd)]
        else:
            begin = end = None
        attrs: dict = {"kernel_shape": None}
        out = []
        for i in range(nd):
            size = spatial[i]
            if begin is not None:
                begin[i] = min(begin[i], k[i] - 1)  # onnxruntime wants pads smaller than the kernel
                end[i] = min(end[i], k[i] - 1)
                if k[i] > size + begin[i] + end[i]:
                    k[i] = max(size + begin[i] + end[i], 1)
                    begin[i], end[i] = min(begin[i], k[i] - 1), min(end[i], k[i] - 1)
                    k[i] = min(k[i], size + begin[i] + end[i])
            elif mode == "VALID":
                k[i] = min(k[i], size)
        for i in range(nd):
            if begin is not None:
                span = spatial[i] + begin[i] + end[i] - k[i]
                o = span // s[i] + 1
                if pool and lay.get("ceil"):
                    o = -(-span // s[i]) + 1
                    if (o - 1) * s[i] >= spatial[i] + begin[i]:
                        # the last window would start in the end padding: onnx's shape inference
                        # keeps it, onnxruntime drops it; no valid model has it, so no ceil_mode here
                        return self.window_attrs({**lay, "ceil": False}, pool)
            elif mode == "VALID":
                o = (spatial[i] - k[i]) // s[i] + 1
            else:
                o = -(-spatial[i] // s[i])
            out.append(o)
        attrs["kernel_shape"] = k
        if pool and lay.get("ceil"):
            attrs["ceil"] = True
        if any(x != 1 for x in s):
            attrs["strides"] = s
        if begin is not None:
            if mode != "none" or lay["s"][0] == 2:
                attrs["pads"] = begin + end
        else:
            attrs["auto_pad"] = mode
        return attrs, tuple(out)

    # -- layers
    def post(self, p: dict, y: str, channels: int, conv: bool) -> str:
        rank = len(self.shape)
        if p["bn"]:
            c = channels
            parts = [self.rng.uniform(0.5, 1.5, c), self.rng.standard_normal(c), self.rng.standard_normal(c) * 0.3,
                     self.rng.uniform(0.5, 2, c)]
            attrs = {"spatial": 1} if self.opset < 9 and rank > 1 else {}
            y = self.node("BatchNormalization", [y, *(self.const(v) for v in parts)], epsilon=1e-3, **attrs)
        if p["act"]:
            y = self.activation(y, p["act"], p["clip_hi"])
        return y

    def new_op(self, lay: dict) -> str:
        """The layers of the "ops" profile: LeakyRelu, Concat, Resize/Upsample, Pad."""
        op, x = lay["op"], self.cur
        if op == "leaky":
            return self.node("LeakyRelu", [x], alpha=lay["alpha"])
        if op in ("catconv", "catdense", "catinput"):
            if op == "catinput" and tuple(self.shape[1:]) == tuple(self.spec["input"][1:]) and len(self.shape) > 1:
                other, c = "x", self.spec["input"][0]
            elif op == "catdense":
                shape = self.shape
                other = self.dense({**lay, "op": "gemm", "transA": False, "transB": True, "alpha": 1.0, "beta": 1.0,
                                    "cform": "m", "bias": "none", "swap": False})
                c, self.shape = self.shape[0], shape
            else:
                shape = self.shape
                other = self.conv({**lay, "k": [3, 3], "s": [1, 1], "pad": "sym", "pads": [1, 1, 1, 1], "groups": "1",
                                   "g": 1, "mult": 1, "bias": "input", "swap": False}, co=lay["co"], same=True)
                c, self.shape = lay["co"], shape
            ins = [other, x] if lay.get("first") else [x, other]
            self.shape = (self.shape[0] + c, *self.shape[1:])
            return self.node("Concat", ins, axis=1 if self.rng.random() < 0.5 else -len(self.shape))
        if op == "resize":
            f = lay["f"][-(len(self.shape) - 1):] if len(self.shape) == 2 else lay["f"]
            full = [1, 1, *f]
            out = tuple(d * k for d, k in zip(self.shape[1:], f))
            if self.opset < 10 or (lay["how"] == "upsample" and self.opset < 10):
                if self.opset < 9:
                    y = self.node("Upsample", [x], mode="nearest", scales=[float(v) for v in full])
                else:
                    y = self.node("Upsample", [x, self.const(full)], mode="nearest")
            elif self.opset < 11:
                y = self.node("Resize", [x, self.const(full)], mode="nearest")
            else:
                attrs = {} if lay["mode"] is None else {"coordinate_transformation_mode": lay["mode"][0],
                                                        "nearest_mode": lay["mode"][1]}
                if lay["how"] == "sizes" and self.spec["batch"] == 1:
                    empty = self.const(np.zeros(0)) if self.opset < 13 else ""  # roi, scales required before 13
                    ins = [x, empty, empty, self.const([1, self.shape[0], *out], np.int64)]
                else:
                    ins = [x, self.const(np.zeros(0)) if self.opset < 13 else "", self.const(full)]
                y = self.node("Resize", ins, mode="nearest", **attrs)
            self.shape = (self.shape[0], *out)
            return y
        # pad (then a conv, a max pool or nothing)
        rank = len(self.shape) + 1
        b = [0, 0] + lay["pads"][: rank - 2]
        e = [0, 0] + lay["pads"][2: 2 + rank - 2]
        if self.opset < 11:
            y = self.node("Pad", [x], pads=b + e)
        else:
            y = self.node("Pad", [x, self.const(b + e, np.int64)])
        self.shape = (self.shape[0], *(d + p + q for d, p, q in zip(self.shape[1:], b[2:], e[2:])))
        self.cur = y
        if lay["then"] == "conv":
            return self.conv({**lay, "pad": "none", "groups": "1", "g": 1, "mult": 1, "bias": "input", "swap": False,
                              "co": 3, "post": {"bn": False, "act": None, "clip_hi": 1.0, "wscale": None}})
        if lay["then"] == "maxpool":
            return self.pool({**lay, "op": "maxpool", "pad": "none", "ceil": False, "cip": False})
        return y

    def activation(self, y: str, act: str, hi: float) -> str:
        if act == "relu":
            return self.node("Relu", [y])
        if self.opset < 11:
            return self.node("Clip", [y], min=0.0, max=hi)
        return self.node("Clip", [y, self.const(0.0), self.const(hi)])

    def conv(self, lay: dict, co: int | None = None, same: bool = False) -> str:
        ci = self.shape[0]
        if same:  # a residual branch: output shape = input shape
            k = [kk if kk % 2 else kk + 1 for kk in lay["k"]]
            k = [min(kk, 3) for kk in k]
            lay = {**lay, "k": k, "s": [1, 1], "pad": "SAME_UPPER" if lay["pad"] in ("SAME_UPPER", "SAME_LOWER")
                   else "sym", "pads": [k[0] // 2, k[1] // 2, k[0] // 2, k[1] // 2]}
        co = co or lay["co"]
        g = 1
        if lay["groups"] == "dw":
            g = ci
            co = co if same else ci * lay["mult"]
        elif lay["groups"] == "g":
            g = max(d for d in range(1, min(lay["g"], ci) + 1) if ci % d == 0)
            if co % g:
                if same:
                    g = 1
                else:
                    co = -(-co // g) * g
        if same and co % g:
            g = 1
        attrs, out = self.window_attrs(lay, pool=False)
        if same and out != tuple(self.shape[1:]):  # cannot keep the shape: plain 1x1 conv
            attrs, out = {"kernel_shape": [1] * len(out)}, tuple(self.shape[1:])
        kernel = attrs["kernel_shape"]
        w = self.weights((co, ci // g, *kernel), ci // g * int(np.prod(kernel)), lay["post"]["wscale"])
        ins = [self.cur, w]
        if lay["bias"] == "input":
            ins.append(self.const(self.rng.standard_normal(co) * 0.3))
        if g != 1:
            attrs["group"] = g
        y = self.node("Conv", ins, **attrs)
        self.shape = (co, *out)
        if lay["bias"] == "add":
            b = self.const((self.rng.standard_normal(co) * 0.3).reshape((co,) + (1,) * len(out)))
            y = self.node("Add", [b, y] if lay["swap"] else [y, b])
        return self.post(lay["post"], y, co, conv=True)

    def dense(self, lay: dict, m: int | None = None) -> str:
        k = self.shape[0]
        m = m or lay["m"]
        x = self.cur
        scale = lay["post"]["wscale"]
        if lay["op"] == "matmul":
            y = self.node("MatMul", [x, self.weights((k, m), k, scale)])
            if lay["bias"] == "add":
                b = self.const(self.rng.standard_normal(m) * 0.3)
                y = self.node("Add", [b, y] if lay["swap"] else [y, b])
        else:
            w = self.weights((m, k) if lay["transB"] else (k, m), k, scale)
            attrs = {}
            if lay["transA"]:
                x = self.node("Transpose", [x], perm=[1, 0])
                attrs["transA"] = 1
            if lay["transB"]:
                attrs["transB"] = 1
            if lay["alpha"] != 1.0:
                attrs["alpha"] = lay["alpha"]
            ins = [x, w]
            cform = lay["cform"]
            if cform == "none" and self.opset < 11:
                cform = "m"
            if cform != "none":
                c = self.rng.standard_normal(m) * 0.3
                ins.append(self.const(c.reshape(1, m) if cform == "1m" else (c[:1] if cform == "scalar" else c)))
                if lay["beta"] != 1.0:
                    attrs["beta"] = lay["beta"]
            y = self.node("Gemm", ins, **attrs)
        self.shape = (m,)
        return self.post(lay["post"], y, m, conv=False)

    def pool(self, lay: dict) -> str:
        attrs, out = self.window_attrs(lay, pool=True)
        if lay.get("ceil") and attrs.pop("ceil", False):
            attrs["ceil_mode"] = 1
        op = "MaxPool" if lay["op"] == "maxpool" else "AveragePool"
        if op == "AveragePool" and lay["cip"]:
            attrs["count_include_pad"] = 1
        y = self.node(op, [self.cur], **attrs)
        self.shape = (self.shape[0], *out)
        return y

    def flatten(self, how: str) -> str:
        x, n = self.cur, int(np.prod(self.shape))
        if how == "flatten-neg" and self.opset >= 11:  # negative axes from opset 11
            y = self.node("Flatten", [x], axis=-len(self.shape))
        elif how in ("flatten", "flatten-neg"):
            y = self.node("Flatten", [x], axis=1)
        elif how == "reshape0":
            y = self.node("Reshape", [x, self.const([0, -1], np.int64)])
        elif how == "reshape-1":
            y = self.node("Reshape", [x, self.const([-1, n], np.int64)])
        else:  # PyTorch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape
            shp = self.node("Shape", [x])
            b = self.node("Gather", [shp, self.const(0, np.int64)], axis=0)
            b1 = self.axes("Unsqueeze", b, [0])
            cat = self.node("Concat", [b1, self.const([-1], np.int64)], axis=0)
            y = self.node("Reshape", [x, cat])
        self.shape = (n,)
        return y

    def layout(self, how: str) -> str:
        x, rank = self.cur, len(self.shape) + 1
        if how == "reshape_same":
            return self.node("Reshape", [x, self.const([0, *self.shape], np.int64)])
        if how == "unsq_sq":
            y = self.axes("Unsqueeze", x, [rank])
            return self.axes("Squeeze", y, [rank])
        if how == "transpose_id":
            return self.node("Transpose", [x], perm=list(range(rank)))
        if how == "flatten_vec":
            return self.node("Flatten", [x], axis=1)
        if how == "to_img":  # (C, W) -> (C, 1, W) and on as an image; (C, 1, W) -> (C, W)
            if len(self.shape) == 2:
                self.shape = (self.shape[0], 1, self.shape[1])
                return self.axes("Unsqueeze", x, [2])
            if self.shape[1] == 1:
                self.shape = (self.shape[0], self.shape[2])
                return self.axes("Squeeze", x, [2])
            return self.node("Identity", [x])
        raise ValueError(how)

    def apply(self, lay: dict) -> None:
        op, kind = lay["op"], self.kind
        vec_ops = ("gemm", "matmul", "resdense")
        map_ops = ("conv", "resconv", "maxpool", "avgpool", "gap", "flatten")
        if (kind == "vec" and op in map_ops) or (kind != "vec" and op in vec_ops):
            return  # not applicable to this shape (after a reduction): skip
        if op == "conv":
            self.cur = self.conv(lay)
        elif op == "resconv":
            skip = self.cur
            y = self.conv(lay, co=self.shape[0], same=True)
            self.cur = self.node("Add", [y, skip] if lay["swap"] else [skip, y])
            if lay["res_act"]:
                self.cur = self.node("Relu", [self.cur])
        elif op in vec_ops:
            if op == "resdense":
                skip = self.cur
                y = self.dense({**lay, "op": "gemm"}, m=self.shape[0])
                self.cur = self.node("Add", [y, skip] if lay["swap"] else [skip, y])
                if lay["res_act"]:
                    self.cur = self.node("Relu", [self.cur])
            else:
                self.cur = self.dense(lay)
        elif op in ("maxpool", "avgpool"):
            self.cur = self.pool(lay)
        elif op == "gap":
            self.cur = self.node("GlobalAveragePool", [self.cur])
            self.shape = (self.shape[0],) + (1,) * (len(self.shape) - 1)
        elif op == "flatten":
            self.cur = self.flatten(lay["how"])
        elif op == "layout":
            self.cur = self.layout(lay["how"])
            return
        elif op == "identity":
            if lay["how"] == "Identity" or self.opset < 12:
                attrs = {"ratio": 0.25} if lay["how"] == "Dropout" else {}
                self.cur = self.node(lay["how"], [self.cur], **attrs)
            else:
                self.cur = self.node("Dropout", [self.cur, self.const(0.3), self.const(False, np.bool_)])
            return
        elif op == "act":
            self.cur = self.activation(self.cur, lay["act"], lay["clip_hi"])
            return
        elif op in ("leaky", "catconv", "catdense", "catinput", "resize", "pad"):
            if (op == "catdense") != (kind == "vec") and op != "leaky":
                return  # not applicable to this shape
            self.cur = self.new_op(lay)
        if lay.get("leaky_post") and op in ("conv", "resconv", "gemm", "matmul", "resdense"):
            self.cur = self.node("LeakyRelu", [self.cur], alpha=lay["alpha"])
        if op not in ("maxpool", "flatten"):  # activations move through these to the layer before
            self.act_ok = True

    def model(self, softmax: bool = True):
        import onnx
        from onnx import TensorProto, helper

        for lay in self.spec["layers"]:
            self.apply(lay)
        if self.cur == "x":  # no node left: one Identity keeps the graph valid
            self.cur = self.node("Identity", ["x"])
        if softmax and self.spec["softmax"] and self.kind == "vec":
            axis = self.spec["softmax_axis"]
            self.cur = self.node(self.spec["softmax"], [self.cur], **({} if axis is None else {"axis": axis}))
        opset = self.opset
        batch = self.spec["batch"]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *self.spec["input"]])
        y = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, None)
        imports = [helper.make_opsetid("", opset)]
        ir = max(helper.find_min_ir_version_for(imports), 3)
        inputs = [x]
        if ir < 4:  # before IR 4 every initializer is also a graph input
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.inits]
        graph = helper.make_graph(self.nodes, f"fuzz{self.spec['seed']}", inputs, [y], self.inits)
        m = helper.make_model(graph, opset_imports=imports, ir_version=ir)
        inferred = onnx.shape_inference.infer_shapes(m)
        m.graph.output[0].CopyFrom(inferred.graph.output[0])
        if not m.graph.output[0].type.tensor_type.HasField("shape"):
            m.graph.output[0].type.tensor_type.shape.SetInParent()
        return m


def build_model(spec: dict, softmax: bool = True):
    """The ONNX model of ``spec`` (``softmax=False``: without the trailing Softmax, for the float check)."""
    return _Builder(spec).model(softmax)


def make_data(spec: dict, n: int = 24) -> np.ndarray:
    rng = np.random.default_rng([spec["seed"], 11])
    shape = (n, *spec["input"])
    s = spec["data_scale"]
    kind = spec["data"]
    if kind == "normal":
        x = rng.standard_normal(shape) * s
    elif kind == "uniform":
        x = rng.uniform(0, s, shape)
    elif kind == "zero":
        x = np.zeros(shape)
    elif kind == "const":
        x = np.full(shape, float(rng.choice([-1, 1])) * s)
    elif kind == "extreme":  # huge and tiny values of both signs
        x = rng.choice([-1e3, 1e3, -1e-4, 1e-4, 0.0], shape) * rng.uniform(0.5, 1, shape)
    else:  # sparse
        x = rng.standard_normal(shape) * s * (rng.random(shape) < 0.1)
    return x.astype(np.float32)


def describe(spec: dict) -> str:
    parts = [f"opset {spec['opset']}", f"batch {spec['batch']}", f"in {spec['input']}",
             f"w{spec['word_length']}", f"pe{spec['pe']}/simd{spec['simd']}", f"data {spec['data']}"]
    layers = []
    for lay in spec["layers"]:
        extra = lay.get("how") or ""
        if "k" in lay:
            extra = f"k{lay['k']} s{lay['s']} {lay['pad']}" + (" ceil" if lay.get("ceil") else "")
        layers.append(f"{lay['op']}({extra})".replace("()", ""))
    if spec["softmax"]:
        layers.append(spec["softmax"])
    return ", ".join(parts) + ": " + " -> ".join(layers or ["(none)"])


# -- one case: files and checks ----------------------------------------------------------------------
def _par_layers(spec: dict, graph) -> dict:
    """Per-layer parallelism (pe, simd; taps for a conv) for a fraction of the conv/dense layers,
    always fitting (divisors; a grouped conv's PE inside one group or over whole groups)."""
    from fpgagen.backends.parallelism import pe_choices

    rng = np.random.default_rng([spec["seed"], 13])
    out = {}
    for node in graph.nodes:
        if node.op not in ("conv", "dense") or rng.random() >= spec["par_layers"]:
            continue
        co = graph.shapes[node.output][0]
        ci = graph.shapes[node.inputs[0]][0]
        groups = node.params.groups if node.op == "conv" else 1
        ins = ci // groups
        divs = lambda n: [d for d in range(1, n + 1) if n % d == 0]  # noqa: E731
        pes = pe_choices(co, groups, whole_groups=True)  # fits every backend
        out[node.name] = {"pe": int(rng.choice(pes)), "simd": int(rng.choice(divs(ins)))}
        if node.op == "conv":  # kernel taps of a row per cycle: a divisor of the kernel width
            out[node.name]["taps"] = int(rng.choice(divs(int(np.asarray(node.weight).shape[-1]))))
    return out


def write_case(spec: dict, case: Path) -> None:
    """model.onnx, model_nosoftmax.onnx, calib.npz, spec.json, config.yaml in ``case``."""
    import onnx
    import yaml

    case.mkdir(parents=True, exist_ok=True)
    (case / "spec.json").write_text(json.dumps(spec, indent=1))
    onnx.save(build_model(spec), str(case / "model.onnx"))
    onnx.save(build_model(spec, softmax=False), str(case / "model_nosoftmax.onnx"))
    np.savez(case / "calib.npz", x=make_data(spec))
    cfg = {
        "name": f"fuzz{spec['seed']}",
        "model": "model.onnx",
        "output": "out",
        "data": {"calibration": "calib.npz"},
        "quantization": {"word_length": spec["word_length"], "method": spec["method"]},
        "targets": [],
        "parallelism": {"pe": spec["pe"], "simd": spec["simd"]},
        "verify": {"samples": spec["samples"]},
    }
    (case / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def add_par_layers(spec: dict, case: Path) -> None:
    import yaml

    import fpgagen

    if not spec["par_layers"]:
        return
    layers = _par_layers(spec, fpgagen.load(case / "model.onnx"))
    if layers:
        cfg = yaml.safe_load((case / "config.yaml").read_text())
        cfg["parallelism"]["layers"] = layers
        (case / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def check_valid(case: Path) -> np.ndarray:
    """onnx.checker and onnxruntime accept the model; returns onnxruntime's output (no Softmax)."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(case / "model.onnx")), full_check=True)
    x = np.load(case / "calib.npz")["x"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    outs = []
    for name in ("model.onnx", "model_nosoftmax.onnx"):
        sess = ort.InferenceSession(str(case / name), opts, providers=["CPUExecutionProvider"])
        batch = sess.get_inputs()[0].shape[0]
        if batch == 1:
            y = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
        else:
            y = sess.run(None, {"x": x})[0]
        outs.append(y)
    return outs[1]


def float_check(case: Path, ref: np.ndarray) -> dict:
    """fpgagen's float executor against onnxruntime (relative tolerance on the output's range)."""
    import fpgagen
    from fpgagen.golden.float_exec import run_float

    graph = fpgagen.load(case / "model.onnx")
    x = np.load(case / "calib.npz")["x"]
    y = np.asarray(run_float(graph, x), np.float64).reshape(len(x), -1)
    r = ref.astype(np.float64).reshape(len(x), -1)
    if y.shape != r.shape:
        return {"ok": False, "error": f"float executor output {y.shape} vs onnxruntime {r.shape}"}
    err = float(np.max(np.abs(y - r))) if y.size else 0.0
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    ok = bool(np.all(np.isfinite(y)) and err <= 1e-4 * max(scale, 1e-3) + 1e-6)
    return {"ok": ok, "max_abs_err": err, "ref_max": scale}


def _signature(exc: BaseException) -> str:
    """A message with names and numbers blanked: failures that reduce must keep it."""
    msg = str(exc).splitlines()[0] if str(exc) else ""
    msg = re.sub(r"'[^']*'", "'_'", msg)
    msg = re.sub(r"\d+", "N", msg)
    return f"{type(exc).__name__}: {msg[:160]}"


def run_case(case: Path, targets: list[str], report: bool = False) -> dict:
    """Every check of one case directory (already written); results also saved to result.json."""
    from fpgagen.errors import FpgagenError, VerificationMismatch

    spec = json.loads((case / "spec.json").read_text())
    res: dict = {"seed": spec["seed"], "desc": describe(spec), "targets": {}}
    path = case / "result.json"

    def save():
        path.write_text(json.dumps(res, indent=1))

    try:
        ref = check_valid(case)
    except Exception as exc:  # the generator built something onnx/onnxruntime refuse
        res["invalid"] = f"{type(exc).__name__}: {exc}"[:2000]
        save()
        return res
    try:
        add_par_layers(spec, case)
        res["float"] = float_check(case, ref)
    except FpgagenError as exc:
        res["import"] = {"class": "rejected", "message": str(exc)[:2000], "signature": _signature(exc),
                         "kind": classify_rejection(None, str(exc))}
    except Exception as exc:
        res["import"] = {"class": "crash", "message": traceback.format_exc()[-4000:], "signature": _signature(exc)}
    save()
    import fpgagen

    if not report:  # the HTML report (heat map: half of a small net's time) is not under test here
        import fpgagen.report.html

        fpgagen.report.html.render_report = lambda out: "<html></html>\n"
    for t in targets:
        r: dict = {"started": time.time()}
        res["targets"][t] = r
        save()
        t0 = time.perf_counter()
        if "import" in res:  # fpgagen could not load the model: every target gets that result
            r.update(res["import"])
        else:
            try:
                out = fpgagen.verify(case / "config.yaml", targets=[t], progress=False)
                r.update({"class": "pass", "samples": out[t]["samples"]})
            except VerificationMismatch as exc:
                graph = fpgagen.load(case / "model.onnx")
                trailing = graph.nodes and graph.nodes[-1].op == "flatten" and graph.nodes[-1].output == graph.output
                what = "mismatch after a trailing flatten" if trailing else "mismatch"
                r.update({"class": "mismatch", "message": str(exc)[:2000], "signature": f"{what} {t}",
                          "kind": known_bug(t, what)})
            except FpgagenError as exc:
                r.update({"class": "rejected", "message": str(exc)[:2000], "signature": _signature(exc),
                          "kind": classify_rejection(t, str(exc))})
            except Exception as exc:
                tb = traceback.format_exc()[-4000:]
                r.update({"class": "crash", "message": tb, "signature": _signature(exc), "kind": known_bug(t, tb)})
        r["seconds"] = round(time.perf_counter() - t0, 3)
        r.pop("started")
        save()
    return res


# -- the driver: workers, summary -------------------------------------------------------------------
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_worker(case: Path, targets: list[str], timeout: float, grace: float = 60.0) -> dict:
    """Run one written case in a fresh process; after ``timeout`` per target (+ ``grace`` for the
    checks before them) it is killed with its whole process group: the target it was running (or
    the first, if none had started) is a ``hang``, the ones after it ``skipped``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(case), "--targets", *(targets or ["float"])]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True, text=True)
    budget = timeout * len(targets) + grace
    try:
        log, _ = proc.communicate(timeout=budget)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        hung = True
    path = case / "result.json"
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):  # killed before (or while) writing it
        res = {"targets": {}}
    blamed = False
    for t in targets:
        r = res["targets"].get(t)
        if r is not None and "class" in r:
            continue
        if hung:
            cls = "skipped" if blamed else "hang"
            blamed = True
            res["targets"][t] = {"class": cls, "seconds": round(time.perf_counter() - t0, 1) if cls == "hang" else 0.0,
                                 "signature": f"{cls} {t}", "message": f"worker killed after {budget:.0f} s"}
        elif "invalid" not in res:
            res["targets"][t] = {"class": "crash", "signature": f"worker died {proc.returncode}",
                                 "message": (log or "")[-4000:], "seconds": 0.0}
    if hung and "float" not in res and "import" not in res and "invalid" not in res and not targets:
        res["hang"] = f"worker killed after {budget:.0f} s"
    res["wall"] = round(time.perf_counter() - t0, 2)
    return res


def run_seed(seed: int, targets: list[str], timeout: float, work: Path, spec: dict | None = None,
             profile: str = "small") -> dict:
    spec = spec or generate(seed, profile)
    case = work / f"seed{seed}"
    write_case(spec, case)
    res = run_worker(case, targets, timeout)
    res.setdefault("seed", seed)
    res.setdefault("desc", describe(spec))
    return res


def is_failure(r: dict) -> bool:
    """A target result that is a finding or a known bug (anything but pass/documented rejection)."""
    return r["class"] not in ("pass", "skipped") and not str(r.get("kind", "")).startswith("documented")


def summarize(results: list[dict], targets: list[str]) -> str:
    rows = []
    head = ["target", "nets", *CLASSES, "rej:doc", "rej:known", "rej:finding", "nets/hour"]
    for t in targets:
        rs = [r["targets"][t] for r in results if t in r.get("targets", {}) and r["targets"][t]["class"] != "skipped"]
        counts = {c: sum(1 for r in rs if r["class"] == c) for c in CLASSES}
        rej = [r.get("kind", "finding") for r in rs if r["class"] == "rejected"]
        secs = sum(r.get("seconds", 0) for r in rs)
        rate = f"{len(rs) / secs * 3600:.0f}" if secs else "-"
        rows.append([t, len(rs), *(counts[c] for c in CLASSES), sum(k.startswith("documented") for k in rej),
                     sum(k.startswith("known") for k in rej), sum(k == "finding" for k in rej), rate])
    invalid = sum(1 for r in results if "invalid" in r)
    fl = [r["float"] for r in results if "float" in r]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [fmt.format(*head), *(fmt.format(*map(str, row)) for row in rows)]
    lines.append(f"nets: {len(results)}; invalid (generator bug): {invalid}; float executor vs onnxruntime: "
                 f"{sum(f['ok'] for f in fl)} of {len(fl)} within tolerance")
    return "\n".join(lines)


def failures(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        if "invalid" in r:
            out.append(f"seed {r['seed']}: invalid net: {r['invalid'][:300]}")
        if "float" in r and not r["float"]["ok"]:
            out.append(f"seed {r['seed']}: float executor vs onnxruntime: {r['float']}")
        for t, x in r.get("targets", {}).items():
            if is_failure(x):
                kind = x.get("kind", "")
                out.append(f"seed {r['seed']} {t}: {x['class']} {kind}: {x.get('message', '')[-300:].strip()}\n"
                           f"    net: {r.get('desc', '')}")
    return out


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":")
            seeds += range(int(a), int(b))
        else:
            seeds.append(int(part))
    return seeds


def run_many(seeds, targets, timeout, out: Path, jobs: int = 1, keep: bool = False, echo=print,
             minutes: float | None = None, profile: str = "small") -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    work = out / "cases"
    results = []
    log = (out / "results.jsonl").open("a")

    stop = None if minutes is None else time.monotonic() + 60 * minutes

    def one(seed):
        if stop is not None and time.monotonic() > stop:
            return None
        res = run_seed(seed, targets, timeout, work, profile=profile)
        if not keep and not any(is_failure(x) for x in res["targets"].values()) and "invalid" not in res:
            import shutil

            shutil.rmtree(work / f"seed{seed}", ignore_errors=True)
        return res

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for res in pool.map(one, seeds):
            if res is None:
                continue
            results.append(res)
            log.write(json.dumps(res) + "\n")
            log.flush()
            cls = " ".join(f"{t}={x['class']}" + (f"({x['kind']})" if x.get("kind") else "")
                           for t, x in res["targets"].items())
            echo(f"seed {res['seed']}: {cls}{' INVALID' if 'invalid' in res else ''}  [{res.get('wall', 0):.1f} s]")
    log.close()
    return results


# -- reduction -------------------------------------------------------------------------------------------
def _failure_key(res: dict, target: str) -> str | None:
    if "invalid" in res:
        return None
    if target == "float":
        return "float" if "float" in res and not res["float"]["ok"] else None
    r = res["targets"].get(target)
    if r is None or not is_failure(r):
        return None
    return f"{r['class']}|{r.get('signature', '')}"


def _candidates(spec: dict):
    """Simpler specs than ``spec``: fewer layers first, then plainer attributes, smaller shapes."""
    layers = spec["layers"]
    n = len(layers)
    chunk = n // 2
    while chunk >= 1:  # delta debugging: drop chunks of layers
        for i in range(0, n, chunk):
            yield {**spec, "layers": layers[:i] + layers[i + chunk:]}
        chunk //= 2
    plain = {"softmax": None, "batch": "N", "opset": 13, "word_length": 8, "method": "mse", "pe": 1, "simd": 1,
             "par_layers": 0.0, "data": "normal", "wscale": 1.0, "data_scale": 1.0, "samples": 2}
    for key, value in plain.items():
        if spec.get(key) != value:
            yield {**spec, key: value}
    shape = spec["input"]
    for i, d in enumerate(shape):
        for smaller in (1, 2, d // 2, d - 1):
            if 1 <= smaller < d:
                yield {**spec, "input": shape[:i] + [smaller] + shape[i + 1:]}
    for i, lay in enumerate(layers):
        simple = {"bias": "input" if lay["op"] in ("conv", "resconv") else "none", "groups": "1", "ceil": False,
                  "cip": False, "pad": "none", "transA": False, "transB": False, "alpha": 1.0, "beta": 1.0,
                  "cform": "m", "swap": False, "res_act": False, "co": 1, "m": 1, "mult": 1}
        for key, value in simple.items():
            if key in lay and lay[key] != value:
                yield {**spec, "layers": layers[:i] + [{**lay, key: value}] + layers[i + 1:]}
        for key in ("k", "s"):
            if key in lay and lay[key] != [1, 1]:
                yield {**spec, "layers": layers[:i] + [{**lay, key: [1, 1]}] + layers[i + 1:]}
        if "post" in lay:
            for key, value in {"bn": False, "act": None, "wscale": None}.items():
                if lay["post"][key] != value:
                    post = {**lay["post"], key: value}
                    yield {**spec, "layers": layers[:i] + [{**lay, "post": post}] + layers[i + 1:]}


def shrink(spec: dict, fails, echo=print) -> tuple[dict, int]:
    """The smallest spec reachable from ``spec`` by :func:`_candidates` steps on which ``fails``
    (a predicate on specs) stays true (greedy delta debugging); and the number of tries."""
    tries = 0
    changed = True
    while changed:
        changed = False
        for cand in _candidates(spec):
            tries += 1
            if fails(cand):
                spec, changed = cand, True
                echo(f"  smaller ({tries} tries): {describe(spec)}")
                break
    return spec, tries


def reduce(seed: int, target: str, timeout: float, out: Path, echo=print, spec: dict | None = None,
           profile: str = "small") -> Path:
    """Shrink the failing net of ``seed`` on ``target`` while the failure keeps its signature."""
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-reduce{seed}-", dir=out))
    targets = [] if target == "float" else [target]
    spec = spec or generate(seed, profile)
    res = run_seed(seed, targets, timeout, work, spec)
    key = _failure_key(res, target)
    if key is None:
        raise SystemExit(f"seed {seed} does not fail on {target}: {json.dumps(res.get('targets'))[:500]}")
    echo(f"seed {seed} on {target}: {key}\n  {describe(spec)}")
    spec, tries = shrink(spec, lambda cand: _failure_key(run_seed(seed, targets, timeout, work, cand), target) == key,
                         echo)
    dest = out / f"seed{seed}_{target}"
    import shutil

    shutil.rmtree(dest, ignore_errors=True)
    write_case(spec, dest)
    final = run_worker(dest, targets, timeout)
    add_note = final["targets"].get(target, {}).get("message", "") if target != "float" else str(final.get("float"))
    (dest / "README.txt").write_text(
        f"fuzz seed {seed}, target {target}: {key}\nnet: {describe(spec)}\n\n"
        f"reproduce:\n  fpgagen verify {dest.name}/config.yaml --targets {target}\n"
        f"  python tools/fuzz.py --worker {dest.name} --targets {target}\n\nerror:\n{add_note}\n")
    for junk in ("out", "result.json"):
        p = dest / junk
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    echo(f"reproducer ({tries} tries): {dest}")
    return dest


# -- command line ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("Usage::")[1])
    ap.add_argument("--seeds", default="0:10", help="seed range A:B (B excluded), or a comma list")
    ap.add_argument("--targets", nargs="+", default=["c", "hls"], choices=[*TARGETS, "float"])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per target before a net counts as hung")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default: a new temp dir)")
    ap.add_argument("--profile", choices=PROFILES, default="small", help="net sizes (default: small)")
    ap.add_argument("--minutes", type=float, default=None, help="start no new net after this many minutes")
    ap.add_argument("--keep", action="store_true", help="keep the case directories of passing nets")
    ap.add_argument("--reduce", type=int, metavar="SEED", help="shrink the failing net of SEED to a reproducer")
    ap.add_argument("--show", type=int, metavar="SEED", help="print the net of SEED")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    targets = [t for t in args.targets if t != "float"]
    if args.worker:
        run_case(args.worker, targets)
        return 0
    if args.show is not None:
        spec = generate(args.show, args.profile)
        print(describe(spec))
        print(json.dumps(spec, indent=1))
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="fpgagen-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.reduce is not None:
        reduce(args.reduce, args.targets[0], args.timeout, out, profile=args.profile)
        return 0
    seeds = parse_seeds(args.seeds)
    t0 = time.perf_counter()
    results = run_many(seeds, targets, args.timeout, out, args.jobs, args.keep, minutes=args.minutes,
                       profile=args.profile)
    print()
    print(summarize(results, targets))
    print(f"wall {time.perf_counter() - t0:.0f} s, --jobs {args.jobs}; results: {out / 'results.jsonl'}")
    bad = failures(results)
    if bad:
        print("\nfailures:")
        print("\n".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
