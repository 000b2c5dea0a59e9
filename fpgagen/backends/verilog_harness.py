"""The fast Verilog simulation: a C++ stream harness compiled with the design by Verilator.

``fpgagen verify --targets verilog`` runs it by default (``verify.verilog_sim: harness``; the
cocotb testbench of :mod:`fpgagen.backends.verilog_cocotb` is ``cocotb``). The harness
(``templates/sim/harness.cpp``) clocks the design in C++, drives the input frames and collects
every output beat with its clock edge, with random idle cycles and back-pressure from a seeded
generator, then times frames back to back; it writes the beats to a file and Python turns them
into the same results the cocotb testbench gives (:func:`results`), so
:func:`fpgagen.backends.verilog_sim.verify_design` compares and reports both the same way.

The design is wrapped by ``templates/sim/harness_top.v.j2`` (the top's ports plus every
internal stream's handshake and data as ports: probes and the deadlock report). The build goes
to ``BUILD/harness/`` and is reused while the Verilog sources and the harness are unchanged (the
``.mem`` ROM images are read at run time).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgagen.backends import from_beats, from_words
from fpgagen.backends.verilog import filelist_sources
from fpgagen.errors import BackendError
from fpgagen.render import read_library_file, render
from fpgagen.toolchain import make_env
from fpgagen.version import __version__

#: Verilator options of the harness build (speed over everything: no VPI, no public signals;
#: -fno-dfg: Verilator's data-flow-graph optimiser made the MNIST CNN's per-cycle code 12 % slower
#: and its build 1.5x longer; FPGAGEN_SIM_HOLD: the multiply-accumulate pipelines of
#: fpgagen_mac_out load only with valid data, so an idle layer costs no products, 1.35x on the
#: MNIST CNN; simulation only, the hardware and the cocotb testbenches have no such enable)
VERILATOR_ARGS = ("-O3", "-fno-dfg", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "--threads", "1",
                  "--timescale", "1ns/1ps", "+define+FPGAGEN_SIM_HOLD")
#: make overrides: -O2 for the per-cycle code and the runtime; -O0 for the run-once "slow" code
#: (constructors, symbol tables: GCC at -O1 takes minutes on a large design's, see verilog_sim)
MAKE_OPT = ("OPT_FAST=-O2", "OPT_SLOW=-O0", "OPT_GLOBAL=-O2")
EXE = "harness"


@dataclass
class Harness:
    """A built harness: its executable and the internal streams it exposes (port p<i>_*)."""

    exe: Path
    streams: list[str]


def wrapper_name(top: str) -> str:
    """The wrapper module's name: never the top's, never a library module's (fpgagen_<x>)."""
    return f"{top}_harness_tb"


def build(target_dir: Path, d, build_dir: Path, streams=None) -> tuple[Harness, float]:
    """Compile the design ``d`` (:class:`~fpgagen.backends.verilog.Design`) in ``target_dir``
    (its ``filelist.f``) with the harness into ``build_dir/harness``, exposing ``streams`` (default:
    every stream of ``d``; none for a netlist, whose wires are not the RTL's). Returns (the
    harness, build seconds); a build of the same sources is reused."""
    target_dir = Path(target_dir).resolve()
    hdir = Path(build_dir).resolve() / "harness"
    hdir.mkdir(parents=True, exist_ok=True)
    sources = [target_dir / f for f in filelist_sources((target_dir / "filelist.f").read_text())]
    streams = list(d.streams if streams is None else streams)
    wide = [s for s in streams if s.width > 64]
    if wide:  # harness_streams.h reads each stream's data as one 64-bit word
        raise BackendError(f"the harness of {d.top} reads streams of at most 64 bits; stream {wide[0].name} has "
                           f"{wide[0].width} (use verify.verilog_sim: cocotb)")
    width = {s.name: s.width for s in d.streams}
    tb = wrapper_name(d.top)
    ctx = dict(tb=tb, top=d.top, version=__version__, streams=streams, in_width=width[d.in_stream],
               out_width=width[d.out_stream])
    files = {f"{tb}.v": render("sim/harness_top.v.j2", **ctx),
             "harness_streams.h": render("sim/harness_streams.h.j2", **ctx),
             "harness.cpp": read_library_file("sim/harness.cpp")}
    exe = hdir / "obj" / EXE
    digest = hashlib.sha256()
    for part in (*VERILATOR_ARGS, *MAKE_OPT):
        digest.update(part.encode() + b"\0")
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    for src in sources:
        digest.update(str(src).encode() + b"\0" + src.read_bytes() + b"\0")
    stamp = hdir / "stamp"
    harness = Harness(exe, [s.name for s in streams])
    start = time.monotonic()
    if exe.is_file() and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return harness, time.monotonic() - start
    stamp.unlink(missing_ok=True)
    for name, text in files.items():
        (hdir / name).write_text(text)
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "--top-module", tb, "--prefix", "Vharness",
           "-o", EXE, "-Mdir", str(hdir / "obj"), *VERILATOR_ARGS, "-CFLAGS", "-O2",
           str(hdir / "harness.cpp"), str(hdir / f"{tb}.v"), *map(str, sources)]
    log = hdir / "build.log"
    with open(log, "w") as fh:
        res = subprocess.run(cmd, cwd=hdir, stdout=fh, stderr=subprocess.STDOUT, check=False,
                             env={**os.environ, **make_env(MAKE_OPT)})
    if res.returncode != 0 or not exe.is_file():
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-8:])
        raise BackendError(f"Verilator could not build the harness of {d.top}: see {log}\n{tail}")
    stamp.write_text(digest.hexdigest())
    return harness, time.monotonic() - start


def run(harness: Harness, target_dir: Path, build_dir: Path, job: dict) -> dict:
    """Run the harness on ``job`` (see :func:`fpgagen.backends.verilog_sim.sim_job`); the results
    as the cocotb testbench writes them (:func:`results`)."""
    frames = np.load(job["inputs"])
    mask = (1 << job["in_width"]) - 1
    words = Path(build_dir) / f"inputs_{job['tag']}.u32"
    (np.asarray(frames, dtype=np.int64) & mask).astype("<u4").tofile(words)
    out = Path(build_dir) / f"beats_{job['tag']}.txt"
    out.unlink(missing_ok=True)
    index = {name: i for i, name in enumerate(harness.streams)}
    probes = sorted({index[s] for s, *_ in job.get("probes", {}).values() if s in index})
    args = {"inputs": words, "frames": len(frames), "elements": frames.shape[1] if frames.ndim == 2 else 0,
            "seed": job["seed"], "pauses": int(job["pauses"]), "timing_frames": job["timing_frames"],
            "max_cycles": job["max_cycles"], "probe": int(bool(job.get("probe"))),
            "probes": ",".join(map(str, probes)), "out": out}
    res = subprocess.run([str(harness.exe)] + [f"{k}={v}" for k, v in args.items()], cwd=target_dir,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0 or not out.is_file():
        tail = (res.stderr or res.stdout).strip()[-600:]
        raise BackendError(f"the Verilog simulation (harness) did not finish (exit {res.returncode}): {tail}")
    return results(out.read_text(), job, harness.streams, len(frames))


def results(text: str, job: dict, streams: list[str], n_frames: int) -> dict:
    """The harness's event lines (see ``templates/sim/harness.cpp``) as the cocotb testbench's
    results: ``outputs`` (one list of integers per output frame, up to its tlast, of the first
    ``n_frames``), ``probes``, ``latency_cycles`` and ``cycles_per_frame`` (timing frames: first
    input frame taken to its last output beat + 1; the mean interval of the last output beats),
    ``timing_error``, or ``timeout`` with the ``streams``' handshake states; ``cycles``: clock
    cycles simulated in all."""
    beats, ends, starts, probe_beats, states = [], [], {}, {}, {}
    frames, current, timeout, done = [], [], None, 0
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        kind = f[0]
        if kind == "O":
            current.append(int(f[3]))
            if f[4] == "1":
                frames.append(current)
                ends.append(int(f[2]))
                current = []
        elif kind == "F":
            starts[(int(f[1]), int(f[2]))] = int(f[3])
        elif kind == "P":
            probe_beats.setdefault(int(f[1]), []).append(int(f[2]))
        elif kind == "T":
            timeout = int(f[1])
        elif kind == "S":
            states[streams[int(f[1])]] = {"valid": int(f[2]), "ready": int(f[3])}
        elif kind == "D":
            done = int(f[1])
    out_w, out_signed = job["out_width"], job["out_signed"]
    result = {"outputs": [from_words(fr, out_w, out_signed) for fr in frames[:n_frames]], "probes": {},
              "cycles": done or timeout}
    index = {name: i for i, name in enumerate(streams)}
    for tensor, (stream, width, signed, *ew) in job.get("probes", {}).items():  # (ew: elements per beat)
        result["probes"][tensor] = from_beats(probe_beats.get(index.get(stream), []), width, signed, *ew)
    if timeout is not None or not done:
        result.update(timeout=job["max_cycles"] if timeout is None else timeout, streams=states,
                      beats={"m_axis": sum(map(len, frames)) + len(current)})
        return result
    n_timing = max(2, job["timing_frames"])
    timed = frames[n_frames:n_frames + n_timing]
    sizes = sorted({len(fr) for fr in timed})
    if sizes != [job["out_elements"]]:
        result["timing_error"] = f"output frames of {sizes} elements, expected {job['out_elements']}"
    else:
        t_ends = ends[n_frames:n_frames + n_timing]
        result["latency_cycles"] = int(t_ends[0] - starts[(2, 0)] + 1)
        result["cycles_per_frame"] = (t_ends[-1] - t_ends[0]) / (len(t_ends) - 1)
    return result
