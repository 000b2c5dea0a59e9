"""The C target on a real microcontroller architecture: cross-compiled with
``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os`` (newlib, semihosting) and run under
``qemu-system-arm -M mps2-an386`` (a Cortex-M4 board), bit-exact with the golden model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fpgagen import flow
from fpgagen.backends import c as cb
from fpgagen.config import resolve_config
from fpgagen.golden.model import run_int

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"

missing = cb.arm_tools_missing()
pytestmark = pytest.mark.skipif(missing is not None, reason=missing or "")


@pytest.fixture(scope="module")
def digits_cnn():
    pytest.importorskip("onnx")
    cfg = resolve_config({
        "name": "digits_cnn",
        "model": str(DIGITS / "digits_cnn.onnx"),
        "data": {"calibration": str(DIGITS / "digits_calib.npz"), "validation": str(DIGITS / "digits_valid.npz"),
                 "preprocess": {"scale": 0.0625, "offset": 0}},
        "targets": ["c"],
    }, base=ROOT)
    return flow.run_quantization(cfg, progress=False)


def test_digits_cnn_on_cortex_m4_bit_exact(digits_cnn, tmp_path):
    out = tmp_path / "c"
    cb.generate(digits_cnn).write(out)
    xq, golden = flow.verification_inputs(digits_cnn, 200)
    r = cb.verify(digits_cnn, out, xq, golden)
    arm = r["arm"]
    assert arm["samples"] == 200 and arm["mismatches"] == 0
    assert r["mismatches"] == 0
    m = cb.build_model(digits_cnn.qgraph, "digits_cnn")
    # the network alone: weights and code in flash, the arena in RAM
    assert arm["model"]["bss"] == m.plan.arena_bytes == 576
    assert arm["model"]["text"] > m.const_bytes
    assert arm["flash_bytes"] == arm["model"]["text"] + arm["model"]["data"]
    assert arm["flash_bytes"] < 8 * 1024
    # the whole test image (newlib's stdio included) holds the network
    assert arm["elf"]["text"] > arm["model"]["text"] and arm["elf"]["bss"] >= arm["model"]["bss"]
    print(f"\ndigits CNN on Cortex-M4: {arm}")


def test_kernel_sweep_on_cortex_m4(tmp_path):
    """The kernel sweep of test_c_kernels on the Cortex-M4 build (its 32-bit code paths, -Os)."""
    import test_c_kernels as tk

    models = tk.write_harness(tmp_path, tk.CASES)
    elf = cb.compile_arm(tmp_path, tmp_path / "run" / "harness.elf", extra=["-DFPGAGEN_TRACE"])
    xqs = [xq for _, _, xq in tk.CASES]
    _, traces = cb.run_samples([*cb.QEMU_CMD, str(elf)], tmp_path / "run", models, xqs, "kernel sweep on qemu",
                               trace=True)
    for (name, q, xq), trace in zip(tk.CASES, traces):
        _, golden = run_int(q, xq, trace=True)
        for layer in q.layers:
            assert trace[layer.output].tolist() == golden[layer.output].tolist(), f"{name}: {layer.name}"
