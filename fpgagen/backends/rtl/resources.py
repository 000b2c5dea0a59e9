"""Resource estimates of a generated design, before synthesis.

Per library module instance: its multipliers (one int8 product each) and its memories (weight,
bias and reciprocal ROMs, line buffers, window buffers, FIFOs), each as ``depth x width`` from the
module's own localparams (the formulas below are the Verilog's, written once more in Python:
``tests/test_synth.py`` checks them against the memories Yosys infers from the generated design,
bit for bit). From the memories and a device's block-RAM shapes, an estimate of the block RAMs
(each memory packed into the fewest blocks of one of the device's aspect ratios; small ones left
to logic, as Yosys does). These are estimates: ``fpgagen synth`` gives the tools' counts.
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
    """fpgagen_mac_out's result buffer (NR groups of PE outputs) and its output FIFO."""
    pe, simd = p["PE"], p["SIMD"]
    lv = clog2(simd + 1)
    per = max(chunks, pe)
    rt = lv + pe + 6 + (1 if p.get("LEAKY") else 0)  # a LeakyRelu's product is registered
    nr = (rt + per - 1) // per + 1
    return [Memory("rbuf", "buffer", nr, pe * p["OUT_WIDTH"]), out_fifo(p["OUT_WIDTH"])]


@dataclass(frozen=True)
class ModuleModel:
    """What one instance of a library module costs, from its parameters ``p``."""

    memories: Callable[[dict], list]
    multipliers: Callable[[dict], int]


#: library module -> its resource model, registered (:func:`model_of`) by the builder module of
#: :mod:`fpgagen.backends.rtl` that instantiates it, beside its parameters
MODELS: dict[str, ModuleModel] = {}


def _no_multipliers(p: dict) -> int:
    return 0


def model_of(*modules: str, multipliers: Callable[[dict], int] = _no_multipliers):
    """Decorator: ``memories(p) -> [Memory, ...]`` of one instance of each of ``modules``
    (``multipliers(p)``: its int8 products per cycle); a module registered twice is an error."""
    def deco(fn):
        for module in modules:
            if module in MODELS:
                raise RuntimeError(f"two resource models registered for {module!r}")
            MODELS[module] = ModuleModel(fn, multipliers)
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
