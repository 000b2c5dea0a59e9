"""Build a generated design with Verilator and stream real samples through it.

Used by ``fpgagen verify --targets verilog``: every output integer is compared with the golden
model; on a mismatch the design is re-run on the first failing sample with every internal
stream probed, and the first layer whose output differs is named. Two simulators give the same
results (``verify.verilog_sim``): ``harness``, the default, a C++ stream harness compiled with the
design (:mod:`fpgagen.backends.verilog_harness`, no Python per clock), and ``cocotb``, the cocotb
testbench of :mod:`fpgagen.backends.verilog_cocotb` (VPI, one Python call per clock).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from fpgagen.backends import to_hwc, verilog_harness
from fpgagen.backends.verilog import Design, filelist_sources, generate, plan_design
from fpgagen.errors import BackendError
from fpgagen.targets import first_mismatch, register
from fpgagen.toolchain import make_env, verilator_env


class _Env:
    """Temporarily set environment variables (the runner's make and simulator read them)."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: C++ optimisation of Verilator's model, passed to its make as variable overrides: -O1 for the
#: per-cycle code; -O0 for the run-once "slow" code (constructors, symbol tables), where GCC's
#: -O1 takes minutes on the symbol table of a large design (the MNIST CNN: > 8 min, -O0: 2 s).
MAKE_OPT = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")


#: the simulators of ``verify.verilog_sim`` (the first is the default)
SIMULATORS = ("harness", "cocotb")


def build_sim(target_dir: Path, d: Design, build_dir: Path, simulator: str = "harness"):
    """Compile the design ``d`` in ``target_dir`` with Verilator for ``simulator``; returns (runner,
    build seconds), the runner to pass to :func:`run_sim`."""
    if simulator == "harness":
        return verilog_harness.build(target_dir, d, build_dir)
    if simulator != "cocotb":
        raise BackendError(f"verify.verilog_sim: expected one of {', '.join(SIMULATORS)}, got {simulator!r}")
    from cocotb_tools.runner import get_runner

    top = d.top
    sources = [target_dir / f for f in filelist_sources((target_dir / "filelist.f").read_text())]
    runner = get_runner("verilator")
    start = time.monotonic()
    with _Env(make_env(MAKE_OPT)):
        try:
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"],
                         timescale=("1ns", "1ps"), always=False, log_file=build_dir / "build.log")
        except SystemExit as exc:  # the runner exits on a failed build
            raise BackendError(f"Verilator could not build {top}: see {build_dir / 'build.log'}") from exc
    return runner, time.monotonic() - start


def _first_error(log: Path) -> str:
    """': <the first assertion or error line of a cocotb log>', or '' when there is none."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        if "AssertionError" in line or "Error:" in line:
            return ": " + line.strip()[:300]
    return ""


def run_sim(runner, target_dir: Path, top: str, build_dir: Path, job: dict) -> dict:
    """Run ``job`` (:func:`sim_job`) on a build of :func:`build_sim`; the testbench's results."""
    if isinstance(runner, verilog_harness.Harness):
        return verilog_harness.run(runner, target_dir, build_dir, job)
    job_path = build_dir / f"job_{job['tag']}.json"
    job["results"] = str(build_dir / f"results_{job['tag']}.json")
    Path(job["results"]).unlink(missing_ok=True)
    job_path.write_text(json.dumps(job))
    log = build_dir / f"sim_{job['tag']}.log"
    with _Env(verilator_env()):  # the simulator inherits this process's environment
        try:
            runner.test(test_module="fpgagen.backends.verilog_cocotb", hdl_toplevel=top, build_dir=build_dir,
                        test_dir=target_dir, extra_env={"FPGAGEN_SIM_JOB": str(job_path)}, results_xml=str(build_dir / f"results_{job['tag']}.xml"),
                        log_file=log)
        except SystemExit:
            # the runner exits when the simulator or (under pytest) the cocotb test fails; the
            # results file (written at the end, or by the watchdog) tells what happened
            pass
    results = Path(job["results"])
    if not results.is_file():
        raise BackendError(f"the Verilog simulation of {top} did not finish{_first_error(log)}; see {log}")
    return json.loads(results.read_text())


def deadlock_error(top: str, res: dict, build_dir: Path) -> BackendError:
    """The error of a simulation the watchdog stopped (``res`` has ``timeout``)."""
    stuck = {k: v for k, v in res["streams"].items() if isinstance(v, dict) and v["valid"] and not v["ready"]}
    return BackendError(
        f"the Verilog simulation of {top} stopped moving after {res['timeout']} cycles (a deadlock); "
        f"streams holding data that is not taken: {', '.join(stuck) or 'none'}; see {build_dir}"
    )


def differing_frames(outputs: list, expected: np.ndarray) -> list[int]:
    """The samples whose output frame (a list of integers up to its tlast; missing when the
    simulation stopped before it) is not exactly ``expected[i]``."""
    return [i for i in range(len(expected))
            if i >= len(outputs) or len(outputs[i]) != expected[i].size
            or not np.array_equal(np.asarray(outputs[i], dtype=np.int64), expected[i])]


def sim_job(q, d: Design, build_dir: Path, frames: np.ndarray, tag: str = "main", pauses: bool = True,
            timing_frames: int = 3, seed: int = 1) -> dict:
    """The job the cocotb testbench runs: ``frames`` (``[N, elements]`` in stream order) saved
    next to it; with ``pauses`` the source idles and the sink stalls at random (30 % each)."""
    np.save(build_dir / f"inputs_{tag}.npy", frames)
    return {
        "tag": tag, "inputs": str(build_dir / f"inputs_{tag}.npy"), "seed": seed, "pauses": pauses,
        "in_width": q.input_fmt.word, "in_signed": q.input_fmt.signed,
        "out_width": q.output_fmt.word, "out_signed": q.output_fmt.signed,
        "out_elements": math.prod(q.shapes[q.output]), "timing_frames": timing_frames,
        # generous: pauses slow a frame down about 3x; a design that takes longer is stuck
        "max_cycles": (len(frames) + timing_frames) * (8 * d.pipeline_cycles + 200) + 10000,
        "streams": [s.name for s in d.streams],
    }


def verify_design(build, target_dir, xq, golden, seed: int = 1, timing_frames: int = 3,
                  build_dir: Path | None = None, simulator: str | None = None) -> dict:
    """Build the design in ``target_dir`` (``OUT/verilog``; the model in ``build_dir``, by default
    ``OUT/.sim/verilog``) for ``simulator`` (default: the config's ``verify.verilog_sim``, else
    the harness), stream the input integers ``xq`` (``[N, *IR input shape]``) through it with
    random pauses, compare every output with ``golden``, then time ``timing_frames`` frames back
    to back."""
    from fpgagen.golden.model import check_int_input

    q = build.qgraph
    xq = check_int_input(q, xq, f"the Verilog simulation's input {q.input!r}", BackendError, ir_layout=True)
    target_dir = Path(target_dir).resolve()
    d: Design = plan_design(q, build.cfg)
    build_dir = Path(build_dir) if build_dir is not None else target_dir.parent / ".sim" / "verilog"
    build_dir.mkdir(parents=True, exist_ok=True)
    if simulator is None:
        simulator = (build.cfg.get("verify") or {}).get("verilog_sim") or SIMULATORS[0]
    runner, build_seconds = build_sim(target_dir, d, build_dir, simulator)

    frames = to_hwc(xq, q.shapes[q.input])
    expected = to_hwc(golden.output, q.shapes[q.output])
    job = sim_job(q, d, build_dir, frames, "main", True, timing_frames, seed)
    start = time.monotonic()
    res = run_sim(runner, target_dir, d.top, build_dir, job)
    sim_seconds = time.monotonic() - start
    bad = differing_frames(res["outputs"], expected)
    received = len(res["outputs"])
    if "timeout" in res and not any(i < received for i in bad):
        raise deadlock_error(d.top, res, build_dir)  # stuck, and every frame it gave out is right
    result = {
        "samples": int(len(frames)),
        "mismatches": len(bad),
        "cycles_per_frame": res.get("cycles_per_frame"),
        "cycles_per_frame_analytic": d.pipeline_cycles,
        "latency_cycles": res.get("latency_cycles"),
        "build_seconds": round(build_seconds, 1),
        "sim_frames_per_second": round(len(frames) / sim_seconds, 2) if sim_seconds else None,
        "simulator": simulator,
        # clock cycles simulated (both runs: checked frames with pauses, then the timed ones) per second
        "sim_cycles_per_second": round(res["cycles"] / sim_seconds) if res.get("cycles") and sim_seconds else None,
    }
    if "timeout" in res:  # a wrong output, then the design stopped moving
        result["stopped_after_frames"] = received
        result["stopped"] = str(deadlock_error(d.top, res, build_dir))
    if "timing_error" in res:
        result["timing_error"] = res["timing_error"]
    if bad:
        result["first_mismatch_sample"] = bad[0]
        result["first_mismatch_layer"] = locate_mismatch(runner, q, d, target_dir, build_dir, job, frames[bad[0]:bad[0] + 1],
                                                         golden, bad[0])
    return result


def locate_mismatch(runner, q, d: Design, target_dir, build_dir, job, frame, golden, index: int) -> str | None:
    """Re-run one failing sample with every internal stream probed; the first differing layer."""
    probes = {}
    for layer in q.layers:
        if layer.output in d.probes:
            fmt = q.fmts[layer.output]
            stream = d.probes[layer.output]
            probes[layer.output] = (stream, fmt.word, fmt.signed, d.stream_ew(stream))
    np.save(build_dir / "probe_inputs.npy", frame)
    pjob = dict(job, tag="probe", inputs=str(build_dir / "probe_inputs.npy"), pauses=False, probe=True,
                probes=probes, timing_frames=1)
    res = run_sim(runner, target_dir, d.top, build_dir, pjob)
    if "timeout" in res and not res.get("probes"):
        return None  # stuck before the probes were recorded: no layer can be named
    def want(layer):
        return to_hwc(golden.trace[layer.output][index:index + 1], q.shapes[layer.output])[0]

    def got(layer):
        n = len(want(layer))
        values = np.array(res["probes"].get(layer.output, [])[:n], dtype=np.int64)
        if "timeout" in res and len(values) < n:
            return None  # stopped before this layer gave out the whole frame: no verdict on it
        return values

    return first_mismatch([layer for layer in q.layers if layer.output in probes], got, want)


# the Verilog target: generate (plan and emit, fpgagen.backends.verilog) and verify (run, here)
register("verilog", verify=verify_design)(generate)
