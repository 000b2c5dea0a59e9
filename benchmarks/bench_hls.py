"""Benchmark: from `fpgagen build` of the digits CNN to a finished, checked C simulation.

Measures, as separate processes (so Python start-up and imports count):

1. ``fpgagen build`` of ``configs/digits_cnn.yaml`` (HLS target only), then ``make csim`` in
   ``OUT/hls`` (g++ compile of the generated C++, run on the shipped samples, every output
   integer checked against the golden model's);
2. ``fpgagen verify --targets hls`` of the same config (build + compile + C simulation of
   ``--samples`` samples + comparison), one command;
3. in the same run, when hls4ml can be imported (by this Python or ``--hls4ml-python``),
   hls4ml's convert + compile (its g++ build of the C simulation library) of the same network
   (Conv 1->8 3x3 pad 1, ReLU, MaxPool 2, Conv 8->16, ReLU, MaxPool 2, Flatten, Dense 64->10)
   built in PyTorch, ``ap_fixed<8,4>``, Vitis backend, io_stream; reported as a ratio.

Target (issue 5): (1) under 15 s on 2 cores, and faster than hls4ml's convert + compile.

    python benchmarks/bench_hls.py [--repeat 1] [--samples 20] [--hls4ml-python PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 15.0

HLS4ML_SCRIPT = r"""
import json, sys, time
t0 = time.monotonic()
import torch
import torch.nn as nn
import hls4ml
t_import = time.monotonic() - t0


class DigitsCNN(nn.Module):  # the architecture of examples/digits/digits_cnn.onnx
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc(self.flat(x))


torch.manual_seed(0)
model = DigitsCNN().eval()
t1 = time.monotonic()
cfg = hls4ml.utils.config_from_pytorch_model(model, input_shape=(1, 8, 8), default_precision="ap_fixed<8,4>",
                                             granularity="model")
hm = hls4ml.converters.convert_from_pytorch_model(model, hls_config=cfg, output_dir=sys.argv[1], backend="Vitis",
                                                  io_type="io_stream")
t2 = time.monotonic()
hm.compile()
t3 = time.monotonic()
print("HLS4ML_TIMES " + json.dumps({"version": hls4ml.__version__, "import": t_import, "convert": t2 - t1,
                                    "compile": t3 - t2}))
"""


def run(cmd, cwd=None, env=None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return seconds, res


def hls_config(tmp: Path, samples: int) -> Path:
    """configs/digits_cnn.yaml with the HLS target only (absolute paths)."""
    raw = yaml.safe_load((ROOT / "configs" / "digits_cnn.yaml").read_text())
    base = ROOT / "configs"
    raw["model"] = str((base / raw["model"]).resolve())
    for key in ("calibration", "validation"):
        raw["data"][key] = str((base / raw["data"][key]).resolve())
    raw["targets"] = ["hls"]
    raw["verify"] = {"samples": samples}
    path = tmp / "digits_cnn_hls.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def fpgagen_cmd() -> list[str]:
    return [sys.executable, "-m", "fpgagen.cli"]


def bench_fpgagen(tmp: Path, cfg: Path, k: int) -> dict:
    out = tmp / f"build{k}"
    t_build, _ = run([*fpgagen_cmd(), "build", str(cfg), "-o", str(out), "--quiet"])
    t_csim, res = run(["make", "-s", "csim"], cwd=out / "hls")
    if " 0 differ" not in res.stdout:
        raise SystemExit(f"make csim: the C simulation differs from the golden model:\n{res.stdout}")
    vout = tmp / f"verify{k}"
    t_verify, vres = run([*fpgagen_cmd(), "verify", str(cfg), "--targets", "hls", "-o", str(vout), "--quiet"])
    result = json.loads((vout / "verify.json").read_text())["hls"]
    if result["mismatches"]:
        raise SystemExit(f"fpgagen verify: {result}")
    return {"build": t_build, "make_csim": t_csim, "build_to_csim": t_build + t_csim, "verify": t_verify,
            "verify_compile": result["compile_seconds"], "verify_samples": result["samples"]}


def bench_hls4ml(python: str, tmp: Path, k: int) -> dict:
    script = tmp / "hls4ml_digits.py"
    script.write_text(HLS4ML_SCRIPT)
    _, res = run([python, str(script), str(tmp / f"hls4ml{k}")])
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("HLS4ML_TIMES "))
    times = json.loads(line.split(" ", 1)[1])
    times["convert_compile"] = times["convert"] + times["compile"]
    return times


def hls4ml_available(python: str) -> str | None:
    """None when ``python`` can import hls4ml and torch, else the reason it cannot."""
    res = subprocess.run([python, "-c", "import hls4ml, torch"], capture_output=True, text=True, check=False)
    if res.returncode == 0:
        return None
    last = (res.stderr.strip().splitlines() or ["?"])[-1]
    return f"{python} cannot import hls4ml and torch ({last}); pip install hls4ml (and torch) or pass --hls4ml-python"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    ap.add_argument("--samples", type=int, default=20, help="samples `fpgagen verify` simulates")
    ap.add_argument("--hls4ml-python", default=sys.executable, help="a Python that can import hls4ml and torch")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if shutil.which("g++") is None or shutil.which("make") is None:
        print("g++ and make are needed")
        return 2
    reason = hls4ml_available(args.hls4ml_python)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="bench_hls_") as tmp_name:
        tmp = Path(tmp_name)
        cfg = hls_config(tmp, args.samples)
        for k in range(args.repeat):  # interleaved, so both see the same machine load
            ours.append(bench_fpgagen(tmp, cfg, k))
            if reason is None:
                theirs.append(bench_hls4ml(args.hls4ml_python, tmp, k))
    best = min(ours, key=lambda r: r["build_to_csim"])
    report = {"cores": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2), "fpgagen": best,
              "fpgagen_runs": ours, "target_seconds": TARGET_SECONDS,
              "target_met": best["build_to_csim"] < TARGET_SECONDS}
    print(f"machine: {os.cpu_count()} cores, 1-min load average {report['load_avg_1min']}")
    print("fpgagen, digits CNN (best of %d):" % args.repeat)
    print(f"  fpgagen build (HLS target)            {best['build']:6.2f} s")
    print(f"  make csim (g++ compile + run + check) {best['make_csim']:6.2f} s")
    print(f"  build -> finished C simulation        {best['build_to_csim']:6.2f} s   (target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if report['target_met'] else 'NOT met'})")
    print(f"  fpgagen verify --targets hls          {best['verify']:6.2f} s   ({best['verify_samples']} samples, "
          f"compile {best['verify_compile']:.2f} s)")
    if reason is None:
        h = min(theirs, key=lambda r: r["convert_compile"])
        report.update(hls4ml=h, hls4ml_runs=theirs,
                      ratio_build_to_csim_vs_hls4ml=round(best["build_to_csim"] / h["convert_compile"], 3))
        print(f"hls4ml {h['version']}, same network in PyTorch (best of {args.repeat}):")
        print(f"  import torch + hls4ml                 {h['import']:6.2f} s")
        print(f"  convert                               {h['convert']:6.2f} s")
        print(f"  compile                               {h['compile']:6.2f} s")
        print(f"  convert + compile                     {h['convert_compile']:6.2f} s")
        print(f"ratio fpgagen (build -> csim) / hls4ml (convert + compile): "
              f"{report['ratio_build_to_csim_vs_hls4ml']:.2f}  (< 1: fpgagen is faster)")
    else:
        report["hls4ml"] = None
        report["hls4ml_reason"] = reason
        print(f"hls4ml: not measured: {reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
