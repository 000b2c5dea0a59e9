"""Automatic folding: per-layer PE, SIMD and taps from a multiplier budget or a throughput target.

FINN's SetFolding, on fpgagen's own cycle model (the Verilog library's analytic cycles, which
simulation measures exactly): a layer with PE x SIMD x taps multipliers (taps: kernel taps of
one row per cycle, convs only, dividing KW) takes
``max(MACs / (PE*SIMD*taps), input elements / EW_IN, output elements / EW_OUT)`` cycles per frame,
the widest streams its module takes (EW_IN a divisor of SIMD, EW_OUT of PE, at most 64 bits a beat:
:mod:`fpgagen.backends.rtl.widths`), the pipeline's interval is its slowest layer's. Layers
without multipliers (pools, add) take ``max(input elements, output elements) / EW``, EW dividing
their channels.

- budget (``parallelism: auto`` with a device's or ``multipliers: N`` budget): the smallest
  interval whose cheapest folding fits the budget; every layer then takes the fewest multipliers
  that keep up with that interval (balanced: no multiplier is bought that the slowest layer
  would leave idle).
- target (``target_cycles: N``, or ``target_fps: F`` at ``hardware.clock_mhz``): the fewest
  multipliers per layer that reach it; a layer that cannot (its stream is the bound) is an error
  naming it and the best it can do.

The budget counts int8 products as a device's DSP blocks hold them (:func:`product_cost`): where a
block computes two (``int8_per_dsp`` 2, the iCE40 SB_MAC16's 8x8 mode) a layer's products take
whole blocks, so an odd count costs one more and a layer that cannot pair its products (wider
than 8 bits) takes a block, two products of budget, for each.

Layers set in ``parallelism.layers`` keep their setting and count against the budget. PE, SIMD
and taps divide a layer's sizes as :mod:`fpgagen.backends.parallelism` says, PE in a grouped conv
inside one group or over whole groups (the rule of the Verilog ``fpgagen_conv2d``, valid for HLS too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fpgagen.backends.parallelism import divisors, kernel_width, layer_dims, layer_folding, layer_pe_choices
from fpgagen.backends.rtl.widths import layer_cycles, pipeline_cycles, port_bound
from fpgagen.devices import DEVICES
from fpgagen.errors import BackendError, ConfigError
from fpgagen.ir.qgraph import QGraph, QLayer


@dataclass(frozen=True)
class Option:
    pe: int
    simd: int
    cycles: int
    taps: int = 1

    @property
    def multipliers(self) -> int:
        return self.pe * self.simd * self.taps

    @property
    def folding(self) -> tuple[int, int, int]:
        return self.pe, self.simd, self.taps


def _products(folding) -> int:
    return math.prod(folding)


def options(q: QGraph, layer: QLayer, max_taps: int | None = None, cost=_products) -> list[Option]:
    """Every valid (PE, SIMD, taps) of a MAC layer (taps at most ``max_taps``) that is not
    dominated (costs less of the budget, faster), sorted by cost (``cost((pe, simd, taps))``, the
    budget its multipliers take: :func:`product_cost`); among equal costs the faster, then the fewer PE,
    then the fewer taps (the wider SIMD: a deeper, narrower ROM, one line buffer bank)."""
    _, ins = layer_dims(q, layer)
    cands = sorted((Option(pe, simd, layer_cycles(q, layer, pe, simd, taps), taps)
                    for pe in layer_pe_choices(q, layer, whole_groups=True) for simd in divisors(ins)
                    for taps in divisors(kernel_width(layer) or 1) if max_taps is None or taps <= max_taps),
                   key=lambda o: (cost(o.folding), o.cycles, o.multipliers, o.pe, o.taps))
    kept: list[Option] = []
    for o in cands:
        if not kept or o.cycles < kept[-1].cycles:
            kept.append(o)
    return kept


def _cheapest(opts: list[Option], interval: int) -> Option | None:
    for o in opts:  # sorted by cost, cycles falling
        if o.cycles <= interval:
            return o
    return None


def product_cost(cfg: dict, q: QGraph):
    """``cost(layer name, (pe, simd, taps))``: the multiplier budget a MAC layer's int8 products
    take on ``hardware.device``. Where a DSP block computes ``k = int8_per_dsp`` > 1 products, a
    layer whose products pair at that folding (:func:`fpgagen.backends.rtl.dsp_pair`: on the
    iCE40 any two, on the 7-series two PE lanes reading one input) takes ``ceil(m / k)`` blocks,
    ``k`` products of budget each, and one that cannot pair a block per product; else ``m``."""
    from fpgagen.backends.rtl import dsp_pair
    from fpgagen.backends.rtl.conv2d import input_lanes

    dev = DEVICES.get(cfg["hardware"].get("device") or "")
    k = dev.int8_per_dsp if dev is not None else 1
    mac = {ly.name: ly for ly in q.layers if layer_dims(q, ly) is not None}

    def cost(name: str, folding) -> int:
        m = math.prod(folding)
        if k == 1:
            return m
        pe, simd = folding[0], folding[1]
        return k * -(-m // k) if dsp_pair(cfg, mac[name], pe, input_lanes(q, mac[name], pe, simd)) else k * m
    return cost


@dataclass
class Folding:
    layers: dict  # name -> (pe, simd, taps) of every MAC layer
    interval: int  # analytic cycles per frame of the pipeline
    multipliers: int
    how: str  # what chose it (for the report)


def fold(q: QGraph, fixed: dict | None = None, budget: int | None = None,
         target_cycles: int | None = None, blocks=None, block_budget: int | None = None,
         max_taps: int | None = None, cost=None) -> Folding:
    """Per-layer (PE, SIMD, taps): the fastest within ``budget``, or the cheapest reaching ``target_cycles``
    (``fixed``: name -> (pe, simd, taps) of the layers set by hand; ``max_taps``: the most kernel
    taps of a row any free conv layer may take, default no limit; ``cost(name, (pe, simd, taps))``:
    the budget a layer's multipliers take, :func:`product_cost`, default one each).

    With ``blocks`` (``(layer, option) -> block RAMs`` of the memories that grow with its
    parallelism) and ``block_budget`` (the blocks those may take together), an interval counts
    only where the layers' blocks fit too: each starts at its cheapest option, then the layers
    trade multipliers for blocks (a wider ROM word can pack better) while the budget allows."""
    fixed = fixed or {}
    cost_of = cost or (lambda name, f: math.prod(f))
    mac_layers = [ly for ly in q.layers if layer_dims(q, ly) is not None]
    free = [ly for ly in mac_layers if ly.name not in fixed]
    opts = {ly.name: options(q, ly, max_taps, lambda f, n=ly.name: cost_of(n, f)) for ly in free}
    by_name = {ly.name: ly for ly in free}

    def pick(interval: int) -> dict | None:
        """name -> Option for ``interval``: the least budget, then blocks traded in."""
        chosen = {}
        for ly in free:
            o = _cheapest(opts[ly.name], interval)
            if o is None:
                return None
            chosen[ly.name] = o
        if blocks is None or block_budget is None:
            return chosen
        cost = {n: blocks(by_name[n], o) for n, o in chosen.items()}
        mults = fixed_mults + sum(cost_of(n, o.folding) for n, o in chosen.items())
        while sum(cost.values()) > block_budget:
            best = None  # (blocks saved per extra multiplier, name, option, its blocks)
            for n, cur in chosen.items():
                for o in opts[n]:
                    if o.cycles > interval or o == cur:
                        continue
                    b = blocks(by_name[n], o)
                    extra = cost_of(n, o.folding) - cost_of(n, cur.folding)
                    if b >= cost[n] or (budget is not None and mults + extra > budget):
                        continue
                    score = (cost[n] - b) / max(extra, 0.5)
                    if best is None or score > best[0]:
                        best = (score, n, o, b)
            if best is None:
                return None
            _, n, o, b = best
            mults += cost_of(n, o.folding) - cost_of(n, chosen[n].folding)
            chosen[n], cost[n] = o, b
        return chosen
    floor = max([layer_cycles(q, ly) for ly in q.layers if layer_dims(q, ly) is None] +
                [layer_cycles(q, ly, *fixed[ly.name]) for ly in mac_layers if ly.name in fixed] +
                [opts[ly.name][-1].cycles for ly in free] + [port_bound(q), 1])
    fixed_mults = sum(cost_of(n, f) for n, f in fixed.items())

    def total(interval: int) -> int | None:
        chosen = pick(interval)
        return None if chosen is None else fixed_mults + sum(cost_of(n, o.folding) for n, o in chosen.items())

    if target_cycles is not None:
        if target_cycles < floor:
            slow = max(q.layers, key=lambda ly: (opts[ly.name][-1].cycles if ly.name in opts else
                                                 layer_cycles(q, ly, *fixed.get(ly.name, (1, 1, 1)))))
            raise BackendError(
                f"parallelism.target_cycles: {target_cycles} cycles per frame cannot be reached: layer "
                f"{slow.name!r} ({slow.op}) takes at least {floor} (its streams at their widest)")
        interval, how = target_cycles, f"fewest multipliers for <= {target_cycles} cycles/frame"
    else:
        if budget is None:
            raise ConfigError("parallelism: auto needs a budget or a target: hardware.device, hardware.multipliers "
                              "or parallelism.multipliers, or parallelism.target_cycles / target_fps")
        least = total(max(opt[0].cycles for opt in opts.values()) if opts else floor)
        if least is not None and least > budget or fixed_mults > budget:
            raise BackendError(
                f"parallelism: even one multiplier per layer needs {max(least or 0, fixed_mults)} multipliers, "
                f"more than the budget of {budget} (hardware.multipliers / parallelism.multipliers)")
        # the candidate intervals: every cycle count a layer can take, at or above the floor
        cands = sorted({o.cycles for opt in opts.values() for o in opt if o.cycles >= floor} | {floor})
        lo, hi = 0, len(cands) - 1  # cost falls as the interval grows: the first that fits
        while lo < hi:
            mid = (lo + hi) // 2
            c = total(cands[mid])
            if c is not None and c <= budget:
                hi = mid
            else:
                lo = mid + 1
        interval, how = cands[lo], f"fastest within {budget} multipliers"
    picked = pick(interval)
    if picked is None:  # a target the blocks cannot meet
        raise BackendError(f"parallelism: no folding reaches {interval} cycles/frame within {block_budget} "
                           f"block RAMs for the weight ROMs and input buffers (estimated)")
    chosen = dict(fixed)
    chosen.update({n: o.folding for n, o in picked.items()})
    real = pipeline_cycles(q, chosen)
    return Folding({ly.name: chosen[ly.name] for ly in mac_layers}, real,
                   sum(math.prod(f) for f in chosen.values()), how)


def _block_model(cfg: dict, q: QGraph, fixed: dict):
    """With ``hardware.device``: ``(layer, option) -> blocks`` and the blocks the free MAC layers
    may take (the device's less a margin, less the pools', FIFOs' and fixed layers' estimated
    blocks); else (None, None)."""
    from fpgagen.backends.rtl.resources import mac_layer_blocks
    from fpgagen.backends.verilog import estimate_resources, plan_design

    dev = DEVICES.get(cfg["hardware"].get("device") or "")
    if dev is None:
        return None, None
    mac = [ly for ly in q.layers if layer_dims(q, ly) is not None]
    ones = {ly.name: fixed.get(ly.name, (1, 1, 1)) for ly in mac}
    par = dict(cfg["parallelism"], auto=False, layers={n: dict(zip(("pe", "simd", "taps"), f)) for n, f in ones.items()})
    total = estimate_resources(plan_design(q, dict(cfg, parallelism=par)), cfg["hardware"])["total"]["brams"]
    free_now = sum(mac_layer_blocks(q, ly, 1, 1, dev.family) for ly in mac if ly.name not in fixed)

    def blocks(layer, o: Option) -> int:
        return mac_layer_blocks(q, layer, o.pe, o.simd, dev.family, o.taps)

    # a margin of 2 % (at least one block): the estimate came within a block or two of the tools
    return blocks, dev.brams - max(1, dev.brams // 50) - (total - free_now)


def folding_text(folding) -> str:
    """``PE 4 x SIMD 8`` (``x taps 5`` when taps are unrolled)."""
    pe, simd, taps = folding
    return f"PE {pe} x SIMD {simd}" + (f" x taps {taps}" if taps > 1 else "")


def apply_folding(cfg: dict, q: QGraph) -> Folding | None:
    """Resolve ``parallelism`` for ``q``: an automatic folding is written into
    ``cfg["parallelism"]["layers"]`` (so the saved config repeats it exactly); a manual one is
    checked against the multiplier budget. Returns the automatic folding, else None."""
    par, hw = cfg["parallelism"], cfg["hardware"]
    budget = par.get("multipliers") or hw.get("multipliers")
    target = par.get("target_cycles")
    if par.get("target_fps"):
        clock = hw.get("clock_mhz")
        if not clock:
            raise ConfigError("parallelism.target_fps: needs a clock: set hardware.clock_mhz or hardware.device")
        target = int(clock * 1e6 // par["target_fps"])
    cost = product_cost(cfg, q)
    if not par.get("auto"):
        if budget is not None:
            used = {ly.name: layer_folding(cfg, q, ly, whole_groups=True) for ly in q.layers
                    if layer_dims(q, ly) is not None}
            total = sum(cost(n, f) for n, f in used.items())
            if total > budget:
                big = max(used, key=lambda n: math.prod(used[n]))
                products = sum(math.prod(f) for f in used.values())
                as_blocks = "" if total == products else f" of budget (its {products} products in DSP blocks)"
                raise BackendError(
                    f"parallelism: the design needs {total} multipliers{as_blocks}, more than the budget of {budget} "
                    f"({'parallelism.multipliers' if par.get('multipliers') else 'hardware.multipliers'}); the "
                    f"largest is layer {big!r} with {folding_text(used[big])} = "
                    f"{math.prod(used[big])}; use parallelism: auto or smaller pe/simd/taps")
        return None
    fixed = {}
    for ly in q.layers:
        if ly.name in (par.get("layers") or {}):
            fixed[ly.name] = layer_folding(cfg, q, ly, whole_groups=True)
    blocks, block_budget = _block_model(cfg, q, fixed)
    f = fold(q, fixed, None if target is not None else budget, target, blocks, block_budget, par.get("taps"), cost)
    if block_budget is not None:
        f.how += f" and the {hw['device']}'s block RAMs (estimated)"
    need = sum(cost(n, fo) for n, fo in f.layers.items())
    if target is not None and budget is not None and need > budget:
        raise BackendError(f"parallelism: reaching {target} cycles/frame needs {need} multipliers, more "
                           f"than the budget of {budget}")
    # the saved config names every layer's folding and no longer folds: it repeats exactly
    par["layers"] = {name: dict(zip(("pe", "simd", "taps"), fo)) for name, fo in f.layers.items()}
    par.update(auto=False, target_cycles=None, target_fps=None)
    return f
