"""The C backend's plan: storage and layout of every tensor, and the arena's memory plan
(see :mod:`fpgagen.backends.c`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpgagen.backends import hwc_order
from fpgagen.errors import BackendError
from fpgagen.ir.format import Format
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import quoted
from fpgagen.ops.pool import Window

# -------------------------------------------------------------------------------------------
# storage, layouts
# -------------------------------------------------------------------------------------------
#: storage codes of fpgagen_nn.h: (signed, element bytes) -> (code, C type, NumPy dtype)
STORAGE = {(False, 1): ("FPGAGEN_U8", "uint8_t", "<u1"), (True, 1): ("FPGAGEN_S8", "int8_t", "<i1"),
           (False, 2): ("FPGAGEN_U16", "uint16_t", "<u2"), (True, 2): ("FPGAGEN_S16", "int16_t", "<i2"),
           (True, 4): ("FPGAGEN_S32", "int32_t", "<i4")}
#: longest model prefix and layer identifier: prefix + "_" + layer + "__weight" stays within the
#: 63 significant characters C99 guarantees for internal identifiers
PREFIX_LEN, LAYER_LEN = 20, 32
#: identifiers model.h derives from its prefix (``<p>_arena``, ``<P>_INPUT_BYTES``, ...): no
#: layer may take them
MODEL_NAMES = ("arena", "input", "output", "run", "entry", "ARENA_BYTES", "CONST_BYTES", "MACS", "NUM_LAYERS",
               "INPUT_OFFSET", "INPUT_BYTES", "INPUT_SIGNED", "INPUT_FRAC", "OUTPUT_OFFSET", "OUTPUT_BYTES",
               "OUTPUT_SIGNED", "OUTPUT_FRAC")
#: identifiers of the runtime and the harness no model prefix may take
RUNTIME_NAMES = ("fpgagen", "fpgagen_nn", "run_model", "sample", "expected", "harness", "example")


def element_bytes(fmt: Format) -> int:
    """Bytes per element of a tensor of ``fmt``: 1 up to 8 bits, 2 up to 16."""
    return 1 if fmt.word <= 8 else 2


@dataclass
class TensorInfo:
    name: str
    shape: tuple
    fmt: Format
    #: elements, and bytes per element (1: int8_t/uint8_t, 2: int16_t/uint16_t)
    elems: int
    size: int
    #: IR flat index held at each element of the buffer
    perm: np.ndarray

    @property
    def signed(self) -> bool:
        return self.fmt.signed

    @property
    def nbytes(self) -> int:
        return self.elems * self.size

    @property
    def code(self) -> str:
        return STORAGE[(self.signed, self.size)][0]

    @property
    def ctype(self) -> str:
        return STORAGE[(self.signed, self.size)][1]

    @property
    def dtype(self) -> str:
        return STORAGE[(self.signed, self.size)][2]

    def layout(self) -> str:
        if len(self.shape) == 3:
            return "HWC"
        if np.array_equal(self.perm, np.arange(self.elems)):
            return "vector"
        return "vector in HWC order of a flattened map"


def tensor_infos(q: QGraph) -> dict[str, TensorInfo]:
    """Every tensor's shape, format, storage and element order.

    A feature map is HWC; the model input and a vector are in index order, except where a
    Flatten view or an add ties a vector to a flattened map: tensors an add or a Flatten joins
    share one order, that of the flattened map among them (a dense layer can write its outputs
    in any order: the generator permutes its weight rows to match)."""
    tensors = [q.input] + [layer.output for layer in q.layers]
    root = {t: t for t in tensors}

    def find(t):
        while root[t] != t:
            t = root[t]
        return t

    for layer in q.layers:
        if layer.op in ("flatten", "add", "leakyrelu"):  # element i of the output is element i of the inputs
            for t in layer.inputs:
                root[find(t)] = find(layer.output)
    # tensors whose order is fixed: the input and feature maps (HWC), flattened maps (their map's)
    fixed: dict[str, tuple[np.ndarray, str]] = {}

    def fix(t, perm, why):
        r = find(t)
        if r in fixed and not np.array_equal(fixed[r][0], perm):
            raise BackendError(
                f"c target: tensor {quoted(t)} would need two element orders ({why}, and {fixed[r][1]}); "
                f"the C target stores every tensor in one order"
            )
        fixed.setdefault(r, (perm, why))

    fix(q.input, hwc_order(q.shapes[q.input]), f"the model input {quoted(q.input)}")
    for layer in q.layers:
        if layer.op == "flatten":
            src = layer.inputs[0]
            if len(q.shapes[src]) == 3:
                fix(src, hwc_order(q.shapes[src]), f"HWC of the map {quoted(src)}")
        elif layer.op not in ("add", "dense", "leakyrelu"):
            fix(layer.output, hwc_order(q.shapes[layer.output]), f"HWC of {quoted(layer.output)}")
    infos = {}
    for name in tensors:
        fmt = q.fmts[name]
        where = "the model input" if name == q.input else f"output of layer {quoted(q.producer(name).name)}"
        if fmt.word > 16:
            raise BackendError(
                f"c target: tensor {quoted(name)} ({where}) has format {fmt}; the C runtime stores "
                f"int8_t/uint8_t or int16_t/uint16_t elements, so formats of at most 16 bits "
                f"(word_length <= 16) are supported"
            )
        shape = tuple(q.shapes[name])
        perm = fixed.get(find(name), (np.arange(math.prod(shape)), ""))[0]
        infos[name] = TensorInfo(name, shape, fmt, math.prod(shape), element_bytes(fmt), perm)
    return infos


# -------------------------------------------------------------------------------------------
# memory plan
# -------------------------------------------------------------------------------------------
def pool_window_geometry(in_shape, out_shape, win: Window):
    """(ky0, ky1, kx0, kx1, iy, ix) arrays [OH, OW]: the window rows/cols inside the input."""
    _, h, w = in_shape
    _, oh, ow = out_shape
    kh, kw = win.kernel
    sh, sw = win.stride
    top, left = win.pads[0], win.pads[1]
    iy = (np.arange(oh) * sh - top)[:, None] + np.zeros((1, ow), np.int64)
    ix = (np.arange(ow) * sw - left)[None, :] + np.zeros((oh, 1), np.int64)
    ky0, ky1 = np.maximum(0, -iy), np.minimum(kh, h - iy)
    kx0, kx1 = np.maximum(0, -ix), np.minimum(kw, w - ix)
    return ky0, ky1, kx0, kx1, iy, ix


def pool_window(q: QGraph, layer: QLayer) -> Window:
    """The window of a pool; a global average pool is one window over the whole map."""
    if layer.op == "gap":
        _, h, w = q.shapes[layer.inputs[0]]
        return Window((h, w))
    return layer.params


def pool_in_place_ok(in_shape, out_shape, win: Window) -> bool:
    """May the runtime's pool write its output over its input?

    It visits output pixels q in order and writes pixel q's channels where input pixel q was
    (same channel count); every window must therefore read only pixels r >= q.
    """
    c, h, w = in_shape
    _, oh, ow = out_shape
    if oh * ow > h * w:
        return False
    ky0, _, kx0, _, iy, ix = pool_window_geometry(in_shape, out_shape, win)
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
    span = lifetimes(q)
    # a 16-bit tensor lies at an even offset: with one in the model, every buffer takes an even
    # number of bytes (so every offset the placement forms is even)
    align = max(info.size for info in infos.values())

    def nbytes(t):
        return -(-infos[t].nbytes // align) * align

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
            if pool_in_place_ok(q.shapes[src], q.shapes[out], pool_window(q, layer)):
                candidates = [src]
        elif layer.op in ("add", "leakyrelu"):  # elementwise: element i is read before it is written
            candidates = list(dict.fromkeys(layer.inputs))
        for src in candidates:
            if group_last(src) == k and infos[out].nbytes <= infos[src].nbytes \
                    and infos[out].size <= infos[src].size:
                root[out] = find(src)
                shares[out] = ("in-place", src)
                break

    groups: dict[str, dict[int, int]] = {}  # root -> {step: bytes}
    for t, info in infos.items():
        prof = groups.setdefault(find(t), {})
        first, last = span[t]
        for s in range(first, last + 1):
            prof[s] = max(prof.get(s, 0), nbytes(t))
    live = [[t for t in infos if span[t][0] <= s <= span[t][1]] for s in range(max(steps, 1))]
    step_bytes = [sum(prof.get(s, 0) for prof in groups.values()) for s in range(max(steps, 1))]
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


