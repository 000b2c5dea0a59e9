"""Resource estimates of a generated design, before synthesis.

Per library module instance: its multipliers (int8 products per cycle), the DSP blocks they take
(one each, or two products per block where fpgagen_mac_out pairs them) and its memories (weight,
bias and reciprocal ROMs, line buffers, window buffers, FIFOs), each as ``depth x width`` from the
module's own localparams (the formulas below are the Verilog's, written once more in Python:
``tests/test_synth.py`` checks them against the memories Yosys infers from the generated design,
bit for bit). From the memories and a device's block-RAM shapes, an estimate of the block RAMs
(each memory packed into the fewest blocks of one of the device's aspect ratios; small ones left
to logic, as Yosys does). LUTs and flip-flops: :func:`logic`, a linear model of each instance's
parameters fitted to Yosys and nextpnr by ``tools/fit_logic.py`` (the width converter and the
wide lane modules by ``tools/fit_wide.py``; the errors against synthesis:
README, "Devices and `fpgagen synth`"). These are estimates: ``fpgagen synth`` gives the tools' counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from fpgagen.errors import BackendError


@dataclass(frozen=True)
class Memory:
    """One memory of a module instance (``count`` identical copies)."""

    name: str
    kind: str  # "rom" (constants: $readmemh) or "buffer" (written at run time)
    depth: int
    width: int
    count: int = 1
    #: declared ``(* rom_style = "block" *)``: the tools put it in block RAM whatever its size
    block: bool = False

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.count


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def out_fifo(width: int) -> Memory:
    """The 2-deep output fpgagen_fifo of a module."""
    return Memory("out", "buffer", 2, width + 1)


def mac_out(p: dict, chunks: int) -> list[Memory]:
    """fpgagen_mac_out's result buffer (NR groups of PE outputs, leaving in PE/EW_OUT beats) and
    its output FIFO (EW_OUT elements a word)."""
    pe, simd, ew = p["PE"], p["SIMD"], p.get("EW_OUT", 1)
    lv = clog2(simd + 1)
    per = max(chunks, pe // ew)
    rt = lv + pe // ew + 6 + (1 if p.get("LEAKY") else 0)  # a LeakyRelu's product is registered
    nr = (rt + per - 1) // per + 1
    return [Memory("rbuf", "buffer", nr, pe * p["OUT_WIDTH"]), out_fifo(ew * p["OUT_WIDTH"])]


@dataclass(frozen=True)
class ModuleModel:
    """What one instance of a library module costs, from its parameters ``p``."""

    memories: Callable[[dict], list]
    multipliers: Callable[[dict], int]
    #: ``holds(p)``: the most input elements one instance takes beyond those its outputs so far
    #: account for (what a join's FIFO on a parallel branch must absorb); None: its buffers' words
    holds: Callable[[dict], int] | None = None


#: library module -> its resource model, registered (:func:`model_of`) by the builder module of
#: :mod:`fpgagen.backends.rtl` that instantiates it, beside its parameters
MODELS: dict[str, ModuleModel] = {}


def _no_multipliers(p: dict) -> int:
    return 0


def model_of(*modules: str, multipliers: Callable[[dict], int] = _no_multipliers,
             holds: Callable[[dict], int] | None = None):
    """Decorator: ``memories(p) -> [Memory, ...]`` of one instance of each of ``modules``
    (``multipliers(p)``: its int8 products per cycle; ``holds(p)``: see :attr:`ModuleModel.holds`,
    for modules that take more input than they store, e.g. a pool or a conv that drops rows, or
    store words of several elements); a module registered twice is an error."""
    def deco(fn):
        for module in modules:
            if module in MODELS:
                raise RuntimeError(f"two resource models registered for {module!r}")
            MODELS[module] = ModuleModel(fn, multipliers, holds)
        return fn
    return deco


def _model(module: str) -> ModuleModel:
    try:
        return MODELS[module]
    except KeyError:
        raise BackendError(f"no resource model for library module {module!r}: its builder module in "
                           f"fpgagen.backends.rtl registers one (@model_of), and fpgagen.backends.verilog "
                           f"imports them all") from None


def memories(module: str, p: dict) -> list[Memory]:
    """The memories of one instance of library ``module`` with parameters ``p``."""
    return _model(module).memories(p)


def multipliers(module: str, p: dict) -> int:
    """int8 x int8 products per cycle of one instance."""
    return _model(module).multipliers(p)


def dsp_blocks(module: str, p: dict) -> int:
    """DSP blocks one instance takes: a block per product, or with fpgagen_mac_out's
    ``DSP_PAIR`` two products per block (``ceil(products / 2)``, fpgagen_mul8x8x2 each)."""
    m = multipliers(module, p)
    return -(-m // 2) if p.get("DSP_PAIR") else m


#: elements of registers (output stages, skid buffers) an instance may hold besides its memories
PIPELINE_ELEMENTS = 4


def holds(module: str, p: dict) -> int:
    """Input elements one instance of ``module`` may take beyond what its outputs so far account for
    (its model's ``holds``, in elements, else the words of its buffers, EW elements a word on a
    wide stream), plus :data:`PIPELINE_ELEMENTS` registers (of EW elements each): what sizes the
    FIFO of a join input whose parallel branch goes through the instance."""
    model = _model(module)
    ew = int(p.get("EW", 1))
    if model.holds is not None:
        return int(model.holds(p)) + PIPELINE_ELEMENTS * ew
    return (sum(m.depth * m.count for m in model.memories(p) if m.kind == "buffer") + PIPELINE_ELEMENTS) * ew


#: block RAM shapes per device family, (depth, width) per aspect ratio
BLOCK_SHAPES = {
    "ice40": [(256, 16), (512, 8), (1024, 4), (2048, 2)],  # SB_RAM40_4K
    "ecp5": [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)],  # DP16KD
    "xc7": [(512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1)],  # RAMB36E1
}
#: the shallowest buffer Yosys puts in a block RAM rather than in logic (flip-flops on the
#: iCE40, which has no LUT RAM; LUT RAM on ECP5 and 7-series), read off its memory_libmap
#: decisions on the benchmark designs; the small ROMs (biases, reciprocals) stay in logic, the
#: weight ROMs are forced into blocks. An estimate, an upper bound where Yosys prunes constant
#: bit columns of a ROM
MIN_BLOCK_DEPTH = {"ice40": 8, "ecp5": 65, "xc7": 65}


def blocks(mem: Memory, family: str) -> int:
    """Block RAMs ``mem`` takes on ``family`` (0 when it stays in logic)."""
    if not mem.block and (mem.kind == "rom" or mem.depth < MIN_BLOCK_DEPTH[family]):
        return 0
    one = min(math.ceil(mem.depth / d) * math.ceil(mem.width / w) for d, w in BLOCK_SHAPES[family])
    return one * mem.count


def mac_layer_blocks(q, layer, pe: int, simd: int, family: str, taps: int = 1) -> int:
    """Block RAMs of a conv/dense layer's weight ROM and input buffer at ``pe`` x ``simd`` (x ``taps``, a conv's KU) (the
    memories that grow with its parallelism), from :func:`memories` of the module's parameters."""
    x_bits = layer.in_fmts[0].word
    p = {"PE": pe, "SIMD": simd, "W_WIDTH": layer.w_fmt.word if layer.w_fmt is not None else 8,
         "IN_WIDTH": x_bits, "BIAS_WIDTH": 0, "OUT_WIDTH": 0}  # the bias ROM and outputs stay in logic
    if layer.op == "conv":
        c, h, w = q.shapes[layer.inputs[0]]
        a = layer.params
        p.update(CI=c, CO=q.shapes[layer.output][0], GROUPS=a.groups, H=h, W=w, KU=taps,
                 KH=a.kernel[0], KW=a.kernel[1], SH=a.stride[0], SW=a.stride[1],
                 PAD_T=a.pads[0], PAD_L=a.pads[1], PAD_B=a.pads[2], PAD_R=a.pads[3])
        module = "fpgagen_conv2d"
    else:
        p.update(N_IN=q.shapes[layer.inputs[0]][0], N_OUT=q.shapes[layer.output][0])
        module = "fpgagen_dense"
    return sum(blocks(m, family) for m in memories(module, p) if m.name in ("wrom", "lbuf", "xbuf"))


# -- logic: LUTs and flip-flops -------------------------------------------------------------------
#: parameters that size a counter or an address (one term: the sum of their bit widths)
_SIZE_KEYS = ("H", "W", "C", "CI", "CO", "N_IN", "N_OUT", "KH", "KW", "SH", "SW", "LENGTH", "DEPTH", "PIXELS",
              "C0", "C1", "FH", "FW", "GROUPS")
#: parameters that are a stream's or a datapath's width
_WIDTH_KEYS = ("IN_WIDTH", "IN0_WIDTH", "IN1_WIDTH", "OUT_WIDTH", "WIDTH", "ACC_WIDTH", "RECIP_WIDTH")


def logic_terms(module: str, p: dict, family: str) -> dict[str, float]:
    """The terms the LUT / flip-flop model of one instance is linear in, from its parameters:

    - ``one``: a constant (the control, the AXI-Stream handshakes);
    - ``ctr``: the bits of its counters and addresses (sum of ``clog2(n + 1)`` of its sizes);
    - ``data``: its stream and requantization widths (``IN_WIDTH``, ``OUT_WIDTH``, ``ACC_WIDTH``, ...);
    - ``mem``: the bits of its buffers left in logic on ``family`` (flip-flops and read multiplexers
      on the iCE40, LUT RAM on the ECP5 and the 7-series), ``rom``: of its ROMs in logic (biases,
      reciprocals: LUTs); ``banks``: width x copies of its memories (their write and read muxes);
    - conv2d / dense: ``mult``: int8 products (the adder tree behind them, a multiplier in LUTs
      where Yosys leaves it there), ``acc``: accumulator bits (PE x ACC_WIDTH), ``addr``: the
      conv's signed position registers (``PS`` bits each), ``pairs``: DSP48E1 pairs sharing an
      input (``DSP_PAIR`` 2), whose adders are fabric;
    - dwc: ``data``: the bits of its gearbox (2*EW_A + EW_B elements), ``ctr``: its occupancy
      counter, ``mux``: the bits of an input beat (EW_A x WIDTH; the multiplexers that write any
      input element into any place of the gearbox grow with it).
    """
    mems = memories(module, p)
    t = {"one": 1.0,
         "ctr": float(sum(clog2(int(p[k]) + 1) for k in _SIZE_KEYS if k in p)),
         "data": float(sum(int(p[k]) for k in _WIDTH_KEYS if k in p)),
         "mem": float(sum(m.bits for m in mems if m.kind == "buffer" and blocks(m, family) == 0)),
         "rom": float(sum(m.bits for m in mems if m.kind == "rom" and blocks(m, family) == 0)),
         "banks": float(sum(m.width * m.count for m in mems))}
    if module in ("fpgagen_conv2d", "fpgagen_dense"):
        t["mult"] = float(multipliers(module, p) * (p.get("IN_WIDTH", 8) + p.get("W_WIDTH", 8)) / 16)
        # the accumulator bits, pre-aligned ones included (per-channel weight formats: ALIGN_MAX)
        t["acc"] = float(p["PE"] * (p.get("ACC_WIDTH", 24) + p.get("ALIGN_MAX", 0)))
        # DSP_PAIR 2 (two products sharing an input per 7-series DSP48E1): the fabric's packing
        # and borrow-correction adders and the registers beside them, per pair
        t["pairs"] = float(multipliers(module, p) // 2 if p.get("DSP_PAIR") == 2 else 0)
        n_in, n_out = p.get("CI", p.get("N_IN", 1)), p.get("CO", p.get("N_OUT", 1))
        t["ctr"] += clog2(n_in // p["SIMD"] + 1) + clog2(n_out // p["PE"] + 1)  # chunk and group counters
    if module == "fpgagen_dwc":  # its gearbox: CAP = 2*EW_A + EW_B elements in registers, each
        cap = 2 * p["EW_A"] + p["EW_B"]  # written from any of the EW_A input elements
        t["data"] = float(cap * p["WIDTH"])
        t["ctr"] = float(clog2(cap + 1))  # the occupancy counter
        t["mux"] = float(p["EW_A"] * p["WIDTH"])
    if module == "fpgagen_conv2d":
        t["addr"] = float(clog2(4 * p["H"] * p["W"] * (p["CI"] // p["SIMD"]) + 2) + 2)
    return t


#: the LUT / flip-flop model: per family and module (the ``fpgagen_`` prefix dropped), the
#: coefficients of :func:`logic_terms` for Yosys' LUTs and flip-flops of one instance (its
#: submodules included; on the ECP5 a 16 x 4 LUT RAM counted as its 4 LUTs). Fitted by
#: ``tools/fit_logic.py`` (non-negative least squares over a sweep of designs, every instance
#: synthesised by Yosys on its own; a module seen in few instances gets fewer terms; a term the fit
#: set to zero is left out; Yosys 0.70, 2026-12-03).
LOGIC: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "ice40": {
        "act": {"lut": {"mem": 7.417}, "ff": {"mem": 3.847}},
        "add": {"lut": {"one": 79.0}, "ff": {"one": 54.0}},
        "avgpool": {"lut": {"one": 820.0}, "ff": {"one": 405.0}},
        "concat": {"lut": {"data": 4.008}, "ff": {"data": 2.208}},
        "conv2d": {
            "lut": {"data": 1.34, "mem": 0.471, "mult": 6.601, "acc": 4.882, "addr": 44.077},
            "ff": {"one": 1.953, "data": 7.582, "mem": 0.789, "banks": 2.141, "addr": 12.486}},
        "dense": {
            "lut": {"ctr": 1.549, "data": 1.615, "mem": 0.326, "rom": 0.061, "banks": 1.043, "acc": 3.496},
            "ff": {"ctr": 3.984, "data": 0.741, "mem": 0.512, "rom": 0.03, "banks": 1.807, "acc": 0.904}},
        "fifo": {"lut": {"ctr": 7.879, "banks": 1.131}, "ff": {"ctr": 4.03, "banks": 2.273}},
        "fork": {"lut": {"data": 3.75}, "ff": {"data": 5.0}},
        # fpgagen_dwc: fitted by tools/fit_wide.py (see LANE_SHARE)
        "dwc": {"lut": {"ctr": 4.259, "mux": 5.253}, "ff": {"one": 3.021, "ctr": 1.459, "data": 0.886, "mux": 0.307}},
        "gap": {"lut": {"data": 5.121, "mem": 0.382}, "ff": {"data": 2.995, "mem": 0.08}},
        "hwc_to_chw": {"lut": {"one": 77.0}, "ff": {"one": 54.0}},
        "maxpool": {"lut": {"mem": 16.309}, "ff": {"mem": 10.086}},
        "pad": {"lut": {"mem": 3.097}, "ff": {"mem": 3.111}},
        "resize": {"lut": {"mem": 7.067}, "ff": {"mem": 5.511}},
    },
    "ecp5": {
        "act": {"lut": {"mem": 10.361}, "ff": {"mem": 2.847}},
        "add": {"lut": {"one": 99.0}, "ff": {"one": 36.0}},
        "avgpool": {"lut": {"one": 1068.0}, "ff": {"one": 385.0}},
        "concat": {"lut": {"data": 4.583}, "ff": {"data": 1.458}},
        "conv2d": {
            "lut": {"one": 419.176, "mult": 20.361, "acc": 5.669, "addr": 40.88},
            "ff": {"data": 5.574, "banks": 1.223, "mult": 44.92, "addr": 22.746}},
        "dense": {
            "lut": {"one": 41.069, "ctr": 1.874, "data": 1.049, "mem": 0.019, "rom": 0.259, "mult": 19.27, "acc": 5.931},
            "ff": {"ctr": 0.44, "data": 1.356, "mem": 0.05, "banks": 2.01, "mult": 32.595}},
        "fifo": {"lut": {"ctr": 5.152, "banks": 8.253}, "ff": {"ctr": 4.818, "banks": 1.364}},
        "fork": {"lut": {"data": 3.75}, "ff": {"data": 5.0}},
        # fpgagen_dwc: fitted by tools/fit_wide.py (see LANE_SHARE)
        "dwc": {
            "lut": {"one": 105.079, "mux": 6.549},
            "ff": {"one": 3.021, "ctr": 1.459, "data": 0.886, "mux": 0.307}},
        "gap": {"lut": {"data": 6.378, "mem": 0.12}, "ff": {"data": 2.733, "mem": 0.006}},
        "hwc_to_chw": {"lut": {"one": 172.0}, "ff": {"one": 39.0}},
        "maxpool": {"lut": {"data": 31.133, "mem": 0.272}, "ff": {"data": 17.057, "mem": 0.039}},
        "pad": {"lut": {"mem": 3.292}, "ff": {"mem": 2.111}},
        "resize": {"lut": {"data": 5.173, "mem": 0.397}, "ff": {"data": 6.997, "mem": 0.024}},
    },
    "xc7": {
        "act": {"lut": {"mem": 5.236}, "ff": {"mem": 2.847}},
        "add": {"lut": {"one": 40.0}, "ff": {"one": 36.0}},
        "avgpool": {"lut": {"one": 538.0}, "ff": {"one": 375.0}},
        "concat": {"lut": {"data": 2.417}, "ff": {"data": 1.458}},
        # "pairs" (DSP_PAIR 2, after the sweep): not fitted by tools/fit_logic.py but measured, Yosys
        # 0.70 synth_xilinx of fpgagen_mac_out at PE 2 and 8 x SIMD 4 with DSP_PAIR 0 and 2
        # (2026-12-04): +17.0 / +17.9 LUTs and +16.5 flip-flops per pair
        "conv2d": {
            "lut": {"data": 0.27, "mult": 8.68, "acc": 2.545, "addr": 34.709, "pairs": 17.9},
            "ff": {"one": 201.942, "data": 3.098, "banks": 1.894, "mult": 1.32, "addr": 7.829, "pairs": 16.5}},
        "dense": {
            "lut": {"data": 0.886, "mem": 0.01, "rom": 0.031, "banks": 0.769, "mult": 1.642, "acc": 1.784, "pairs": 17.9},
            "ff": {"data": 0.721, "mem": 0.034, "rom": 0.137, "banks": 1.286, "acc": 1.669, "pairs": 16.5}},
        "fifo": {"lut": {"banks": 3.587}, "ff": {"banks": 3.579}},
        "fork": {"lut": {"data": 3.25}, "ff": {"data": 5.0}},
        # fpgagen_dwc: fitted by tools/fit_wide.py (see LANE_SHARE)
        "dwc": {"lut": {"ctr": 6.25, "mux": 3.5}, "ff": {"one": 3.021, "ctr": 1.459, "data": 0.886, "mux": 0.307}},
        "gap": {"lut": {"data": 3.756}, "ff": {"data": 2.41, "mem": 0.038}},
        "hwc_to_chw": {"lut": {"one": 45.0}, "ff": {"one": 39.0}},
        "maxpool": {"lut": {"data": 23.473, "mem": 0.057}, "ff": {"data": 17.057, "mem": 0.039}},
        "pad": {"lut": {"mem": 1.611}, "ff": {"mem": 2.111}},
        "resize": {"lut": {"data": 6.104, "mem": 0.052}, "ff": {"data": 6.997, "mem": 0.024}},
    },
}
#: the per-instance counts -> what ``fpgagen synth`` reports of the whole (flattened) design: LUTs
#: = ``lut`` x the LUTs + ``ff`` x the flip-flops (on Lattice parts nextpnr's cells, ICESTORM_LC /
#: TRELLIS_COMB: one a LUT, and one a flip-flop that does not pair with a LUT; on the 7-series Yosys'
#: LUTs, a scale), flip-flops = ``ff_ff`` x the flip-flops. Fitted by ``tools/fit_logic.py`` on the
#: totals of the sweep designs that place and route (2026-12-03, nextpnr 0.11).
PACKING: dict[str, dict[str, float]] = {
    "ice40": {"lut": 1.0, "ff": 0.635, "ff_ff": 0.935},
    "ecp5": {"lut": 1.0, "ff": 0.131, "ff_ff": 0.932},
    "xc7": {"lut": 0.923, "ff": 0.0, "ff_ff": 0.868},
}


#: wide streams (parameter EW > 1): per family and module, the share of a streaming module's LUTs
#: and of its flip-flops that is repeated per lane (datapath registers, comparators, adders,
#: requantizers; the control is not), so an instance of EW lanes costs (1 + share * (EW - 1)) times
#: its EW = 1 estimate. Fitted with the dwc rows of :data:`LOGIC` by ``tools/fit_wide.py``
#: (Yosys 0.70, 2026-12-04; ``python tools/fit_wide.py --json build/fit_wide.json --write``): the
#: lane modules in two designs (8 channels of 8x8, 16 of 6x6) generated with every stream at EW 1,
#: 2, 4, 8, each instance synthesised on its own (as ``tools/fit_logic.py`` does), per family and
#: module least squares of the relative growth over EW 1; the converter standalone at 14 pairs
#: (EW_A, EW_B) of 8-bit and 8 of 16-bit elements, non-negative least squares on its terms. Their
#: errors: README, "Devices and `fpgagen synth`".
LANE_SHARE: dict[str, dict[str, dict[str, float]]] = {
    "ice40": {
        "act": {"lut": 0.786, "ff": 0.695},
        "add": {"lut": 0.578, "ff": 0.62},
        "concat": {"lut": 0.633, "ff": 0.59},
        "pad": {"lut": 0.142, "ff": 0.568},
        "maxpool": {"lut": 0.214, "ff": 0.343},
        "resize": {"lut": 0.082, "ff": 0.358},
        "avgpool": {"lut": 0.591, "ff": 1.059},
        "gap": {"lut": 0.516, "ff": 0.887},
    },
    "ecp5": {
        "act": {"lut": 0.825, "ff": 0.63},
        "add": {"lut": 0.621, "ff": 0.479},
        "concat": {"lut": 0.613, "ff": 0.439},
        "pad": {"lut": 0.161, "ff": 0.414},
        "maxpool": {"lut": 0.084, "ff": 0.294},
        "resize": {"lut": 0.0, "ff": 0.194},
        "avgpool": {"lut": 0.242, "ff": 0.596},
        "gap": {"lut": 0.356, "ff": 0.454},
    },
    "xc7": {
        "act": {"lut": 0.865, "ff": 0.63},
        "add": {"lut": 0.621, "ff": 0.479},
        "concat": {"lut": 0.715, "ff": 0.437},
        "pad": {"lut": 0.007, "ff": 0.414},
        "maxpool": {"lut": 0.213, "ff": 0.294},
        "resize": {"lut": 0.0, "ff": 0.194},
        "avgpool": {"lut": 0.511, "ff": 0.583},
        "gap": {"lut": 0.439, "ff": 0.454},
    },
}


def lane_factor(module: str, p: dict, family: str) -> tuple[float, float]:
    """How many times its EW = 1 LUTs and flip-flops one instance of ``module`` with parameters
    ``p`` takes on ``family``: 1 + share x (EW - 1) each (:data:`LANE_SHARE`; 1 for a module not
    listed: conv2d and dense, whose models count their parallelism)."""
    ew = int(p.get("EW", 1))
    share = LANE_SHARE[family].get(module.removeprefix("fpgagen_"), {"lut": 0.0, "ff": 0.0})
    return 1.0 + share["lut"] * (ew - 1), 1.0 + share["ff"] * (ew - 1)


def instance_logic(module: str, p: dict, family: str) -> tuple[float, float]:
    """Estimated LUTs and flip-flops of one instance of library ``module`` on ``family`` as Yosys
    counts them with the instance synthesised on its own (what :data:`LOGIC` is fitted to): the
    linear model of its parameters at one element per beat (:func:`logic_terms`), scaled by
    :func:`lane_factor` for a wide stream."""
    coef = LOGIC[family].get(module.removeprefix("fpgagen_"))
    if coef is None:
        raise KeyError(f"no LUT/FF model of {module} for {family}: run tools/fit_logic.py")
    lut_lanes, ff_lanes = lane_factor(module, p, family)
    t = logic_terms(module, {k: v for k, v in p.items() if k != "EW"}, family)
    lut = sum(c * t[k] for k, c in coef["lut"].items())
    ff = sum(c * t[k] for k, c in coef["ff"].items())
    return lut * lut_lanes, ff * ff_lanes


def logic(module: str, p: dict, family: str) -> tuple[float, float]:
    """Estimated LUTs and flip-flops of one instance of library ``module`` on ``family`` (LUT4 on
    the iCE40 and the ECP5, LUT6 on the 7-series), as ``fpgagen synth`` counts them:
    :func:`instance_logic` through :data:`PACKING`."""
    lut, ff = instance_logic(module, p, family)
    pk = PACKING[family]
    return pk["lut"] * lut + pk["ff"] * ff, pk["ff_ff"] * ff
