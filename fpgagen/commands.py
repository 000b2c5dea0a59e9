"""The sub-commands of ``fpgagen``: each registers its arguments and a ``run(args)``."""

from __future__ import annotations


def register(sub) -> None:
    """Add every sub-command to the ``argparse`` sub-parser ``sub``."""
    import argparse

    from fpgagen.config import TARGETS

    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "build", help="calibrate, choose formats, validate and emit the configured targets",
        formatter_class=raw,
        epilog="examples:\n  fpgagen build configs/digits_cnn.yaml -o out/digits_cnn\n"
        "  fpgagen build configs/mnist_cnn.yaml --print-config",
    )
    _build_args(p)
    p.add_argument("--print-config", action="store_true", help="print the fully resolved config and stop")
    p.set_defaults(run=run_build)

    p = sub.add_parser(
        "calibrate", help="log MSB histograms and choose formats only (no targets)",
        formatter_class=raw, epilog="example:\n  fpgagen calibrate configs/mnist_cnn.yaml -o out/mnist",
    )
    _build_args(p)
    p.set_defaults(run=run_calibrate)

    p = sub.add_parser(
        "verify", help="build, then check the generated targets against the golden model on real samples",
        formatter_class=raw,
        epilog="examples:\n  fpgagen verify configs/digits_cnn.yaml --targets verilog --samples 20\n"
        "  fpgagen verify configs/digits_mlp.yaml --targets c hls\n\n"
        "exit code 1 when any output integer differs from the golden model; OUT/verify.json holds the\n"
        "results, those of targets not verified in the latest run marked stale",
    )
    _build_args(p)
    p.add_argument("--targets", nargs="+", metavar="TARGET",
                   help=f"targets to verify: any of {', '.join(TARGETS)} (default: the config's `targets`)")
    p.add_argument("--samples", type=int, help="samples to stream through each target (default: verify.samples)")
    p.set_defaults(run=run_verify)

    p = sub.add_parser(
        "synth", help="build the Verilog, then synthesise, place and route it for an FPGA (Yosys, nextpnr)",
        formatter_class=raw,
        epilog="examples:\n  fpgagen synth configs/digits_cnn.yaml --device ecp5-25f\n"
        "  fpgagen synth configs/digits_mlp.yaml --device ice40-up5k --clock-mhz 24\n\n"
        "devices: " + ", ".join(_devices()) + "\nwrites OUT/synth.json and the tools' logs under OUT/synth/",
    )
    _build_args(p)
    p.add_argument("--device", choices=_devices(), help="FPGA (default: the config's hardware.device)")
    p.add_argument("--clock-mhz", type=float, help="target clock (default: hardware.clock_mhz, else the device's)")
    p.set_defaults(run=run_synth)

    p = sub.add_parser(
        "report", help="re-render OUT/report.html from a build directory",
        formatter_class=raw, epilog="example:\n  fpgagen report out/digits_cnn",
    )
    p.add_argument("out", help="a build directory written by `fpgagen build`")
    p.set_defaults(run=run_report)


def _devices() -> list[str]:
    from fpgagen.devices import DEVICES

    return list(DEVICES)


def _build_args(p) -> None:
    p.add_argument("config", help="the YAML build config")
    p.add_argument("-o", "--out", help="output directory (default: the config's `output`, else out/<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _progress(args):
    return False if args.quiet else None


def run_build(args) -> int:
    from fpgagen.config import dump_config, load_config
    from fpgagen.flow import build

    cfg = load_config(args.config)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    b, out = build(cfg, args.out, _progress(args))
    _warn(b)
    acc = b.summary()["accuracy"]
    line = f"built {cfg['name']}: {len(b.qgraph.layers)} layers -> {out}"
    if acc["float"] is not None:
        line += f"; top-1 float {100 * acc['float']:.2f} %, fixed {100 * acc['fixed']:.2f} %"
    print(line)
    return 0


def _warn(b) -> None:
    import sys

    for w in b.warnings:
        print(f"fpgagen: warning: {w}", file=sys.stderr)


def run_calibrate(args) -> int:
    from fpgagen.config import load_config
    from fpgagen.flow import calibration_only

    cfg = load_config(args.config)
    b, out = calibration_only(cfg, args.out, _progress(args))
    print(f"calibrated {cfg['name']} on {b.calibration.samples} samples -> {out}")
    for name, fmt in [(b.qgraph.input, b.qgraph.input_fmt)] + [
        (layer.name, layer.out_fmt) for layer in b.qgraph.layers if layer.requantizes
    ]:
        print(f"  {name:28s} {fmt}")
    return 0


def run_verify(args) -> int:
    from fpgagen.errors import ConfigError
    from fpgagen.flow import verify

    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples: expected a positive integer, got {args.samples}")
    results, out = verify(args.config, args.targets, args.samples, args.out, _progress(args))
    parts = [f"{t}: {r['samples']} samples, {r['mismatches']} mismatches" for t, r in results.items()
             if (not args.targets or t in args.targets) and t not in ("onnxruntime", "qonnx")]
    parts += [results[t]["result"] for t in ("onnxruntime", "qonnx") if t in results]
    print(f"verify OK ({'; '.join(parts)}) -> {out / 'verify.json'}")
    return 0


def run_synth(args) -> int:
    from fpgagen.synth import run_synth as synth

    r, out = synth(args.config, args.out, args.device, args.clock_mhz, _progress(args))
    used, avail = r["used"], r["available"]
    est = {"lut": r.get("estimate", {}).get("luts"), "ff": r.get("estimate", {}).get("ffs"),
           "bram": r.get("estimate", {}).get("brams")}
    parts = [f"{k} {used[k]}/{avail[k]}" + (f" (estimated {est[k]})" if est.get(k) is not None else "")
             for k in ("lut", "ff", "dsp", "bram") if k in used]
    line = f"synth {r['device']}: {', '.join(parts)}"
    if r["routed"] is not None:
        line += "; routed" if r["routed"] else f"; NOT routed ({r.get('error', 'see synth/nextpnr.log')})"
    if r["fmax_mhz"] is not None:
        line += f"; Fmax {r['fmax_mhz']:.1f} MHz ({'meets' if r['met'] else 'misses'} {r['clock_mhz']:g} MHz)"
    print(f"{line} -> {out / 'synth.json'}")
    return 0


def run_report(args) -> int:
    from pathlib import Path

    from fpgagen.outdir import atomic_write
    from fpgagen.report.html import render_report

    out = Path(args.out)
    atomic_write(out / "report.html", render_report(out))
    print(f"report -> {out / 'report.html'}")
    return 0
