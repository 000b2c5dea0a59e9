"""The ``fpgagen`` command line.

Exit codes: 0 success, 1 verification mismatch, 2 bad input (a config, a model, a path).
"""

from __future__ import annotations

import argparse
import sys

from fpgagen.version import __version__
from fpgagen.errors import FpgagenError, VerificationMismatch

EPILOG = """\
examples:
  fpgagen build configs/digits_cnn.yaml -o out/digits_cnn
  fpgagen calibrate configs/mnist_cnn.yaml
  fpgagen verify configs/digits_cnn.yaml --targets verilog c --samples 20
  fpgagen report out/digits_cnn

exit codes: 0 success, 1 verification mismatch, 2 bad input
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fpgagen",
        description="Calibrate an ONNX network with MSB histograms, choose 8-bit fixed-point "
        "formats and generate bit-exact Verilog, HLS C++ and microcontroller C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fpgagen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from fpgagen import commands

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except VerificationMismatch as exc:
        print(f"fpgagen: verification failed: {exc}", file=sys.stderr)
        return 1
    except FpgagenError as exc:
        print(f"fpgagen: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fpgagen: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fpgagen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
