"""Microcontroller C backend: ``model.h`` over a small hand-written C99 runtime.

Files (``OUT/c/``):

- ``model.h``: the weights as ``static const int8_t`` arrays (shape, format and ONNX node in a
  comment), biases (``int32_t`` or ``int64_t`` per the layer's accumulator width), reciprocals,
  one constant descriptor per layer, ONE static arena and ``<name>_run()``, which calls the
  runtime layer by layer on buffers at offsets fixed here.
- ``fpgagen_nn.h`` / ``fpgagen_nn.c``: the runtime (``templates/c``), copied verbatim.
- ``main.c``: an example that runs one embedded sample and checks it against the golden model.
- ``harness.c``: the test harness ``verify`` builds (reads ``input.bin``, writes
  ``output.bin``), for the host and, under ``qemu-system-arm``, the Cortex-M4 board of
  ``arm/`` (semihosting); ``Makefile`` builds all of them.

Layout: every tensor element is a byte (the backend takes formats of up to 8 bits); feature
maps are HWC. A Flatten is a view (no code, no memory): the dense layer after it takes its
weight columns in HWC order.

Memory: one arena. Layers run one after another; a tensor occupies memory from the layer that
writes it (the input: from the start) to the last layer that reads it (the output: to the end).
A Flatten shares its input's bytes; a pool, global average pool or add may write its output
over an input that no later layer reads, where the kernel's access order allows it (an output
pixel's window never reads an earlier pixel; element-wise for add). The arena's lower bound is
the largest, over layers, of the bytes live while the layer runs; :func:`plan_memory` places
every buffer so that this bound is met (a small exhaustive search) and says so in ``model.h``.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgagen import __version__
from fpgagen.backends import hwc_order
from fpgagen.errors import BackendError
from fpgagen.ir.format import Format
from fpgagen.ir.graph import activation_name
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.outdir import FileSet
from fpgagen.render import read_library_file, render
from fpgagen.targets import register

#: output channels (dense: outputs) the runtime computes per pass; weights are packed in blocks
BLOCK = 8
#: the strict host compile of ``verify`` (the issue's flags)
HOST_CFLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
#: the Cortex-M4 cross compile
ARM_CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
              "-ffunction-sections", "-fdata-sections"]
ARM_LDFLAGS = ["--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections"]
QEMU_CMD = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config",
            "enable=on,target=native", "-kernel"]
RUNTIME_FILES = ("fpgagen_nn.h", "fpgagen_nn.c")
ARM_FILES = ("arm/startup.c", "arm/mps2_an386.ld")
_INT32 = 2**31


# -------------------------------------------------------------------------------------------
# names, layouts
# -------------------------------------------------------------------------------------------
def c_ident(name: str) -> str:
    """A C identifier from a model/layer name (``/conv1/Conv`` -> ``conv1_conv``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower() or "t"
    ident = re.sub(r"_+", "_", ident)
    if ident[0].isdigit():
        ident = "m_" + ident
    return ident




@dataclass
class TensorInfo:
    name: str
    shape: tuple
    fmt: Format
    nbytes: int
    #: IR flat index held at each byte of the buffer
    perm: np.ndarray

    @property
    def signed(self) -> bool:
        return self.fmt.signed

    def layout(self) -> str:
        if len(self.shape) == 3:
            return "HWC"
        if np.array_equal(self.perm, np.arange(self.nbytes)):
            return "vector"
        return "vector in HWC order of the flattened map"


def tensor_infos(q: QGraph) -> dict[str, TensorInfo]:
    """Every tensor's shape, format, size and byte order; checks the 8-bit storage."""
    infos = {}

    def add(name, perm, where):
        fmt = q.fmts[name]
        if fmt.word > 8:
            raise BackendError(
                f"c target: tensor {name!r} ({where}) has format {fmt}; the C runtime stores one byte "
                f"per element, so formats of at most 8 bits (word_length <= 8) are supported"
            )
        shape = tuple(q.shapes[name])
        infos[name] = TensorInfo(name, shape, fmt, math.prod(shape), perm)

    add(q.input, hwc_order(q.shapes[q.input]), "the model input")
    for layer in q.layers:
        if layer.op == "flatten":
            perm = infos[layer.inputs[0]].perm
        elif layer.op == "add":
            pa, pb = (infos[t].perm for t in layer.inputs)
            if not np.array_equal(pa, pb):
                raise BackendError(
                    f"layer {layer.name!r} (add): its inputs {layer.inputs[0]!r} and {layer.inputs[1]!r} are "
                    f"stored in different element orders (a flattened map and a vector); the C target "
                    f"cannot add them element-wise"
                )
            perm = pa
        else:
            perm = hwc_order(q.shapes[layer.output])
        add(layer.output, perm, f"output of layer {layer.name!r}")
    return infos


# -------------------------------------------------------------------------------------------
# memory plan
# -------------------------------------------------------------------------------------------
def pool_window_geometry(in_shape, out_shape, attrs):
    """(ky0, ky1, kx0, kx1, iy, ix) arrays [OH, OW]: the window rows/cols inside the input."""
    _, h, w = in_shape
    _, oh, ow = out_shape
    kh, kw = attrs["kernel"]
    sh, sw = attrs["stride"]
    top, left = attrs["pads"][0], attrs["pads"][1]
    iy = (np.arange(oh) * sh - top)[:, None] + np.zeros((1, ow), np.int64)
    ix = (np.arange(ow) * sw - left)[None, :] + np.zeros((oh, 1), np.int64)
    ky0, ky1 = np.maximum(0, -iy), np.minimum(kh, h - iy)
    kx0, kx1 = np.maximum(0, -ix), np.minimum(kw, w - ix)
    return ky0, ky1, kx0, kx1, iy, ix


def pool_attrs(q: QGraph, layer: QLayer) -> dict:
    """kernel/stride/pads of a pool; a global average pool is one window over the whole map."""
    if layer.op == "gap":
        _, h, w = q.shapes[layer.inputs[0]]
        return {"kernel": (h, w), "stride": (1, 1), "pads": (0, 0, 0, 0)}
    return layer.attrs


def pool_in_place_ok(in_shape, out_shape, attrs) -> bool:
    """May the runtime's pool write its output over its input?

    It visits output pixels q in order and writes pixel q's channels where input pixel q was
    (same channel count); every window must therefore read only pixels r >= q.
    """
    c, h, w = in_shape
    _, oh, ow = out_shape
    if oh * ow > h * w:
        return False
    ky0, _, kx0, _, iy, ix = pool_window_geometry(in_shape, out_shape, attrs)
    first = (iy + ky0) * w + (ix + kx0)  # the smallest pixel index each window reads
    return bool((first >= np.arange(oh * ow).reshape(oh, ow)).all())


@dataclass
class MemoryPlan:
    """Where every tensor lives in the arena."""

    arena_bytes: int
    lower_bound: int
    #: byte offset of every tensor in the arena
    offsets: dict[str, int]
    #: tensor -> (kind, tensor whose bytes it reuses): ("view", t) for a Flatten,
    #: ("in-place", t) for a pool/add writing over its input
    shares: dict[str, tuple[str, str]]
    #: per layer (step): the tensors live while it runs and their bytes
    live: list[list[str]]
    step_bytes: list[int]
    #: True when a placement meeting the lower bound was found
    optimal: bool = True


def lifetimes(q: QGraph) -> dict[str, tuple[int, int]]:
    """Tensor -> (first step, last step) it must be kept. Step k runs layer k; the input is
    there from step 0, the output until step len(layers), after the last layer (the caller
    reads it then)."""
    span = {q.input: (0, 0)}
    for k, layer in enumerate(q.layers):
        span[layer.output] = (k, k)
        for t in layer.inputs:
            span[t] = (span[t][0], max(span[t][1], k))
    span[q.output] = (span[q.output][0], len(q.layers))
    return span


def plan_memory(q: QGraph, infos: dict[str, TensorInfo], search_budget: int = 20_000) -> MemoryPlan:
    """The arena's lower bound and a placement of every buffer (see the module docstring)."""
    if not q.layers:
        raise BackendError(f"model {q.name!r} has no layers; nothing to generate")
    span = lifetimes(q)
    steps = len(q.layers)
    # alias groups: tensors sharing one offset (union-find keyed by the root tensor)
    root = {t: t for t in infos}
    shares: dict[str, tuple[str, str]] = {}

    def find(t):
        while root[t] != t:
            t = root[t]
        return t

    def group_last(t):
        r = find(t)
        return max(span[m][1] for m in infos if find(m) == r)

    for k, layer in enumerate(q.layers):
        out = layer.output
        if layer.op == "flatten":
            root[out] = find(layer.inputs[0])
            shares[out] = ("view", layer.inputs[0])
            continue
        candidates = []
        if layer.op in ("maxpool", "avgpool", "gap"):
            src = layer.inputs[0]
            if pool_in_place_ok(q.shapes[src], q.shapes[out], pool_attrs(q, layer)):
                candidates = [src]
        elif layer.op == "add":
            candidates = list(dict.fromkeys(layer.inputs))
        for src in candidates:
            if group_last(src) == k and infos[out].nbytes <= infos[src].nbytes:
                root[out] = find(src)
                shares[out] = ("in-place", src)
                break

    groups: dict[str, dict[int, int]] = {}  # root -> {step: bytes}
    for t, info in infos.items():
        prof = groups.setdefault(find(t), {})
        first, last = span[t]
        for s in range(first, last + 1):
            prof[s] = max(prof.get(s, 0), info.nbytes)
    live = [[t for t in infos if span[t][0] <= s <= span[t][1]] for s in range(steps)]
    step_bytes = [sum(prof.get(s, 0) for prof in groups.values()) for s in range(steps)]
    bound = max(step_bytes)

    order = sorted(groups, key=lambda r: (min(groups[r]), -max(groups[r].values())))
    placed: dict[str, int] = {}
    budget = [search_budget]

    def conflicts(r):
        prof = groups[r]
        for other, off in placed.items():
            common = prof.keys() & groups[other].keys()
            if common:
                yield other, off, common

    def fits(r, off, arena):
        prof = groups[r]
        if off < 0 or off + max(prof.values()) > arena:
            return False
        for other, o_off, common in conflicts(r):
            oprof = groups[other]
            for s in common:
                if off < o_off + oprof[s] and o_off < off + prof[s]:
                    return False
        return True

    def candidates(r, arena):
        prof = groups[r]
        peak = max(prof.values())
        cands = [0, arena - peak] if arena is not None else [0]
        for other, o_off, common in conflicts(r):
            for s in common:
                cands.append(o_off + groups[other][s])
                cands.append(o_off - prof[s])
        return list(dict.fromkeys(c for c in cands if c >= 0))

    def search(i, arena):
        if i == len(order):
            return True
        budget[0] -= 1
        if budget[0] < 0:
            return False
        r = order[i]
        for off in candidates(r, arena):
            if fits(r, off, arena):
                placed[r] = off
                if search(i + 1, arena):
                    return True
                del placed[r]
        return False

    optimal = search(0, bound)
    if not optimal:  # first fit, no bound: always succeeds
        placed.clear()
        for r in order:
            placed[r] = min(c for c in candidates(r, None) if fits(r, c, 1 << 62))
    arena = max(placed[r] + max(groups[r].values()) for r in groups)
    offsets = {t: placed[find(t)] for t in infos}
    return MemoryPlan(arena, bound, offsets, shares, live, step_bytes, optimal)


# -------------------------------------------------------------------------------------------
# constants
# -------------------------------------------------------------------------------------------
def pack_conv_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """[Co, Ci/g, kh, kw] -> the runtime's packing: per group, blocks [kh][kw][ci][BLOCK], then rows."""
    co = weight.shape[0]
    og = co // groups
    parts = []
    for g in range(groups):
        wg = weight[g * og:(g + 1) * og].transpose(0, 2, 3, 1)  # og, kh, kw, ci
        nblk = og // BLOCK
        for b in range(nblk):
            parts.append(wg[b * BLOCK:(b + 1) * BLOCK].transpose(1, 2, 3, 0).ravel())
        for o in range(nblk * BLOCK, og):
            parts.append(wg[o].ravel())
    return np.concatenate(parts).astype(np.int64)


def pack_dense_weight(weight: np.ndarray, in_perm: np.ndarray) -> np.ndarray:
    """[Out, In] with columns in the input's byte order -> blocks [In][BLOCK], then rows [In]."""
    w = weight[:, in_perm]
    out = w.shape[0]
    nblk = out // BLOCK
    parts = [w[b * BLOCK:(b + 1) * BLOCK].T.ravel() for b in range(nblk)]
    parts += [w[o] for o in range(nblk * BLOCK, out)]
    return np.concatenate(parts).astype(np.int64)


def c_int_list(values, per_line: int = 16, indent: str = "    ") -> str:
    vals = [int(v) for v in np.asarray(values).ravel()]
    width = max(len(str(v)) for v in vals) if vals else 1
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append(indent + ", ".join(f"{v:>{width}}" for v in vals[i:i + per_line]) + ",")
    return "\n".join(lines)


def c_int64(v: int) -> str:
    v = int(v)
    if v == -(2**63):
        return "INT64_MIN"
    return f"INT64_C({v})"


def check_mac_bounds(layer: QLayer, x_fmt: Format) -> None:
    """The runtime forms sums of products in int32_t: prove they cannot overflow."""
    w = layer.weight
    if w.min() < -128 or w.max() > 127:
        raise BackendError(
            f"layer {layer.name!r} ({layer.op}): weights of format {layer.w_fmt} range over "
            f"[{int(w.min())}, {int(w.max())}]; the C runtime stores weights as int8_t [-128, 127]"
        )
    xmax = max(abs(x_fmt.min_int), abs(x_fmt.max_int))
    worst = int(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max()) * xmax
    if worst >= _INT32:
        raise BackendError(
            f"layer {layer.name!r} ({layer.op}): a sum of products can reach {worst}, beyond the "
            f"runtime's int32_t (fan-in {w[0].size} too large for {x_fmt} inputs)"
        )


@dataclass
class LayerC:
    """One layer as the template renders it."""

    layer: QLayer
    ident: str
    kind: str  # conv | dense | maxpool | avgpool | add | flatten
    comment: list[str]
    arrays: list[dict] = field(default_factory=list)  # {ctype, name, size, comment, body}
    descriptor: str = ""  # the designated initializers of the descriptor, one per line
    desc_type: str = ""  # fpgagen_conv_t, ... ("" for a flatten: no descriptor)
    out_offset: int = 0
    out_bytes: int = 0
    const_bytes: int = 0


def _bias_array(ident: str, layer: QLayer) -> tuple[dict, str, str, int]:
    bias = np.asarray(layer.bias, np.int64)
    wide = layer.acc_width is None or layer.acc_width > 32 or bias.min() < -_INT32 or bias.max() >= _INT32
    fmt = f"s{layer.acc_width}.{layer.acc_frac}"
    src = f"bias {layer.b_fmt} re-expressed at the accumulator frac {layer.acc_frac}" if layer.b_fmt else \
        "no bias in the model: zeros"
    if wide:
        body = "\n".join("    " + ", ".join(c_int64(v) for v in bias[i:i + 4]) + "," for i in range(0, len(bias), 4))
        arr = dict(ctype="int64_t", name=f"{ident}_bias", size=len(bias), body=body,
                   comment=f"[{len(bias)}] accumulator {fmt} (int64_t: {layer.acc_width}-bit accumulator); {src}")
        return arr, "0", f"{ident}_bias", 8 * len(bias)
    arr = dict(ctype="int32_t", name=f"{ident}_bias", size=len(bias), body=c_int_list(bias, per_line=8),
               comment=f"[{len(bias)}] accumulator {fmt}; {src}")
    return arr, f"{ident}_bias", "0", 4 * len(bias)


def describe_layer(q: QGraph, layer: QLayer, infos: dict[str, TensorInfo]) -> list[str]:
    lines = [f"{layer.name}: {layer.op}"
             + (f" + {activation_name(layer.activation)}" if layer.activation else "")
             + (f" (ONNX {layer.onnx_op}: {', '.join(layer.onnx_nodes)})" if layer.onnx_nodes else "")]
    ins = ", ".join(f"{t} {list(infos[t].shape)} {infos[t].fmt}" for t in layer.inputs)
    out = infos[layer.output]
    lines.append(f"  in  {ins}")
    lines.append(f"  out {layer.output} {list(out.shape)} {out.fmt} ({out.layout()})")
    a = layer.attrs
    if layer.op in ("conv", "maxpool", "avgpool"):
        lines.append(f"  kernel {tuple(a['kernel'])}, stride {tuple(a['stride'])}, pads (t, l, b, r) "
                     f"{tuple(a['pads'])}" + (f", groups {a['groups']}" if layer.op == "conv" else "")
                     + (f", count_include_pad {bool(a.get('count_include_pad', False))}"
                        if layer.op == "avgpool" else ""))
    if layer.requantizes:
        extra = f"acc s{layer.acc_width}.{layer.acc_frac}, " if layer.acc_width is not None else ""
        lines.append(f"  {extra}shift {layer.shift}, clamp [{layer.lo}, {layer.hi}]")
    if layer.op == "add":
        lines.append(f"  align (left shifts) {list(layer.align)}")
    return lines


def check_requant_range(layer: QLayer) -> None:
    """The runtime's requantization is exact for |acc| * 2**max(0, -shift) < 2**61."""
    if not layer.requantizes:
        return
    bits = (layer.acc_width or 64) - 1 + max(0, -layer.shift)
    if bits > 61:
        raise BackendError(
            f"layer {layer.name!r} ({layer.op}): a {layer.acc_width}-bit accumulator shifted left by "
            f"{max(0, -layer.shift)} exceeds the C runtime's 61-bit requantization range"
        )


def lower_layer(q: QGraph, layer: QLayer, ident: str, infos: dict[str, TensorInfo], plan: MemoryPlan) -> LayerC:
    """Check one layer against the runtime and turn it into C constants and a descriptor."""
    check_requant_range(layer)
    lc = LayerC(layer, ident, layer.op, describe_layer(q, layer, infos))
    x = infos[layer.inputs[0]]
    y = infos[layer.output]
    lc.out_offset, lc.out_bytes = plan.offsets[layer.output], y.nbytes
    fields: list[tuple[str, object]] = []
    if layer.op in ("conv", "dense"):
        check_mac_bounds(layer, x.fmt)
        w = layer.weight
        if layer.op == "conv":
            a = layer.attrs
            groups = int(a["groups"])
            packed = pack_conv_weight(w, groups)
            order = (f"per group: blocks of {BLOCK} output channels [kh][kw][ci][{BLOCK}], then single "
                     f"channels [kh][kw][ci]")
        else:
            packed = pack_dense_weight(w, x.perm)
            order = f"blocks of {BLOCK} outputs [in][{BLOCK}], then single rows [in]"
            if x.layout() != "vector":
                order += "; columns in the input's byte order (HWC of the flattened map)"
        origin = layer.onnx_nodes[0] if layer.onnx_nodes else layer.name
        lc.arrays.append(dict(
            ctype="int8_t", name=f"{ident}_weight", size=len(packed), body=c_int_list(packed),
            comment=f"{list(w.shape)} {layer.w_fmt} weights of {origin}, packed {order}"))
        bias_arr, b32, b64, bias_bytes = _bias_array(ident, layer)
        lc.arrays.append(bias_arr)
        lc.const_bytes = len(packed) + bias_bytes
        if layer.op == "conv":
            c, h, wd = x.shape
            co, oh, ow = y.shape
            lc.desc_type, lc.kind = "fpgagen_conv_t", "conv"
            fields = [("in_h", h), ("in_w", wd), ("in_c", c), ("out_h", oh), ("out_w", ow), ("out_c", co),
                      ("kernel_h", a["kernel"][0]), ("kernel_w", a["kernel"][1]),
                      ("stride_h", a["stride"][0]), ("stride_w", a["stride"][1]),
                      ("pad_top", a["pads"][0]), ("pad_left", a["pads"][1]), ("groups", groups)]
        else:
            lc.desc_type, lc.kind = "fpgagen_dense_t", "dense"
            fields = [("in_n", x.nbytes), ("out_n", y.nbytes)]
        fields += [("in_signed", int(x.signed)), ("weight", f"{ident}_weight"), ("bias32", b32),
                   ("bias64", b64), ("shift", layer.shift), ("lo", layer.lo), ("hi", layer.hi)]
    elif layer.op in ("maxpool", "avgpool", "gap"):
        a = pool_attrs(q, layer)
        c, h, wd = x.shape
        _, oh, ow = y.shape
        ky0, ky1, kx0, kx1, _, _ = pool_window_geometry(x.shape, y.shape, a)
        if ((ky1 <= ky0) | (kx1 <= kx0)).any():
            raise BackendError(f"layer {layer.name!r} ({layer.op}): a window lies wholly in the padding")
        lc.desc_type = "fpgagen_pool_t"
        fields = [("in_h", h), ("in_w", wd), ("channels", c), ("out_h", oh), ("out_w", ow),
                  ("kernel_h", a["kernel"][0]), ("kernel_w", a["kernel"][1]),
                  ("stride_h", a["stride"][0]), ("stride_w", a["stride"][1]),
                  ("pad_top", a["pads"][0]), ("pad_left", a["pads"][1]), ("in_signed", int(x.signed))]
        if layer.op == "maxpool":
            lc.kind = "maxpool"
            fields += [("recip", "0"), ("recip_count", 0), ("shift", 0), ("lo", 0), ("hi", 0)]
        else:
            lc.kind = "avgpool"
            recip = np.atleast_1d(np.asarray(layer.recip, np.int64)).ravel()
            if recip.max() >= _INT32 or recip.min() < 0:
                raise BackendError(f"layer {layer.name!r}: reciprocal {int(recip.max())} does not fit int32_t")
            count = int(np.max((ky1 - ky0) * (kx1 - kx0)))
            if count * max(abs(x.fmt.min_int), x.fmt.max_int) >= _INT32:
                raise BackendError(f"layer {layer.name!r}: a window sum of {count} pixels could overflow int32_t")
            what = "per output position [out_h * out_w]" if recip.size > 1 else "one for every window"
            lc.arrays.append(dict(ctype="int32_t", name=f"{ident}_recip", size=recip.size,
                                  body=c_int_list(recip, per_line=8),
                                  comment=f"reciprocals round(2**{layer.recip_bits} / count), {what}"))
            lc.const_bytes = 4 * recip.size
            fields += [("recip", f"{ident}_recip"), ("recip_count", recip.size), ("shift", layer.shift),
                       ("lo", layer.lo), ("hi", layer.hi)]
    elif layer.op == "add":
        b = infos[layer.inputs[1]]
        if max(layer.align) > 40:
            raise BackendError(f"layer {layer.name!r} (add): alignment shift {max(layer.align)} is too large")
        lc.desc_type, lc.kind = "fpgagen_add_t", "add"
        fields = [("n", y.nbytes), ("a_signed", int(x.signed)), ("b_signed", int(b.signed)),
                  ("align_a", layer.align[0]), ("align_b", layer.align[1]), ("shift", layer.shift),
                  ("lo", layer.lo), ("hi", layer.hi)]
    elif layer.op == "flatten":
        lc.kind = "flatten"
    else:
        raise BackendError(f"layer {layer.name!r}: the C runtime has no kernel for op {layer.op!r}")
    width = max((len(n) for n, _ in fields), default=0)
    lc.descriptor = "\n".join(f"    .{n:<{width}} = {v}," for n, v in fields)  # noqa: E501
    return lc


# -------------------------------------------------------------------------------------------
# rendering
# -------------------------------------------------------------------------------------------
@dataclass
class CModel:
    """Everything the templates render for one model."""

    q: QGraph
    prefix: str
    infos: dict[str, TensorInfo]
    plan: MemoryPlan
    layers: list[LayerC]
    const_bytes: int
    macs: int

    @property
    def input(self) -> TensorInfo:
        return self.infos[self.q.input]

    @property
    def output(self) -> TensorInfo:
        return self.infos[self.q.output]


def build_model(q: QGraph, prefix: str | None = None) -> CModel:
    """Check ``q`` against the runtime, plan the arena and lower every layer to C constants."""
    prefix = c_ident(prefix or q.name)
    infos = tensor_infos(q)
    plan = plan_memory(q, infos)
    used = set()
    layers = []
    for layer in q.layers:
        ident = f"{prefix}_{c_ident(layer.name)}"
        base, n = ident, 2
        while ident in used:
            ident, n = f"{base}_{n}", n + 1
        used.add(ident)
        layers.append(lower_layer(q, layer, ident, infos, plan))
    macs = sum(int(layer.weight[0].size) * math.prod(q.shapes[layer.output])
               for layer in q.layers if layer.op in ("conv", "dense"))
    return CModel(q, prefix, infos, plan, layers, sum(lc.const_bytes for lc in layers), macs)


def _call(m: CModel, lc: LayerC) -> str:
    off = m.plan.offsets
    args = [f"a + {off[t]}" for t in lc.layer.inputs]
    out = f"a + {off[lc.layer.output]}"
    if lc.kind == "flatten":
        return ""
    fn = {"conv": "fpgagen_conv", "dense": "fpgagen_dense", "maxpool": "fpgagen_maxpool",
          "avgpool": "fpgagen_avgpool", "add": "fpgagen_add"}[lc.kind]
    return f"{fn}(&{lc.ident}, {', '.join(args)}, {out});"


def memory_table(m: CModel) -> list[str]:
    rows = []
    for t, info in m.infos.items():
        share = m.plan.shares.get(t)
        note = f" ({share[0]} of {share[1]})" if share else ""
        rows.append(f"{t}: bytes [{m.plan.offsets[t]}, {m.plan.offsets[t] + info.nbytes}) "
                    f"{list(info.shape)} {info.fmt}{note}")
    return rows


def render_model_h(m: CModel, source: str = "") -> str:
    q = m.q
    calls = []
    for k, lc in enumerate(m.layers):
        calls.append(dict(index=k, name=lc.layer.name, ident=lc.ident, call=_call(m, lc), kind=lc.kind,
                          out_offset=lc.out_offset, out_bytes=lc.out_bytes,
                          note=(f"{lc.layer.name}: a view of {lc.layer.inputs[0]} (no code)"
                                if lc.kind == "flatten" else
                                f"{lc.layer.name}: {', '.join(lc.layer.inputs)} -> {lc.layer.output}"
                                + (" (in place)" if m.plan.shares.get(lc.layer.output, ("",))[0] == "in-place"
                                   else ""))))
    return render(
        "c/model.h.j2", m=m, q=q, version=__version__, source=Path(source or q.source).name or "(unknown)",
        guard=f"FPGAGEN_MODEL_{m.prefix.upper()}_H", P=m.prefix.upper(), calls=calls,
        memory=memory_table(m), block=BLOCK, notes=q.notes,
    )


def render_harness(models: list[CModel], headers: list[str] | None = None) -> str:
    """The test harness over one or more models (``headers``: the file each model.h was written to)."""
    return render("c/harness.c.j2", models=models, headers=headers or ["model.h"] * len(models),
                  version=__version__)


def example_sample(build, q: QGraph):
    """The first validation (else calibration) sample as input integers, or zeros; and its golden output."""
    from fpgagen.golden.model import quantize_input, run_int

    x = getattr(build, "x_valid", None)
    if x is None:
        x = getattr(build, "x_calib", None)
    if x is not None:
        xq = quantize_input(q, x[:1]).reshape((1,) + tuple(q.shapes[q.input]))
        where = "the first validation sample" if getattr(build, "x_valid", None) is not None else \
            "the first calibration sample"
    else:
        xq = np.zeros((1,) + tuple(q.shapes[q.input]), np.int64)
        where = "an all-zero input"
    return xq, run_int(q, xq, trace=True)[1][q.output], where


def to_bytes(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """IR-layout integers [N, *shape] -> the buffer bytes [N, nbytes] (storage order), checked."""
    flat = np.asarray(values, np.int64).reshape(len(values), -1)
    if flat.shape[1] != info.nbytes:
        raise BackendError(f"tensor {info.name!r}: expected {info.nbytes} values per sample, got {flat.shape[1]}")
    if flat.size and (flat.min() < info.fmt.min_int or flat.max() > info.fmt.max_int):
        raise BackendError(f"tensor {info.name!r}: integers must lie in [{info.fmt.min_int}, {info.fmt.max_int}] "
                           f"({info.fmt}), got [{flat.min()}, {flat.max()}]")
    return flat[:, info.perm]


def from_bytes(raw: bytes, info: TensorInfo) -> np.ndarray:
    """Buffer bytes of N samples -> IR-layout integers [N, *shape]."""
    arr = np.frombuffer(raw, dtype=np.int8 if info.signed else np.uint8).astype(np.int64)
    arr = arr.reshape(-1, info.nbytes)
    out = np.empty_like(arr)
    out[:, info.perm] = arr
    return out.reshape((len(arr),) + tuple(info.shape))


def generate(build) -> FileSet:
    q = build.qgraph
    name = (build.cfg or {}).get("name") or q.name
    m = build_model(q, name)
    xq, yq, where = example_sample(build, q)
    files = FileSet()
    files.add("model.h", render_model_h(m))
    for rel in RUNTIME_FILES:
        files.add(rel, read_library_file(f"c/{rel}"))
    files.add("main.c", render("c/main.c.j2", m=m, version=__version__, where=where,
                               sample=c_int_list(to_bytes(xq, m.input)[0]),
                               expected=c_int_list(to_bytes(yq, m.output)[0])))
    files.add("harness.c", render_harness([m]))
    files.add("Makefile", render("c/Makefile.j2", m=m, version=__version__, host_cflags=" ".join(HOST_CFLAGS),
                                 arm_cflags=" ".join(ARM_CFLAGS), arm_ldflags=" ".join(ARM_LDFLAGS),
                                 qemu=" ".join(QEMU_CMD)))
    for rel in ARM_FILES:
        files.add(rel, read_library_file(f"c/{rel}"))
    return files


# -------------------------------------------------------------------------------------------
# building and running
# -------------------------------------------------------------------------------------------
def run_tool(cmd: list[str], cwd: Path, what: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Run a compiler or program; failure is a BackendError with the tail of its output."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BackendError(f"{what}: {cmd[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{what}: {' '.join(cmd)} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BackendError(f"{what} failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def compile_host(src_dir: Path, out: Path, sources=("harness.c", "fpgagen_nn.c"), extra=(),
                 cc: str = "gcc") -> Path:
    """Compile with the strict host flags (``HOST_CFLAGS``) into ``out``."""
    if shutil.which(cc) is None:
        raise BackendError(f"verifying the c target needs a host C compiler: {cc} not found on PATH")
    src_dir, out = Path(src_dir).resolve(), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([cc, *HOST_CFLAGS, *extra, "-I", str(src_dir), *(str(src_dir / s) for s in sources),
              "-o", str(out)], src_dir, f"compiling the c target ({cc})")
    return out


def arm_tools_missing() -> str | None:
    """Why the Cortex-M4 check cannot run here, or None."""
    for tool, pkg in (("arm-none-eabi-gcc", "gcc-arm-none-eabi and libnewlib-arm-none-eabi"),
                      ("arm-none-eabi-size", "binutils-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian: apt install {pkg})"
    return None


def compile_arm(src_dir: Path, out: Path, extra=()) -> Path:
    """Cross-compile the harness for the mps2-an386 board (``ARM_CFLAGS``, ``ARM_LDFLAGS``)."""
    src_dir, out = Path(src_dir).resolve(), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    srcs = ["harness.c", "fpgagen_nn.c", "arm/startup.c"]
    run_tool(["arm-none-eabi-gcc", *ARM_CFLAGS, *extra, "-I", str(src_dir), *(str(src_dir / s) for s in srcs),
              *ARM_LDFLAGS, "-T", str(src_dir / "arm/mps2_an386.ld"), "-o", str(out)],
             src_dir, "cross-compiling the c target for Cortex-M4 (arm-none-eabi-gcc)")
    return out


def arm_size(paths: list[Path], cwd: Path) -> dict:
    """text/data/bss summed over ``paths`` (arm-none-eabi-size, Berkeley format)."""
    proc = run_tool(["arm-none-eabi-size", *map(str, paths)], cwd, "arm-none-eabi-size")
    total = {"text": 0, "data": 0, "bss": 0}
    for line in proc.stdout.strip().splitlines()[1:]:
        text, data, bss = (int(v) for v in line.split()[:3])
        total["text"] += text
        total["data"] += data
        total["bss"] += bss
    return total


def arm_model_size(src_dir: Path, work: Path, prefix: str) -> dict:
    """Flash/RAM of the network alone: model.h + runtime objects, no harness or C library."""
    src_dir, work = Path(src_dir).resolve(), Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    unit = work / "model_unit.c"
    unit.write_text(f'#include "model.h"\nvoid {prefix}_entry(void);\n'
                    f'void {prefix}_entry(void) {{ {prefix}_run(); }}\n')
    objs = []
    for src in (unit, src_dir / "fpgagen_nn.c"):
        obj = work / (src.stem + ".o")
        run_tool(["arm-none-eabi-gcc", *ARM_CFLAGS, "-I", str(src_dir), "-c", str(src), "-o", str(obj)],
                 src_dir, "cross-compiling the model for its size")
        objs.append(obj)
    return arm_size(objs, work)


def run_samples(exe_cmd: list[str], work: Path, models: list[CModel], xqs: list[np.ndarray],
                what: str, trace: bool = False, timeout: float = 300.0):
    """Write ``input_<i>.bin`` per model, run, return the outputs (and traces) as IR-layout ints."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for i, (m, xq) in enumerate(zip(models, xqs)):
        (work / f"input_{i}.bin").write_bytes(to_bytes(xq, m.input).astype(np.uint8 if not m.input.signed
                                                                         else np.int8).tobytes())
        for stale in (f"output_{i}.bin", f"trace_{i}.bin"):
            if (work / stale).exists():
                (work / stale).unlink()
    run_tool(exe_cmd, work, what, timeout)
    outs, traces = [], []
    for i, m in enumerate(models):
        raw = (work / f"output_{i}.bin").read_bytes()
        n = len(xqs[i])
        if len(raw) != n * m.output.nbytes:
            raise BackendError(f"{what}: expected {n * m.output.nbytes} output bytes for {n} samples, got {len(raw)}")
        outs.append(from_bytes(raw, m.output))
        if trace:
            traces.append(split_trace((work / f"trace_{i}.bin").read_bytes(), m, n))
    return (outs, traces) if trace else outs


def split_trace(raw: bytes, m: CModel, n: int) -> dict[str, np.ndarray]:
    """The trace file (per sample, every layer's output bytes in order) -> tensor -> [N, *shape]."""
    per_sample = sum(lc.out_bytes for lc in m.layers)
    if len(raw) != n * per_sample:
        raise BackendError(f"trace: expected {n * per_sample} bytes, got {len(raw)}")
    arr = np.frombuffer(raw, np.uint8).reshape(n, per_sample)
    out, pos = {}, 0
    for lc in m.layers:
        info = m.infos[lc.layer.output]
        out[lc.layer.output] = from_bytes(arr[:, pos:pos + info.nbytes].tobytes(), info)
        pos += info.nbytes
    return out


def count_mismatches(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Per sample: does any integer differ? (bool [N])"""
    g = np.asarray(got, np.int64).reshape(len(got), -1)
    w = np.asarray(want, np.int64).reshape(len(want), -1)
    if g.shape != w.shape:
        raise BackendError(f"output shape {list(g.shape)} differs from the golden model's {list(w.shape)}")
    return (g != w).any(axis=1)


def first_mismatch_layer(m: CModel, traces: dict, golden_trace: dict) -> str | None:
    for lc in m.layers:
        t = lc.layer.output
        if t in golden_trace and count_mismatches(traces[t], golden_trace[t]).any():
            return lc.layer.name
    return None


def _model_and_inputs(build, xq):
    q = build.qgraph
    m = build_model(q, (build.cfg or {}).get("name") or q.name)
    xq = np.asarray(xq, np.int64).reshape((len(xq),) + tuple(q.shapes[q.input]))
    return m, xq


def _verify_host(build, target_dir, xq, golden):
    target_dir = Path(target_dir)
    m, xq = _model_and_inputs(build, xq)
    work = target_dir / "build"
    exe = compile_host(target_dir, work / "harness")
    out = run_samples([str(exe)], work, [m], [xq], "running the host harness")[0]
    bad = count_mismatches(out, golden.output)
    result = {
        "samples": int(len(xq)),
        "mismatches": int(bad.sum()),
        "mismatched_values": int((out.reshape(len(xq), -1) != np.asarray(golden.output).reshape(len(xq), -1)).sum()),
        "arena_bytes": m.plan.arena_bytes,
        "arena_lower_bound": m.plan.lower_bound,
        "flash_bytes": m.const_bytes,
        "macs": m.macs,
        "compiler": "gcc " + " ".join(HOST_CFLAGS),
    }
    if bad.any():
        texe = compile_host(target_dir, work / "harness_trace", extra=["-DFPGAGEN_TRACE"])
        _, traces = run_samples([str(texe)], work, [m], [xq], "running the host harness (trace)", trace=True)
        result["first_mismatch_layer"] = first_mismatch_layer(m, traces[0], golden.trace)
    return result, bad


def _verify_arm(build, target_dir, xq, golden):
    missing = arm_tools_missing()
    if missing:
        return {"skipped": missing}, None
    target_dir = Path(target_dir)
    m, xq = _model_and_inputs(build, xq)
    work = target_dir / "build" / "arm"
    elf = compile_arm(target_dir, work / "harness.elf")
    out = run_samples([*QEMU_CMD, str(elf)], work, [m], [xq], "running the Cortex-M4 harness under qemu")[0]
    bad = count_mismatches(out, golden.output)
    model = arm_model_size(target_dir, work / "size", m.prefix)
    return {
        "board": "mps2-an386 (Cortex-M4, qemu-system-arm, semihosting)",
        "compiler": "arm-none-eabi-gcc " + " ".join(ARM_CFLAGS),
        "samples": int(len(xq)),
        "mismatches": int(bad.sum()),
        "elf": arm_size([elf], work),
        "model": model,
        "flash_bytes": model["text"] + model["data"],
        "ram_bytes": model["data"] + model["bss"],
    }, bad


def verify_host(build, target_dir, xq, golden) -> dict:
    """Compile the generated C with the host gcc (``HOST_CFLAGS``), run it on ``xq`` and compare
    every output integer with the golden model; on a mismatch, name the first differing layer."""
    return _verify_host(build, target_dir, xq, golden)[0]


def verify_arm(build, target_dir, xq, golden) -> dict:
    """Cross-compile for Cortex-M4 (``ARM_CFLAGS``), run under qemu's mps2-an386 on ``xq`` and
    compare with the golden model; sizes from arm-none-eabi-size (the whole test image, and the
    network alone: model.h + fpgagen_nn.c). ``{"skipped": reason}`` where the tools are missing."""
    return _verify_arm(build, target_dir, xq, golden)[0]


def verify(build, target_dir, xq, golden) -> dict:
    """The host check and, where the tools exist, the Cortex-M4 check (under ``"arm"``);
    ``mismatches`` counts the samples that differ on either."""
    result, bad = _verify_host(build, target_dir, xq, golden)
    result["arm"], arm_bad = _verify_arm(build, target_dir, xq, golden)
    if arm_bad is not None:
        result["mismatches"] = int((bad | arm_bad).sum())
    return result


register("c", verify=verify)(generate)
