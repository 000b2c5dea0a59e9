"""Per-layer parallelism, shared by the Verilog and HLS backends (FINN's PE/SIMD).

- ``pe``: output channels (conv) or neurons (dense) computed in parallel; must divide them.
- ``simd``: inputs multiplied in parallel per output: input channels of one kernel tap (conv)
  or input features (dense); must divide them.
- ``taps`` (conv only): kernel taps of one row multiplied in parallel beside them (the Verilog
  ``fpgagen_conv2d``'s KU); must divide the kernel width KW. It is what lets a conv of few input
  channels (the 1-channel first layer of an image model, where SIMD divides Ci = 1) use more
  than PE multipliers.

Grouped and depthwise convs (``groups`` > 1): a tap has ``Ci/groups`` inputs, which SIMD divides;
PE divides ``Co``. A backend whose schedule computes either part of one group or whole groups
per pass (the Verilog ``fpgagen_conv2d``, whose PE lanes then read PE/(Co/groups) groups' inputs
side by side) asks for ``whole_groups=True``: PE then divides ``Co/groups`` or is a multiple of
it that divides ``Co`` (:func:`pe_choices`; a depthwise conv takes any PE dividing its channels).

A layer's multipliers are ``pe * simd * taps``; its compute cycles per frame are its MACs divided
by that. The config sets a default (``parallelism.pe``/``simd``/``taps``, clipped to each layer's
size when the default does not fit) and per-layer values (``parallelism.layers.<name>``, which
must fit).
"""

from __future__ import annotations

from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.ops import get as get_op


def layer_dims(q: QGraph, layer: QLayer) -> tuple[int, int] | None:
    """(outputs, inputs-per-tap) that PE and SIMD divide, or None for layers without MACs (the op's)."""
    return get_op(layer.op).fold_dims(layer, q.shapes)


def macs(q: QGraph, layer: QLayer) -> int:
    """Multiply-accumulates per frame (the op's count)."""
    return get_op(layer.op).macs(layer, q.shapes)


def kernel_width(layer: QLayer) -> int | None:
    """KW of a conv layer (the taps of a kernel row, which ``taps`` divides), None for other ops."""
    if layer.op != "conv" or layer.weight is None:
        return None
    return int(layer.weight.shape[-1])


def divisors(n: int) -> tuple[int, ...]:
    """The divisors of ``n``, ascending (the PE, SIMD, taps and elements per beat a size allows)."""
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in divisors(n) if d <= cap)


def pe_choices(outs: int, groups: int = 1, whole_groups: bool = False) -> list[int]:
    """The PE values a layer of ``outs`` outputs in ``groups`` groups takes, ascending: the
    divisors of ``outs``; with ``whole_groups`` only those dividing ``outs/groups`` (a pass inside
    one group) or multiples of it (a pass of whole groups)."""
    per = outs // max(groups, 1)
    return [d for d in divisors(outs) if not whole_groups or per % d == 0 or d % per == 0]


def layer_pe_choices(q: QGraph, layer: QLayer, whole_groups: bool = False) -> list[int]:
    """:func:`pe_choices` of a MAC layer (its outputs and, for a conv, its groups)."""
    groups = layer.params.groups if layer.op == "conv" else 1
    return pe_choices(layer_dims(q, layer)[0], groups, whole_groups)


def layer_parallelism(cfg: dict, q: QGraph, layer: QLayer, whole_groups: bool = False) -> tuple[int, int]:
    """(pe, simd) of ``layer``; a per-layer setting that does not fit is an error naming it.

    ``whole_groups``: in a grouped conv PE must divide the output channels of one group
    (``Co/groups``) or be a multiple of them (:func:`pe_choices`) rather than any divisor of ``Co``.
    """
    dims = layer_dims(q, layer)
    if dims is None:
        return 1, 1
    outs, ins = dims
    groups = layer.params.groups if layer.op == "conv" else 1
    pes = layer_pe_choices(q, layer, whole_groups)
    par = cfg.get("parallelism", {}) if cfg else {}
    explicit = (par.get("layers") or {}).get(layer.name)
    if explicit is None:
        pe = max(d for d in pes if d <= max(par.get("pe", 1), 1))
        simd = _largest_divisor_at_most(ins, par.get("simd", 1))
        return pe, simd
    pe, simd = explicit.get("pe", 1), explicit.get("simd", 1)
    if pe > outs or outs % pe:
        raise BackendError(f"parallelism.layers.{layer.name}.pe: {pe} {'exceeds' if pe > outs else 'must divide'} "
                           f"the layer's {outs} outputs (layer {layer.name!r}, {layer.op})")
    if pe not in pes:  # divides Co, but neither divides nor spans the groups' Co/groups outputs
        raise BackendError(f"parallelism.layers.{layer.name}.pe: {pe} must divide the layer's {outs // groups} outputs "
                           f"per group (Co/groups, groups={groups}) or be a multiple of them (whole groups per pass) "
                           f"(layer {layer.name!r}, {layer.op}; allowed: {', '.join(map(str, pes))})")
    if simd > ins or ins % simd:
        verb = "exceeds" if simd > ins else "must divide"
        raise BackendError(f"parallelism.layers.{layer.name}.simd: {simd} {verb} the layer's {ins} inputs per tap "
                           f"(layer {layer.name!r}, {layer.op})")
    return pe, simd


def layer_taps(cfg: dict, q: QGraph, layer: QLayer) -> int:
    """The kernel taps of one row ``layer`` multiplies per cycle (1 for layers other than convs);
    a per-layer setting that does not fit is an error naming it."""
    kw = kernel_width(layer) if layer_dims(q, layer) is not None else None
    par = cfg.get("parallelism", {}) if cfg else {}
    explicit = ((par.get("layers") or {}).get(layer.name) or {}).get("taps")
    if kw is None:
        if explicit not in (None, 1):
            raise BackendError(f"parallelism.layers.{layer.name}.taps: {explicit} given, but taps (kernel taps of a "
                               f"row in parallel) apply to conv layers only; layer {layer.name!r} is {layer.op} "
                               f"(allowed: 1 or leave it out)")
        return 1
    if explicit is None:
        return _largest_divisor_at_most(kw, par.get("taps") or 1)
    if explicit > kw or kw % explicit:
        allowed = ", ".join(map(str, divisors(kw)))
        raise BackendError(f"parallelism.layers.{layer.name}.taps: {explicit} must divide the layer's kernel width "
                           f"{kw} (KW; allowed: {allowed}) (layer {layer.name!r}, {layer.op})")
    return explicit


def layer_folding(cfg: dict, q: QGraph, layer: QLayer, whole_groups: bool = False) -> tuple[int, int, int]:
    """(pe, simd, taps) of ``layer``: :func:`layer_parallelism` and :func:`layer_taps`."""
    return (*layer_parallelism(cfg, q, layer, whole_groups), layer_taps(cfg, q, layer))


def check_parallelism_keys(cfg: dict, q: QGraph) -> None:
    """Every layer named in ``parallelism.layers`` exists and has MACs (and taps only if a conv)."""
    names = {layer.name: layer for layer in q.layers}
    for name in (cfg.get("parallelism", {}).get("layers") or {}):
        if name not in names:
            raise BackendError(f"parallelism.layers.{name}: no layer named {name!r}; layers are: {', '.join(names)}")
        if layer_dims(q, names[name]) is None:
            raise BackendError(
                f"parallelism.layers.{name}: layer {name!r} ({names[name].op}) has no multipliers to parallelise"
            )
        layer_taps(cfg, q, names[name])  # taps: a conv's, dividing its kernel width
