"""Benchmark: the generated Verilog on real FPGAs, through open synthesis and place and route.

For each model (digits MLP, digits CNN, the MNIST CNN of ../shared, the MNIST 5x5 CNN of
examples/mnist5x5) and each device, with ``parallelism: auto`` (the device's multiplier budget, no
hand tuning): ``fpgagen synth``
(Yosys + nextpnr from the YoWASP wheels) and report, side by side in one table:

- LUT / FF / DSP / BRAM used vs available, whether it fits and routes;
- the LUT / FF estimate before synthesis (summary.json ``hardware.resources``) and its error
  against the tools' counts;
- Fmax (nextpnr's timing analysis) against the device's default clock;
- cycles per frame (the folding's analytic figure, which simulation measures exactly: see
  tests/test_folding.py), frames/s at Fmax;
- MACs per cycle against the device's multiplier bound (DSP blocks x int8 products per block).

Each run takes one to several minutes (first runs of the YoWASP tools compile for a minute).

    python benchmarks/bench_synth.py [--models digits_mlp digits_cnn mnist_cnn mnist5x5]
        [--devices ice40-up5k ecp5-25f ecp5-85f xc7a35t] [--json FILE] [--out DIR]

Without ``--devices`` each model runs on its default devices (``DEVICES_OF``: the four above, the
MNIST 5x5 CNN on the UP5K it is sized for). A model whose config needs ../shared is left out when
../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgagen.backends.parallelism import macs  # noqa: E402
from fpgagen.devices import DEVICES  # noqa: E402


#: model name -> its build config under configs/
CONFIGS = {"digits_mlp": "digits_mlp.yaml", "digits_cnn": "digits_cnn.yaml", "mnist_cnn": "mnist_cnn.yaml",
           "mnist5x5": "mnist5x5_up5k.yaml"}
ALL_DEVICES = ["ice40-up5k", "ecp5-25f", "ecp5-85f", "xc7a35t"]
#: the devices a model runs on when --devices is not given
DEVICES_OF = {"mnist5x5": ["ice40-up5k"]}


def config_for(name: str, device: str, tmp: Path) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / CONFIGS[name]).read_text())
    for key in ("model",):
        raw[key] = str((ROOT / "configs" / raw[key]).resolve())
    for key in ("calibration", "validation"):
        raw["data"][key] = str((ROOT / "configs" / raw["data"][key]).resolve())
    raw["data"]["validation"] = None
    raw["data"]["samples"] = 300
    raw["targets"] = ["verilog"]
    raw["parallelism"] = "auto"
    raw["hardware"] = {"device": device}
    raw["name"] = name
    path = tmp / f"{name}_{device}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def has_inputs(name: str) -> bool:
    """Whether the model and data files of ``name``'s config exist (../shared may be absent)."""
    raw = yaml.safe_load((ROOT / "configs" / CONFIGS[name]).read_text())
    return all((ROOT / "configs" / path).is_file() for path in (raw["model"], raw["data"]["calibration"]))


def bench(name: str, device: str, out: Path) -> dict:
    from fpgagen.synth import run_synth

    cfg = config_for(name, device, out)
    r, target = run_synth(cfg, out / f"{name}_{device}", progress=False)
    summary = json.loads((target / "summary.json").read_text())
    cycles = summary["hardware"]["pipeline_cycles"]
    from fpgagen.flow import run_quantization
    from fpgagen.config import load_config

    q = run_quantization(load_config(cfg), progress=False).qgraph
    total_macs = sum(macs(q, ly) for ly in q.layers)
    dev = DEVICES[device]
    fmax = r["fmax_mhz"]
    return {
        "model": name, "device": device, "used": r["used"], "available": r["available"], "fits": r["fits"],
        "routed": r["routed"], "fmax_mhz": fmax, "clock_mhz": r["clock_mhz"], "met": r["met"],
        "multipliers": summary["folding"]["multipliers"], "cycles_per_frame": cycles,
        "frames_per_s_at_fmax": None if not fmax else round(fmax * 1e6 / cycles, 1),
        "macs_per_cycle": round(total_macs / cycles, 2),
        "multiplier_bound": dev.dsps * dev.int8_per_dsp,
        "estimate": r["estimate"], "error": r.get("error"),
    }


def error_pct(est: int, used: int) -> str:
    return f"{100 * (est - used) / used:+.0f} %" if used else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--devices", nargs="+", choices=list(DEVICES), help=f"default: {', '.join(ALL_DEVICES)} "
                    f"(the MNIST 5x5 CNN: {', '.join(DEVICES_OF['mnist5x5'])})")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--out", help="keep the builds here (default: a temporary folder)")
    args = ap.parse_args()
    models = [m for m in args.models if has_inputs(m)]
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(args.out) if args.out else Path(tmpdir)
        out.mkdir(parents=True, exist_ok=True)
        for name in models:
            for device in args.devices or DEVICES_OF.get(name, ALL_DEVICES):
                try:
                    row = bench(name, device, out)
                except Exception as exc:  # a model that does not fit a device is a row, not a crash
                    row = {"model": name, "device": device, "error": f"{type(exc).__name__}: {exc}"}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print("| model | device | LUT | LUT estimated (error) | FF | FF estimated (error) | DSP | BRAM | routed | Fmax MHz | "
          "multipliers | cycles/frame | frames/s at Fmax | MACs/cycle (bound) |")
    print("| --- " * 14 + "|")
    for r in rows:
        if "used" not in r:
            print(f"| {r['model']} | {r['device']} | {r['error'][:80]} |" + " |" * 12)
            continue
        u, a = r["used"], r["available"]
        cell = {k: f"{u[k]:,} / {a[k]:,}" for k in ("lut", "ff", "dsp", "bram")}
        routed = "-" if r["routed"] is None else ("yes" if r["routed"] else "no")
        fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        fps = "-" if r["frames_per_s_at_fmax"] is None else f"{r['frames_per_s_at_fmax']:,.0f}"
        e = r["estimate"]
        est = {k: f"{e[key]:,} ({error_pct(e[key], u[k])})" for k, key in (("lut", "luts"), ("ff", "ffs"))}
        print(f"| {r['model']} | {r['device']} | {cell['lut']} | {est['lut']} | {cell['ff']} | {est['ff']} | "
              f"{cell['dsp']} | {cell['bram']} | "
              f"{routed} | {fmax} | {r['multipliers']} | {r['cycles_per_frame']:,} | {fps} | "
              f"{r['macs_per_cycle']} ({r['multiplier_bound']}) |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
