"""The C backend's toolchain: host and Cortex-M4 builds, runs under qemu, instruction counts and
the bit-exact check (see :mod:`fpgagen.backends.c`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from fpgagen.backends.c.emit import (
    ARM_CFLAGS,
    ARM_LDFLAGS,
    ARM_OPT,
    COUNT_FRAMES,
    HOST_CFLAGS,
    QEMU_CMD,
    QEMU_COUNT,
    CModel,
    build_model,
    from_bytes,
    generate,
    layer_macs,
    sample_file,
)
from fpgagen.errors import BackendError
from fpgagen.targets import first_mismatch, register


# -------------------------------------------------------------------------------------------
# building and running
# -------------------------------------------------------------------------------------------
def run_tool(cmd: list[str], cwd: Path, what: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Run a compiler or program; failure is a BackendError with the tail of its output."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BackendError(f"{what}: {cmd[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{what}: {' '.join(cmd)} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BackendError(f"{what} failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def compile_host(src_dir: Path, out: Path, sources=("harness.c", "fpgagen_nn.c"), extra=(),
                 cc: str = "gcc") -> Path:
    """Compile with the strict host flags (``HOST_CFLAGS``) into ``out``."""
    if shutil.which(cc) is None:
        raise BackendError(f"verifying the c target needs a host C compiler: {cc} not found on PATH")
    src_dir, out = Path(src_dir).resolve(), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([cc, *HOST_CFLAGS, *extra, "-I", str(src_dir), *(str(src_dir / s) for s in sources),
              "-o", str(out)], src_dir, f"compiling the c target ({cc})")
    return out


def arm_tools_missing() -> str | None:
    """Why the Cortex-M4 check cannot run here, or None."""
    for tool, pkg in (("arm-none-eabi-gcc", "gcc-arm-none-eabi and libnewlib-arm-none-eabi"),
                      ("arm-none-eabi-size", "binutils-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian: apt install {pkg})"
    return None


def compile_arm(src_dir: Path, out: Path, extra=(), opt: str = ARM_OPT) -> Path:
    """Cross-compile the harness for the mps2-an386 board (``opt`` + ``ARM_CFLAGS``, ``ARM_LDFLAGS``)."""
    src_dir, out = Path(src_dir).resolve(), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    srcs = ["harness.c", "fpgagen_nn.c", "arm/startup.c"]
    run_tool(["arm-none-eabi-gcc", opt, *ARM_CFLAGS, *extra, "-I", str(src_dir), *(str(src_dir / s) for s in srcs),
              *ARM_LDFLAGS, "-T", str(src_dir / "arm/mps2_an386.ld"), "-o", str(out)],
             src_dir, "cross-compiling the c target for Cortex-M4 (arm-none-eabi-gcc)")
    return out


def arm_size(paths: list[Path], cwd: Path) -> dict:
    """text/data/bss summed over ``paths`` (arm-none-eabi-size, Berkeley format)."""
    proc = run_tool(["arm-none-eabi-size", *map(str, paths)], cwd, "arm-none-eabi-size")
    total = {"text": 0, "data": 0, "bss": 0}
    for line in proc.stdout.strip().splitlines()[1:]:
        text, data, bss = (int(v) for v in line.split()[:3])
        total["text"] += text
        total["data"] += data
        total["bss"] += bss
    return total


def arm_model_size(src_dir: Path, work: Path, prefix: str, opt: str = ARM_OPT) -> dict:
    """Flash/RAM of the network alone: model.h and the runtime kernels it calls, linked with
    --gc-sections from ``<prefix>_run`` (no harness, no unused kernel; of the C library only what
    the compiler calls, e.g. memset)."""
    src_dir, work = Path(src_dir).resolve(), Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    unit = work / "model_unit.c"
    unit.write_text(f'#include "model.h"\nvoid {prefix}_entry(void);\n'
                    f'void {prefix}_entry(void) {{ {prefix}_run(); }}\n')
    elf = work / "model.elf"
    run_tool(["arm-none-eabi-gcc", opt, *ARM_CFLAGS, "-I", str(src_dir), str(unit), str(src_dir / "fpgagen_nn.c"),
              "-nostdlib", "-nostartfiles", "-Wl,--gc-sections", f"-Wl,--entry={prefix}_entry", "-lc", "-lgcc",
              "-o", str(elf)], src_dir, "linking the model alone for its size")
    return arm_size([elf], work)


def symbol_address(elf: Path, name: str, cwd: Path) -> int:
    """The address of function ``name`` in ``elf`` (arm-none-eabi-nm; the Thumb bit cleared)."""
    proc = run_tool(["arm-none-eabi-nm", str(elf)], cwd, "arm-none-eabi-nm")
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise BackendError(f"{elf}: no symbol {name} (was it built with -DFPGAGEN_COUNT?)")


#: bytes of qemu's log read at a time
_CHUNK = 1 << 24
#: a block qemu logged, then did not execute: the next line says it stopped before it
_NOT_RUN = re.compile(rb"Trace [^\n]*\nStopped execution of TB chain before [^\n]*\n")


def _executed(buf: bytes) -> bytes:
    """``buf`` (whole lines) without the Trace lines of blocks that did not run: qemu logs a block,
    then, when icount's budget runs out at its start (every 65,536 instructions), says "Stopped
    execution of TB chain before ..." and runs it again later (logged again)."""
    return _NOT_RUN.sub(b"", buf)


def count_marked_instructions(cmd: list[str], cwd: Path, mark: int,
                              timeout: float = 1800.0) -> tuple[list[int], int]:
    """Run ``cmd`` (qemu with ``QEMU_COUNT``), streaming its executed-instruction log (one
    ``Trace`` line per instruction on stderr); returns, per call of the marker at ``mark``, the
    instructions executed since the previous call (the first: since the start), and the
    instructions after the last call."""
    import threading
    import time

    needle = b"/%08x/" % mark  # a line "Trace 0: 0x... [<flags>/<pc>/<...>/<...>] symbol"
    counts, since, tail, out = [], 0, b"", []

    def scan(buf: bytes, counts: list[int], since: int) -> tuple[list[int], int]:
        pos = 0
        while (hit := buf.find(needle, pos)) >= 0:
            if buf[hit - 9:hit - 8] != b"[":  # the value in another field
                since += buf.count(b"Trace ", pos, hit)
                pos = hit + 1
                continue
            since += buf.count(b"Trace ", pos, hit)  # up to the marker's own line: it ends the segment
            counts.append(since)
            since, pos = 0, buf.find(b"\n", hit) + 1
        return counts, since + buf.count(b"Trace ", pos)

    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise BackendError(f"counting instructions: {cmd[0]} not found on PATH") from None
    with proc:
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
        reader.start()
        start = time.monotonic()
        while chunk := proc.stderr.read(_CHUNK):
            buf = tail + chunk
            whole = buf.rfind(b"\n") + 1
            buf = _executed(buf[:whole]) + buf[whole:]
            # hold the last whole line back: the next chunk may say it did not run
            cut = buf.rfind(b"\n", 0, max(buf.rfind(b"\n"), 0)) + 1
            buf, tail = buf[:cut], buf[cut:]
            counts, since = scan(buf, counts, since)
            if time.monotonic() - start > timeout:
                proc.kill()
                raise BackendError(f"counting instructions: {' '.join(cmd)} did not finish within {timeout:.0f} s")
        counts, since = scan(_executed(tail[:tail.rfind(b"\n") + 1]), counts, since)
        proc.wait()
        reader.join()
    if proc.returncode != 0:
        raise BackendError(f"counting instructions failed (exit code {proc.returncode}): {' '.join(cmd)}\n"
                           + b"".join(out).decode(errors="replace")[-2000:])
    return counts, since


def arm_instruction_counts(src_dir: Path, work: Path, m: CModel, xq: np.ndarray, opt: str = ARM_OPT) -> dict:
    """Executed instructions of the network on the Cortex-M4 image, per frame and per layer.

    The harness built with -DFPGAGEN_COUNT calls ``fpgagen_mark`` before each inference and
    after each layer; qemu logs every executed instruction (``QEMU_COUNT``: -icount shift=0
    -singlestep -d exec,nochain) and the log is split at the marker's calls, so startup and
    file I/O fall outside the network's segments. Each of ``COUNT_FRAMES`` frames is counted;
    the figures are the mean. Instructions, not cycles."""
    work = Path(work).resolve()
    xq = xq[:COUNT_FRAMES]
    elf = compile_arm(src_dir, work / "harness_count.elf", extra=["-DFPGAGEN_COUNT"], opt=opt)
    run_samples_files(work, [m], [xq])
    segs, _ = count_marked_instructions([*QEMU_CMD[:-1], *QEMU_COUNT, "-kernel", str(elf)], work,
                                     symbol_address(elf, "fpgagen_mark", work))
    per = len(m.layers) + 1
    if len(segs) != len(xq) * per:
        raise BackendError(f"counting instructions: expected {len(xq) * per} marker calls for {len(xq)} frames "
                           f"of {len(m.layers)} layers, the log shows {len(segs)}")
    frames = np.array(segs, np.int64).reshape(len(xq), per)[:, 1:]  # segment 0: before the first inference
    layers = frames.mean(axis=0)
    total = float(frames.sum(axis=1).mean())
    macs = [layer_macs(m.q, lc.layer) for lc in m.layers]
    return {
        "counted": "executed instructions (not cycles) of the network alone, Cortex-M4 image under qemu "
                   f"({' '.join(QEMU_COUNT)}), split at fpgagen_mark calls, mean of {len(xq)} frames",
        "compiler": f"arm-none-eabi-gcc {opt} " + " ".join(ARM_CFLAGS),
        "instructions_per_frame": round(total, 1),
        "instructions_per_mac": round(total / m.macs, 3) if m.macs else None,
        "frames": int(len(xq)),
        "frame_spread": int(frames.sum(axis=1).max() - frames.sum(axis=1).min()),
        "layers": [{"layer": lc.layer.name, "op": lc.layer.op, "instructions": round(float(n), 1), "macs": mc,
                    "instructions_per_mac": round(float(n) / mc, 3) if mc else None}
                   for lc, n, mc in zip(m.layers, layers, macs)],
    }


def run_samples_files(work: Path, models: list[CModel], xqs: list[np.ndarray]) -> None:
    """Write ``input_<i>.bin`` per model into ``work`` and remove stale outputs."""
    work.mkdir(parents=True, exist_ok=True)
    for i, (m, xq) in enumerate(zip(models, xqs)):
        (work / f"input_{i}.bin").write_bytes(sample_file(xq, m.input))
        for stale in (f"output_{i}.bin", f"trace_{i}.bin"):
            if (work / stale).exists():
                (work / stale).unlink()


def run_samples(exe_cmd: list[str], work: Path, models: list[CModel], xqs: list[np.ndarray],
                what: str, trace: bool = False, timeout: float = 300.0):
    """Write ``input_<i>.bin`` per model, run, return the outputs (and traces) as IR-layout ints."""
    work = Path(work).resolve()
    run_samples_files(work, models, xqs)
    run_tool(exe_cmd, work, what, timeout)
    outs, traces = [], []
    for i, m in enumerate(models):
        raw = (work / f"output_{i}.bin").read_bytes()
        n = len(xqs[i])
        if len(raw) != n * m.output.nbytes:
            raise BackendError(f"{what}: expected {n * m.output.nbytes} output bytes for {n} samples, got {len(raw)}")
        outs.append(from_bytes(raw, m.output))
        if trace:
            traces.append(split_trace((work / f"trace_{i}.bin").read_bytes(), m, n))
    return (outs, traces) if trace else outs


def split_trace(raw: bytes, m: CModel, n: int) -> dict[str, np.ndarray]:
    """The trace file (per sample, every layer's output bytes in order) -> tensor -> [N, *shape]."""
    per_sample = sum(lc.out_bytes for lc in m.layers)
    if len(raw) != n * per_sample:
        raise BackendError(f"trace: expected {n * per_sample} bytes, got {len(raw)}")
    arr = np.frombuffer(raw, np.uint8).reshape(n, per_sample)
    out, pos = {}, 0
    for lc in m.layers:
        info = m.infos[lc.layer.output]
        out[lc.layer.output] = from_bytes(arr[:, pos:pos + info.nbytes].copy().tobytes(), info)
        pos += info.nbytes
    return out


def count_mismatches(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Per sample: does any integer differ? (bool [N])"""
    g = np.asarray(got, np.int64).reshape(len(got), -1)
    w = np.asarray(want, np.int64).reshape(len(want), -1)
    if g.shape != w.shape:
        raise BackendError(f"output shape {list(g.shape)} differs from the golden model's {list(w.shape)}")
    return (g != w).any(axis=1)


def first_mismatch_layer(m: CModel, traces: dict, golden_trace: dict) -> str | None:
    """The first layer whose traced output differs from the golden model's on any sample."""
    def flat(a):
        return np.asarray(a, np.int64).reshape(len(a), -1)

    return first_mismatch([lc.layer for lc in m.layers if lc.layer.output in golden_trace],
                          lambda layer: flat(traces[layer.output]), lambda layer: flat(golden_trace[layer.output]))


def _model_and_inputs(build, xq):
    q = build.qgraph
    m = build_model(q, (build.cfg or {}).get("name") or q.name)
    xq = np.asarray(xq, np.int64).reshape((len(xq),) + tuple(q.shapes[q.input]))
    return m, xq


def _verify_host(build, target_dir, xq, golden):
    target_dir = Path(target_dir)
    m, xq = _model_and_inputs(build, xq)
    work = target_dir / "build"
    exe = compile_host(target_dir, work / "harness")
    out = run_samples([str(exe)], work, [m], [xq], "running the host harness")[0]
    bad = count_mismatches(out, golden.output)
    result = {
        "samples": int(len(xq)),
        "mismatches": int(bad.sum()),
        "mismatched_values": int((out.reshape(len(xq), -1) != np.asarray(golden.output).reshape(len(xq), -1)).sum()),
        "arena_bytes": m.plan.arena_bytes,
        "arena_lower_bound": m.plan.lower_bound,
        "flash_bytes": m.const_bytes,
        "macs": m.macs,
        "compiler": "gcc " + " ".join(HOST_CFLAGS),
    }
    if bad.any():
        texe = compile_host(target_dir, work / "harness_trace", extra=["-DFPGAGEN_TRACE"])
        _, traces = run_samples([str(texe)], work, [m], [xq], "running the host harness (trace)", trace=True)
        result["first_mismatch_layer"] = first_mismatch_layer(m, traces[0], golden.trace)
    return result, bad


def _verify_arm(build, target_dir, xq, golden):
    missing = arm_tools_missing()
    if missing:
        return {"skipped": missing}, None
    target_dir = Path(target_dir)
    m, xq = _model_and_inputs(build, xq)
    work = target_dir / "build" / "arm"
    elf = compile_arm(target_dir, work / "harness.elf")
    out = run_samples([*QEMU_CMD, str(elf)], work, [m], [xq], "running the Cortex-M4 harness under qemu")[0]
    bad = count_mismatches(out, golden.output)
    model = arm_model_size(target_dir, work / "size", m.prefix)
    counts = arm_instruction_counts(target_dir, work / "count", m, xq)
    return {
        "board": "mps2-an386 (Cortex-M4, qemu-system-arm, semihosting)",
        "compiler": f"arm-none-eabi-gcc {ARM_OPT} " + " ".join(ARM_CFLAGS),
        "samples": int(len(xq)),
        "mismatches": int(bad.sum()),
        "elf": arm_size([elf], work),
        "model": model,
        "flash_bytes": model["text"] + model["data"],
        "ram_bytes": model["data"] + model["bss"],
        "instructions_per_frame": counts.pop("instructions_per_frame"),
        "instructions_per_mac": counts.pop("instructions_per_mac"),
        "instruction_count": counts,
    }, bad


def verify_host(build, target_dir, xq, golden) -> dict:
    """Compile the generated C with the host gcc (``HOST_CFLAGS``), run it on ``xq`` and compare
    every output integer with the golden model; on a mismatch, name the first differing layer."""
    return _verify_host(build, target_dir, xq, golden)[0]


def verify_arm(build, target_dir, xq, golden) -> dict:
    """Cross-compile for Cortex-M4 (``ARM_CFLAGS``), run under qemu's mps2-an386 on ``xq`` and
    compare with the golden model; sizes from arm-none-eabi-size (the whole test image, and the
    network alone: model.h + fpgagen_nn.c). ``{"skipped": reason}`` where the tools are missing."""
    return _verify_arm(build, target_dir, xq, golden)[0]


def verify(build, target_dir, xq, golden) -> dict:
    """The host check and, where the tools exist, the Cortex-M4 check (under ``"arm"``);
    ``mismatches`` counts the samples that differ on either."""
    result, bad = _verify_host(build, target_dir, xq, golden)
    result["arm"], arm_bad = _verify_arm(build, target_dir, xq, golden)
    if arm_bad is not None:
        result["mismatches"] = int((bad | arm_bad).sum())
    return result


register("c", verify=verify)(generate)

