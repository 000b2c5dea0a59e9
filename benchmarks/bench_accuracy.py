"""8-bit accuracy side by side: fpgagen's power-of-two fixed point vs onnxruntime's int8 static
quantization (arbitrary float scales and zero points, a looser format than fixed point).

Both calibrate on the same calibration data and are scored on the same validation data.

    python benchmarks/bench_accuracy.py                    # every shipped config whose data exists
    python benchmarks/bench_accuracy.py --configs configs/digits_cnn.yaml
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def ort_accuracy(model_path: str, x_cal, x_val, y_val, input_shape, calib_samples: int) -> float:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    shape = (1,) + tuple(input_shape)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(x_cal[:calib_samples])

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {name: x.reshape(shape).astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "q.onnx")
        quantize_static(model_path, out, Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        q = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        pred = [int(np.argmax(q.run(None, {name: x.reshape(shape).astype(np.float32)})[0])) for x in x_val]
    return float(np.mean(np.asarray(pred) == np.asarray(y_val).reshape(-1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=[str(p) for p in sorted((ROOT / "configs").glob("*.yaml"))])
    ap.add_argument("--ort-calib-samples", type=int, default=500,
                    help="calibration samples for onnxruntime (it runs them one by one)")
    args = ap.parse_args()

    from fpgagen.config import load_config
    from fpgagen.errors import ConfigError
    from fpgagen.flow import run_quantization

    print(f"{'model':12s} {'samples':>7s} {'float':>8s} {'fpgagen':>8s} {'delta':>7s} {'ort int8':>9s} {'delta':>7s}")
    for path in args.configs:
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            print(f"{Path(path).stem:12s} skipped: {exc}")
            continue
        cfg["targets"] = []
        b = run_quantization(cfg, progress=False)
        acc = b.summary()["accuracy"]
        shape = b.graph.onnx_input_shape or b.graph.shapes[b.graph.input]
        ort_acc = ort_accuracy(cfg["model"], b.x_calib, b.x_valid, b.y_valid, shape, args.ort_calib_samples)
        f, q = 100 * acc["float"], 100 * acc["fixed"]
        print(f"{cfg['name']:12s} {len(b.x_valid):7d} {f:7.2f}% {q:7.2f}% {q - f:+6.2f} {100 * ort_acc:8.2f}% "
              f"{100 * ort_acc - f:+6.2f}")


if __name__ == "__main__":
    main()
