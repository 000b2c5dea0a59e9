"""The C target on a real microcontroller architecture: cross-compiled with
``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os`` (newlib, semihosting) and run under
``qemu-system-arm -M mps2-an386`` (a Cortex-M4 board), bit-exact with the golden model.
"""

from __future__ import annotations

import sys

from pathlib import Path

import pytest

from fpgagen import flow
from fpgagen.backends import c as cb
from fpgagen.backends.c import run as c_run
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
    # -O2 with the DSP kernels (weights 1.5 KB of it; -Os is smaller): 16.5 kB with the per-channel
    # formats `auto` chooses here, 16.0 kB per-tensor (the runtime's unused features compiled out)
    assert arm["flash_bytes"] < 16.5 * 1024
    # the whole test image (newlib's stdio included) holds the network
    assert arm["elf"]["text"] > arm["model"]["text"] and arm["elf"]["bss"] >= arm["model"]["bss"]
    # executed instructions of the network, per frame and per layer, at the default -O2
    assert arm["compiler"].startswith("arm-none-eabi-gcc -O2 ")
    counts = arm["instruction_count"]
    layers = counts["layers"]
    assert [entry["layer"] for entry in layers] == [layer.name for layer in digits_cnn.qgraph.layers]
    assert abs(sum(entry["instructions"] for entry in layers) - arm["instructions_per_frame"]) < 1
    assert arm["instructions_per_mac"] == round(arm["instructions_per_frame"] / m.macs, 3)
    assert counts["frames"] == cb.COUNT_FRAMES and counts["frame_spread"] < 100
    assert all(entry["instructions"] > entry["macs"] for entry in layers if entry["op"] == "conv")
    print(f"\ndigits CNN on Cortex-M4: {arm}")


def test_marked_count_agrees_with_one_frame_against_n_frames(digits_cnn, tmp_path):
    """The marker split against the issue's method: whole runs of 1 and 4 frames; their
    difference over 3 is one frame plus its file I/O (a few hundred instructions)."""
    out = tmp_path / "c"
    cb.generate(digits_cnn).write(out)
    m = cb.build_model(digits_cnn.qgraph, "digits_cnn")
    xq, _ = flow.verification_inputs(digits_cnn, 4)
    marked = cb.arm_instruction_counts(out, tmp_path / "count", m, xq)["instructions_per_frame"]
    elf = cb.compile_arm(out, tmp_path / "whole" / "harness.elf")
    totals = []
    for n in (1, 4):
        cb.run_samples_files(tmp_path / "whole", [m], [xq[:n]])
        segs, rest = cb.count_marked_instructions([*cb.QEMU_CMD[:-1], *cb.QEMU_COUNT, "-kernel", str(elf)],
                                                  tmp_path / "whole", 1)  # never called: the whole run
        assert segs == []
        totals.append(rest)
    per_frame = (totals[1] - totals[0]) / 3
    print(f"\nmarked {marked}, 1 vs 4 frames {per_frame}")
    assert marked < per_frame < marked + 2000


@pytest.mark.parametrize("chunk", [1 << 24, 7, 64, 101])
def test_a_block_qemu_did_not_run_is_not_counted(tmp_path, monkeypatch, chunk):
    """qemu logs a block, then, when icount's budget runs out at its start (every 65,536
    instructions; seen on the marker itself), says it stopped before it and logs it again when it
    runs: the first line is no instruction. Counted the same whatever the chunks the log is read in."""
    mark = 0x40
    line = lambda pc, sym: f"Trace 0: 0x7f00 [00800408/{pc:08x}/00000110/ff020201] {sym}\n"  # noqa: E731
    stop = lambda pc, sym: f"Stopped execution of TB chain before 0x7f00 [{pc:08x}] {sym}\n"  # noqa: E731
    log = (line(0x70, "main") + line(0x72, "main") + line(mark, "fpgagen_mark") + stop(mark, "fpgagen_mark")
           + line(mark, "fpgagen_mark") + line(0x74, "main") + stop(0x74, "main") + line(0x74, "main")
           + line(0x76, "main") + line(mark, "fpgagen_mark") + line(0x78, "main"))
    script = tmp_path / "fake_qemu.py"
    script.write_text("import sys\nsys.stderr.write(open(sys.argv[1]).read())\n")
    (tmp_path / "log.txt").write_text(log)
    monkeypatch.setattr(c_run, "_CHUNK", chunk)  # the toolchain module reads it
    segs, rest = cb.count_marked_instructions([sys.executable, str(script), str(tmp_path / "log.txt")], tmp_path,
                                              mark)
    assert (segs, rest) == ([3, 3], 1)


def test_kernel_sweep_on_cortex_m4(tmp_path):
    """The kernel sweep of test_c_kernels on the Cortex-M4 build (its 32-bit code paths): the DSP
    kernels and, with FPGAGEN_NO_DSP, the portable ones."""
    import test_c_kernels as tk

    models = tk.write_harness(tmp_path, tk.CASES)
    xqs = [xq for _, _, xq in tk.CASES]
    goldens = [run_int(q, xq, trace=True)[1] for _, q, xq in tk.CASES]
    # the DSP-extension kernels (ACLE) and the portable C on the same core, at -O2 and -Os
    for build, extra, opt in (("dsp", [], "-O2"), ("portable", ["-DFPGAGEN_NO_DSP"], "-O2"), ("dsp-Os", [], "-Os")):
        elf = cb.compile_arm(tmp_path, tmp_path / build / "harness.elf", extra=["-DFPGAGEN_TRACE", *extra], opt=opt)
        _, traces = cb.run_samples([*cb.QEMU_CMD, str(elf)], tmp_path / build, models, xqs,
                                   f"kernel sweep on qemu ({build})", trace=True)
        for (name, q, _), trace, golden in zip(tk.CASES, traces, goldens):
            for layer in q.layers:
                assert trace[layer.output].tolist() == golden[layer.output].tolist(), f"{name}: {layer.name} ({build})"
