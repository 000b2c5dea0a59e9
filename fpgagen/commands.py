"""The sub-commands of ``fpgagen``: each registers its arguments and a ``run(args)``."""

from __future__ import annotations


def register(sub) -> None:
    """Add every sub-command to the ``argparse`` sub-parser ``sub``."""
    import argparse

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
    acc = b.summary()["accuracy"]
    line = f"built {cfg['name']}: {len(b.qgraph.layers)} layers -> {out}"
    if acc["float"] is not None:
        line += f"; top-1 float {100 * acc['float']:.2f} %, fixed {100 * acc['fixed']:.2f} %"
    print(line)
    return 0


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
