"""Benchmark: the MLPerf Tiny reference architectures through every fpgagen target, in one table.

The models are the ones ``examples/mlperf_tiny/models.py`` writes (seeded random weights: the
numerics of the architectures, not their trained accuracy; NHWC variants where the script writes
them). Per model, in one run:

- MACs, the C backend's constant bytes (weights, biases, descriptors: flash) and arena bytes (RAM);
- per device with ``parallelism: auto`` (the device's multiplier budget): the folding's cycles per
  frame (the analytic figure the simulations measure exactly), frames/s at the device's default
  clock (not a placed-and-routed Fmax: ``benchmarks/bench_synth.py`` gives those), the multipliers
  used, and the estimated block RAMs and LUTs against the device (estimates before synthesis),
  or the error that says why it does not fit;
- with ``--verify N``: ``fpgagen verify`` of N samples on c, hls and verilog at
  ``parallelism: {multipliers: M}`` (``--multipliers``, default 16), the bit-exact sample counts,
  the measured cycles per frame and each target's wall time;
- the MLPerf Tiny v1.0 closed-division FPGA figures the issue names, beside ours, labelled as
  different hardware (their latency is a measured board figure, ours analytic cycles at a clock).

    python benchmarks/bench_mlperf.py [--models resnet8 ds_cnn ...] [--devices ...]
        [--verify N] [--multipliers M] [--json FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgagen.devices import DEVICES  # noqa: E402

ALL_DEVICES = ["ice40-up5k", "ecp5-25f", "ecp5-45f", "ecp5-85f", "xc7a35t", "xc7z020"]
#: MLPerf Tiny v1.0 (closed division) FPGA results the issue names: different hardware, different
#: models' training and quantization; latency per inference as published
REFERENCE = {
    "resnet8": "hls4ml ResNet-8, Pynq-Z2 (xc7z020): 7.6 ms",
    "ds_cnn": "FINN keyword spotting (an MLP, not DS-CNN), Pynq-Z2: 17.5 us",
    "fc_autoencoder": "hls4ml anomaly-detection autoencoder, Pynq-Z2: 18.7 us",
}


def load_models():
    spec = importlib.util.spec_from_file_location("mlperf_tiny_models", ROOT / "examples" / "mlperf_tiny" / "models.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mlperf_tiny_models"] = mod
    spec.loader.exec_module(mod)
    return mod


def quantize(path: Path):
    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization

    cfg = load_config(path)
    return run_quantization(cfg, progress=False)


def c_figures(b) -> dict:
    from fpgagen.backends.c.emit import build_model

    m = build_model(b.qgraph)
    return {"macs": int(m.macs), "const_bytes": int(m.const_bytes), "arena_bytes": int(m.plan.arena_bytes)}


def device_row(b, path: Path, device: str, macs: int) -> dict:
    """The folding and the resource estimate of the model's Verilog on ``device`` (auto)."""
    from fpgagen.backends.folding import apply_folding
    from fpgagen.backends.verilog import check_lut_budget, estimate_resources, plan_design
    from fpgagen.config import load_config
    from fpgagen.errors import FpgagenError

    raw = yaml.safe_load(path.read_text())
    raw.update(hardware={"device": device}, parallelism={"auto": True}, targets=["verilog"])
    cfg_path = path.with_name(f"{path.stem}_{device}.yaml")
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config(cfg_path)
    dev = DEVICES[device]
    try:
        folding = apply_folding(cfg, b.qgraph)
        d = plan_design(b.qgraph, cfg)
        est = estimate_resources(d, cfg["hardware"])
        check_lut_budget(est, cfg["hardware"])
    except FpgagenError as e:
        return {"device": device, "error": str(e).splitlines()[0]}
    cycles = d.pipeline_cycles
    total = est["total"]
    return {"device": device, "cycles": int(cycles), "fps": dev.clock_mhz * 1e6 / cycles, "clock_mhz": dev.clock_mhz,
            "multipliers": int(total["multipliers"]), "available_multipliers": dev.dsps * dev.int8_per_dsp,
            "macs_per_cycle": macs / cycles, "brams": int(total["brams"]), "available_brams": dev.brams,
            "luts": int(total["luts"]), "available_luts": dev.luts, "buffer_bits": int(total["buffer_bits"]),
            "rom_bits": int(total["rom_bits"]), "fits": bool(est["fits"]), "how": folding.how if folding else ""}


def verify_row(path: Path, samples: int, multipliers: int, out: Path) -> dict:
    from fpgagen.flow import verify

    raw = yaml.safe_load(path.read_text())
    raw.update(parallelism={"auto": True, "multipliers": multipliers}, targets=["c", "hls", "verilog"])
    raw.pop("hardware", None)
    cfg_path = path.with_name(f"{path.stem}_verify{multipliers}.yaml")
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    row = {}
    for target in ("c", "hls", "verilog"):
        t0 = time.perf_counter()
        results, _ = verify(cfg_path, targets=[target], samples=samples, out=out / f"{path.stem}_{multipliers}",
                            progress=False)
        r = results[target]
        row[target] = {"samples": int(r["samples"]), "mismatches": int(r["mismatches"]),
                       "seconds": round(time.perf_counter() - t0, 1),
                       **({"cycles_per_frame": r["cycles_per_frame"]} if "cycles_per_frame" in r else {})}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="model names (default: every model the script writes)")
    ap.add_argument("--devices", nargs="*", default=ALL_DEVICES, choices=sorted(DEVICES))
    ap.add_argument("--verify", type=int, default=0, metavar="N", help="verify N samples on c, hls and verilog")
    ap.add_argument("--multipliers", type=int, default=16, help="the multiplier budget of the verified builds")
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    ap.add_argument("--out", type=Path, help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)

    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_mlperf_")
        args.out = Path(tmp.name)
    mod = load_models()
    paths = {p.stem: p for p in mod.write(args.out / "models")}
    names = args.models or list(paths)
    rows = {}
    for name in names:
        t0 = time.perf_counter()
        b = quantize(paths[name])
        row = {"model": name, **c_figures(b), "quantize_seconds": round(time.perf_counter() - t0, 1), "devices": []}
        for device in args.devices:
            row["devices"].append(device_row(b, paths[name], device, row["macs"]))
        if args.verify:
            row["verify"] = verify_row(paths[name], args.verify, args.multipliers, args.out / "verify")
        rows[name] = row
        print_model(row, args)
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def print_model(row: dict, args) -> None:
    print(f"\n## {row['model']}: {row['macs']:,} MACs, C constants {row['const_bytes']:,} B, "
          f"arena {row['arena_bytes']:,} B")
    print("| device | clock MHz | cycles/frame | frames/s | MACs/cycle | multipliers | BRAM (est.) | LUT (est.) | "
          "buffers kbit | fits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in row["devices"]:
        if "error" in r:
            print(f"| {r['device']} | | | | | | | | | no: {r['error']} |")
            continue
        print(f"| {r['device']} | {r['clock_mhz']:g} | {r['cycles']:,} | {r['fps']:,.1f} | {r['macs_per_cycle']:.2f} | "
              f"{r['multipliers']} / {r['available_multipliers']} | {r['brams']} / {r['available_brams']} | "
              f"{r['luts']:,} / {r['available_luts']:,} | {r['buffer_bits'] / 1000:,.0f} | "
              f"{'yes' if r['fits'] else 'no (estimate)'} |")
    if "verify" in row:
        v = row["verify"]
        parts = []
        for t, r in v.items():
            cyc = f", {r['cycles_per_frame']:,.0f} cycles/frame measured" if "cycles_per_frame" in r else ""
            parts.append(f"{t} {r['samples'] - r['mismatches']}/{r['samples']} bit-exact ({r['seconds']} s{cyc})")
        print(f"verify at {{multipliers: {args.multipliers}}}: " + "; ".join(parts))
    ref = REFERENCE.get(row["model"].removesuffix("_nhwc"))
    if ref:
        best = min((r for r in row["devices"] if "cycles" in r), key=lambda r: r["cycles"] / r["clock_mhz"],
                   default=None)
        ours = (f"fpgagen {best['device']}: {best['cycles'] / best['clock_mhz']:,.0f} us/frame (analytic, "
                f"{best['clock_mhz']:g} MHz)" if best else "")
        print(f"MLPerf Tiny v1.0, different hardware and model training: {ref}; {ours}")


if __name__ == "__main__":
    sys.exit(main())
