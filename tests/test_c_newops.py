"""The new ops through the microcontroller C backend, end to end: LeakyRelu (fused into conv,
dense, pools and add; standalone), channel Concat (inputs of different formats, the model input,
one tensor twice, vectors, flattened maps read through an index table), nearest Resize and zero
Pad. The graphs are those of tests/test_hls_newops.py; every case is compiled with the strict host
flags and compared integer for integer with the golden model on real samples and on the extremes
of the input format, also under -fsanitize=undefined, and on the emulated Cortex-M4 where
arm-none-eabi-gcc and qemu are installed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_hls_backend import build_for
from test_hls_newops import GRAPHS, UNSIGNED_INPUT, extreme_inputs

from fpgagen.backends import c
from fpgagen.errors import BackendError
from fpgagen.golden.model import run_int
from fpgagen.ops.activation import LeakyInt
from fpgagen.targets import GoldenRun

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def case(request, tmp_path_factory):
    name = request.param
    build = build_for(GRAPHS[name](), np.random.default_rng(len(name)), signed=name not in UNSIGNED_INPUT)
    target = tmp_path_factory.mktemp(f"c_{name}") / "c"
    c.generate(build).write(target)
    q = build.qgraph
    xq = extreme_inputs(build)
    _, trace = run_int(q, xq, trace=True)
    return dict(name=name, build=build, target=target, xq=xq, golden=GoldenRun(trace[q.output], trace))


def test_bit_exact_on_the_host(case):
    r = c.verify_host(case["build"], case["target"], case["xq"], case["golden"])
    assert (r["samples"], r["mismatches"]) == (24, 0), r


def test_no_undefined_behaviour(case, tmp_path):
    """The same harness built with -fsanitize=undefined, trapping: any signed overflow or bad
    shift in the new kernels (acc * alpha in int64, the index tables) stops the run."""
    exe = c.compile_host(case["target"], tmp_path / "ubsan", extra=("-fsanitize=undefined",
                                                                     "-fno-sanitize-recover=all"))
    m = c.build_model(case["build"].qgraph, case["build"].cfg.get("name") or case["build"].qgraph.name)
    got = c.run_samples([str(exe)], tmp_path, [m], [case["xq"]], "the -fsanitize=undefined harness")[0]
    want = case["golden"].output.reshape(len(case["xq"]), -1)
    assert np.array_equal(np.asarray(got).reshape(want.shape), want)


@pytest.mark.skipif(c.arm_tools_missing() is not None, reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_bit_exact_on_the_cortex_m4(case):
    xq = case["xq"][:4]
    q = case["build"].qgraph
    _, trace = run_int(q, xq, trace=True)
    r = c.verify_arm(case["build"], case["target"], xq, GoldenRun(trace[q.output], trace))
    assert (r["samples"], r["mismatches"]) == (4, 0), r


def test_the_model_header_names_the_new_kernels(case):
    text = (case["target"] / "model.h").read_text()
    ops = {la.op for la in case["build"].qgraph.layers}
    for op, call in (("leakyrelu", "fpgagen_act("), ("concat", "fpgagen_concat("), ("resize", "fpgagen_resize("),
                     ("pad", "fpgagen_pad(")):
        assert (call in text) == (op in ops), (op, case["name"])
    if any(la.leaky is not None for la in case["build"].qgraph.layers):
        assert ".leaky" in text and ".alpha_frac" in text


def test_cases_cover_the_new_ops():
    ops, leaky_ops = set(), set()
    for name, fn in GRAPHS.items():
        build = build_for(fn(), np.random.default_rng(len(name)), signed=name not in UNSIGNED_INPUT)
        ops |= {la.op for la in build.qgraph.layers}
        leaky_ops |= {la.op for la in build.qgraph.layers if la.leaky is not None}
    assert {"leakyrelu", "concat", "resize", "pad"} <= ops
    assert {"conv", "dense", "avgpool", "gap", "add", "concat", "leakyrelu"} <= leaky_ops


def test_a_leaky_product_beyond_the_runtime_range_is_refused():
    name = "fused_mac"
    build = build_for(GRAPHS[name](), np.random.default_rng(len(name)))
    layer = next(la for la in build.qgraph.layers if la.leaky is not None and la.op == "conv")
    layer.leaky = LeakyInt(255, -60)  # a left shift of 60 after the slope
    with pytest.raises(BackendError, match=rf"layer '{layer.name}' \(conv\): a \d+-bit accumulator shifted left by "
                                           r"\d+ \(with its LeakyRelu slope\) exceeds the C runtime's 61-bit"):
        c.generate(build)


def test_leaky_requantize_matches_golden(tmp_path):
    """fpgagen_requantize_leaky against the golden requantizer: slopes 0.1, 0.25, 0.01, -0.5, 1.5
    and ones with alpha_frac <= 0, shifts that make shift + alpha_frac <= 0 (a left shift), ties,
    accumulators up to the documented range, under -fsanitize=undefined."""
    import subprocess

    from fpgagen.golden import kernels as gk
    from fpgagen.ops.activation import LeakyRelu
    from test_c_kernels import sanitizer_flags

    slopes = [tuple(LeakyRelu(a).leaky()) for a in (0.1, 0.25, 0.01, -0.5, 1.5, 3.0, -2.0)] + [(192, -2), (-64, 0)]
    accs = [0, 1, -1, 2, -2, 3, -3, 127, -128, 2**20 + 2**19, -(2**20 + 2**19), 2**31 - 1, -(2**31), -(2**40 + 5),
            2**40 + 5]
    accs += [s * (2**k + d) for k in range(1, 36, 4) for d in (-1, 0, 1) for s in (1, -1)]
    shifts = [-20, -5, -1, 0, 1, 2, 3, 7, 12, 15, 31, 40]
    bounds = [(-128, 127), (-32768, 32767), (-3, 96)]
    cases = [(a, s, lo, hi, al, f) for a in accs for s in shifts for lo, hi in bounds for al, f in slopes
             if abs(a) * abs(al) * 2 ** max(0, -(s + f), -s) < 2**61]
    assert len(cases) > 5000 and any(s + f <= 0 and a < 0 for a, s, _, _, _, f in cases)
    rows = ",\n".join(f"{{INT64_C({a}), {s}, {lo}, {hi}, {al}, {f}}}" for a, s, lo, hi, al, f in cases)
    (tmp_path / "lk.c").write_text(
        '#include <stdio.h>\n#include "fpgagen_nn.h"\n'
        "static const struct { int64_t acc; int32_t shift, lo, hi, alpha, frac; } cases[] = {\n" + rows + "\n};\n"
        "int main(void) {\n    size_t i;\n    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {\n"
        "        printf(\"%ld\\n\", (long)fpgagen_requantize_leaky(cases[i].acc, cases[i].shift, cases[i].lo,\n"
        "                                                   cases[i].hi, cases[i].alpha, cases[i].frac));\n"
        "    }\n    return 0;\n}\n")
    for rel in c.RUNTIME_FILES:
        (tmp_path / rel).write_text(c.read_library_file(f"c/{rel}"))
    exe = c.compile_host(tmp_path, tmp_path / "lk", sources=("lk.c", "fpgagen_nn.c"), extra=sanitizer_flags(tmp_path))
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    want = [int(gk.requantize(np.array([a]), s, lo, hi, (al, f))[0]) for a, s, lo, hi, al, f in cases]
    assert got == want
