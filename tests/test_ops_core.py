"""The op registry and the activation value objects (fpgagen/ops), and the new ops' golden kernels
against an exact rational reference (Python Fractions, SPEC.md 3)."""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fpgagen import ops
from fpgagen.errors import ModelError
from fpgagen.golden import kernels as k
from fpgagen.ops.activation import Clip, LeakyRelu, ReLU, coerce
from fpgagen.ops.activation import LeakyInt
from fpgagen.ops.registry import Op, register
from fpgagen.ops.pad import pad_zeros
from fpgagen.ops.resize import resize_nearest

ROOT = Path(__file__).resolve().parent.parent


def round_away(q: Fraction) -> int:
    """Round half away from zero, exactly."""
    r = int(abs(q) + Fraction(1, 2))  # floor of a non-negative Fraction
    return r if q >= 0 else -r


def rq(acc: int, shift: int) -> int:
    return round_away(Fraction(acc) / Fraction(2) ** shift)


def ref_requant(acc: int, shift: int, lo: int, hi: int, leaky=None) -> int:
    """SPEC.md 3 with rationals: acc * 2**-shift rounded half away (negative side acc * A * 2**-(shift + Fal))."""
    if leaky is not None and acc < 0:
        y = rq(acc * leaky[0], shift + leaky[1])
    else:
        y = rq(acc, shift)
    return min(max(y, lo), hi)


def test_every_op_is_registered_once_and_a_second_registration_is_an_error():
    assert set(ops.names()) >= {"conv", "dense", "maxpool", "avgpool", "gap", "add", "flatten", "leakyrelu", "concat",
                                "resize", "pad"}
    with pytest.raises(RuntimeError, match="IR op 'concat' is registered twice"):
        @register
        class Concat2(Op):
            name = "concat"
    with pytest.raises(RuntimeError, match="ONNX op Pad has two import rules"):
        @register
        class Pad2(Op):
            name = "pad2"
            onnx_ops = ("Pad",)
    assert "pad2" not in ops.names()
    with pytest.raises(ModelError, match="unknown IR op 'tanh'"):
        ops.get("tanh")


def test_only_op_modules_switch_on_the_new_ops_names():
    """One place per op: outside fpgagen/ops and the backends' emitters, no code compares an op
    name with 'leakyrelu', 'concat', 'resize' or 'pad'."""
    new = {"leakyrelu", "concat", "resize", "pad"}
    allowed = ("ops", "backends")
    offenders = []
    for path in sorted((ROOT / "fpgagen").rglob("*.py")):
        rel = path.relative_to(ROOT / "fpgagen")
        if rel.parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
                if new & set(c for c in consts if isinstance(c, str)):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize(("alpha", "fmt", "a"), [
    (0.1, "u8.11", 205), (0.25, "u8.9", 128), (-0.5, "s8.7", -64), (1.5, "u8.7", 192), (0.01, "u8.14", 164),
    (0.99999, "u8.8", 255),  # rounds to 256: saturated to the format (SPEC.md 1)
    (3.0, "u8.6", 192), (-2.0, "s8.5", -64),
])
def test_leaky_slope_is_quantized_with_the_max_method_word_8(alpha, fmt, a):
    act = LeakyRelu(alpha)
    assert str(act.alpha_format()) == fmt
    assert act.leaky() == LeakyInt(a, act.alpha_format().frac)


def test_activation_shorthands_and_bounds():
    from fpgagen.ir.format import Format

    assert coerce("relu") == ReLU() and coerce(("clip", 0, 6)) == Clip(0.0, 6.0)
    assert coerce(("leakyrelu", 0.1)) == LeakyRelu(0.1) and coerce(None) is None
    with pytest.raises(ModelError, match=r"node 'n': unknown activation 'tanh'; expected None, ReLU\(\)"):
        coerce("tanh", "node 'n'")
    f = Format.parse("s8.4")
    assert ReLU().bounds(f) == (0, 127) and Clip(0.0, 2.0).bounds(f) == (0, 32)
    assert LeakyRelu(0.1).bounds(f) == (-128, 127)
    assert LeakyRelu(0.1).monotone and not LeakyRelu(-0.5).monotone


@pytest.mark.parametrize("leaky", [None, (205, 11), (128, 9), (-64, 7), (192, 7), (164, 14), (192, -2)])
@pytest.mark.parametrize("shift", [-3, -1, 0, 1, 2, 7, 12])
def test_requantizer_against_rationals(leaky, shift):
    rng = np.random.default_rng(abs(shift) * 7 + (abs(leaky[0]) if leaky else 0))
    acc = np.concatenate([rng.integers(-2**20, 2**20, 400), np.arange(-70, 70),
                          [-2**30, 2**30 - 1, -(1 << shift) if shift > 0 else -1]])
    got = k.requantize(acc, shift, -128, 127, leaky)
    want = [ref_requant(int(a), shift, -128, 127, leaky) for a in acc]
    assert got.tolist() == want
    if leaky:  # ties on the negative side round away from zero
        s = shift + leaky[1]
        if s > 0:
            assert all(k.requantize(np.array([a]), shift, -10**9, 10**9, leaky)[0] == ref_requant(a, shift, -10**9, 10**9,
                                                                                                leaky)
                       for a in range(-3 * (1 << min(s, 12)), 0, max(1, (1 << min(s, 12)) // 8)))


def test_concat_requantizes_each_input_then_joins_channels():
    rng = np.random.default_rng(3)
    xs = [rng.integers(-128, 128, (2, 3, 4, 5)), rng.integers(0, 256, (2, 1, 4, 5)), rng.integers(-128, 128, (2, 2, 4, 5))]
    shifts, lo, hi = (3, -1, 0), -128, 127
    for leaky in (None, (205, 11)):
        got = k.concat(xs, shifts, lo, hi, leaky)
        want = np.concatenate([np.vectorize(lambda v, s=s: ref_requant(int(v), s, lo, hi, leaky))(x)
                               for x, s in zip(xs, shifts)], axis=1)
        assert got.shape == (2, 6, 4, 5) and (got == want).all()
    same = k.concat([xs[0], xs[0]], (0, 0), lo, hi)  # the same tensor twice
    assert (same[:, :3] == xs[0]).all() and (same[:, 3:] == xs[0]).all()


def test_resize_and_pad_are_exact_index_maps():
    x = np.arange(2 * 3 * 2 * 3).reshape(2, 3, 2, 3) - 20
    y = resize_nearest(x, (2, 3))
    assert y.shape == (2, 3, 4, 9)
    assert all(y[n, c, i, j] == x[n, c, i // 2, j // 3] for n in range(2) for c in range(3) for i in range(4)
               for j in range(9))
    p = pad_zeros(x, (1, 0, 2, 3))
    assert p.shape == (2, 3, 5, 6)
    assert (p[:, :, 1:3, 0:3] == x).all() and p.sum() == x.sum() and (p[:, :, 0] == 0).all() and (p[:, :, 3:] == 0).all()
