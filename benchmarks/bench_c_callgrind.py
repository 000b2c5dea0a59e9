"""Instructions per inference of the C target on the host, counted by valgrind's callgrind.

The digits CNN (examples/digits/digits_cnn.onnx) is built with fpgagen's C target and compiled
with ``gcc -std=c99 -pedantic -Wall -Wextra -Werror -O2``; beside it, a naive reference C
implementation of the same integer model (plain nested loops over CHW arrays, bounds checks
per tap, one int64 accumulator per output, weights in ONNX order) compiled with the same flags.
Both are first checked bit-exact against the golden model. Callgrind counts instructions
(repeatable, unlike time): each program runs on 1 and on 1 + N samples, and the difference over
N is the cost of one inference (file I/O of one sample included, a few hundred instructions).

    python benchmarks/bench_c_callgrind.py [--samples 50] [--json result.json]

Reported: instructions per inference and per MAC for fpgagen's runtime (the host build, which
computes two output pixels per 64-bit multiply, and the FPGAGEN_PAIRS=0 build, the code path of
32-bit MCUs) and for the naive reference, and the naive/fpgagen ratio. The target is < 4
instructions per MAC.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"

NAIVE_KERNELS = r"""
/* naive.c - a plain reference implementation of the integer model: CHW int32 arrays, nested
 * loops with a bounds check per tap, int64 accumulators, SPEC.md 3 requantization. */
#include <stdint.h>
#include <stdio.h>

static int32_t requant(int64_t acc, int shift, int32_t lo, int32_t hi)
{
    int64_t v;
    if (shift >= 63) {
        v = 0;
    } else if (shift > 0) {
        v = (acc + ((int64_t)1 << (shift - 1)) - (acc < 0)) >> shift;
    } else {
        v = acc * ((int64_t)1 << -shift);
    }
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static void conv(const int32_t *x, int c, int h, int w, const int8_t *wt, const int64_t *b, int co, int oh,
                 int ow, int kh, int kw, int sh, int sw, int pt, int pl, int groups, int shift, int32_t lo,
                 int32_t hi, int32_t *y)
{
    int o, i, j, ci, u, v;
    const int cg = c / groups, og = co / groups;
    for (o = 0; o < co; ++o) {
        for (i = 0; i < oh; ++i) {
            for (j = 0; j < ow; ++j) {
                int64_t acc = b[o];
                for (ci = 0; ci < cg; ++ci) {
                    for (u = 0; u < kh; ++u) {
                        for (v = 0; v < kw; ++v) {
                            const int r = i * sh - pt + u, s = j * sw - pl + v;
                            if (r >= 0 && r < h && s >= 0 && s < w) {
                                acc += (int64_t)x[((o / og * cg + ci) * h + r) * w + s]
                                       * wt[((o * cg + ci) * kh + u) * kw + v];
                            }
                        }
                    }
                }
                y[(o * oh + i) * ow + j] = requant(acc, shift, lo, hi);
            }
        }
    }
}

static void dense(const int32_t *x, int n_in, const int8_t *wt, const int64_t *b, int n_out, int shift,
                  int32_t lo, int32_t hi, int32_t *y)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        int64_t acc = b[o];
        for (i = 0; i < n_in; ++i) {
            acc += (int64_t)x[i] * wt[o * n_in + i];
        }
        y[o] = requant(acc, shift, lo, hi);
    }
}

static void maxpool(const int32_t *x, int c, int h, int w, int oh, int ow, int kh, int kw, int sh, int sw,
                    int pt, int pl, int32_t *y)
{
    int ch, i, j, u, v;
    for (ch = 0; ch < c; ++ch) {
        for (i = 0; i < oh; ++i) {
            for (j = 0; j < ow; ++j) {
                int32_t m = INT32_MIN;
                for (u = 0; u < kh; ++u) {
                    for (v = 0; v < kw; ++v) {
                        const int r = i * sh - pt + u, s = j * sw - pl + v;
                        if (r >= 0 && r < h && s >= 0 && s < w && x[(ch * h + r) * w + s] > m) {
                            m = x[(ch * h + r) * w + s];
                        }
                    }
                }
                y[(ch * oh + i) * ow + j] = m;
            }
        }
    }
}
"""


def naive_program(q) -> str:
    """The naive C program for ``q`` (conv, dense, maxpool, flatten)."""
    from fpgagen.backends.c import c_int_list

    ident = {t: f"t{i}" for i, t in enumerate([q.input] + [layer.output for layer in q.layers])}
    parts = [NAIVE_KERNELS]
    for t, name in ident.items():
        parts.append(f"static int32_t {name}[{math.prod(q.shapes[t])}]; /* {t} */")
    calls = []
    for k, layer in enumerate(q.layers):
        x, y = ident[layer.inputs[0]], ident[layer.output]
        if layer.op in ("conv", "dense"):
            parts.append(f"static const int8_t w{k}[] = {{\n{c_int_list(layer.weight)}\n}};")
            parts.append(f"static const int64_t b{k}[] = {{\n{c_int_list(layer.bias)}\n}};")
        if layer.op == "conv":
            a = layer.params
            c, h, w = q.shapes[layer.inputs[0]]
            co, oh, ow = q.shapes[layer.output]
            calls.append(f"conv({x}, {c}, {h}, {w}, w{k}, b{k}, {co}, {oh}, {ow}, {a.kernel[0]}, {a.kernel[1]}, "
                         f"{a.stride[0]}, {a.stride[1]}, {a.pads[0]}, {a.pads[1]}, {a.groups}, "
                         f"{layer.shift}, {layer.lo}, {layer.hi}, {y});")
        elif layer.op == "dense":
            calls.append(f"dense({x}, {math.prod(q.shapes[layer.inputs[0]])}, w{k}, b{k}, "
                         f"{q.shapes[layer.output][0]}, {layer.shift}, {layer.lo}, {layer.hi}, {y});")
        elif layer.op == "maxpool":
            a = layer.params
            c, h, w = q.shapes[layer.inputs[0]]
            _, oh, ow = q.shapes[layer.output]
            calls.append(f"maxpool({x}, {c}, {h}, {w}, {oh}, {ow}, {a.kernel[0]}, {a.kernel[1]}, "
                         f"{a.stride[0]}, {a.stride[1]}, {a.pads[0]}, {a.pads[1]}, {y});")
        elif layer.op == "flatten":
            calls.append(f"memcpy({y}, {x}, sizeof {y});")
        else:
            raise SystemExit(f"the naive reference has no kernel for {layer.op!r} (layer {layer.name})")
    n_in, n_out = math.prod(q.shapes[q.input]), math.prod(q.shapes[q.output])
    in_t = "int8_t" if q.input_fmt.signed else "uint8_t"
    out_t = "int8_t" if q.output_fmt.signed else "uint8_t"
    parts.append(f"""
#include <string.h>

static void run(void)
{{
    {chr(10).join('    ' + c for c in calls).strip()}
}}

int main(void)
{{
    FILE *in = fopen("input_naive.bin", "rb"), *out = fopen("output_naive.bin", "wb");
    {in_t} buf[{n_in}];
    {out_t} res[{n_out}];
    int i;
    if (in == NULL || out == NULL) {{
        return 1;
    }}
    while (fread(buf, 1, sizeof buf, in) == sizeof buf) {{
        for (i = 0; i < {n_in}; ++i) {{
            {ident[q.input]}[i] = buf[i];
        }}
        run();
        for (i = 0; i < {n_out}; ++i) {{
            res[i] = ({out_t}){ident[q.output]}[i];
        }}
        fwrite(res, 1, sizeof res, out);
    }}
    fclose(in);
    return fclose(out) != 0;
}}
""")
    return "\n".join(parts)


def callgrind_instructions(cmd: list[str], cwd: Path) -> int:
    """Total instructions (Ir) of one run under callgrind."""
    out_file = cwd / "callgrind.out"
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *cmd], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"valgrind failed: {proc.stderr[-2000:]}")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", out_file.read_text(), re.M)
    return int(match.group(1))


def per_inference(cmd, cwd: Path, write_inputs, n: int) -> int:
    """(Ir with 1 + n samples - Ir with 1 sample) / n."""
    counts = []
    for count in (1, 1 + n):
        write_inputs(count)
        counts.append(callgrind_instructions(cmd, cwd))
    return round((counts[1] - counts[0]) / n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="inferences per measurement (default 50)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    for tool in ("gcc", "valgrind"):
        if shutil.which(tool) is None:
            print(f"{tool} not installed: nothing to measure")
            return 2

    from fpgagen import flow
    from fpgagen.backends import c as cb
    from fpgagen.config import resolve_config

    cfg = resolve_config({
        "name": "digits_cnn", "model": str(DIGITS / "digits_cnn.onnx"),
        "data": {"calibration": str(DIGITS / "digits_calib.npz"), "validation": str(DIGITS / "digits_valid.npz"),
                 "preprocess": {"scale": 0.0625, "offset": 0}},
        "targets": ["c"],
    }, base=ROOT)
    build = flow.run_quantization(cfg, progress=False)
    q = build.qgraph
    xq, golden = flow.verification_inputs(build, 1 + args.samples)
    m = cb.build_model(q, "digits_cnn")

    with tempfile.TemporaryDirectory(prefix="bench_c_") as tmp:
        tmp = Path(tmp)
        cb.generate(build).write(tmp / "c")
        (tmp / "naive.c").write_text(naive_program(q))
        exes = {
            "fpgagen": cb.compile_host(tmp / "c", tmp / "fpgagen"),
            "fpgagen_pairs_off": cb.compile_host(tmp / "c", tmp / "fpgagen_pairs_off", extra=["-DFPGAGEN_PAIRS=0"]),
            "naive": cb.compile_host(tmp, tmp / "naive", sources=("naive.c",)),
        }
        # bit-exact first
        for name in ("fpgagen", "fpgagen_pairs_off"):
            (out,) = cb.run_samples([str(exes[name])], tmp / name.replace("fpgagen", "run"), [m], [xq], name)
            assert cb.count_mismatches(out, golden.output).sum() == 0, f"{name} differs from the golden model"
        work = tmp / "naive_run"
        work.mkdir()
        dtype = np.int8 if q.input_fmt.signed else np.uint8

        def naive_inputs(count):
            (work / "input_naive.bin").write_bytes(xq[:count].reshape(count, -1).astype(dtype).tobytes())

        naive_inputs(len(xq))
        subprocess.run([str(exes["naive"])], cwd=work, check=True)
        raw = (work / "output_naive.bin").read_bytes()
        got = np.frombuffer(raw, np.int8 if q.output_fmt.signed else np.uint8).astype(np.int64)
        assert got.reshape(len(xq), -1).tolist() == golden.output.reshape(len(xq), -1).tolist(), "naive differs"

        figures = {"model": "digits_cnn", "macs_per_inference": m.macs, "samples": args.samples,
                   "compiler": "gcc " + " ".join(cb.HOST_CFLAGS)}
        for name in ("fpgagen", "fpgagen_pairs_off"):
            run_dir = tmp / name.replace("fpgagen", "run")

            def ours(count, run_dir=run_dir):
                (run_dir / "input_0.bin").write_bytes(
                    cb.to_bytes(xq[:count], m.input).astype(dtype).tobytes())

            figures[name] = per_inference([str(exes[name])], run_dir, ours, args.samples)
        figures["naive"] = per_inference([str(exes["naive"])], work, naive_inputs, args.samples)

    for name in ("fpgagen", "fpgagen_pairs_off", "naive"):
        figures[f"{name}_per_mac"] = round(figures[name] / m.macs, 3)
    figures["naive_over_fpgagen"] = round(figures["naive"] / figures["fpgagen"], 2)
    print(f"digits CNN, {m.macs} MACs per inference, {cb.HOST_CFLAGS[-1]} host build, callgrind Ir per inference:")
    print(f"  {'implementation':34s} {'instructions':>12s} {'per MAC':>8s}")
    for name, label in (("fpgagen", "fpgagen runtime (64-bit host)"),
                        ("fpgagen_pairs_off", "fpgagen runtime, FPGAGEN_PAIRS=0"),
                        ("naive", "naive reference (plain loops)")):
        print(f"  {label:34s} {figures[name]:12d} {figures[name + '_per_mac']:8.2f}")
    print(f"  naive / fpgagen: {figures['naive_over_fpgagen']:.2f}x; target < 4 instructions per MAC: "
          f"{'met' if figures['fpgagen_per_mac'] < 4 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
