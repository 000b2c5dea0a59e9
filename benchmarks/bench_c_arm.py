"""Executed instructions per MAC of the C target on the Cortex-M4 image, per layer and per network.

The networks: the digits CNN (configs/digits_cnn.yaml), the MNIST CNN of ../shared
(configs/mnist_cnn.yaml; skipped when ../shared is absent) and a depthwise-separable CNN
(random weights, calibrated on random data; defined below). Each is generated with fpgagen's C
target, cross-compiled for the mps2-an386 board (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb, at
-O2 and at -Os) and run under qemu-system-arm; the executed instructions of every layer are
counted the way ``fpgagen verify --targets c`` does (:func:`fpgagen.backends.c.arm_instruction_counts`:
-icount shift=0 -singlestep -d exec,nochain, the log split at the harness's fpgagen_mark calls, so
startup and file I/O are excluded). Instructions, not cycles. The outputs are checked bit-exact
against the golden model on the same image first.

``--before REV`` also measures the C target of git revision REV (extracted with git archive into
a temporary directory; its model.h and runtime with this checkout's counting harness), side by side.

    python benchmarks/bench_c_arm.py [--before REV] [--opt -O2 -Os] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgagen import flow  # noqa: E402
from fpgagen.backends import c as cb  # noqa: E402
from fpgagen.config import load_config, resolve_config  # noqa: E402
from fpgagen.ops.conv import ConvParams

SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
              ROOT.parent / "shared")


def digits_build():
    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml")
    cfg["targets"] = ["c"]
    return flow.run_quantization(cfg, progress=False)


def mnist_build():
    import yaml

    model, data = SHARED / "models" / "burn_mnist_cnn" / "mnist.onnx", SHARED / "data" / "mnist_1k.npz"
    if not (model.is_file() and data.is_file()):
        return None
    raw = yaml.safe_load((ROOT / "configs" / "mnist_cnn.yaml").read_text())
    raw["model"] = str(model)
    raw["data"]["calibration"] = raw["data"]["validation"] = str(data)
    cfg = resolve_config(raw, base=ROOT / "configs")
    cfg["targets"] = ["c"]
    return flow.run_quantization(cfg, progress=False)


def separable_build():
    """conv 3x3/2 -> (depthwise 3x3 -> pointwise 1x1) x 2 -> global average pool -> dense."""
    from types import SimpleNamespace

    from fpgagen.ir.graph import Graph, Node
    from fpgagen.quant.calibrate import calibrate
    from fpgagen.quant.lower import QuantOptions, choose_formats, lower

    rng = np.random.default_rng(2026)

    def conv(name, src, dst, ci, co, k, s, groups):
        p = k // 2
        return Node(name, "conv", [src], dst, ConvParams(kernel=(k, k), stride=(s, s), pads=(p, p, p, p), groups=groups),
                    rng.normal(0, 1 / np.sqrt(ci // groups * k * k), (co, ci // groups, k, k)),
                    rng.normal(0, 0.1, co), "relu", [f"Conv_{name}"], "Conv")

    nodes = [conv("conv0", "x", "a", 3, 16, 3, 2, 1), conv("dw1", "a", "b", 16, 16, 3, 1, 16),
             conv("pw1", "b", "c", 16, 32, 1, 1, 1), conv("dw2", "c", "d", 32, 32, 3, 2, 32),
             conv("pw2", "d", "e", 32, 64, 1, 1, 1), Node("gap", "gap", ["e"], "g"), Node("flat", "flatten", ["g"], "f"),
             Node("fc", "dense", ["f"], "y", None, rng.normal(0, 0.2, (10, 64)), rng.normal(0, 0.1, 10), None,
                  ["Gemm_fc"], "Gemm")]
    shapes = {"x": (3, 32, 32), "a": (16, 16, 16), "b": (16, 16, 16), "c": (32, 16, 16), "d": (32, 8, 8),
              "e": (64, 8, 8), "g": (64, 1, 1), "f": (64,), "y": (10,)}
    g = Graph("separable", "x", "y", nodes, shapes, onnx_output_shape=(10,)).validate()
    x = rng.normal(0, 1, (64, 3, 32, 32)).astype(np.float32)
    q, _ = lower(g, choose_formats(calibrate(g, x, progress=False), QuantOptions()))
    return SimpleNamespace(qgraph=q, cfg={"name": "separable"}, x_valid=x[:8], x_calib=x)


def inputs(b, n):
    from fpgagen.golden.model import quantize_input, run_int

    x = b.x_valid if b.x_valid is not None else b.x_calib
    xq = quantize_input(b.qgraph, x[:n]).reshape((n,) + tuple(b.qgraph.shapes[b.qgraph.input]))
    return xq, run_int(b.qgraph, xq)


def generate_with(rev_dir: Path | None, b, out: Path) -> None:
    """The C target of this checkout, or of the extracted revision ``rev_dir`` (its model.h and
    runtime; this checkout's harness, which has the counting marks)."""
    cb.generate(b).write(out)
    if rev_dir is None:
        return
    import pickle

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "build.pkl").write_bytes(pickle.dumps((b.qgraph, b.cfg.get("name"))))
        script = ("import pickle, sys\nfrom pathlib import Path\nfrom fpgagen.backends import c as cb\n"
                  f"q, name = pickle.loads(Path({str(tmp)!r}, 'build.pkl').read_bytes())\n"
                  "m = cb.build_model(q, name)\n"
                  f"Path({str(out)!r}, 'model.h').write_text(cb.render_model_h(m))\n"
                  "for rel in cb.RUNTIME_FILES:\n"
                  f"    Path({str(out)!r}, rel).write_text(cb.read_library_file('c/' + rel))\n")
        subprocess.run([sys.executable, "-c", script], cwd=rev_dir, env={"PYTHONPATH": str(rev_dir), "PATH": "/usr/bin:/bin"},
                       check=True)


def extract(rev: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    link = dest / "fpgagen" / "templates"
    if not link.exists():
        link.symlink_to(dest / "templates")
    return dest


def measure(b, name, opts, rev_dir, work: Path) -> dict:
    out = work / "c"
    generate_with(rev_dir, b, out)
    m = cb.build_model(b.qgraph, (b.cfg or {}).get("name") or b.qgraph.name)
    xq, want = inputs(b, cb.COUNT_FRAMES)
    result = {}
    for opt in opts:
        elf = cb.compile_arm(out, work / f"run{opt}" / "harness.elf", opt=opt)
        got = cb.run_samples([*cb.QEMU_CMD, str(elf)], work / f"run{opt}", [m], [xq], f"{name} {opt}")[0]
        if got.reshape(len(xq), -1).tolist() != want.reshape(len(xq), -1).tolist():
            raise SystemExit(f"{name} {opt}: the Cortex-M4 output differs from the golden model")
        result[opt] = cb.arm_instruction_counts(out, work / f"count{opt}", m, xq, opt=opt)
        result[opt]["flash_bytes"] = sum(cb.arm_model_size(out, work / f"size{opt}", m.prefix, opt=opt)[k]
                                         for k in ("text", "data"))
    result["macs"], result["arena_bytes"], result["arena_lower_bound"] = m.macs, m.plan.arena_bytes, m.plan.lower_bound
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="also measure the C target of this git revision")
    ap.add_argument("--opt", nargs="+", default=["-O2", "-Os"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    missing = cb.arm_tools_missing()
    if missing:
        raise SystemExit(f"bench_c_arm: {missing}")
    nets = [("digits CNN", digits_build()), ("MNIST CNN", mnist_build()), ("depthwise-separable CNN", separable_build())]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_c_arm_") as tmp:
        tmp = Path(tmp)
        versions = [("after", None)]
        if args.before:
            versions.insert(0, (f"before ({args.before})", extract(args.before, tmp / "rev")))
        for name, b in nets:
            if b is None:
                print(f"{name}: skipped ({SHARED} not found)")
                continue
            for label, rev_dir in versions:
                key = f"{name} / {label}"
                results[key] = measure(b, key, args.opt, rev_dir, tmp / key.replace(" ", "_").replace("/", "_"))
                shutil.rmtree(tmp / key.replace(" ", "_").replace("/", "_"), ignore_errors=True)
    for key, r in results.items():
        print(f"\n{key}: {r['macs']} MACs, arena {r['arena_bytes']} B (lower bound {r['arena_lower_bound']} B)")
        layers = r[args.opt[0]]["layers"]
        print(f"  {'layer':<28}{'op':<9}{'MACs':>9}" + "".join(f"{'instr/MAC ' + o:>18}" for o in args.opt))
        for k, entry in enumerate(layers):
            cells = []
            for o in args.opt:
                e = r[o]["layers"][k]
                cells.append(f"{e['instructions_per_mac']:>18.2f}" if e["macs"] else f"{e['instructions']:>13.0f} ins")
            print(f"  {entry['layer'][:27]:<28}{entry['op']:<9}{entry['macs']:>9}" + "".join(cells))
        print(f"  {'network':<37}{r['macs']:>9}"
              + "".join(f"{r[o]['instructions_per_mac']:>18.2f}" for o in args.opt))
        print("  instructions per frame: " + ", ".join(f"{o} {r[o]['instructions_per_frame']:.0f}" for o in args.opt)
              + "; flash: " + ", ".join(f"{o} {r[o]['flash_bytes']} B" for o in args.opt))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
