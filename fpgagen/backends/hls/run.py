"""The HLS backend's toolchain: the C simulation (g++, cached), its runs and the bit-exact check
(see :mod:`fpgagen.backends.hls`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from fpgagen.backends import to_hwc
from fpgagen.backends.hls.emit import _ints_text, generate
from fpgagen.backends.hls.plan import (
    CXX_STD,
    CXXFLAGS,
    RUN_TIMEOUT,
    ModelPlan,
    plan_model,
)
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph
from fpgagen.names import quoted
from fpgagen.targets import first_mismatch, register


# -- C simulation ------------------------------------------------------------------------------------
def _compiler() -> tuple[str, str]:
    cxx = shutil.which("g++")
    if cxx is None:
        raise BackendError(f"the HLS C simulation needs g++ ({CXX_STD}); install it, e.g. apt-get install g++")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return cxx, (version.splitlines() or ["g++"])[0]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def compile_csim(target_dir: Path, top: str, sim_dir: Path, sources=None,
                 extra_flags=()) -> tuple[Path, float, bool]:
    """Compile the C simulation of ``target_dir``; returns (binary, seconds, cached).

    The binary is named by a hash of the compiler, the flags and every source and header, so an
    unchanged target is never compiled twice (and a changed one always is).
    """
    target_dir, sim_dir = Path(target_dir), Path(sim_dir)
    sources = [Path(s) for s in (sources or [target_dir / f"{top}.cpp", target_dir / f"{top}_tb.cpp"])]
    for src in sources:
        if not src.is_file():
            raise BackendError(f"HLS C simulation: {src} not found; generate the hls target first")
    cxx, version = _compiler()
    flags = list(CXXFLAGS) + list(extra_flags)
    digest = hashlib.sha256()
    digest.update(f"{version}\n{' '.join(flags)}\n".encode())
    for path in sorted({*sources, *target_dir.glob("*.h")}):
        digest.update(f"{path.name}\n".encode())
        digest.update(path.read_bytes())
    sim_dir.mkdir(parents=True, exist_ok=True)
    binary = sim_dir / f"{top}_csim-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary, 0.0, True
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=sim_dir, prefix=".build-") as tmp:
        procs = []
        for k, src in enumerate(sources):  # one g++ per translation unit, in parallel
            obj = Path(tmp) / f"{k}_{src.stem}.o"
            cmd = [cxx, *flags, f"-I{target_dir}", "-c", str(src), "-o", str(obj)]
            procs.append((src, obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                     text=True)))
        failures = []
        for src, _, proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                failures.append(f"g++ failed on {src.name}:\n{_tail(out)}")
        if failures:
            raise BackendError(f"compiling the HLS C simulation in {target_dir} failed\n" + "\n".join(failures))
        tmp_bin = Path(tmp) / "csim"
        link = subprocess.run([cxx, *flags, "-o", str(tmp_bin), *[str(o) for _, o, _ in procs]],
                              capture_output=True, text=True, check=False)
        if link.returncode != 0:
            raise BackendError(f"linking the HLS C simulation in {target_dir} failed:\n{_tail(link.stdout + link.stderr)}")
        os.replace(tmp_bin, binary)
    for old in sim_dir.glob(f"{top}_csim-*"):
        if old != binary:
            old.unlink()
    return binary, time.monotonic() - start, False


def run_csim(binary: Path, input_path: Path, output_path: Path, trace_path: Path | None = None) -> str:
    """Run the testbench on an input file; returns its stdout. Failures raise BackendError."""
    cmd = [str(binary), str(input_path), str(output_path)]
    if trace_path is not None:
        cmd += ["--trace", str(trace_path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BackendError(f"the HLS C simulation {binary.name} did not finish within {RUN_TIMEOUT} s") from None
    if res.returncode != 0:
        raise BackendError(
            f"the HLS C simulation {binary.name} failed (exit code {res.returncode}):\n{_tail(res.stderr + res.stdout)}"
        )
    return res.stdout


def check_inputs(q: QGraph, xq) -> np.ndarray:
    from fpgagen.golden.model import check_int_input

    return check_int_input(q, xq, f"HLS C simulation input {quoted(q.input)}", BackendError, ir_layout=True)


def parse_trace(text: str) -> dict[str, np.ndarray]:
    """Trace lines ``<layer ident> <n> v0 v1 ...`` -> {ident: values} (the last line per layer)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] == "sample":
            continue
        n = int(parts[1])
        out[parts[0]] = np.array(parts[2:2 + n], dtype=np.int64)
    return out


def first_differing_layer(plan: ModelPlan, trace: dict, golden_trace: dict, index: int) -> str | None:
    """The first layer (in order) whose traced output differs from the golden model's (a layer
    missing from the trace counts as differing: the run stopped before it)."""
    idents = {lc.layer.name: lc.ident for lc in plan.layers}

    def want(layer):
        return to_hwc(np.asarray(golden_trace[layer.output])[index:index + 1], plan.layouts[layer.output])[0]

    return first_mismatch([lc.layer for lc in plan.layers],
                          lambda layer: trace.get(idents[layer.name], np.zeros(0, np.int64)), want)


def verify(build, target_dir, xq, golden) -> dict:
    """Compile and run the C simulation on ``xq``; compare every output integer with ``golden``."""
    q = build.qgraph
    plan = plan_model(q, build.cfg)
    target_dir = Path(target_dir).resolve()
    xq = check_inputs(q, xq)
    sim_dir = target_dir.parent / ".sim" / "hls"
    binary, compile_seconds, cached = compile_csim(target_dir, plan.top, sim_dir)
    in_path, out_path = sim_dir / "verify_input.txt", sim_dir / "verify_output.txt"
    in_path.write_text(_ints_text(xq))
    start = time.monotonic()
    run_csim(binary, in_path, out_path)
    sim_seconds = time.monotonic() - start
    n = len(xq)
    values = np.array(out_path.read_text().split(), dtype=np.int64)
    if values.size != n * plan.out_size:
        raise BackendError(
            f"the HLS C simulation wrote {values.size} integers for {n} samples; expected {n * plan.out_size}"
        )
    got = values.reshape(n, plan.out_size)
    want = np.asarray(golden.output).reshape(n, -1)
    bad = [i for i in range(n) if not np.array_equal(got[i], want[i])]
    result = {
        "samples": int(n),
        "mismatches": len(bad),
        "compile_seconds": round(compile_seconds, 2),
        "compile_cached": cached,
        "sim_seconds": round(sim_seconds, 3),
        "compiler": _compiler()[1],
        "top": plan.top,
    }
    if bad:
        i = bad[0]
        result["first_mismatch_sample"] = i
        one = sim_dir / "probe_input.txt"
        one.write_text(_ints_text(xq[i:i + 1]))
        trace_path = sim_dir / "probe_trace.txt"
        run_csim(binary, one, sim_dir / "probe_output.txt", trace_path)
        layer = first_differing_layer(plan, parse_trace(trace_path.read_text()), golden.trace, i)
        if layer is not None:
            result["first_mismatch_layer"] = layer
    return result


register("hls", verify=verify)(generate)

