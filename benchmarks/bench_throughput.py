"""Benchmark: Verilog throughput at a multiplier budget, with wide streams (issue 14).

For each model and ``parallelism: {auto: true, multipliers: N}``: the folding, the generated design
(streams as wide as the folding needs, width converters where two ends differ), a Verilator
harness simulation of real samples back to back (every output integer checked against the golden
model), and side by side:

- cycles per frame measured (the mean interval of the last output beats, frames back to back)
  against the analytic figure (the slowest layer or converter) and against the multiplier bound
  (MACs / multipliers instantiated: what the multipliers could do if none were ever idle);
- multipliers instantiated and busy (MACs / (measured cycles x multipliers));
- the widest stream (elements per beat) and the converters placed.

    python benchmarks/bench_throughput.py [--samples 3] [--json FILE]

Models: the digits CNN, the MNIST CNN of ../shared (skipped without it) and DS-CNN of
examples/mlperf_tiny (depthwise convs). Issue 14's target: the MNIST CNN at {multipliers: 512}
at <= 9,500 cycles/frame with >= 80 % of its multipliers busy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
MNIST_MODEL = ROOT.parent / "shared" / "models" / "burn_mnist_cnn" / "mnist.onnx"
TARGET_MNIST_CYCLES, TARGET_BUSY = 9500, 0.80

#: (name, config, budgets)
CASES = [("digits_cnn", ROOT / "configs" / "digits_cnn.yaml", (21, 52, 128)),
         ("mnist_cnn", ROOT / "configs" / "mnist_cnn.yaml", (128, 512)),
         ("ds_cnn", ROOT / "configs" / "ds_cnn_128.yaml", (128, 512, 768))]


def quantize(path: Path):
    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    cfg = load_config(path)
    cfg["targets"] = ["verilog"]
    cfg["data"] = dict(cfg["data"], validation=None)
    return run_quantization(cfg, progress=False)


def measure(b, budget: int, samples: int, tmp: Path) -> dict:
    from fpgagen import flow
    from fpgagen.backends import to_hwc, verilog
    from fpgagen.backends.folding import apply_folding
    from fpgagen.backends.parallelism import layer_dims, macs
    from fpgagen.backends.verilog_sim import build_sim, run_sim, sim_job

    q = b.qgraph
    cfg = copy.deepcopy(b.cfg)
    cfg["parallelism"] = dict(cfg["parallelism"], auto=True, multipliers=budget, layers={})
    cfg.pop("hardware", None)
    cfg["hardware"] = {}
    apply_folding(cfg, q)
    b2 = copy.copy(b)
    b2.cfg = cfg
    d = verilog.plan_design(q, cfg)
    target = tmp / f"{q.name}_{budget}"
    verilog.generate(b2).write(target)
    xq, golden = flow.verification_inputs(b2, samples)
    stream = to_hwc(xq, q.shapes[q.input])
    expected = to_hwc(golden.output, q.shapes[q.output])
    runner, _ = build_sim(target, d, tmp / f"{q.name}_{budget}_build", "harness")
    job = sim_job(q, d, tmp / f"{q.name}_{budget}_build", stream, "bench", pauses=False,
                  timing_frames=min(len(stream), 4))
    res = run_sim(runner, target, d.top, tmp / f"{q.name}_{budget}_build", job)
    got = np.array(res["outputs"], dtype=np.int64)
    mismatches = int(sum(not np.array_equal(got[i], expected[i]) for i in range(len(expected)))) \
        if got.shape == expected.shape else len(expected)
    total_macs = sum(macs(q, ly) for ly in q.layers if layer_dims(q, ly) is not None)
    mults = sum(row["multipliers"] for row in d.layer_cycles.values())
    measured = res["cycles_per_frame"]
    return {"model": q.name, "budget": budget, "macs": int(total_macs), "multipliers": int(mults),
            "cycles_measured": measured, "cycles_analytic": int(d.pipeline_cycles),
            "multiplier_bound": -(-total_macs // mults), "busy": total_macs / (measured * mults),
            "widest_ew": max(s.ew for s in d.streams), "converters": sum(i.module == "fpgagen_dwc" for i in d.instances),
            "samples": len(stream), "mismatches": mismatches,
            "layers": {n: {k: v for k, v in row.items() if k in ("parallelism", "cycles", "ew_in", "ew_out")}
                       for n, row in d.layer_cycles.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=3, help="samples streamed and checked per design")
    ap.add_argument("--models", nargs="+", default=[c[0] for c in CASES])
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp_name:
        for name, path, budgets in CASES:
            if name not in args.models:
                continue
            if name == "mnist_cnn" and not MNIST_MODEL.is_file():
                print(f"MNIST CNN: not measured (../shared absent: {MNIST_MODEL})")
                continue
            b = quantize(path)
            for budget in budgets:
                rows.append(measure(b, budget, args.samples, Path(tmp_name)))
                r = rows[-1]
                print(json.dumps(r), flush=True)
    head = (f"{'model':<12} {'budget':>6} {'mults':>5} {'measured':>9} {'analytic':>8} {'mult bound':>10} "
            f"{'busy':>6} {'EW max':>6} {'dwc':>3} {'samples':>7} {'mism':>4}")
    print(f"machine: {os.cpu_count()} cores")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<12} {r['budget']:6d} {r['multipliers']:5d} {r['cycles_measured']:9.1f} "
              f"{r['cycles_analytic']:8d} {r['multiplier_bound']:10d} {r['busy']:6.1%} {r['widest_ew']:6d} "
              f"{r['converters']:3d} {r['samples']:7d} {r['mismatches']:4d}")
    ok = all(r["mismatches"] == 0 and r["cycles_measured"] == r["cycles_analytic"] for r in rows)
    for r in rows:
        if r["model"] == "mnist_cnn" and r["budget"] == 512:
            met = r["cycles_measured"] <= TARGET_MNIST_CYCLES and r["busy"] >= TARGET_BUSY and r["mismatches"] == 0
            ok = ok and met
            print(f"MNIST CNN at {{multipliers: 512}}: {r['cycles_measured']:.0f} cycles/frame, {r['busy']:.1%} busy "
                  f"(target <= {TARGET_MNIST_CYCLES} and >= {TARGET_BUSY:.0%}: {'met' if met else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
