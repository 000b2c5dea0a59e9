"""The C backend's emitters: constants packed for the runtime, one emitter per op (``EMITTERS``),
``model.h`` and the harness, the generated files (see :mod:`fpgagen.backends.c`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgagen.backends.c.plan import (
    LAYER_LEN,
    MODEL_NAMES,
    PREFIX_LEN,
    RUNTIME_NAMES,
    STORAGE,
    MemoryPlan,
    TensorInfo,
    plan_memory,
    pool_window,
    pool_window_geometry,
    tensor_infos,
)
from fpgagen.errors import BackendError
from fpgagen.ir.graph import activation_name
from fpgagen.ir.format import channel_formats_text, range_text
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import Namespace, c_string, quoted
from fpgagen.ops import get as get_op
from fpgagen.ops.pool import Window
from fpgagen.outdir import FileSet
from fpgagen.render import read_library_file, render
from fpgagen.tables import registrar
from fpgagen.targets import reference_samples
from fpgagen.version import __version__

#: output channels (dense: outputs) the runtime computes per pass; weights are packed in blocks
BLOCK = 8
#: the strict host compile of ``verify`` (the issue's flags)
HOST_CFLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
#: the Cortex-M4 cross compile
#: the Cortex-M4 cross compile; the optimisation level (ARM_OPT, -O2 by default, -Os selectable:
#: ``make arm ARM_OPT=-Os``) comes first
ARM_OPT = "-O2"
ARM_CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
              "-ffunction-sections", "-fdata-sections"]
ARM_LDFLAGS = ["--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections"]
QEMU_CMD = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config",
            "enable=on,target=native", "-kernel"]
#: qemu options that log every executed instruction (one translation block per instruction,
#: deterministic, no chaining that would hide blocks from the log)
QEMU_COUNT = ["-icount", "shift=0", "-singlestep", "-d", "exec,nochain"]
#: samples the instruction count runs (each is one frame; the counts of the frames are compared)
COUNT_FRAMES = 2
RUNTIME_FILES = ("fpgagen_nn.h", "fpgagen_nn.c")
ARM_FILES = ("arm/startup.c", "arm/mps2_an386.ld")
_INT32 = 2**31



# -------------------------------------------------------------------------------------------
# constants
# -------------------------------------------------------------------------------------------
def pack_block_row(w8: np.ndarray) -> np.ndarray:
    """One kernel row of a block, [BLOCK, taps] -> the runtime's bytes (fpgagen_nn.h): groups of
    four taps (zero-padded), per channel pair (2k, 2k+1) a word of taps (0, 2) and one of taps
    (1, 3), each tap [w(2k) + 128 as uint8_t, w(2k+1)], as int8_t values."""
    n = w8.shape[1]
    padded = np.zeros((BLOCK, -(-n // 4) * 4), np.int64)
    padded[:, :n] = w8
    lanes = padded.reshape(BLOCK // 2, 2, -1, 2, 2)  # [k, o % 2, group, (t / 2) % 2, t % 2]
    lanes[:, 0] = (lanes[:, 0] + 128 + 128) % 256 - 128  # the even channel's u = w + 128, as int8_t
    return lanes.transpose(2, 0, 4, 3, 1).ravel()


def quad_packing(layer: QLayer) -> bool:
    """Does the fast path pack the layer's blocks in groups of four taps (every run of taps a
    window reads then starts and ends at a group boundary, but for a dense layer's last taps),
    or interleaved (in_c / groups not a multiple of 4)?"""
    return layer.op == "dense" or layer.weight.shape[1] % 4 == 0


def depthwise(layer: QLayer) -> bool:
    """A depthwise conv of channel multiplier 1 (groups = in_c = out_c): the fast path's
    depthwise packing, the weights [kh][kw][c] like the input's pixels."""
    return layer.op == "conv" and layer.weight.shape[1] == 1 and layer.weight.shape[0] == layer.params.groups


def packing_code(layer: QLayer) -> int:
    """The fast path's `packing` of the descriptor: 0 interleaved, 1 groups of four taps, 2 depthwise."""
    return 2 if depthwise(layer) else int(quad_packing(layer))


def pack_conv_weight(weight: np.ndarray, groups: int, packing: str = "quads") -> np.ndarray:
    """[Co, Ci/g, kh, kw] -> the runtime's packing: per group, blocks of BLOCK channels (per
    kernel row :func:`pack_block_row` for ``"quads"``, [kw][ci][BLOCK] for ``"interleaved"``),
    then rows [kh][kw][ci]; ``"rows"``: unpacked [Co][kh][kw][ci] (the wide path);
    ``"depthwise"`` (Ci/g = 1, Co = groups): [kh][kw][Co]."""
    if packing == "depthwise":
        return weight[:, 0].transpose(1, 2, 0).ravel().astype(np.int64)
    co, _, kh, _ = weight.shape
    og = co // groups
    nblk = og // BLOCK if packing != "rows" else 0
    parts = []
    for g in range(groups):
        wg = weight[g * og:(g + 1) * og].transpose(0, 2, 3, 1)  # og, kh, kw, ci
        for b in range(nblk):
            rows = wg[b * BLOCK:(b + 1) * BLOCK].reshape(BLOCK, kh, -1)
            if packing == "quads":
                parts += [pack_block_row(rows[:, r]) for r in range(kh)]
            else:
                parts.append(rows.transpose(1, 2, 0).ravel())
        for o in range(nblk * BLOCK, og):
            parts.append(wg[o].ravel())
    return np.concatenate(parts).astype(np.int64)


def pack_dense_weight(weight: np.ndarray, in_perm: np.ndarray, blocked: bool = True,
                      out_perm: np.ndarray | None = None) -> np.ndarray:
    """[Out, In] with columns in the input's element order and rows in the output's -> blocks
    of BLOCK rows (:func:`pack_block_row`), then rows [In] (``blocked`` False: rows [Out][In])."""
    w = weight[:, in_perm] if out_perm is None else weight[out_perm][:, in_perm]
    nblk = w.shape[0] // BLOCK if blocked else 0
    parts = [pack_block_row(w[b * BLOCK:(b + 1) * BLOCK]) for b in range(nblk)]
    parts += [w[o] for o in range(nblk * BLOCK, w.shape[0])]
    return np.concatenate(parts).astype(np.int64)


def fold_taps(layer: QLayer, x: TensorInfo) -> int:
    """Taps (a multiple of 4) the fast path's packed sums may run before they are unpacked:
    |sum x * w| < 2**23 over any that many taps (the DSP kernels' odd-channel sums)."""
    wmax = max(int(np.abs(layer.weight).max()), 1)
    xmax = max(abs(x.fmt.min_int), abs(x.fmt.max_int), 1)
    return max(4, min(1 << 20, ((2**23 - 1) // (wmax * xmax)) // 4 * 4))


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


def mac_path(layer: QLayer, x: TensorInfo, y: TensorInfo) -> tuple[bool, str]:
    """(fast, why): may the conv/dense layer take the fast path (8-bit input and output, int8_t
    weights, int32_t sums of products), and if not, why; the wide path's int64_t sums are
    proven here too."""
    w = layer.weight
    xmax = max(abs(x.fmt.min_int), abs(x.fmt.max_int))
    worst = int(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max()) * xmax
    bias = int(np.abs(np.asarray(layer.bias, np.int64)).max()) if np.size(layer.bias) else 0
    if worst + bias >= 2**62:
        raise BackendError(
            f"layer {quoted(layer.name)} ({layer.op}): a sum of products can reach {worst}, beyond the "
            f"runtime's int64_t accumulator (fan-in {w[0].size} too large for {x.fmt} inputs)"
        )
    if x.size > 1 or y.size > 1:
        return False, f"{x.fmt} input, {y.fmt} output: 16-bit storage"
    if w.min() < -128 or w.max() > 127:
        return False, f"{layer.w_fmt} weights range over [{int(w.min())}, {int(w.max())}], beyond int8_t"
    if worst >= _INT32:
        return False, f"a sum of products can reach {worst}, beyond int32_t"
    return True, ""


def narrow_requant(layer: QLayer) -> bool:
    """May the runtime requantize in 32 bits: |acc| * 2**max(0, -shift) < 2**29? (Per-channel
    layers: of the pre-aligned accumulator.)"""
    return layer.acc_width is not None and layer.requant_width - 1 + max(0, -layer.shift) <= 29


def _align_array(ident: str, layer: QLayer, out_perm: np.ndarray) -> tuple[dict, str]:
    """A per-channel layer's pre-alignment ``align[c] = shift - s_c`` in the output's element order."""
    align = np.asarray(layer.align, np.int64)
    if layer.op == "dense":
        align = align[out_perm]
    if align.max() > 62:
        raise BackendError(f"layer {quoted(layer.name)} ({layer.op}): a per-channel alignment of {int(align.max())} "
                           f"bits exceeds the C runtime's 64-bit accumulator")
    arr = dict(ctype="int8_t", name=f"{ident}__align", size=len(align), body=c_int_list(align, per_line=16),
               comment=f"[{len(align)}] per-channel weight formats {channel_formats_text(layer.w_fmts)}: "
                       f"output c's shift is s_c = shift - align[c] (shifts {range_text(layer.shifts)}); "
                       f"its accumulator is shifted left by align[c], then rounded by shift {layer.shift}")
    return arr, f"{ident}__align"


def weight_storage(w: np.ndarray) -> tuple[str, str]:
    """The narrowest signed storage (code, C type) holding every weight of the wide path."""
    for size in (1, 2, 4):
        if -(2 ** (8 * size - 1)) <= w.min() and w.max() < 2 ** (8 * size - 1):
            return STORAGE[(True, size)][:2]
    raise BackendError(f"weights range over [{int(w.min())}, {int(w.max())}], beyond int32_t")


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
    #: more descriptors of one layer (a concat: one per input), {ident, desc_type, descriptor, input}
    parts: list[dict] = field(default_factory=list)


def _bias_array(ident: str, layer: QLayer, out_perm: np.ndarray, wide_path: bool) -> tuple[dict, str, str, int]:
    """The bias in the output's element order: int32_t where the accumulator fits 32 bits on
    the fast path, else int64_t."""
    bias = np.asarray(layer.bias, np.int64)
    if layer.op == "dense":
        bias = bias[out_perm]
    wide = wide_path or layer.acc_width is None or layer.acc_width > 32 or bias.min() < -_INT32 \
        or bias.max() >= _INT32
    fmt = f"s{layer.acc_width}.{layer.acc_frac}"
    at = ("each channel's accumulator frac (per-channel weight formats)" if layer.per_channel else
          f"the accumulator frac {layer.acc_frac}")
    src = f"bias {layer.b_fmt} re-expressed at {at}" if layer.b_fmt else "no bias in the model: zeros"
    if wide:
        body = "\n".join("    " + ", ".join(c_int64(v) for v in bias[i:i + 4]) + "," for i in range(0, len(bias), 4))
        arr = dict(ctype="int64_t", name=f"{ident}__bias", size=len(bias), body=body,
                   comment=f"[{len(bias)}] accumulator {fmt} (int64_t: {layer.acc_width}-bit accumulator); {src}")
        return arr, "0", f"{ident}__bias", 8 * len(bias)
    arr = dict(ctype="int32_t", name=f"{ident}__bias", size=len(bias), body=c_int_list(bias, per_line=8),
               comment=f"[{len(bias)}] accumulator {fmt}; {src}")
    return arr, f"{ident}__bias", "0", 4 * len(bias)


def describe_layer(q: QGraph, layer: QLayer, infos: dict[str, TensorInfo]) -> list[str]:
    lines = [f"{quoted(layer.name)}: {layer.op}"
             + (f" + {activation_name(layer.activation)}" if layer.activation else "")
             + (f" (ONNX {quoted(layer.onnx_op)}: {', '.join(map(quoted, layer.onnx_nodes))})"
                if layer.onnx_nodes else "")]
    ins = ", ".join(f"{quoted(t)} {list(infos[t].shape)} {infos[t].fmt} ({infos[t].ctype})" for t in layer.inputs)
    out = infos[layer.output]
    lines.append(f"  in  {ins}")
    lines.append(f"  out {quoted(layer.output)} {list(out.shape)} {out.fmt} ({out.ctype}, {out.layout()})")
    a = layer.params
    if isinstance(a, Window):
        lines.append(f"  kernel {tuple(a.kernel)}, stride {tuple(a.stride)}, pads (t, l, b, r) "
                     f"{tuple(a.pads)}" + (f", groups {a.groups}" if layer.op == "conv" else "")
                     + (f", count_include_pad {a.count_include_pad}" if layer.op == "avgpool" else ""))
    if layer.requantizes:
        extra = f"acc s{layer.acc_width}.{layer.acc_frac}, " if layer.acc_width is not None else ""
        shift = f"shift {layer.shift}" if layer.shift is not None else f"shifts {list(layer.params.shifts)}"
        if layer.per_channel:
            shift = (f"weights {channel_formats_text(layer.w_fmts)} per channel, shifts {range_text(layer.shifts)} "
                     f"(pre-aligned to shift {layer.shift})")
        lines.append(f"  {extra}{shift}, clamp [{layer.lo}, {layer.hi}]"
                     + (f", LeakyRelu slope {layer.leaky.alpha} * 2**-{layer.leaky.frac}" if layer.leaky else ""))
    if layer.params is not None and layer.op in ("resize", "pad"):
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in vars(layer.params).items()))
    if layer.op == "add":
        lines.append(f"  align (left shifts) {list(layer.params.align)}")
    return lines


def check_requant_range(layer: QLayer) -> None:
    """The runtime's requantization is exact for |acc| * 2**max(0, -shift) < 2**61 (and, with a
    LeakyRelu, for |acc * alpha| * 2**max(0, -(shift + alpha_frac)) < 2**61)."""
    if not layer.requantizes:
        return
    if layer.acc_width is not None:
        pairs = [(layer.requant_width, layer.shift)]  # per channel: the pre-aligned accumulator
    else:  # leakyrelu, concat: the accumulator is an input integer
        shifts = layer.params.shifts if layer.shift is None else [layer.shift] * len(layer.inputs)
        pairs = [(f.word + 1, s) for f, s in zip(layer.in_fmts, shifts)]
    for width, shift in pairs:
        bits = width - 1 + max(0, -shift)
        if layer.leaky is not None:
            bits = max(bits, width - 1 + abs(layer.leaky.alpha).bit_length() + max(0, -(shift + layer.leaky.frac)))
        if bits > 61:
            raise BackendError(
                f"layer {quoted(layer.name)} ({layer.op}): a {width}-bit accumulator shifted left by "
                f"{max(0, -shift)}{' (with its LeakyRelu slope)' if layer.leaky else ''} exceeds the C runtime's "
                f"61-bit requantization range"
            )


def leaky_fields(layer: QLayer) -> list[tuple[str, object]]:
    """A fused LeakyRelu's descriptor fields (none without one: zero-initialised, off), and the
    requantizer's rounding (``round_even`` for nearest-even; absent: half away from zero)."""
    even = [("round_even", 1)] if layer.rounding == "nearest-even" else []
    if layer.leaky is None:
        return even
    return [("leaky", 1), ("alpha", layer.leaky.alpha), ("alpha_frac", layer.leaky.frac)] + even


#: IR op -> its emitter: fills the LayerC (kind, descriptor type, constant arrays) and returns the
#: descriptor's fields ``[(name, value), ...]``
EMITTERS: dict = {}
#: register the C emitter of IR ops (one per op; a second is an error)
emits = registrar(EMITTERS, "C emitters")


@emits("conv", "dense")
def _emit_mac(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    fast, why = mac_path(layer, x, y)
    if fast and layer.leaky is not None:
        fast, why = False, "a fused LeakyRelu (the wide path's requantizer takes its two paths)"
    w = layer.weight
    if layer.op == "conv":
        a = layer.params
        groups = a.groups
        packing = ("depthwise" if depthwise(layer) else "quads" if quad_packing(layer) else "interleaved") \
            if fast else "rows"
        packed = pack_conv_weight(w, groups, packing)
        order = {"quads": f"per group: blocks of {BLOCK} output channels (per kernel row, taps in groups "
                          f"of four, see fpgagen_nn.h), then single channels [kh][kw][ci]",
                 "interleaved": f"per group: blocks of {BLOCK} output channels [kh][kw][ci][{BLOCK}], then "
                                f"single channels [kh][kw][ci]",
                 "rows": "[co][kh][kw][ci] (unpacked)",
                 "depthwise": "depthwise [kh][kw][c] (channel fastest, like the input)"}[packing]
    else:
        packed = pack_dense_weight(w, x.perm, fast, y.perm)
        order = f"blocks of {BLOCK} outputs (taps in groups of four, see fpgagen_nn.h), then single rows [in]" \
            if fast else \
            "rows [out][in] (unpacked)"
        if x.layout() != "vector":
            order += "; columns in the input's element order (HWC of the flattened map)"
        if not np.array_equal(y.perm, np.arange(y.elems)):
            order += "; rows in the output's element order (HWC of the flattened map it is added to)"
    w_code, w_ctype = ("FPGAGEN_S8", "int8_t") if fast else weight_storage(packed)
    w_name = {"int8_t": "weight", "int16_t": "weight16", "int32_t": "weight32"}[w_ctype]
    origin = layer.onnx_nodes[0] if layer.onnx_nodes else layer.name
    lc.arrays.append(dict(
        ctype=w_ctype, name=f"{ident}__weight", size=len(packed), body=c_int_list(packed),
        comment=f"{list(w.shape)} {layer.w_fmt} weights of {quoted(origin)}, packed {order}"))
    bias_arr, b32, b64, bias_bytes = _bias_array(ident, layer, y.perm, not fast)
    lc.arrays.append(bias_arr)
    lc.const_bytes = len(packed) * int(w_ctype[3:-2]) // 8 + bias_bytes
    if layer.per_channel:
        align_arr, align_name = _align_array(ident, layer, y.perm)
        lc.arrays.append(align_arr)
        lc.const_bytes += align_arr["size"]
    if not fast:
        lc.comment.append(f"  wide path (int64_t sums, fpgagen_conv_wide): {why}")
    if layer.op == "conv":
        c, h, wd = x.shape
        co, oh, ow = y.shape
        geometry = [("in_h", h), ("in_w", wd), ("in_c", c), ("out_h", oh), ("out_w", ow), ("out_c", co),
                    ("kernel_h", a.kernel[0]), ("kernel_w", a.kernel[1]),
                    ("stride_h", a.stride[0]), ("stride_w", a.stride[1]),
                    ("pad_top", a.pads[0]), ("pad_left", a.pads[1]), ("groups", groups)]
    else:  # the wide path: a 1x1 conv over a 1x1 map
        geometry = [("in_h", 1), ("in_w", 1), ("in_c", x.elems), ("out_h", 1), ("out_w", 1),
                    ("out_c", y.elems), ("kernel_h", 1), ("kernel_w", 1), ("stride_h", 1), ("stride_w", 1),
                    ("pad_top", 0), ("pad_left", 0), ("groups", 1)]
    if fast and layer.op == "dense":
        lc.desc_type, lc.kind = "fpgagen_dense_t", "dense"
        fields = [("in_n", x.elems), ("out_n", y.elems), ("in_type", x.code), ("out_type", y.code),
                  ("weight", f"{ident}__weight")]
    else:
        lc.desc_type, lc.kind = "fpgagen_conv_t", "conv" if fast else "conv_wide"
        fields = geometry + [("in_type", x.code), ("out_type", y.code), ("w_type", w_code)]
        fields += [(n, f"{ident}__weight" if n == w_name else "0") for n in ("weight", "weight16", "weight32")]
    fields += [("bias32", b32), ("bias64", b64), ("shift", layer.shift), ("lo", layer.lo), ("hi", layer.hi),
               ("narrow", int(fast and narrow_requant(layer)))]
    if layer.per_channel:
        fields.append(("align", align_name))
    if fast:
        fields += [("fold", fold_taps(layer, x)), ("packing", packing_code(layer))]
    fields += leaky_fields(layer)
    return fields


@emits("maxpool", "avgpool", "gap")
def _emit_pool(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    a = pool_window(q, layer)
    c, h, wd = x.shape
    _, oh, ow = y.shape
    ky0, ky1, kx0, kx1, _, _ = pool_window_geometry(x.shape, y.shape, a)
    if ((ky1 <= ky0) | (kx1 <= kx0)).any():
        raise BackendError(f"layer {quoted(layer.name)} ({layer.op}): a window lies wholly in the padding")
    lc.desc_type = "fpgagen_pool_t"
    fields = [("in_h", h), ("in_w", wd), ("channels", c), ("out_h", oh), ("out_w", ow),
              ("kernel_h", a.kernel[0]), ("kernel_w", a.kernel[1]),
              ("stride_h", a.stride[0]), ("stride_w", a.stride[1]),
              ("pad_top", a.pads[0]), ("pad_left", a.pads[1]), ("in_type", x.code), ("out_type", y.code)]
    if layer.op == "maxpool":
        lc.kind = "maxpool"
        lo, hi = layer.clamp_bounds
        fields += [("recip", "0"), ("recip_count", 0), ("shift", 0), ("lo", lo), ("hi", hi)]
    else:
        lc.kind = "avgpool"
        recip = np.atleast_1d(np.asarray(layer.params.recip, np.int64)).ravel()
        if recip.max() >= _INT32 or recip.min() < 0:
            raise BackendError(f"layer {quoted(layer.name)}: reciprocal {int(recip.max())} does not fit int32_t")
        count = int(np.max((ky1 - ky0) * (kx1 - kx0)))
        if count * max(abs(x.fmt.min_int), x.fmt.max_int) >= _INT32:
            raise BackendError(f"layer {quoted(layer.name)}: a window sum of {count} pixels could overflow int32_t")
        what = "per output position [out_h * out_w]" if recip.size > 1 else "one for every window"
        lc.arrays.append(dict(ctype="int32_t", name=f"{ident}__recip", size=recip.size,
                              body=c_int_list(recip, per_line=8),
                              comment=f"reciprocals round(2**{layer.params.recip_bits} / count), {what}"))
        lc.const_bytes = 4 * recip.size
        fields += [("recip", f"{ident}__recip"), ("recip_count", recip.size), ("shift", layer.shift),
                   ("lo", layer.lo), ("hi", layer.hi)] + leaky_fields(layer)
    return fields


@emits("add")
def _emit_add(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    b = infos[layer.inputs[1]]
    if max(layer.params.align) > 40:
        raise BackendError(f"layer {quoted(layer.name)} (add): alignment shift {max(layer.params.align)} is too large")
    lc.desc_type, lc.kind = "fpgagen_add_t", "add"
    fields = [("n", y.elems), ("a_type", x.code), ("b_type", b.code), ("out_type", y.code),
              ("align_a", layer.params.align[0]), ("align_b", layer.params.align[1]), ("shift", layer.shift),
              ("lo", layer.lo), ("hi", layer.hi)] + leaky_fields(layer)
    return fields


@emits("leakyrelu")
def _emit_leakyrelu(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    lc.desc_type, lc.kind = "fpgagen_act_t", "act"
    fields = [("n", y.elems), ("in_type", x.code), ("out_type", y.code), ("shift", layer.shift),
              ("lo", layer.lo), ("hi", layer.hi)] + leaky_fields(layer)
    return fields


@emits("concat")
def _emit_concat(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    lc.kind = "concat"
    pixels = math.prod(y.shape[1:]) if len(y.shape) == 3 else 1
    out_c = y.shape[0]
    offset = 0
    for i, (t, shift) in enumerate(zip(layer.inputs, layer.params.shifts)):
        xi = infos[t]
        in_c = xi.shape[0]
        index = "0"
        if len(xi.shape) != 3 and not np.array_equal(xi.perm, np.arange(xi.elems)):
            # a vector held in the HWC order of a flattened map: read in index order
            where = np.argsort(xi.perm).astype(np.int64)
            index = f"{ident}__index{i}"
            lc.arrays.append(dict(ctype="int32_t", name=index, size=len(where), body=c_int_list(where),
                                  comment=f"element of {quoted(t)} for each of its {len(where)} channels "
                                          f"(it is held in {xi.layout()})"))
            lc.const_bytes += 4 * len(where)
        part = [("pixels", pixels), ("in_c", in_c), ("out_c", out_c), ("offset", offset), ("in_type", xi.code),
                ("out_type", y.code), ("shift", shift), ("lo", layer.lo), ("hi", layer.hi)]
        part += leaky_fields(layer) + [("index", index)]
        lc.parts.append(dict(ident=f"{ident}__in{i}", desc_type="fpgagen_concat_t",
                             descriptor=designated(part), input=t))
        offset += in_c
    return fields


@emits("resize", "pad")
def _emit_layout(q, layer, ident, infos, lc, x, y) -> list:
    """Resize and pad: the map's geometry, the op's parameters and the storage code."""
    c, h, wd = x.shape
    lc.desc_type, lc.kind = f"fpgagen_{layer.op}_t", layer.op
    if layer.op == "resize":
        params = list(zip(("fh", "fw"), layer.params.factors))
    else:
        params = list(zip(("top", "left", "bottom", "right"), layer.params.pads))
    return [("in_h", h), ("in_w", wd), ("channels", c), *params, ("type", x.code)]


@emits("flatten")
def _emit_flatten(q, layer, ident, infos, lc, x, y) -> list:
    fields: list[tuple[str, object]] = []
    lc.kind = "flatten"
    return fields


def lower_layer(q: QGraph, layer: QLayer, ident: str, infos: dict[str, TensorInfo], plan: MemoryPlan) -> LayerC:
    """Check one layer against the runtime and turn it into C constants and a descriptor."""
    check_requant_range(layer)
    lc = LayerC(layer, ident, layer.op, describe_layer(q, layer, infos))
    x = infos[layer.inputs[0]]
    y = infos[layer.output]
    lc.out_offset, lc.out_bytes = plan.offsets[layer.output], y.nbytes
    emitter = EMITTERS.get(layer.op)
    if emitter is None:
        raise BackendError(f"layer {quoted(layer.name)}: the C runtime has no kernel for op {layer.op!r}")
    lc.descriptor = designated(emitter(q, layer, ident, infos, lc, x, y))
    return lc


def designated(fields) -> str:
    """A descriptor's designated initializers, one per line, the names aligned."""
    width = max((len(n) for n, _ in fields), default=0)
    return "\n".join(f"    .{n:<{width}} = {v}," for n, v in fields)


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


def layer_macs(q: QGraph, layer: QLayer) -> int:
    """Multiply-accumulates of a layer per inference (the op's count; 0 without multipliers)."""
    return get_op(layer.op).macs(layer, q.shapes)


def build_model(q: QGraph, prefix: str | None = None) -> CModel:
    """Check ``q`` against the runtime, plan the arena and lower every layer to C constants."""
    prefix = Namespace(RUNTIME_NAMES, PREFIX_LEN).unique(prefix or q.name)
    infos = tensor_infos(q)
    plan = plan_memory(q, infos)
    # layer descriptors are <prefix>_<layer>, their arrays <prefix>_<layer>__weight etc. (names.ident
    # never forms "__", so no array can take a descriptor's name)
    names = Namespace(MODEL_NAMES, LAYER_LEN)
    layers = [lower_layer(q, layer, f"{prefix}_{names.unique(layer.name)}", infos, plan) for layer in q.layers]
    macs = sum(layer_macs(q, layer) for layer in q.layers)
    return CModel(q, prefix, infos, plan, layers, sum(lc.const_bytes for lc in layers), macs)


def _call(m: CModel, lc: LayerC) -> str:
    off = m.plan.offsets
    args = [f"a + {off[t]}" for t in lc.layer.inputs]
    out = f"a + {off[lc.layer.output]}"
    if lc.kind == "flatten":
        return ""
    if lc.kind == "concat":
        return "\n    ".join(f"fpgagen_concat(&{p['ident']}, a + {off[p['input']]}, {out});" for p in lc.parts)
    fn = {"conv": "fpgagen_conv", "conv_wide": "fpgagen_conv_wide", "dense": "fpgagen_dense",
          "maxpool": "fpgagen_maxpool", "avgpool": "fpgagen_avgpool", "add": "fpgagen_add", "act": "fpgagen_act",
          "resize": "fpgagen_resize", "pad": "fpgagen_pad"}[lc.kind]
    return f"{fn}(&{lc.ident}, {', '.join(args)}, {out});"


def memory_table(m: CModel) -> list[str]:
    rows = []
    for t, info in m.infos.items():
        share = m.plan.shares.get(t)
        note = f" ({share[0]} of {quoted(share[1])})" if share else ""
        rows.append(f"{quoted(t)}: bytes [{m.plan.offsets[t]}, {m.plan.offsets[t] + info.nbytes}) "
                    f"{list(info.shape)} {info.fmt} {info.ctype}{note}")
    return rows


def render_model_h(m: CModel, source: str = "") -> str:
    q = m.q
    calls = []
    for k, lc in enumerate(m.layers):
        calls.append(dict(index=k, name=quoted(lc.layer.name), string=c_string(lc.layer.name), ident=lc.ident,
                          call=_call(m, lc), kind=lc.kind, out_offset=lc.out_offset, out_bytes=lc.out_bytes,
                          note=(f"{quoted(lc.layer.name)}: a view of {quoted(lc.layer.inputs[0])} (no code)"
                                if lc.kind == "flatten" else
                                f"{quoted(lc.layer.name)}: {', '.join(map(quoted, lc.layer.inputs))} -> "
                                f"{quoted(lc.layer.output)}"
                                + (" (in place)" if m.plan.shares.get(lc.layer.output, ("",))[0] == "in-place"
                                   else ""))))
    return render(
        "c/model.h.j2", m=m, q=q, version=__version__, source=Path(source or q.source).name or "(unknown)",
        guard=f"FPGAGEN_MODEL_{m.prefix.upper()}_H", P=m.prefix.upper(), calls=calls,
        memory=memory_table(m), block=BLOCK, notes=[quoted(n, 400) for n in q.notes],
        name=quoted(q.name), input_name=quoted(q.input), output_name=quoted(q.output),
        arena_t="int16_t" if any(i.size > 1 for i in m.infos.values()) else "uint8_t",
        features=[macro for macro, used in features(q).items() if used],
    )


def features(q: QGraph) -> dict[str, bool]:
    """The runtime's feature switches (templates/c/fpgagen_nn.h) and whether ``q`` uses each."""
    return {"FPGAGEN_PER_CHANNEL": any(layer.per_channel for layer in q.layers),
            "FPGAGEN_ROUND_EVEN": any(layer.rounding == "nearest-even" for layer in q.layers)}


def runtime_file(rel: str, q: QGraph) -> str:
    """A runtime file for ``q``: verbatim, except that the header's switches of features ``q``
    does not use are 0 (their code compiles out: smaller kernels, fewer instructions)."""
    text = read_library_file(f"c/{rel}")
    if rel != "fpgagen_nn.h":
        return text
    for macro, used in features(q).items():
        line = f"#define {macro} 1\n"
        if text.count(line) != 1:
            raise BackendError(f"templates/c/{rel}: expected one line {line.strip()!r}")
        if not used:
            text = text.replace(line, f"#define {macro} 0  /* not used by {quoted(q.name)} */\n")
    return text


def render_harness(models: list[CModel], headers: list[str] | None = None) -> str:
    """The test harness over one or more models (``headers``: the file each model.h was written to)."""
    return render("c/harness.c.j2", models=models, headers=headers or ["model.h"] * len(models),
                  version=__version__)


#: samples the build writes to ``input_0.bin`` / ``expected_0.bin`` for ``make run-arm`` / ``make check``
SAMPLE_FILES = 10


def example_samples(build, q: QGraph, n: int = SAMPLE_FILES):
    """The first ``n`` validation (else calibration) samples as input integers, or one all-zero
    input; their golden outputs; and where they came from (:func:`fpgagen.targets.reference_samples`)."""
    xq, golden, where = reference_samples(build, n, zero_if_none=True)
    return xq, golden.output, where


def to_bytes(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    """IR-layout integers [N, *shape] -> the buffer's elements [N, elems] (storage order), checked."""
    flat = np.asarray(values, np.int64).reshape(len(values), -1)
    if flat.shape[1] != info.elems:
        raise BackendError(f"tensor {quoted(info.name)}: expected {info.elems} values per sample, got {flat.shape[1]}")
    if flat.size and (flat.min() < info.fmt.min_int or flat.max() > info.fmt.max_int):
        raise BackendError(f"tensor {quoted(info.name)}: integers must lie in [{info.fmt.min_int}, "
                           f"{info.fmt.max_int}] ({info.fmt}), got [{flat.min()}, {flat.max()}]")
    return flat[:, info.perm]


def sample_file(values: np.ndarray, info: TensorInfo) -> bytes:
    """IR-layout integers [N, *shape] as the harness reads them: the buffer of each sample,
    back to back (little-endian elements)."""
    return to_bytes(values, info).astype(info.dtype).tobytes()


def from_bytes(raw: bytes, info: TensorInfo) -> np.ndarray:
    """Buffer bytes of N samples -> IR-layout integers [N, *shape]."""
    arr = np.frombuffer(raw, dtype=info.dtype).astype(np.int64)
    arr = arr.reshape(-1, info.elems)
    out = np.empty_like(arr)
    out[:, info.perm] = arr
    return out.reshape((len(arr),) + tuple(info.shape))


def generate(build) -> FileSet:
    q = build.qgraph
    name = (build.cfg or {}).get("name") or q.name
    m = build_model(q, name)
    xq, yq, where = example_samples(build, q)
    files = FileSet()
    files.add("model.h", render_model_h(m))
    for rel in RUNTIME_FILES:
        files.add(rel, runtime_file(rel, q))
    one = "the first sample of " + where if len(xq) > 1 else where
    files.add("main.c", render("c/main.c.j2", m=m, version=__version__, where=one, name=quoted(q.name),
                               sample=c_int_list(to_bytes(xq[:1], m.input)[0]),
                               expected=c_int_list(to_bytes(yq[:1], m.output)[0])))
    files.add("harness.c", render_harness([m]))
    files.add("input_0.bin", sample_file(xq, m.input))
    files.add("expected_0.bin", sample_file(yq, m.output))
    files.add("Makefile", render("c/Makefile.j2", m=m, version=__version__, name=quoted(q.name), where=where,
                                 samples=len(xq), host_cflags=" ".join(HOST_CFLAGS),
                                 arm_opt=ARM_OPT, arm_cflags=" ".join(ARM_CFLAGS), arm_ldflags=" ".join(ARM_LDFLAGS),
                                 qemu=" ".join(QEMU_CMD)))
    for rel in ARM_FILES:
        files.add(rel, read_library_file(f"c/{rel}"))
    return files


