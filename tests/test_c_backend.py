"""The C target end to end: real ONNX models through fpgagen.flow, compiled with gcc's strict
flags and checked integer by integer against the golden model; the arena against a brute-force
liveness computation; determinism, provenance and error reporting of the generated files.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from fpgagen import flow
from fpgagen.backends import c as cb
from fpgagen.config import resolve_config
from fpgagen.errors import BackendError
from fpgagen.golden.model import run_int
from fpgagen.ir.graph import Graph, Node
from fpgagen.quant.calibrate import calibrate
from fpgagen.quant.lower import QuantOptions, choose_formats, lower
from fpgagen.targets import GoldenRun, backend
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
# ../shared beside the checkout (or beside the worktree directory of a git worktree)
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
              ROOT.parent / "shared")
MNIST_MODEL = SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx"
MNIST_DATA = SHARED / "data" / "mnist_1k.npz"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def needs_frontend():
    try:
        import fpgagen.frontend.onnx  # noqa: F401
    except ImportError:
        pytest.skip("the ONNX frontend (fpgagen.frontend.onnx) is not available")
    pytest.importorskip("onnx")


def digits_cfg(kind: str, **extra) -> dict:
    prefix = "digits_flat" if kind == "mlp" else "digits"
    raw = {
        "name": f"digits_{kind}",
        "model": str(DIGITS / f"digits_{kind}.onnx"),
        "data": {"calibration": str(DIGITS / f"{prefix}_calib.npz"), "validation": str(DIGITS / f"{prefix}_valid.npz"),
                 "preprocess": {"scale": 0.0625, "offset": 0}},
        "targets": ["c"],
        **extra,
    }
    return resolve_config(raw, base=ROOT)


@pytest.fixture(scope="module")
def digits_cnn():
    needs_frontend()
    return flow.run_quantization(digits_cfg("cnn"), progress=False)


@pytest.fixture(scope="module")
def digits_mlp():
    needs_frontend()
    return flow.run_quantization(digits_cfg("mlp"), progress=False)


@pytest.fixture(scope="module")
def mnist_cnn():
    if not (MNIST_MODEL.is_file() and MNIST_DATA.is_file()):
        pytest.skip(f"the shared MNIST model/data are absent ({MNIST_MODEL}, {MNIST_DATA})")
    needs_frontend()
    raw = yaml.safe_load((ROOT / "configs" / "mnist_cnn.yaml").read_text())
    raw["model"] = str(MNIST_MODEL)  # the config's ../../shared, wherever the checkout is
    raw["data"]["calibration"] = raw["data"]["validation"] = str(MNIST_DATA)
    cfg = resolve_config(raw, base=ROOT / "configs")
    cfg["targets"] = ["c"]
    cfg["data"]["samples"] = 200  # calibration samples: enough for a valid build, quick
    cfg["data"]["validation"] = None
    return flow.run_quantization(cfg, progress=False)


def generate_into(build, out: Path) -> Path:
    backend("c").generate(build).write(out)
    return out


# -------------------------------------------------------------------------------------------
# end to end
# -------------------------------------------------------------------------------------------
def test_digits_cnn_verify_command_path(tmp_path, monkeypatch):
    """`fpgagen verify CONFIG --targets c`'s code path (with a relative output directory):
    verify.json holds samples and mismatches."""
    needs_frontend()
    monkeypatch.chdir(tmp_path)
    results, out = flow.verify(digits_cfg("cnn"), targets=["c"], samples=60, out=Path("out"), progress=False)
    saved = json.loads((out / "verify.json").read_text())
    assert saved == results
    r = saved["c"]
    assert r["samples"] == 60 and r["mismatches"] == 0 and r["mismatched_values"] == 0
    assert r["arena_bytes"] == r["arena_lower_bound"] == 8 * 8 + 8 * 8 * 8  # input + conv1 output
    for name in ("model.h", "fpgagen_nn.h", "fpgagen_nn.c", "main.c", "harness.c", "Makefile",
                 "arm/startup.c", "arm/mps2_an386.ld"):
        assert (out / "c" / name).is_file()


@pytest.mark.parametrize("which", ["digits_cnn", "digits_mlp", "mnist_cnn"])
def test_host_bit_exact_on_real_samples(which, request, tmp_path):
    build = request.getfixturevalue(which)
    out = generate_into(build, tmp_path / "c")
    samples = 450 if which.startswith("digits") else 60
    xq, golden = flow.verification_inputs(build, samples)
    r = cb.verify_host(build, out, xq, golden)
    assert r["samples"] == len(xq) and r["mismatches"] == 0 and r["mismatched_values"] == 0
    assert "first_mismatch_layer" not in r
    assert r["arena_bytes"] == r["arena_lower_bound"] == brute_force_minimum(build.qgraph)
    q = build.qgraph
    consts = sum(int(layer.weight.size) + (4 if layer.acc_width <= 32 else 8) * len(layer.bias)
                 + (len(layer.align) if layer.per_channel else 0)  # per-channel formats: an int8_t per channel
                 for layer in q.layers if layer.op in ("conv", "dense"))
    assert r["flash_bytes"] == consts


# -------------------------------------------------------------------------------------------
# the arena: brute force
# -------------------------------------------------------------------------------------------
def pool_geometry(q, layer):
    if layer.op == "gap":
        _, h, w = q.shapes[layer.inputs[0]]
        return (h, w), (1, 1), (0, 0, 0, 0)
    a = layer.params
    return a.kernel, a.stride, a.pads


def simulate_in_place(q, layer) -> bool:
    """Run the runtime's loop order for a pool writing over its input on a tagged memory:
    legal iff every read still finds the value it needs."""
    c, h, w = q.shapes[layer.inputs[0]]
    _, oh, ow = q.shapes[layer.output]
    (kh, kw), (sh, sw), pads = pool_geometry(q, layer)
    if oh * ow > h * w:
        return False
    mem = [("in", i) for i in range(c * h * w)]
    for oy in range(oh):
        for ox in range(ow):
            qp = oy * ow + ox
            pix = [(oy * sh - pads[0] + u) * w + ox * sw - pads[1] + v for u in range(kh) for v in range(kw)
                   if 0 <= oy * sh - pads[0] + u < h and 0 <= ox * sw - pads[1] + v < w]
            if layer.op == "maxpool":  # copy the first pixel, then max-update with the others
                for ch in range(c):
                    if mem[pix[0] * c + ch] != ("in", pix[0] * c + ch):
                        return False
                    mem[qp * c + ch] = ("out", qp * c + ch)
                for r in pix[1:]:
                    for ch in range(c):
                        if mem[r * c + ch] != ("in", r * c + ch) or mem[qp * c + ch] != ("out", qp * c + ch):
                            return False
                        mem[qp * c + ch] = ("out", qp * c + ch)
            else:  # per channel: read the whole window, then write
                for ch in range(c):
                    if any(mem[r * c + ch] != ("in", r * c + ch) for r in pix):
                        return False
                    mem[qp * c + ch] = ("out", qp * c + ch)
    return True


def brute_force_minimum(q) -> int:
    """The largest number of bytes live while one layer runs, re-derived from scratch.

    A tensor lives from the layer writing it (the input: from the start) to the last layer
    reading it (the output: past the end). A flatten's output is its input's bytes. A pool,
    global pool or add may write over an input whose bytes nobody reads later, if the
    simulated access order allows it; then the two share bytes while the layer runs.
    """
    n = len(q.layers)
    size = {t: math.prod(s) for t, s in q.shapes.items()}
    born = {q.input: 0} | {layer.output: k for k, layer in enumerate(q.layers)}
    dies = dict(born)
    for k, layer in enumerate(q.layers):
        for t in layer.inputs:
            dies[t] = k
    dies[q.output] = n
    store = {t: t for t in born}
    for k, layer in enumerate(q.layers):
        if layer.op == "flatten":
            store[layer.output] = store[layer.inputs[0]]
            continue
        if layer.op not in ("maxpool", "avgpool", "gap", "add"):
            continue
        if layer.op != "add" and not simulate_in_place(q, layer):
            continue
        for src in layer.inputs:
            sharing = [t for t in store if store[t] == store[src]]
            if max(dies[t] for t in sharing) == k and size[layer.output] <= size[src]:
                store[layer.output] = store[src]
                break
    best = 0
    for s in range(n):
        per_store = {}
        for t in born:
            if born[t] <= s <= dies[t]:
                per_store[store[t]] = max(per_store.get(store[t], 0), size[t])
        best = max(best, sum(per_store.values()))
    return best


def check_placement(q, plan) -> None:
    """Byte by byte: at every step the live tensors fit the arena and overlap only where they
    share storage (a flatten view, a pool/add in place at the step it runs)."""
    n = len(q.layers)
    born = {q.input: 0} | {layer.output: k for k, layer in enumerate(q.layers)}
    dies = dict(born)
    for k, layer in enumerate(q.layers):
        for t in layer.inputs:
            dies[t] = k
    dies[q.output] = n
    for s in range(n + 1):
        owner = [None] * plan.arena_bytes
        for t in born:
            if not born[t] <= s <= dies[t]:
                continue
            off, nbytes = plan.offsets[t], math.prod(q.shapes[t])
            assert 0 <= off and off + nbytes <= plan.arena_bytes, f"{t} outside the arena"
            for i in range(off, off + nbytes):
                other = owner[i]
                if other is not None and other != t:
                    related = (plan.shares.get(t, (None, None))[1] == other
                               or plan.shares.get(other, (None, None))[1] == t)
                    shared_view = plan.shares.get(t, ("",))[0] == "view" or plan.shares.get(other, ("",))[0] == "view"
                    in_place_now = related and s == born[t] or related and s == born[other]
                    assert related and (shared_view or in_place_now), f"step {s}: {t} overlaps {other} at byte {i}"
                owner[i] = t


def residual_graph(rng) -> Graph:
    """x -> conv a -> conv b -> add(b, x) -> maxpool -> add(p, avg(p)) -> gap -> flatten -> dense:
    a skip over two layers, in-place pools and adds, a tensor read twice."""
    conv = ConvParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1)
    nodes = [
        Node("c1", "conv", ["x"], "a", conv, rng.normal(0, 0.4, (4, 4, 3, 3)), rng.normal(0, 0.2, 4), "relu"),
        Node("c2", "conv", ["a"], "b", conv, rng.normal(0, 0.4, (4, 4, 3, 3)), rng.normal(0, 0.2, 4)),
        Node("r1", "add", ["b", "x"], "r", None, activation="relu"),
        Node("mp", "maxpool", ["r"], "p", Window(kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))),
        Node("av", "avgpool", ["p"], "v", AvgPoolParams(kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                                                count_include_pad=False)),
        Node("r2", "add", ["p", "v"], "s", None),
        Node("gp", "gap", ["s"], "g"),
        Node("fl", "flatten", ["g"], "f"),
        Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.4, (3, 4)), rng.normal(0, 0.2, 3)),
    ]
    shapes = {"x": (4, 8, 6), "a": (4, 8, 6), "b": (4, 8, 6), "r": (4, 8, 6), "p": (4, 4, 3), "v": (4, 4, 3),
              "s": (4, 4, 3), "g": (4, 1, 1), "f": (4,), "y": (3,)}
    return Graph("residual", "x", "y", nodes, shapes, onnx_output_shape=(3,)).validate()


@pytest.fixture(scope="module")
def residual():
    rng = np.random.default_rng(11)
    graph = residual_graph(rng)
    x = rng.uniform(0, 1, (32, 4, 8, 6)).astype(np.float32)
    q, _ = lower(graph, choose_formats(calibrate(graph, x, progress=False), QuantOptions(method="max")))
    return q, np.clip(np.round(x[:8] * 2**q.input_fmt.frac), 0, q.input_fmt.max_int).astype(np.int64)


@pytest.mark.parametrize("which", ["digits_cnn", "digits_mlp", "mnist_cnn", "residual"])
def test_arena_is_the_brute_force_minimum(which, request):
    value = request.getfixturevalue(which)
    q = value[0] if which == "residual" else value.qgraph
    m = cb.build_model(q, which)
    assert m.plan.optimal
    assert m.plan.arena_bytes == m.plan.lower_bound == brute_force_minimum(q)
    assert max(m.plan.step_bytes) == m.plan.lower_bound
    check_placement(q, m.plan)
    if which == "digits_cnn":  # maxpools in place, flatten a view: peak at conv1 (input + output)
        assert m.plan.arena_bytes == 64 + 512
        assert sorted(kind for kind, _ in m.plan.shares.values()) == ["in-place", "in-place", "view"]
    if which == "residual":  # x stays live across c1, c2 for the skip: x + a + b at c2
        assert m.plan.lower_bound == 3 * 4 * 8 * 6
        assert m.plan.shares["r"] == ("in-place", "b") and m.plan.shares["p"] == ("in-place", "r")
        assert "v" not in m.plan.shares  # a 3x3 stride-1 pool reads pixels before its own


def test_residual_runs_in_exactly_the_arena(residual, tmp_path):
    """Compiled with the address sanitizer: any access outside the arena would abort; bit-exact."""
    q, xq = residual
    m = cb.build_model(q, "residual")
    (tmp_path / "model.h").write_text(cb.render_model_h(m))
    for rel in cb.RUNTIME_FILES:
        (tmp_path / rel).write_text(cb.read_library_file(f"c/{rel}"))
    (tmp_path / "harness.c").write_text(cb.render_harness([m]))
    header = (tmp_path / "model.h").read_text()
    assert f"#define RESIDUAL_ARENA_BYTES {m.plan.arena_bytes}\n" in header
    assert "static uint8_t residual_arena[RESIDUAL_ARENA_BYTES];" in header
    probe = subprocess.run(["gcc", "-fsanitize=address,undefined", "-x", "c", "-", "-o", str(tmp_path / "p")],
                           input="int main(void) { return 0; }\n", text=True, capture_output=True)
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if probe.returncode == 0 else []
    exe = cb.compile_host(tmp_path, tmp_path / "run" / "harness", extra=["-DFPGAGEN_TRACE", *san])
    (out,), (trace,) = cb.run_samples([str(exe)], tmp_path / "run", [m], [xq], "residual harness", trace=True)
    _, golden = run_int(q, xq, trace=True)
    assert out.reshape(len(xq), -1).tolist() == golden[q.output].reshape(len(xq), -1).tolist()
    for layer in q.layers:
        assert trace[layer.output].tolist() == golden[layer.output].tolist(), layer.name


# -------------------------------------------------------------------------------------------
# the generated files
# -------------------------------------------------------------------------------------------
def test_generation_is_deterministic(digits_cnn):
    a = backend("c").generate(digits_cnn).files
    b = backend("c").generate(digits_cnn).files
    assert a == b
    text = b"".join(v for k, v in a.items() if not k.endswith(".bin")).decode()
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\b\d\d:\d\d:\d\d\b", text)  # no dates or times


def test_model_h_states_provenance_formats_and_sizes(digits_cnn):
    files = backend("c").generate(digits_cnn).files
    header = files["model.h"].decode()
    q = digits_cnn.qgraph
    m = cb.build_model(q, "digits_cnn")
    assert "digits_cnn.onnx" in header
    for layer in q.layers:
        for node in layer.onnx_nodes:
            assert node in header
        assert str(layer.out_fmt) in header
        if layer.w_fmt is not None:
            assert re.search(rf"/\* {re.escape(str(list(layer.weight.shape)))} {layer.w_fmt} weights of ", header)
    assert f"one static arena of {m.plan.arena_bytes} bytes" in header
    assert f"{m.const_bytes} bytes of constants" in header
    assert f"#define DIGITS_CNN_CONST_BYTES {m.const_bytes}" in header
    assert re.search(r"static const int8_t digits_cnn_\w+__weight\[\d+\] = \{", header)
    assert re.search(r"static const int32_t digits_cnn_\w+__bias\[\d+\] = \{", header)
    assert "(view of " in header and "(in-place of " in header
    runtime = files["fpgagen_nn.c"].decode() + files["fpgagen_nn.h"].decode()
    includes = set(re.findall(r"#include <([^>]+)>", runtime))
    assert includes <= {"stdint.h", "string.h", "arm_acle.h"}  # ACLE only under __ARM_FEATURE_DSP
    assert re.search(r"#if defined\(__ARM_FEATURE_DSP\) && !defined\(FPGAGEN_NO_DSP\)\n#define FPGAGEN_DSP 1\n"
                     r"#include <arm_acle.h>", runtime)
    code = re.sub(r"/\*.*?\*/", "", runtime, flags=re.S)
    assert not re.search(r"\b(float|double|malloc|calloc|free)\b", code)


def test_wide_accumulators_get_int64_biases(digits_mlp):
    q = digits_mlp.qgraph
    layer = next(layer for layer in q.layers if layer.op == "dense")
    saved = layer.bias.copy(), layer.acc_width
    try:
        layer.bias = layer.bias + (1 << 40)
        layer.acc_width = 44
        header = cb.render_model_h(cb.build_model(q, "wide"))
    finally:
        layer.bias, layer.acc_width = saved
    assert re.search(r"static const int64_t wide_\w+__bias\[\d+\] = \{\n    INT64_C\(1099", header)
    assert re.search(r"\.bias32 += 0,", header)


def test_example_main_runs_and_matches(digits_cnn, tmp_path):
    out = generate_into(digits_cnn, tmp_path / "c")
    exe = cb.compile_host(out, tmp_path / "example", sources=("main.c", "fpgagen_nn.c"))
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches the golden model" in proc.stdout


def test_verify_names_the_first_mismatching_layer(digits_cnn, tmp_path):
    out = generate_into(digits_cnn, tmp_path / "c")
    header = (out / "model.h").read_text()
    # corrupt conv2's first bias: its output (and everything after) must differ
    tampered = re.sub(r"(static const int32_t digits_cnn_conv2_Conv__bias\[\d+\] = \{\n\s*)(-?\d+)",
                      lambda mt: f"{mt.group(1)}{int(mt.group(2)) + 100000}", header, count=1)
    assert tampered != header
    (out / "model.h").write_text(tampered)
    xq, golden = flow.verification_inputs(digits_cnn, 10)
    r = cb.verify_host(digits_cnn, out, xq, golden)
    assert r["mismatches"] > 0
    assert r["first_mismatch_layer"] == "/conv2/Conv"


def test_compiler_errors_are_backend_errors_with_the_output(digits_cnn, tmp_path):
    out = generate_into(digits_cnn, tmp_path / "c")
    (out / "model.h").write_text((out / "model.h").read_text().replace("static uint8_t", "static uint8_t oops", 1))
    xq, golden = flow.verification_inputs(digits_cnn, 2)
    with pytest.raises(BackendError, match=r"compiling the c target \(gcc\) failed \(exit code 1\)(.|\n)*error"):
        cb.verify_host(digits_cnn, out, xq, golden)


def test_inputs_outside_the_format_are_refused(digits_cnn, tmp_path):
    out = generate_into(digits_cnn, tmp_path / "c")
    xq, golden = flow.verification_inputs(digits_cnn, 2)
    xq = xq.copy()
    xq[0, 0, 0, 0] = 999
    with pytest.raises(BackendError,
                       match=r"tensor 'input': integers must lie in \[0, 255\] \(u8\.\d+\), got \[\d+, 999\]"):
        cb.verify_host(digits_cnn, out, xq, GoldenRun(golden.output, golden.trace))


def test_build_directory_runs_by_itself(digits_cnn, tmp_path):
    """A copy of the generated c/ folder: `make run`, `make check` and (where the tools are)
    `make run-arm` work with the sample files the build wrote (input_0.bin, expected_0.bin)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    out = generate_into(digits_cnn, tmp_path / "build" / "c")
    copy = tmp_path / "elsewhere" / "c"
    shutil.copytree(out, copy)
    m = cb.build_model(digits_cnn.qgraph, "digits_cnn")
    xq, want = (cb.from_bytes((copy / f).read_bytes(), info)
                for f, info in (("input_0.bin", m.input), ("expected_0.bin", m.output)))
    assert len(xq) == cb.SAMPLE_FILES
    assert want.reshape(len(xq), -1).tolist() == run_int(digits_cnn.qgraph, xq).reshape(len(xq), -1).tolist()
    goals = ["run", "check"] + (["run-arm"] if cb.arm_tools_missing() is None else [])
    for goal in goals:
        proc = subprocess.run(["make", goal], cwd=copy, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"make {goal}:\n{proc.stdout}{proc.stderr}"
        assert "matches" in proc.stdout, proc.stdout
    makefile = (copy / "Makefile").read_text()
    assert "To run your own samples" in makefile and "input_0.bin" in makefile
