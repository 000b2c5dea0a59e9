"""Per-channel vs per-tensor weight formats: SQNR of the final output against float and top-1
agreement with float, per model (SPEC.md 3, ``quantization.per_channel``).

    python benchmarks/bench_per_channel.py                 # every model below whose data exists
    python benchmarks/bench_per_channel.py --models ds_cnn digits_cnn

Models: the four MLPerf Tiny architectures of examples/mlperf_tiny/models.py (seeded random
weights; calibrated on 256 and validated on 128 other standard-normal inputs), the digits CNN
(configs/digits_cnn.yaml, 450 test digits) and, when ../shared exists, the MNIST CNN
(configs/mnist_cnn.yaml, 1,000 digits). Each model is calibrated once; both quantizations use the
same histograms and the config's methods. SQNR: the float model's output against the golden
model's dequantized output over the validation set; top-1: the fraction of samples whose argmax
agrees with float's. ``auto`` is ``quantization.per_channel: auto`` (fpgagen/quant/per_channel.py:
both measured on the calibration data, per-channel kept where it raises the output's SQNR by at
least 0.2 dB); the last column counts the per-channel layers of true / auto.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's fpgagen, not another installed one
MLPERF = ("resnet8", "ds_cnn", "mobilenet_v1_025", "fc_autoencoder")
CONFIGS = {"digits_cnn": ROOT / "configs" / "digits_cnn.yaml", "mnist_cnn": ROOT / "configs" / "mnist_cnn.yaml"}
MODES = (False, True, "auto")

from bench_mlperf import load_models  # noqa: E402  (the example models script, loaded once, in one place)


def load(name: str, tmp: Path):
    """(float graph, calibration x, validation x, validation y or None, config quantization keys)."""
    import fpgagen

    if name in MLPERF:
        import onnx

        m = load_models().MODELS[name]()
        path = tmp / f"{name}.onnx"
        onnx.save(m, path)
        shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
        x_cal = np.random.default_rng(100).standard_normal((256, *shape)).astype(np.float32)
        x_val = np.random.default_rng(200).standard_normal((128, *shape)).astype(np.float32)
        return fpgagen.load(path), x_cal, x_val, None, {}
    cfg = fpgagen.load_config(CONFIGS[name])
    x_cal, _ = fpgagen.load_data(cfg, "calibration")
    x_val, y_val = fpgagen.load_data(cfg, "validation")
    return fpgagen.load(cfg["model"]), x_cal, x_val, y_val, cfg["quantization"]


def available(name: str) -> bool:
    if name in MLPERF:
        return True
    try:
        import fpgagen

        cfg = fpgagen.load_config(CONFIGS[name])
        return Path(cfg["data"]["calibration"]).exists()
    except Exception:  # noqa: BLE001 - a config whose files are absent (../shared) is skipped
        return False


def measure(name: str, tmp: Path) -> dict:
    import fpgagen

    graph, x_cal, x_val, y_val, qcfg = load(name, tmp)
    cal = fpgagen.calibrate(graph, x_cal, progress=False)
    keys = {k: qcfg[k] for k in ("word_length", "method", "weight_method", "bias_word_length", "bias_method",
                                 "eps", "rounding") if k in qcfg}
    row = {"model": name}
    for mode in MODES:
        q = fpgagen.quantize_model(cal, per_channel=mode, x=x_cal if mode == "auto" else None, **keys)
        v = fpgagen.validate(graph, q, x_val, y_val, progress=False)
        t = v.traces[q.output]
        sqnr = 10 * np.log10(t.signal / t.noise) if t.noise > 0 else float("inf")
        row[mode] = {"sqnr": sqnr, "agree": v.agreement, "acc": v.accuracy["fixed"],
                     "layers": sum(ly.per_channel for ly in q.layers),
                     "macs": sum(ly.op in ("conv", "dense") for ly in q.layers)}
    row["float_acc"] = v.accuracy["float"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MLPERF) + list(CONFIGS))
    args = ap.parse_args()
    print(f"{'model':18s} {'SQNR per-tensor':>15s} {'per-channel':>11s} {'auto':>6s} "
          f"{'top-1 per-tensor':>16s} {'per-channel':>11s} {'auto':>6s} {'layers pc/auto':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            if not available(name):
                print(f"{name:18s} (skipped: its data is absent)")
                continue
            r = measure(name, Path(tmp))
            pt, pc, au = r[False], r[True], r["auto"]
            print(f"{name:18s} {pt['sqnr']:12.2f} dB {pc['sqnr']:8.2f} dB {au['sqnr']:6.2f} "
                  f"{100 * pt['agree']:14.2f} % {100 * pc['agree']:9.2f} % {100 * au['agree']:6.2f} "
                  f"{pc['layers']:>6d}/{au['layers']} of {pc['macs']}", flush=True)
            if pt["acc"] is not None:
                print(f"{'':18s} accuracy: float {100 * r['float_acc']:.2f} %, per-tensor {100 * pt['acc']:.2f} %, "
                      f"per-channel {100 * pc['acc']:.2f} %, auto {100 * au['acc']:.2f} %")


if __name__ == "__main__":
    main()
