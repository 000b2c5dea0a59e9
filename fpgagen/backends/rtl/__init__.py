"""Parameter builders for the hand-written Verilog layer library (``templates/verilog``).

Each builder turns one layer of the integer IR into an :class:`RtlInstance`: the library
module to instantiate, its parameters in declaration order, the contents of the ``.mem`` files
its ROMs load with ``$readmemh``, the analytic cycles per frame and a one-line description.
Builders raise :class:`fpgagen.errors.BackendError` naming the layer for what the module
cannot do; they never write files.

Each builder module also registers the emitter of its op(s) (``@emits``, into :data:`EMITTERS`):
what :mod:`fpgagen.backends.verilog` calls per layer. That module imports every module of this
package, so a new op's Verilog lives in its builder module (and its library ``.v`` file) only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpgagen.backends.parallelism import divisors, layer_parallelism
from fpgagen.errors import BackendError
from fpgagen.ir.format import channel_formats_text
from fpgagen.names import quoted
from fpgagen.tables import registrar

#: IR op -> its Verilog emitter ``(prefix, q, layer, cfg, source, ew=(1, 1)) -> ([RtlInstance, ...], pe, simd)``:
#: one instance, or a chain of stages (a concat of more than two inputs); ``prefix`` names its ROM
#: files, ``source(tensor)`` is the tensor whose stream carries ``tensor`` (a relabelled flatten's input),
#: ``ew`` the elements per beat of its input and output streams (:mod:`fpgagen.backends.rtl.widths`)
EMITTERS: dict = {}
#: register the Verilog emitter of IR ops (one per op; a second is an error)
emits = registrar(EMITTERS, "Verilog emitters")


def simple(builder):
    """The emitter of a one-instance layer without parallelism: ``builder(q, layer, ew=EW)`` (its
    streams' elements per beat, one for the input and the output: a lane module)."""
    return lambda prefix, q, layer, cfg, source, ew=(1, 1): ([builder(q, layer, ew=ew[0])], 1, 1)


def load_builders() -> None:
    """Import every builder module of this package: each registers its op's emitter and stream
    width rule (:mod:`fpgagen.backends.rtl.widths`)."""
    import importlib
    import pkgutil

    for m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{m}")


def mac_parallelism(cfg, q, layer) -> tuple[int, int]:
    """PE, SIMD of a conv/dense layer (the fpgagen_conv2d rule: PE divides Co/groups or is a
    multiple of it dividing Co)."""
    return layer_parallelism(cfg, q, layer, whole_groups=True)


@dataclass
class RtlInstance:
    """One library module instance: ``module #(params) u_<name> (...)``."""

    #: library module name, e.g. ``fpgagen_dense`` (file ``templates/verilog/<module>.v``)
    module: str
    #: parameters in declaration order, name -> int or str (a str is rendered quoted)
    params: dict = field(default_factory=dict)
    #: ``.mem`` file name -> text (hex words, one per line), loaded by ``$readmemh``
    mems: dict = field(default_factory=dict)
    #: analytic clock cycles per frame in steady state (frames back to back)
    cycles: int = 0
    #: short description: formats, sizes, parallelism
    describe: str = ""


def hex_words(values, width: int) -> list[str]:
    """Each integer as a ``width``-bit two's-complement word in hex (zero-padded, lower case)."""
    digits = (width + 3) // 4
    mask = (1 << width) - 1
    out = []
    for v in values:
        v = int(v)
        if not -(1 << (width - 1)) <= v < (1 << width):
            raise ValueError(f"value {v} does not fit {width} bits")
        out.append(f"{v & mask:0{digits}x}")
    return out


def pack_words(rows, width: int) -> list[str]:
    """Each row of integers packed into one word, element 0 in the least significant ``width``
    bits (so the last element comes first in the hex text); one hex string per row."""
    lines = []
    mask = (1 << width) - 1
    for row in rows:
        word = 0
        for i, v in enumerate(row):
            v = int(v)
            if not -(1 << (width - 1)) <= v < (1 << width):
                raise ValueError(f"value {v} does not fit {width} bits")
            word |= (v & mask) << (i * width)
        digits = (len(row) * width + 3) // 4
        lines.append(f"{word:0{digits}x}")
    return lines


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the narrowest two's-complement word holding [lo, hi] (at least 2)."""
    width = 2
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: the widest accumulator fpgagen_requant takes
MAX_ACC_WIDTH = 64


def where(layer) -> str:
    """How error messages name a layer: ``layer 'fc1' (dense)``."""
    return f"layer {layer.name!r} ({layer.op})"


def check_op(layer, module: str, op: str) -> None:
    """``module`` builds layers of ``op`` only."""
    if layer.op != op:
        raise BackendError(f"layer {layer.name!r}: {module} builds {op} layers, not {layer.op!r}")


def check_ew(layer, module: str, ew, shape, what: str) -> int:
    """EW, the elements per beat of a wide stream into and out of ``module``: an integer >= 1
    that divides the channels C of the (C, H, W) map ``shape`` (a beat never spans two pixels),
    or the elements of a flat tensor; ``what`` names the tensor ("the input 'x'"). Returns it as
    an int."""
    if isinstance(ew, bool) or not isinstance(ew, (int, np.integer)) or ew < 1:
        raise BackendError(f"{where(layer)}: {module} takes EW (elements per beat) as an integer >= 1, "
                           f"not {ew!r}")
    shape = tuple(int(v) for v in shape)
    count, unit = (shape[0], "channels") if len(shape) == 3 else (int(np.prod(shape)), "elements")
    if count % ew:
        raise BackendError(f"{where(layer)}: EW (elements per beat) must divide the {count} {unit} of "
                           f"{what} {shape}, got EW = {ew}")
    return int(ew)


def ew_params(ew: int) -> dict:
    """``{"EW": ew}`` for a wide stream, empty for one element per beat (the modules' default, so
    a design without wide streams is the same Verilog as before they existed)."""
    return {"EW": int(ew)} if ew > 1 else {}


def ew_text(ew: int) -> str:
    """``, EW elements/beat`` for descriptions, empty for one element per beat."""
    return f", {ew} elements/beat" if ew > 1 else ""


#: the largest LeakyRelu slope magnitude fpgagen_requant takes (|ALPHA| < 2**16)
MAX_ALPHA = (1 << 16) - 1


def bounds_params(layer) -> dict:
    """LO, HI of a requantizing layer, checked to fit 32-bit Verilog parameters."""
    if layer.lo is None or layer.hi is None:
        raise BackendError(f"{where(layer)}: the integer IR has no lo/hi to clamp to")
    if not (INT32_MIN <= layer.lo <= layer.hi <= INT32_MAX):
        raise BackendError(
            f"{where(layer)}: output bounds [{layer.lo}, {layer.hi}] must lie within a "
            f"32-bit signed Verilog parameter (output format {layer.out_fmt})"
        )
    return {"LO": int(layer.lo), "HI": int(layer.hi)}


def leaky_params(layer, always: bool = False) -> dict:
    """LEAKY, ALPHA, ALPHA_FRAC of fpgagen_requant for ``layer.leaky`` (a ``LeakyInt``): empty
    without a LeakyRelu (the module's defaults: off) unless ``always`` (then LEAKY 0)."""
    leaky = layer.leaky
    if leaky is None:
        return {"LEAKY": 0, "ALPHA": 0, "ALPHA_FRAC": 0} if always else {}
    alpha, frac = (int(v) for v in leaky)
    if not -MAX_ALPHA <= alpha <= MAX_ALPHA:
        raise BackendError(f"{where(layer)}: the LeakyRelu slope A = {alpha} (2**-{frac} units) is outside the "
                           f"-{MAX_ALPHA}..{MAX_ALPHA} fpgagen_requant takes")
    if not -64 <= frac <= 64:
        raise BackendError(f"{where(layer)}: the LeakyRelu slope's frac {frac} is outside -64..64")
    return {"LEAKY": 1, "ALPHA": alpha, "ALPHA_FRAC": frac}


def leaky_text(layer) -> str:
    """``, LeakyRelu A*2**-F`` for descriptions, empty without a LeakyRelu."""
    if layer.leaky is None:
        return ""
    alpha, frac = layer.leaky
    return f", LeakyRelu {alpha}*2**-{frac}"


def rounding_params(layer) -> dict:
    """ROUND_EVEN of fpgagen_requant: ``{"ROUND_EVEN": 1}`` for a layer that rounds half to even
    (imported quantization), empty for the default (half away from zero: the module's default)."""
    return {"ROUND_EVEN": 1} if getattr(layer, "rounding", "nearest-away") == "nearest-even" else {}


class VerilogBits(int):
    """A parameter value of ``width`` bits rendered as a sized literal (``24'h3a0f11``): a packed
    constant table such as per-channel alignments, wider than Verilog's 32-bit integers."""

    def __new__(cls, value: int, width: int):
        obj = int.__new__(cls, value)
        obj.width = int(width)
        return obj

    @property
    def literal(self) -> str:
        return f"{self.width}'h{int(self):x}"


def align_params(layer) -> dict:
    """Per-channel weight formats: fpgagen_mac_out's ALIGN_MAX, ALIGN_BITS and ALIGN, the left
    shift ``SHIFT - s_c`` of every output channel packed LSB first; nothing for a per-tensor layer."""
    if not layer.per_channel:
        return {}
    align = [int(d) for d in layer.align]
    top = max(align)
    bits = max(1, top.bit_length())
    packed = sum(d << (c * bits) for c, d in enumerate(align))
    return {"ALIGN_MAX": top, "ALIGN_BITS": bits, "ALIGN": VerilogBits(packed, len(align) * bits)}


def requant_params(layer) -> dict:
    """SHIFT, LO, HI (and, with a fused LeakyRelu, LEAKY, ALPHA, ALPHA_FRAC; rounding half to even,
    ROUND_EVEN) of a requantizing layer, checked against what fpgagen_requant takes."""
    if layer.shift is None or layer.lo is None or layer.hi is None:
        raise BackendError(f"{where(layer)}: the integer IR has no shift/lo/hi to requantize with")
    return {"SHIFT": int(layer.shift), **bounds_params(layer), **leaky_params(layer), **rounding_params(layer)}


def check_mac_layer(layer, module: str, op: str) -> None:
    """A dense/conv layer of the integer IR that ``module`` can build: its op, weights and
    accumulator width."""
    check_op(layer, module, op)
    if layer.weight is None or layer.w_fmt is None or layer.acc_width is None:
        raise BackendError(f"{where(layer)}: the integer IR has no weights/accumulator width")


def check_parallelism(layer, pe, simd, outputs: tuple[int, str], inputs: tuple[int, str]) -> None:
    """``pe`` divides the layer's outputs and ``simd`` its inputs, each given as (count, unit)."""
    for what, value, (size, unit) in (("PE", pe, outputs), ("SIMD", simd, inputs)):
        if not isinstance(value, (int, np.integer)) or value < 1 or size % value:
            raise BackendError(f"{where(layer)}: {what} {value} must divide the layer's {size} {unit}")


def mac_ins(simd: int, lanes: int = 1, one_word: bool = False) -> tuple:
    """The EW_IN (input elements per beat) a MAC module takes: the divisors of SIMD (a beat fills
    part of one input word) and, where its line buffer has ``lanes`` > 1 lanes of ``one_word``
    per channel group (fpgagen_conv2d with CI/GROUPS = SIMD: a depthwise conv), SIMD times a
    divisor of the lanes (a beat is that many whole words, one per lane)."""
    ws = set(divisors(simd))
    if lanes > 1 and one_word:
        ws |= {simd * d for d in divisors(lanes)}
    return tuple(sorted(ws))


def check_mac_ew(layer, module: str, pe: int, simd: int, ew_in, ew_out, lanes: int = 1, one_word: bool = False) -> dict:
    """EW_IN (input elements per beat: :func:`mac_ins`, dividing SIMD,
    or SIMD times a divisor of a conv's ``lanes`` of ``one_word`` per group) and EW_OUT (output
    elements per beat, dividing PE) of fpgagen_conv2d / fpgagen_dense as parameters (only those > 1)."""
    ins = mac_ins(simd, lanes, one_word)
    extra = ("" if ins == mac_ins(simd) else
             f" or SIMD times a divisor of its {lanes} line buffer lanes (allowed: {', '.join(map(str, ins))})")
    for what, ew, of, n, ok in (("EW_IN (input elements per beat)", ew_in, "SIMD", simd, ins),
                                ("EW_OUT (output elements per beat)", ew_out, "PE", pe, None)):
        if (isinstance(ew, bool) or not isinstance(ew, (int, np.integer)) or ew < 1
                or (ew not in ok if ok is not None else n % ew)):
            raise BackendError(f"{where(layer)}: {module} takes {what} as an integer dividing {of} {n}"
                               f"{extra if ok is not None else ''}, got {ew!r}")
    return {k: int(v) for k, v in (("EW_IN", ew_in), ("EW_OUT", ew_out)) if v > 1}


def weight_word(layer) -> int:
    """Bits of one weight in the ROMs of the MAC layers: two's complement words (an unsigned
    weight format takes one bit more)."""
    return layer.w_fmt.word + (0 if layer.w_fmt.signed else 1)


def shares_inputs(pe: int, lanes: int = 1) -> bool:
    """Whether PE lanes 2q and 2q+1 read the same input element at every q (``DSP_PAIR`` 2): the
    outputs per input group ``pe / lanes`` are even."""
    return (pe // lanes) % 2 == 0


def dsp_pair(cfg, layer, pe: int | None = None, lanes: int = 1) -> int:
    """fpgagen_mac_out's ``DSP_PAIR`` for ``layer`` at ``pe`` output lanes over ``lanes`` input
    groups on the device of ``hardware.device``, where its DSP blocks compute two int8 products
    (``int8_per_dsp`` 2) and the layer's inputs and weight words are at most 8 bits:

    - 1 on the iCE40: any two products per SB_MAC16 in its 8x8 mode (fpgagen_mul8x8x2);
    - 2 on the 7-series: two PE lanes reading the same input element per DSP48E1, one 25 x 18
      multiplication of the input and both weights packed (fpgagen_mul8x8x2 ``SHARED``), where
      the outputs per input group ``pe / lanes`` are even (``pe`` None: the lanes are not known,
      0);
    - else 0 (one product per multiplier)."""
    from fpgagen.devices import DEVICES

    dev = DEVICES.get(((cfg or {}).get("hardware") or {}).get("device") or "")
    if dev is None or dev.int8_per_dsp != 2 or layer.in_fmts[0].word > 8 or weight_word(layer) > 8:
        return 0
    if dev.family == "ice40":
        return 1
    if dev.family == "xc7" and pe is not None and shares_inputs(pe, lanes):
        return 2
    return 0


def pairs_text(pairs: int) -> str:
    """What ``DSP_PAIR`` ``pairs`` does, for an instance's description ("" without pairs)."""
    return {0: "", 1: "two products per DSP block, ", 2: "two products sharing an input per DSP block, "}[int(pairs)]


def check_pairs(layer, module: str, pairs, pe: int, lanes: int = 1) -> int:
    """``pairs`` (``DSP_PAIR``: False/0, True/1 or 2) as an integer; 2 needs an even ``pe / lanes``
    (two PE lanes reading one input per block)."""
    if isinstance(pairs, bool) or pairs in (0, 1):
        return int(pairs)
    if pairs == 2 and shares_inputs(pe, lanes):
        return 2
    raise BackendError(f"{where(layer)}: {module} takes DSP_PAIR (pairs) 0, 1 or 2, 2 with an even number of PE "
                       f"lanes per input group, got {pairs!r} at PE {pe} over {lanes} input group(s)")


def mac_params(layer, weight_blocks, pe: int, simd: int, geometry: dict, prefix: str, words: str,
               layout: str, taps: int = 1, pairs: bool = False) -> tuple[dict, dict]:
    """Parameters and ROM files of the multiply-accumulate layers ``fpgagen_dense`` and
    ``fpgagen_conv2d`` (which share ``fpgagen_mac_out``), after :func:`check_mac_layer` and
    :func:`check_parallelism`.

    ``weight_blocks``: one row of ``pe * simd`` weights per weight ROM line, element ``p*simd + s``
    at the LSB end; ``geometry``: the module's size parameters, placed between the widths and PE;
    ``words`` / ``layout``: the weight ROM's word count and line layout for its header; ``taps``:
    fpgagen_conv2d's KU (> 1: the parameter follows SIMD, a row holds ``pe * taps * simd``
    weights, element ``(p*taps + j)*simd + s``); ``pairs``: ``DSP_PAIR`` (:func:`dsp_pair`: 1 or 2). Returns
    (params in declaration order, ``.mem`` name -> text), the ROMs named ``<prefix>_weights.mem``
    and ``<prefix>_bias.mem``.
    """
    n_out = int(layer.weight.shape[0])
    if layer.acc_width > MAX_ACC_WIDTH:
        raise BackendError(f"{where(layer)}: a {layer.acc_width}-bit accumulator is wider than "
                           f"the {MAX_ACC_WIDTH} bits fpgagen_requant takes")
    align = align_params(layer)
    if align and layer.acc_width + align["ALIGN_MAX"] > MAX_ACC_WIDTH:
        raise BackendError(f"{where(layer)}: the {layer.acc_width}-bit accumulator pre-aligned by up to "
                           f"{align['ALIGN_MAX']} bits (per-channel weight formats) is wider than the "
                           f"{MAX_ACC_WIDTH} bits fpgagen_requant takes")
    rq = requant_params(layer)
    x_fmt, w_fmt, y_fmt = layer.in_fmts[0], layer.w_fmt, layer.out_fmt
    w_width = weight_word(layer)
    bias = np.zeros(n_out, np.int64) if layer.bias is None else np.asarray(layer.bias, np.int64)
    bias_width = signed_bits(int(bias.min()), int(bias.max()))
    acc_width = max(2, int(layer.acc_width))  # fpgagen_requant takes 2..64 bits
    if bias_width > acc_width:  # an input of zeros gives acc = B, so B fits the accumulator
        raise BackendError(f"{where(layer)}: bias needs {bias_width} bits, more than the "
                           f"{layer.acc_width}-bit accumulator")
    ng = n_out // pe
    wname, bname = f"{prefix}_weights.mem", f"{prefix}_bias.mem"
    head = f"// {quoted(layer.name)}: "
    mems = {
        wname: head + (f"weights {w_fmt}, {words} words of PE {pe} x SIMD {simd} x {w_width} bits "
                       f"({layout}, element p*{simd}+s at the LSB end)\n" if taps == 1 else
                       f"weights {w_fmt}, {words} words of PE {pe} x KU {taps} x SIMD {simd} x {w_width} bits "
                       f"({layout}, element (p*{taps}+j)*{simd}+s at the LSB end)\n")
                      + "\n".join(pack_words(weight_blocks, w_width)) + "\n",
        bname: head + (f"bias at each channel's accumulator frac (per-channel weights "
                       f"{channel_formats_text(layer.w_fmts)})" if layer.per_channel else
                       f"bias at the accumulator frac {layer.acc_frac}")
                      + f", {ng} words of PE {pe} x {bias_width} bits\n"
                      + "\n".join(pack_words(bias.reshape(ng, pe), bias_width)) + "\n",
    }
    params = {
        "IN_WIDTH": x_fmt.word,
        "IN_SIGNED": int(x_fmt.signed),
        "W_WIDTH": w_width,
        "BIAS_WIDTH": bias_width,
        "OUT_WIDTH": y_fmt.word,
        **geometry,
        "PE": int(pe),
        "SIMD": int(simd),
        **({"KU": int(taps)} if taps > 1 else {}),
        "ACC_WIDTH": acc_width,
        **rq,
        **align,
        **({"DSP_PAIR": int(pairs)} if pairs else {}),
        "WEIGHT_FILE": wname,
        "BIAS_FILE": bname,
    }
    return params, mems
