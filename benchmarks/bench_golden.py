"""Speed of the integer golden model and of calibration, side by side with onnxruntime.

Targets ("op-centric core", item 6): the golden model within 2x of onnxruntime's float time on
the same batch; calibrating 1,000 images at most 1.4x a plain float pass over them. One run, same
machine, best of ``--repeat`` for each, so the ratios are what matters. Each is timed twice: wall
clock and the process's CPU time (all on one thread, so CPU time is the work done, and it stays
steady when other jobs share the machine; the wall clock does not).

    python benchmarks/bench_golden.py            # the MNIST CNN of ../shared (else digits CNN)
    python benchmarks/bench_golden.py --config configs/digits_cnn.yaml
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# both sides on one thread: a fair ratio, and stable on a shared machine
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def best(fn, repeat: int) -> tuple[float, float]:
    """The shortest wall-clock and the shortest CPU time of ``repeat`` runs of ``fn``, in seconds."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def dynamic_batch(model_path: str) -> bytes:
    """The model with its batch axis made free, so onnxruntime runs the whole batch at once."""
    import onnx

    m = onnx.load(model_path)
    for value in list(m.graph.input) + list(m.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    return m.SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT / "configs" / "mnist_cnn.yaml"
    if not (ROOT.parent / "shared" / "models" / "burn_mnist_cnn" / "mnist.onnx").is_file():
        default = ROOT / "configs" / "digits_cnn.yaml"
    ap.add_argument("--config", default=str(default))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import onnxruntime as ort

    from fpgagen.config import load_config
    from fpgagen.flow import run_quantization
    from fpgagen.golden.float_exec import run_float
    from fpgagen.golden.model import quantize_input, run_int
    from fpgagen.quant.calibrate import calibrate

    cfg = load_config(args.config)
    cfg["targets"] = []
    b = run_quantization(cfg, progress=False)
    x = b.x_calib[: args.samples].astype(np.float32)
    n = len(x)
    onnx_x = x.reshape((n,) + tuple(b.graph.onnx_input_shape or b.graph.shapes[b.graph.input]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(dynamic_batch(cfg["model"]), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xq = quantize_input(b.qgraph, x)

    t_ort = best(lambda: sess.run(None, {name: onnx_x}), args.repeat)
    t_int = best(lambda: run_int(b.qgraph, xq), args.repeat)
    t_float = best(lambda: run_float(b.graph, x), args.repeat)
    t_cal = best(lambda: calibrate(b.graph, x, cfg["data"]["batch_size"], progress=False), args.repeat)

    print(f"model {b.graph.name} ({Path(cfg['model']).name}), {n} samples, best of {args.repeat}, "
          f"onnxruntime and NumPy's BLAS on 1 thread")
    print(f"  {'':27s}{'wall':>9s}    {'cpu':>9s}")
    rows = [("onnxruntime float", t_ort, None, ""), ("fpgagen golden (integers)", t_int, t_ort, "onnxruntime (target <= 2x)"),
            ("fpgagen float pass", t_float, None, ""), ("calibration (histograms)", t_cal, t_float, "the float pass (target <= 1.4x)")]
    for label, (wall, cpu), ref, what in rows:
        line = f"  {label:27s}{wall * 1e3:9.1f} ms {cpu * 1e3:9.1f} ms"
        if ref is not None:
            line += f"   {wall / ref[0]:5.2f}x wall {cpu / ref[1]:5.2f}x cpu  {what}"
        print(line)

if __name__ == "__main__":
    main()
